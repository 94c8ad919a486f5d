//! Latency probe for `bridge/bench/scale.sh`: an MQTT subscriber on the mesh topics (it never
//! publishes there) that measures how fast the bridge answers with new setpoints, as seen on
//! the wire.
//!
//! Two measurements, both timed at this subscriber (so broker hops on both ends are included):
//!
//! - **plug**: a bay's heartbeat shows a car arrived or left (`cmaxcur` crosses 0, the bridge's
//!   own "plugged" test) -> the next `avrsetpar smaxcur` to that bay whose value differs from
//!   the last one sent to it. Changes with no new setpoint within `--plug-timeout` are counted
//!   separately (e.g. the site is full, nothing to change).
//! - **inject**: at given times the probe changes the site limit with `PUT /api/v1/site`; from
//!   the moment the request is sent, the first and the last changed `smaxcur` (value differs
//!   from that bay's previous one) until the next injection or the end, and per-bay latency
//!   percentiles, lowered and raised setpoints apart.
//!
//! - **churn** (`--churn N`): the probe itself makes N cars a second leave a charging bay
//!   and come back 10 s later, over the simulator's `simctl` topic (simulator only), so that
//!   the plug measurement has enough samples; departures and arrivals are reported apart.
//!
//! `smaxcur` refreshes with an unchanged value are counted in the message rates but are not
//! "new setpoints". A bay whose previous setpoint the probe has not seen yet does not count
//! as changed, so injections should come after one `setpoint_refresh` period.
//!
//! Run: `cargo run --release -p ctrl22-bridge --example latency_probe -- --help`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Parser;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Parser)]
struct Args {
    /// Broker of the mesh, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: String,
    /// Mesh id: the MQTT topic root.
    #[arg(long, default_value = "DEMESH")]
    mesh_id: String,
    /// How long to measure, seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// A car arrival/departure with no new setpoint within this many seconds is "unanswered".
    #[arg(long, default_value_t = 30)]
    plug_timeout: u64,
    /// The bridge's HTTP API, HOST:PORT (needed for --inject).
    #[arg(long)]
    http: Option<String>,
    /// Bearer token of the HTTP API.
    #[arg(long, env = "CTRL22_HTTP_TOKEN", default_value = "")]
    token: String,
    /// Site-limit changes: SECONDS:AMPS, comma-separated (AMPS applies to all three phases).
    #[arg(long, value_delimiter = ',')]
    inject: Vec<String>,
    /// Cars a second made to leave a charging bay (and come back 10 s later) over the
    /// simulator's `simctl` topic; 0: none.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
}

/// How long a car the probe sent away stays away.
const CHURN_AWAY: Duration = Duration::from_secs(10);

/// What the probe remembers per bay (keyed by the topic's device part).
#[derive(Debug, Default)]
struct BayState {
    plugged: Option<bool>,
    /// The last heartbeat showed the car drawing current.
    charging: bool,
    /// When the heartbeat showing a plug change arrived and whether a car arrived (else it
    /// left), until a new setpoint answers it.
    plug_change: Option<(Instant, bool)>,
    smaxcur: Option<i64>,
}

#[derive(Debug)]
struct Injection {
    at: Duration,
    amps: f64,
    sent: Option<Instant>,
    /// Latency of every lowered / raised setpoint after `sent`.
    lowered: Vec<Duration>,
    raised: Vec<Duration>,
}

