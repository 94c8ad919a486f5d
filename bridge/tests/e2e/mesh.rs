//! End to end over a real Mosquitto: the bridge binary, 20 simulated bays (the real charge
//! controller of `ctrl22-node` with mixed 1- and 3-phase cars), and a watcher that checks
//! SPEC section 4 on every message of the run, independently of the bridge's own logic.

use ctrl22_testkit::sim::Simulator;

use crate::mqtt_site::MqttSite;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_bays_stay_within_the_fuse_through_kill_and_restart() -> anyhow::Result<()> {
    let site = MqttSite::start().await?;
    let (broker, mesh) = (&site.broker, &site.mesh);

    let bridge = site.bridge()?;
    let simulator = Simulator::start(broker, mesh, 20, 7);

    let wire = site.wire();
    let (stats, mut bridge) = wire.kill_and_restart(bridge, 6, || site.bridge()).await?;
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
    let site = MqttSite::start().await?;
    let (broker, mesh) = (&site.broker, &site.mesh);

    let mut bridge = site.bridge()?;
    let heard = Simulator::start(broker, mesh, 15, 7);
    let silent = Simulator::start(broker, mesh, 5, 8);
    let wire = site.wire();
    wire.wait_charging(0, 4, Duration::from_secs(40)).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    wire.check("before the kill")?;

    bridge.kill();
    silent.stop().await;
    // Longer than the heartbeat timeout (3 s) and the watchdog (6 s) together.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut bridge = site.bridge()?;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let stats = wire.check("restarted, 5 bays silent")?;
    eprintln!("silent: {stats:?}");
    // They come back; still within the limit.
    let back = Simulator::start(broker, mesh, 5, 8);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let stats = wire.check("after the silent bays came back")?;
    eprintln!("whole run: {stats:?}");
    bridge.kill();
    heard.stop().await;
    back.stop().await;
    Ok(())
}
