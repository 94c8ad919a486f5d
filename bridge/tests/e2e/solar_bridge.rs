//! The bridge binary with a `[[solar.sources]]` entry, as an operator runs it: the source is
//! polled and its health is on `/metrics`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use ctrl22_testkit::bridge::{http_get, BridgeConfig, BridgeProcess};
use ctrl22_testkit::{free_port, Mosquitto};

use super::solar_common::{fixture, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_meter_is_polled_and_its_health_is_on_metrics() {
    let meter = serve(axum::Router::new().route(
        "/rpc/EM.GetStatus",
        get(|| async { fixture("shelly_pro3em_em_getstatus.json") }),
    ))
    .await;
    let broker = Mosquitto::start().expect("mosquitto");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BridgeConfig::new(broker.url());
    let http = SocketAddr::from(([127, 0, 0, 1], free_port().expect("port")));
    config.http_listen = http;
    let path = config.write(dir.path()).expect("config");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    write!(
        file,
        "\n[[solar.sources]]\nkind = \"shelly\"\nurl = \"http://{meter}\"\ninterval = \"200ms\"\n\n\
         [[solar.sources]]\nkind = \"fronius\"\nurl = \"http://127.0.0.1:1\"\ninterval = \"200ms\"\n"
    )
    .expect("write");
    drop(file);
    let _bridge = BridgeProcess::start(super::bridge_binary(), &path).expect("bridge");
    let metrics = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(text) = http_get(http, "/metrics").await {
                if text.contains(r#"ctrl22_solar_source_healthy{source="0",device="shelly"} 1"#) {
                    return text;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the shelly source healthy on /metrics");
    assert!(
        metrics.contains(
            r#"ctrl22_solar_source_errors_total{source="1",device="fronius",kind="connect"}"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ctrl22_solar_source_healthy{source="1",device="fronius"} 0"#),
        "{metrics}"
    );
}
