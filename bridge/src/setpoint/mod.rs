//! The setpoint sequencer: delivers allocation targets to the bays over the mesh so that the
//! electrical safety rules (SPEC section 4) hold at every instant, also while setpoints change.
//!
//! Sans-IO: plain deterministic state driven by events and an injected clock `now_ms`
//! (milliseconds on any monotonic scale). Every entry point returns the parameter writes to
//! send now; the site core turns each [`SetparCommand`] into an `avrsetpar` command to the
//! bay's node and feeds the replies back with [`Sequencer::on_ack`]. Call
//! [`Sequencer::poll`] at [`Sequencer::poll_timeout`] (or on a steady tick) for timeouts,
//! retries, watchdog refreshes and raises that became possible.
//!
//! # How safety is kept
//! Every bay has a *reservation*: per site phase, the most its node may be putting there,
//! given everything it may have applied (its *knowledge*): the worst of its confirmed
//! parameters, the write in flight (which may be applied before or without its reply) and
//! the fail-safe current its watchdog may fall back to. A write goes out only if, on every
//! phase of every limit group of the bay, the group's total with the bay's new reservation
//! stays within the limit; so a write that does not raise the reservation is always allowed
//! while the totals fit.
//!
//! The totals can be over a limit on paper: a node heard for the first time is reserved
//! what it evidently offers on *every* phase, and a limit may be lowered. There, a node may
//! still move load within its reservation (to another phase, or from its fail-safe back to
//! its setpoint), so only writes that provably never raise what the node puts on such a
//! phase are allowed; a bay that needs anything else pauses (fail-safe 0, then setpoint 0)
//! and comes back through the budget. During the startup grace the totals miss the bays
//! not yet heard, so no reservation is raised and no load moves between phases.
//!
//! A reservation drops only when the node confirmed the lower value and its measured
//! currents followed it (or [`SequencerParams::settle_grace_ms`] passed without a heartbeat
//! showing the vehicle still above the new bound), so a vehicle
//! still ramping down is counted; this wait is kept per bay phase and restarts with every
//! confirmed lowering. A bay reported offline keeps its reservation until it is heard
//! again or [`Sequencer::release`]d. A node's fail-safe current never exceeds its setpoint,
//! whatever it has applied: a setpoint is written only at or above the highest fail-safe it
//! may hold, a fail-safe only at or below the lowest setpoint.
//!
//! `bridge/tests/core/setpoint_props.rs` checks all of this against an independent model of
//! the nodes and their vehicles under random interleavings.
//!
//! # Assumptions about the mesh
//! - One `avrsetpar` per node at a time: the reply does not name the parameter.
//! - A write and its reply arrive within [`SequencerParams::ack_timeout_ms`] of sending, or
//!   never: a later reply would be taken for the reply to the next write, so replies after
//!   the deadline are ignored and the write counts as possibly applied.
//! - A node's heartbeats and replies reach the bridge in the order the node sent them (one
//!   MQTT connection), so a heartbeat that arrives after a reply shows the node after the
//!   write. Heartbeats that show more than the bridge thinks possible only widen the
//!   reservation.
//! - The node's watchdog falls back to `fsafecur` (on its last phase set) when `smaxcur`
//!   stops coming, and only a new `smaxcur` ends the fallback.

mod admission;
mod bay_state;
mod knowledge;
mod load;
mod membership;
mod plan;
mod view;

use std::collections::{BTreeMap, BTreeSet};

use ctrl22_node::{Deciamps, Phase, PhaseSet};

use crate::bay::Setpoint;
use bay_state::{BayState, Hold, Presence};
use knowledge::NodeKnowledge;
use load::max_each;
pub use load::{BayWiring, LimitGroup, PhaseLoad};

