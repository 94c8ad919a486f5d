//! The site's firmware job queue: one job per bay, a few run at a time (the mesh's
//! bandwidth is shared), each one a [`Flasher`] conversation followed by reading back the
//! controller's `ver`.
//!
//! [`OtaJobs`] is sans-IO: the site core feeds it node messages and the time, and carries out
//! the [`OtaOutput`]s. While a job runs its bay is held ([`OtaOutput::Hold`]): the sequencer
//! sends it nothing and its reservation stays; [`OtaOutput::Release`] ends that.
//!
//! A chunk that is lost or fails its CRC is retried by the flasher. A bay that stops
//! answering (receive mode, chunks or the flash itself time out) may have rebooted, and a
//! node's receive buffer does not survive a reboot: the job waits for the bay to be heard
//! again and restarts from the first chunk, a bounded number of times.

use std::collections::VecDeque;

use ctrl22_node::mesh::{Command, MacAddr, NodeMessage, ParName};
use serde::Serialize;

use super::esp32::{CancelError, Esp32Params};
use super::flasher::{FlashError, FlashStep, Flasher};
pub use super::job_view::{AnyJobView, JobState, JobView};
use crate::bay::BayId;

/// Jobs waiting or running at most; more are refused (the queue is fed from outside).
pub const MAX_JOBS: usize = 64;
/// Finished jobs kept for `GET /api/v1/ota`.
const FINISHED_KEPT: usize = 32;
/// Wait for one `avrgetpar ver` reply; the controller restarts after flashing.
const VERIFY_REPLY_MS: u64 = 5_000;
const VERIFY_ATTEMPTS: u32 = 6;

/// How the queue runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtaParams {
    /// Jobs transferring at the same time.
    pub max_parallel: usize,
    /// Restarts from the first chunk after the bay stopped answering.
    pub restarts: u32,
    /// How long a job waits for a bay that stopped answering to be heard again, ms.
    pub offline_wait_ms: u64,
    /// How the ESP32 upgrades follow the bays.
    pub esp32: Esp32Params,
}

impl Default for OtaParams {
    fn default() -> Self {
        Self {
            max_parallel: 2,
            restarts: 2,
            offline_wait_ms: 120_000,
            esp32: Esp32Params::default(),
        }
    }
}

/// An AVR image to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvrImage {
    /// Where it came from (a file name in the firmware folder, or `upload`).
    pub name: String,
    /// The flash contents (Intel HEX already parsed).
    pub bytes: Vec<u8>,
    /// The `ver` the controller reports after it (from the file name), if known.
    pub version: Option<i16>,
    /// The board the image is built for (from the file name), if it says.
    pub board: Option<String>,
}

/// What the site knows of a bay when a job is submitted or started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BayFacts {
    pub online: bool,
    /// A car's session runs (flashing resets the controller and ends it).
    pub in_session: bool,
    /// The board its node reported in `system`.
    pub board: Option<String>,
}

/// Why a job is not accepted or not started.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Refusal {
    #[error("the bay is in a charging session; install with force to flash it anyway")]
    InSession,
    #[error("the bay is offline")]
    Offline,
    #[error("the image is for board {image}, the bay is a {bay}")]
    WrongBoard { image: String, bay: String },
    #[error("the bay already has a firmware job")]
    Busy,
    #[error("{MAX_JOBS} firmware jobs are queued already")]
    QueueFull,
    #[error("no such bay")]
    UnknownBay,
    #[error("the image: {0}")]
    Image(String),
    /// The root relays everything and an ESP32 upgrade restarts nodes: no AVR flash meanwhile.
    #[error("an ESP32 upgrade is running; try again when it is over")]
    Esp32UpgradeRunning,
}

/// Why a running job failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobError {
    #[error("{0}")]
    Flash(String),
    #[error("refused: {0}")]
    Refused(Refusal),
    #[error("the bay did not come back after it stopped answering")]
    BayGone,
    #[error("the controller reports ver {found}, the image is ver {expected}")]
    WrongVersion { expected: i16, found: i16 },
    #[error("the controller did not report its ver after flashing")]
    NoVersion,
    #[error("cancelled")]
    Cancelled,
}

/// What the site core must do.
// `Command` holds an avrimg chunk inline (no_std codec); outputs are few and short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OtaOutput {
    Send {
        dst: MacAddr,
        cmd: Command,
    },
    /// Hold the bay's setpoints and keep its reservation from now on.
    Hold(BayId),
    /// The job is over: the bay's controller restarted, treat what it holds as unknown.
    Release(BayId),
    /// A job changed state (queued, progress in steps of [`PROGRESS_STEP_PCT`], result).
    Changed(JobView),
}

