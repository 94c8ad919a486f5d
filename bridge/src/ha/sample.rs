//! Snapshots of a plausible site, for the tests of this module and the bench of its
//! per-cycle work (`benches/ha_cycle.rs`): not used by the bridge itself, so hidden from its
//! documentation (a cfg feature would have to be switched on for every bench run).
#![doc(hidden)]

use crate::allocate::ChargeMode;
use crate::bay::BayId;
use crate::site::record::BaySettings;
use crate::site::snapshot::BaySnapshot;
use crate::site::BayStatus;

/// A bay charging at 16 A on three phases, as a snapshot names it.
#[must_use]
pub fn charging_bay(dev: &str) -> BaySnapshot {
    BaySnapshot {
        dev: dev.to_owned(),
        mac: String::new(),
        name: format!("Bay {dev}"),
        online: true,
        last_heard_ms: Some(0),
        state: Some("C3".to_owned()),
        ccss: None,
        status: BayStatus::Charging,
        plugged: true,
        charging: true,
        problem: false,
        cable_a: Some(32.0),
        offered_a: 16.0,
        active_phases: 123,
        current_a: [16.0; 3],
        power_w: 11_040,
        session_energy_wh: 0.0,
        total_energy_wh: 0.0,
        session_started_ms: None,
        allocated_a: 16.0,
        allocated_phases: 123,
        confirmed_a: Some(16.0),
        fail_safe_a: 6.0,
        reason: None,
        mode: ChargeMode::Now,
        ceiling_a: 32.0,
        problems: Vec::new(),
        reserved_a: [0.0; 3],
        settings: BaySettings::new(&BayId(dev.to_owned())),
        button_request: None,
        no_watchdog: false,
        rssi_dbm: None,
        mesh_layer: None,
        mesh_parent: None,
        mesh_latency_ms: None,
        firmware: Some("3.5".to_owned()),
        board: None,
        avr_firmware: None,
        avr_latest: None,
        firmware_job: None,
        esp32_latest: None,
        esp32_job: None,
    }
}
