//! Firmware requests in the site task: an install goes to the core, whose outputs (the
//! hold, the first command) are carried out before the answer.

use std::time::Duration;

use super::SiteTask;
use crate::config::FirmwareConfig;
use crate::handle::{FirmwareRequest, SiteHandle, SiteRequest};
use crate::ota::folder;
use crate::ota::jobs::OtaParams;

/// How often the firmware folder is looked at again for new images.
const FOLDER_RESCAN: Duration = Duration::from_secs(30);

/// Tells the site what the firmware folder holds, now and every [`FOLDER_RESCAN`], until
/// the site task is gone.
pub(super) fn spawn_folder_scan(config: &FirmwareConfig, site: SiteHandle) {
    let Some(dir) = config.dir.clone() else {
        return;
    };
    tokio::spawn(async move {
        let mut every = tokio::time::interval(FOLDER_RESCAN);
        let mut last = None;
        loop {
            every.tick().await;
            let scan_dir = dir.clone();
            let scanned = tokio::task::spawn_blocking(move || folder::list(&scan_dir)).await;
            let images = match scanned {
                Ok(Ok(images)) => images,
                Ok(Err(e)) => {
                    tracing::warn!("firmware.dir {}: {e}", dir.display());
                    Vec::new()
                }
                Err(_) => return,
            };
            if last.as_ref() == Some(&images) {
                continue;
            }
            last = Some(images.clone());
            let request = SiteRequest::Firmware(FirmwareRequest::Catalogue(images));
            if !site.try_send(request) {
                return;
            }
        }
    });
}

/// The job queue's parameters from `[firmware]`.
pub(super) fn params(config: &FirmwareConfig) -> OtaParams {
    OtaParams {
        max_parallel: config.max_parallel,
        ..OtaParams::default()
    }
}

impl SiteTask {
    /// # Errors
    /// When the store thread has stopped.
    pub(super) async fn firmware(&mut self, request: FirmwareRequest) -> anyhow::Result<()> {
        match request {
            FirmwareRequest::Install {
                bay,
                image,
                force,
                reply,
            } => {
                let now = self.clock.now();
                match self.site.submit_firmware(now, &bay, image, force) {
                    Ok((job, outputs)) => {
                        self.execute(now, outputs).await?;
                        let _ = reply.send(Ok(job));
                    }
                    Err(refusal) => {
                        tracing::info!(%bay, "firmware install refused: {refusal}");
                        let _ = reply.send(Err(refusal));
                    }
                }
            }
            FirmwareRequest::Jobs { reply } => {
                let _ = reply.send(self.site.firmware_jobs());
            }
            FirmwareRequest::Catalogue(images) => {
                self.site.set_firmware_catalogue(images);
                self.publish(self.clock.now());
            }
        }
        Ok(())
    }
}
