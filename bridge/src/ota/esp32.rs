//! ESP32 node firmware upgrades of a board, sans-IO: one `upgrade` to the mesh root, then
//! following every matching bay's `system` replies until each reports the new version.
//!
//! The root fetches `demesh_<board>_<M>_<m>.bin` from the firmware server (the bridge's own,
//! see [`super::server`]), hands it to every node of that board and tells them to restart.
//! Nothing answers the `upgrade` itself: the job asks the matching bays for `system` at a
//! bounded rate (a few bays per round, round-robin) and counts a bay done once its `version`
//! is the image's. Bays that do not get there within [`Esp32Params::timeout_ms`] are the
//! job's stragglers. Bays of other boards are not asked anything.
//!
//! No hold: the ESP32 flash does not stop the AVR charging, and the node's restart afterwards
//! only makes it silent for a few seconds, which the site's offline handling covers (its
//! reservation is kept until it is heard again). The root cannot be told to stop an upgrade:
//! a cancel only stops following it.
//!
//! One job runs at a time (the root handles one upgrade at a time); the others wait, also
//! while an AVR job runs (the site says so in [`Esp32Jobs::poll`]) and, after a running job
//! was cancelled, until that job's give-up time (the root may still be busy with it).
//!
//! A bay that reports the new version has restarted its node; the site treats that like the
//! end of an AVR job ([`Esp32Output::Rebooted`]).

use std::collections::{HashSet, VecDeque};

use ctrl22_node::mesh::{Address, Command, MacAddr, NodeMessage};
use serde::Serialize;

use super::jobs::Refusal;
use crate::bay::BayId;

/// ESP32 jobs waiting or running at most.
pub const MAX_ESP32_JOBS: usize = 8;
/// Finished jobs kept for `GET /api/v1/ota`.
const FINISHED_KEPT: usize = 16;

/// How a job follows the bays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Esp32Params {
    /// Bays that have not reported the new version by then are stragglers, ms after `upgrade`.
    pub timeout_ms: u64,
    /// One round of `system` polls this often, ms.
    pub poll_every_ms: u64,
    /// Bays asked for `system` per round.
    pub polls_per_round: usize,
}

impl Default for Esp32Params {
    fn default() -> Self {
        Self {
            // The root downloads about 1 MB and the mesh relays it to each node: minutes.
            timeout_ms: 15 * 60_000,
            poll_every_ms: 5_000,
            polls_per_round: 4,
        }
    }
}

/// An ESP32 image of the firmware folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Esp32Image {
    /// `demesh_<board>_<M>_<m>.bin`
    pub file: String,
    pub board: String,
    /// `M.m`, as `system` reports it and `upgrade` names it.
    pub version: String,
}

/// A bay the job may upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Esp32Bay {
    pub bay: BayId,
    pub mac: MacAddr,
    /// From its last `system` reply.
    pub board: Option<String>,
    pub version: Option<String>,
}

/// Where a job is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Esp32State {
    Queued,
    /// `upgrade` sent; following the bays.
    Upgrading,
    /// Every matching bay reports the version.
    Succeeded,
    Failed {
        error: String,
    },
}

impl Esp32State {
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed { .. })
    }
}

/// A job as `GET /api/v1/ota` and the event stream show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Esp32JobView {
    pub id: u64,
    pub image: String,
    pub board: String,
    pub version: String,
    #[serde(flatten)]
    pub state: Esp32State,
    /// Bays upgraded of bays matching, 0 to 100.
    pub progress_pct: u8,
    /// The bays of the board when the job started.
    pub bays: Vec<BayId>,
    /// Those that report the new version.
    pub bays_done: Vec<BayId>,
    /// Those that did not within the timeout (or when the job was cancelled).
    pub stragglers: Vec<BayId>,
}

/// One bay's part in an ESP32 job, for the snapshot, bay events and Home Assistant: the
/// same for every bay but `done_here` and `straggler_here`, and no lists of bays (a site
/// of thousands of bays builds one per bay per snapshot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Esp32BayJob {
    pub id: u64,
    pub image: String,
    pub board: String,
    pub version: String,
    #[serde(flatten)]
    pub state: Esp32State,
    pub progress_pct: u8,
    /// This bay reports the new version.
    pub done_here: bool,
    /// This bay did not within the timeout (or when the job was cancelled).
    pub straggler_here: bool,
    /// Bays that report the new version, of `bays_total`.
    pub bays_done: usize,
    pub bays_total: usize,
}