/// Progress is reported in steps this large, not per chunk.
pub const PROGRESS_STEP_PCT: u8 = 5;

#[derive(Debug)]
enum Stage {
    Queued,
    Transferring(Box<Flasher>),
    WaitingForBay { until_ms: u64 },
    Verifying { attempts: u32 },
    Finished,
}

#[derive(Debug)]
struct Job {
    id: u64,
    bay: BayId,
    mac: MacAddr,
    image: AvrImage,
    forced: bool,
    stage: Stage,
    state: JobState,
    deadline_ms: Option<u64>,
    restarts: u32,
    reported_pct: Option<u8>,
}

impl Job {
    fn view(&self) -> JobView {
        JobView {
            id: self.id,
            bay: self.bay.clone(),
            image: self.image.name.clone(),
            version: self.image.version,
            forced: self.forced,
            state: self.state.clone(),
            percent: self.state.percent(),
            progress_pct: self.state.percent().unwrap_or(0),
        }
    }

    fn is_running(&self) -> bool {
        !matches!(self.stage, Stage::Queued | Stage::Finished)
    }
}

/// The firmware jobs of one site. See the module documentation.
#[derive(Debug, Default)]
pub struct OtaJobs {
    params: OtaParams,
    next_id: u64,
    /// Waiting and running jobs, in submission order.
    jobs: Vec<Job>,
    finished: VecDeque<JobView>,
    /// See [`OtaJobs::pause_starts`].
    starts_paused: bool,
}

impl OtaJobs {
    #[must_use]
    pub fn new(params: OtaParams) -> Self {
        Self {
            params,
            next_id: 1,
            jobs: Vec::new(),
            finished: VecDeque::new(),
            starts_paused: false,
        }
    }

    /// Queues `image` for `bay`. A bay in a session is refused unless `force`; so is one
    /// whose board differs from the image's, or that has a job already.
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn submit(
        &mut self,
        bay: BayId,
        mac: MacAddr,
        image: AvrImage,
        force: bool,
        facts: &BayFacts,
    ) -> Result<(u64, Vec<OtaOutput>), Refusal> {
        if self.jobs.iter().any(|j| j.bay == bay) {
            return Err(Refusal::Busy);
        }
        let id = self.take_id();
        let checked = if self.jobs.len() >= MAX_JOBS {
            Err(Refusal::QueueFull)
        } else if self.starts_paused {
            Err(Refusal::Esp32UpgradeRunning)
        } else {
            check(&image, force, facts)
        };
        if let Err(refusal) = checked {
            // Kept, so that the bay's views (Home Assistant) can say why nothing happened.
            self.keep_finished(JobView {
                id,
                bay,
                image: image.name,
                version: image.version,
                forced: force,
                state: JobState::Failed {
                    error: JobError::Refused(refusal.clone()),
                },
                percent: None,
                progress_pct: 0,
            });
            return Err(refusal);
        }
        let job = Job {
            id,
            bay,
            mac,
            image,
            forced: force,
            stage: Stage::Queued,
            state: JobState::Queued,
            deadline_ms: None,
            restarts: 0,
            reported_pct: None,
        };
        let out = vec![OtaOutput::Changed(job.view())];
        self.jobs.push(job);
        Ok((id, out))
    }

    /// A fresh job id, shared with the ESP32 jobs so that one id names one job.
    pub fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Cancels job `id`: a queued one is dropped, a running one stops sending and releases
    /// its bay (whose controller is learned afresh, as after any job). Once `avrota flash`
    /// went out the controller may be restarting from its EEPROM: the job runs on (its
    /// hold keeps the sequencer away) until it knows.
    ///
    /// # Errors
    /// No such job (not an AVR one), it is over, or it is flashing or verifying.
    pub fn cancel(&mut self, id: u64) -> Result<Vec<OtaOutput>, CancelError> {
        let Some(job) = self.jobs.iter_mut().find(|j| j.id == id) else {
            return Err(CancelError::not_open(
                self.finished.iter().map(|v| v.id),
                id,
            ));
        };
        let flashing = match &job.stage {
            Stage::Transferring(flasher) => flasher.flash_sent(),
            Stage::Verifying { .. } => true,
            Stage::Queued | Stage::WaitingForBay { .. } | Stage::Finished => false,
        };
        if flashing {
            return Err(CancelError::Flashing);
        }
        let mut out = Vec::new();
        job.finish(Err(JobError::Cancelled), &mut out);
        self.retire();
        Ok(out)
    }

