//! `ctrl22-load`: the load generator (`gen`) and the load harness (`run`). See BENCHMARKS.md.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use ctrl22_load::generator::{Generator, GeneratorConfig};
use ctrl22_load::harness::{self, RunConfig};
use ctrl22_load::report;

#[derive(Debug, Parser)]
#[command(version, about = "Load generator and load harness for ctrl22-bridge")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, clap::Args)]
struct Load {
    /// Simulated bays.
    #[arg(long, default_value_t = 1_000)]
    bays: u32,
    /// Heartbeats per second, all bays together (default: 10 per bay, a 100 ms period).
    #[arg(long)]
    rate: Option<f64>,
    /// Publisher connections to the broker.
    #[arg(long, default_value_t = 4)]
    connections: u32,
    /// Plug or unplug events per second, all bays together.
    #[arg(long, default_value_t = 20.0)]
    plug_events: f64,
}

impl Load {
    fn rate(&self) -> f64 {
        self.rate.unwrap_or(f64::from(self.bays) * 10.0)
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Only the generator, against a running broker; prints the rate it sends every second.
    Gen {
        #[command(flatten)]
        load: Load,
        /// Broker, HOST:PORT.
        #[arg(long, default_value = "127.0.0.1:1883")]
        broker: String,
        #[arg(long, default_value = "DEMESH")]
        mesh_id: String,
        /// How long to run (0 = until interrupted).
        #[arg(long, default_value_t = 0)]
        seconds: u64,
        /// Do not take the bridge's commands (a one-way load).
        #[arg(long)]
        one_way: bool,
        /// Send to an in-process discard endpoint instead of --broker: the generator's own
        /// ceiling (implies --one-way).
        #[arg(long)]
        sink: bool,
    },
    /// Mosquitto + generator (+ the bridge): pass-through and bridge ingest, latency, CPU, RSS.
    Run {
        #[command(flatten)]
        load: Load,
        /// The pass-through phase's rate (default: --rate); set it high to find the broker's limit.
        #[arg(long)]
        pass_rate: Option<f64>,
        /// Measurement window of each phase, seconds.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Seconds between starting the load on the bridge and measuring.
        #[arg(long, default_value_t = 15)]
        warmup: u64,
        /// Home Assistant adapter on.
        #[arg(long)]
        ha: bool,
        /// The bridge binary (a release build).
        #[arg(
            long,
            env = "CTRL22_BRIDGE",
            default_value = "target/release/ctrl22-bridge"
        )]
        bridge: PathBuf,
        #[arg(long, env = "MOSQUITTO", default_value = "/usr/sbin/mosquitto")]
        mosquitto: PathBuf,
        /// Site limit per phase, amperes.
        #[arg(long, default_value_t = 3200)]
        limit: u32,
        /// Writes `[site] max_bays = N` into the bridge's configuration (needs a bridge that
        /// has that key; today's refuses unknown keys and keeps 10,000 bays).
        #[arg(long)]
        max_bays: Option<u32>,
        /// Only the broker pass-through phase.
        #[arg(long)]
        pass_only: bool,
        /// Also write the JSON report to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Gen {
            load,
            broker,
            mesh_id,
            seconds,
            one_way,
            sink,
        } => {
            let sunk = Arc::new(AtomicU64::new(0));
            let (broker, _sink) = if sink {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?.to_string();
                (
                    addr,
                    Some(tokio::spawn(ctrl22_load::sink::serve(
                        listener,
                        Arc::clone(&sunk),
                    ))),
                )
            } else {
                (broker, None)
            };
            let generator = Generator::start(GeneratorConfig {
                broker,
                mesh_id,
                bays: load.bays,
                rate: load.rate(),
                connections: load.connections,
                plug_events_per_s: load.plug_events,
                answer_commands: !(one_way || sink),
                client_prefix: "ctrl22-load".to_owned(),
            })
            .await?;
            let started = Instant::now();
            let mut last = generator.counters();
            let mut last_sunk = 0;
            let own_cpu =
                || ctrl22_load::observe::sample(std::process::id()).map_or(0.0, |s| s.cpu_s);
            let mut last_cpu = own_cpu();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = generator.counters();
                let (sunk_now, cpu) = (sunk.load(Ordering::Relaxed), own_cpu());
                println!(
                    "sent={}/s shortfall={}/s plug_changes={} commands={} acks={} cpu={:.0}%{}",
                    now.sent - last.sent,
                    now.shortfall - last.shortfall,
                    now.plug_changes,
                    now.commands,
                    now.acks,
                    (cpu - last_cpu) * 100.0,
                    if sink {
                        format!(" sink={:.1}MB/s", (sunk_now - last_sunk) as f64 / 1e6)
                    } else {
                        String::new()
                    },
                );
                (last, last_sunk, last_cpu) = (now, sunk_now, cpu);
                anyhow::ensure!(!generator.failed(), "a connection to the broker was lost");
                if seconds > 0 && started.elapsed() >= Duration::from_secs(seconds) {
                    return Ok(());
                }
            }
        }
        Cmd::Run {
            load,
            pass_rate,
            seconds,
            warmup,
            ha,
            bridge,
            mosquitto,
            limit,
            max_bays,
            pass_only,
            json,
        } => {
            let report = harness::run(&RunConfig {
                bays: load.bays,
                rate: load.rate(),
                pass_rate,
                seconds,
                warmup_s: warmup,
                home_assistant: ha,
                bridge,
                mosquitto,
                connections: load.connections,
                plug_events_per_s: load.plug_events,
                limit_a: limit,
                max_bays,
                pass_only,
            })
            .await?;
            print!("{}", report::table(&report));
            let text = serde_json::to_string_pretty(&report)?;
            if let Some(path) = json {
                std::fs::write(path, &text)?;
            }
            println!("{text}");
            Ok(())
        }
    }
}
