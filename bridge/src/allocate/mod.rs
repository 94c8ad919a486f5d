//! The allocation engine: how much current each bay may draw, on which phases, this round.
//!
//! Sans-IO and deterministic: the site core calls [`Allocator::allocate`] with the clock,
//! the [`Topology`], one [`BayDemand`] per bay and the [`Params`], and gets an
//! [`Allocation`] back. The [`Allocator`] only remembers on/off times and last currents per
//! bay (rotation, minimum on/off times, hysteresis).
//!
//! One round:
//! 1. Offline bays' reserved setpoints are counted first, whatever they are: if they
//!    alone exceed a limit, nobody else under it gets anything.
//! 2. Bays that cannot charge are set aside with a [`Reason`] (off, nothing plugged, cap
//!    below 6 A, no usable phase, unknown circuit, `pv` without surplus data, resting after
//!    a pause).
//! 3. Admission: in strategy order (minimum-on-time bays first, `pv` bays after all
//!    others since they only live on surplus, rotation within equal rank, see `rotation`),
//!    each bay is admitted if its floor (6 A, or a `schedule` goal)
//!    fits under every limit on its path; `pv` bays also need the surplus for it. The rest
//!    pause. This is what makes every target 0 or at least 6 A.
//! 4. Fill: what is left goes to the admitted bays above their floors, by water-filling
//!    (`fair`, `schedule`) or greedily in rank order (`fcfs`, `priority`).
//! 5. Hysteresis holds back small rises; the memory is updated; fail-safe currents and
//!    per-phase totals are derived.
//!
//! Limits are hard and per site phase; a bay's current counts on each site phase its
//! (rotated) phases land on. Steps 3 and 4 never grant beyond a limit, and every later
//! step only lowers a current, so the limits hold whatever the memory says.
//!
//! The site limit is what the bays may draw together: a site core that shares the grid
//! connection with other loads subtracts them before calling.

mod failsafe;
mod fair;
mod input;
mod network;
mod order;
mod rotation;
mod schedule;
mod topology;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::collections::HashMap;

use ctrl22_node::{Deciamps, Phase};

use crate::bay::{BayId, Setpoint};

pub use input::{BayDemand, ChargeMode, Params, Strategy};
pub use network::Bottleneck;
pub use topology::{Circuit, Topology, TopologyError};

use network::{coarse, fine, Candidate, Network};
use rotation::BayMemory;

/// Why a bay got what it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Offline: its last allowed setpoint is kept and counted against the limits.
    Reserved,
    /// No car, or the session wants no power.
    Idle,
    /// Its mode is `off`.
    ModeOff,
    /// The EV's phases and the bay's wiring have nothing in common.
    NoUsablePhases,
    /// Its own maximum (cable, configuration, EV, external cap) is below 6 A.
    CapBelowMinimum,
    /// It names a circuit the topology does not have.
    UnknownCircuit,
    /// `pv` mode and the surplus is unknown or too small for 6 A.
    NoSurplus,
    /// Paused less than the minimum off time ago.
    MinOffTime,
    /// Not everyone fits at 6 A; it waits for its turn (rotation) or for capacity.
    WaitingForCapacity,
    /// It gets its own maximum.
    AtCap,
    /// This limit stopped it below its maximum.
    Limited(Bottleneck),
    /// A small rise is held back to avoid chatter.
    Hysteresis,
}

/// For a bay in `schedule` mode with a departure time and an energy goal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadlineOutlook {
    /// Steady current per phase that meets the goal exactly at departure.
    pub needed: Deciamps,
    /// Whether this round's allocation is at least `needed`.
    pub reachable: bool,
}

/// The decision for one bay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BayAllocation {
    pub id: BayId,
    /// In the bay's own phase numbering; [`Setpoint::PAUSED`] when paused.
    pub setpoint: Setpoint,
    /// What the node's watchdog falls back to; never above `setpoint.current`.
    pub fail_safe: Deciamps,
    pub reason: Reason,
    pub deadline: Option<DeadlineOutlook>,
    /// It lives on the solar budget this round: `pv`, or `schedule` still waiting for its
    /// latest start.
    pub surplus_only: bool,
}

