//! End to end over a real Mosquitto: the bridge binary, 20 simulated bays (the real charge
//! controller of `ctrl22-node` with mixed 1- and 3-phase cars), and a watcher that checks
//! SPEC section 4 on every message of the run, independently of the bridge's own logic.

use std::path::Path;

use ctrl22_testkit::bridge::{BridgeConfig, BridgeProcess};
use ctrl22_testkit::scenario::Wire;
use ctrl22_testkit::sim::Simulator;
use ctrl22_testkit::{Mosquitto, Recorder};

fn bridge_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ctrl22-bridge"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_bays_stay_within_the_fuse_through_kill_and_restart() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let dir = tempfile::tempdir()?;
    let bridge_config = BridgeConfig::new(broker.url());
    let config = bridge_config.write(dir.path())?;
    let mesh = bridge_config.mesh_id.clone();
    let watcher = Recorder::connect(broker.port(), "e2e-watcher", &["/DEMESH/#"]).await?;

    let bridge = BridgeProcess::start(bridge_binary(), &config)?;
    let simulator = Simulator::start(&broker, &mesh, 20, 7);

    let wire = Wire::new(&mesh, bridge_config.limit_deciamps(), || watcher.messages());
    let (stats, mut bridge) = wire
        .kill_and_restart(bridge, 6, || BridgeProcess::start(bridge_binary(), &config))
        .await?;
    eprintln!("wire stats: {stats:?}");

    bridge.kill();
    simulator.stop().await;
    Ok(())
}

/// The restart of the safety issue: 20 bays charge on 3x32 A, the bridge is killed, and it
/// comes back while 5 of them stay silent for longer than the heartbeat timeout. The
/// restarted bridge must keep what the silent ones may still be drawing reserved (it has it
/// from the store, not from them): the independent wire check counts each silent bay at the
/// last current it was allowed and sees no instant above the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_silent_bays_reserved() -> anyhow::Result<()> {
    use std::time::Duration;
    let broker = Mosquitto::start()?;
    let dir = tempfile::tempdir()?;
    let bridge_config = BridgeConfig::new(broker.url());
    let config = bridge_config.write(dir.path())?;
    let mesh = bridge_config.mesh_id.clone();
    let watcher = Recorder::connect(broker.port(), "e2e-watcher", &["/DEMESH/#"]).await?;

    let mut bridge = BridgeProcess::start(bridge_binary(), &config)?;
    let heard = Simulator::start(&broker, &mesh, 15, 7);
    let silent = Simulator::start(&broker, &mesh, 5, 8);
    let wire = Wire::new(&mesh, bridge_config.limit_deciamps(), || watcher.messages());
    wire.wait_charging(0, 4, Duration::from_secs(40)).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    wire.check("before the kill")?;

    bridge.kill();
    silent.stop().await;
    // Longer than the heartbeat timeout (3 s) and the watchdog (6 s) together.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut bridge = BridgeProcess::start(bridge_binary(), &config)?;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let stats = wire.check("restarted, 5 bays silent")?;
    eprintln!("silent: {stats:?}");
    // They come back; still within the limit.
    let back = Simulator::start(&broker, &mesh, 5, 8);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let stats = wire.check("after the silent bays came back")?;
    eprintln!("whole run: {stats:?}");
    bridge.kill();
    heard.stop().await;
    back.stop().await;
    Ok(())
}