/// A node parameter the sequencer writes with `avrsetpar`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Param {
    /// The setpoint current, 0.1 A.
    Smaxcur,
    /// The phases the bay may use, decimal-digit set (`123`, `1`, `0`).
    Phases,
    /// The current the node's watchdog falls back to, 0.1 A.
    Fsafecur,
    /// The node's watchdog period, seconds.
    Wdtsec,
    /// Mimics the operator button (`1` = press): starts or ends a session.
    Opbutton,
}

impl Param {
    /// The name on the wire (`avrpar`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Smaxcur => "smaxcur",
            Self::Phases => "phases",
            Self::Fsafecur => "fsafecur",
            Self::Wdtsec => "wdtsec",
            Self::Opbutton => "opbutton",
        }
    }
}

/// One parameter write to send to a bay's node: `{"cmd":"avrsetpar","avrpar":par,"avrval":value}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SetparCommand {
    /// Index of the bay, as in the wirings given to [`Sequencer::new`].
    pub bay: usize,
    pub par: Param,
    /// In the unit of `par`: 0.1 A, a decimal-digit phase set, or seconds.
    pub value: i16,
}

/// A write with its value typed; [`SetparCommand`] is its wire form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    Smaxcur(Deciamps),
    Phases(PhaseSet),
    Fsafecur(Deciamps),
    Wdtsec(i16),
    Opbutton,
}

impl Write {
    fn to_command(self, bay: usize) -> SetparCommand {
        let (par, value) = match self {
            Self::Smaxcur(current) => (Param::Smaxcur, current.get()),
            Self::Phases(phases) => (Param::Phases, phases.to_digits()),
            Self::Fsafecur(current) => (Param::Fsafecur, current.get()),
            Self::Wdtsec(seconds) => (Param::Wdtsec, seconds),
            Self::Opbutton => (Param::Opbutton, 1),
        };
        SetparCommand { bay, par, value }
    }

    /// `fsafecur` and `wdtsec` are unknown to the original firmware, which has no watchdog.
    fn is_watchdog_param(self) -> bool {
        matches!(self, Self::Fsafecur(_) | Self::Wdtsec(_))
    }
}

/// What the allocation wants a bay to have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Target {
    pub setpoint: Setpoint,
    /// What the node falls back to when setpoints stop coming. Capped at the setpoint
    /// current; like it, rounded down to 0 when below 6 A.
    pub fail_safe: Deciamps,
}

/// What a heartbeat says about a bay (`amaxcur`, `aphases`, `cur1..3`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Measurement {
    /// The current the node signals to the vehicle.
    pub amaxcur: Deciamps,
    /// The phases with contactors closed, in the bay's numbering.
    pub aphases: PhaseSet,
    /// Measured current per bay phase (`cur1..cur3`).
    pub cur: [Deciamps; 3],
}

impl Measurement {
    /// The most the node is evidently offering: its signalled current, or what its vehicle
    /// draws if that is more.
    fn offer_evidence(&self) -> Deciamps {
        self.cur
            .iter()
            .copied()
            .fold(self.amaxcur, Deciamps::max)
            .max(Deciamps::ZERO)
    }
}

/// Timing and tolerances of the sequencer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequencerParams {
    /// How long to wait for an `avrsetpar` reply before the write counts as lost (but maybe
    /// applied). Must exceed the mesh's worst round trip.
    pub ack_timeout_ms: u64,
    /// Failed or unanswered attempts of one write before the bay backs off.
    pub max_attempts: u8,
    /// How long a bay waits after `max_attempts` before it tries again.
    pub retry_backoff_ms: u64,
    /// After a confirmed lowering, how long the old reservation is kept at most while no
    /// heartbeat shows the vehicle followed.
    pub settle_grace_ms: u64,
    /// How far measured currents may exceed the new bound and still count as followed.
    pub measure_tolerance: Deciamps,
    /// The node watchdog period written as `wdtsec` once per bay.
    pub watchdog_secs: i16,
    /// How often `smaxcur` is re-sent unchanged to feed the node's watchdog.
    pub refresh_interval_ms: u64,
    /// After start, no write may raise any reservation for this long: bays not yet heard
    /// from may be drawing. Default: the heartbeat timeout.
    pub startup_grace_ms: u64,
}