/// The decision for the whole site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// One per [`BayDemand`], in the same order.
    pub bays: Vec<BayAllocation>,
    /// Sum of all setpoints (reserved ones included) per site phase.
    pub site_totals: [Deciamps; 3],
    /// The same per circuit, in [`Topology::circuits`] order.
    pub circuit_totals: Vec<[Deciamps; 3]>,
}

impl Allocation {
    /// The fail-safe current of each bay, in input order.
    #[must_use]
    pub fn fail_safe_currents(&self) -> Vec<Deciamps> {
        self.bays.iter().map(|bay| bay.fail_safe).collect()
    }
}

/// The allocation engine with its memory of past rounds.
#[derive(Debug, Default)]
pub struct Allocator {
    memory: HashMap<BayId, BayMemory>,
    round: u64,
}

/// Admission order; the derived order compares the fields top to bottom, lower first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    /// 0 inside the minimum on time: such bays keep charging if the limits allow.
    unprotected: u8,
    /// 1 for `pv` bays: they live on surplus and come after every bay that does not.
    surplus_only: u8,
    strategy: order::StrategyKey,
    rotation: rotation::RotationKey,
    arrived_at_ms: u64,
    index: usize,
}

impl Rank {
    /// The order of the greedy fill: strategy rank only, since minimum-on protection and
    /// the surplus class only matter for who is admitted.
    fn fill_key(&self) -> (order::StrategyKey, rotation::RotationKey, u64, usize) {
        (self.strategy, self.rotation, self.arrived_at_ms, self.index)
    }
}

/// What step 2 decided for a bay that may charge.
struct Contender {
    candidate: Candidate,
    goal: Option<schedule::Goal>,
    /// A `schedule` bay whose laxity ran out: it may take grid power.
    from_grid: bool,
    rank: Rank,
}

impl Allocator {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides every bay's setpoint for this round. See the module documentation.
    pub fn allocate(
        &mut self,
        now_ms: u64,
        topo: &Topology,
        bays: &[BayDemand],
        params: &Params,
    ) -> Allocation {
        self.round = self.round.wrapping_add(1);
        let solar_limit = params
            .solar_budget_w
            .filter(|_| params.voltage > 0)
            .map(|watts| i64::from(watts.max(0)) * 10 * network::SCALE);
        let mut net = Network::new(topo, solar_limit.unwrap_or(0));
        let mut out: Vec<BayAllocation> = bays
            .iter()
            .map(|bay| BayAllocation {
                id: bay.id.clone(),
                setpoint: Setpoint::PAUSED,
                fail_safe: Deciamps::ZERO,
                reason: Reason::Idle,
                deadline: None,
                surplus_only: false,
            })
            .collect();
        self.reserve(topo, bays, &mut net, &mut out);

        let round = Round {
            now_ms,
            topo,
            params,
            solar_limit,
        };
        let mut contenders = Vec::with_capacity(bays.len());
        for (index, (slot, bay)) in out.iter_mut().zip(bays).enumerate() {
            if bay.reserved.is_some() {
                continue;
            }
            let memory = self.remember(&bay.id);
            match contend(index, bay, memory, &round, &mut net) {
                Ok(contender) => contenders.push(contender),
                Err(reason) => slot.reason = reason,
            }
        }
        contenders.sort_unstable_by_key(|c| c.rank);
        let admitted = admit(&mut contenders, &mut net, &mut out, params);
        let admitted: Vec<&Contender> = admitted
            .into_iter()
            .filter_map(|index| contenders.get(index))
            .collect();
        let grants = fill(params.strategy, &mut net, admitted);
        self.grant(now_ms, &grants, &net, &mut out, params);

        for contender in &contenders {
            if let (Some(goal), Some(slot)) = (contender.goal, out.get_mut(contender.candidate.bay))
            {
                // While it waits for its latest start, the goal is reachable if the laxity is.
                let reachable = if contender.from_grid {
                    slot.setpoint.current >= goal.needed
                } else {
                    goal.laxity_ms >= 0
                };
                slot.deadline = Some(DeadlineOutlook {
                    needed: goal.needed,
                    reachable,
                });
            }
        }
        let mut surplus = vec![(false, false); bays.len()];
        for contender in &contenders {
            if let Some(slot) = out.get_mut(contender.candidate.bay) {
                slot.surplus_only = contender.candidate.mode == ChargeMode::Pv;
            }
            if let Some(memory) = bays
                .get(contender.candidate.bay)
                .and_then(|bay| self.memory.get_mut(&bay.id))
            {
                memory.from_grid = contender.from_grid;
            }
            if let Some(s) = surplus.get_mut(contender.candidate.bay) {
                *s = (
                    contender.candidate.short_of_surplus,
                    contender.candidate.waiting_for_surplus,
                );
            }
        }
        for ((slot, bay), (short, waiting)) in out.iter().zip(bays).zip(surplus) {
            if bay.reserved.is_none() {
                if let Some(memory) = self.memory.get_mut(&bay.id) {
                    memory.record(now_ms, slot.setpoint.current, short);
                    memory.record_surplus_wait(now_ms, waiting);
                }
            }
        }
        let this_round = self.round;
        self.memory
            .retain(|_, memory| memory.seen_round == this_round);

        let (site_totals, circuit_totals) = totals(topo, bays, &out);
        Allocation {
            bays: out,
            site_totals,
            circuit_totals,
        }
    }

