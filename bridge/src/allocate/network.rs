//! The limits of one round as flat integer constraints, and the bays competing for them.
//!
//! Every (tree node, site phase) pair is one hard constraint: `node * 3 + phase`. One more,
//! soft, constraint carries the solar budget for `pv`/`minpv` bays. A bay touches each
//! constraint with a weight: how many amperes one ampere at the bay puts there (1 per site
//! phase normally, 2 when a rotation maps two bay phases onto one site phase, voltage times
//! phase count for the solar budget in `deciamps * volts`).
//!
//! Arithmetic is integer in 1/1024 of a deciampere ([`SCALE`]) so water-filling can split a
//! limit evenly between many bays without floating point, and rounding only ever goes down:
//! a constraint's load never exceeds its limit by construction.

use core::ops::Range;

use ctrl22_node::{Deciamps, Phase, PhaseSet};

use super::input::ChargeMode;
use super::topology::Topology;

/// Fine units per deciampere.
pub(super) const SCALE: i64 = 1024;

pub(super) fn fine(current: Deciamps) -> i64 {
    i64::from(current.get()) * SCALE
}

/// Whole deciamperes, rounded down (never up: rounding must not add load).
pub(super) fn coarse(fine: i64) -> Deciamps {
    let deciamps = fine.div_euclid(SCALE);
    Deciamps(i16::try_from(deciamps.max(0)).unwrap_or(i16::MAX))
}

/// The limit that stopped a bay below its own maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bottleneck {
    Site(Phase),
    /// `index` into [`Topology::circuits`].
    Circuit {
        index: usize,
        phase: Phase,
    },
    /// The solar surplus shared by `pv` and `minpv` bays.
    Solar,
}

/// One bay's share in one constraint.
#[derive(Clone, Copy, Debug)]
pub(super) struct Edge {
    pub constraint: usize,
    pub weight: i64,
}

/// A bay that may charge this round, before admission.
#[derive(Clone, Debug)]
pub(super) struct Candidate {
    /// Index into the round's `BayDemand` slice.
    pub bay: usize,
    pub mode: ChargeMode,
    /// Bay-side phases it will be told to use.
    pub phases: PhaseSet,
    /// What it gets at least once admitted (6 A, or a schedule goal), fine units.
    pub floor: i64,
    /// Its own maximum, fine units.
    pub cap: i64,
    /// Into [`Network::edges`].
    pub edges: Range<usize>,
    /// Charging and younger than the minimum on time: kept on if the limits allow.
    pub protected: bool,
    pub was_on: bool,
    /// A charging `pv` bay whose surplus has been short for less than the stop delay.
    pub surplus_grace: bool,
    /// Set by admission: admitted on grace although the surplus is short.
    pub short_of_surplus: bool,
    /// A paused `pv` bay whose surplus has sufficed for the start delay.
    pub surplus_ready: bool,
    /// Set by admission: a paused `pv` bay has enough surplus but waits out the start delay.
    pub waiting_for_surplus: bool,
}

/// Limits, loads and the edges of all candidates.
#[derive(Debug)]
pub(super) struct Network {
    pub limit: Vec<i64>,
    /// Reserved offline bays plus whatever admission and filling have granted so far.
    pub load: Vec<i64>,
    pub edges: Vec<Edge>,
    node_count: usize,
}

impl Network {
    /// `solar_limit` in fine `deciamps * volts` (0 when there is no usable budget).
    pub fn new(topo: &Topology, solar_limit: i64) -> Self {
        let node_count = topo.node_count();
        let mut limit = Vec::with_capacity(node_count * 3 + 1);
        for node in 0..node_count {
            for phase in Phase::ALL {
                limit.push(fine(topo.limit(node, phase)));
            }
        }
        limit.push(solar_limit.max(0));
        let load = vec![0; limit.len()];
        Self {
            limit,
            load,
            edges: Vec::new(),
            node_count,
        }
    }

    pub fn constraint_count(&self) -> usize {
        self.limit.len()
    }

    pub fn solar(&self) -> usize {
        self.node_count * 3
    }

    /// Appends the hard edges of a load with site-phase `weights` below `node`, plus a solar
    /// edge of `solar_weight` if non-zero; returns their range in [`Self::edges`].
    pub fn add_edges(
        &mut self,
        topo: &Topology,
        node: usize,
        weights: [u8; 3],
        solar_weight: i64,
    ) -> Range<usize> {
        let start = self.edges.len();
        for hop in topo.path(node) {
            for phase in Phase::ALL {
                let weight = weights.get(phase.index()).copied().unwrap_or(0);
                if weight > 0 {
                    self.edges.push(Edge {
                        constraint: hop * 3 + phase.index(),
                        weight: i64::from(weight),
                    });
                }
            }
        }
        if solar_weight > 0 {
            self.edges.push(Edge {
                constraint: self.solar(),
                weight: solar_weight,
            });
        }
        start..self.edges.len()
    }

    pub fn edges_of(&self, range: Range<usize>) -> &[Edge] {
        self.edges.get(range).unwrap_or(&[])
    }

    /// Adds `amount` (fine deciamperes at the bay) through every edge in `range`.
    pub fn add_load(&mut self, range: Range<usize>, amount: i64) {
        for index in range {
            if let Some(edge) = self.edges.get(index) {
                if let Some(load) = self.load.get_mut(edge.constraint) {
                    *load += edge.weight * amount;
                }
            }
        }
    }

    /// How much more (fine deciamperes at the bay) fits through the edges in `range`, and
    /// the constraint that binds first; `None` when no edge constrains. With `hard_only`
    /// the solar edge is ignored.
    pub fn headroom(&self, range: Range<usize>, hard_only: bool) -> Option<(i64, usize)> {
        let solar = self.solar();
        self.edges_of(range)
            .iter()
            .filter(|edge| !(hard_only && edge.constraint == solar))
            .map(|edge| {
                let limit = self.limit.get(edge.constraint).copied().unwrap_or(0);
                let load = self.load.get(edge.constraint).copied().unwrap_or(0);
                ((limit - load).div_euclid(edge.weight), edge.constraint)
            })
            .min()
    }

    pub fn bottleneck(&self, constraint: usize) -> Bottleneck {
        let node = constraint / 3;
        let phase = Phase::from_index(constraint % 3).unwrap_or(Phase::L1);
        if constraint >= self.solar() {
            Bottleneck::Solar
        } else if node == 0 {
            Bottleneck::Site(phase)
        } else {
            Bottleneck::Circuit {
                index: node - 1,
                phase,
            }
        }
    }
}
