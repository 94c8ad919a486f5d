//! Per-message cost of a charge-point session and of the composite schedule.
//! Run: `nice -n 10 cargo bench -p ctrl22-ocpp --bench session`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ctrl22_ocpp::smart_charging::{composite_schedule, Profiles, ScheduleQuery};
use ctrl22_ocpp::{ChargePoint, Config, ConnectorEvent, ConnectorStatus, Now, Restored};
use rust_ocpp::v1_6::types::{ChargingProfile, ChargingRateUnitType};
use serde_json::{json, Value};

fn answer_open_call(cp: &mut ChargePoint, now: Now) {
    while let Some(text) = cp.poll_transmit() {
        let frame: Value = serde_json::from_str(&text).unwrap_or_default();
        if frame[0] == 2 {
            let id = frame[1].as_str().unwrap_or_default();
            let answer = match frame[2].as_str() {
                Some("BootNotification") => {
                    json!({"status": "Accepted", "currentTime": "2026-12-01T00:00:00Z", "interval": 3600})
                }
                _ => json!({}),
            };
            cp.handle_frame(now, &json!([3, id, answer]).to_string());
        }
    }
    while cp.poll_event().is_some() {}
}

fn status_round_trip(c: &mut Criterion) {
    let mut now = Now {
        mono_ms: 1,
        wall_ms: 1_796_083_200_000,
    };
    let mut cp = ChargePoint::new(Config::new("CTRL22", "bay", 1), Restored::default());
    cp.handle_connected(now);
    for _ in 0..4 {
        answer_open_call(&mut cp, now);
    }
    let statuses = [ConnectorStatus::Preparing, ConnectorStatus::Available];
    let mut n = 0usize;
    c.bench_function("status change -> StatusNotification -> CALLRESULT", |b| {
        b.iter(|| {
            n += 1;
            now = now.plus_ms(10);
            let status = statuses[n % 2];
            cp.on_connector_event(
                now,
                1,
                ConnectorEvent::StatusChanged {
                    status,
                    error: None,
                },
            );
            answer_open_call(&mut cp, now);
        });
    });
    c.bench_function("GetConfiguration (all keys) answered", |b| {
        let frame = json!([2, "g1", "GetConfiguration", {}]).to_string();
        b.iter(|| {
            cp.handle_frame(now, black_box(&frame));
            black_box(cp.poll_transmit());
        });
    });
}

fn composite(c: &mut Criterion) {
    let mut profiles = Profiles::default();
    for (id, level) in (1..=8).zip(0..) {
        let periods: Vec<Value> = (0..12)
            .map(|p| json!({"startPeriod": p * 900, "limit": 6.0 + f64::from(p + level)}))
            .collect();
        let profile: ChargingProfile = serde_json::from_value(json!({
            "chargingProfileId": id, "stackLevel": level, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {"startSchedule": "2026-12-01T00:00:00Z", "chargingRateUnit": "A", "chargingSchedulePeriod": periods}
        }))
        .unwrap_or_default();
        let _ = profiles.install(0, profile, 1, None, 1_796_083_200_000);
    }
    let query = ScheduleQuery {
        connector_id: 1,
        from_wall_ms: 1_796_083_200_000,
        duration_s: 86_400,
        tx: None,
        unit: ChargingRateUnitType::A,
        volts_per_phase: 230.0,
        unlimited: 32.0,
    };
    c.bench_function("composite schedule, 8 profiles x 12 periods, 24 h", |b| {
        b.iter(|| black_box(composite_schedule(&profiles, black_box(&query))));
    });
}

criterion_group!(benches, status_round_trip, composite);
criterion_main!(benches);