    /// Step 1: offline bays keep their setpoint, counted before anyone else.
    fn reserve(
        &mut self,
        topo: &Topology,
        bays: &[BayDemand],
        net: &mut Network,
        out: &mut [BayAllocation],
    ) {
        for (slot, bay) in out.iter_mut().zip(bays) {
            let Some(reserved) = bay.reserved else {
                continue;
            };
            // Remembered, so that on/off times still count when it is back.
            self.remember(&bay.id);
            // Behind an unknown circuit it still counts against the site.
            let node = topo.node_of(bay.circuit.as_deref()).unwrap_or(0);
            let edges = net.add_edges(topo, node, bay.site_load_weights(reserved.phases), 0);
            net.add_load(edges, fine(reserved.current.max(Deciamps::ZERO)));
            slot.setpoint = reserved;
            slot.fail_safe = failsafe::fail_safe(bay.mode, reserved.current, true);
            slot.reason = Reason::Reserved;
        }
    }

    /// Step 5: turns granted fine currents into setpoints, with reasons, hysteresis and
    /// fail-safe currents.
    fn grant(
        &mut self,
        now_ms: u64,
        grants: &[(&Contender, i64)],
        net: &Network,
        out: &mut [BayAllocation],
        params: &Params,
    ) {
        for &(contender, value) in grants {
            let candidate = &contender.candidate;
            let Some(slot) = out.get_mut(candidate.bay) else {
                continue;
            };
            let granted = coarse(value);
            if granted < Deciamps::MIN_CHARGE {
                // Cannot happen (values never fall below the floor); pausing is the safe side.
                slot.reason = Reason::WaitingForCapacity;
                continue;
            }
            slot.reason = if value >= candidate.cap {
                Reason::AtCap
            } else {
                net.headroom(candidate.edges.clone(), false)
                    .map_or(Reason::AtCap, |(_, c)| Reason::Limited(net.bottleneck(c)))
            };
            let floor = coarse(candidate.floor);
            // The surplus part of a `minpv` bay starts and stops by the `pv` delays.
            let held_to_floor = candidate.mode == ChargeMode::MinPv
                && self
                    .memory
                    .get_mut(&slot.id)
                    .is_some_and(|m| !m.minpv_extra(now_ms, granted > floor, params));
            let granted = if held_to_floor {
                granted.min(floor)
            } else {
                granted
            };
            let current = self
                .memory
                .get(&slot.id)
                .map_or(granted, |m| m.damp(granted, floor, params.hysteresis));
            if current < granted {
                slot.reason = Reason::Hysteresis;
            }
            slot.setpoint = Setpoint {
                current,
                phases: candidate.phases,
            };
            slot.fail_safe = failsafe::fail_safe(candidate.mode, current, false);
        }
    }