/// What the site core must do.
// `Command` holds an avrimg chunk inline (no_std codec); outputs are few and short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Esp32Output {
    Send {
        dst: Address,
        cmd: Command,
    },
    /// Job `job` changed; `bays` are those it concerns (an event goes to each, see
    /// [`Esp32Jobs::bay_job`]).
    Changed {
        job: u64,
        bays: Vec<BayId>,
    },
    /// A job ended: a line for the site's log.
    Finished {
        summary: String,
    },
    /// The bay reports the new version: its node restarted (and may have reset its AVR).
    Rebooted(BayId),
}

/// Why a job cannot be cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    #[error("no such firmware job")]
    Unknown,
    #[error("the firmware job is over already")]
    Finished,
    /// `avrota flash` went out: the controller may be restarting; the job runs on until it
    /// knows, keeping the bay held.
    #[error("the controller is being flashed; the job cannot be stopped now")]
    Flashing,
}

impl CancelError {
    /// Why job `id`, not among the open jobs, cannot be cancelled: `finished` are the ids kept.
    pub(super) fn not_open(mut finished: impl Iterator<Item = u64>, id: u64) -> Self {
        if finished.any(|f| f == id) {
            Self::Finished
        } else {
            Self::Unknown
        }
    }
}

#[derive(Debug)]
struct Job {
    id: u64,
    image: Esp32Image,
    /// Only for a job asked for one bay: it must still be of the image's board at the start.
    named_bay: Option<BayId>,
    state: Esp32State,
    /// Matching bays, in the order they are polled.
    bays: Vec<(BayId, MacAddr)>,
    /// The ids of `bays`, to find a bay's job.
    members: HashSet<BayId>,
    done: HashSet<BayId>,
    stragglers: HashSet<BayId>,
    give_up_ms: u64,
    next_poll_ms: u64,
    /// Where the next round of polls starts in `bays`.
    poll_cursor: usize,
}

impl Job {
    fn new(id: u64, image: Esp32Image, named_bay: Option<BayId>, state: Esp32State) -> Self {
        Self {
            id,
            image,
            named_bay,
            state,
            bays: Vec::new(),
            members: HashSet::new(),
            done: HashSet::new(),
            stragglers: HashSet::new(),
            give_up_ms: 0,
            next_poll_ms: 0,
            poll_cursor: 0,
        }
    }

    fn progress_pct(&self) -> u8 {
        let total = self.bays.len().max(1);
        let pct = if self.state == Esp32State::Succeeded {
            100
        } else {
            self.done.len().saturating_mul(100) / total
        };
        u8::try_from(pct.min(100)).unwrap_or(100)
    }

    /// The bays of `bays` that are also in `set`, in polling order.
    fn listed(&self, set: &HashSet<BayId>) -> Vec<BayId> {
        self.bays
            .iter()
            .filter(|(b, _)| set.contains(b))
            .map(|(b, _)| b.clone())
            .collect()
    }

    fn view(&self) -> Esp32JobView {
        Esp32JobView {
            id: self.id,
            image: self.image.file.clone(),
            board: self.image.board.clone(),
            version: self.image.version.clone(),
            state: self.state.clone(),
            progress_pct: self.progress_pct(),
            bays: self.all_bays(),
            bays_done: self.listed(&self.done),
            stragglers: self.listed(&self.stragglers),
        }
    }

    fn bay_job(&self, bay: &BayId) -> Esp32BayJob {
        Esp32BayJob {
            id: self.id,
            image: self.image.file.clone(),
            board: self.image.board.clone(),
            version: self.image.version.clone(),
            state: self.state.clone(),
            progress_pct: self.progress_pct(),
            done_here: self.done.contains(bay),
            straggler_here: self.stragglers.contains(bay),
            bays_done: self.done.len(),
            bays_total: self.bays.len(),
        }
    }

