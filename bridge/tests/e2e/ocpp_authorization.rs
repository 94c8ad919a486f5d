//! End to end, `ocpp.authorization = "backend"` against the PyPI central system: a plugged
//! car waits in Preparing (no transaction, no current) until the backend starts it with
//! RemoteStartTransaction; the transaction carries the backend's idTag. `/metrics` counts
//! the session: connected, frames both ways, the CALLERROR for an unknown action.

use std::net::SocketAddr;
use std::time::Duration;

use ctrl22_testkit::sim::Simulator;
use serde_json::json;

use crate::mqtt_site::MqttSite;
use crate::ocpp_peer::{Peer, PeerProcess};
use crate::ocpp_session::enable_ocpp;

const STEP: Duration = Duration::from_secs(20);
/// How long the held car is watched for a start that must not come (several cycles).
const HELD: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugged_car_waits_for_the_backend_to_start_it() -> anyhow::Result<()> {
    let mut cs = PeerProcess::start(&Peer::python()?, &[]).await?;
    let http = SocketAddr::from(([127, 0, 0, 1], ctrl22_testkit::free_port()?));
    let site = MqttSite::start_configured(|c| c.http_listen = http).await?;
    enable_ocpp(&site, &cs.url(), "authorization = \"backend\"")?;
    let mut bridge = site.bridge()?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 1, 21);
    let cp = simulator.devs[0].clone();

    cs.wait_for(STEP, "Preparing", |l| {
        l["kind"] == "recv"
            && l["cp"] == cp.as_str()
            && l["action"] == "StatusNotification"
            && l["payload"]["status"] == "Preparing"
    })
    .await?;
    tokio::time::sleep(HELD).await;
    assert!(
        cs.received(&cp, "StartTransaction").is_empty(),
        "no transaction before the backend's start"
    );
    let charging = |l: &serde_json::Value| {
        l["cp"] == cp.as_str()
            && l["action"] == "StatusNotification"
            && l["payload"]["status"] == "Charging"
    };
    assert!(
        !cs.lines().iter().any(charging),
        "the held car did not charge"
    );

    let remote = cs
        .call(
            &cp,
            "RemoteStartTransaction",
            json!({"connectorId": 1, "idTag": "BACKEND7"}),
        )
        .await?;
    assert_eq!(remote["payload"]["status"], "Accepted", "{remote}");
    let start = cs
        .wait_for(STEP, "StartTransaction", |l| {
            l["kind"] == "recv" && l["cp"] == cp.as_str() && l["action"] == "StartTransaction"
        })
        .await?;
    assert_eq!(start["payload"]["idTag"], "BACKEND7", "{start}");
    cs.wait_for(2 * STEP, "Charging", charging).await?;

    let unknown = cs.raw(&cp, r#"[2,"raw-1","MakeCoffee",{}]"#).await?;
    assert_eq!(unknown[2], "NotImplemented", "{unknown}");
    // Published after the session's next step (the answer went out in it).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = ctrl22_testkit::bridge::http_get(http, "/metrics").await?;
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(f64::NAN)
    };
    assert!(
        (value("ctrl22_ocpp_charge_points") - 1.0).abs() < 1e-9,
        "{text}"
    );
    assert!(
        (value("ctrl22_ocpp_sessions_connected") - 1.0).abs() < 1e-9,
        "{text}"
    );
    assert!(value("ctrl22_ocpp_callerrors_sent_total") >= 1.0, "{text}");
    // Boot, statuses, StartTransaction, meter values and answers.
    assert!(value("ctrl22_ocpp_frames_sent_total") >= 4.0, "{text}");
    assert!(value("ctrl22_ocpp_frames_received_total") >= 3.0, "{text}");
    assert!(value("ctrl22_ocpp_tx_messages_queued") >= 0.0, "{text}");
    bridge.kill();
    simulator.stop().await;
    Ok(())
}
