//! Firmware jobs inside the site core: the core owns the [`OtaJobs`] queue, tells it what it
//! knows of a bay (online, in a session, its board), and holds a bay while its job runs.
//!
//! Holding a bay: the sequencer treats it as offline (nothing is sent to it, its
//! reservation stays as it is) and its heartbeats do not reach the sequencer, since a
//! controller being replaced says nothing about the setpoints it will hold. When the job
//! ends the controller has restarted from its EEPROM: the sequencer forgets what it knew
//! of the node but keeps the old reservation as a floor until the node confirmed the
//! bridge's own setpoint, as after a restart of the bridge.
//!
//! ESP32 upgrades ([`Esp32Jobs`]) hold nothing: the AVR charges on while its node is
//! flashed. When a bay reports the new version its node restarted, and the AVR may have
//! restarted with it: the node firmware (`demesh.c` of AGCCS-CTRL22) drives the AVR's reset
//! line from an ESP32 pin that it only sets to "run" in its start-up code, so while the ESP32
//! reboots the line is not driven. The bay is learned afresh as after an AVR job
//! (reservation kept as a floor). The two kinds never overlap: an AVR job is refused while
//! an upgrade runs (the root relays everything, and nodes restart), and a queued upgrade
//! waits while an AVR job runs.

use ctrl22_node::mesh::{Address, MacAddr, NodeMessage};
use ctrl22_node::Ccss;

use super::events::{BayEvent, BayEventKind};
use super::snapshot::{LatestAvr, LatestEsp32};
use super::{Output, Site};
use crate::bay::BayId;
use crate::clock::Now;
use crate::config::firmware::ImageName;
use crate::ota::esp32::{CancelError, Esp32Bay, Esp32BayJob, Esp32Image, Esp32Jobs, Esp32Output};
use crate::ota::folder::latest_esp32;
use crate::ota::folder::{self, FolderImage};
use crate::ota::jobs::{
    AnyJobView, AvrImage, BayFacts, JobView, OtaJobs, OtaOutput, OtaParams, Refusal,
};

impl Site {
    /// How many bays are flashed at once, and how long a job waits for a bay.
    pub fn set_firmware_params(&mut self, params: OtaParams) {
        self.ota = OtaJobs::new(params);
        self.esp32 = Esp32Jobs::new(params.esp32);
    }

    /// Queues an ESP32 upgrade to `image` of the bays of its board; `bay`, when the request
    /// named one, must be of that board.
    ///
    /// # Errors
    /// The [`Refusal`]: an unknown bay or one of another board, the board's upgrade queued
    /// already, a full queue.
    pub fn submit_esp32(
        &mut self,
        now: Now,
        bay: Option<&BayId>,
        image: Esp32Image,
    ) -> Result<(u64, Vec<Output>), Refusal> {
        let bays = self.esp32_bays();
        let named = match bay {
            Some(bay) => Some(
                bays.iter()
                    .find(|b| &b.bay == bay)
                    .ok_or(Refusal::UnknownBay)?,
            ),
            None => None,
        };
        let id = self.ota.take_id();
        let esp32_out = self.esp32.submit(id, image, named)?;
        let mut out = Vec::new();
        self.carry_out_esp32(now, esp32_out, &mut out);
        self.poll_ota(now, &mut out);
        self.deliver(&mut out);
        Ok((id, out))
    }

    /// Cancels firmware job `id`, AVR or ESP32.
    ///
    /// # Errors
    /// No such job, or it is over.
    pub fn cancel_firmware(&mut self, now: Now, id: u64) -> Result<Vec<Output>, CancelError> {
        let mut out = Vec::new();
        if self.esp32.has(id) {
            let esp32_out = self.esp32.cancel(id)?;
            self.carry_out_esp32(now, esp32_out, &mut out);
        } else {
            let ota_out = self.ota.cancel(id)?;
            self.carry_out_ota(now, ota_out, &mut out);
        }
        self.poll_ota(now, &mut out);
        self.deliver(&mut out);
        Ok(out)
    }

