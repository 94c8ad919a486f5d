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
//! currents followed it (or [`SequencerParams::settle_grace_ms`] passed), so a vehicle
//! still ramping down is counted; this wait is kept per bay phase and restarts with every
//! confirmed lowering. A bay reported offline keeps its reservation until it is heard
//! again or [`Sequencer::release`]d. A node's fail-safe current never exceeds its setpoint,
//! whatever it has applied: a setpoint is written only at or above the highest fail-safe it
//! may hold, a fail-safe only at or below the lowest setpoint.
//!
//! `bridge/tests/setpoint_props.rs` checks all of this against an independent model of
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

mod knowledge;
mod membership;
mod plan;

use std::collections::BTreeSet;

use ctrl22_node::{Deciamps, Phase, PhaseSet};

use crate::bay::Setpoint;
use knowledge::NodeKnowledge;

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

/// Current per site phase, in 0.1 A. Wider than [`Deciamps`] because it sums over bays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PhaseLoad(pub [i32; 3]);

impl PhaseLoad {
    pub const ZERO: Self = Self([0; 3]);

    #[must_use]
    pub fn on(self, phase: Phase) -> i32 {
        self.0[phase.index()]
    }

    /// Whether no phase carries more than in `other`.
    #[must_use]
    pub fn fits_within(self, other: Self) -> bool {
        Phase::ALL.into_iter().all(|p| self.on(p) <= other.on(p))
    }

    #[must_use]
    pub fn max(self, other: Self) -> Self {
        Self(Phase::ALL.map(|p| self.on(p).max(other.on(p))))
    }

    fn plus(self, other: Self) -> Self {
        Self(Phase::ALL.map(|p| self.on(p).saturating_add(other.on(p))))
    }

    fn minus(self, other: Self) -> Self {
        Self(Phase::ALL.map(|p| self.on(p).saturating_sub(other.on(p))))
    }
}

impl From<[Deciamps; 3]> for PhaseLoad {
    fn from(currents: [Deciamps; 3]) -> Self {
        Self(currents.map(|c| i32::from(c.get())))
    }
}

/// A set of bays whose sum must stay within a limit on every site phase: the site behind
/// its grid connection, or one circuit with the bays of its subtree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitGroup {
    /// For diagnostics and errors.
    pub name: String,
    /// Per site phase (`limit[Phase::L1.index()]` is L1).
    pub limit: [Deciamps; 3],
    /// Indices of the member bays.
    pub bays: Vec<usize>,
}

/// How a bay is connected to the site's phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BayWiring {
    /// `rotation[i]` is the site phase that bay phase `i` is connected to.
    pub rotation: [Phase; 3],
    /// The bay phases the vehicle can load; [`PhaseSet::ALL`] when unknown.
    pub counted_phases: PhaseSet,
}

impl BayWiring {
    /// Bay L1 on site L1 and so on; any vehicle.
    pub const STRAIGHT: Self = Self {
        rotation: Phase::ALL,
        counted_phases: PhaseSet::ALL,
    };

    /// What `current` on the bay phases `phases` puts on the site phases.
    #[must_use]
    pub fn load(&self, phases: PhaseSet, current: Deciamps) -> PhaseLoad {
        self.load_of(Phase::ALL.map(|p| {
            if phases.contains(p) {
                current
            } else {
                Deciamps::ZERO
            }
        }))
    }

    /// What the currents on the bay's phases (`per_bay_phase[0]` on bay L1) put on the
    /// site phases, counting only the phases the vehicle can load.
    fn load_of(&self, per_bay_phase: [Deciamps; 3]) -> PhaseLoad {
        let mut load = PhaseLoad::ZERO;
        for phase in self.counted_phases.iter() {
            let (Some(site), Some(current)) = (
                self.rotation.get(phase.index()),
                per_bay_phase.get(phase.index()),
            ) else {
                continue;
            };
            // Two bay phases on one site phase (odd wiring) both flow through it.
            load.0[site.index()] += i32::from(current.get().max(0));
        }
        load
    }
}