    fn remember(&mut self, id: &BayId) -> BayMemory {
        let round = self.round;
        if let Some(memory) = self.memory.get_mut(id) {
            memory.seen_round = round;
            return *memory;
        }
        let mut memory = BayMemory::default();
        memory.seen_round = round;
        self.memory.insert(id.clone(), memory);
        memory
    }
}

/// The inputs every bay of one round shares.
struct Round<'a> {
    now_ms: u64,
    topo: &'a Topology,
    params: &'a Params,
    /// Fine `deciamps * volts`; `None` when there is no usable solar budget.
    solar_limit: Option<i64>,
}

/// Step 2: whether `bay` may charge at all this round, and if so its candidate entry.
fn contend(
    index: usize,
    bay: &BayDemand,
    memory: BayMemory,
    round: &Round<'_>,
    net: &mut Network,
) -> Result<Contender, Reason> {
    let Round {
        now_ms,
        topo,
        params,
        solar_limit,
    } = *round;
    if bay.mode == ChargeMode::Off {
        return Err(Reason::ModeOff);
    }
    if !bay.wants_charge {
        return Err(Reason::Idle);
    }
    let phases = bay.usable_phases();
    if phases.is_empty() {
        return Err(Reason::NoUsablePhases);
    }
    let node = topo
        .node_of(bay.circuit.as_deref())
        .ok_or(Reason::UnknownCircuit)?;
    if bay.max_current < Deciamps::MIN_CHARGE {
        return Err(Reason::CapBelowMinimum);
    }
    let weights = bay.site_load_weights(phases);
    let phase_count: u8 = weights.iter().sum();
    let goal = (bay.mode == ChargeMode::Schedule)
        .then(|| schedule::goal(bay, phase_count, now_ms, params.voltage))
        .flatten();
    let from_grid =
        bay.mode == ChargeMode::Schedule && schedule::from_grid(bay, goal, memory.from_grid);
    // A `schedule` bay that can still wait lives on the surplus, by the `pv` rules.
    let mode = if bay.mode == ChargeMode::Schedule && !from_grid {
        ChargeMode::Pv
    } else {
        bay.mode
    };
    if mode == ChargeMode::Pv && solar_limit.is_none() {
        return Err(Reason::NoSurplus);
    }
    if memory.resting(now_ms, params) {
        return Err(Reason::MinOffTime);
    }
    let solar_weight = match mode {
        ChargeMode::Pv | ChargeMode::MinPv => {
            i64::from(phase_count) * i64::from(params.voltage.max(1))
        }
        _ => 0,
    };
    let floor = match goal {
        Some(goal) if from_grid && params.strategy == Strategy::Schedule => {
            goal.needed.clamp(Deciamps::MIN_CHARGE, bay.max_current)
        }
        _ => Deciamps::MIN_CHARGE,
    };
    let protected = memory.protected(now_ms, params);
    let rank = Rank {
        unprotected: u8::from(!protected),
        surplus_only: u8::from(mode == ChargeMode::Pv),
        strategy: order::strategy_key(params.strategy, bay, goal),
        rotation: memory.rotation_key(now_ms, params, bay.arrived_at_ms),
        arrived_at_ms: bay.arrived_at_ms,
        index,
    };
    Ok(Contender {
        candidate: Candidate {
            bay: index,
            mode,
            phases,
            floor: fine(floor),
            cap: fine(bay.max_current),
            edges: net.add_edges(topo, node, weights, solar_weight),
            protected,
            was_on: memory.is_on(),
            surplus_grace: memory.surplus_grace(now_ms, params),
            short_of_surplus: false,
            surplus_ready: memory.surplus_ready(now_ms, params),
            waiting_for_surplus: false,
        },
        goal,
        from_grid,
        rank,
    })
}

