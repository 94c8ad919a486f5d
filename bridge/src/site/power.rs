//! What power sources (inverters, meters, external limit signals) tell the core.
//!
//! Adapters in `crate::solar` turn device answers into these, already validated and
//! bounded (finite, plausible magnitudes, signs normalised); the core only ever lowers
//! what bays get because of them.

use ctrl22_node::Deciamps;

/// Which `[[solar.sources]]` entry a reading came from (its index in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u16);

impl SourceId {
    /// The HTTP API's external limits (`PUT .../external_limit`), beyond any configured index.
    pub const HTTP_API: Self = Self(u16::MAX);
}

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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
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

/// How the core uses power readings and outside limit signals (from `[site]`).
#[derive(Clone, Debug, PartialEq)]
pub struct PowerSettings {
    /// What the house may draw per phase when the grid meter is silent (`site.house_reserve`);
    /// `None` without a grid meter: no house-load limit then.
    pub house_reserve: Option<[Deciamps; 3]>,
    /// Kept free under the fuse on top of the measured house load, for what changes between
    /// two readings (`site.house_margin`).
    pub house_margin: Deciamps,
    /// A higher house-load limit is taken only after the readings allowed it this long
    /// (`site.house_raise_hold`); lower ones apply at once.
    pub house_raise_hold_ms: u64,
    /// A source not heard from for this long is stale (`site.meter_timeout`).
    pub reading_timeout_ms: u64,
    pub surplus: SurplusSettings,
    /// A paused `pv` bay starts only after the surplus sufficed this long.
    pub pv_enable_delay_ms: u64,
    /// A charging `pv` bay is paused only after the surplus has been short this long.
    pub pv_disable_delay_ms: u64,
    /// `pv` and `minpv` bays switch between one and three phases with the surplus
    /// (`site.surplus.phase_switching`).
    pub phase_switching: bool,
    /// The least time between two phase switches of a bay.
    pub phase_switch_interval_ms: u64,
}

impl Default for PowerSettings {
    fn default() -> Self {
        Self {
            house_reserve: None,
            house_margin: Deciamps(20),
            house_raise_hold_ms: 15_000,
            reading_timeout_ms: 30_000,
            surplus: SurplusSettings::default(),
            pv_enable_delay_ms: 60_000,
            pv_disable_delay_ms: 180_000,
            phase_switching: false,
            phase_switch_interval_ms: 300_000,
        }
    }
}

/// How the solar budget is derived from a reading (`[site.surplus]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SurplusSettings {
    /// Export kept back, never given to cars (W).
    pub reserve_w: i32,
    /// Below this home battery state of charge (%), the battery charges first: what it takes
    /// is not surplus for cars. 100 (the default): the battery always comes first.
    pub battery_priority_soc: f64,
    /// Above this state of charge (%), the battery may discharge into cars; `None`: never.
    pub battery_buffer_soc: Option<f64>,
    /// Rises of the budget follow with this time constant (a passing gap in the clouds is
    /// not chased); falls are taken at once.
    pub rise_time_constant_ms: u64,
}

impl Default for SurplusSettings {
    fn default() -> Self {
        Self {
            reserve_w: 0,
            battery_priority_soc: 100.0,
            battery_buffer_soc: None,
            rise_time_constant_ms: 20_000,
        }
    }
}
