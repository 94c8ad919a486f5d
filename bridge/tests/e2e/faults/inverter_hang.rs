//! The power sources hang: the grid meter accepts TCP connections and never answers, the
//! inverter answers only after 30 s. Each poll times out (`timeout = "300ms"`); once the
//! meter is stale (`site.meter_timeout = "2s"`) the house is assumed to draw its reserve and
//! the cars share the fuse minus it; the core does not stall (every bay keeps getting its
//! setpoint refreshes), and the failures are logged rate-limited, not once per poll.

use std::io::Write;
use std::time::Duration;

use anyhow::{ensure, Context};
use axum::routing::get;
use ctrl22_node::mesh::Address;
use ctrl22_testkit::bridge::{http_get, BridgeProcess};
use ctrl22_testkit::scenario::Wire;
use ctrl22_testkit::sim::Simulator;
use ctrl22_testkit::wire::{WireMessage, WireRecord};
use serde_json::Value;

use super::site;
use crate::solar_common::serve;

/// Accepts connections and keeps them open without a byte in reply.
async fn hanging_server() -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    Ok(addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_power_sources_fall_back_to_the_house_reserve_without_stalling(
) -> anyhow::Result<()> {
    let meter = hanging_server().await?;
    let inverter = serve(axum::Router::new().fallback(get(|| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        "{}"
    })))
    .await;
    let (site, http) = site(3, |_| {}).await?;
    let text = std::fs::read_to_string(&site.config)?;
    std::fs::write(
        &site.config,
        text.replacen(
            "[site]\n",
            "[site]\nhouse_reserve = [16, 16, 16]\nmeter_timeout = \"2s\"\n",
            1,
        ),
    )?;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&site.config)?;
    write!(
        file,
        "\n[[solar.sources]]\nkind = \"shelly\"\nurl = \"http://{meter}\"\ninterval = \"200ms\"\ntimeout = \"300ms\"\n\n\
         [[solar.sources]]\nkind = \"fronius\"\nurl = \"http://{inverter}\"\nmeasures = [\"pv\"]\ninterval = \"200ms\"\ntimeout = \"300ms\"\n"
    )?;
    drop(file);
    let (_bridge, log) = BridgeProcess::start_logged(crate::bridge_binary(), &site.config, &[])?;
    // Two bays: both fit in the 16 A the house reserve leaves (three would rotate).
    let simulator = Simulator::start(&site.broker, &site.mesh, 2, 11);
    site.wire()
        .wait_charging(0, 2, Duration::from_secs(30))
        .await?;
    let steady_from = site.watcher.messages().len();
    tokio::time::sleep(Duration::from_secs(10)).await;

    let snapshot: Value = serde_json::from_str(&http_get(http, "/api/v1/site").await?)?;
    ensure!(
        snapshot["power"]["house_fallback"] == true,
        "house fallback not in force: {snapshot:#}"
    );
    // The cars share the fuse minus the house reserve: 32 - 16 A per phase.
    let records = site.watcher.messages();
    let steady = records.get(steady_from..).unwrap_or_default().to_vec();
    let house_wire = Wire::new(&site.mesh, [160; 3], || steady.clone());
    let stats = house_wire.check("with the house reserve in force")?;
    site.wire().check("with hanging sources")?;
    // No stall: every bay got writes (refreshes every 2 s) during the 10 s.
    for mac in &simulator.macs {
        let writes = steady
            .iter()
            .filter(|r| {
                matches!(r.decode(&site.mesh), Some(WireMessage::Command { dst: Address::Node(d), .. }) if d == *mac)
            })
            .count();
        ensure!(writes >= 3, "{mac}: {writes} writes in 10 s");
    }
    let metrics = http_get(http, "/metrics").await?;
    let timeouts = |source: &str, device: &str| -> anyhow::Result<f64> {
        let prefix = format!(
            "ctrl22_solar_source_errors_total{{source=\"{source}\",device=\"{device}\",kind=\"timeout\"}}"
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no {prefix}:\n{metrics}"))
    };
    let (meter_timeouts, inverter_timeouts) = (timeouts("0", "shelly")?, timeouts("1", "fronius")?);
    ensure!(meter_timeouts >= 10.0 && inverter_timeouts >= 10.0);
    let lines = log.lines();
    ensure!(
        lines.len() <= 10,
        "{} log lines for {} timeouts: {lines:#?}",
        lines.len(),
        meter_timeouts + inverter_timeouts
    );
    eprintln!(
        "hanging sources: {meter_timeouts} + {inverter_timeouts} timeouts, {} log lines, {stats:?}",
        lines.len()
    );
    simulator.stop().await;
    Ok(())
}
