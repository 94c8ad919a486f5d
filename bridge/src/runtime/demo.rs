//! `ctrl22-bridge demo`: the whole product in one process with nothing to install: an
//! embedded MQTT broker, simulated bays running the real charge-controller logic, a
//! simulated PV day, and the bridge itself with Home Assistant discovery on that broker.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use ctrl22_node::sim::{self, Arrivals, SimConfig, SimWorld};

use super::Bridge;
use crate::config::{Config, DemoArgs};
use crate::solar::simulated::SimulatedPv;

/// One simulated PV day lasts this long at speed 1, so a demo shows a whole day's swing.
const DEMO_DAY: Duration = Duration::from_secs(20 * 60);

/// The configuration `demo` runs with.
#[must_use]
pub fn demo_config(args: &DemoArgs, broker_url: String) -> Config {
    let mut config = Config::default();
    config.mqtt.url = broker_url;
    config.mqtt.client_id = "ctrl22-demo".to_owned();
    config.site.name = "demo".to_owned();
    config.http.listen = args.http;
    // A fresh store per demo run, next to the other temporary files.
    config.storage.path =
        std::env::temp_dir().join(format!("ctrl22-demo-{}.db", std::process::id()));
    // Simulated bays report every 5 s of their time: offline (and the start-up grace before
    // the first raise) after 10 s of wall time is plenty even at speed 1.
    config.mesh.heartbeat_timeout = Duration::from_secs(10);
    config
}

/// Runs the demo until `shutdown`.
///
/// # Errors
/// When the broker port is taken or a part cannot start.
pub async fn run(
    args: DemoArgs,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let listen = args
        .mqtt_listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let broker = crate::broker::start(listen).context("--mqtt-listen")?;
    let config = demo_config(&args, broker.url());
    let bridge = Bridge::start(&config).await?;
    // Home Assistant discovery on the embedded broker: what a HA would see is there to look at.
    crate::ha::spawn(&config, bridge.handle.clone())?;
    let http = crate::http::spawn(
        crate::http::HttpOptions::demo(args.http),
        bridge.handle.clone(),
    )
    .await
    .context("--http")?;

    let speed = args.speed;
    let day_ms = DEMO_DAY.as_secs_f64() * 1000.0 / speed.max(0.001);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // positive, bounded
    let pv = SimulatedPv {
        peak_w: 11_000.0,
        day_ms: day_ms.clamp(1_000.0, 1e12) as u64,
        house_w: 600.0,
    };
    crate::solar::simulated::spawn(pv, bridge.handle.clone(), Duration::from_secs(2));

    let sim = SimConfig {
        nodes: usize::try_from(args.nodes).unwrap_or(usize::MAX),
        seed: 1,
        heartbeat_ms: 5_000,
        speed,
        arrivals: Arrivals::Random,
        mesh_id: config.mesh.mesh_id.clone(),
    };
    let world = SimWorld::new(sim.clone());
    let url = broker.url();
    let (stop_sim, sim_stopped) = tokio::sync::oneshot::channel::<()>();
    let simulator = tokio::spawn(async move {
        let stopped = async {
            let _ = sim_stopped.await;
        };
        if let Err(e) = sim::run_mqtt(world, &url, &sim.mesh_id, sim.speed, stopped).await {
            tracing::error!("simulator: {e}");
        }
    });

    println!("ctrl22-bridge demo");
    println!("  MQTT broker   {}", broker.url());
    println!("  bays          {} simulated, speed x{speed}", args.nodes);
    println!(
        "  PV            simulated, one day every {:.0} s",
        day_ms / 1000.0
    );
    println!(
        "  dashboard     http://{}/ (token \"{}\")",
        http.addr,
        crate::http::DEMO_TOKEN
    );
    println!(
        "  watch         mosquitto_sub -p {} -t 'ctrl22/#' -v",
        broker.addr.port()
    );
    println!("Ctrl-C stops.");

    let result = bridge.run_until(shutdown).await;
    let _ = stop_sim.send(());
    let _ = simulator.await;
    result
}
