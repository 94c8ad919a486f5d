//! End to end, Reset during a running session against the PyPI central system: the
//! transaction stops with reason HardReset (from the durable queue, with the meter) and the
//! charge point boots again.

use std::time::Duration;

use ctrl22_testkit::sim::Simulator;
use serde_json::json;

use crate::mqtt_site::MqttSite;
use crate::ocpp_peer::{Peer, PeerProcess};
use crate::ocpp_session::enable_ocpp;

const STEP: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_during_a_session_stops_it_and_boots_again() -> anyhow::Result<()> {
    let mut cs = PeerProcess::start(&Peer::python()?, &[]).await?;
    let site = MqttSite::start().await?;
    enable_ocpp(&site, &cs.url(), "")?;
    let mut bridge = site.bridge()?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 1, 31);
    let cp = simulator.devs[0].clone();

    let start = cs
        .wait_for(STEP, "StartTransaction", |l| {
            l["kind"] == "recv" && l["cp"] == cp.as_str() && l["action"] == "StartTransaction"
        })
        .await?;
    let tx = cs.transaction_id(&cp, STEP).await?;

    let from = cs.lines().len();
    let reset = cs.call(&cp, "Reset", json!({"type": "Hard"})).await?;
    assert_eq!(reset["payload"]["status"], "Accepted", "{reset}");
    let stopped = cs
        .wait_from(from, STEP, "StopTransaction", |l| {
            l["kind"] == "recv" && l["cp"] == cp.as_str() && l["action"] == "StopTransaction"
        })
        .await?["payload"]
        .clone();
    assert_eq!(stopped["transactionId"], tx, "{stopped}");
    assert_eq!(stopped["reason"], "HardReset", "{stopped}");
    let meter_start = start["payload"]["meterStart"].as_f64().unwrap_or(f64::NAN);
    let meter_stop = stopped["meterStop"].as_f64().unwrap_or(f64::NAN);
    assert!(meter_stop >= meter_start, "{meter_stop} < {meter_start}");
    cs.wait_from(from, STEP, "the BootNotification after Reset", |l| {
        l["kind"] == "recv" && l["cp"] == cp.as_str() && l["action"] == "BootNotification"
    })
    .await?;
    // The rebooted charge point reports the stopped bay.
    cs.wait_from(from, STEP, "a status after the boot", |l| {
        l["kind"] == "recv"
            && l["cp"] == cp.as_str()
            && l["action"] == "StatusNotification"
            && ["Finishing", "Preparing", "Available"]
                .iter()
                .any(|s| l["payload"]["status"] == *s)
    })
    .await?;
    let stops = cs.received(&cp, "StopTransaction");
    assert_eq!(stops.len(), 1, "stopped once: {stops:?}");
    bridge.kill();
    simulator.stop().await;
    Ok(())
}