impl Default for SequencerParams {
    fn default() -> Self {
        Self {
            ack_timeout_ms: 3_000,
            max_attempts: 3,
            retry_backoff_ms: 20_000,
            settle_grace_ms: 10_000,
            measure_tolerance: Deciamps(10),
            watchdog_secs: 60,
            refresh_interval_ms: 20_000,
            startup_grace_ms: 30_000,
        }
    }
}

/// Errors of the sequencer's entry points.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SequencerError {
    #[error("limit group {group:?} names bay {bay}, but there are only {bays} bays")]
    GroupBayOutOfRange {
        group: String,
        bay: usize,
        bays: usize,
    },
    #[error("bay {0} does not exist")]
    UnknownBay(usize),
    #[error("bay {0} is online; only an offline bay's reservation can be released")]
    StillOnline(usize),
}

/// The setpoint sequencer of one site. See the module documentation.
#[derive(Clone, Debug)]
pub struct Sequencer {
    params: SequencerParams,
    /// No write may raise a reservation before this; `None` once a poll saw it pass.
    startup_grace_until_ms: Option<u64>,
    groups: Vec<LimitGroup>,
    totals: Vec<PhaseLoad>,
    groups_of_bay: Vec<Vec<usize>>,
    bays: Vec<BayState>,
    /// Bays whose last raise did not fit: looked at again when any reservation drops.
    waiting_for_budget: BTreeSet<usize>,
    /// Reservations changed since the last [`Sequencer::take_reservation_changes`], with
    /// whether they rose on any phase.
    reservation_changes: BTreeMap<usize, (PhaseLoad, bool)>,
}

impl Sequencer {
    /// A sequencer for bays `0..wirings.len()` under `groups`, started at `now_ms`: no raises
    /// before `now_ms + params.startup_grace_ms`.
    ///
    /// # Errors
    /// [`SequencerError::GroupBayOutOfRange`] if a group names a bay without wiring.
    pub fn new(
        now_ms: u64,
        params: SequencerParams,
        groups: Vec<LimitGroup>,
        wirings: Vec<BayWiring>,
    ) -> Result<Self, SequencerError> {
        let mut groups_of_bay = vec![Vec::new(); wirings.len()];
        let mut groups = groups;
        for (index, group) in groups.iter_mut().enumerate() {
            group.bays.sort_unstable();
            group.bays.dedup();
            for &bay in &group.bays {
                let of_bay = groups_of_bay.get_mut(bay).ok_or_else(|| {
                    SequencerError::GroupBayOutOfRange {
                        group: group.name.clone(),
                        bay,
                        bays: wirings.len(),
                    }
                })?;
                of_bay.push(index);
            }
        }
        Ok(Self {
            params,
            startup_grace_until_ms: Some(now_ms.saturating_add(params.startup_grace_ms)),
            totals: vec![PhaseLoad::ZERO; groups.len()],
            groups,
            groups_of_bay,
            bays: wirings.into_iter().map(BayState::new).collect(),
            waiting_for_budget: BTreeSet::new(),
            reservation_changes: BTreeMap::new(),
        })
    }

    /// New allocation targets. Bays not listed keep their previous target; unknown bay
    /// indices are ignored. A target replaces any not yet sent; a write in flight completes.
    pub fn set_targets(&mut self, now_ms: u64, targets: &[(usize, Target)]) -> Vec<SetparCommand> {
        let mut touched = Vec::with_capacity(targets.len());
        for &(bay, target) in targets {
            let Some(state) = self.bays.get_mut(bay) else {
                tracing::warn!(bay, "target for an unknown bay ignored");
                continue;
            };
            state.target = Some(plan::sanitized(target));
            touched.push(bay);
        }
        self.step(now_ms, touched)
    }

