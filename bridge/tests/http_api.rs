//! The HTTP API against a real bridge: an embedded broker, simulated bays on it, the site
//! task, and the router called without a socket (one test goes over TCP). Every endpoint,
//! auth failures, bad JSON and out-of-range settings (4xx with a message, nothing changed).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use ctrl22_bridge::bay::BayId;
use ctrl22_bridge::config::Config;
use ctrl22_bridge::handle::SiteHandle;
use ctrl22_bridge::http::{self, HttpOptions, BODY_LIMIT_BYTES};
use ctrl22_bridge::runtime::Bridge;
use ctrl22_bridge::store::{Session, Store};
use ctrl22_node::sim::{self, Arrivals, SimConfig, SimWorld};
use futures::StreamExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "t0ken-for-tests";
const BAYS: usize = 3;

/// A bridge with simulated bays on an embedded broker, and its HTTP router.
struct Fixture {
    app: Router,
    site: SiteHandle,
    devs: Vec<String>,
    _store_dir: tempfile::TempDir,
    _bridge: Bridge,
    _broker: ctrl22_bridge::broker::EmbeddedBroker,
    _observer: tokio::task::JoinHandle<()>,
    _sim_stop: tokio::sync::oneshot::Sender<()>,
}

/// What a fixture's HTTP options differ in.
struct Setup {
    token: Option<&'static str>,
    store: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            token: Some(TOKEN),
            store: true,
        }
    }
}

async fn fixture(setup: Setup) -> Fixture {
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
        listen: None,
        token: setup.token.map(str::to_owned),
        store: setup.store.then_some(store_path),
    };
    let (app, observer) = http::app(options, site.clone());
    Fixture {
        app,
        site,
        devs,
        _store_dir: store_dir,
        _bridge: bridge,
        _broker: broker,
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
            })
            .unwrap();
    }
    store.append_event(1_000, None, "started").unwrap();
}

struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap().to_owned()
    }
}

impl Fixture {
    async fn call(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            content_type,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call("GET", uri, &[], "").await
    }

    async fn put(&self, uri: &str, body: &str) -> Answer {
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

    fn bay(&self, dev: &str) -> ctrl22_bridge::site::snapshot::BaySnapshot {
        self.site
            .snapshot()
            .bays
            .iter()
            .find(|b| b.dev == dev)
            .unwrap()
            .clone()
    }

    /// `ctrl22_rejected_input_total{kind="http"}` as the site counts it.
    async fn rejected_http(&self) -> u64 {
        // The count travels to the site task by message and shows in its next snapshot.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        self.site
            .snapshot()
            .rejected
            .get("http")
            .copied()
            .unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_site_bays_health_docs_and_dashboard() {
    let f = fixture(Setup::default()).await;

    let site = f.get("/api/v1/site").await;
    assert_eq!(site.status, StatusCode::OK);
    let site = site.json();
    assert_eq!(site["limit_a"], json!([32.0, 32.0, 32.0]));
    assert_eq!(site["mesh_connected"], json!(true));
    assert!(site.get("bays").is_none(), "bays have their own resource");

    let nodes = f.get("/api/v1/nodes").await.json();
    assert_eq!(nodes.as_array().unwrap().len(), BAYS);
    let dev = &f.devs[0];
    let node = f.get(&format!("/api/v1/nodes/{dev}")).await;
    assert_eq!(node.status, StatusCode::OK);
    assert_eq!(node.json()["dev"], json!(dev));
    let missing = f.get("/api/v1/nodes/001122334455").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.error().contains("001122334455"));

    assert_eq!(f.get("/healthz").await.status, StatusCode::OK);
    let ready = f.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);

    let unknown = f.get("/api/v1/nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(!unknown.error().is_empty());

    // The OpenAPI document parses and describes every API route.
    let doc = f.get("/api/v1/openapi.json").await.json();
    assert_eq!(doc["openapi"], json!("3.1.0"));
    for path in [
        "/api/v1/site",
        "/api/v1/nodes",
        "/api/v1/nodes/{dev}",
        "/api/v1/nodes/{dev}/{action}",
        "/api/v1/sessions",
        "/api/v1/events",
        "/api/v1/history",
        "/api/v1/stream",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} not in openapi.json"
        );
    }

    // The dashboard and its assets come from the binary, with nothing from elsewhere.
    let page = f.get("/").await;
    assert!(page.content_type.starts_with("text/html"));
    for asset in ["/app.js", "/style.css", "/favicon.svg"] {
        assert!(page.text.contains(asset), "{asset} not linked");
        let answer = f.get(asset).await;
        assert_eq!(answer.status, StatusCode::OK, "{asset}");
        assert!(!answer.text.is_empty());
    }
    assert!(!page.text.contains("http://") && !page.text.contains("https://"));

