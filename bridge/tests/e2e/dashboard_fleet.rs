//! The dashboard's fleet tree in a real browser (`e2e/dashboard.mjs --fleet`, Playwright
//! driving the Debian `chromium`) against the bridge binary on a real Mosquitto with
//! simulated bays and a firmware folder: the bays are shown in mesh order (a child indented
//! under its parent), "Install controller" on a bay that is not charging queues an AVR job
//! whose progress bar and Cancel button show in the bay's row until the job succeeds, and
//! the folder's newer ESP32 image offers "Install ESP32". Screenshots land in
//! `test-artifacts/dashboard-fleet*.png` at the workspace root.

use std::ffi::OsString;

use ctrl22_node::mesh::MacAddr;
use ctrl22_node::sim::OtaFaults;
use ctrl22_testkit::sim::Simulator;

use crate::ota::{boards_known, ota_site};
use crate::parameters_disabled::{node_until, set_enabled};

const BAYS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_tree_installs_a_controller_image_with_its_progress_shown() -> anyhow::Result<()>
{
    let ota = ota_site().await?;
    // The simulated bays run ESP32 3.4: a 3.5 image for their board is newer.
    std::fs::write(
        ota.firmware.path().join("demesh_agccs12_3_5.bin"),
        [0xe9_u8; 1024],
    )?;
    let (site, http, mut bridge) = (&ota.site, ota.http, ota.site.bridge()?);
    // Lost chunks make the transfer take long enough to be seen (and are retried).
    let sim = Simulator::start_with(&site.broker, &site.mesh, BAYS, 7, |world| {
        let macs: Vec<MacAddr> = world.macs().collect();
        world.set_ota_faults(
            macs[1],
            OtaFaults {
                lose_every_nth_chunk: Some(8),
                ..OtaFaults::default()
            },
        );
    });
    boards_known(http, BAYS).await?;
    let dev = sim.devs[1].clone();
    // A charging bay is refused an install from the page (no force there): stop this one.
    set_enabled(http, &dev, false).await?;
    node_until(http, &dev, "out of its session", |b| {
        b["session_started_ms"].is_null() && b["charging"] == false
    })
    .await?;

    let args: Vec<OsString> = [
        "--fleet".to_owned(),
        "--url".to_owned(),
        format!("http://{http}/"),
        "--token".to_owned(),
        crate::ota::TOKEN.to_owned(),
        "--bays".to_owned(),
        BAYS.to_string(),
        "--dev".to_owned(),
        dev.clone(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    tokio::task::spawn_blocking(move || crate::dashboard_browser::run_script(&args)).await?;
    site.wire()
        .check("through the install from the dashboard")?;
    bridge.kill();
    sim.stop().await;
    Ok(())
}
