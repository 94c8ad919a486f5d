//! The load harness: one Mosquitto on a free port, then two phases against it.
//!
//! 1. **Pass-through**: the generator publishes N bays at the rate on a mesh id no one else
//!    uses and a plain subscriber takes them all: what the broker itself delivers at that
//!    rate (a rate above the broker's limit measures the limit).
//! 2. **Bridge**: the release bridge subscribes to the mesh, the generator sends the same
//!    load on it and answers the bridge's commands. Over the window: heartbeats the bridge
//!    ingested (its `/metrics` counter when it has one, else what Mosquitto's `$SYS` counters
//!    say it sent to the bridge), plug -> setpoint latency, control-cycle time, CPU and RSS.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::generator::{Counters, Generator, GeneratorConfig};
use crate::observe::{self, Histogram, ProcSample, Subscriber, SysValue};

/// What `ctrl22-load run` measures.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub bays: u32,
    /// Heartbeats per second, all bays together.
    pub rate: f64,
    /// The pass-through phase's rate (default: `rate`).
    pub pass_rate: Option<f64>,
    pub seconds: u64,
    pub warmup_s: u64,
    pub home_assistant: bool,
    pub bridge: PathBuf,
    pub mosquitto: PathBuf,
    pub connections: u32,
    pub plug_events_per_s: f64,
    pub limit_a: u32,
    /// Written as `[site] max_bays` when given (the bridge must know the key).
    pub max_bays: Option<u32>,
    /// Skip the bridge phase (broker and generator only).
    pub pass_only: bool,
}

const SYS_FILTERS: [&str; 2] = [
    "$SYS/broker/publish/messages/+",
    "$SYS/broker/load/messages/+",
];

/// Runs both phases and returns the report as JSON.
///
/// # Errors
/// When Mosquitto or the bridge do not start, or a connection fails.
pub async fn run(config: &RunConfig) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let port = ctrl22_testkit::free_port()?;
    let broker_addr = format!("127.0.0.1:{port}");
    let mosquitto = start_mosquitto(config, &dir, port).await?;
    let mosquitto_pid = mosquitto.id().context("mosquitto exited")?;
    let machine = machine();
    let pass = pass_through(config, &broker_addr, mosquitto_pid).await?;
    let bridge = if config.pass_only {
        Value::Null
    } else {
        bridge_phase(config, &dir, &broker_addr, mosquitto_pid).await?
    };
    drop(mosquitto);
    let ratio = bridge["heartbeats_ingested_per_s"]
        .as_f64()
        .zip(pass["delivered_per_s"].as_f64());
    Ok(json!({
        "bays": config.bays,
        "rate_asked_per_s": config.rate,
        "seconds": config.seconds,
        "warmup_s": config.warmup_s,
        "home_assistant": config.home_assistant,
        "connections": config.connections,
        "plug_events_per_s": config.plug_events_per_s,
        "limit_a": config.limit_a,
        "machine": machine,
        "pass_through": pass,
        "bridge": bridge,
        "ingest_ratio_to_pass_through": ratio.map(|(b, p)| if p > 0.0 { b / p } else { 0.0 }),
    }))
}

async fn start_mosquitto(
    config: &RunConfig,
    dir: &tempfile::TempDir,
    port: u16,
) -> anyhow::Result<Child> {
    // The testkit's broker configuration, plus `$SYS` counters every second.
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 100000\nmax_inflight_messages 0\nlog_dest none\nsys_interval 1\n"
        ),
    )?;
    let child = Command::new(&config.mosquitto)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", config.mosquitto.display()))?;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("mosquitto does not listen on {port}")
}

/// The counters read at the start and the end of a window.
struct Mark {
    at: Instant,
    generator: Counters,
    received: u64,
    sys_messages: u64,
    sys_received: Option<SysValue>,
    sys_sent: Option<SysValue>,
    sys_dropped: Option<SysValue>,
    mosquitto: ProcSample,
    own: ProcSample,
}