    /// A heartbeat of `bay`. The first one after start, or after the bay was released,
    /// reserves what the node evidently offers on every phase, until the bridge's own writes
    /// are confirmed.
    pub fn on_heartbeat(
        &mut self,
        now_ms: u64,
        bay: usize,
        heartbeat: &Measurement,
    ) -> Vec<SetparCommand> {
        let tolerance = i32::from(self.params.measure_tolerance.get());
        let Some(state) = self.bays.get_mut(bay) else {
            return Vec::new();
        };
        state.knowledge = Some(match state.knowledge {
            None => {
                state.wdtsec_confirmed = false;
                state.no_watchdog = false;
                NodeKnowledge::discovered(heartbeat)
            }
            Some(known) => known.absorbed(heartbeat),
        });
        state.presence = Presence::Online;
        if let (Some(_), Some(known)) = (state.hold, state.knowledge_in_flight()) {
            let offer = known.offer_per_bay_phase();
            // Negative readings are garbage, and garbage never frees budget.
            let followed = Phase::ALL.into_iter().all(|p| {
                let (drawn, offered) = (heartbeat.cur[p.index()], offer[p.index()]);
                drawn >= Deciamps::ZERO
                    && i32::from(drawn.get()) <= i32::from(offered.get()) + tolerance
            }) && (Deciamps::ZERO..=known.offer_bound())
                .contains(&heartbeat.amaxcur);
            if followed {
                state.hold = None;
            } else if let Some(hold) = state.hold.as_mut() {
                hold.not_followed = true;
            }
        }
        self.step(now_ms, vec![bay])
    }

    /// The reply to the one write outstanding at `bay`: `ok` for `"avrpar":"ok"`. Replies
    /// with nothing outstanding, or after the deadline, are ignored.
    pub fn on_ack(&mut self, now_ms: u64, bay: usize, ok: bool) -> Vec<SetparCommand> {
        let params = self.params;
        let Some(state) = self.bays.get_mut(bay) else {
            return Vec::new();
        };
        let (Some(outstanding), Some(knowledge)) = (state.outstanding, state.knowledge) else {
            return Vec::new();
        };
        if now_ms >= outstanding.deadline_ms {
            // Too late to tell which write it answers; the timeout handles the write.
            return self.step(now_ms, vec![bay]);
        }
        let write = outstanding.write;
        state.outstanding = None;
        if ok {
            state.retry = None;
            let before = knowledge.with_write(write).offer_per_bay_phase();
            let confirmed = knowledge.with_confirmed(write);
            state.knowledge = Some(confirmed);
            if matches!(write, Write::Wdtsec(_)) {
                state.wdtsec_confirmed = true;
            }
            // The node offers less from now on; its vehicle follows only within seconds, so
            // everything reserved so far stays reserved, and the wait starts anew even if
            // an earlier lowering is still being waited for.
            let after = confirmed.offer_per_bay_phase();
            if Phase::ALL
                .into_iter()
                .any(|p| before[p.index()] > after[p.index()])
            {
                state.hold = Some(Hold {
                    offer: state.hold.map_or(before, |h| max_each(before, h.offer)),
                    confirmed_ms: now_ms,
                    // The last heartbeat's word stands until the next one.
                    not_followed: state.hold.is_some_and(|h| h.not_followed),
                });
            }
        } else if write.is_watchdog_param() {
            tracing::info!(bay, "node rejects watchdog parameters: no watchdog");
            state.no_watchdog = true;
            state.retry = None;
            state.knowledge = Some(knowledge.without_watchdog());
        } else {
            state.knowledge = Some(knowledge.with_write(write));
            state.record_failure(write, now_ms, &params);
        }
        self.step(now_ms, vec![bay])
    }

