//! End to end, durable transaction messages: the backend is killed mid-session, the session
//! ends while it is away, the bridge is killed and restarted while it is still away; once
//! both are back, every transaction message arrives exactly once (a CALL whose answer was
//! lost in the kill may come twice, unchanged), in order, with meterStop >= meterStart.

use std::time::Duration;

use ctrl22_testkit::sim::Simulator;
use serde_json::Value;

use crate::mqtt_site::MqttSite;
use crate::ocpp_peer::{Peer, PeerProcess};
use crate::ocpp_session::enable_ocpp;

const STEP: Duration = Duration::from_secs(20);

/// (action, timestamp, meter Wh) of every transaction message `cp` delivered, in order.
pub(crate) fn transaction_messages(lines: &[Value], cp: &str) -> Vec<(String, String, f64)> {
    lines
        .iter()
        .filter(|l| l["kind"] == "recv" && l["cp"] == cp)
        .filter_map(|l| {
            let p = &l["payload"];
            match l["action"].as_str()? {
                "StartTransaction" => Some((
                    "StartTransaction".to_owned(),
                    p["timestamp"].as_str()?.to_owned(),
                    p["meterStart"].as_f64()?,
                )),
                "StopTransaction" => Some((
                    "StopTransaction".to_owned(),
                    p["timestamp"].as_str()?.to_owned(),
                    p["meterStop"].as_f64()?,
                )),
                "MeterValues" if p["transactionId"].is_number() => {
                    let mv = p["meterValue"].get(0)?;
                    let energy = mv["sampledValue"]
                        .as_array()?
                        .iter()
                        .find(|sv| sv["measurand"] == "Energy.Active.Import.Register")?;
                    Some((
                        "MeterValues".to_owned(),
                        mv["timestamp"].as_str()?.to_owned(),
                        energy["value"].as_str()?.parse().ok()?,
                    ))
                }
                _ => None,
            }
        })
        .collect()
}

/// One StartTransaction first and one StopTransaction last, in order (timestamps never go
/// back, the register never goes down); returns how many messages came twice in a row,
/// unchanged (a CALL whose answer was lost, sent again).
pub(crate) fn delivered_once(delivered: &[(String, String, f64)]) -> anyhow::Result<usize> {
    let count = |action: &str| delivered.iter().filter(|m| m.0 == action).count();
    anyhow::ensure!(
        count("StartTransaction") == 1 && count("StopTransaction") == 1,
        "{delivered:#?}"
    );
    anyhow::ensure!(delivered.first().is_some_and(|m| m.0 == "StartTransaction"));
    anyhow::ensure!(delivered.last().is_some_and(|m| m.0 == "StopTransaction"));
    let mut repeats = 0;
    for pair in delivered.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a == b {
            repeats += 1;
            continue;
        }
        anyhow::ensure!(a.1 <= b.1, "out of order: {a:?} then {b:?}");
        anyhow::ensure!(a.2 <= b.2, "register went down: {a:?} then {b:?}");
    }
    Ok(repeats)
}

pub async fn backend_and_bridge_outage(peer: Peer) -> anyhow::Result<()> {
    let port = ctrl22_testkit::free_port()?;
    let mut first = PeerProcess::start_on(&peer, port, &[]).await?;
    let site = MqttSite::start().await?;
    enable_ocpp(&site, &first.url(), "")?;
    let mut bridge = site.bridge()?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 1, 5);
    let cp = simulator.devs[0].clone();

    first
        .wait_for(STEP, "StartTransaction", |l| {
            l["cp"] == cp.as_str() && l["action"] == "StartTransaction"
        })
        .await?;
    first
        .wait_for(STEP, "transaction MeterValues", |l| {
            l["cp"] == cp.as_str()
                && l["action"] == "MeterValues"
                && l["payload"]["transactionId"] == 1001
        })
        .await?;
    // The backend dies mid-session; meter values queue up, then the car leaves.
    first.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    site.watcher
        .publish(&format!("/{}/{cp}/simctl", site.mesh), r#"{"car":"leave"}"#)
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The bridge dies too and comes back while the backend is still away.
    bridge.kill();
    let mut bridge = site.bridge()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = PeerProcess::start_on(&peer, port, &[]).await?;
    second
        .wait_for(2 * STEP, "StopTransaction after the outage", |l| {
            l["cp"] == cp.as_str() && l["action"] == "StopTransaction"
        })
        .await?;
    // Anything still queued behind it has had its chance.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut lines = first.lines();
    lines.extend(second.lines());
    let delivered = transaction_messages(&lines, &cp);
    let repeats = delivered_once(&delivered)?;
    let stop = second
        .received(&cp, "StopTransaction")
        .pop()
        .unwrap_or_default();
    assert_eq!(
        stop["transactionId"], 1001,
        "the backend's id from before the outage"
    );
    // A repeat is only the one message in flight at the kill, sent again unchanged.
    assert!(repeats <= 1, "{repeats} repeats: {delivered:#?}");
    let queued_while_away = second
        .received(&cp, "MeterValues")
        .iter()
        .filter(|p| p["transactionId"] == 1001)
        .count();
    assert!(
        queued_while_away >= 2,
        "meter values of the outage: {delivered:#?}"
    );
    eprintln!(
        "{} transaction messages, {queued_while_away} delivered after the outage, {repeats} repeated",
        delivered.len()
    );
    bridge.kill();
    simulator.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ocpp_backend_gets_every_transaction_message_once_after_an_outage(
) -> anyhow::Result<()> {
    backend_and_bridge_outage(Peer::python()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_ocpp_rpc_backend_gets_every_transaction_message_once_after_an_outage(
) -> anyhow::Result<()> {
    backend_and_bridge_outage(Peer::npm()?).await
}
