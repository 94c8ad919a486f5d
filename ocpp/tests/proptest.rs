//! Properties: the cap never exceeds the profiles that apply; random frames never panic and
//! every readable CALL is answered.

mod common;

use common::{Sim, START_WALL_MS};
use ctrl22_ocpp::smart_charging::{composite_schedule, evaluate, limit_at, Profiles, TxContext};
use proptest::prelude::*;
use rust_ocpp::v1_6::types::{ChargingProfile, ChargingProfilePurposeType};
use serde_json::{json, Value};

const PURPOSES: [&str; 3] = ["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"];
const KINDS: [&str; 3] = ["Absolute", "Recurring", "Relative"];

prop_compose! {
    fn arb_profile()(
        id in 1..20i32, purpose in 0..3usize, kind in 0..3usize, level in 0..4u32,
        starts in proptest::collection::btree_set(1..86_400i32, 0..4),
        limits in proptest::collection::vec(0..640u32, 5),
        start_offset_s in 0..7_200u64, duration in proptest::option::of(60..20_000i32),
        valid_from_s in proptest::option::of(0..20_000u64), valid_len_s in proptest::option::of(60..40_000u64),
        weekly in any::<bool>(), connector in 0..3u32,
    ) -> (u32, Value) {
        let purpose = PURPOSES[purpose];
        let connector = match purpose {
            "ChargePointMaxProfile" => 0,
            "TxProfile" => 1 + connector % 2,
            _ => connector,
        };
        let mut period_starts = vec![0];
        period_starts.extend(starts);
        let periods: Vec<Value> = period_starts.iter().zip(limits.iter().cycle())
            .map(|(start, limit)| json!({"startPeriod": start, "limit": f64::from(*limit) / 10.0}))
            .collect();
        let at = |s: u64| chrono::DateTime::from_timestamp_millis(i64::try_from(START_WALL_MS + s * 1000).unwrap_or(0)).map(|t| t.to_rfc3339());
        let mut profile = json!({
            "chargingProfileId": id, "stackLevel": level, "chargingProfilePurpose": purpose,
            "chargingProfileKind": KINDS[kind],
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": periods, "startSchedule": at(start_offset_s)}
        });
        if let Some(duration) = duration { profile["chargingSchedule"]["duration"] = json!(duration); }
        if KINDS[kind] == "Recurring" { profile["recurrencyKind"] = json!(if weekly { "Weekly" } else { "Daily" }); }
        if let Some(from) = valid_from_s {
            profile["validFrom"] = json!(at(from));
            if let Some(len) = valid_len_s { profile["validTo"] = json!(at(from + len)); }
        }
        (connector, profile)
    }
}

/// The limit of the highest stack level of `purpose` on `connector` that applies at `at`.
fn winner(
    profiles: &Profiles,
    purpose: &ChargingProfilePurposeType,
    connector: u32,
    at: u64,
    tx: Option<TxContext>,
) -> Option<f64> {
    profiles
        .all()
        .iter()
        .filter(|p| p.connector_id == connector && p.profile.charging_profile_purpose == *purpose)
        .filter_map(|p| {
            let eval = evaluate(
                &p.profile,
                at,
                tx.map(|t| t.start_wall_ms),
                p.installed_wall_ms,
            );
            eval.limit.map(|(limit, _)| (p.profile.stack_level, limit))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, limit)| limit)
}

