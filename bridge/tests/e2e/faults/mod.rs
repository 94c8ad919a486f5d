//! Fault scenarios (issue 14, item 3), one file per fault: the bridge binary on a real
//! Mosquitto with simulated bays, a fault injected mid-session, and afterwards the same
//! checks every time: no instant above the site limit on the wire, and energy measured
//! within 1 % of the simulator's ground truth where the fault was shorter than the heartbeat
//! timeout (a longer gap shows as the session's `uncounted_ms` instead).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context};
use ctrl22_testkit::bridge::{http_get, BridgeConfig};
use ctrl22_testkit::sim::Simulator;
use serde_json::Value;

use crate::mqtt_site::MqttSite;

mod broker_late;
mod broker_restart;
mod clock_jump;
mod flapping;
mod inverter_hang;
mod ocpp_outage;
mod sigkill;

/// The simulated bays' heartbeat period where energy is compared: the bridge counts the
/// current of one report until the next, so every change of a car's draw costs up to one
/// period of error; 100 ms keeps that well below 1 % of a 20 s session.
const HEARTBEAT_MS: u32 = 100;
/// `[site] voltage` of the test configuration (the default).
const VOLTAGE: f64 = 230.0;
/// Deciamp-milliseconds per watt-hour at one volt.
const DECIAMP_MS_PER_WH_V: f64 = 10.0 * 3_600_000.0;

/// A site whose API listens on a known port, with `heartbeat_timeout_s`.
async fn site(
    heartbeat_timeout_s: u32,
    configure: impl FnOnce(&mut BridgeConfig),
) -> anyhow::Result<(MqttSite, SocketAddr)> {
    let http = SocketAddr::from(([127, 0, 0, 1], ctrl22_testkit::free_port()?));
    let site = MqttSite::start_configured(|c| {
        c.http_listen = http;
        c.heartbeat_timeout_s = heartbeat_timeout_s;
        configure(c);
    })
    .await?;
    Ok((site, http))
}

/// `GET /api/v1/sessions` as JSON rows.
async fn sessions(http: SocketAddr) -> anyhow::Result<Vec<Value>> {
    let body = http_get(http, "/api/v1/sessions").await?;
    let rows: Value = serde_json::from_str(&body)?;
    rows.as_array().cloned().context("sessions: not a list")
}

/// Every car leaves (the simulator's `simctl`).
async fn leave_all(site: &MqttSite, simulator: &Simulator) -> anyhow::Result<()> {
    for dev in &simulator.devs {
        site.watcher
            .publish(
                &format!("/{}/{dev}/simctl", site.mesh),
                r#"{"car":"leave"}"#,
            )
            .await?;
    }
    Ok(())
}

/// Every car leaves, and once every bay's session is recorded, the recorded sessions.
async fn end_all_sessions(
    site: &MqttSite,
    http: SocketAddr,
    simulator: &Simulator,
) -> anyhow::Result<Vec<Value>> {
    leave_all(site, simulator).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let rows = sessions(http).await.unwrap_or_default();
        let ended = simulator
            .devs
            .iter()
            .all(|dev| rows.iter().any(|r| r["bay"] == dev.as_str()));
        if ended {
            return Ok(rows);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "not every session recorded: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Per bay: the energy of its recorded sessions and the simulator's ground truth (what the
/// car drew since the world started: before the bridge writes a setpoint nothing flows).
fn energies(rows: &[Value], simulator: &Simulator) -> Vec<(String, f64, f64)> {
    simulator
        .ground_truth()
        .iter()
        .map(|truth| {
            let dev = truth.mac.topic_form().to_string();
            let measured: f64 = rows
                .iter()
                .filter(|r| r["bay"] == dev.as_str())
                .filter_map(|r| r["energy_wh"].as_f64())
                .sum();
            #[allow(clippy::cast_precision_loss)] // far below 2^53
            let truth_wh = truth.delivered_deciamp_ms as f64 * VOLTAGE / DECIAMP_MS_PER_WH_V;
            (dev, measured, truth_wh)
        })
        .collect()
}

/// Every bay's measured energy is within 1 % of the ground truth, every session complete,
/// and something was charged at all. Returns the largest relative error.
fn check_energy(rows: &[Value], simulator: &Simulator) -> anyhow::Result<f64> {
    let mut worst: f64 = 0.0;
    for (dev, measured, truth) in energies(rows, simulator) {
        ensure!(truth > 1.0, "{dev} charged only {truth:.2} Wh");
        let error = (measured - truth).abs() / truth;
        eprintln!(
            "{dev}: measured {measured:.2} Wh, ground truth {truth:.2} Wh, error {:.3} %",
            error * 100.0
        );
        ensure!(
            error <= 0.01,
            "{dev}: measured {measured:.2} Wh, truth {truth:.2} Wh ({:.2} % off)",
            error * 100.0
        );
        worst = worst.max(error);
    }
    for row in rows {
        ensure!(row["uncounted_ms"] == 0, "incomplete session: {row}");
    }
    Ok(worst)
}

/// The bridge's `/metrics` value of `name{bay="dev"}`.
async fn bay_metric(http: SocketAddr, name: &str, dev: &str) -> anyhow::Result<f64> {
    let metrics = http_get(http, "/metrics").await?;
    // Counters carry the `_total` suffix of the text format.
    let prefixes = [
        format!("{name}{{bay=\"{dev}\"}}"),
        format!("{name}_total{{bay=\"{dev}\"}}"),
    ];
    metrics
        .lines()
        .find_map(|l| prefixes.iter().find_map(|p| l.strip_prefix(p.as_str())))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no {name}{{bay=\"{dev}\"}} in /metrics"))
}