impl Default for BayWiring {
    fn default() -> Self {
        Self::STRAIGHT
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Presence {
    /// Never heard from since start (or since released): nothing known, nothing reserved.
    Unheard,
    Online,
    /// Reported offline by the site core: reservation kept, nothing sent.
    Offline,
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    write: Write,
    deadline_ms: u64,
}

/// What the node may have offered before a confirmed lowering, per bay phase, kept while
/// the vehicle ramps down. Per bay phase, not per site phase: a vehicle may still draw the
/// old offer on one bay phase and already the new one on another, and with two bay phases
/// on one site phase both add up.
#[derive(Clone, Copy, Debug)]
struct Hold {
    offer: [Deciamps; 3],
    confirmed_ms: u64,
}

fn max_each(a: [Deciamps; 3], b: [Deciamps; 3]) -> [Deciamps; 3] {
    Phase::ALL.map(|p| a[p.index()].max(b[p.index()]))
}

#[derive(Clone, Copy, Debug)]
struct Retry {
    write: Write,
    failures: u8,
}

#[derive(Clone, Debug)]
struct BayState {
    wiring: BayWiring,
    presence: Presence,
    knowledge: Option<NodeKnowledge>,
    target: Option<Target>,
    outstanding: Option<Outstanding>,
    hold: Option<Hold>,
    /// Kept equal to [`Sequencer::reservation_of`]; the group totals are sums of these.
    reservation: PhaseLoad,
    wdtsec_confirmed: bool,
    no_watchdog: bool,
    /// A press of the operator button waits for the write slot.
    button: bool,
    last_smaxcur_ms: Option<u64>,
    retry: Option<Retry>,
    backoff_until_ms: Option<u64>,
    /// Writes given up on after `max_attempts`, for diagnostics.
    give_ups: u32,
}

impl BayState {
    fn new(wiring: BayWiring) -> Self {
        Self {
            wiring,
            presence: Presence::Unheard,
            knowledge: None,
            target: None,
            outstanding: None,
            hold: None,
            reservation: PhaseLoad::ZERO,
            wdtsec_confirmed: false,
            no_watchdog: false,
            button: false,
            last_smaxcur_ms: None,
            retry: None,
            backoff_until_ms: None,
            give_ups: 0,
        }
    }

    /// The knowledge including the write in flight.
    fn knowledge_in_flight(&self) -> Option<NodeKnowledge> {
        let knowledge = self.knowledge?;
        Some(match self.outstanding {
            Some(o) => knowledge.with_write(o.write),
            None => knowledge,
        })
    }

    fn reservation_of(&self) -> PhaseLoad {
        self.knowledge_in_flight()
            .map_or(PhaseLoad::ZERO, |k| self.reservation_with(k))
    }

    /// The reservation if the node's knowledge were `knowledge`.
    fn reservation_with(&self, knowledge: NodeKnowledge) -> PhaseLoad {
        let offer = knowledge.offer_per_bay_phase();
        let held = self.hold.map_or(offer, |h| max_each(offer, h.offer));
        self.wiring.load_of(held)
    }

    fn record_failure(&mut self, write: Write, now_ms: u64, params: &SequencerParams) {
        let failures = match self.retry {
            Some(r) if r.write == write => r.failures.saturating_add(1),
            _ => 1,
        };
        if failures >= params.max_attempts {
            self.retry = None;
            self.backoff_until_ms = Some(now_ms.saturating_add(params.retry_backoff_ms));
            self.give_ups = self.give_ups.saturating_add(1);
            tracing::warn!(
                ?write,
                failures,
                "setpoint write keeps failing; backing off"
            );
        } else {
            self.retry = Some(Retry { write, failures });
        }
    }
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
            ..BayState::new(state.wiring)
        };
        *state = fresh;
        Ok(self.step(now_ms, vec![bay]))
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
            .chain(self.startup_grace_until_ms)
            .min()
    }

    fn wake_ms(&self, bay: usize, state: &BayState) -> Option<u64> {
        let hold = state
            .hold
            .map(|h| h.confirmed_ms.saturating_add(self.params.settle_grace_ms));
        let exactly_known = state.knowledge.is_some_and(|k| k.smaxcur.exact().is_some());
        // A bay waiting for budget (its refresh may be what waits) is looked at again when
        // budget frees, on its heartbeat, or on any poll.
        let waiting = self.waiting_for_budget.contains(&bay);
        let own = if let Some(o) = state.outstanding {
            Some(o.deadline_ms)
        } else if state.backoff_until_ms.is_some() {
            state.backoff_until_ms
        } else if state.presence == Presence::Online && exactly_known && !waiting {
            state
                .last_smaxcur_ms
                .map(|t| t.saturating_add(self.params.refresh_interval_ms))
        } else {
            None
        };
        own.into_iter().chain(hold).min()
    }

    // ----- introspection -------------------------------------------------------------

    /// Number of bays.
    #[must_use]
    pub fn bay_count(&self) -> usize {
        self.bays.len()
    }

    /// The limit groups, in the order given (bays sorted).
    #[must_use]
    pub fn groups(&self) -> &[LimitGroup] {
        &self.groups
    }

    /// What `bay` holds in the budget per site phase (zero for unknown bays).
    #[must_use]
    pub fn reservation(&self, bay: usize) -> PhaseLoad {
        self.bays
            .get(bay)
            .map_or(PhaseLoad::ZERO, |s| s.reservation)
    }