    fn set_bays(&mut self, bays: Vec<(BayId, MacAddr)>) {
        self.members = bays.iter().map(|(b, _)| b.clone()).collect();
        self.bays = bays;
    }

    fn all_bays(&self) -> Vec<BayId> {
        self.bays.iter().map(|(b, _)| b.clone()).collect()
    }

    fn changed(&self, bays: Vec<BayId>, out: &mut Vec<Esp32Output>) {
        out.push(Esp32Output::Changed { job: self.id, bays });
    }

    fn finish(&mut self, state: Esp32State, out: &mut Vec<Esp32Output>) {
        self.stragglers = self
            .members
            .iter()
            .filter(|b| !self.done.contains(*b))
            .cloned()
            .collect();
        self.state = state;
        let stragglers = self.listed(&self.stragglers);
        let shown: Vec<&str> = stragglers.iter().take(10).map(|b| b.0.as_str()).collect();
        out.push(Esp32Output::Finished {
            summary: format!(
                "ESP32 firmware {}: {:?}, {} of {} bays upgraded, {} stragglers {shown:?}{}",
                self.image.file,
                self.state,
                self.done.len(),
                self.bays.len(),
                stragglers.len(),
                if stragglers.len() > shown.len() {
                    "..."
                } else {
                    ""
                },
            ),
        });
        self.changed(self.all_bays(), out);
    }
}

/// The ESP32 jobs of one site. See the module documentation.
#[derive(Debug, Default)]
pub struct Esp32Jobs {
    params: Esp32Params,
    jobs: VecDeque<Job>,
    finished: VecDeque<Job>,
    /// No job starts before then (monotonic ms): a cancelled upgrade may still run in the mesh.
    paused_until_ms: u64,
}

impl Esp32Jobs {
    #[must_use]
    pub fn new(params: Esp32Params) -> Self {
        Self {
            params,
            jobs: VecDeque::new(),
            finished: VecDeque::new(),
            paused_until_ms: 0,
        }
    }

    /// Queues job `id` for `image`; `named_bay` is the bay the request named (it must be of
    /// the image's board), `None` for the whole board.
    ///
    /// # Errors
    /// A full queue, the same image queued already, or a named bay of another board.
    pub fn submit(
        &mut self,
        id: u64,
        image: Esp32Image,
        named_bay: Option<&Esp32Bay>,
    ) -> Result<Vec<Esp32Output>, Refusal> {
        let checked = named_bay
            .map_or(Ok(()), |bay| check_board(&image, bay))
            .and_then(|()| {
                if self.jobs.iter().any(|j| j.image.board == image.board) {
                    Err(Refusal::Busy)
                } else if self.jobs.len() >= MAX_ESP32_JOBS {
                    Err(Refusal::QueueFull)
                } else {
                    Ok(())
                }
            });
        if let Err(refusal) = checked {
            // Kept for the named bay, so that its views (Home Assistant) can say why.
            if let Some(bay) = named_bay {
                let state = Esp32State::Failed {
                    error: format!("refused: {refusal}"),
                };
                let mut refused = Job::new(id, image, None, state);
                refused.set_bays(vec![(bay.bay.clone(), bay.mac)]);
                self.keep_finished(refused);
            }
            return Err(refusal);
        }
        let job = Job::new(
            id,
            image,
            named_bay.map(|b| b.bay.clone()),
            Esp32State::Queued,
        );
        let mut out = Vec::new();
        job.changed(
            named_bay.map(|b| vec![b.bay.clone()]).unwrap_or_default(),
            &mut out,
        );
        self.jobs.push_back(job);
        Ok(out)
    }

    /// Whether job `id` is one of these.
    #[must_use]
    pub fn has(&self, id: u64) -> bool {
        self.jobs.iter().any(|j| j.id == id) || self.finished.iter().any(|j| j.id == id)
    }

    /// Whether an upgrade runs (nodes of a board, maybe the root, are about to restart).
    #[must_use]
    pub fn is_upgrading(&self) -> bool {
        self.jobs
            .front()
            .is_some_and(|j| j.state == Esp32State::Upgrading)
    }

