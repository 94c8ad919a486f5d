//! A read-only picture of the site and every bay, published after each change for the
//! adapters that show state (Home Assistant, HTTP API, dashboard, metrics). It is plain data:
//! readers never reach into the site core.

use std::collections::BTreeMap;

use serde::Serialize;

use super::limits::LimitSource;
use super::record::{BaySettings, ButtonRequest};
use super::status::BayStatus;
use crate::allocate::{ChargeMode, Strategy};

/// Amperes as a number with one decimal, for people and JSON (the core counts in 0.1 A).
pub type Amps = f64;

#[derive(Clone, Debug, Default, Serialize)]
pub struct SiteSnapshot {
    pub name: String,
    /// Unix ms of this picture.
    pub at_ms: u64,
    pub voltage: u16,
    pub strategy: Strategy,
    pub default_mode: ChargeMode,
    /// The limit in force per phase: the configured ceiling or a lower dynamic limit.
    pub limit_a: [Amps; 3],
    /// The configured ceiling per phase (`site.max_current`): nothing at runtime goes above.
    pub ceiling_a: [Amps; 3],
    /// Which source sets the limit in force on each phase.
    pub limit_binding: [LimitSource; 3],
    /// Every source of a limit with what it asks for, the configured ceiling first.
    pub limit_sources: Vec<LimitSnapshot>,
    /// What all bays may draw per site phase right now, reservations of offline bays and
    /// setpoints still being changed included: always <= `limit_a`.
    pub reserved_a: [Amps; 3],
    /// What the bays' current transformers measure, per site phase.
    pub measured_a: [Amps; 3],
    pub ev_power_w: i64,
    pub grid_power_w: Option<i64>,
    pub pv_power_w: Option<i64>,
    pub battery_power_w: Option<i64>,
    /// Power available to solar charging (export plus what solar bays already draw).
    pub surplus_w: Option<i64>,
    /// A power source answered within the timeout.
    pub solar_ok: bool,
    /// Grid per phase, house load, budget, external limits and source health.
    pub power: PowerSnapshot,
    /// Sum of all bays' lifetime energy.
    pub energy_total_wh: f64,
    pub mesh_connected: bool,
    pub circuits: Vec<CircuitSnapshot>,
    pub bays: Vec<BaySnapshot>,
    /// Rejected input by kind (malformed mesh JSON, unknown nodes, bad commands...).
    pub rejected: BTreeMap<String, u64>,
    /// Last allocation's cycle time in microseconds.
    pub cycle_us: u64,
    /// Messages, setpoint writes and allocations counted so far (for `/metrics`).
    #[serde(skip)]
    pub traffic: super::traffic::Traffic,
}

