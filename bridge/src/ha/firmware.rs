//! The controller update entity's install: Home Assistant's `update.install` publishes
//! [`PAYLOAD_INSTALL`] to `.../set/install_avr`, and the bay's newest controller image from
//! the firmware folder becomes a firmware job of the site core. The core refuses a bay that
//! charges (Home Assistant has no "force"), another board's image or a bay that is busy; the
//! refusal shows in the entity's release summary.

use ctrl22_ha::ctrl22::PAYLOAD_INSTALL;

use crate::bay::BayId;
use crate::config::FirmwareConfig;
use crate::handle::SiteHandle;
use crate::ota::folder;

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
    if payload != PAYLOAD_INSTALL.as_bytes() {
        return Err(format!(
            "install_avr: the payload must be {PAYLOAD_INSTALL:?}"
        ));
    }
    let snapshot = site.snapshot();
    let bay = snapshot
        .bays
        .iter()
        .find(|b| b.dev == dev)
        .ok_or_else(|| format!("install_avr: no bay {dev}"))?;
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
