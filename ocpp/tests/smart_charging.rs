//! Charging profiles: stacking, kinds, validity, units, the composite schedule, and the caps
//! the session hands out.

mod common;

use common::{reading, Sim, START_WALL_MS};
use ctrl22_ocpp::smart_charging::{composite_schedule, limit_at, Profiles, TxContext};
use ctrl22_ocpp::{ChargingLimit, Event, StopReason};
use rust_ocpp::v1_6::types::ChargingProfile;
use serde_json::{json, Value};

const HOUR_MS: u64 = 3_600_000;

fn profile(value: Value) -> ChargingProfile {
    serde_json::from_value(value).expect("valid profile")
}

fn absolute(id: i32, purpose: &str, level: u32, unit: &str, periods: Value) -> Value {
    let mut profile = json!({
        "chargingProfileId": id, "stackLevel": level, "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"startSchedule": "2026-12-01T00:00:00Z", "chargingRateUnit": unit}
    });
    profile["chargingSchedule"]["chargingSchedulePeriod"] = periods;
    profile
}

/// An Absolute profile with one period from the start.
fn flat(id: i32, purpose: &str, level: u32, unit: &str, limit: f64) -> Value {
    absolute(
        id,
        purpose,
        level,
        unit,
        json!([{"startPeriod": 0, "limit": limit}]),
    )
}

fn install(profiles: &mut Profiles, connector: u32, value: Value, tx: Option<i32>) {
    profiles
        .install(connector, profile(value), 2, tx, START_WALL_MS)
        .expect("accepted");
}

fn amps(profiles: &Profiles, connector: u32, at_ms: u64, tx: Option<TxContext>) -> Option<f64> {
    limit_at(profiles, connector, START_WALL_MS + at_ms, tx)
        .limit
        .and_then(|l| l.current_a)
}

#[test]
fn highest_stack_level_wins_and_falls_back_when_its_schedule_ends() {
    let mut profiles = Profiles::default();
    install(
        &mut profiles,
        0,
        flat(1, "TxDefaultProfile", 0, "A", 16.0),
        None,
    );
    let mut high = absolute(
        2,
        "TxDefaultProfile",
        3,
        "A",
        json!([{"startPeriod": 0, "limit": 10}, {"startPeriod": 3600, "limit": 6}]),
    );
    high["chargingSchedule"]["duration"] = json!(7200);
    install(&mut profiles, 0, high, None);
    assert_eq!(amps(&profiles, 1, 0, None), Some(10.0));
    assert_eq!(amps(&profiles, 1, HOUR_MS, None), Some(6.0));
    assert_eq!(
        amps(&profiles, 1, 2 * HOUR_MS, None),
        Some(16.0),
        "duration over: level 0"
    );
    let at = limit_at(&profiles, 1, START_WALL_MS + 10, None);
    assert_eq!(at.next_change_wall_ms, Some(START_WALL_MS + HOUR_MS));
}

#[test]
fn charge_point_max_caps_the_transaction_profile_and_units_stay_apart() {
    let mut profiles = Profiles::default();
    install(
        &mut profiles,
        0,
        flat(1, "ChargePointMaxProfile", 0, "W", 7400.0),
        None,
    );
    install(
        &mut profiles,
        1,
        absolute(
            2,
            "TxProfile",
            0,
            "A",
            json!([{"startPeriod": 0, "limit": 13.5, "numberPhases": 1}]),
        ),
        Some(9),
    );
    let tx = Some(TxContext {
        transaction_id: Some(9),
        start_wall_ms: START_WALL_MS,
    });
    let limit = limit_at(&profiles, 1, START_WALL_MS, tx)
        .limit
        .expect("capped");
    assert_eq!(
        limit,
        ChargingLimit {
            current_a: Some(13.5),
            power_w: Some(7400.0),
            number_phases: Some(1)
        }
    );
    // Without the transaction the TxProfile does not apply.
    let limit = limit_at(&profiles, 1, START_WALL_MS, None)
        .limit
        .expect("capped");
    assert_eq!(limit.current_a, None);
    // Connector 0 is the charge point's own cap.
    assert_eq!(
        limit_at(&profiles, 0, START_WALL_MS, tx)
            .limit
            .and_then(|l| l.power_w),
        Some(7400.0)
    );
}

