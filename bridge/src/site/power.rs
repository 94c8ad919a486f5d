//! What power sources (inverters, meters, external limit signals) tell the core.
//!
//! Adapters in `crate::solar` turn device answers into these, already validated and
//! bounded (finite, plausible magnitudes, signs normalised); the core only ever lowers
//! what bays get because of them.

use ctrl22_node::Deciamps;

/// Which `[[solar.sources]]` entry a reading came from (its index in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u16);

/// One reading of one source. `None` is "this source does not measure that".
/// Signs: grid positive when importing, battery positive when discharging, PV >= 0.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PowerReading {
    pub grid_w: Option<i64>,
    /// Per-phase grid current (A, import positive), L1..L3.
    pub grid_phase_a: Option<[f64; 3]>,
    /// Per-phase grid active power (W, import positive), L1..L3.
    pub grid_phase_w: Option<[i64; 3]>,
    pub pv_w: Option<i64>,
    pub battery_w: Option<i64>,
    /// Home battery state of charge, 0..=100 %.
    pub battery_soc_pct: Option<f64>,
}

/// Where an external limit applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitScope {
    Site,
    Circuit(String),
}

/// What an external party (grid operator's dimming signal, energy manager) allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExternalLimit {
    /// Total active power for the cars in the scope.
    Watts(u32),
    /// Current per phase.
    Amps([Deciamps; 3]),
}
