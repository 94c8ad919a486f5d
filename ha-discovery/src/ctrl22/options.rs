//! The words and bounds the entities share with the bridge: option lists of the selects and
//! the enum sensor, and the ranges of numbers that are not per-installation ceilings. The
//! bridge's own enums must say the same (`bridge/tests/core/ha_vocabulary.rs` fails otherwise).

/// Values of the bay `state` field.
pub const BAY_STATES: &[&str] = &[
    "available",
    "preparing",
    "charging",
    "suspended_ev",
    "suspended_evse",
    "finishing",
    "faulted",
    "unavailable",
];

/// Values of the bay `mode` field and the charge mode select.
pub const CHARGE_MODES: &[&str] = &["off", "now", "minpv", "pv", "schedule"];

/// Values of the site `strategy` field and the strategy select.
pub const STRATEGIES: &[&str] = &["fair", "fcfs", "priority", "schedule"];

/// `HH:MM` (24 h) or empty to clear; Home Assistant's frontend enforces it on input.
pub const DEPARTURE_TIME_PATTERN: &str = "^$|^([01][0-9]|2[0-3]):[0-5][0-9]$";

/// Upper bound of the target energy number, as the site core bounds the setting (0-200 kWh):
/// above any car battery sold today.
pub const TARGET_ENERGY_MAX_KWH: f64 = 200.0;
/// A bay never gets less than this when it charges (IEC 61851): the lower bound of the
/// bay's max current number.
pub const MIN_CHARGE_CURRENT_A: f64 = 6.0;