/// One source of a site limit and what it asks for.
#[derive(Clone, Debug, Serialize)]
pub struct LimitSnapshot {
    pub source: LimitSource,
    pub limit_a: [Amps; 3],
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CircuitSnapshot {
    pub id: String,
    pub parent: Option<String>,
    /// The limit in force per phase (at or below the configured `max_current`).
    pub limit_a: [Amps; 3],
    pub reserved_a: [Amps; 3],
}

#[derive(Clone, Debug, Serialize)]
pub struct BaySnapshot {
    /// MAC in topic form, the bay's id everywhere.
    pub dev: String,
    pub mac: String,
    pub name: String,
    pub online: bool,
    pub last_heard_ms: Option<u64>,
    /// `ccss` state name (`C3`), `None` before the first heartbeat.
    pub state: Option<String>,
    pub ccss: Option<u8>,
    /// The state in OCPP's words.
    pub status: BayStatus,
    pub plugged: bool,
    pub charging: bool,
    pub problem: bool,
    /// What is wrong, a word each (`controller_error`, `no_watchdog`, `unplaced`).
    pub problems: Vec<&'static str>,
    /// Cable capacity from the proximity pilot, `None` without cable.
    pub cable_a: Option<Amps>,
    /// What the node signals to the EV (amaxcur).
    pub offered_a: Amps,
    /// Phases with closed contactors, digit set (`123`).
    pub active_phases: i16,
    pub current_a: [Amps; 3],
    pub power_w: i64,
    pub session_energy_wh: f64,
    pub total_energy_wh: f64,
    pub session_started_ms: Option<u64>,
    /// The allocation's target for this bay and the phases (digit set).
    pub allocated_a: Amps,
    pub allocated_phases: i16,
    /// What the node has confirmed.
    pub confirmed_a: Option<Amps>,
    pub fail_safe_a: Amps,
    /// What the bay holds in the site's budget per site phase (what its node may draw).
    pub reserved_a: [Amps; 3],
    /// Why the bay got what it got (limited by a circuit, paused for rotation...).
    pub reason: Option<String>,
    pub mode: ChargeMode,
    /// The configured ceiling of the bay's own maximum (`nodes.<dev>.max_current`).
    pub ceiling_a: Amps,
    pub settings: BaySettings,
    pub button_request: Option<ButtonRequest>,
    /// Node runs firmware without the setpoint watchdog (`fsafecur` refused).
    pub no_watchdog: bool,
    pub rssi_dbm: Option<i16>,
    pub mesh_layer: Option<u8>,
    pub mesh_parent: Option<String>,
    pub mesh_latency_ms: Option<u32>,
    pub firmware: Option<String>,
    pub board: Option<String>,
    pub avr_firmware: Option<i16>,
    /// The newest controller image of the firmware folder for the bay's board.
    pub avr_latest: Option<LatestAvr>,
    /// The bay's running firmware job, else its latest finished or refused one.
    pub firmware_job: Option<crate::ota::jobs::JobView>,
    /// The newest ESP32 image of the firmware folder for the bay's board.
    pub esp32_latest: Option<LatestEsp32>,
    /// The latest ESP32 upgrade the bay took part in.
    pub esp32_job: Option<crate::ota::esp32::Esp32BayJob>,
}

/// An ESP32 image of the firmware folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LatestEsp32 {
    pub file: String,
    /// `M.m`, as `system` reports it.
    pub version: String,
}

/// A controller image of the firmware folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LatestAvr {
    pub file: String,
    /// The controller's `ver` (15 = v1.5).
    pub version: i16,
}

/// The site's energy picture: what the meters say, what the house takes, what limits the
/// outside sets and how the sources fare.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PowerSnapshot {
    /// Grid current per phase (A, import positive) from the grid meter.
    pub grid_phase_a: Option<[Amps; 3]>,
    pub battery_soc_pct: Option<f64>,
    /// The budget for `pv`/`minpv` bays (W); `None` without a fresh grid reading.
    pub budget_w: Option<i64>,
    /// The house's own load per phase (A) net of PV on that phase (what the grid meter
    /// sees besides the cars, never below 0); `None` without a grid meter or while it is
    /// stale.
    pub house_load_a: Option<[Amps; 3]>,
    /// A grid meter is configured (`site.house_reserve` set).
    pub house_load_managed: bool,
    /// The grid meter is stale and `site.house_reserve` is assumed.
    pub house_fallback: bool,
    /// What the house-load limit leaves the cars per phase (A).
    pub house_limit_a: Option<[Amps; 3]>,
    /// External limits in force.
    pub external: Vec<ExternalSnapshot>,
    /// Every power source and how it fares.
    pub sources: Vec<SourceSnapshot>,
}

/// One external limit signal in force.
#[derive(Clone, Debug, Serialize)]
pub struct ExternalSnapshot {
    pub source: u16,
    /// `site` or the circuit's id.
    pub scope: String,
    pub watts: Option<u32>,
    pub limit_a: Option<[Amps; 3]>,
}

/// One power source's health.
#[derive(Clone, Debug, Serialize)]
pub struct SourceSnapshot {
    /// Its index in `[[solar.sources]]`.
    pub source: u16,
    pub healthy: bool,
    /// Age of the last good reading, ms; `None` if there never was one.
    pub age_ms: Option<u64>,
    pub readings: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}