#[test]
fn connector_default_replaces_the_charge_point_default() {
    let mut profiles = Profiles::default();
    install(
        &mut profiles,
        0,
        flat(1, "TxDefaultProfile", 0, "A", 16.0),
        None,
    );
    install(
        &mut profiles,
        2,
        flat(2, "TxDefaultProfile", 0, "A", 20.0),
        None,
    );
    assert_eq!(amps(&profiles, 1, 0, None), Some(16.0));
    assert_eq!(amps(&profiles, 2, 0, None), Some(20.0));
}

#[test]
fn recurring_daily_and_validity_period() {
    let mut profiles = Profiles::default();
    let mut daily = absolute(
        1,
        "TxDefaultProfile",
        0,
        "A",
        json!([{"startPeriod": 0, "limit": 6}, {"startPeriod": 7 * 3600, "limit": 32}]),
    );
    daily["chargingProfileKind"] = json!("Recurring");
    daily["recurrencyKind"] = json!("Daily");
    daily["validTo"] = json!("2026-12-03T00:00:00Z");
    install(&mut profiles, 0, daily, None);
    assert_eq!(amps(&profiles, 1, HOUR_MS, None), Some(6.0));
    assert_eq!(amps(&profiles, 1, 8 * HOUR_MS, None), Some(32.0));
    assert_eq!(
        amps(&profiles, 1, 25 * HOUR_MS, None),
        Some(6.0),
        "next day repeats"
    );
    assert_eq!(
        amps(&profiles, 1, 49 * HOUR_MS, None),
        None,
        "validTo passed"
    );
    let mut later = flat(2, "TxDefaultProfile", 1, "A", 8.0);
    later["validFrom"] = json!("2026-12-01T02:00:00Z");
    install(&mut profiles, 0, later, None);
    assert_eq!(
        amps(&profiles, 1, HOUR_MS, None),
        Some(6.0),
        "not valid yet"
    );
    assert_eq!(amps(&profiles, 1, 3 * HOUR_MS, None), Some(8.0));
}

#[test]
fn relative_schedule_runs_from_the_transaction_start() {
    let mut profiles = Profiles::default();
    let relative = json!({
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}, {"startPeriod": 600, "limit": 20}]}
    });
    install(&mut profiles, 0, relative, None);
    let tx = Some(TxContext {
        transaction_id: Some(1),
        start_wall_ms: START_WALL_MS + HOUR_MS,
    });
    assert_eq!(amps(&profiles, 1, HOUR_MS + 599_000, tx), Some(10.0));
    assert_eq!(amps(&profiles, 1, HOUR_MS + 600_000, tx), Some(20.0));
    // Without a transaction: the first period holds.
    assert_eq!(amps(&profiles, 1, 5 * HOUR_MS, None), Some(10.0));
}

#[test]
fn invalid_profiles_are_rejected() {
    let mut profiles = Profiles::default();
    let cases = [
        (1, flat(1, "ChargePointMaxProfile", 0, "A", 6.0), None),
        (0, flat(2, "TxProfile", 0, "A", 6.0), Some(1)),
        (1, flat(3, "TxProfile", 0, "A", 6.0), None),
        (1, flat(4, "TxDefaultProfile", 99, "A", 6.0), None),
        (
            1,
            absolute(
                5,
                "TxDefaultProfile",
                0,
                "A",
                json!([{"startPeriod": 60, "limit": 6}]),
            ),
            None,
        ),
        (1, flat(6, "TxDefaultProfile", 0, "A", -6.0), None),
        (3, flat(7, "TxDefaultProfile", 0, "A", 6.0), None),
    ];
    for (connector, value, tx) in cases {
        let id = value["chargingProfileId"].clone();
        assert!(
            profiles
                .install(connector, profile(value), 2, tx, START_WALL_MS)
                .is_err(),
            "profile {id}"
        );
    }
    assert!(profiles.all().is_empty());
}

#[test]
fn composite_schedule_merges_periods_in_the_requested_unit() {
    let mut profiles = Profiles::default();
    install(
        &mut profiles,
        0,
        absolute(
            1,
            "ChargePointMaxProfile",
            0,
            "W",
            json!([{"startPeriod": 0, "limit": 11040}, {"startPeriod": 1800, "limit": 4140}]),
        ),
        None,
    );
    install(
        &mut profiles,
        0,
        absolute(
            2,
            "TxDefaultProfile",
            0,
            "A",
            json!([{"startPeriod": 0, "limit": 10}, {"startPeriod": 900, "limit": 10}, {"startPeriod": 2700, "limit": 32}]),
        ),
        None,
    );
    let schedule = composite_schedule(&profiles, &common::composite_query(3600));
    let periods: Vec<(i32, String)> = schedule
        .charging_schedule_period
        .iter()
        .map(|p| (p.start_period, p.limit.to_string()))
        .collect();
    // 0-1800: min(16 A from 11040 W, 10 A); 1800-2700: 6 A from 4140 W; 2700-: still 6 A.
    assert_eq!(periods, [(0, "10".to_owned()), (1800, "6".to_owned())]);
    assert!(schedule.start_schedule.is_none());
    assert_eq!(schedule.duration, Some(3600));
}

