//! Firmware jobs inside the site core: the core owns the [`OtaJobs`] queue, tells it what it
//! knows of a bay (online, in a session, its board), and holds a bay while its job runs.
//!
//! Holding a bay: the sequencer treats it as offline (nothing is sent to it, its
//! reservation stays as it is) and its heartbeats do not reach the sequencer, since a
//! controller being replaced says nothing about the setpoints it will hold. When the job
//! ends the controller has restarted from its EEPROM: the sequencer forgets what it knew
//! of the node but keeps the old reservation as a floor until the node confirmed the
//! bridge's own setpoint, as after a restart of the bridge.

use ctrl22_node::mesh::{Address, MacAddr, NodeMessage};
use ctrl22_node::Ccss;

use super::events::{BayEvent, BayEventKind};
use super::snapshot::LatestAvr;
use super::{Output, Site};
use crate::bay::BayId;
use crate::clock::Now;
use crate::config::firmware::ImageName;
use crate::ota::folder::{self, FolderImage};
use crate::ota::jobs::{AvrImage, BayFacts, JobView, OtaJobs, OtaOutput, OtaParams, Refusal};

impl Site {
    /// How many bays are flashed at once, and how long a job waits for a bay.
    pub fn set_firmware_params(&mut self, params: OtaParams) {
        self.ota = OtaJobs::new(params);
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
        let (job, ota_out) = self.ota.submit(bay.clone(), mac, image, force, &facts)?;
        let mut out = Vec::new();
        self.carry_out_ota(now, ota_out, &mut out);
        self.poll_ota(now, &mut out);
        self.deliver(&mut out);
        Ok((job, out))
    }

    /// Every firmware job, running ones first.
    #[must_use]
    pub fn firmware_jobs(&self) -> Vec<JobView> {
        self.ota.views()
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
    }

    /// Timeouts of running jobs and queued ones started (once per control cycle).
    pub(super) fn poll_ota(&mut self, now: Now, out: &mut Vec<Output>) {
        let facts: Vec<(BayId, BayFacts)> = self
            .registry
            .iter()
            .map(|slot| (slot.bay.id.clone(), facts_of(&slot.bay)))
            .collect();
        let ota_out = self.ota.poll(now.mono_ms, |bay| {
            facts.iter().find(|(b, _)| b == bay).map(|(_, f)| f.clone())
        });
        self.carry_out_ota(now, ota_out, out);
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
                    if let Some(index) = self.registry.index_of(&bay) {
                        let reserved = self.sequencer.reservation(index);
                        match self.sequencer.release(now.mono_ms, index) {
                            Ok(writes) => self.writes.extend(writes),
                            Err(e) => tracing::warn!(%bay, "after a firmware job: {e}"),
                        }
                        self.sequencer.restore_reservation(index, reserved);
                        // Ask for `system` in the next cycle: the new controller version.
                        if let Some(slot) = self.registry.get_mut(index) {
                            slot.bay.last_poll_ms = None;
                        }
                    }
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

fn facts_of(bay: &super::record::Bay) -> BayFacts {
    BayFacts {
        online: bay.online,
        in_session: bay.ccss().is_some_and(Ccss::in_session),
        board: bay.system.as_ref().map(|s| s.board.to_string()),
    }
}
