//! OCPP Firmware Management end to end: a real central system sends UpdateFirmware with the
//! URL of an Intel HEX image that the test serves over HTTP on loopback; the bridge
//! downloads it, waits for the bay's charging session to end, flashes the simulated bay
//! through the site core's firmware job and reports Downloading, Downloaded, Installing,
//! Installed; the bay's `ver` changed on the wire. A location that answers 404 ends in
//! DownloadFailed after the attempts asked for; TriggerMessage(FirmwareStatusNotification)
//! is answered with Idle afterwards; GetDiagnostics gets no file name. With the site as one
//! charge point, every bay is flashed by one update, also from a URL that names no board
//! (all its bays report the same one).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use ctrl22_testkit::sim::Simulator;
use serde_json::json;

use crate::mqtt_site::MqttSite;
use crate::ocpp_peer::{Peer, PeerProcess};
use crate::ocpp_session::{append_config, enable_ocpp, ocpp_common};
use crate::ota::{boards_known, flash_on_wire, hex_image};

const STEP: Duration = Duration::from_secs(20);
/// The simulator's board; the file name carries it (and the version) as the bridge's
/// folder convention has it.
const IMAGE: &str = "ctrl22_agccs12_15.hex";
/// The path of an image whose URL gives no file name.
const UNNAMED_PATH: &str = "/fw";

/// An HTTP server on loopback serving `IMAGE` under `/fw/`, and a version 16 image at `/fw`
/// (a backend's `/fw?id=5`, no file name); everything else is 404, and counted.
async fn image_server() -> anyhow::Result<(SocketAddr, Arc<AtomicUsize>)> {
    let misses = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&misses);
    let app = axum::Router::new()
        .route(
            &format!("/fw/{IMAGE}"),
            axum::routing::get(|| async { hex_image(15) }),
        )
        .route(UNNAMED_PATH, axum::routing::get(|| async { hex_image(16) }))
        .fallback(move || {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::NOT_FOUND
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, misses))
}

/// The FirmwareStatusNotification statuses `cp` sent, in order.
fn firmware_statuses(cs: &PeerProcess, cp: &str) -> Vec<String> {
    cs.received(cp, "FirmwareStatusNotification")
        .iter()
        .filter_map(|p| p["status"].as_str().map(str::to_owned))
        .collect()
}

async fn wait_firmware(cs: &PeerProcess, cp: &str, status: &str) -> anyhow::Result<()> {
    cs.wait_for(
        2 * STEP,
        &format!("FirmwareStatusNotification {status}"),
        |l| {
            l["kind"] == "recv"
                && l["cp"] == cp
                && l["action"] == "FirmwareStatusNotification"
                && l["payload"]["status"] == status
        },
    )
    .await
    .map(|_| ())
}

async fn firmware_update(peer: Peer) -> anyhow::Result<()> {
    let (server, misses) = image_server().await?;
    let mut cs = PeerProcess::start(&peer, &["--heartbeat".into(), "5".into()]).await?;
    let site = MqttSite::start().await?;
    enable_ocpp(&site, &cs.url(), "")?;
    let mut bridge = site.bridge()?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 1, 5);
    let (cp, mac) = (simulator.devs[0].clone(), simulator.macs[0]);

    // The car charges: a transaction runs.
    let tx = cs.transaction_id(&cp, 2 * STEP).await?;
    let keys = cs
        .call(
            &cp,
            "GetConfiguration",
            json!({"key": ["SupportedFeatureProfiles"]}),
        )
        .await?;
    ensure!(
        keys["payload"]["configurationKey"][0]["value"]
            .as_str()
            .is_some_and(|v| v.contains("FirmwareManagement")),
        "{keys}"
    );

    // UpdateFirmware while charging: downloaded at once, installed once the session ended.
    let location = format!("http://{server}/fw/{IMAGE}");
    let answer = cs
        .call(
            &cp,
            "UpdateFirmware",
            json!({"location": location, "retrieveDate": "2026-01-01T00:00:00Z", "retries": 2, "retryInterval": 1}),
        )
        .await?;
    ensure!(answer["kind"] == "result", "{answer}");
    wait_firmware(&cs, &cp, "Downloaded").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        firmware_statuses(&cs, &cp) == ["Downloading", "Downloaded"],
        "nothing installed while the car charges: {:?}",
        firmware_statuses(&cs, &cp)
    );
    let stop = cs
        .call(&cp, "RemoteStopTransaction", json!({"transactionId": tx}))
        .await?;
    ensure!(stop["payload"]["status"] == "Accepted", "{stop}");
    let stopped_at = std::time::Instant::now();
    wait_firmware(&cs, &cp, "Installed").await?;
    eprintln!(
        "session stopped -> Installed in {:.1?}",
        stopped_at.elapsed()
    );
    ensure!(
        firmware_statuses(&cs, &cp) == ["Downloading", "Downloaded", "Installing", "Installed"],
        "{:?}",
        firmware_statuses(&cs, &cp)
    );
    let (writes, ver) = flash_on_wire(&site.mesh, &site.watcher.messages(), mac);
    ensure!(
        writes == 0 && ver == Some(15),
        "{writes} setpoint writes during the flash, ver {ver:?}"
    );

    // A location that answers 404: two attempts, then DownloadFailed.
    let from = cs.received(&cp, "FirmwareStatusNotification").len();
    let answer = cs
        .call(
            &cp,
            "UpdateFirmware",
            json!({"location": format!("http://{server}/fw/missing.hex"), "retrieveDate": "2026-01-01T00:00:00Z", "retries": 2, "retryInterval": 1}),
        )
        .await?;
    ensure!(answer["kind"] == "result", "{answer}");
    wait_firmware(&cs, &cp, "DownloadFailed").await?;
    let after = firmware_statuses(&cs, &cp).split_off(from);
    ensure!(
        after == ["Downloading", "Downloading", "DownloadFailed"],
        "{after:?}"
    );
    ensure!(
        misses.load(Ordering::SeqCst) == 2,
        "GETs of the missing image"
    );

    // Nothing in progress: a trigger answers Idle, after its .conf.
    let trigger = cs
        .call(
            &cp,
            "TriggerMessage",
            json!({"requestedMessage": "FirmwareStatusNotification"}),
        )
        .await?;
    ensure!(trigger["payload"]["status"] == "Accepted", "{trigger}");
    wait_firmware(&cs, &cp, "Idle").await?;
    let diagnostics = cs
        .call(
            &cp,
            "GetDiagnostics",
            json!({"location": format!("http://{server}/upload/")}),
        )
        .await?;
    ensure!(
        diagnostics["kind"] == "result" && diagnostics["payload"].get("fileName").is_none(),
        "{diagnostics}"
    );

    // Nothing we sent failed the backend's schema validation (the strict peer logs it).
    let invalid = cs.schema_violations();
    ensure!(invalid.is_empty(), "{invalid:#?}");
    site.wire().check("through the OCPP firmware update")?;
    bridge.kill();
    simulator.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ocpp_backend_updates_a_bays_firmware() -> anyhow::Result<()> {
    firmware_update(Peer::python()?)
        .await
        .context("python ocpp")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_ocpp_rpc_backend_updates_a_bays_firmware() -> anyhow::Result<()> {
    firmware_update(Peer::npm()?).await.context("npm ocpp-rpc")
}

/// `layout = "single"`: one UpdateFirmware flashes every bay (cars waiting for the backend's
/// start, so no session holds the install back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_update_flashes_every_bay_of_a_single_charge_point() -> anyhow::Result<()> {
    update_single_charge_point(&format!("/fw/{IMAGE}"), 15).await
}

