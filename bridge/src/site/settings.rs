//! Site-wide settings of the core and the runtime changes an operator can make.
//!
//! Every change (Home Assistant, HTTP API, dashboard) goes through [`SettingChange`], is
//! validated here, and only then applied: a nonsense command changes nothing.

use std::collections::BTreeMap;

use ctrl22_node::Deciamps;
use serde::{Deserialize, Serialize};

use super::record::{BaySettings, ButtonRequest, Departure};
use crate::allocate::{ChargeMode, Circuit, Strategy};
use crate::bay::BayId;

/// The most energy a bay can be asked to deliver by departure (above any car battery sold
/// today); Home Assistant's target energy number ends here too.
pub const TARGET_ENERGY_MAX_KWH: f64 = 200.0;

/// Everything the site core needs to know from configuration, in the core's own units.
#[derive(Clone, Debug)]
pub struct SiteSettings {
    pub name: String,
    pub voltage: u16,
    pub limits: [Deciamps; 3],
    pub circuits: Vec<Circuit>,
    pub strategy: Strategy,
    pub default_mode: ChargeMode,
    pub rotation_period_ms: u64,
    pub min_on_ms: u64,
    pub min_off_ms: u64,
    /// A bay not heard from for this long is offline (its reservation stays).
    pub heartbeat_timeout_ms: u64,
    /// How often `status`/`system` are asked of every bay.
    pub poll_interval_ms: u64,
    /// Watchdog period written to every node (`wdtsec`).
    pub wdtsec: u16,
    /// Setpoints are re-sent this often to feed the node watchdogs.
    pub setpoint_refresh_ms: u64,
    /// How long a setpoint write waits for its reply before it counts as lost (and maybe
    /// applied). Must cover the mesh round trip plus any queue in the link.
    pub ack_timeout_ms: u64,
    /// The site's time zone (`site.timezone`): departure times are local.
    pub time_zone: jiff::tz::TimeZone,
    /// Where bays the configuration does not name hang (`site.default_circuit`); without
    /// it they count against every circuit.
    pub default_circuit: Option<String>,
    /// Bays beyond this many are refused (a flood of unknown MACs cannot exhaust memory).
    pub max_bays: usize,
    /// Configured bays (`[nodes.<dev>]`) and their circuit.
    pub nodes: BTreeMap<BayId, (BaySettings, Option<String>)>,
    /// Grid meter, surplus and `pv` timing.
    pub power: super::power::PowerSettings,
    /// The bridge presses start for a plugged car by itself; off when someone else (an OCPP
    /// backend) authorises sessions and starts them through the bay's button.
    pub autostart: bool,
}

impl Default for SiteSettings {
    fn default() -> Self {
        Self {
            name: "site".to_owned(),
            voltage: 230,
            limits: [Deciamps::from_amps(32); 3],
            circuits: Vec::new(),
            strategy: Strategy::Fair,
            default_mode: ChargeMode::Now,
            rotation_period_ms: 15 * 60_000,
            min_on_ms: 2 * 60_000,
            min_off_ms: 2 * 60_000,
            heartbeat_timeout_ms: 30_000,
            poll_interval_ms: 5 * 60_000,
            wdtsec: 60,
            setpoint_refresh_ms: 20_000,
            ack_timeout_ms: 3_000,
            time_zone: jiff::tz::TimeZone::UTC,
            default_circuit: None,
            max_bays: 10_000,
            nodes: BTreeMap::new(),
            power: super::power::PowerSettings::default(),
            autostart: true,
        }
    }
}

/// One change an operator asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "field", content = "value")]
pub enum SettingChange {
    Strategy(Strategy),
    DefaultMode(ChargeMode),
    /// The site connection's limit of one phase (1-3), in amperes.
    SiteLimit {
        phase: u8,
        amps: f64,
    },
    BayName {
        bay: BayId,
        name: String,
    },
    BayMode {
        bay: BayId,
        mode: ChargeMode,
    },
    /// The bay's own maximum, in amperes (6-80).
    BayMaxCurrent {
        bay: BayId,
        amps: f64,
    },
    BayPriority {
        bay: BayId,
        priority: i32,
    },
    BayEnabled {
        bay: BayId,
        enabled: bool,
    },
    BayDeparture {
        bay: BayId,
        departure: Option<Departure>,
    },
    /// Energy to deliver before departure, in kWh (0 to [`TARGET_ENERGY_MAX_KWH`]).
    BayTargetEnergy {
        bay: BayId,
        kwh: f64,
    },
    BayButton {
        bay: BayId,
        press: ButtonRequest,
    },
    /// Give back the reservation of an offline bay (the operator knows it draws nothing).
    BayRelease {
        bay: BayId,
    },
    /// Forget a bay entirely (it is gone from the site).
    BayForget {
        bay: BayId,
    },
}

impl SettingChange {
    /// The bay the change is about, if any.
    #[must_use]
    pub fn bay(&self) -> Option<&BayId> {
        match self {
            Self::Strategy(_) | Self::DefaultMode(_) | Self::SiteLimit { .. } => None,
            Self::BayName { bay, .. }
            | Self::BayMode { bay, .. }
            | Self::BayMaxCurrent { bay, .. }
            | Self::BayPriority { bay, .. }
            | Self::BayEnabled { bay, .. }
            | Self::BayDeparture { bay, .. }
            | Self::BayTargetEnergy { bay, .. }
            | Self::BayButton { bay, .. }
            | Self::BayRelease { bay }
            | Self::BayForget { bay } => Some(bay),
        }
    }
}

/// Why a change was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SettingError {
    #[error("no bay {0}")]
    UnknownBay(BayId),
    #[error("{field}: {value} is out of range ({range})")]
    OutOfRange {
        field: &'static str,
        value: String,
        range: &'static str,
    },
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    /// Above what the configuration file allows: the ceiling changes only there.
    #[error("{field}: {value} A is above the configured ceiling of {ceiling} A (only the configuration file can raise it)")]
    AboveCeiling {
        field: &'static str,
        value: String,
        ceiling: String,
    },
    /// The site task has stopped (the process is shutting down): HTTP 503, not 400.
    #[error("the site controller is not running")]
    Unavailable,
}

/// Amperes from an operator to 0.1 A, at least `min` and at most the configured `ceiling`.
///
/// # Errors
/// [`SettingError::OutOfRange`] for NaN, infinities and values below `min`;
/// [`SettingError::AboveCeiling`] above the ceiling, naming it.
pub fn amps_up_to_ceiling(
    field: &'static str,
    amps: f64,
    min: Deciamps,
    ceiling: Deciamps,
) -> Result<Deciamps, SettingError> {
    let out_of_range = || SettingError::OutOfRange {
        field,
        value: amps.to_string(),
        range: "a number of amperes",
    };
    if !amps.is_finite() {
        return Err(out_of_range());
    }
    // Compared before converting: 1e9 A is above the ceiling, not "not a number".
    if amps * 10.0 >= f64::from(ceiling.get()) + 0.5 {
        return Err(SettingError::AboveCeiling {
            field,
            value: amps.to_string(),
            ceiling: ceiling.as_amps().to_string(),
        });
    }
    let value = Deciamps::try_from_amps(amps).ok_or_else(out_of_range)?;
    if value < min {
        return Err(SettingError::OutOfRange {
            field,
            value: amps.to_string(),
            range: if min == Deciamps::MIN_CHARGE {
                "at least 6 A"
            } else {
                "at least 0 A"
            },
        });
    }
    Ok(value)
}
