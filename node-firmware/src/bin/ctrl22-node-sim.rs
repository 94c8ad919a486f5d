//! `ctrl22-node-sim`: N simulated CTRL22 bays behind one mesh root, talking to a host over
//! MQTT (like the real root) or the root's plain TCP uplink. A load generator and a test
//! double that runs the real charge-controller state machine.

use std::process::ExitCode;

use clap::Parser;
use ctrl22_node::sim::{run_mqtt, run_tcp, Arrivals, SimConfig, SimError, SimWorld};

/// Simulate N CTRL22 charging bays (ESP32 mesh node + AVR charge controller + a car each).
#[derive(Debug, Parser)]
#[command(name = "ctrl22-node-sim", version)]
struct Args {
    /// MQTT broker of the mesh root, mqtt://HOST[:PORT]; not needed with --uplink.
    #[arg(long, required_unless_present = "uplink")]
    broker: Option<String>,
    /// Mesh id: the MQTT topic root.
    #[arg(long, default_value = "DEMESH")]
    mesh_id: String,
    /// Number of bays (mesh nodes).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    nodes: u32,
    /// Heartbeat period of every node, ms.
    #[arg(long = "heartbeat", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(100..))]
    heartbeat_ms: u32,
    /// Seed of every random choice (MACs, cars, arrivals); same seed, same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run simulated time this many times faster than wall time.
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    speed: f64,
    /// Use the root's TCP uplink instead of MQTT: tcp://HOST:PORT.
    #[arg(long)]
    uplink: Option<String>,
    /// When cars come: random, all-plugged (every bay has a car at start) or none.
    #[arg(long, default_value = "random")]
    arrivals: Arrivals,
    /// Where the root downloads ESP32 firmware after `upgrade`, HOST:PORT (the bridge's
    /// image server); default: the broker's host, port 8071.
    #[arg(long)]
    fw_server: Option<String>,
}

/// The broker's host with the firmware server's default port.
fn default_fw_server(broker: Option<&str>) -> Option<String> {
    let rest = broker?.strip_prefix("mqtt://")?;
    let host = match rest.rsplit_once(':') {
        Some((host, _)) => host,
        None => rest,
    };
    Some(format!("{host}:8071"))
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(speed) if speed.is_finite() && speed > 0.0 => Ok(speed),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

/// Where the root sends its traffic.
enum Uplink {
    Mqtt(String),
    Tcp(String),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let fw_server = args
        .fw_server
        .clone()
        .or_else(|| default_fw_server(args.broker.as_deref()));
    let uplink = match (args.uplink, args.broker) {
        (Some(addr), _) => Uplink::Tcp(addr),
        (None, Some(url)) => Uplink::Mqtt(url),
        (None, None) => {
            eprintln!("error: --broker URL or --uplink tcp://HOST:PORT is required");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = SimConfig {
        nodes: args.nodes as usize,
        seed: args.seed,
        heartbeat_ms: args.heartbeat_ms,
        speed: args.speed,
        arrivals: args.arrivals,
        mesh_id: args.mesh_id,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let mut world = SimWorld::new(config.clone());
        world.set_fw_server(fw_server);
        tracing::info!(
            nodes = config.nodes,
            root = %world.root_mac(),
            seed = config.seed,
            "simulating"
        );
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match &uplink {
            Uplink::Tcp(addr) => run_tcp(world, addr, config.speed, shutdown).await,
            Uplink::Mqtt(url) => {
                run_mqtt(world, url, &config.mesh_id, config.speed, shutdown).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(match e {
                SimError::BrokerUrl(_)
                | SimError::MeshId(_)
                | SimError::UplinkAddr(_)
                | SimError::Speed(_) => 2,
                SimError::MqttClosed => 1,
            })
        }
    }
}