    let history = f.get("/api/v1/history").await;
    assert_eq!(history.status, StatusCode::OK);
    assert!(!history.json().as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_change_through_put_and_buttons() {
    let f = fixture(Setup::default()).await;
    let dev = &f.devs[1];
    let uri = format!("/api/v1/nodes/{dev}");
    let answer = f
        .put(
            &uri,
            r#"{"mode":"pv","max_current":16,"name":"Bay 3","priority":1,"departure":"07:30","target_energy_kwh":20,"enabled":true}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json()["mode"], json!("pv"));
    let bay = f.bay(dev);
    assert_eq!(bay.settings.name, "Bay 3");
    assert_eq!(bay.settings.max_current.get(), 160);
    assert_eq!(bay.settings.priority, 1);
    assert_eq!(bay.settings.departure.unwrap().to_string(), "07:30");
    assert_eq!(bay.settings.target_energy_wh, Some(20_000));

    // null clears the departure.
    let answer = f.put(&uri, r#"{"departure":null}"#).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(f.bay(dev).settings.departure, None);

    let answer = f
        .put(
            "/api/v1/site",
            r#"{"strategy":"priority","max_current":[32,32,25]}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json()["strategy"], json!("priority"));
    assert_eq!(f.site.snapshot().limit_a, [32.0, 32.0, 25.0]);

    let auth = format!("Bearer {TOKEN}");
    for action in ["start", "stop"] {
        let answer = f
            .call(
                "POST",
                &format!("{uri}/{action}"),
                &[("authorization", &auth)],
                "",
            )
            .await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
    }
    let answer = f
        .call(
            "POST",
            &format!("{uri}/explode"),
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = f
        .call(
            "POST",
            "/api/v1/nodes/001122334455/start",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_bay_can_be_neither_released_nor_forgotten() {
    let f = fixture(Setup::default()).await;
    let dev = &f.devs[0];
    let uri = format!("/api/v1/nodes/{dev}");
    let auth = format!("Bearer {TOKEN}");
    let release = f
        .call(
            "POST",
            &format!("{uri}/release"),
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(release.status, StatusCode::BAD_REQUEST, "{}", release.text);
    assert!(release.error().contains("online"), "{}", release.text);
    let forget = f
        .call("DELETE", &uri, &[("authorization", &auth)], "")
        .await;
    assert_eq!(forget.status, StatusCode::BAD_REQUEST, "{}", forget.text);
    assert!(forget.error().contains("online"), "{}", forget.text);
    assert!(f.bay(dev).online, "still there");
    let unknown = f
        .call(
            "DELETE",
            "/api/v1/nodes/001122334455",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let anonymous = f.call("DELETE", &uri, &[], "").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_change_nothing_and_are_counted() {
    let f = fixture(Setup::default()).await;
    let dev = &f.devs[0];
    let uri = format!("/api/v1/nodes/{dev}");
    let before = f.bay(dev).settings;
    let body = r#"{"mode":"off"}"#;

    let none = f.call("PUT", &uri, &[], body).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.error().contains("bearer"), "{}", none.text);
    let wrong = f
        .call("PUT", &uri, &[("authorization", "Bearer nope")], body)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.error(), "wrong token");
    let basic = f
        .call(
            "PUT",
            &uri,
            &[("authorization", &format!("Basic {TOKEN}"))],
            body,
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    let button = f.call("POST", &format!("{uri}/stop"), &[], "").await;
    assert_eq!(button.status, StatusCode::UNAUTHORIZED);

    assert_eq!(f.bay(dev).settings, before);
    assert_eq!(f.rejected_http().await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_api_is_read_only() {
    let f = fixture(Setup {
        token: None,
        store: true,
    })
    .await;
    let dev = &f.devs[0];
    let answer = f
        .put(&format!("/api/v1/nodes/{dev}"), r#"{"mode":"off"}"#)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.error().contains("read-only"));
    assert_eq!(
        f.put("/api/v1/site", r#"{"strategy":"fcfs"}"#).await.status,
        StatusCode::FORBIDDEN
    );
    assert_ne!(
        f.bay(dev).settings.mode,
        Some(ctrl22_bridge::allocate::ChargeMode::Off)
    );
    assert_eq!(f.get("/api/v1/site").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_and_out_of_range_settings_change_nothing() {
    let f = fixture(Setup::default()).await;
    let dev = &f.devs[2];
    let uri = format!("/api/v1/nodes/{dev}");
    let before = f.bay(dev).settings;
    let site_before = f.site.snapshot().limit_a;

    let cases: &[(&str, &str, StatusCode, &str)] = &[
        (
            &uri,
            "{not json",
            StatusCode::BAD_REQUEST,
            "not a settings object",
        ),
        (
            &uri,
            "[1,2]",
            StatusCode::BAD_REQUEST,
            "not a settings object",
        ),
        (
            &uri,
            r#"{"colour":"red"}"#,
            StatusCode::BAD_REQUEST,
            "unknown field `colour`",
        ),
        (
            &uri,
            r#"{"mode":"turbo"}"#,
            StatusCode::BAD_REQUEST,
            "turbo",
        ),
        (
            &uri,
            r#"{"max_current":"16"}"#,
            StatusCode::BAD_REQUEST,
            "invalid type",
        ),
        (
            &uri,
            r#"{"departure":"25:00"}"#,
            StatusCode::BAD_REQUEST,
            "HH:MM",
        ),
        (&uri, "{}", StatusCode::BAD_REQUEST, "no settings"),
        (
            &uri,
            r#"{"max_current":99}"#,
            StatusCode::BAD_REQUEST,
            "6-80 A",
        ),
        (
            &uri,
            r#"{"max_current":3}"#,
            StatusCode::BAD_REQUEST,
            "6-80 A",
        ),
        (
            &uri,
            r#"{"priority":5000}"#,
            StatusCode::BAD_REQUEST,
            "priority",
        ),
        (
            &uri,
            r#"{"target_energy_kwh":-1}"#,
            StatusCode::BAD_REQUEST,
            "0-200 kWh",
        ),
        (&uri, r#"{"name":"   "}"#, StatusCode::BAD_REQUEST, "1-64"),
        // All or nothing: the good settings before and after the bad one stay unchanged.
        (
            &uri,
            r#"{"name":"Kept?","mode":"off","max_current":100}"#,
            StatusCode::BAD_REQUEST,
            "6-80 A",
        ),
        (
            &uri,
            r#"{"max_current":10,"priority":1,"target_energy_kwh":500}"#,
            StatusCode::BAD_REQUEST,
            "0-200 kWh",
        ),
        (
            "/api/v1/nodes/001122334455",
            r#"{"mode":"off"}"#,
            StatusCode::NOT_FOUND,
            "no bay",
        ),
        (
            "/api/v1/site",
            r#"{"max_current":[32,32,5000]}"#,
            StatusCode::BAD_REQUEST,
            "0-3200 A",
        ),
        (
            "/api/v1/site",
            r#"{"max_current":[32,32]}"#,
            StatusCode::BAD_REQUEST,
            "not a settings object",
        ),
        (
            "/api/v1/site",
            r#"{"strategy":"fcfs","max_current":[10,-1,10]}"#,
            StatusCode::BAD_REQUEST,
            "0-3200 A",
        ),
        (
            "/api/v1/site",
            r#"{"voltage":400}"#,
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
    ];
    for (uri, body, status, message) in cases {
        let answer = f.put(uri, body).await;
        assert_eq!(answer.status, *status, "{uri} {body}: {}", answer.text);
        assert!(
            answer.error().contains(message),
            "{uri} {body}: {:?} does not say {message:?}",
            answer.error()
        );
    }
    assert_eq!(f.bay(dev).settings, before);
    let site = f.site.snapshot();
    assert_eq!(site.limit_a, site_before);
    assert_eq!(site.strategy, ctrl22_bridge::allocate::Strategy::Fair);

    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(BODY_LIMIT_BYTES));
    assert_eq!(
        f.put(&uri, &huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(f.bay(dev).settings, before);

    assert!(f.rejected_http().await >= u64::try_from(cases.len()).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_as_json_and_csv_with_filters_and_events() {
    let f = fixture(Setup::default()).await;
    let all = f.get("/api/v1/sessions").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.json().as_array().unwrap().len(), 2);

    let day2 = f
        .get("/api/v1/sessions?from=1970-01-03&to=1970-01-04")
        .await
        .json();
    assert_eq!(day2.as_array().unwrap().len(), 1);
    assert_eq!(day2[0]["bay"], json!("aa0000000002"));
    let by_bay = f
        .get("/api/v1/sessions?bay=aa0000000001&limit=5")
        .await
        .json();
    assert_eq!(by_bay.as_array().unwrap().len(), 1);
    let by_ms = f.get("/api/v1/sessions?from=172800000").await.json();
    assert_eq!(by_ms.as_array().unwrap().len(), 1);

    let csv = f
        .call("GET", "/api/v1/sessions", &[("accept", "text/csv")], "")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.content_type.starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", csv.text);
    assert!(lines[0].starts_with("id,bay,started"));
    assert!(lines[1].contains("'=cmd"), "formula defused: {}", lines[1]);
    let csv2 = f.get("/api/v1/sessions?format=csv&bay=aa0000000002").await;
    assert_eq!(csv2.text.lines().count(), 2);

    for bad in [
        "/api/v1/sessions?from=yesterday",
        "/api/v1/sessions?to=2026-13-01",
        "/api/v1/sessions?format=xml",
        "/api/v1/sessions?limit=-1",
        "/api/v1/sessions?colour=red",
    ] {
        let answer = f.get(bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!answer.error().is_empty());
    }

    let events = f.get("/api/v1/events?limit=10").await;
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(events.json()[0]["text"], json!("started"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_sessions_are_unavailable_but_ready() {
    let f = fixture(Setup {
        token: Some(TOKEN),
        store: false,
    })
    .await;
    let answer = f.get("/api/v1/sessions").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.error().contains("no store"));
    assert_eq!(f.get("/readyz").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_prometheus_text() {
    let f = fixture(Setup::default()).await;
    // One refused request, so the rejected counter has a row.
    f.put("/api/v1/site", "{").await;
    f.rejected_http().await;
    let answer = f.get("/metrics").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer
        .content_type
        .starts_with("application/openmetrics-text"));
    let text = &answer.text;
    let dev = &f.devs[0];
    for needle in [
        format!("ctrl22_bay_current_amperes{{bay=\"{dev}\",phase=\"L1\"}}"),
        format!("ctrl22_bay_power_watts{{bay=\"{dev}\"}}"),
        format!("ctrl22_bay_energy_wh_total{{bay=\"{dev}\"}}"),
        format!("ctrl22_bay_state{{bay=\"{dev}\",state=\""),
        format!("ctrl22_bay_online{{bay=\"{dev}\"}} 1"),
        "ctrl22_site_reserved_amperes{phase=\"L3\"}".to_owned(),
        "ctrl22_site_limit_amperes{phase=\"L1\"} 32".to_owned(),
        "ctrl22_site_measured_amperes{phase=\"L2\"}".to_owned(),
        "ctrl22_rejected_input_total{kind=\"http\"} 1".to_owned(),
        "ctrl22_mesh_connected 1".to_owned(),
        "# TYPE ctrl22_control_cycle_seconds histogram".to_owned(),
        "ctrl22_control_cycle_seconds_bucket{le=\"+Inf\"}".to_owned(),
        "# TYPE ctrl22_bay_energy_wh counter".to_owned(),
        "# EOF".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle} missing in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_sends_snapshots_at_most_once_a_second() {
    let f = fixture(Setup::default()).await;
    let response = f
        .app
        .clone()
        .oneshot(Request::get("/api/v1/stream").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = response.into_body().into_data_stream();
    let started = tokio::time::Instant::now();
    let mut events = 0;
    let mut text = String::new();
    while events < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        events = text.matches("event: snapshot").count();
    }
    // The first at once, then one a second: three take at least two seconds.
    assert!(started.elapsed() >= Duration::from_millis(1900));
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let snapshot: Value = serde_json::from_str(data).unwrap();
    assert_eq!(snapshot["bays"].as_array().unwrap().len(), BAYS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_when_the_store_cannot_open_and_the_server_listens() {
    let f = fixture(Setup::default()).await;
    // A store under a file: the directory cannot exist.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let options = HttpOptions {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        token: None,
        store: Some(blocker.path().join("sub/http.db")),
    };
    let server = http::spawn(options, f.site.clone()).await.unwrap();
    let addr = server.addr;
    let get = |path: &'static str| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut text = String::new();
        tcp.read_to_string(&mut text).await.unwrap();
        text
    };
    assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
    let ready = get("/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains("cannot open the store"), "{ready}");
    drop(server);

    // The port is taken: spawn says so.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let options = HttpOptions {
        listen: Some(taken.local_addr().unwrap()),
        ..HttpOptions::default()
    };
    let e = http::spawn(options, f.site.clone()).await.unwrap_err();
    assert!(format!("{e:#}").contains("[http] listen"), "{e:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_the_mesh_link_is_down() {
    let mut config = Config::default();
    // Nothing listens there: the link never comes up.
    config.mqtt.url = format!("mqtt://127.0.0.1:{}", ctrl22_testkit::free_port().unwrap());
    let store_dir = tempfile::tempdir().unwrap();
    config.storage.path = store_dir.path().join("readyz.db");
    let bridge = Bridge::start(&config).await.unwrap();
    let (app, _observer) = http::app(HttpOptions::default(), bridge.handle.clone());
    let response = app
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&text).contains("mesh link down"));
}