fn installed(raw: Vec<(u32, Value)>) -> Profiles {
    let mut profiles = Profiles::default();
    for (connector, value) in raw {
        if let Ok(profile) = serde_json::from_value::<ChargingProfile>(value) {
            let _ = profiles.install(connector, profile, 2, Some(5), START_WALL_MS);
        }
    }
    profiles
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_cap_is_never_above_a_winning_profile(raw in proptest::collection::vec(arb_profile(), 0..8), at_s in 0..200_000u64, with_tx in any::<bool>()) {
        let profiles = installed(raw);
        let at = START_WALL_MS + at_s * 1000;
        let tx = with_tx.then_some(TxContext { transaction_id: Some(5), start_wall_ms: START_WALL_MS + 600_000 });
        for connector in 0..=2u32 {
            let cap = limit_at(&profiles, connector, at, tx).limit.and_then(|l| l.current_a);
            let max = winner(&profiles, &ChargingProfilePurposeType::ChargePointMaxProfile, 0, at, tx);
            if let (Some(cap), Some(max)) = (cap, max) {
                prop_assert!(cap <= max, "connector {connector}: {cap} above ChargePointMax {max}");
            }
            if max.is_some() { prop_assert!(cap.is_some(), "an applying ChargePointMax yields a cap"); }
            if connector > 0 {
                let tx_winner = tx.and_then(|t| winner(&profiles, &ChargingProfilePurposeType::TxProfile, connector, at, Some(t)));
                let default = winner(&profiles, &ChargingProfilePurposeType::TxDefaultProfile, connector, at, tx)
                    .or_else(|| winner(&profiles, &ChargingProfilePurposeType::TxDefaultProfile, 0, at, tx));
                if let (Some(cap), Some(own)) = (cap, tx_winner.or(default)) {
                    prop_assert!(cap <= own, "connector {connector}: {cap} above {own}");
                }
            }
        }
    }

    #[test]
    fn the_composite_schedule_never_exceeds_the_cap_inside_its_periods(raw in proptest::collection::vec(arb_profile(), 0..6), probes in proptest::collection::vec(0..7_200u64, 10)) {
        let profiles = installed(raw);
        let schedule = composite_schedule(&profiles, &common::composite_query(7_200));
        let periods = &schedule.charging_schedule_period;
        prop_assert!(!periods.is_empty());
        prop_assert_eq!(periods[0].start_period, 0);
        for probe in probes {
            let Some(period) = periods.iter().rev().find(|p| u64::try_from(p.start_period).unwrap_or(0) <= probe) else { continue };
            let reported: f64 = period.limit.to_string().parse().unwrap_or(f64::MAX);
            let cap = limit_at(&profiles, 1, START_WALL_MS + probe * 1000, None).limit.and_then(|l| l.current_a).unwrap_or(32.0);
            prop_assert!(reported <= cap.min(32.0) + 1e-9, "at {probe}s: reported {reported} above cap {cap}");
        }
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9:.\\-T]{0,24}".prop_map(Value::from),
        Just(json!("2026-12-01T00:00:00")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("connectorId".to_owned()),
                    Just("type".to_owned()),
                    Just("key".to_owned()),
                    Just("value".to_owned()),
                    Just("idTag".to_owned()),
                    Just("transactionId".to_owned()),
                    Just("requestedMessage".to_owned()),
                    Just("csChargingProfiles".to_owned()),
                    Just("duration".to_owned()),
                    Just("listVersion".to_owned()),
                    Just("updateType".to_owned()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..5,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

const ACTIONS: [&str; 21] = [
    "ChangeAvailability",
    "ChangeConfiguration",
    "ClearCache",
    "DataTransfer",
    "GetConfiguration",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "Reset",
    "UnlockConnector",
    "GetLocalListVersion",
    "SendLocalList",
    "TriggerMessage",
    "SetChargingProfile",
    "ClearChargingProfile",
    "GetCompositeSchedule",
    "UpdateFirmware",
    "ReserveNow",
    "Nonsense",
    "BootNotification",
    "Heartbeat",
    "StartTransaction",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_frames_never_panic_and_calls_are_answered(
        frames in proptest::collection::vec(prop_oneof![
            (0..ACTIONS.len(), arb_json()).prop_map(|(a, p)| (true, json!([2, "", ACTIONS[a], p]).to_string())),
            arb_json().prop_map(|v| (false, v.to_string())),
            ".{0,40}".prop_map(|s| (false, s)),
        ], 1..30),
        steps in proptest::collection::vec(0..120_000u64, 30),
    ) {
        let mut sim = Sim::new(2);
        sim.boot_accepted(60);
        for (n, ((is_call, text), step)) in frames.into_iter().zip(steps).enumerate() {
            let text = if is_call { text.replacen("\"\"", &format!("\"p{n}\""), 1) } else { text };
            sim.send_text(&text);
            if is_call {
                let id = format!("p{n}");
                let answers = sim.inbox.iter().filter(|f| f[1] == id.as_str() && (f[0] == 3 || f[0] == 4)).count();
                prop_assert_eq!(answers, 1, "{} not answered once", text);
            }
            // Our answers to the backend are looked at; its CALLs to us get answered.
            sim.inbox.retain(|f| f[0] == 2);
            sim.answer_all();
            sim.advance(step);
            sim.answer_all();
        }
    }
}
