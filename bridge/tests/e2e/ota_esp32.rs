//! ESP32 upgrades and job cancels through the running bridge, end to end: the bridge binary
//! on a real Mosquitto, a simulated site of mixed boards whose root downloads the image over
//! HTTP from the bridge's own image server, installed from the node firmware update entity's
//! command topic (as Home Assistant publishes it) with the refusals of
//! `POST /api/v1/nodes/{dev}/firmware`, and `DELETE /api/v1/ota/{job}` of an AVR transfer
//! under way.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use ctrl22_ha::ctrl22::{BayCommand, BayField, Topics, PAYLOAD_INSTALL};
use ctrl22_node::mesh::{Address, Command, MacAddr};
use ctrl22_node::sim::OtaFaults;
use ctrl22_testkit::bridge::HomeAssistant;
use ctrl22_testkit::sim::Simulator;
use ctrl22_testkit::wire::{WireMessage, WireRecord};
use ctrl22_testkit::{free_port, Recorder};
use serde_json::Value;

use crate::mqtt_site::MqttSite;
use crate::ota::call;

const IMAGE: &str = "demesh_agccs12_3_6.bin";

/// The bays of `GET /api/v1/nodes` by dev.
async fn nodes(http: SocketAddr) -> anyhow::Result<Vec<Value>> {
    let (status, body) = call(http, "GET", "/api/v1/nodes", "").await?;
    ensure!(status == 200, "GET /api/v1/nodes: {status} {body}");
    Ok(serde_json::from_str::<Value>(&body)?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

async fn job(http: SocketAddr, id: &Value) -> anyhow::Result<Value> {
    let (status, body) = call(http, "GET", "/api/v1/ota", "").await?;
    ensure!(status == 200, "GET /api/v1/ota: {status} {body}");
    let value: Value = serde_json::from_str(&body)?;
    value["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["id"] == *id).cloned())
        .context("the job is not listed")
}

/// Waits until every bay reports a board.
async fn boards_known(http: SocketAddr, bays: usize) -> anyhow::Result<()> {
    for _ in 0..120 {
        let known = nodes(http)
            .await
            .map(|n| n.iter().filter(|b| b["board"].is_string()).count())
            .unwrap_or(0);
        if known >= bays {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("the bridge did not learn the bays' boards")
}

/// The error of the refused ESP32 job `GET /api/v1/ota` keeps.
async fn refusal_kept(http: SocketAddr) -> anyhow::Result<String> {
    let (_, body) = call(http, "GET", "/api/v1/ota", "").await?;
    let listed: Value = serde_json::from_str(&body)?;
    listed["jobs"]
        .as_array()
        .and_then(|jobs| {
            jobs.iter()
                .find_map(|j| j["error"].as_str().map(str::to_owned))
        })
        .context("the refusal is not kept")
}

/// The image server's count of images served, from `/metrics`.
async fn images_served(http: SocketAddr) -> anyhow::Result<f64> {
    let (status, body) = call(http, "GET", "/metrics", "").await?;
    ensure!(status == 200, "/metrics: {status}");
    body.lines()
        .find(|l| l.starts_with("ctrl22_firmware_server_requests_total{answer=\"served\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no image server counter in /metrics:\n{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_esp32_image_upgrades_the_bays_of_its_board_and_reports_a_straggler(
) -> anyhow::Result<()> {
    let firmware = tempfile::tempdir()?;
    std::fs::write(firmware.path().join(IMAGE), vec![0xe9; 200_000])?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let fw_port = free_port()?;
    let extra = format!(
        "[firmware]\ndir = \"{}\"\nesp32_host = \"127.0.0.1\"\nesp32_port = {fw_port}\n\
         esp32_timeout = \"30s\"\n",
        firmware.path().display()
    );
    let site = MqttSite::start_configured(|c| {
        c.http_listen = http;
        c.http_token = Some("ota-test-token".to_owned());
        c.extra_toml = extra;
        c.homeassistant = Some(HomeAssistant {
            discovery_prefix: "homeassistant".to_owned(),
            discovery: "device".to_owned(),
        });
    })
    .await?;
    let topics = Topics::new(&site.bridge_config.site_name)?;
    let ha = Recorder::connect(site.broker.port(), "e2e-ha", &["ctrl22/#"]).await?;
    let mut bridge = site.bridge()?;
    // 4 agccs12 bays (the last never takes the upgrade) and 2 m5stick bays.
    let sim = Simulator::start_with(&site.broker, &site.mesh, 6, 11, |world| {
        let macs: Vec<MacAddr> = world.macs().collect();
        for mac in &macs[4..] {
            world.set_board(*mac, "m5stick");
        }
        world.set_ota_faults(
            macs[3],
            OtaFaults {
                refuses_esp32_upgrade: true,
                ..OtaFaults::default()
            },
        );
        world.set_fw_server(Some(format!("127.0.0.1:{fw_port}")));
    });
    site.wire()
        .wait_charging(0, 3, Duration::from_secs(40))
        .await?;
    boards_known(http, 6).await?;
    let agccs: Vec<&String> = sim.devs[..4].iter().collect();
    let m5stick: Vec<&String> = sim.devs[4..].iter().collect();

    // A bay of another board is refused, naming why.
    let body = serde_json::json!({ "image": IMAGE }).to_string();
    let path = |dev: &str| format!("/api/v1/nodes/{dev}/firmware");
    let (status, answer) = call(http, "POST", &path(m5stick[0]), &body).await?;
    ensure!(
        status == 400 && answer.contains("board"),
        "{status} {answer}"
    );
    let refused = refusal_kept(http).await?;
    ensure!(refused.contains("m5stick"), "{refused}");
    // Installed from the bay's node firmware update entity, as Home Assistant does.
    let install = topics.bay_command(agccs[0], BayCommand::InstallEsp32);
    ha.publish(&install, PAYLOAD_INSTALL).await?;
    let mut id = Value::Null;
    for _ in 0..40 {
        let (_, body) = call(http, "GET", "/api/v1/ota", "").await?;
        let listed: Value = serde_json::from_str(&body)?;
        if let Some(job) = listed["jobs"].as_array().and_then(|jobs| {
            jobs.iter().find(|j| {
                // The refusal above is kept too (for the m5stick bay's entity): not this one.
                let refused = j["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("refused"));
                j["kind"] == "esp32" && j["image"] == IMAGE && !refused
            })
        }) {
            id = job["id"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ensure!(
        !id.is_null(),
        "no ESP32 job after the Home Assistant install"
    );
    // The same board again while it runs: busy.
    let again = serde_json::json!({ "image": IMAGE }).to_string();
    let (status, answer) = call(http, "POST", "/api/v1/firmware/esp32", &again).await?;
    ensure!(status == 409, "{status} {answer}");

    let started = std::time::Instant::now();
    let mut done = Value::Null;
    for _ in 0..120 {
        done = job(http, &id).await?;
        if matches!(done["state"].as_str(), Some("succeeded" | "failed")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("ESP32 job over after {:.1?}: {done:#}", started.elapsed());
    ensure!(
        done["kind"] == "esp32" && done["board"] == "agccs12",
        "{done:#}"
    );
    ensure!(done["state"] == "failed", "{done:#}");
    let listed = |key: &str| -> Vec<String> {
        done[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    ensure!(listed("bays").len() == 4, "{done:#}");
    ensure!(listed("bays_done").len() == 3, "{done:#}");
    ensure!(listed("stragglers") == [agccs[3].clone()], "{done:#}");
    ensure!(done["progress_pct"] == 75, "{done:#}");
    ensure!(
        images_served(http).await? >= 1.0,
        "the root's download was not counted"
    );

    // The snapshot: the upgraded bays on 3.6, the straggler and the other board unchanged.
    let bays = nodes(http).await?;
    let version_of = |dev: &str| {
        bays.iter()
            .find(|b| b["dev"] == dev)
            .and_then(|b| b["firmware"].as_str().map(str::to_owned))
    };
    for dev in &agccs[..3] {
        ensure!(
            version_of(dev).as_deref() == Some("3.6"),
            "{dev}: {bays:#?}"
        );
    }
    for dev in [agccs[3]].into_iter().chain(m5stick.iter().copied()) {
        ensure!(
            version_of(dev).as_deref() == Some("3.4"),
            "{dev}: {bays:#?}"
        );
    }
    // `upgrade` went to the root once; the other board's bays were never polled by the job
    // beyond the bridge's own detail polls.
    let records = site.watcher.messages();
    let upgrades = records
        .iter()
        .filter(|r| {
            matches!(
                r.decode(&site.mesh),
                Some(WireMessage::Command {
                    dst: Address::Root,
                    cmd: Command::Upgrade { .. }
                })
            )
        })
        .count();
    ensure!(upgrades == 1, "{upgrades} upgrade commands");
    // What the update entities read: the upgraded bay is up to date, the straggler says why.
    let state_of = |dev: &str| -> Option<Value> {
        let topic = topics.bay_state(dev);
        ha.messages()
            .iter()
            .rev()
            .find(|m| m.topic == topic)
            .and_then(|m| serde_json::from_slice(&m.payload).ok())
    };
    let upgraded = state_of(agccs[0]).context("no state of an upgraded bay")?;
    ensure!(
        upgraded[BayField::FwVersion.as_str()] == "3.6"
            && upgraded[BayField::FwLatest.as_str()] == "3.6"
            && upgraded[BayField::FwUpdateInProgress.as_str()] == false,
        "{upgraded:#}"
    );
    let straggler = state_of(agccs[3]).context("no state of the straggler")?;
    let summary = straggler[BayField::FwReleaseSummary.as_str()]
        .as_str()
        .unwrap_or_default();
    ensure!(
        straggler[BayField::FwLatest.as_str()] == "3.6" && summary.contains("did not report"),
        "{straggler:#}"
    );
    site.wire().check("through the ESP32 upgrade")?;
    bridge.kill();
    sim.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_avr_transfer_releases_the_bay() -> anyhow::Result<()> {
    let ota = crate::ota::ota_site().await?;
    let (site, http, mut bridge) = (&ota.site, ota.http, ota.site.bridge()?);
    // Every 4th chunk to bay 1 is lost (5 s each): the transfer takes long enough to be
    // cancelled before `avrota flash`, after which a cancel is refused.
    let sim = Simulator::start_with(&site.broker, &site.mesh, 2, 7, |world| {
        let macs: Vec<MacAddr> = world.macs().collect();
        world.set_ota_faults(
            macs[1],
            OtaFaults {
                lose_every_nth_chunk: Some(4),
                ..OtaFaults::default()
            },
        );
    });
    site.wire()
        .wait_charging(0, 2, Duration::from_secs(40))
        .await?;
    crate::ota::boards_known(http, 2).await?;
    let dev = &sim.devs[1];
    let mac = sim.macs[1];
    let body = serde_json::json!({ "image": "ctrl22_agccs12_15.hex", "force": true }).to_string();
    let (status, answer) = call(
        http,
        "POST",
        &format!("/api/v1/nodes/{dev}/firmware"),
        &body,
    )
    .await?;
    ensure!(status == 202, "{status} {answer}");
    let id = serde_json::from_str::<Value>(&answer)?["job"].clone();
    // Mid-transfer: some chunks acknowledged, not all.
    let mut running = Value::Null;
    for _ in 0..100 {
        running = job(http, &id).await?;
        if running["state"] == "transferring" && running["progress_pct"].as_u64() > Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(running["state"] == "transferring", "{running:#}");
    let path = format!("/api/v1/ota/{id}");
    let (status, answer) = call(http, "DELETE", &path, "").await?;
    ensure!(status == 200, "{status} {answer}");
    let cancelled = job(http, &id).await?;
    ensure!(
        cancelled["state"] == "failed" && cancelled["error"] == "cancelled",
        "{cancelled:#}"
    );
    let (status, _) = call(http, "DELETE", &path, "").await?;
    ensure!(status == 409, "a finished job: {status}");
    let (status, _) = call(http, "DELETE", "/api/v1/ota/999999", "").await?;
    ensure!(status == 404, "no such job: {status}");

    // No hold left: the bay gets the bridge's setpoints again, and nothing overloaded.
    let cancelled_at = site.watcher.messages().len();
    let mut written = false;
    for _ in 0..60 {
        written = site.watcher.messages().iter().skip(cancelled_at).any(|r| {
            matches!(r.decode(&site.mesh), Some(WireMessage::Command { dst: Address::Node(d), cmd: Command::AvrSetPar { .. } }) if d == mac)
        });
        if written {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ensure!(written, "no setpoint to the bay after the cancel");
    let chunks_after = site
        .watcher
        .messages()
        .iter()
        .skip(cancelled_at)
        .filter(|r| {
            matches!(r.decode(&site.mesh), Some(WireMessage::Command { dst: Address::Node(d), cmd: Command::AvrImg { .. } }) if d == mac)
        })
        .count();
    ensure!(
        chunks_after == 0,
        "{chunks_after} chunks sent after the cancel"
    );
    site.wire().check("an AVR transfer cancelled")?;
    bridge.kill();
    sim.stop().await;
    Ok(())
}