    /// Queues `image` for `bay` and starts it if there is room.
    ///
    /// # Errors
    /// The [`Refusal`]: unknown, offline or busy bay, in a session without `force`, another
    /// board, a full queue.
    pub fn submit_firmware(
        &mut self,
        now: Now,
        bay: &BayId,
        image: AvrImage,
        force: bool,
    ) -> Result<(u64, Vec<Output>), Refusal> {
        let facts = self.firmware_facts(bay).ok_or(Refusal::UnknownBay)?;
        let index = self.registry.index_of(bay).ok_or(Refusal::UnknownBay)?;
        let mac = self
            .registry
            .get(index)
            .map(|slot| slot.bay.mac)
            .ok_or(Refusal::UnknownBay)?;
        self.ota.pause_starts(self.esp32.is_upgrading());
        let (job, ota_out) = self.ota.submit(bay.clone(), mac, image, force, &facts)?;
        let mut out = Vec::new();
        self.carry_out_ota(now, ota_out, &mut out);
        self.poll_ota(now, &mut out);
        self.deliver(&mut out);
        Ok((job, out))
    }

    /// Every firmware job, running ones first.
    #[must_use]
    pub fn firmware_jobs(&self) -> Vec<AnyJobView> {
        let (avr_open, avr_done): (Vec<_>, Vec<_>) = self
            .ota
            .views()
            .into_iter()
            .partition(|j| !j.state.is_finished());
        let (esp_open, esp_done): (Vec<_>, Vec<_>) = self
            .esp32
            .views()
            .into_iter()
            .partition(|j| !j.state.is_finished());
        let open = avr_open
            .into_iter()
            .map(AnyJobView::Avr)
            .chain(esp_open.into_iter().map(AnyJobView::Esp32));
        let done = avr_done
            .into_iter()
            .map(AnyJobView::Avr)
            .chain(esp_done.into_iter().map(AnyJobView::Esp32));
        open.chain(done).collect()
    }

    /// The images of the firmware folder (rescanned by the runtime): the newest AVR image of
    /// a bay's board is its "latest version".
    pub fn set_firmware_catalogue(&mut self, images: Vec<FolderImage>) {
        self.firmware_catalogue = images;
    }

    /// The newest AVR image in the folder for `board`.
    pub(super) fn latest_avr(&self, board: Option<&str>) -> Option<LatestAvr> {
        let image = folder::latest_avr(&self.firmware_catalogue, board?)?;
        match image.name {
            ImageName::Avr { version, .. } => Some(LatestAvr {
                file: image.file.clone(),
                version,
            }),
            ImageName::Esp32 { .. } => None,
        }
    }

    /// The newest ESP32 image in the folder for `board`.
    pub(super) fn latest_esp32(&self, board: Option<&str>) -> Option<LatestEsp32> {
        let image = latest_esp32(&self.firmware_catalogue, board?)?;
        match image.name {
            ImageName::Esp32 { major, minor, .. } => Some(LatestEsp32 {
                file: image.file.clone(),
                version: format!("{major}.{minor}"),
            }),
            ImageName::Avr { .. } => None,
        }
    }

    /// The latest ESP32 job the bay took part in.
    pub(super) fn esp32_job_of(&self, bay: &BayId) -> Option<Esp32BayJob> {
        self.esp32.latest_of(bay)
    }

    /// The bay's running firmware job, else its latest finished or refused one.
    pub(super) fn firmware_job_of(&self, bay: &BayId) -> Option<JobView> {
        self.ota.latest_of(bay)
    }

    /// Whether `bay`'s setpoints are held for a firmware job.
    pub(super) fn firmware_holds(&self, bay: &BayId) -> bool {
        self.ota.holds(bay)
    }

    /// A node message, for the job that waits for it.
    pub(super) fn ota_on_mesh(
        &mut self,
        now: Now,
        src: MacAddr,
        msg: &NodeMessage,
        out: &mut Vec<Output>,
    ) {
        let ota_out = self.ota.on_message(now.mono_ms, src, msg);
        self.carry_out_ota(now, ota_out, out);
        let esp32_out = self.esp32.on_message(src, msg);
        self.carry_out_esp32(now, esp32_out, out);
    }

    /// Timeouts of running jobs and queued ones started (once per control cycle).
    /// Nearly every cycle has no open job: the per-bay facts are built only for one.
    pub(super) fn poll_ota(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.ota.has_open_jobs() {
            let facts: Vec<(BayId, BayFacts)> = self
                .registry
                .iter()
                .map(|slot| (slot.bay.id.clone(), facts_of(&slot.bay)))
                .collect();
            self.ota.pause_starts(self.esp32.is_upgrading());
            let ota_out = self.ota.poll(now.mono_ms, |bay| {
                facts.iter().find(|(b, _)| b == bay).map(|(_, f)| f.clone())
            });
            self.carry_out_ota(now, ota_out, out);
        }
        if self.esp32.has_open_jobs() {
            let bays = self.esp32_bays();
            let esp32_out = self.esp32.poll(now.mono_ms, &bays, self.ota.any_running());
            self.carry_out_esp32(now, esp32_out, out);
        }
    }

