//! Firmware requests in the site task: an install goes to the core, whose outputs (the
//! hold, the first command) are carried out before the answer.

use std::time::Duration;

use super::SiteTask;
use crate::config::FirmwareConfig;
use crate::handle::{FirmwareRequest, SiteHandle, SiteRequest};
use crate::ota::esp32::Esp32Params;
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

/// Serves the firmware folder's ESP32 images to the mesh root on `[firmware] esp32_port`,
/// when there is a folder. A port that cannot be bound is logged, not fatal: charging does
/// not depend on it.
pub(super) fn spawn_image_server(config: &FirmwareConfig) {
    let Some(dir) = config.dir.clone() else {
        return;
    };
    let addr = std::net::SocketAddr::new(config.esp32_host, config.esp32_port);
    tokio::spawn(async move {
        let max_bytes = crate::ota::server::MAX_ESP32_BYTES;
        if let Err(e) = crate::ota::server::serve(addr, dir, max_bytes).await {
            tracing::warn!("firmware image server on {addr}: {e}");
        }
    });
}

/// The job queue's parameters from `[firmware]`.
pub(super) fn params(config: &FirmwareConfig) -> OtaParams {
    OtaParams {
        max_parallel: config.max_parallel,
        esp32: Esp32Params {
            timeout_ms: u64::try_from(config.esp32_timeout.as_millis()).unwrap_or(u64::MAX),
            ..Esp32Params::default()
        },
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
            FirmwareRequest::InstallEsp32 { bay, image, reply } => {
                let now = self.clock.now();
                match self.site.submit_esp32(now, bay.as_ref(), image) {
                    Ok((job, outputs)) => {
                        self.execute(now, outputs).await?;
                        let _ = reply.send(Ok(job));
                    }
                    Err(refusal) => {
                        tracing::info!(?bay, "ESP32 firmware install refused: {refusal}");
                        let _ = reply.send(Err(refusal));
                    }
                }
            }
            FirmwareRequest::Cancel { job, reply } => {
                let now = self.clock.now();
                match self.site.cancel_firmware(now, job) {
                    Ok(outputs) => {
                        self.execute(now, outputs).await?;
                        tracing::info!(job, "firmware job cancelled");
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
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