/// Step 3: admits contenders (sorted by rank) while their floors fit, lowering a schedule
/// goal that fits only in part; returns the positions of the admitted ones, their floors
/// added to `net`.
fn admit(
    contenders: &mut [Contender],
    net: &mut Network,
    out: &mut [BayAllocation],
    params: &Params,
) -> Vec<usize> {
    let mut admitted = Vec::with_capacity(contenders.len());
    for (index, contender) in contenders.iter_mut().enumerate() {
        let candidate = &mut contender.candidate;
        let hard_room = net
            .headroom(candidate.edges.clone(), true)
            .map_or(i64::MAX, |(room, _)| room);
        if candidate.mode == ChargeMode::Pv && !candidate.protected {
            let start_margin = if candidate.was_on {
                0
            } else {
                fine(params.hysteresis.max(Deciamps::ZERO))
            };
            let room = net
                .headroom(candidate.edges.clone(), false)
                .map_or(i64::MAX, |(room, _)| room);
            let enough = room >= candidate.floor + start_margin;
            if enough && !candidate.was_on && !candidate.surplus_ready {
                // Enough surplus, but not yet for the start delay: a gap in the clouds is
                // not a reason to close the contactor.
                candidate.waiting_for_surplus = true;
                if let Some(slot) = out.get_mut(candidate.bay) {
                    slot.reason = Reason::NoSurplus;
                }
                continue;
            }
            if !enough && hard_room >= candidate.floor {
                if !candidate.surplus_grace {
                    if let Some(slot) = out.get_mut(candidate.bay) {
                        slot.reason = Reason::NoSurplus;
                    }
                    continue;
                }
                // A passing cloud: keep 6 A (from the grid if need be) for the stop delay.
                candidate.short_of_surplus = true;
            }
        }
        if hard_room < candidate.floor {
            if hard_room >= fine(Deciamps::MIN_CHARGE) {
                // A schedule goal that does not fit whole: as much of it as fits.
                candidate.floor = hard_room;
            } else {
                if let Some(slot) = out.get_mut(candidate.bay) {
                    slot.reason = Reason::WaitingForCapacity;
                }
                continue;
            }
        }
        net.add_load(candidate.edges.clone(), candidate.floor);
        admitted.push(index);
    }
    admitted
}

/// Step 4: shares what is left above the floors among the admitted bays.
fn fill<'a>(
    strategy: Strategy,
    net: &mut Network,
    admitted: Vec<&'a Contender>,
) -> Vec<(&'a Contender, i64)> {
    match strategy {
        Strategy::Fair | Strategy::Schedule => {
            let candidates: Vec<&Candidate> = admitted.iter().map(|c| &c.candidate).collect();
            let values = fair::water_fill(net, &candidates);
            admitted.into_iter().zip(values).collect()
        }
        Strategy::Fcfs | Strategy::Priority => {
            let mut ranked = admitted;
            ranked.sort_unstable_by_key(|c| c.rank.fill_key());
            let candidates: Vec<&Candidate> = ranked.iter().map(|c| &c.candidate).collect();
            let values = order::greedy_fill(net, &candidates);
            ranked.into_iter().zip(values).collect()
        }
    }
}

/// Per-phase sums of the setpoints, for the site and each circuit.
fn totals(
    topo: &Topology,
    bays: &[BayDemand],
    out: &[BayAllocation],
) -> ([Deciamps; 3], Vec<[Deciamps; 3]>) {
    let mut sums = vec![[0i64; 3]; topo.node_count()];
    for (bay, slot) in bays.iter().zip(out) {
        let current = i64::from(slot.setpoint.current.get().max(0));
        if current == 0 {
            continue;
        }
        let weights = bay.site_load_weights(slot.setpoint.phases);
        let node = topo.node_of(bay.circuit.as_deref()).unwrap_or(0);
        for hop in topo.path(node) {
            if let Some(sum) = sums.get_mut(hop) {
                for phase in Phase::ALL {
                    let weight = weights.get(phase.index()).copied().unwrap_or(0);
                    if let Some(s) = sum.get_mut(phase.index()) {
                        *s += current * i64::from(weight);
                    }
                }
            }
        }
    }
    let saturate = |sum: [i64; 3]| sum.map(|s| Deciamps(i16::try_from(s).unwrap_or(i16::MAX)));
    let site = sums.first().copied().map_or([Deciamps::ZERO; 3], saturate);
    let circuits = sums.iter().skip(1).copied().map(saturate).collect();
    (site, circuits)
}
