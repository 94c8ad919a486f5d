//! The broker is not there when the bridge starts and comes 5 s later: the bridge keeps
//! retrying with back-off (no crash, no busy loop), connects, and the first allocation
//! follows; the fuse holds from the first write on.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::ensure;
use ctrl22_testkit::bridge::{BridgeConfig, BridgeProcess};
use ctrl22_testkit::scenario::Wire;
use ctrl22_testkit::sim::Simulator;
use ctrl22_testkit::wire::{WireMessage, WireRecord};
use ctrl22_testkit::{free_port, Mosquitto, Recorder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_started_before_its_broker_connects_once_it_comes() -> anyhow::Result<()> {
    let port = free_port()?;
    let dir = tempfile::tempdir()?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let bridge_config = BridgeConfig {
        http_listen: http,
        ..BridgeConfig::new(format!("mqtt://127.0.0.1:{port}"))
    };
    let config = bridge_config.write(dir.path())?;
    let (mut bridge, log) = BridgeProcess::start_logged(crate::bridge_binary(), &config, &[])?;

    tokio::time::sleep(Duration::from_secs(5)).await;
    ensure!(bridge.is_running(), "the bridge gave up without a broker");
    // Retrying is not an error worth a line per attempt.
    let retries_logged = log.lines().len();
    ensure!(
        retries_logged <= 5,
        "{retries_logged} lines while waiting for the broker: {:#?}",
        log.lines()
    );

    let broker = Mosquitto::start_on(port)?;
    let came_at = Instant::now();
    let watcher = Recorder::connect(port, "e2e-watcher", &["/DEMESH/#"]).await?;
    let simulator = Simulator::start(&broker, &bridge_config.mesh_id, 2, 3);
    let wire = Wire::new(
        &bridge_config.mesh_id,
        bridge_config.limit_deciamps(),
        || watcher.messages(),
    );
    wire.wait_charging(0, 2, Duration::from_secs(30)).await?;
    let first_write = watcher
        .messages()
        .iter()
        .find(|r| {
            matches!(
                r.decode(&bridge_config.mesh_id),
                Some(WireMessage::Command { .. })
            )
        })
        .map(|r| r.at.duration_since(came_at));
    // The back-off tops out at 30 s but has not grown that far after 5 s; the start-up
    // grace (one heartbeat timeout, 3 s) comes on top.
    ensure!(
        first_write.is_some_and(|d| d < Duration::from_secs(10)),
        "first write {first_write:?} after the broker came"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = wire.check("after a late broker")?;
    ensure!(bridge.is_running());
    eprintln!("late broker: first write {first_write:?} after it came, {stats:?}");
    simulator.stop().await;
    Ok(())
}