#[test]
fn the_session_hands_out_caps_and_answers_composite_schedules() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.take_events();
    let max = json!({
        "chargingProfileId": 10, "stackLevel": 8, "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 12.0}]}
    });
    let answer = sim.call(
        "SetChargingProfile",
        json!({"connectorId": 0, "csChargingProfiles": max}),
    );
    assert_eq!(answer[2]["status"], "Accepted");
    let events = sim.take_events();
    let twelve = Some(ChargingLimit {
        current_a: Some(12.0),
        power_w: None,
        number_phases: None,
    });
    assert!(
        events.contains(&Event::ChargingLimitChanged {
            connector_id: 0,
            limit: twelve
        }),
        "{events:?}"
    );
    assert!(events.contains(&Event::ChargingLimitChanged {
        connector_id: 1,
        limit: twelve
    }));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::ChargingProfilesChanged(p) if p.len() == 1)));
    // A TxProfile needs a transaction.
    let tx_profile = json!({
        "chargingProfileId": 11, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 2300}]}
    });
    let answer = sim.call(
        "SetChargingProfile",
        json!({"connectorId": 1, "csChargingProfiles": tx_profile}),
    );
    assert_eq!(answer[2]["status"], "Rejected");
    sim.start_session(1, "T", reading(0, 0.0));
    sim.answer_all();
    let answer = sim.call(
        "SetChargingProfile",
        json!({"connectorId": 1, "csChargingProfiles": tx_profile}),
    );
    assert_eq!(answer[2]["status"], "Accepted");
    let composite = sim.call(
        "GetCompositeSchedule",
        json!({"connectorId": 1, "duration": 600, "chargingRateUnit": "W"}),
    );
    assert_eq!(composite[2]["status"], "Accepted");
    assert!(composite[2]["scheduleStart"].is_string());
    assert_eq!(composite[2]["chargingSchedule"]["chargingRateUnit"], "W");
    // min(12 A * 230 V * 3, 2300 W), a JSON number.
    assert_eq!(
        composite[2]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
        json!(2300.0)
    );
    sim.take_events();
    // The transaction ends: its TxProfile goes, the cap goes back to 12 A.
    sim.stop_session(1, reading(10, 0.0), StopReason::Local);
    sim.answer_all();
    let events = sim.take_events();
    assert!(
        events.contains(&Event::ChargingLimitChanged {
            connector_id: 1,
            limit: twelve
        }),
        "{events:?}"
    );
    let answer = sim.call("ClearChargingProfile", json!({"id": 10}));
    assert_eq!(answer[2]["status"], "Accepted");
    assert!(sim.take_events().contains(&Event::ChargingLimitChanged {
        connector_id: 1,
        limit: None
    }));
    let answer = sim.call("ClearChargingProfile", json!({"id": 10}));
    assert_eq!(answer[2]["status"], "Unknown");
    let answer = sim.call(
        "GetCompositeSchedule",
        json!({"connectorId": 5, "duration": 600}),
    );
    assert_eq!(answer[2]["status"], "Rejected");
}

#[test]
fn a_scheduled_change_fires_at_its_time() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(86_400);
    let profile = absolute(
        1,
        "TxDefaultProfile",
        0,
        "A",
        json!([{"startPeriod": 0, "limit": 16}, {"startPeriod": 1800, "limit": 8}]),
    );
    sim.call(
        "SetChargingProfile",
        json!({"connectorId": 1, "csChargingProfiles": profile}),
    );
    sim.take_events();
    sim.advance(1_799_000);
    assert!(!sim
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::ChargingLimitChanged { .. })));
    sim.advance(1_000);
    let eight = Some(ChargingLimit {
        current_a: Some(8.0),
        power_w: None,
        number_phases: None,
    });
    assert!(sim.take_events().contains(&Event::ChargingLimitChanged {
        connector_id: 1,
        limit: eight
    }));
}