#[derive(Debug, Default)]
struct Counts {
    messages: u64,
    heartbeats: u64,
    controls: u64,
    smaxcur: u64,
    smaxcur_changed: u64,
    other_uplink: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn summary(name: &str, samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    format!(
        "{name}: n={} p50={}ms p95={}ms p99={}ms max={}ms",
        samples.len(),
        ms(percentile(samples, 50.0)),
        ms(percentile(samples, 95.0)),
        ms(percentile(samples, 99.0)),
        ms(samples.last().copied().unwrap_or_default()),
    )
}

fn parse_injection(s: &str) -> anyhow::Result<Injection> {
    let (at, amps) = s
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--inject {s:?}: expected SECONDS:AMPS"))?;
    Ok(Injection {
        at: Duration::from_secs_f64(at.trim().parse()?),
        amps: amps.trim().parse()?,
        sent: None,
        lowered: Vec::new(),
        raised: Vec::new(),
    })
}

/// `PUT /api/v1/site` with plain HTTP/1.1, so the probe needs no HTTP client dependency.
async fn put_site_limit(http: &str, token: &str, amps: f64) -> anyhow::Result<String> {
    let body = format!(r#"{{"max_current":[{amps},{amps},{amps}]}}"#);
    let request = format!(
        "PUT /api/v1/site HTTP/1.1\r\nHost: {http}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(http).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

/// The device part of `/MESH/DEV/KIND` and the kind.
fn split_topic<'a>(mesh_id: &str, topic: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = topic.strip_prefix('/')?.strip_prefix(mesh_id)?;
    let rest = rest.strip_prefix('/')?;
    rest.split_once('/')
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut injections = args
        .inject
        .iter()
        .map(|s| parse_injection(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (host, port) = args
        .broker
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("--broker: expected HOST:PORT"))?;
    let mut options = MqttOptions::new(
        format!("latency-probe-{}", std::process::id()),
        host,
        port.parse()?,
    );
    options.set_max_packet_size(1 << 20, 1 << 20);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    client
        .subscribe(format!("/{}/#", args.mesh_id), QoS::AtMostOnce)
        .await?;

    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let started = Instant::now();
    if let Some(http) = &args.http {
        for (index, injection) in injections.iter().enumerate() {
            let (http, token, tx) = (http.clone(), args.token.clone(), sent_tx.clone());
            let (at, amps) = (injection.at, injection.amps);
            tokio::spawn(async move {
                tokio::time::sleep_until((started + at).into()).await;
                let sent = Instant::now();
                // Before the request: setpoints may go out before the answer does.
                let _ = tx.send((index, sent));
                match put_site_limit(&http, &token, amps).await {
                    Ok(status) => println!(
                        "inject {amps} A at {:.1} s: {status} after {} ms",
                        at.as_secs_f64(),
                        ms(sent.elapsed())
                    ),
                    Err(e) => println!("inject {amps} A failed: {e}"),
                }
            });
        }
    }

    let mut bays: HashMap<String, BayState> = HashMap::new();
    let mut counts = Counts::default();
    let mut plug_latency = Vec::new();
    let mut left_latency = Vec::new();
    let mut arrived_latency = Vec::new();
    // Cars sent away by --churn, to bring back: (when, device).
    let mut away: std::collections::VecDeque<(Instant, String)> = Default::default();
    let mut churn = tokio::time::interval(Duration::from_secs_f64(1.0 / args.churn.max(0.01)));
    let mut churn_seq = 0usize;
    let mut plug_unanswered = 0u64;
    let deadline = tokio::time::sleep(Duration::from_secs(args.seconds));
    tokio::pin!(deadline);
    let plug_timeout = Duration::from_secs(args.plug_timeout);
    let mut subscribed_at = None;
    loop {
        let event = tokio::select! {
            () = &mut deadline => break,
            Some((index, sent)) = sent_rx.recv() => {
                if let Some(injection) = injections.get_mut(index) {
                    injection.sent = Some(sent);
                }
                continue;
            }
            _ = churn.tick(), if args.churn > 0.0 => {
                let now = Instant::now();
                while let Some((_, dev)) = away.front().filter(|(at, _)| *at <= now) {
                    let topic = format!("/{}/{dev}/simctl", args.mesh_id);
                    client.try_publish(topic, QoS::AtMostOnce, false, r#"{"car":"arrive"}"#)?;
                    away.pop_front();
                }
                // A charging bay, taken in turn so that every one gets its go.
                let mut charging: Vec<&String> = bays
                    .iter()
                    .filter(|(dev, b)| b.charging && !away.iter().any(|(_, d)| d == *dev))
                    .map(|(dev, _)| dev)
                    .collect();
                charging.sort_unstable();
                if let Some(dev) = charging.get(churn_seq % charging.len().max(1)).map(|d| (*d).clone()) {
                    churn_seq += 7;
                    let topic = format!("/{}/{dev}/simctl", args.mesh_id);
                    client.try_publish(topic, QoS::AtMostOnce, false, r#"{"car":"leave"}"#)?;
                    away.push_back((now + CHURN_AWAY, dev));
                }
                continue;
            }
            event = eventloop.poll() => event?,
        };
        let publish = match event {
            Event::Incoming(Packet::SubAck(_)) => {
                subscribed_at.get_or_insert_with(Instant::now);
                continue;
            }
            Event::Incoming(Packet::Publish(p)) => p,
            _ => continue,
        };
        let now = Instant::now();
        counts.messages += 1;
        let Some((dev, kind)) = split_topic(&args.mesh_id, &publish.topic) else {
            continue;
        };
        let Ok(body) = serde_json::from_slice::<Value>(&publish.payload) else {
            continue;
        };
        match kind {
            "heartbeat" => {
                counts.heartbeats += 1;
                let plugged = body.get("cmaxcur").and_then(Value::as_i64).unwrap_or(0) > 0;
                let bay = bays.entry(dev.to_owned()).or_default();
                bay.charging = ["cur1", "cur2", "cur3"]
                    .iter()
                    .any(|c| body.get(*c).and_then(Value::as_i64).unwrap_or(0) >= 10);
                if bay.plugged.is_some_and(|was| was != plugged) && bay.plug_change.is_none() {
                    bay.plug_change = Some((now, plugged));
                }
                bay.plugged = Some(plugged);
                if let Some((since, _)) = bay.plug_change {
                    if now.duration_since(since) > plug_timeout {
                        plug_unanswered += 1;
                        bay.plug_change = None;
                    }
                }
            }
            "control" => {
                counts.controls += 1;
                let is_smaxcur = body.get("cmd").and_then(Value::as_str) == Some("avrsetpar")
                    && body.get("avrpar").and_then(Value::as_str) == Some("smaxcur");
                let Some(value) = body.get("avrval").and_then(Value::as_i64) else {
                    continue;
                };
                if !is_smaxcur {
                    continue;
                }
                counts.smaxcur += 1;
                let bay = bays.entry(dev.to_owned()).or_default();
                let old = bay.smaxcur.replace(value);
                let Some(old) = old.filter(|&old| old != value) else {
                    continue;
                };
                counts.smaxcur_changed += 1;
                if let Some((since, arrived)) = bay.plug_change.take() {
                    let latency = now.duration_since(since);
                    let what = if arrived { "arrived" } else { "left" };
                    println!(
                        "plug sample: {dev} car {what}, smaxcur {old} -> {value} after {} ms",
                        ms(latency)
                    );
                    plug_latency.push(latency);
                    if arrived {
                        arrived_latency.push(latency);
                    } else {
                        left_latency.push(latency);
                    }
                }
                // Attributed to the latest injection already sent.
                if let Some(injection) = injections
                    .iter_mut()
                    .filter(|i| i.sent.is_some_and(|s| s <= now))
                    .max_by_key(|i| i.sent)
                {
                    if let Some(sent) = injection.sent {
                        let changes = if value < old {
                            &mut injection.lowered
                        } else {
                            &mut injection.raised
                        };
                        changes.push(now.duration_since(sent));
                    }
                }
            }
            _ => counts.other_uplink += 1,
        }
    }
    let window = subscribed_at.map_or(started.elapsed(), |t| t.elapsed());
    let secs = window.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = |n: u64| n as f64 / secs;
    println!("window={secs:.1}s bays_seen={}", bays.len());
    println!(
        "rates: all={:.0}/s heartbeat={:.0}/s control={:.0}/s smaxcur={:.0}/s smaxcur_changed={:.1}/s other_uplink={:.0}/s",
        rate(counts.messages),
        rate(counts.heartbeats),
        rate(counts.controls),
        rate(counts.smaxcur),
        rate(counts.smaxcur_changed),
        rate(counts.other_uplink),
    );
    let pending = bays.values().filter(|b| b.plug_change.is_some()).count();
    println!(
        "{} unanswered_after_{}s={plug_unanswered} still_pending_at_end={pending}",
        summary("plug->new_setpoint", &mut plug_latency),
        args.plug_timeout
    );
    println!("{}", summary("  left->new_setpoint", &mut left_latency));
    println!(
        "{}",
        summary("  arrived->new_setpoint", &mut arrived_latency)
    );
    for injection in &mut injections {
        let name = format!(
            "inject_{}A@{:.0}s",
            injection.amps,
            injection.at.as_secs_f64()
        );
        if injection.sent.is_none() {
            println!("{name}: not sent");
            continue;
        }
        for (what, changes) in [
            ("lowered", &mut injection.lowered),
            ("raised", &mut injection.raised),
        ] {
            // Arrival order: first and last are the ends of the burst.
            let first = changes.first().copied().unwrap_or_default();
            println!(
                "{} first={}ms",
                summary(&format!("{name} {what}"), changes),
                ms(first)
            );
        }
    }
    Ok(())
}
