//! Firmware installs through the running bridge, end to end: the bridge binary on a real
//! Mosquitto, simulated bays charging, an AVR image from the firmware folder installed over
//! `POST /api/v1/nodes/{dev}/firmware`. The independent wire check sees every message: no
//! instant above the fuse, no setpoint to the bay while it is flashed, its `ver` changed.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use ctrl22_node::mesh::{Address, Command, MacAddr, NodeMessage, OtaState};
use ctrl22_node::sim::OtaFaults;
use ctrl22_testkit::free_port;
use ctrl22_testkit::sim::Simulator;
use ctrl22_testkit::wire::{WireMessage, WireRecord};
use serde_json::Value;

use crate::mqtt_site::MqttSite;

pub(crate) const TOKEN: &str = "ota-test-token";
/// The simulator's board.
const BOARD: &str = "agccs12";

/// An Intel HEX file of a 4 KiB image that makes the simulated controller report `ver`.
pub(crate) fn hex_image(ver: i16) -> String {
    let mut bytes = vec![0x0c, 0x94, 0x5c, 0x00];
    bytes.extend_from_slice(format!("CTRL22VER={ver}\0").as_bytes());
    bytes.extend((0..4096 - bytes.len()).map(|i| (i % 251) as u8));
    let mut text = String::new();
    for (n, record) in bytes.chunks(16).enumerate() {
        let addr = u16::try_from(n * 16).unwrap_or(u16::MAX);
        let mut raw = vec![record.len() as u8, (addr >> 8) as u8, addr as u8, 0];
        raw.extend_from_slice(record);
        let sum = raw
            .iter()
            .fold(0u8, |a, b| a.wrapping_add(*b))
            .wrapping_neg();
        raw.push(sum);
        text.push(':');
        for b in raw {
            text.push_str(&format!("{b:02X}"));
        }
        text.push('\n');
    }
    text.push_str(":00000001FF\n");
    text
}

/// One HTTP/1.0 request; the status and the body.
pub(crate) async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").context("no HTTP head")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    Ok((status, body.to_owned()))
}

async fn install(
    http: SocketAddr,
    dev: &str,
    image: &str,
    force: bool,
) -> anyhow::Result<(u16, String)> {
    let body = serde_json::json!({ "image": image, "force": force }).to_string();
    call(
        http,
        "POST",
        &format!("/api/v1/nodes/{dev}/firmware"),
        &body,
    )
    .await
}