    /// An operator's write of a parameter the sequencer owns, to a bay it has stopped
    /// (disabled): admitted like the sequencer's own raises, only if every group of the bay
    /// stays within its limit with the write counted from the moment it is sent. Admitted,
    /// the knowledge includes it, so that the reservation covers what the node may then
    /// offer (at once, or when the bay is started again) until a write of the sequencer's
    /// own is confirmed. `false`: no room (or the bay was never heard), it must not be sent.
    pub(crate) fn admit_operator_write(&mut self, now_ms: u64, bay: usize, write: Write) -> bool {
        let Some(state) = self.bays.get(bay) else {
            return false;
        };
        let Some(known) = state.knowledge_in_flight() else {
            return false;
        };
        let new = state.reservation_with(known.with_write(write));
        if !self.allowed(now_ms, bay, &known, write, new) {
            return false;
        }
        if let Some(state) = self.bays.get_mut(bay) {
            state.knowledge = state.knowledge.map(|k| k.with_write(write));
        }
        self.sync_reservation(bay);
        true
    }

    /// Whether a write to `bay` waits for its reply (an operator's write sent now is
    /// answered after it).
    #[must_use]
    pub fn awaits_ack(&self, bay: usize) -> bool {
        self.bays.get(bay).is_some_and(|s| s.outstanding.is_some())
    }

    /// An operator's write goes to `bay` (sent when [`Sequencer::awaits_ack`] is `false`):
    /// nothing is sent to it until [`Sequencer::operator_write_done`], so that the next
    /// reply is the operator's and no write of the sequencer's own, confirmed meanwhile,
    /// replaces the knowledge the operator's write widened.
    pub(crate) fn operator_write_sent(&mut self, bay: usize) {
        if let Some(state) = self.bays.get_mut(bay) {
            state.operator_write = true;
        }
    }

    /// The operator's write to `bay` was answered or given up on: the bay's next write may go.
    pub(crate) fn operator_write_done(&mut self, now_ms: u64, bay: usize) -> Vec<SetparCommand> {
        match self.bays.get_mut(bay) {
            Some(state) if state.operator_write => {
                state.operator_write = false;
                self.step(now_ms, vec![bay])
            }
            _ => Vec::new(),
        }
    }

    /// The site core lost `bay` (heartbeat timeout): its reservation stays as it is until
    /// it is heard again or [`Sequencer::release`]d; nothing is sent to it meanwhile.
    pub fn on_offline(&mut self, bay: usize) {
        if let Some(state) = self.bays.get_mut(bay) {
            if state.presence == Presence::Online {
                state.presence = Presence::Offline;
            }
        }
    }

    /// The operator declares offline `bay` gone: its reservation is freed and its node is
    /// treated as unknown when heard again.
    ///
    /// # Errors
    /// [`SequencerError::UnknownBay`], or [`SequencerError::StillOnline`] for a bay that
    /// is online (its reservation is real).
    pub fn release(
        &mut self,
        now_ms: u64,
        bay: usize,
    ) -> Result<Vec<SetparCommand>, SequencerError> {
        self.start_over(now_ms, bay, false)
    }

    /// The node of offline `bay` restarted with values the bridge did not write: it is
    /// treated as unknown when heard again, and its reservation stays as the least one
    /// until the node confirmed the bridge's own setpoint. Unlike [`Self::release`],
    /// no other bay gets any of that budget meanwhile.
    ///
    /// # Errors
    /// As [`Self::release`].
    pub fn relearn(
        &mut self,
        now_ms: u64,
        bay: usize,
    ) -> Result<Vec<SetparCommand>, SequencerError> {
        self.start_over(now_ms, bay, true)
    }

