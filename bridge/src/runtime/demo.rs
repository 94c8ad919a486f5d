//! `ctrl22-bridge demo`: the whole product in one process with nothing to install: an
//! embedded MQTT broker, simulated bays running the real charge-controller logic, a
//! simulated PV day with a house behind a grid meter, and the bridge itself with Home
//! Assistant discovery on that broker.
//!
//! It tells the story in a minute: it starts at mid-morning of a sunny day with a car at
//! every bay, a fuse too small to feed them all at full power, the bays in `pv`, `minpv`,
//! `now` and `schedule` in turn, and a house load that swings per phase, so the dashboard
//! shows sharing, solar following, a paused bay taking its turn and the house load.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use ctrl22_node::sim::{self, Arrivals, SimConfig, SimWorld};

use super::Bridge;
use ctrl22_node::mesh::MacAddr;

use crate::allocate::ChargeMode;
use crate::bay::{BayId, Deciamps};
use crate::config::site::PhaseAmps;
use crate::config::NodeConfig;
use crate::config::{Config, DemoArgs};
use crate::site::record::Departure;
use crate::site::SettingChange;
use crate::solar::simulated::SimulatedSite;

/// The bays' modes, in turn: mostly following the sun, one charging at once, one with a
/// departure goal.
const MODES: [ChargeMode; 8] = [
    ChargeMode::Pv,
    ChargeMode::MinPv,
    ChargeMode::Now,
    ChargeMode::Pv,
    ChargeMode::Pv,
    ChargeMode::Schedule,
    ChargeMode::Pv,
    ChargeMode::Pv,
];

/// One simulated PV day lasts this long at speed 1, so a demo shows a whole day's swing.
const DEMO_DAY: Duration = Duration::from_secs(20 * 60);

/// The configuration `demo` runs with, for the simulated bays `macs`.
#[must_use]
pub fn demo_config(args: &DemoArgs, broker_url: String, macs: &[MacAddr]) -> Config {
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
    // A fuse too small for every car at full power, shared with a house behind a meter.
    config.site.max_current = [Deciamps::from_amps(40); 3];
    config.site.house_reserve = Some(PhaseAmps([Deciamps::from_amps(16); 3]));
    // The day lasts 20 minutes: the timers shrink with it so that turns and solar starts
    // happen while someone watches.
    config.site.rotation_period = Duration::from_secs(120);
    config.site.min_on = Duration::from_secs(45);
    config.site.min_off = Duration::from_secs(30);
    config.site.surplus.enable_delay = Duration::from_secs(15);
    config.site.surplus.disable_delay = Duration::from_secs(45);
    config.site.surplus.smoothing = Duration::from_secs(5);
    for (i, mac) in macs.iter().enumerate() {
        let mode = MODES[i % MODES.len()];
        let node = NodeConfig {
            name: Some(format!("Bay {} ({})", i + 1, mode_word(mode))),
            mode: Some(mode),
            // Grid-fed bays get less, so the sun has something left for the others.
            max_current: Some(Deciamps::from_amps(match mode {
                ChargeMode::Now | ChargeMode::Schedule => 8,
                _ => 16,
            })),
            ..NodeConfig::default()
        };
        config.nodes.insert(mac.topic_form().to_string(), node);
    }
    config
}

fn mode_word(mode: ChargeMode) -> &'static str {
    match mode {
        ChargeMode::Off => "off",
        ChargeMode::Now => "now",
        ChargeMode::MinPv => "minpv",
        ChargeMode::Pv => "pv",
        ChargeMode::Schedule => "schedule",
    }
}

/// The `schedule` bays leave in three hours and want 12 kWh by then.
async fn set_departures(config: &Config, handle: &crate::handle::SiteHandle) {
    let zone = config.site.time_zone();
    let Ok(leave) = jiff::Timestamp::now().checked_add(jiff::Span::new().hours(3)) else {
        return;
    };
    let leave = leave.to_zoned_datetime(zone);
    let departure = Departure {
        hour: u8::try_from(leave.hour()).unwrap_or(0),
        minute: u8::try_from(leave.minute()).unwrap_or(0),
    };
    for (dev, node) in &config.nodes {
        if node.mode != Some(ChargeMode::Schedule) {
            continue;
        }
        let bay = BayId(dev.clone());
        let changes = vec![
            SettingChange::BayDeparture {
                bay: bay.clone(),
                departure: Some(departure),
            },
            SettingChange::BayTargetEnergy { bay, kwh: 12.0 },
        ];
        if let Err(e) = handle.apply_all(changes).await {
            tracing::warn!("demo: departure of {dev}: {e}");
        }
    }
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
    let speed = args.speed;
    let sim = SimConfig {
        nodes: usize::try_from(args.nodes).unwrap_or(usize::MAX),
        seed: 1,
        heartbeat_ms: 5_000,
        speed,
        arrivals: Arrivals::AllPlugged,
        mesh_id: crate::config::MeshConfig::default().mesh_id,
    };
    let world = SimWorld::new(sim.clone());
    let macs: Vec<MacAddr> = world.macs().collect();
    let config = demo_config(&args, broker.url(), &macs);
    let bridge = Bridge::start(&config).await?;
    set_departures(&config, &bridge.handle).await;
    // Home Assistant discovery on the embedded broker: what a HA would see is there to look at.
    crate::ha::spawn(&config, bridge.handle.clone())?;
    let http = crate::http::spawn(
        crate::http::HttpOptions {
            link: Some(bridge.traffic.clone()),
            ..crate::http::HttpOptions::demo(args.http)
        },
        bridge.handle.clone(),
    )
    .await
    .context("--http")?;

    let day_ms = DEMO_DAY.as_secs_f64() * 1000.0 / speed.max(0.001);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // positive, bounded
    let day_ms = day_ms.clamp(1_000.0, 1e12) as u64;
    let site = SimulatedSite {
        peak_w: 30_000.0,
        day_ms,
        // Mid-morning: the sun is up and still rising.
        start_of_day: 0.38,
        house_base_a: [4.0, 2.0, 2.0],
        house_swing_a: [12.0, 5.0, 4.0],
        swing_ms: day_ms / 8,
        voltage: f64::from(config.site.voltage),
    };
    crate::solar::simulated::spawn(site, bridge.handle.clone(), Duration::from_secs(2));

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
        "  PV and house  simulated, one day every {} s from mid-morning, grid meter per phase",
        day_ms / 1000
    );
    println!(
        "  site fuse     3 x 40 A, shared by the house and the cars (pv, minpv, now, schedule)"
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
