//! End to end, event-driven control: the bridge binary, a real Mosquitto and 4 simulated
//! bays on a 3x32 A site. A site limit lowered with `PUT /api/v1/site` between two control
//! cycles reaches the wire as lowered setpoints well within one cycle (measured and printed;
//! asserted under 500 ms, half a cycle, to leave room for a loaded machine), and `/metrics`
//! carries the traffic counters and the event -> write histogram.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ctrl22_node::mesh::{Address, Command, MacAddr};
use ctrl22_testkit::bridge::http_get;
use ctrl22_testkit::free_port;
use ctrl22_testkit::sim::Simulator;
use ctrl22_testkit::wire::{WireMessage, WireRecord};
use ctrl22_testkit::Recorded;

use crate::mqtt_site::MqttSite;

const TOKEN: &str = "event-token";
/// Half the control cycle: before event-driven control, a change waited 0-1 s for it.
const LIMIT_TO_WIRE: Duration = Duration::from_millis(500);

/// The first `smaxcur` from `from` on that is lower than the one before it to the same bay.
fn first_lowered<'a>(mesh: &str, records: &'a [Recorded], from: usize) -> Option<&'a Recorded> {
    let mut last: HashMap<MacAddr, i16> = HashMap::new();
    records.iter().enumerate().find_map(|(i, r)| {
        let Some(WireMessage::Command {
            dst: Address::Node(mac),
            cmd: Command::AvrSetPar { par, val },
        }) = r.decode(mesh)
        else {
            return None;
        };
        if par.as_str() != "smaxcur" {
            return None;
        }
        let old = last.insert(mac, val);
        (i >= from && old.is_some_and(|old| val < old)).then_some(r)
    })
}

/// A `/metrics` line's value (`name{labels} value`).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_site_limit_reaches_the_wire_within_the_cycle() -> anyhow::Result<()> {
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let site = MqttSite::start_configured(|c| {
        c.http_listen = http;
        c.http_token = Some(TOKEN.to_owned());
    })
    .await?;
    let mut bridge = site.bridge()?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 4, 11);
    let wire = site.wire();
    wire.wait_charging(0, 4, Duration::from_secs(40)).await?;
    // Past the start-up raises and a setpoint refresh (2 s), so every bay's setpoint has
    // been seen on the wire once.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // At whatever phase of the control cycle the request happens to come.
    let from = site.watcher.messages().len();
    let client = reqwest::Client::new();
    let sent = Instant::now();
    let answer = client
        .put(format!("http://{http}/api/v1/site"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "max_current": [12, 12, 12] }))
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().is_success(),
        "PUT /api/v1/site: {}",
        answer.status()
    );
    let lowered = loop {
        let records = site.watcher.messages();
        if let Some(r) = first_lowered(&site.mesh, &records, from) {
            break r.clone();
        }
        anyhow::ensure!(
            sent.elapsed() < Duration::from_secs(5),
            "no setpoint was lowered after the limit was"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let latency = lowered.at.saturating_duration_since(sent);
    eprintln!(
        "PUT /api/v1/site 32 -> 12 A: first lowered setpoint on the wire after {latency:?} ({}: {})",
        lowered.topic,
        lowered.text()
    );
    assert!(
        latency < LIMIT_TO_WIRE,
        "the lowered limit reached the wire only after {latency:?}"
    );

    // The counters, once a cycle has published them.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let text = http_get(http, "/metrics").await?;
    for series in [
        r#"ctrl22_mesh_messages_total{kind="heartbeat"}"#,
        r#"ctrl22_mesh_messages_total{kind="avrsetpar"}"#,
        "ctrl22_setpoint_writes_total",
        r#"ctrl22_mesh_commands_total{cmd="avrsetpar"}"#,
        r#"ctrl22_allocations_total{trigger="event"}"#,
        "ctrl22_event_to_write_seconds_count",
    ] {
        let value = metric(&text, series);
        assert!(
            value.is_some_and(|v| v >= 1.0),
            "{series}: {value:?}\n{text}"
        );
    }
    assert!(
        text.contains(r#"ctrl22_event_to_write_seconds_bucket{le="0.0001"}"#),
        "buckets from 100 us: {text}"
    );
    wire.check("through the lowered limit")?;

    bridge.kill();
    simulator.stop().await;
    Ok(())
}