    /// The sum of the reservations of `group`'s bays (zero for unknown groups).
    #[must_use]
    pub fn total(&self, group: usize) -> PhaseLoad {
        self.totals.get(group).copied().unwrap_or_default()
    }

    /// The setpoint the node has confirmed, if the bridge knows it exactly.
    #[must_use]
    pub fn confirmed(&self, bay: usize) -> Option<Setpoint> {
        let k = self.bays.get(bay)?.knowledge?;
        Some(Setpoint {
            current: k.smaxcur.exact()?,
            phases: k.phases.exact()?,
        })
    }

    /// The fail-safe current the node has confirmed, if known exactly (never for bays
    /// without watchdog).
    #[must_use]
    pub fn confirmed_fail_safe(&self, bay: usize) -> Option<Deciamps> {
        let f = self.bays.get(bay)?.knowledge?.fsafecur?;
        f.exact()
    }

    /// The target last given for `bay`, as sanitized.
    #[must_use]
    pub fn target(&self, bay: usize) -> Option<Target> {
        self.bays.get(bay)?.target
    }

    /// The write outstanding at `bay`, if any.
    #[must_use]
    pub fn pending(&self, bay: usize) -> Option<SetparCommand> {
        self.bays
            .get(bay)?
            .outstanding
            .map(|o| o.write.to_command(bay))
    }

    /// Whether the node rejected `fsafecur`/`wdtsec` (original firmware without watchdog).
    #[must_use]
    pub fn no_watchdog(&self, bay: usize) -> bool {
        self.bays.get(bay).is_some_and(|s| s.no_watchdog)
    }

    /// Writes to `bay` given up on after `max_attempts` so far (then retried after the
    /// backoff).
    #[must_use]
    pub fn give_ups(&self, bay: usize) -> u32 {
        self.bays.get(bay).map_or(0, |s| s.give_ups)
    }

    /// Whether `bay` has reached its target: node confirmed it exactly (fail-safe too where
    /// there is a watchdog), nothing in flight, no reservation held beyond it.
    #[must_use]
    pub fn is_settled(&self, bay: usize) -> bool {
        let Some(state) = self.bays.get(bay) else {
            return false;
        };
        let (Some(target), Some(k)) = (state.target, state.knowledge) else {
            return false;
        };
        let fail_safe_ok = k.fsafecur.is_none_or(|f| f.is_exactly(target.fail_safe));
        state.outstanding.is_none()
            && state.hold.is_none()
            && k.smaxcur.is_exactly(target.setpoint.current)
            && k.phases.is_exactly(target.setpoint.phases)
            && fail_safe_ok
    }

    // ----- the engine ------------------------------------------------------------------

    /// Expires what is due at each of `bays`, then gives each its next write (and, if budget
    /// was freed, every bay waiting for it). Other bays' timeouts wait for [`Self::poll`]:
    /// until then they count as in flight, which reserves the same.
    fn step(&mut self, now_ms: u64, bays: Vec<usize>) -> Vec<SetparCommand> {
        let mut freed = false;
        for &bay in &bays {
            freed |= self.expire(now_ms, bay);
        }
        let mut out = Vec::new();
        for bay in bays {
            self.next_write(now_ms, bay, &mut out);
        }
        // A write sent above never frees budget, so one pass over the waiters suffices.
        if freed {
            let waiting: Vec<usize> = std::mem::take(&mut self.waiting_for_budget)
                .into_iter()
                .collect();
            for bay in waiting {
                self.next_write(now_ms, bay, &mut out);
            }
        }
        out
    }

    /// The timeout, hold expiry and backoff end of `bay`, then its reservation brought up
    /// to date; whether the reservation dropped.
    fn expire(&mut self, now_ms: u64, bay: usize) -> bool {
        let params = self.params;
        let Some(state) = self.bays.get_mut(bay) else {
            return false;
        };
        if let Some(o) = state.outstanding.filter(|o| now_ms >= o.deadline_ms) {
            state.outstanding = None;
            state.knowledge = state.knowledge.map(|k| k.with_write(o.write));
            state.record_failure(o.write, now_ms, &params);
        }
        if state
            .hold
            .is_some_and(|h| now_ms >= h.confirmed_ms.saturating_add(params.settle_grace_ms))
        {
            state.hold = None;
        }
        if state.backoff_until_ms.is_some_and(|t| now_ms >= t) {
            state.backoff_until_ms = None;
        }
        self.sync_reservation(bay)
    }

    /// Brings the cached reservation and group totals up to date; whether it dropped on any
    /// phase.
    fn sync_reservation(&mut self, bay: usize) -> bool {
        let Some(state) = self.bays.get_mut(bay) else {
            return false;
        };
        let old = state.reservation;
        let new = state.reservation_of();
        if new == old {
            return false;
        }
        state.reservation = new;
        for &group in self.groups_of_bay.get(bay).into_iter().flatten() {
            if let Some(total) = self.totals.get_mut(group) {
                *total = total.minus(old).plus(new);
            }
        }
        !old.fits_within(new)
    }