    /// Whether a job transfers, flashes or waits for its bay (an ESP32 upgrade waits).
    #[must_use]
    pub fn any_running(&self) -> bool {
        self.jobs.iter().any(Job::is_running)
    }

    /// A job waits or runs: [`OtaJobs::poll`] has something to look at.
    #[must_use]
    pub fn has_open_jobs(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Keeps queued jobs from starting while `paused` (an ESP32 upgrade runs).
    pub fn pause_starts(&mut self, paused: bool) {
        self.starts_paused = paused;
    }

    /// Whether `bay` is held by a running job.
    #[must_use]
    pub fn holds(&self, bay: &BayId) -> bool {
        self.jobs.iter().any(|j| &j.bay == bay && j.is_running())
    }

    /// Every job: waiting and running ones first, then the latest finished ones.
    #[must_use]
    pub fn views(&self) -> Vec<JobView> {
        self.jobs
            .iter()
            .map(Job::view)
            .chain(self.finished.iter().rev().cloned())
            .collect()
    }

    /// The earliest deadline of a running job (monotonic ms).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.jobs.iter().filter_map(|j| j.deadline_ms).min()
    }

    /// A message from the mesh: the reply a running job waits for, or the bay it waits for
    /// being heard again.
    pub fn on_message(&mut self, now_ms: u64, src: MacAddr, msg: &NodeMessage) -> Vec<OtaOutput> {
        let mut out = Vec::new();
        let params = self.params;
        for job in self.jobs.iter_mut().filter(|j| j.mac == src) {
            match &mut job.stage {
                Stage::Transferring(flasher) => {
                    let step = flasher.on_message(src, msg);
                    job.on_step(now_ms, step, &params, &mut out);
                }
                Stage::WaitingForBay { .. } => {
                    job.restarts += 1;
                    job.start_transfer(now_ms, &params, &mut out);
                }
                Stage::Verifying { .. } => {
                    if let NodeMessage::AvrGetPar {
                        par,
                        val: Some(found),
                    } = msg
                    {
                        if par.as_str() == "ver" {
                            let result = match job.image.version {
                                Some(expected) if expected != *found => {
                                    Err(JobError::WrongVersion {
                                        expected,
                                        found: *found,
                                    })
                                }
                                _ => Ok(*found),
                            };
                            job.finish(result, &mut out);
                        }
                    }
                }
                Stage::Queued | Stage::Finished => {}
            }
        }
        self.retire();
        out
    }

    /// Timeouts of running jobs, then queued jobs started while there is room. `facts`
    /// tells what the site knows of a bay now (`None`: no such bay any more).
    pub fn poll(
        &mut self,
        now_ms: u64,
        facts: impl Fn(&BayId) -> Option<BayFacts>,
    ) -> Vec<OtaOutput> {
        let mut out = Vec::new();
        let params = self.params;
        for job in &mut self.jobs {
            if job.deadline_ms.is_none_or(|d| now_ms < d) {
                continue;
            }
            job.deadline_ms = None;
            match &mut job.stage {
                Stage::Transferring(flasher) => {
                    let step = flasher.on_timeout();
                    job.on_step(now_ms, step, &params, &mut out);
                }
                Stage::WaitingForBay { until_ms } if now_ms >= *until_ms => {
                    job.finish(Err(JobError::BayGone), &mut out);
                }
                Stage::WaitingForBay { until_ms } => job.deadline_ms = Some(*until_ms),
                Stage::Verifying { attempts } if *attempts < VERIFY_ATTEMPTS => {
                    *attempts += 1;
                    job.send_verify(now_ms, &mut out);
                }
                Stage::Verifying { .. } => job.finish(Err(JobError::NoVersion), &mut out),
                Stage::Queued | Stage::Finished => {}
            }
        }
        let mut running = self.jobs.iter().filter(|j| j.is_running()).count();
        for job in &mut self.jobs {
            if running >= self.params.max_parallel || self.starts_paused {
                break;
            }
            if !matches!(job.stage, Stage::Queued) {
                continue;
            }
            // Things change while a job waits: the car may have started charging.
            let checked = facts(&job.bay)
                .ok_or(Refusal::UnknownBay)
                .and_then(|f| check(&job.image, job.forced, &f));
            if let Err(refusal) = checked {
                job.stage = Stage::Finished;
                job.state = JobState::Failed {
                    error: JobError::Refused(refusal),
                };
                out.push(OtaOutput::Changed(job.view()));
                continue;
            }
            running += 1;
            out.push(OtaOutput::Hold(job.bay.clone()));
            job.start_transfer(now_ms, &params, &mut out);
        }
        self.retire();
        out
    }