/// A URL with no file name gives no board: the image is taken for the one board every bay
/// reports (the simulator's), and installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_named_by_no_url_is_flashed_for_the_bays_one_board() -> anyhow::Result<()> {
    update_single_charge_point(&format!("{UNNAMED_PATH}?id=5"), 16).await
}

/// Two bays as one charge point, updated from `path` on the image server; each bay reports
/// `ver` after it.
async fn update_single_charge_point(path: &str, ver: i16) -> anyhow::Result<()> {
    let (server, _) = image_server().await?;
    let mut cs = PeerProcess::start(&Peer::npm()?, &[]).await?;
    let http = SocketAddr::from(([127, 0, 0, 1], ctrl22_testkit::free_port()?));
    let site = MqttSite::start_configured(|c| c.http_listen = http).await?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 2, 17);
    let nodes: String = simulator
        .devs
        .iter()
        .map(|dev| format!("[nodes.{dev}]\n"))
        .collect();
    append_config(
        &site,
        &format!(
            "[ocpp]\nlayout = \"single\"\nidentity = \"lot-{{site}}\"\nauthorization = \"backend\"\n{}\n{nodes}",
            ocpp_common(&cs.url())
        ),
    )?;
    let mut bridge = site.bridge()?;
    let cp = "lot-e2e";
    cs.wait_for(STEP, "the site's BootNotification", |l| {
        l["cp"] == cp && l["action"] == "BootNotification"
    })
    .await?;
    // Both bays seen (their status reported) before the update.
    for connector in [1, 2] {
        cs.wait_for(STEP, &format!("connector {connector} Preparing"), |l| {
            l["cp"] == cp
                && l["action"] == "StatusNotification"
                && l["payload"]["connectorId"] == connector
                && l["payload"]["status"] == "Preparing"
        })
        .await?;
    }
    // Their boards known (an image named by no URL is taken for their one board).
    boards_known(http, 2).await?;
    let answer = cs
        .call(
            cp,
            "UpdateFirmware",
            json!({"location": format!("http://{server}{path}"), "retrieveDate": "2026-01-01T00:00:00Z"}),
        )
        .await?;
    ensure!(answer["kind"] == "result", "{answer}");
    wait_firmware(&cs, cp, "Installed").await?;
    ensure!(
        firmware_statuses(&cs, cp) == ["Downloading", "Downloaded", "Installing", "Installed"],
        "{:?}",
        firmware_statuses(&cs, cp)
    );
    let records = site.watcher.messages();
    for mac in &simulator.macs {
        let (writes, found) = flash_on_wire(&site.mesh, &records, *mac);
        ensure!(
            writes == 0 && found == Some(ver),
            "{mac}: {writes} writes, ver {found:?}"
        );
    }
    let invalid = cs.schema_violations();
    ensure!(invalid.is_empty(), "{invalid:#?}");
    bridge.kill();
    simulator.stop().await;
    Ok(())
}
