//! The harness's report as a table for people (the JSON goes out as it is).

use std::fmt::Write as _;

use serde_json::Value;

/// Rows of the table: label, JSON pointer into the report, unit.
const ROWS: [(&str, &str, &str); 25] = [
    (
        "pass-through: generator sent",
        "/pass_through/generator_sent_per_s",
        "/s",
    ),
    (
        "pass-through: subscriber received",
        "/pass_through/delivered_per_s",
        "/s",
    ),
    (
        "pass-through: broker dropped",
        "/pass_through/broker_dropped",
        "",
    ),
    (
        "pass-through: mosquitto CPU",
        "/pass_through/mosquitto_cpu_percent",
        "%",
    ),
    (
        "pass-through: generator process CPU",
        "/pass_through/load_process_cpu_percent",
        "%",
    ),
    (
        "bridge: generator sent",
        "/bridge/generator_sent_per_s",
        "/s",
    ),
    (
        "bridge: generator shortfall",
        "/bridge/generator_shortfall_per_s",
        "/s",
    ),
    (
        "bridge: heartbeats ingested",
        "/bridge/heartbeats_ingested_per_s",
        "/s",
    ),
    (
        "bridge: ingest / pass-through",
        "/ingest_ratio_to_pass_through",
        "",
    ),
    ("bridge: broker dropped", "/bridge/broker_dropped", ""),
    ("bridge: plug changes in window", "/bridge/plug_changes", ""),
    (
        "bridge: plug -> setpoint answered",
        "/bridge/plug_to_setpoint_n",
        "",
    ),
    (
        "bridge: plug -> setpoint p50",
        "/bridge/plug_to_setpoint_p50_ms",
        "ms",
    ),
    (
        "bridge: plug -> setpoint p99",
        "/bridge/plug_to_setpoint_p99_ms",
        "ms",
    ),
    ("bridge: control cycles", "/bridge/control_cycles", ""),
    (
        "bridge: control cycle mean",
        "/bridge/control_cycle_mean_ms",
        "ms",
    ),
    (
        "bridge: control cycle p99 (bucket bound)",
        "/bridge/control_cycle_p99_bound_ms",
        "ms",
    ),
    (
        "bridge: commands from the bridge",
        "/bridge/commands_per_s",
        "/s",
    ),
    ("bridge: bridge CPU", "/bridge/bridge_cpu_percent", "%"),
    (
        "bridge: mosquitto CPU",
        "/bridge/mosquitto_cpu_percent",
        "%",
    ),
    (
        "bridge: generator process CPU",
        "/bridge/load_process_cpu_percent",
        "%",
    ),
    ("bridge: RSS", "/bridge/bridge_rss_mib", "MiB"),
    ("bridge: peak RSS", "/bridge/bridge_peak_rss_mib", "MiB"),
    ("bridge: bays known", "/bridge/bays_known", ""),
    (
        "bridge: start -> first allocation",
        "/bridge/startup_to_first_allocation_ms",
        "ms",
    ),
];

/// The report as an aligned two-column table.
#[must_use]
pub fn table(report: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bays={} rate={}/s window={}s home_assistant={} load={}",
        report["bays"],
        report["rate_asked_per_s"],
        report["seconds"],
        report["home_assistant"],
        report["bridge"]["loadavg"].as_str().unwrap_or(""),
    );
    for (label, pointer, unit) in ROWS {
        let Some(value) = report.pointer(pointer).filter(|v| !v.is_null()) else {
            continue;
        };
        let text = match value.as_f64() {
            Some(x) if x.fract() != 0.0 && x.abs() < 10.0 => format!("{x:.3}"),
            Some(x) => format!("{x:.0}"),
            None => value.to_string(),
        };
        let _ = writeln!(out, "{label:<42} {text:>12} {unit}");
    }
    if let Some(source) = report
        .pointer("/bridge/ingest_source")
        .and_then(Value::as_str)
    {
        let _ = writeln!(out, "ingest counted from: {source}");
    }
    out
}