    /// A job waits or runs: [`Esp32Jobs::poll`] has something to look at.
    #[must_use]
    pub fn has_open_jobs(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Stops following job `id` (the root cannot be told to stop an upgrade it started, so
    /// the next job waits until this one's give-up time).
    ///
    /// # Errors
    /// No such job, or it is over.
    pub fn cancel(&mut self, id: u64) -> Result<Vec<Esp32Output>, CancelError> {
        let Some(index) = self.jobs.iter().position(|j| j.id == id) else {
            return Err(CancelError::not_open(
                self.finished.iter().map(|j| j.id),
                id,
            ));
        };
        let mut out = Vec::new();
        if let Some(mut job) = self.jobs.remove(index) {
            if job.state == Esp32State::Upgrading {
                self.paused_until_ms = self.paused_until_ms.max(job.give_up_ms);
            }
            let error = "cancelled: no longer followed (a running upgrade goes on in the mesh)";
            job.finish(
                Esp32State::Failed {
                    error: error.to_owned(),
                },
                &mut out,
            );
            self.keep_finished(job);
        }
        Ok(out)
    }

    /// Every job: waiting and running ones first, then the latest finished ones.
    #[must_use]
    pub fn views(&self) -> Vec<Esp32JobView> {
        self.jobs
            .iter()
            .chain(self.finished.iter().rev())
            .map(Job::view)
            .collect()
    }

    /// The latest job `bay` took part in, as that bay sees it.
    #[must_use]
    pub fn latest_of(&self, bay: &BayId) -> Option<Esp32BayJob> {
        self.jobs
            .iter()
            .chain(self.finished.iter().rev())
            .find(|j| j.members.contains(bay))
            .map(|j| j.bay_job(bay))
    }

    /// Job `id` as `bay` sees it.
    #[must_use]
    pub fn bay_job(&self, id: u64, bay: &BayId) -> Option<Esp32BayJob> {
        self.jobs
            .iter()
            .chain(self.finished.iter())
            .find(|j| j.id == id)
            .map(|j| j.bay_job(bay))
    }

    /// The running job's next poll or deadline, or when a waiting job may start (monotonic ms).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.jobs.front().and_then(|j| match j.state {
            Esp32State::Upgrading => Some(j.next_poll_ms.min(j.give_up_ms)),
            Esp32State::Queued => Some(self.paused_until_ms).filter(|&t| t > 0),
            Esp32State::Succeeded | Esp32State::Failed { .. } => None,
        })
    }

    /// A message from the mesh: a `system` reply of a bay the running job follows.
    pub fn on_message(&mut self, src: MacAddr, msg: &NodeMessage) -> Vec<Esp32Output> {
        let mut out = Vec::new();
        let NodeMessage::System(system) = msg else {
            return out;
        };
        let Some(job) = self.jobs.front_mut() else {
            return out;
        };
        if job.state != Esp32State::Upgrading || system.version.as_str() != job.image.version {
            return out;
        }
        let Some((bay, _)) = job.bays.iter().find(|(_, mac)| *mac == src) else {
            return out;
        };
        if job.done.contains(bay) {
            return out;
        }
        let bay = bay.clone();
        job.done.insert(bay.clone());
        out.push(Esp32Output::Rebooted(bay.clone()));
        if job.done.len() == job.bays.len() {
            job.finish(Esp32State::Succeeded, &mut out);
        } else {
            job.changed(vec![bay], &mut out);
        }
        self.retire();
        out
    }

    /// The running job's polls and timeout, then the next job started when none runs.
    /// `bays` is every bay of the site as it is now; `avr_running`: an AVR job transfers
    /// or flashes (a restarting node would break it off), so nothing starts.
    pub fn poll(&mut self, now_ms: u64, bays: &[Esp32Bay], avr_running: bool) -> Vec<Esp32Output> {
        let mut out = Vec::new();
        let params = self.params;
        let may_start = !avr_running && now_ms >= self.paused_until_ms;
        if let Some(job) = self.jobs.front_mut() {
            if job.state == Esp32State::Queued {
                if !may_start {
                    return out;
                }
                start(job, now_ms, bays, &params, &mut out);
            } else if now_ms >= job.give_up_ms {
                let n = job.bays.len() - job.done.len();
                let secs = params.timeout_ms / 1000;
                job.finish(
                    Esp32State::Failed {
                        error: format!(
                            "{n} bays did not report {} within {secs} s",
                            job.image.version
                        ),
                    },
                    &mut out,
                );
            } else if now_ms >= job.next_poll_ms {
                job.next_poll_ms = now_ms.saturating_add(params.poll_every_ms);
                poll_round(job, params.polls_per_round, &mut out);
            }
        }
        self.retire();
        out
    }

    fn retire(&mut self) {
        while self.jobs.front().is_some_and(|j| j.state.is_finished()) {
            if let Some(job) = self.jobs.pop_front() {
                self.keep_finished(job);
            }
        }
    }

    fn keep_finished(&mut self, job: Job) {
        if self.finished.len() >= FINISHED_KEPT {
            self.finished.pop_front();
        }
        self.finished.push_back(job);
    }
}