    /// Whether `write` may go to `bay`, its reservation becoming `new`: on every phase of
    /// every group of the bay, either the group's total stays within the limit, or the write
    /// cannot raise what the node puts there (the group is overcommitted on paper).
    fn allowed(
        &self,
        now_ms: u64,
        bay: usize,
        knowledge: &NodeKnowledge,
        write: Write,
        new: PhaseLoad,
    ) -> bool {
        let Some(state) = self.bays.get(bay) else {
            return false;
        };
        let old = state.reservation;
        let in_grace = self.startup_grace_until_ms.is_some_and(|t| now_ms < t);
        // Bays not yet heard are missing from the totals, so the totals prove nothing: each
        // node stays within what it evidently did when heard (no raise of its reservation,
        // which is that evidence), and moves no load between phases.
        if in_grace
            && (!new.fits_within(old)
                || (matches!(write, Write::Phases(_))
                    && !Phase::ALL
                        .into_iter()
                        .all(|p| knowledge.never_raises(write, &state.wiring, p))))
        {
            return false;
        }
        self.groups_of_bay.get(bay).into_iter().flatten().all(|&g| {
            match (self.groups.get(g), self.totals.get(g)) {
                (Some(group), Some(total)) => Phase::ALL.into_iter().all(|p| {
                    let limit = i32::from(group.limit[p.index()].get());
                    total.on(p) - old.on(p) + new.on(p) <= limit
                        || knowledge.never_raises(write, &state.wiring, p)
                }),
                _ => false,
            }
        })
    }

    /// Whether a group of `bay` is over its limit on a phase the bay holds a share of.
    fn overcommitted(&self, bay: usize) -> bool {
        let mine = self.reservation(bay);
        self.groups_of_bay.get(bay).into_iter().flatten().any(|&g| {
            match (self.groups.get(g), self.totals.get(g)) {
                (Some(group), Some(total)) => Phase::ALL.into_iter().any(|p| {
                    mine.on(p) > 0 && total.on(p) > i32::from(group.limit[p.index()].get())
                }),
                _ => false,
            }
        })
    }

    fn next_write(&mut self, now_ms: u64, bay: usize, out: &mut Vec<SetparCommand>) {
        let Some(state) = self.bays.get(bay) else {
            return;
        };
        let Some(knowledge) = state.knowledge else {
            return;
        };
        if state.presence != Presence::Online
            || state.outstanding.is_some()
            || state.backoff_until_ms.is_some()
        {
            return;
        }
        let chores = plan::Chores {
            wdtsec: (!state.wdtsec_confirmed).then_some(self.params.watchdog_secs),
            // Only what the bridge itself wrote is re-sent.
            refresh_due: state
                .last_smaxcur_ms
                .is_some_and(|t| now_ms >= t.saturating_add(self.params.refresh_interval_ms)),
            press: state.button,
        };
        let mut blocked = false;
        let mut chosen = None;
        let candidates = plan::candidates(&knowledge, state.target.as_ref(), chores);
        // Pausing is the last resort, not for the startup grace: by its end the first
        // confirmed writes and learned vehicle phases usually bring the paper totals down.
        let in_grace = self.startup_grace_until_ms.is_some_and(|t| now_ms < t);
        let pause = || plan::pause(&knowledge);
        let fallback = (!in_grace && !candidates.is_empty() && self.overcommitted(bay))
            .then(pause)
            .unwrap_or_default();
        for write in candidates.into_iter().chain(fallback) {
            let new = state.reservation_with(knowledge.with_write(write));
            if self.allowed(now_ms, bay, &knowledge, write, new) {
                chosen = Some(write);
                break;
            }
            blocked = true;
        }
        if blocked && chosen.is_none() {
            self.waiting_for_budget.insert(bay);
        }
        let Some(write) = chosen else {
            return;
        };
        let deadline_ms = now_ms.saturating_add(self.params.ack_timeout_ms);
        if let Some(state) = self.bays.get_mut(bay) {
            state.outstanding = Some(Outstanding { write, deadline_ms });
            match write {
                Write::Smaxcur(_) => state.last_smaxcur_ms = Some(now_ms),
                // A toggle: pressed once, never repeated on a lost reply.
                Write::Opbutton => state.button = false,
                Write::Phases(_) | Write::Fsafecur(_) | Write::Wdtsec(_) => {}
            }
        }
        self.waiting_for_budget.remove(&bay);
        self.sync_reservation(bay);
        out.push(write.to_command(bay));
    }
}

#[cfg(test)]
mod tests;