    /// Moves finished jobs to the bounded history.
    fn retire(&mut self) {
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.jobs)
            .into_iter()
            .partition(|j| matches!(j.stage, Stage::Finished));
        self.jobs = open;
        for job in done {
            self.keep_finished(job.view());
        }
    }

    fn keep_finished(&mut self, view: JobView) {
        if self.finished.len() >= FINISHED_KEPT {
            self.finished.pop_front();
        }
        self.finished.push_back(view);
    }

    /// The bay's running job, else its latest finished (or refused) one.
    #[must_use]
    pub fn latest_of(&self, bay: &BayId) -> Option<JobView> {
        self.jobs
            .iter()
            .find(|j| &j.bay == bay)
            .map(Job::view)
            .or_else(|| self.finished.iter().rev().find(|v| &v.bay == bay).cloned())
    }
}

impl Job {
    fn start_transfer(&mut self, now_ms: u64, params: &OtaParams, out: &mut Vec<OtaOutput>) {
        match Flasher::new(self.mac, self.image.bytes.clone()) {
            Ok(mut flasher) => {
                let step = flasher.start();
                self.stage = Stage::Transferring(Box::new(flasher));
                self.reported_pct = None;
                self.on_step(now_ms, step, params, out);
            }
            Err(e) => self.finish(Err(JobError::Flash(e.to_string())), out),
        }
    }

    fn on_step(
        &mut self,
        now_ms: u64,
        step: FlashStep,
        params: &OtaParams,
        out: &mut Vec<OtaOutput>,
    ) {
        let Stage::Transferring(flasher) = &self.stage else {
            return;
        };
        let timeout_ms = u64::try_from(flasher.timeout().as_millis()).unwrap_or(u64::MAX);
        let (done_bytes, total_bytes) = flasher.progress();
        match step {
            FlashStep::Send(cmd) => {
                self.deadline_ms = Some(now_ms.saturating_add(timeout_ms));
                out.push(OtaOutput::Send { dst: self.mac, cmd });
                self.state = JobState::Transferring {
                    done_bytes,
                    total_bytes,
                };
                let step_pct = self.state.percent().map(|p| p / PROGRESS_STEP_PCT);
                if step_pct != self.reported_pct {
                    self.reported_pct = step_pct;
                    out.push(OtaOutput::Changed(self.view()));
                }
            }
            FlashStep::Wait => {}
            FlashStep::Done(Ok(())) => {
                self.stage = Stage::Verifying { attempts: 1 };
                self.state = JobState::Verifying;
                out.push(OtaOutput::Changed(self.view()));
                self.send_verify(now_ms, out);
            }
            // Silence: the bay may have dropped off the mesh or rebooted.
            FlashStep::Done(Err(
                FlashError::NoReceiveMode
                | FlashError::ChunkFailed { .. }
                | FlashError::FlashTimeout,
            )) if self.restarts < params.restarts => {
                let until_ms = now_ms.saturating_add(params.offline_wait_ms);
                self.stage = Stage::WaitingForBay { until_ms };
                self.deadline_ms = Some(until_ms);
                self.state = JobState::WaitingForBay {
                    restarts: self.restarts,
                };
                out.push(OtaOutput::Changed(self.view()));
            }
            FlashStep::Done(Err(e)) => self.finish(Err(JobError::Flash(e.to_string())), out),
        }
    }

    fn send_verify(&mut self, now_ms: u64, out: &mut Vec<OtaOutput>) {
        let mut par = ParName::new();
        let _ = par.push_str("ver");
        self.deadline_ms = Some(now_ms.saturating_add(VERIFY_REPLY_MS));
        out.push(OtaOutput::Send {
            dst: self.mac,
            cmd: Command::AvrGetPar { par },
        });
    }

    fn finish(&mut self, result: Result<i16, JobError>, out: &mut Vec<OtaOutput>) {
        let held = self.is_running();
        self.stage = Stage::Finished;
        self.deadline_ms = None;
        self.state = match result {
            Ok(version) => JobState::Succeeded { version },
            Err(error) => JobState::Failed { error },
        };
        if held {
            out.push(OtaOutput::Release(self.bay.clone()));
        }
        out.push(OtaOutput::Changed(self.view()));
    }
}

fn check(image: &AvrImage, force: bool, facts: &BayFacts) -> Result<(), Refusal> {
    if !facts.online {
        return Err(Refusal::Offline);
    }
    if let (Some(image), Some(bay)) = (&image.board, &facts.board) {
        if image != bay {
            return Err(Refusal::WrongBoard {
                image: image.clone(),
                bay: bay.clone(),
            });
        }
    }
    if facts.in_session && !force {
        return Err(Refusal::InSession);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
