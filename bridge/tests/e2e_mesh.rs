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
