//! `[site]` and `[[site.circuits]]`: the grid connection, the fuse tree below it and how the
//! current is shared.

use std::time::Duration;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::amps;
use super::solar::{Measure, SolarConfig};
use crate::bay::Deciamps;
use crate::site::power::{PowerSettings, SurplusSettings};

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
    /// What the house draws at most per phase besides the cars (`[10, 10, 10]`): with a grid
    /// meter the cars get the fuse minus the measured house load, and this much is assumed
    /// while the meter is silent. Required once a `[[solar.sources]]` entry measures `grid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub house_reserve: Option<PhaseAmps>,
    /// Kept free under the fuse on top of the measured house load, for what changes between
    /// two readings; none = 2 A.
    #[serde(with = "amps::optional", skip_serializing_if = "Option::is_none")]
    pub house_margin: Option<Deciamps>,
    /// A higher house-load limit is taken only after the readings allowed it this long.
    #[serde(with = "humantime_serde")]
    pub house_raise_hold: Duration,
    /// A power source not heard from for this long is stale: the house reserve applies and
    /// the solar budget is gone.
    #[serde(with = "humantime_serde")]
    pub meter_timeout: Duration,
    /// The most bays the site takes on (configured ones included); a node heard beyond it
    /// is refused and counted (`too_many_bays`). Bounds memory and every per-bay table.
    pub max_bays: usize,
    pub surplus: SurplusConfig,
}

/// The range `site.max_bays` may take.
pub const MAX_BAYS: std::ops::RangeInclusive<usize> = 1..=100_000;

/// Three currents, one per phase, written in amps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhaseAmps(#[serde(with = "amps::three")] pub [Deciamps; 3]);

/// `[site.surplus]`: how `pv` and `minpv` bays follow the sun.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurplusConfig {
    /// Export kept back, never given to cars (W).
    pub reserve_w: i32,
    /// Below this home battery state of charge (%) the battery charges first; 100 = always.
    pub battery_priority_soc: f64,
    /// Above this state of charge (%) the battery may discharge into cars; none = never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_buffer_soc: Option<f64>,
    /// Rises of the surplus are followed with this time constant; falls at once.
    #[serde(with = "humantime_serde")]
    pub smoothing: Duration,
    /// A paused `pv` bay starts after the surplus sufficed for 6 A this long.
    #[serde(with = "humantime_serde")]
    pub enable_delay: Duration,
    /// A charging `pv` bay pauses after the surplus was short of 6 A this long.
    #[serde(with = "humantime_serde")]
    pub disable_delay: Duration,
    /// `pv` and `minpv` bays switch between one and three phases with the surplus (the bays
    /// must be wired so the node's contactors can drop L2 and L3).
    pub phase_switching: bool,
    /// The least time between two phase switches of a bay.
    #[serde(with = "humantime_serde")]
    pub phase_switch_interval: Duration,
}

impl Default for SurplusConfig {
    fn default() -> Self {
        Self {
            reserve_w: 0,
            battery_priority_soc: 100.0,
            battery_buffer_soc: None,
            smoothing: Duration::from_secs(20),
            enable_delay: Duration::from_secs(60),
            disable_delay: Duration::from_secs(180),
            phase_switching: false,
            phase_switch_interval: Duration::from_secs(300),
        }
    }
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
            house_reserve: None,
            house_margin: None,
            house_raise_hold: Duration::from_secs(15),
            meter_timeout: Duration::from_secs(30),
            max_bays: 10_000,
            surplus: SurplusConfig::default(),
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

    /// The core's power settings.
    #[must_use]
    pub fn power_settings(&self) -> PowerSettings {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let defaults = PowerSettings::default();
        PowerSettings {
            house_reserve: self.house_reserve.map(|r| r.0),
            house_margin: self.house_margin.unwrap_or(defaults.house_margin),
            house_raise_hold_ms: millis(self.house_raise_hold),
            reading_timeout_ms: millis(self.meter_timeout),
            surplus: SurplusSettings {
                reserve_w: self.surplus.reserve_w,
                battery_priority_soc: self.surplus.battery_priority_soc,
                battery_buffer_soc: self.surplus.battery_buffer_soc,
                rise_time_constant_ms: millis(self.surplus.smoothing),
            },
            pv_enable_delay_ms: millis(self.surplus.enable_delay),
            pv_disable_delay_ms: millis(self.surplus.disable_delay),
            phase_switching: self.surplus.phase_switching,
            phase_switch_interval_ms: millis(self.surplus.phase_switch_interval),
        }
    }

