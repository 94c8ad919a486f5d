//! The broker restarts mid-session (killed, back on the same port 1 s later, remembering
//! nothing): the bridge reconnects and subscribes anew, the bays charge on, the fuse holds,
//! and the sessions' energy stays within 1 % of what the cars drew: the outage is shorter
//! than the heartbeat timeout, so the last reading bridges it.

use std::time::Duration;

use anyhow::ensure;
use ctrl22_testkit::sim::Simulator;
use ctrl22_testkit::wire::{WireMessage, WireRecord};

use super::{check_energy, end_all_sessions, site};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_session_loses_no_energy_and_no_fuse() -> anyhow::Result<()> {
    let (mut site, http) = site(10, |_| {}).await?;
    let _bridge = site.bridge()?;
    let simulator =
        Simulator::start_world(&site.broker, &site.mesh, 3, 11, super::HEARTBEAT_MS, |_| {});
    let wire = site.wire();
    wire.wait_charging(0, 3, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    drop(wire);

    tokio::task::block_in_place(|| site.broker.restart_after(Duration::from_secs(1)))?;
    let restarted_at = site.watcher.messages().len();
    // The bridge is subscribed again once node messages reach it: it answers them with
    // setpoint writes (refreshes every 2 s at the latest).
    let wire = site.wire();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let records = site.watcher.messages();
        let commands = records
            .get(restarted_at..)
            .unwrap_or_default()
            .iter()
            .filter(|r| matches!(r.decode(&site.mesh), Some(WireMessage::Command { .. })))
            .count();
        if commands >= 3 {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no commands after the broker restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wire.wait_charging(restarted_at, 3, Duration::from_secs(10))
        .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stats = wire.check("around the broker restart")?;
    drop(wire);

    let rows = end_all_sessions(&site, http, &simulator).await?;
    let worst = check_energy(&rows, &simulator)?;
    eprintln!(
        "broker restart: worst energy error {:.3} %, {stats:?}",
        worst * 100.0
    );
    simulator.stop().await;
    Ok(())
}
