//! What the solar tests share: a site handle whose requests the test reads, a local
//! device server, sources written as TOML.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ctrl22_bridge::config::{Config, SolarSourceConfig};
use ctrl22_bridge::handle::{SiteHandle, SiteRequest};
use ctrl22_bridge::site::snapshot::SiteSnapshot;
use ctrl22_bridge::site::{PowerReading, SourceId};
use ctrl22_bridge::solar::Health;
use tokio::sync::{broadcast, mpsc, watch};

/// The site's side of the request queue: what the sources told it.
pub struct Site {
    pub requests: mpsc::Receiver<SiteRequest>,
    pub handle: SiteHandle,
    _snapshots: watch::Sender<Arc<SiteSnapshot>>,
}

pub fn site() -> Site {
    let (tx, requests) = mpsc::channel(64);
    let (snapshots, snapshot) = watch::channel(Arc::new(SiteSnapshot::default()));
    let (events, _) = broadcast::channel(8);
    Site {
        requests,
        handle: SiteHandle::new(tx, snapshot, events),
        _snapshots: snapshots,
    }
}

/// A source from its TOML table.
pub fn source(toml_text: &str) -> SolarSourceConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{toml_text}: {e}"))
}

/// Starts pollers for `sources` against `site`; the configuration is validated first, like
/// the bridge does.
pub fn start(site: &Site, sources: Vec<SolarSourceConfig>, mqtt_url: Option<String>) -> Health {
    let mut config = Config::default();
    config.solar.sources = sources;
    if let Some(url) = mqtt_url {
        config.mqtt.url = url;
    }
    config.validate().expect("a valid configuration");
    ctrl22_bridge::solar::spawn(&config, &site.handle).expect("sources start")
}

/// Serves `app` on a loopback port.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A fixture's bytes.
pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inverters")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first power result of each of `count` sources (later ones ignored).
pub async fn first_power_of_each(
    site: &mut Site,
    count: usize,
) -> BTreeMap<u16, Result<PowerReading, String>> {
    let mut seen = BTreeMap::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while seen.len() < count {
            match site.requests.recv().await {
                Some(SiteRequest::Power {
                    source: SourceId(i),
                    reading,
                }) => {
                    seen.entry(i).or_insert(reading);
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {count} sources answered: {seen:?}", seen.len()));
    seen
}
