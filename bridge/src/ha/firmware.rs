//! The update entities' installs: Home Assistant's `update.install` publishes
//! [`PAYLOAD_INSTALL`] to `.../set/install_avr` (controller) or `.../set/install_esp32`
//! (node firmware), and the bay's newest image of that kind from the firmware folder becomes
//! a firmware job of the site core. The core refuses a controller install on a bay that
//! charges (Home Assistant has no "force"), another board's image or a busy bay; the refusal
//! shows in the entity's release summary. A node firmware install upgrades every node of
//! the bay's board (the mesh root distributes the image), so its entity on each of those
//! bays shows the progress.

use ctrl22_ha::ctrl22::PAYLOAD_INSTALL;

use crate::bay::BayId;
use crate::config::FirmwareConfig;
use crate::handle::SiteHandle;
use crate::ota::esp32::Esp32State;
use crate::ota::folder;
use crate::ota::server::MAX_ESP32_BYTES;
use crate::site::snapshot::BaySnapshot;

/// Queues the install; `Err` says why not.
///
/// # Errors
/// A payload other than [`PAYLOAD_INSTALL`], no image for the bay, the core's refusal.
pub async fn install(
    site: &SiteHandle,
    firmware: &FirmwareConfig,
    dev: &str,
    payload: &[u8],
) -> Result<(), String> {
    let bay = target(site, "install_avr", dev, payload)?;
    let latest = bay
        .avr_latest
        .clone()
        .ok_or("install_avr: no controller image in the firmware folder for the bay's board")?;
    let dir = firmware.dir.clone();
    let max = firmware.max_image_bytes;
    let image =
        tokio::task::spawn_blocking(move || folder::load_avr(dir.as_deref(), &latest.file, max))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("install_avr: {e}"))?;
    match site
        .install_firmware(BayId(dev.to_owned()), image, false)
        .await
    {
        Some(Ok(job)) => {
            tracing::info!(
                bay = dev,
                job,
                "firmware install from Home Assistant queued"
            );
            Ok(())
        }
        Some(Err(refusal)) => Err(format!("install_avr: {refusal}")),
        None => Err("install_avr: the site has stopped".to_owned()),
    }
}

/// Queues the ESP32 upgrade of the bay's board to the folder's newest image for it.
///
/// # Errors
/// A payload other than [`PAYLOAD_INSTALL`], no image for the bay's board, the core's refusal.
pub async fn install_esp32(
    site: &SiteHandle,
    firmware: &FirmwareConfig,
    dev: &str,
    payload: &[u8],
) -> Result<(), String> {
    let bay = target(site, "install_esp32", dev, payload)?;
    let latest = bay.esp32_latest.clone().ok_or(
        "install_esp32: no node firmware image in the firmware folder for the bay's board",
    )?;
    let dir = firmware.dir.clone();
    let image = tokio::task::spawn_blocking(move || {
        folder::find_esp32(dir.as_deref(), &latest.file, MAX_ESP32_BYTES)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("install_esp32: {e}"))?;
    match site.install_esp32(Some(BayId(dev.to_owned())), image).await {
        Some(Ok(job)) => {
            tracing::info!(
                bay = dev,
                job,
                "node firmware upgrade from Home Assistant queued"
            );
            Ok(())
        }
        Some(Err(refusal)) => Err(format!("install_esp32: {refusal}")),
        None => Err("install_esp32: the site has stopped".to_owned()),
    }
}

/// The bay an install (`what`) is for, once its payload is [`PAYLOAD_INSTALL`].
fn target(site: &SiteHandle, what: &str, dev: &str, payload: &[u8]) -> Result<BaySnapshot, String> {
    if payload != PAYLOAD_INSTALL.as_bytes() {
        return Err(format!("{what}: the payload must be {PAYLOAD_INSTALL:?}"));
    }
    site.snapshot()
        .bays
        .iter()
        .find(|b| b.dev == dev)
        .cloned()
        .ok_or_else(|| format!("{what}: no bay {dev}"))
}

/// What the node firmware's update entity shows.
pub(super) struct NodeUpdate {
    pub(super) latest: String,
    pub(super) in_progress: bool,
    pub(super) percent: Option<u8>,
    pub(super) summary: String,
}

/// The node firmware update of `bay`: the folder's newest image for its board, and the
/// latest upgrade it took part in.
pub(super) fn node_update(bay: &BaySnapshot) -> NodeUpdate {
    let installed = bay.firmware.clone().unwrap_or_default();
    let latest = bay
        .esp32_latest
        .as_ref()
        .map_or_else(|| installed.clone(), |l| l.version.clone());
    let job = bay.esp32_job.as_ref();
    let done_here = job.is_some_and(|j| j.done_here);
    let in_progress = job.is_some_and(|j| !j.state.is_finished()) && !done_here;
    let summary = match job {
        Some(j) => match &j.state {
            Esp32State::Failed { error } if j.straggler_here => {
                format!(
                    "{}: this bay did not report {}: {error}",
                    j.image, j.version
                )
            }
            Esp32State::Failed { error } if error.starts_with("refused") => {
                format!("install {error}")
            }
            Esp32State::Failed { error } => format!("last upgrade of the board failed: {error}"),
            Esp32State::Queued => "upgrade queued".to_owned(),
            Esp32State::Upgrading => format!(
                "upgrading the {} nodes: {} of {} report {}",
                j.board, j.bays_done, j.bays_total, j.version
            ),
            Esp32State::Succeeded => format!("{} installed on the board's nodes", j.image),
        },
        None => bay
            .esp32_latest
            .as_ref()
            .map(|l| format!("image {}", l.file))
            .unwrap_or_default(),
    };
    NodeUpdate {
        latest,
        in_progress,
        percent: job.filter(|_| in_progress).map(|j| j.progress_pct),
        summary,
    }
}
