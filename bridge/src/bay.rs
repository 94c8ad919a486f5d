//! Identity of a bay and the setpoint the bridge gives it.

use core::fmt;

pub use ctrl22_node::{Deciamps, Phase, PhaseSet};

/// A bay is known by its node's MAC address in topic form (`d8a01d55a710`), the `<dev>` of
/// every topic and config section.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct BayId(pub String);

impl fmt::Display for BayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a bay is allowed to draw: a current per phase and the phases it may use, in the
/// bay's own phase numbering (before phase rotation maps it onto the site's phases).
/// `current == 0` or an empty phase set means paused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Setpoint {
    pub current: Deciamps,
    pub phases: PhaseSet,
}

impl Setpoint {
    pub const PAUSED: Self = Self {
        current: Deciamps::ZERO,
        phases: PhaseSet::NONE,
    };

    #[must_use]
    pub fn is_paused(self) -> bool {
        self.current == Deciamps::ZERO || self.phases.is_empty()
    }
}
