//! Firmware requests in the site task: an install goes to the core, whose outputs (the
//! hold, the first command) are carried out before the answer.

use super::SiteTask;
use crate::config::FirmwareConfig;
use crate::handle::FirmwareRequest;
use crate::ota::jobs::OtaParams;

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
        }
        Ok(())
    }
}
