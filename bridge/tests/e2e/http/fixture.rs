//! A real bridge for the HTTP tests: an embedded broker, simulated bays on it, the site task
//! and the router, called without a socket or served on one.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use ctrl22_bridge::bay::BayId;
use ctrl22_bridge::config::Config;
use ctrl22_bridge::handle::SiteHandle;
use ctrl22_bridge::http::{self, HttpOptions};
use ctrl22_bridge::runtime::Bridge;
use ctrl22_bridge::store::{Session, Store};
use ctrl22_node::sim::{self, Arrivals, SimConfig, SimWorld};
use serde_json::Value;
use tower::ServiceExt;

pub const TOKEN: &str = "t0ken-for-tests";
pub const BAYS: usize = 3;

/// A bridge with simulated bays on an embedded broker, and its HTTP router.
pub struct Fixture {
    pub app: Router,
    pub site: SiteHandle,
    pub devs: Vec<String>,
    /// The server on a socket, when `Setup::options.listen` asked for one.
    pub server: Option<http::HttpServer>,
    _store_dir: tempfile::TempDir,
    _bridge: Bridge,
    #[allow(dead_code)] // read by dashboard_browser.rs, which shares this file
    pub broker: ctrl22_bridge::broker::EmbeddedBroker,
    _observer: tokio::task::JoinHandle<()>,
    _sim_stop: tokio::sync::oneshot::Sender<()>,
}

/// What a fixture's HTTP options differ in.
pub struct Setup {
    pub token: Option<&'static str>,
    pub store: bool,
    /// The rest of the options (limits, `protect_reads`, `listen`: with `listen` the server
    /// is also spawned on a socket, and the router's `Host` check is on for loopback).
    pub options: HttpOptions,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            token: Some(TOKEN),
            store: true,
            options: HttpOptions::default(),
        }
    }
}

pub async fn fixture(setup: Setup) -> Fixture {
    let broker = ctrl22_bridge::broker::start(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let mut config = Config::default();
    config.mqtt.url = broker.url();
    config.mqtt.client_id = "http-api-test".to_owned();
    config.mesh.heartbeat_timeout = Duration::from_secs(10);
    // The bridge and the HTTP server share one store file per test.
    let store_dir = tempfile::tempdir().unwrap();
    let store_path = store_dir.path().join("http.db");
    config.storage.path.clone_from(&store_path);
    let bridge = Bridge::start(&config).await.unwrap();
    let site = bridge.handle.clone();

    let sim = SimConfig {
        nodes: BAYS,
        seed: 7,
        heartbeat_ms: 1_000,
        speed: 1.0,
        arrivals: Arrivals::AllPlugged,
        mesh_id: config.mesh.mesh_id.clone(),
    };
    let (sim_stop, sim_stopped) = tokio::sync::oneshot::channel::<()>();
    let url = broker.url();
    tokio::spawn(async move {
        let world = SimWorld::new(sim.clone());
        let stopped = async {
            let _ = sim_stopped.await;
        };
        sim::run_mqtt(world, &url, &sim.mesh_id, sim.speed, stopped)
            .await
            .unwrap();
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let devs = loop {
        let snapshot = site.snapshot();
        if snapshot.bays.iter().filter(|b| b.online).count() == BAYS {
            break snapshot.bays.iter().map(|b| b.dev.clone()).collect();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bays did not come online"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    seed_store(&store_path);
    let options = HttpOptions {
        token: setup.token.map(str::to_owned),
        store: setup.store.then_some(store_path),
        ..setup.options
    };
    let server = match options.listen {
        Some(_) => Some(http::spawn(options.clone(), site.clone()).await.unwrap()),
        None => None,
    };
    let (app, observer) = http::app(options, site.clone());
    Fixture {
        app,
        site,
        devs,
        server,
        _store_dir: store_dir,
        _bridge: bridge,
        broker,
        _observer: observer,
        _sim_stop: sim_stop,
    }
}

/// Two sessions on two days and one event.
fn seed_store(path: &Path) {
    let mut store = Store::open(path).unwrap();
    for (bay, started_ms, id_tag) in [
        ("aa0000000001", 86_400_000_u64, Some("=cmd")),
        ("aa0000000002", 2 * 86_400_000, None),
    ] {
        store
            .record_session(&Session {
                bay: BayId(bay.to_owned()),
                started_ms,
                ended_ms: started_ms + 3_600_000,
                energy_wh: 7_500.0,
                id_tag: id_tag.map(str::to_owned),
                max_current: None,
                solar_wh: Some(2_500.0),
                uncounted_ms: 0,
            })
            .unwrap();
    }
    store.append_event(1_000, None, "started").unwrap();
}

pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap().to_owned()
    }
}

/// One request to the router, without a socket.
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        content_type,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

impl Fixture {
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        call(&self.app, method, uri, headers, body).await
    }

    pub async fn get(&self, uri: &str) -> Answer {
        self.call("GET", uri, &[], "").await
    }

    pub async fn put(&self, uri: &str, body: &str) -> Answer {
        let auth = format!("Bearer {TOKEN}");
        self.call(
            "PUT",
            uri,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    pub fn bay(&self, dev: &str) -> ctrl22_bridge::site::snapshot::BaySnapshot {
        self.site
            .snapshot()
            .bays
            .iter()
            .find(|b| b.dev == dev)
            .unwrap()
            .clone()
    }

    /// `ctrl22_rejected_input_total{kind="http"}` as the site counts it.
    pub async fn rejected_http(&self) -> u64 {
        // The count travels to the site task by message and shows in its next snapshot.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        rejected(&self.site, "http")
    }

    /// Waits (up to 5 s) until the site has counted `n` refusals of `kind`.
    pub async fn counted(&self, kind: &str, n: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while rejected(&self.site, kind) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{kind}: {} refusals counted, not {n}",
                rejected(&self.site, kind)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The address of the server on a socket.
    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addr
    }
}

fn rejected(site: &SiteHandle, kind: &str) -> u64 {
    site.snapshot().rejected.get(kind).copied().unwrap_or(0)
}

/// Sends `request` as written over a new connection and reads until the server closes it
/// (or 5 s pass): the answer's text, empty when it closed without one.
pub async fn raw(addr: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut bytes)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open: {bytes:?}"
    );
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A `GET` with `Connection: close` over a new connection.
pub async fn raw_get(addr: SocketAddr, path: &str, host: &str) -> String {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .await
}