/// Sends `upgrade` once and starts following the bays of the board; bays on the version
/// already count as done.
fn start(
    job: &mut Job,
    now_ms: u64,
    bays: &[Esp32Bay],
    params: &Esp32Params,
    out: &mut Vec<Esp32Output>,
) {
    // Things change while a job waits: the named bay may be gone or another board now.
    if let Some(named) = &job.named_bay {
        let checked = bays
            .iter()
            .find(|b| &b.bay == named)
            .ok_or(Refusal::UnknownBay)
            .and_then(|b| check_board(&job.image, b));
        if let Err(refusal) = checked {
            job.finish(
                Esp32State::Failed {
                    error: format!("refused: {refusal}"),
                },
                out,
            );
            return;
        }
    }
    let matching: Vec<&Esp32Bay> = bays
        .iter()
        .filter(|b| b.board.as_deref() == Some(job.image.board.as_str()))
        .collect();
    if matching.is_empty() {
        job.finish(
            Esp32State::Failed {
                error: format!("no bay reports board {}", job.image.board),
            },
            out,
        );
        return;
    }
    job.set_bays(matching.iter().map(|b| (b.bay.clone(), b.mac)).collect());
    job.done = matching
        .iter()
        .filter(|b| b.version.as_deref() == Some(job.image.version.as_str()))
        .map(|b| b.bay.clone())
        .collect();
    if job.done.len() == job.bays.len() {
        job.finish(Esp32State::Succeeded, out);
        return;
    }
    let (Ok(version), Ok(board)) = (
        job.image.version.as_str().try_into(),
        job.image.board.as_str().try_into(),
    ) else {
        job.finish(
            Esp32State::Failed {
                error: "the version or board is too long for the mesh".to_owned(),
            },
            out,
        );
        return;
    };
    out.push(Esp32Output::Send {
        dst: Address::Root,
        cmd: Command::Upgrade { version, board },
    });
    job.state = Esp32State::Upgrading;
    job.give_up_ms = now_ms.saturating_add(params.timeout_ms);
    // The root needs a while to fetch the image before anything can change.
    job.next_poll_ms = now_ms.saturating_add(params.poll_every_ms);
    job.changed(job.all_bays(), out);
}

/// `system` to the next few bays that have not reported the version.
fn poll_round(job: &mut Job, per_round: usize, out: &mut Vec<Esp32Output>) {
    let n = job.bays.len();
    let mut sent = 0;
    for step in 0..n {
        if sent >= per_round {
            break;
        }
        let index = (job.poll_cursor + step) % n;
        let Some((bay, mac)) = job.bays.get(index) else {
            continue;
        };
        if job.done.contains(bay) {
            continue;
        }
        out.push(Esp32Output::Send {
            dst: Address::Node(*mac),
            cmd: Command::System,
        });
        sent += 1;
        job.poll_cursor = (index + 1) % n;
    }
}

fn check_board(image: &Esp32Image, bay: &Esp32Bay) -> Result<(), Refusal> {
    match &bay.board {
        Some(board) if *board == image.board => Ok(()),
        Some(board) => Err(Refusal::WrongBoard {
            image: image.board.clone(),
            bay: board.clone(),
        }),
        None => Err(Refusal::Image(
            "the bay's board is not known yet (no system reply)".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests;