impl Mark {
    fn take(generator: &Generator, subscriber: &Subscriber, mosquitto_pid: u32) -> Self {
        Self {
            at: Instant::now(),
            generator: generator.counters(),
            received: subscriber.received(),
            sys_messages: subscriber.sys_messages(),
            sys_received: subscriber.sys("publish/messages/received"),
            sys_sent: subscriber.sys("publish/messages/sent"),
            sys_dropped: subscriber.sys("publish/messages/dropped"),
            mosquitto: observe::sample(mosquitto_pid).unwrap_or_default(),
            own: observe::sample(std::process::id()).unwrap_or_default(),
        }
    }
}

/// Rate and CPU over a window.
struct Window<'a> {
    start: &'a Mark,
    end: &'a Mark,
}

impl Window<'_> {
    fn seconds(&self) -> f64 {
        self.end.at.duration_since(self.start.at).as_secs_f64()
    }

    fn per_s(&self, f: impl Fn(&Mark) -> u64) -> f64 {
        f(self.end).saturating_sub(f(self.start)) as f64 / self.seconds()
    }

    /// The rate of a `$SYS` counter between its updates nearest the window's ends.
    fn sys_per_s(&self, f: impl Fn(&Mark) -> Option<SysValue>) -> Option<f64> {
        let (a, b) = f(self.start).zip(f(self.end))?;
        let seconds = b.at.duration_since(a.at).as_secs_f64();
        (seconds > 0.0).then(|| b.value.saturating_sub(a.value) as f64 / seconds)
    }

    fn cpu_percent(&self, f: impl Fn(&Mark) -> ProcSample) -> f64 {
        (f(self.end).cpu_s - f(self.start).cpu_s) / self.seconds() * 100.0
    }

    /// What every report shares: the generator's and the broker's side.
    fn common(&self) -> Value {
        json!({
            "window_s": self.seconds(),
            "generator_sent_per_s": self.per_s(|m| m.generator.sent),
            "generator_shortfall_per_s": self.per_s(|m| m.generator.shortfall),
            "broker_received_per_s": self.sys_per_s(|m| m.sys_received),
            "broker_sent_per_s": self.sys_per_s(|m| m.sys_sent),
            "broker_dropped": self.start.sys_dropped.zip(self.end.sys_dropped)
                .map(|(a, b)| b.value.saturating_sub(a.value)),
            "mosquitto_cpu_percent": self.cpu_percent(|m| m.mosquitto),
            "load_process_cpu_percent": self.cpu_percent(|m| m.own),
            "loadavg": loadavg(),
        })
    }
}