/// Waits until every job of `GET /api/v1/ota` is finished; returns the jobs.
async fn finished_jobs(http: SocketAddr, timeout: Duration) -> anyhow::Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (status, body) = call(http, "GET", "/api/v1/ota", "").await?;
        ensure!(status == 200, "GET /api/v1/ota: {status} {body}");
        let value: Value = serde_json::from_str(&body)?;
        let jobs = value["jobs"].as_array().cloned().unwrap_or_default();
        let open = jobs
            .iter()
            .any(|j| !matches!(j["state"].as_str(), Some("succeeded" | "failed")));
        if !jobs.is_empty() && !open {
            return Ok(jobs);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("jobs still running after {timeout:?}: {jobs:#?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the bridge knows every bay's board (from its `system` polls).
pub(crate) async fn boards_known(http: SocketAddr, bays: usize) -> anyhow::Result<()> {
    for _ in 0..120 {
        if let Ok((200, body)) = call(http, "GET", "/api/v1/nodes", "").await {
            let nodes: Value = serde_json::from_str(&body)?;
            let known = nodes
                .as_array()
                .map_or(0, |n| n.iter().filter(|b| b["board"] == BOARD).count());
            if known >= bays {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("the bridge did not learn the bays' boards")
}

/// What the wire shows of one bay's flash: setpoint writes to it between its first
/// `recimg` and the `running` after the last flash, and the `ver` it reported last.
pub(crate) fn flash_on_wire<R: WireRecord>(
    mesh: &str,
    records: &[R],
    bay: MacAddr,
) -> (usize, Option<i16>) {
    let decoded: Vec<WireMessage> = records.iter().filter_map(|r| r.decode(mesh)).collect();
    let start = decoded.iter().position(|m| {
        matches!(m, WireMessage::Command { dst: Address::Node(d), cmd: Command::AvrOtaRecImg } if *d == bay)
    });
    let end = decoded.iter().rposition(|m| {
        matches!(m, WireMessage::Uplink { src, msg: NodeMessage::AvrOta { state: OtaState::Running } } if *src == bay)
    });
    let writes = match (start, end) {
        (Some(s), Some(e)) => decoded
            .get(s..e)
            .unwrap_or_default()
            .iter()
            .filter(|m| {
                matches!(m, WireMessage::Command { dst: Address::Node(d), cmd: Command::AvrSetPar { .. } } if *d == bay)
            })
            .count(),
        _ => usize::MAX,
    };
    let ver = decoded.iter().rev().find_map(|m| match m {
        WireMessage::Uplink {
            src,
            msg: NodeMessage::AvrGetPar { par, val },
        } if *src == bay && par.as_str() == "ver" => *val,
        _ => None,
    });
    (writes, ver)
}

pub(crate) struct OtaSite {
    pub(crate) site: MqttSite,
    pub(crate) http: SocketAddr,
    pub(crate) firmware: tempfile::TempDir,
}

/// Two simulated bays, both charging, their boards known to the bridge.
pub(crate) async fn two_bays_charging(ota: &OtaSite) -> anyhow::Result<Simulator> {
    let sim = Simulator::start(&ota.site.broker, &ota.site.mesh, 2, 7);
    ota.site
        .wire()
        .wait_charging(0, 2, Duration::from_secs(40))
        .await?;
    boards_known(ota.http, 2).await?;
    Ok(sim)
}

pub(crate) async fn ota_site() -> anyhow::Result<OtaSite> {
    let firmware = tempfile::tempdir()?;
    std::fs::write(
        firmware.path().join(format!("ctrl22_{BOARD}_15.hex")),
        hex_image(15),
    )?;
    std::fs::write(firmware.path().join("ctrl22_m5stick_15.hex"), hex_image(15))?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let dir: &Path = firmware.path();
    // The ESP32 image server on loopback and a free port: tests run side by side.
    let extra = format!(
        "[firmware]\ndir = \"{}\"\nmax_parallel = 2\nesp32_host = \"127.0.0.1\"\nesp32_port = {}\n",
        dir.display(),
        free_port()?
    );
    let site = MqttSite::start_configured(|c| {
        c.http_listen = http;
        c.http_token = Some(TOKEN.to_owned());
        c.extra_toml = extra;
    })
    .await?;
    Ok(OtaSite {
        site,
        http,
        firmware,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avr_image_is_installed_over_http_while_the_site_charges() -> anyhow::Result<()> {
    let ota = ota_site().await?;
    let (site, http, mut bridge) = (&ota.site, ota.http, ota.site.bridge()?);
    let sim = Simulator::start(&site.broker, &site.mesh, 4, 7);
    let wire = site.wire();
    wire.wait_charging(0, 3, Duration::from_secs(40)).await?;
    boards_known(http, 4).await?;
    let target = sim.macs[0];
    let dev = &sim.devs[0];

    // Its car charges: refused unless forced; another board's image is refused anyway.
    let (status, body) = install(http, dev, &format!("ctrl22_{BOARD}_15.hex"), false).await?;
    ensure!(status == 409 && body.contains("session"), "{status} {body}");
    let (status, body) = install(http, dev, "ctrl22_m5stick_15.hex", true).await?;
    ensure!(status == 409 && body.contains("board"), "{status} {body}");
    let (status, body) = install(http, dev, "ctrl22_agccs12_99.hex", true).await?;
    ensure!(status == 404, "{status} {body}");

    let (status, body) = install(http, dev, &format!("ctrl22_{BOARD}_15.hex"), true).await?;
    ensure!(status == 202, "{status} {body}");
    let job = serde_json::from_str::<Value>(&body)?["job"].clone();
    let queued = std::time::Instant::now();
    let jobs = finished_jobs(http, Duration::from_secs(90)).await?;
    eprintln!(
        "4 KiB image installed through the bridge in {:.1?} (queued to verified, 0.5 s polls)",
        queued.elapsed()
    );
    // The refusals are kept too, each with its reason.
    ensure!(jobs.len() == 3, "{jobs:#?}");
    ensure!(
        jobs.iter()
            .any(|j| j["error"]["refused"]["reason"] == "wrong_board"),
        "{jobs:#?}"
    );
    let flashed = jobs.iter().find(|j| j["id"] == job).context("the job")?;
    ensure!(
        flashed["state"] == "succeeded" && flashed["installed_version"] == 15,
        "{flashed:#?}"
    );

    let records = site.watcher.messages();
    let (writes, ver) = flash_on_wire(&site.mesh, &records, target);
    ensure!(
        writes == 0,
        "{writes} setpoint writes to the bay while it was flashed"
    );
    ensure!(ver == Some(15), "the bay reports ver {ver:?}");
    // The others charged on, and the flashed bay is back under the bridge's setpoints.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let stats = wire.check("through the flash")?;
    eprintln!("wire: {stats:?}");
    bridge.kill();
    sim.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_chunks_and_a_bay_dropping_off_are_survived_two_bays_at_a_time() -> anyhow::Result<()>
{
    let ota = ota_site().await?;
    let (site, http, mut bridge) = (&ota.site, ota.http, ota.site.bridge()?);
    let sim = Simulator::start_with(&site.broker, &site.mesh, 3, 7, |world| {
        let macs: Vec<MacAddr> = world.macs().collect();
        world.set_ota_faults(
            macs[1],
            OtaFaults {
                lose_every_nth_chunk: Some(15),
                corrupt_every_nth_chunk: Some(5),
                ..OtaFaults::default()
            },
        );
        world.set_ota_faults(
            macs[2],
            OtaFaults {
                offline_after_chunks: Some(10),
                ..OtaFaults::default()
            },
        );
    });
    let wire = site.wire();
    wire.wait_charging(0, 2, Duration::from_secs(40)).await?;
    boards_known(http, 3).await?;
    for dev in &sim.devs[1..] {
        let (status, body) = install(http, dev, &format!("ctrl22_{BOARD}_15.hex"), true).await?;
        ensure!(status == 202, "{status} {body}");
    }
    let jobs = finished_jobs(http, Duration::from_secs(120)).await?;
    ensure!(jobs.iter().all(|j| j["state"] == "succeeded"), "{jobs:#?}");
    let records = site.watcher.messages();
    for mac in &sim.macs[1..] {
        let (writes, ver) = flash_on_wire(&site.mesh, &records, *mac);
        ensure!(
            writes == 0 && ver == Some(15),
            "{mac}: {writes} writes, ver {ver:?}"
        );
    }
    // The bay that dropped off was put into receive mode again: flashed from the start.
    let dropped = sim.macs[2];
    let recimg = records
        .iter()
        .filter(|r| {
            matches!(r.decode(&site.mesh), Some(WireMessage::Command { dst: Address::Node(d), cmd: Command::AvrOtaRecImg }) if d == dropped)
        })
        .count();
    ensure!(recimg >= 2, "receive mode entered {recimg} times");
    wire.check("two bays flashed with faults")?;
    bridge.kill();
    sim.stop().await;
    Ok(())
}

/// `ctrl22-bridge mesh avrflash` with the bridge running: the image goes through the
/// bridge's API, which holds the bay; a charging bay needs `--force`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_flashes_through_the_running_bridge() -> anyhow::Result<()> {
    let ota = ota_site().await?;
    let (site, mut bridge) = (&ota.site, ota.site.bridge()?);
    let sim = two_bays_charging(&ota).await?;
    let image = ota.firmware.path().join(format!("ctrl22_{BOARD}_15.hex"));
    let config = site.config.clone();
    let dev = sim.devs[1].clone();
    let avrflash = |force: bool| {
        let (config, image, dev) = (config.clone(), image.clone(), dev.clone());
        tokio::task::spawn_blocking(move || {
            let mut command = std::process::Command::new(crate::bridge_binary());
            command
                .args(["mesh", "--config"])
                .arg(&config)
                .args(["avrflash", &dev])
                .arg(&image);
            if force {
                command.arg("--force");
            }
            command.output()
        })
    };
    let refused = avrflash(false).await??;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success() && stderr.contains("session"),
        "{stderr}"
    );
    let flashed = avrflash(true).await??;
    let stdout = String::from_utf8_lossy(&flashed.stdout);
    ensure!(
        flashed.status.success()
            && stdout.contains("through the bridge")
            && stdout.contains("avrflash ok: ver 15"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&flashed.stderr)
    );
    let (writes, ver) = flash_on_wire(&site.mesh, &site.watcher.messages(), sim.macs[1]);
    ensure!(
        writes == 0 && ver == Some(15),
        "{writes} writes, ver {ver:?}"
    );
    site.wire().check("flashed from the CLI")?;
    // The fleet as a table: one row per bay, the flashed one on ver 15.
    let table = std::process::Command::new(crate::bridge_binary())
        .args(["mesh", "--config"])
        .arg(&config)
        .args(["--wait", "2s", "system", "*"])
        .output()?;
    let text = String::from_utf8_lossy(&table.stdout);
    let rows: Vec<&str> = text.lines().collect();
    ensure!(
        table.status.success() && rows.len() == 3 && rows[0].contains("avr_version"),
        "{text}"
    );
    let flashed_row = rows
        .iter()
        .find(|r| r.starts_with(&sim.macs[1].to_string()))
        .context("no row of the flashed bay")?;
    ensure!(flashed_row.contains(" 15 "), "{text}");
    bridge.kill();
    sim.stop().await;
    Ok(())
}
