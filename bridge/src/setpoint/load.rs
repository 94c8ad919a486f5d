//! The vocabulary of load: current per site phase, how a bay's phases map onto the site's,
//! and the groups (site, circuits) whose sums must stay within their limits.

use ctrl22_node::{Deciamps, Phase, PhaseSet};

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

    pub(super) fn plus(self, other: Self) -> Self {
        Self(Phase::ALL.map(|p| self.on(p).saturating_add(other.on(p))))
    }

    pub(super) fn minus(self, other: Self) -> Self {
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
    pub(super) fn load_of(&self, per_bay_phase: [Deciamps; 3]) -> PhaseLoad {
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

pub(super) fn max_each(a: [Deciamps; 3], b: [Deciamps; 3]) -> [Deciamps; 3] {
    Phase::ALL.map(|p| a[p.index()].max(b[p.index()]))
}