async fn pass_through(
    config: &RunConfig,
    broker: &str,
    mosquitto_pid: u32,
) -> anyhow::Result<Value> {
    let mut filters = SYS_FILTERS.to_vec();
    filters.push("/PASS/+/heartbeat");
    let subscriber = Subscriber::start(broker, "ctrl22-load-pass-sub", &filters).await?;
    let generator = Generator::start(GeneratorConfig {
        broker: broker.to_owned(),
        mesh_id: "PASS".to_owned(),
        bays: config.bays,
        rate: config.pass_rate.unwrap_or(config.rate),
        connections: config.connections,
        plug_events_per_s: config.plug_events_per_s,
        answer_commands: false,
        client_prefix: "ctrl22-load-pass".to_owned(),
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(config.warmup_s.clamp(2, 5))).await;
    let start = Mark::take(&generator, &subscriber, mosquitto_pid);
    tokio::time::sleep(Duration::from_secs(config.seconds)).await;
    let end = Mark::take(&generator, &subscriber, mosquitto_pid);
    anyhow::ensure!(
        !generator.failed(),
        "the pass-through generator lost its connection"
    );
    drop(generator);
    let window = Window {
        start: &start,
        end: &end,
    };
    let mut report = window.common();
    report["rate_asked_per_s"] = json!(config.pass_rate.unwrap_or(config.rate));
    report["delivered_per_s"] = json!(window.per_s(|m| m.received));
    // Let the broker's queues drain before the bridge phase.
    drop(subscriber);
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(report)
}

async fn bridge_phase(
    config: &RunConfig,
    dir: &tempfile::TempDir,
    broker: &str,
    mosquitto_pid: u32,
) -> anyhow::Result<Value> {
    let http = format!("127.0.0.1:{}", ctrl22_testkit::free_port()?);
    let bridge_toml = dir.path().join("bridge.toml");
    std::fs::write(&bridge_toml, bridge_config(config, broker, &http, dir))?;
    let log = std::fs::File::create(dir.path().join("bridge.log"))?;
    let spawned = std::time::Instant::now();
    let mut bridge = Command::new(&config.bridge)
        .arg("run")
        .arg("--config")
        .arg(&bridge_toml)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", config.bridge.display()))?;
    let bridge_pid = bridge.id().context("the bridge exited")?;
    wait_for_metrics(&http, &mut bridge, dir).await?;
    let startup = spawned.elapsed();
    let subscriber = Subscriber::start(broker, "ctrl22-load-sys", &SYS_FILTERS).await?;
    let generator = Generator::start(GeneratorConfig {
        broker: broker.to_owned(),
        mesh_id: "DEMESH".to_owned(),
        bays: config.bays,
        rate: config.rate,
        connections: config.connections,
        plug_events_per_s: config.plug_events_per_s,
        answer_commands: true,
        client_prefix: "ctrl22-load".to_owned(),
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(config.warmup_s)).await;
    let _ = generator.take_latencies_us();
    let metrics0 = observe::metrics(&http).await?;
    let start = Mark::take(&generator, &subscriber, mosquitto_pid);
    let bridge0 = observe::sample(bridge_pid)?;
    tokio::time::sleep(Duration::from_secs(config.seconds)).await;
    let end = Mark::take(&generator, &subscriber, mosquitto_pid);
    let bridge1 = observe::sample(bridge_pid)?;
    let metrics1 = observe::metrics(&http).await?;
    let mut latencies = generator.take_latencies_us();
    anyhow::ensure!(!generator.failed(), "the generator lost its connection");
    let window = Window {
        start: &start,
        end: &end,
    };
    let seconds = window.seconds();

    // Ingest: the bridge's own counter when it has one, else what the broker sent it: all the
    // broker sent minus what this process's subscribers and command connection took, minus
    // the acks (the bridge's only other subscribed traffic here).
    let counted =
        observe::heartbeats_counted(&metrics0).zip(observe::heartbeats_counted(&metrics1));
    let (ingested, source) = match counted {
        Some((a, b)) => (
            Some((b - a) / seconds),
            "ctrl22_mesh_messages_total{kind=\"heartbeat\"}",
        ),
        None => {
            let others = window
                .per_s(|m| m.received + m.sys_messages + m.generator.commands + m.generator.acks);
            (
                window
                    .sys_per_s(|m| m.sys_sent)
                    .map(|sent| (sent - others).max(0.0)),
                "$SYS publish/messages/sent minus the harness's own subscriptions and the acks \
                 (heartbeats delivered to the bridge's socket; the bridge has no per-kind counter)",
            )
        }
    };
    let cycle = Histogram::read(&metrics1, "ctrl22_control_cycle_seconds")
        .since(&Histogram::read(&metrics0, "ctrl22_control_cycle_seconds"));
    latencies.sort_unstable();
    let ms = |p: f64| percentile(&latencies, p).map(|us| us as f64 / 1000.0);
    let mut report = window.common();
    report["heartbeats_ingested_per_s"] = json!(ingested);
    report["ingest_source"] = json!(source);
    report["bridge_cpu_percent"] = json!((bridge1.cpu_s - bridge0.cpu_s) / seconds * 100.0);
    report["bridge_rss_mib"] = json!(bridge1.rss_kib as f64 / 1024.0);
    report["bridge_peak_rss_mib"] = json!(bridge1.peak_rss_kib as f64 / 1024.0);
    report["plug_changes"] = json!(end.generator.plug_changes - start.generator.plug_changes);
    report["plug_to_setpoint_n"] = json!(latencies.len());
    report["plug_to_setpoint_p50_ms"] = json!(ms(50.0));
    report["plug_to_setpoint_p99_ms"] = json!(ms(99.0));
    report["plug_to_setpoint_max_ms"] = json!(latencies.last().map(|&us| us as f64 / 1000.0));
    report["commands_per_s"] = json!(window.per_s(|m| m.generator.commands));
    report["acks_per_s"] = json!(window.per_s(|m| m.generator.acks));
    report["control_cycles"] = json!(cycle.count);
    report["control_cycle_mean_ms"] = json!(cycle.mean().map(|s| s * 1000.0));
    report["control_cycle_p99_bound_ms"] = json!(cycle.quantile_bound(0.99).map(|s| s * 1000.0));
    report["bays_known"] = json!(observe::metric(&metrics1, "ctrl22_site_bays").or_else(|| {
        Some(
            metrics1
                .lines()
                .filter(|l| l.starts_with("ctrl22_bay_online{"))
                .count() as f64,
        )
    }));
    report["bridge_log_warnings"] = json!(warnings(dir));
    report["startup_to_first_allocation_ms"] = json!(startup.as_secs_f64() * 1000.0);
    drop(generator);
    drop(bridge);
    Ok(report)
}

fn bridge_config(config: &RunConfig, broker: &str, http: &str, dir: &tempfile::TempDir) -> String {
    let limit = config.limit_a;
    let max_bays = config
        .max_bays
        .map(|n| format!("max_bays = {n}\n"))
        .unwrap_or_default();
    format!(
        r#"[mqtt]
url = "mqtt://{broker}"
client_id = "ctrl22-bridge-load"

[mesh]
transport = "mqtt"
mesh_id = "DEMESH"
# The sequencer raises nothing for one heartbeat timeout after start: short, so the warm-up
# covers it (every bay here beats at least once a second).
heartbeat_timeout = "10s"
setpoint_refresh = "20s"

[site]
name = "load"
voltage = 230
max_current = [{limit}, {limit}, {limit}]
strategy = "fair"
default_mode = "now"
# No configured hold times: the latency measured is the bridge's, not a hysteresis.
min_on = "0s"
min_off = "0s"
{max_bays}
[homeassistant]
enabled = {ha}

[http]
listen = "{http}"
token = "load-token"

[storage]
path = "{db}"
"#,
        ha = config.home_assistant,
        db = dir.path().join("ctrl22.db").display(),
    )
}

/// Waits until the bridge's `/metrics` counts its first allocation (polled every 5 ms, so
/// the time to it is the time from start to the first allocation, or the HTTP server's start
/// if that is later, to within 5 ms).
async fn wait_for_metrics(
    http: &str,
    bridge: &mut Child,
    dir: &tempfile::TempDir,
) -> anyhow::Result<()> {
    for _ in 0..2000 {
        let allocated = observe::metrics(http)
            .await
            .ok()
            .and_then(|text| observe::metric(&text, "ctrl22_allocations_total{trigger=\"cycle\"}"));
        if allocated.is_some_and(|n| n >= 1.0) {
            return Ok(());
        }
        if let Ok(Some(status)) = bridge.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("bridge.log")).unwrap_or_default();
            anyhow::bail!("the bridge exited ({status}): {}", log.trim());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    anyhow::bail!("the bridge's /metrics does not count an allocation on {http}")
}

fn warnings(dir: &tempfile::TempDir) -> Value {
    let log = std::fs::read_to_string(dir.path().join("bridge.log")).unwrap_or_default();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    json!({ "count": lines.len(), "first": lines.iter().take(3).collect::<Vec<_>>() })
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len().saturating_sub(1)))
        .copied()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// nproc, CPU model and RAM, for the report.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_kib: Option<u64> = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok());
    json!({
        "nproc": std::thread::available_parallelism().map(usize::from).ok(),
        "cpu_model": model,
        "ram_gib": ram_kib.map(|k| k as f64 / 1024.0 / 1024.0),
    })
}
