//! SIGKILL of the bridge while cars charge under OCPP, restarted 1 s later with the cars
//! still plugged in (`ocpp_durability` covers a kill after the car left): the fuse holds
//! throughout, the lifetime energy register continues from the stored total, and the backend
//! sees one StartTransaction and one StopTransaction per session, the register never going
//! down between them.

use std::time::Duration;

use anyhow::ensure;
use ctrl22_testkit::sim::Simulator;

use super::{bay_metric, leave_all, site};
use crate::ocpp_durability::{delivered_once, transaction_messages};
use crate::ocpp_peer::{Peer, PeerProcess};
use crate::ocpp_session::enable_ocpp;

const STEP: Duration = Duration::from_secs(20);
const ENERGY: &str = "ctrl22_bay_energy_wh";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_bridge_resumes_the_running_sessions_exactly_once() -> anyhow::Result<()> {
    let peer = PeerProcess::start(&Peer::python()?, &[]).await?;
    let (site, http) = site(3, |_| {}).await?;
    enable_ocpp(&site, &peer.url(), "")?;
    let mut bridge = site.bridge()?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 2, 5);
    let wire = site.wire();
    for cp in &simulator.devs {
        peer.wait_for(STEP, "transaction MeterValues", |l| {
            l["cp"] == cp.as_str()
                && l["action"] == "MeterValues"
                && l["payload"]["transactionId"].is_number()
        })
        .await?;
    }
    // Some whole Wh on every register, so that continuing from the stored total shows.
    let deadline = tokio::time::Instant::now() + STEP;
    let before = loop {
        let mut before = Vec::new();
        for dev in &simulator.devs {
            before.push(bay_metric(http, ENERGY, dev).await?);
        }
        if before.iter().all(|wh| *wh >= 3.0) {
            break before;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "registers {before:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    bridge.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _bridge = site.bridge()?;
    let restarted_at = peer.lines().len();
    for cp in &simulator.devs {
        peer.wait_from(restarted_at, STEP, "MeterValues after the restart", |l| {
            l["cp"] == cp.as_str()
                && l["action"] == "MeterValues"
                && l["payload"]["transactionId"].is_number()
        })
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (dev, before) in simulator.devs.iter().zip(&before) {
        let after = bay_metric(http, ENERGY, dev).await?;
        // Stored every whole Wh: at most one is lost in the kill.
        ensure!(
            after >= before - 1.0 && after > *before,
            "{dev}: register {before} Wh before the kill, {after} Wh after"
        );
        eprintln!("{dev}: register {before} Wh before the kill, {after} Wh after");
    }

    leave_all(&site, &simulator).await?;
    for cp in &simulator.devs {
        peer.wait_for(STEP, "StopTransaction", |l| {
            l["cp"] == cp.as_str() && l["action"] == "StopTransaction"
        })
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = wire.check("around the kill")?;

    let lines = peer.lines();
    for cp in &simulator.devs {
        let delivered = transaction_messages(&lines, cp);
        let repeats = delivered_once(&delivered)?;
        ensure!(repeats <= 1, "{repeats} repeats: {delivered:#?}");
        eprintln!(
            "{cp}: {} transaction messages, {repeats} repeated",
            delivered.len()
        );
    }
    eprintln!("SIGKILL: {stats:?}");
    simulator.stop().await;
    Ok(())
}