    /// Forgets what offline `bay`'s node holds; `keep_reservation` makes its reservation
    /// the floor before anything is sent, so the bays waiting for budget see none freed.
    fn start_over(
        &mut self,
        now_ms: u64,
        bay: usize,
        keep_reservation: bool,
    ) -> Result<Vec<SetparCommand>, SequencerError> {
        let state = self
            .bays
            .get_mut(bay)
            .ok_or(SequencerError::UnknownBay(bay))?;
        if state.presence == Presence::Online {
            return Err(SequencerError::StillOnline(bay));
        }
        let fresh = BayState {
            target: state.target,
            // The old value, so that syncing below takes it out of the group totals.
            reservation: state.reservation,
            floor: keep_reservation.then(|| PhaseLoad(state.reservation.0.map(|v| v.max(0)))),
            ..BayState::new(state.wiring)
        };
        *state = fresh;
        Ok(self.step(now_ms, vec![bay]))
    }

    /// The mesh link came up or went down. While it is down no reservation is raised; once
    /// it is up the start-up grace runs again: bays not heard since may be drawing anything
    /// they were allowed.
    pub fn on_link(&mut self, now_ms: u64, up: bool) {
        self.startup_grace_until_ms = Some(if up {
            now_ms.saturating_add(self.params.startup_grace_ms)
        } else {
            u64::MAX
        });
    }

    /// How long a write waits for its reply on the link in use (its queue included).
    pub fn set_ack_timeout(&mut self, ack_timeout_ms: u64) {
        self.params.ack_timeout_ms = ack_timeout_ms;
    }

    /// What `bay` may have been drawing per site phase when the bridge stopped: reserved
    /// until the node confirmed the bridge's own setpoint (or the operator releases it).
    pub fn restore_reservation(&mut self, bay: usize, load: PhaseLoad) {
        if let Some(state) = self.bays.get_mut(bay) {
            state.floor = Some(PhaseLoad(load.0.map(|v| v.max(0))));
            self.sync_reservation(bay);
        }
    }

    /// Reservations that changed since the last call, each with whether it rose: to be
    /// persisted, a risen one before the writes that go out with it.
    pub fn take_reservation_changes(&mut self) -> Vec<(usize, PhaseLoad, bool)> {
        std::mem::take(&mut self.reservation_changes)
            .into_iter()
            .map(|(bay, (load, raised))| (bay, load, raised))
            .collect()
    }

    /// Timeouts, retries, watchdog refreshes, expired holds, and raises that became possible.
    pub fn poll(&mut self, now_ms: u64) -> Vec<SetparCommand> {
        if self.startup_grace_until_ms.is_some_and(|t| now_ms >= t) {
            self.startup_grace_until_ms = None;
        }
        self.step(now_ms, (0..self.bays.len()).collect())
    }

    /// When [`Sequencer::poll`] has something to do next, if ever: always later than the
    /// last poll.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.bays
            .iter()
            .enumerate()
            .filter_map(|(bay, s)| self.wake_ms(bay, s))
            // `u64::MAX` is "until the link is up", which no timer ends.
            .chain(self.startup_grace_until_ms.filter(|&t| t != u64::MAX))
            .min()
    }

    fn wake_ms(&self, bay: usize, state: &BayState) -> Option<u64> {
        let hold = state
            .hold
            .filter(|h| !h.not_followed)
            .map(|h| h.confirmed_ms.saturating_add(self.params.settle_grace_ms));
        let exactly_known = state.knowledge.is_some_and(|k| k.smaxcur.exact().is_some());
        // A bay waiting for budget (its refresh may be what waits) is looked at again when
        // budget frees, on its heartbeat, or on any poll.
        let waiting = self.waiting_for_budget.contains(&bay);
        let own = if let Some(o) = state.outstanding {
            Some(o.deadline_ms)
        } else if state.backoff_until_ms.is_some() {
            state.backoff_until_ms
        } else if state.presence == Presence::Online
            && exactly_known
            && !waiting
            // Held for an operator's write: its answer steps the bay.
            && !state.operator_write
        {
            state
                .last_smaxcur_ms
                .map(|t| t.saturating_add(self.params.refresh_interval_ms))
        } else {
            None
        };
        own.into_iter().chain(hold).min()
    }
}

#[cfg(test)]
mod tests;
