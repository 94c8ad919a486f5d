//! The wall clock jumps +1 h and back under a running bridge (libfaketime, Debian package
//! `faketime`, steered through a timestamp file; the monotonic clock is left alone, as an
//! NTP step leaves it): no timer fires early or late (no bay goes offline, setpoints keep
//! coming), the fuse holds, and a session that spans a jump still has its real duration
//! (+1 h: one bay's session ends after it; then -1 h twice: the other bay's, started before
//! all three jumps, ends with the clock an hour behind).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context};
use ctrl22_testkit::bridge::{http_get, BridgeProcess};
use ctrl22_testkit::sim::Simulator;
use serde_json::Value;

use super::{sessions, site};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn set_offset(file: &Path, offset: &str) -> anyhow::Result<()> {
    std::fs::write(file, offset).context("writing the faketime file")
}

fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn car(site: &crate::mqtt_site::MqttSite, dev: &str, what: &str) -> anyhow::Result<()> {
    site.watcher
        .publish(
            &format!("/{}/{dev}/simctl", site.mesh),
            format!(r#"{{"car":"{what}"}}"#),
        )
        .await
}

/// The `n`th recorded session of `dev`, once there is one.
async fn nth_session(http: std::net::SocketAddr, dev: &str, n: usize) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let rows: Vec<Value> = sessions(http)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r["bay"] == dev)
            .collect();
        if let Some(row) = rows.get(n) {
            return Ok(row.clone());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no session {n} of {dev}: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn duration_ms(row: &Value) -> i64 {
    let ms = |k: &str| row[k].as_i64().unwrap_or(0);
    ms("ended_ms") - ms("started_ms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_jumps_change_no_timer_and_no_session_duration() -> anyhow::Result<()> {
    ensure!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} missing: install the Debian package faketime (scripts/test.sh does)"
    );
    let (site, http) = site(3, |_| {}).await?;
    let clock = tempfile::NamedTempFile::new()?;
    set_offset(clock.path(), "+0")?;
    let clock_file = clock.path().display().to_string();
    let (_bridge, _log) = BridgeProcess::start_logged(
        crate::bridge_binary(),
        &site.config,
        &[
            ("LD_PRELOAD", LIBFAKETIME),
            ("FAKETIME_TIMESTAMP_FILE", &clock_file),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    )?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 2, 5);
    let wire = site.wire();
    wire.wait_charging(0, 2, Duration::from_secs(30)).await?;
    let (jumper, steady) = (simulator.devs[0].clone(), simulator.devs[1].clone());

    // +1 h: a session started before the jump ends after it.
    set_offset(clock.path(), "+1h")?;
    let jumped_at = site.watcher.messages().len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    wire.wait_charging(jumped_at, 2, Duration::from_secs(5))
        .await?;
    car(&site, &jumper, "leave").await?;
    let first = nth_session(http, &jumper, 0).await?;
    let ended_ahead_s = (first["ended_ms"].as_i64().unwrap_or(0) - real_now_ms()) / 1000;
    ensure!(
        (3_000..3_700).contains(&ended_ahead_s),
        "the bridge's clock is {ended_ahead_s} s ahead, not 1 h: faketime not in effect? {first}"
    );

    // Back by 1 h, and by another 1 h: a session started before both ends an hour "before"
    // it started by the wall clock.
    for offset in ["+0", "-1h"] {
        set_offset(clock.path(), offset)?;
        let back_at = site.watcher.messages().len();
        tokio::time::sleep(Duration::from_secs(3)).await;
        wire.wait_charging(back_at, 1, Duration::from_secs(5))
            .await?;
    }
    car(&site, &steady, "leave").await?;
    let second = nth_session(http, &steady, 0).await?;
    let ended_behind_s = (real_now_ms() - second["ended_ms"].as_i64().unwrap_or(0)) / 1000;
    ensure!(
        (3_000..3_700).contains(&ended_behind_s),
        "the bridge's clock is {ended_behind_s} s behind, not 1 h: {second}"
    );
    let stats = wire.check("around the clock jumps")?;

    for (what, row, at_least_s) in [
        ("ended after +1 h", &first, 5),
        ("ended after -2 x 1 h", &second, 10),
    ] {
        let d = duration_ms(row);
        eprintln!("session {what}: {d} ms: {row}");
        ensure!(
            (at_least_s * 1000..120_000).contains(&d),
            "session {what} lasted {d} ms: {row}"
        );
    }
    let events: Value = serde_json::from_str(&http_get(http, "/api/v1/events?limit=1000").await?)?;
    let offline = events
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["text"].as_str().is_some_and(|t| t.starts_with("offline")))
        .count();
    ensure!(
        offline == 0,
        "bays went offline around a clock jump: {events:#}"
    );
    eprintln!("clock jumps: {stats:?}");
    simulator.stop().await;
    Ok(())
}