    /// Every bay with what its last `system` said, for the ESP32 jobs.
    fn esp32_bays(&self) -> Vec<Esp32Bay> {
        self.registry
            .iter()
            .map(|slot| Esp32Bay {
                bay: slot.bay.id.clone(),
                mac: slot.bay.mac,
                board: slot.bay.system.as_ref().map(|s| s.board.to_string()),
                version: slot.bay.system.as_ref().map(|s| s.version.to_string()),
            })
            .collect()
    }

    fn carry_out_esp32(&mut self, now: Now, esp32_out: Vec<Esp32Output>, out: &mut Vec<Output>) {
        for output in esp32_out {
            match output {
                Esp32Output::Send { dst, cmd } => out.push(Output::Send { dst, cmd }),
                Esp32Output::Finished { summary } => out.push(Output::Event {
                    bay: None,
                    text: summary,
                }),
                Esp32Output::Rebooted(bay) => {
                    if let Some(index) = self.registry.index_of(&bay) {
                        self.sequencer.on_offline(index);
                    }
                    self.relearn_controller(now, &bay);
                    out.push(Output::Event {
                        bay: Some(bay),
                        text: "ESP32 firmware installed, the node restarted: the controller is learned afresh".to_owned(),
                    });
                }
                Esp32Output::Changed { job, bays } => {
                    for bay in bays {
                        let Some(job) = self.esp32.bay_job(job, &bay) else {
                            continue;
                        };
                        out.push(Output::Bay(BayEvent {
                            bay,
                            at_ms: now.wall_ms,
                            kind: BayEventKind::Esp32Firmware { job },
                        }));
                    }
                }
            }
        }
    }

    fn firmware_facts(&self, bay: &BayId) -> Option<BayFacts> {
        let index = self.registry.index_of(bay)?;
        self.registry.get(index).map(|slot| facts_of(&slot.bay))
    }

    fn carry_out_ota(&mut self, now: Now, ota_out: Vec<OtaOutput>, out: &mut Vec<Output>) {
        for output in ota_out {
            match output {
                OtaOutput::Send { dst, cmd } => out.push(Output::Send {
                    dst: Address::Node(dst),
                    cmd,
                }),
                OtaOutput::Hold(bay) => {
                    if let Some(index) = self.registry.index_of(&bay) {
                        self.sequencer.on_offline(index);
                    }
                    out.push(Output::Event {
                        bay: Some(bay),
                        text: "firmware update: setpoints held, reservation kept".to_owned(),
                    });
                }
                OtaOutput::Release(bay) => {
                    self.relearn_controller(now, &bay);
                    out.push(Output::Event {
                        bay: Some(bay),
                        text: "firmware update over: the controller is learned afresh".to_owned(),
                    });
                }
                OtaOutput::Changed(job) => {
                    if job.state.is_finished() {
                        out.push(Output::Event {
                            bay: Some(job.bay.clone()),
                            text: format!("firmware {}: {:?}", job.image, job.state),
                        });
                    }
                    out.push(Output::Bay(BayEvent {
                        bay: job.bay.clone(),
                        at_ms: now.wall_ms,
                        kind: BayEventKind::Firmware { job },
                    }));
                }
            }
        }
    }
}

impl Site {
    /// After the bay's controller (or its node) restarted: the sequencer forgets what it
    /// knew of the node, keeping its reservation as a floor until the node confirmed the
    /// bridge's setpoint.
    fn relearn_controller(&mut self, now: Now, bay: &BayId) {
        let Some(index) = self.registry.index_of(bay) else {
            return;
        };
        self.learn_afresh(now, index);
        // Ask for `system` in the next cycle: the new controller version.
        if let Some(slot) = self.registry.get_mut(index) {
            slot.bay.last_poll_ms = None;
        }
    }
}

fn facts_of(bay: &super::record::Bay) -> BayFacts {
    BayFacts {
        online: bay.online,
        in_session: bay.ccss().is_some_and(Ccss::in_session),
        board: bay.system.as_ref().map(|s| s.board.to_string()),
    }
}
