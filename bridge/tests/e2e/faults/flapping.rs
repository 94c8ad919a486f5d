//! A bay's radio link flaps: down 4 s (past the 3 s heartbeat timeout) every 6 s, three
//! times, while its car charges on under the node's watchdog. The fuse holds (its current
//! stays reserved while it is offline), each flap costs one offline and one online event and
//! no log storm, and its session says how long it went unmeasured (`uncounted_ms`) instead of
//! silently losing that energy; the steady bays' energy stays within 1 %.

use std::time::Duration;

use anyhow::ensure;
use ctrl22_testkit::bridge::{http_get, BridgeProcess};
use ctrl22_testkit::sim::Simulator;
use serde_json::Value;

use super::{end_all_sessions, energies, site, HEARTBEAT_MS};

const FLAPS: u64 = 3;
const DOWN_MS: u64 = 4_000;
const PERIOD: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_bay_keeps_its_reservation_and_its_session_shows_the_gaps() -> anyhow::Result<()>
{
    let (site, http) = site(3, |_| {}).await?;
    let (_bridge, log) = BridgeProcess::start_logged(crate::bridge_binary(), &site.config, &[])?;
    let simulator = Simulator::start_world(&site.broker, &site.mesh, 3, 11, HEARTBEAT_MS, |_| {});
    let wire = site.wire();
    wire.wait_charging(0, 3, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lines_before = log.lines().len();

    let flapping = simulator.devs[1].clone();
    for _ in 0..FLAPS {
        site.watcher
            .publish(
                &format!("/{}/{flapping}/simctl", site.mesh),
                format!(r#"{{"link_down_ms":{DOWN_MS}}}"#),
            )
            .await?;
        tokio::time::sleep(PERIOD).await;
    }
    let stats = wire.check("while a bay flaps")?;
    let lines = log.lines().len() - lines_before;

    let events: Value = serde_json::from_str(&http_get(http, "/api/v1/events?limit=1000").await?)?;
    let texts: Vec<&str> = events
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["bay"] == flapping.as_str())
        .filter_map(|e| e["text"].as_str())
        .collect();
    let offline = texts.iter().filter(|t| t.starts_with("offline")).count();
    let online = texts.iter().filter(|t| **t == "online").count();
    ensure!(
        offline == FLAPS as usize,
        "{offline} offline events: {texts:#?}"
    );
    // One for the first heartbeat, one per return.
    ensure!(
        online == FLAPS as usize + 1,
        "{online} online events: {texts:#?}"
    );
    ensure!(
        lines <= 4 * FLAPS as usize,
        "{lines} log lines for {FLAPS} flaps"
    );

    let rows = end_all_sessions(&site, http, &simulator).await?;
    let energy = energies(&rows, &simulator);
    for row in &rows {
        let uncounted = row["uncounted_ms"].as_u64().unwrap_or(u64::MAX);
        if row["bay"] == flapping.as_str() {
            // Each gap: the link down, plus up to one heartbeat until the first report.
            let (low, high) = (FLAPS * (DOWN_MS - 500), FLAPS * (DOWN_MS + 1_000));
            ensure!(
                (low..=high).contains(&uncounted),
                "flapping bay's session: {row}"
            );
        } else {
            ensure!(uncounted == 0, "steady bay's session: {row}");
        }
    }
    for (dev, measured, truth) in &energy {
        let error = (measured - truth).abs() / truth;
        eprintln!(
            "{dev}: measured {measured:.2} Wh, truth {truth:.2} Wh, {:.2} % off",
            error * 100.0
        );
        if *dev == flapping {
            ensure!(measured < truth, "the gaps are not counted: {dev}");
        } else {
            ensure!(error <= 0.01, "{dev}: {:.2} % off", error * 100.0);
        }
    }
    eprintln!("flapping: {offline} offline / {online} online events, {lines} log lines, {stats:?}");
    simulator.stop().await;
    Ok(())
}