    /// `site.house_reserve` and `[site.surplus]` against the sources that feed them.
    pub(super) fn check_power(&self, solar: &SolarConfig, bad: &mut impl FnMut(String, String)) {
        let grid_meter = solar
            .sources
            .iter()
            .position(|s| s.measures.contains(&Measure::Grid));
        match (&self.house_reserve, grid_meter) {
            (None, Some(i)) => bad(
                "site.house_reserve".into(),
                format!(
                    "required because solar.sources[{i}] measures the grid: the cars get the fuse \
                     minus the measured house load, and when the meter goes silent they must \
                     fall back to the fuse minus what the house may draw at most per phase \
                     (e.g. house_reserve = [16, 16, 16])"
                ),
            ),
            (Some(reserve), _) => {
                for (i, (r, max)) in reserve.0.iter().zip(self.max_current).enumerate() {
                    if *r > max {
                        bad(
                            format!("site.house_reserve[{i}]"),
                            format!(
                                "{} A is above site.max_current ({} A)",
                                r.as_amps(),
                                max.as_amps()
                            ),
                        );
                    }
                }
            }
            (None, None) => {}
        }
        let soc = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
        if !soc(self.surplus.battery_priority_soc) {
            bad(
                "site.surplus.battery_priority_soc".into(),
                "must be a state of charge of 0-100 %".into(),
            );
        }
        if self.surplus.battery_buffer_soc.is_some_and(|v| !soc(v)) {
            bad(
                "site.surplus.battery_buffer_soc".into(),
                "must be a state of charge of 0-100 %".into(),
            );
        }
        if self.surplus.reserve_w < 0 {
            bad(
                "site.surplus.reserve_w".into(),
                "must not be negative".into(),
            );
        }
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

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const GRID_METER: &str =
        "[[solar.sources]]\nkind = \"shelly\"\nurl = \"http://10.0.0.9\"\nmeasures = [\"grid\"]\n";

    #[test]
    fn a_grid_meter_needs_the_house_reserve_and_says_why() {
        let Err(e) = Config::from_toml(GRID_METER) else {
            panic!("accepted a grid meter without site.house_reserve");
        };
        let text = e.to_string();
        assert!(text.contains("site.house_reserve"), "{text}");
        assert!(text.contains("measures the grid"), "{text}");
        let with = format!("[site]\nhouse_reserve = [16, 16, 16]\n{GRID_METER}");
        let config = Config::from_toml(&with).unwrap_or_else(|e| panic!("{e}"));
        let power = config.site.power_settings();
        assert_eq!(power.house_reserve.map(|r| r[0].get()), Some(160));
        assert_eq!(power.pv_enable_delay_ms, 60_000);
        assert_eq!(power.pv_disable_delay_ms, 180_000);
        let above = format!(
            "[site]\nmax_current = [20, 20, 20]\nhouse_reserve = [25, 16, 16]\n{GRID_METER}"
        );
        let text = Config::from_toml(&above)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(text.contains("site.house_reserve[0]"), "{text}");
    }

    #[test]
    fn max_bays_is_bounded_and_reaches_the_core() {
        let config =
            Config::from_toml("[site]\nmax_bays = 20000\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(crate::runtime::site_settings(&config).max_bays, 20_000);
        let default = Config::from_toml("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(crate::runtime::site_settings(&default).max_bays, 10_000);
        for bad in ["0", "100001"] {
            let text = Config::from_toml(&format!("[site]\nmax_bays = {bad}\n"))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(text.contains("site.max_bays"), "{bad}: {text}");
        }
    }
}
