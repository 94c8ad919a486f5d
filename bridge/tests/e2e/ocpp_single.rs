//! End to end, `layout = "single"`: the site as one charge point with a connector per bay.
//! Each bay's session is a transaction on its connector, and a connector-0
//! ChargePointMaxProfile becomes the site's OCPP limit: the bays together stay under it on
//! the mesh, within the fuse.

use std::time::Duration;

use ctrl22_testkit::sim::Simulator;
use serde_json::json;

use crate::mqtt_site::MqttSite;
use crate::ocpp_peer::{Peer, PeerProcess};
use crate::ocpp_session::{append_config, last_setpoint, ocpp_common};

const STEP: Duration = Duration::from_secs(20);

pub async fn one_charge_point_for_the_site(peer: Peer) -> anyhow::Result<()> {
    let mut cs = PeerProcess::start(&peer, &[]).await?;
    let site = MqttSite::start().await?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 2, 17);
    let nodes: String = simulator
        .devs
        .iter()
        .enumerate()
        .map(|(i, dev)| format!("[nodes.{dev}]\nname = \"Bay {}\"\n", i + 1))
        .collect();
    append_config(
        &site,
        &format!(
            "[ocpp]\nlayout = \"single\"\nidentity = \"lot-{{site}}\"\n{}\n{nodes}",
            ocpp_common(&cs.url())
        ),
    )?;
    let mut bridge = site.bridge()?;
    let cp = "lot-e2e";
    let boot = cs
        .wait_for(STEP, "the site's BootNotification", |l| {
            l["cp"] == cp && l["action"] == "BootNotification"
        })
        .await?;
    assert_eq!(boot["kind"], "recv");
    // A transaction per connector, connectors 1 and 2.
    for connector in [1, 2] {
        cs.wait_for(
            STEP,
            &format!("StartTransaction on connector {connector}"),
            |l| {
                l["cp"] == cp
                    && l["action"] == "StartTransaction"
                    && l["payload"]["connectorId"] == connector
            },
        )
        .await?;
    }
    assert!(
        !cs.lines()
            .iter()
            .any(|l| l["cp"] != cp && l["kind"] == "connected"),
        "one WebSocket for the site"
    );
    let total = |site: &MqttSite| -> i16 {
        simulator
            .devs
            .iter()
            .map(|dev| last_setpoint(site, dev).unwrap_or(0))
            .sum()
    };
    let charging = tokio::time::Instant::now();
    while total(&site) <= 100 {
        anyhow::ensure!(
            charging.elapsed() < STEP,
            "the bays never got more than 10 A together"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = total(&site);
    // ChargePointMaxProfile 10 A on connector 0: both bays together stay under 10 A per phase.
    let profile = json!({"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0,
        "chargingProfilePurpose": "ChargePointMaxProfile", "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": "2020-01-01T00:00:00Z",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}]}}});
    let answer = cs.call(cp, "SetChargingProfile", profile).await?;
    assert_eq!(answer["payload"]["status"], "Accepted", "{answer}");
    let asked = tokio::time::Instant::now();
    loop {
        let total = total(&site);
        if total <= 100 {
            eprintln!(
                "ChargePointMaxProfile -> bays from {before} to {total} dA together after {:?}",
                asked.elapsed()
            );
            break;
        }
        anyhow::ensure!(
            asked.elapsed() < Duration::from_secs(8),
            "the bays still get {total} dA together under a 10 A site profile"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(total(&site) <= 100, "stays under the site profile");
    site.wire().check("under the site's OCPP limit")?;
    bridge.kill();
    simulator.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ocpp_backend_sees_the_site_as_one_charge_point() -> anyhow::Result<()> {
    one_charge_point_for_the_site(Peer::python()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_ocpp_rpc_backend_sees_the_site_as_one_charge_point() -> anyhow::Result<()> {
    one_charge_point_for_the_site(Peer::npm()?).await
}
