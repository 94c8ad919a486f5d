//! `[site]` and `[[site.circuits]]`: the grid connection, the fuse tree below it and how the
//! current is shared.

use std::time::Duration;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::amps;
use crate::bay::Deciamps;

// The config speaks the allocator's words: `strategy = "fair"`, `mode = "minpv"`.
pub use crate::allocate::{ChargeMode, Strategy};

/// `[site]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    pub name: String,
    /// Nominal phase voltage, for power estimates.
    pub voltage: u16,
    /// The grid connection's fuse limit per phase; written in amps (`[32, 32, 32]`, decimals
    /// allowed to 0.1 A).
    #[serde(with = "amps::three")]
    pub max_current: [Deciamps; 3],
    pub strategy: Strategy,
    /// Mode of bays without their own `nodes.<dev>.mode`.
    pub default_mode: ChargeMode,
    /// With `fair` and too little current for everyone: how long a bay charges before it yields.
    #[serde(with = "humantime_serde")]
    pub rotation_period: Duration,
    /// A bay that started charging keeps its allocation at least this long.
    #[serde(with = "humantime_serde")]
    pub min_on: Duration,
    /// A bay that was paused stays paused at least this long.
    #[serde(with = "humantime_serde")]
    pub min_off: Duration,
    /// The site's IANA time zone (`"Europe/Berlin"`) for session and departure times that
    /// people read; none = the system's. Checked against the tz database built into the
    /// binary, so it works without `/usr/share/zoneinfo` (a distroless container).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The circuit of bays the config does not place (a swapped node with a new MAC); none =
    /// such a bay counts against every circuit until it is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_circuit: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub circuits: Vec<CircuitConfig>,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            name: "site".into(),
            voltage: 230,
            max_current: [Deciamps::from_amps(32); 3],
            strategy: Strategy::Fair,
            default_mode: ChargeMode::Now,
            rotation_period: Duration::from_secs(15 * 60),
            min_on: Duration::from_secs(120),
            min_off: Duration::from_secs(120),
            timezone: None,
            default_circuit: None,
            circuits: Vec::new(),
        }
    }
}

impl SiteConfig {
    /// The zone wall times are shown in: `timezone` (validated at load), else the system's,
    /// else UTC.
    #[must_use]
    pub fn time_zone(&self) -> TimeZone {
        self.timezone
            .as_deref()
            .and_then(|name| TimeZone::get(name).ok())
            .or_else(|| TimeZone::try_system().ok())
            .unwrap_or(TimeZone::UTC)
    }
}

/// `[[site.circuits]]`: a sub-distribution with its own fuse; circuits form a tree below the
/// site. Bays join a circuit with `nodes.<dev>.circuit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitConfig {
    pub id: String,
    /// The circuit this one hangs from; none = directly below the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(with = "amps::three")]
    pub max_current: [Deciamps; 3],
}
