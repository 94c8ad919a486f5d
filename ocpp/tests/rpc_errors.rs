//! Every backend call answered; bad input answered per OCPP-J and the session survives.

mod common;

use common::Sim;
use serde_json::{json, Value};

fn profile(id: i32, purpose: &str, stack_level: u32, limit: f64) -> Value {
    json!({
        "chargingProfileId": id, "stackLevel": stack_level, "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
    })
}

/// Each CS -> CP action of the profiles we advertise, with a valid payload and the answer
/// field to look at.
fn every_action() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    vec![
        (
            "ChangeAvailability",
            json!({"connectorId": 1, "type": "Inoperative"}),
            "status",
            "Accepted",
        ),
        (
            "ChangeConfiguration",
            json!({"key": "HeartbeatInterval", "value": "120"}),
            "status",
            "Accepted",
        ),
        ("ClearCache", json!({}), "status", "Rejected"),
        (
            "DataTransfer",
            json!({"vendorId": "acme", "messageId": "x", "data": "y"}),
            "status",
            "UnknownVendorId",
        ),
        ("GetConfiguration", json!({}), "", ""),
        (
            "RemoteStartTransaction",
            json!({"idTag": "T"}),
            "status",
            "Rejected",
        ),
        (
            "RemoteStopTransaction",
            json!({"transactionId": 5}),
            "status",
            "Rejected",
        ),
        ("Reset", json!({"type": "Soft"}), "status", "Accepted"),
        (
            "UnlockConnector",
            json!({"connectorId": 1}),
            "status",
            "NotSupported",
        ),
        ("GetLocalListVersion", json!({}), "listVersion", ""),
        (
            "SendLocalList",
            json!({"listVersion": 1, "updateType": "Full"}),
            "status",
            "Accepted",
        ),
        (
            "TriggerMessage",
            json!({"requestedMessage": "Heartbeat"}),
            "status",
            "Accepted",
        ),
        (
            "SetChargingProfile",
            json!({"connectorId": 0, "csChargingProfiles": profile(1, "ChargePointMaxProfile", 0, 16.0)}),
            "status",
            "Accepted",
        ),
        (
            "GetCompositeSchedule",
            json!({"connectorId": 1, "duration": 3600}),
            "status",
            "Accepted",
        ),
        ("ClearChargingProfile", json!({}), "status", "Accepted"),
    ]
}

#[test]
fn every_action_is_answered_with_a_callresult() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    for (action, payload, field, expected) in every_action() {
        let answer = sim.call(action, payload);
        assert_eq!(answer[0], 3, "{action}: {answer}");
        if !field.is_empty() && !expected.is_empty() {
            assert_eq!(answer[2][field], expected, "{action}: {answer}");
        }
        sim.answer_all();
    }
    assert_eq!(sim.cp.counters().calls_refused, 0);
}

#[test]
fn unsupported_and_unknown_actions_get_the_right_callerror() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    for action in ["ReserveNow", "CancelReservation"] {
        let answer = sim.call(action, json!({}));
        assert_eq!(answer[0], 4);
        assert_eq!(answer[2], "NotSupported", "{action}");
    }
    let answer = sim.call("MakeCoffee", json!({}));
    assert_eq!(answer[2], "NotImplemented");
    let keys = sim.call(
        "GetConfiguration",
        json!({"key": ["SupportedFeatureProfiles"]}),
    );
    let profiles = keys[2]["configurationKey"][0]["value"]
        .as_str()
        .unwrap_or("");
    assert!(!profiles.contains("Reservation") && profiles.contains("SmartCharging"));
}

#[test]
fn malformed_frames_and_wrong_types_are_answered_and_the_session_survives() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    let cases: [(&str, &str, &str); 9] = [
        ("not json at all", "-1", "FormationViolation"),
        (r#"{"a":1}"#, "-1", "FormationViolation"),
        (r#"[2]"#, "-1", "FormationViolation"),
        (r#"[2,"x1","Reset"]"#, "x1", "FormationViolation"),
        (r#"[9,"x2","Reset",{}]"#, "x2", "FormationViolation"),
        (r#"[2,"x3","Reset",[]]"#, "x3", "FormationViolation"),
        (
            r#"[2,"x4","Reset",{"type":17}]"#,
            "x4",
            "TypeConstraintViolation",
        ),
        (
            r#"[2,"x5","Reset",{}]"#,
            "x5",
            "OccurenceConstraintViolation",
        ),
        (
            r#"[2,"x6","Reset",{"type":"Sideways"}]"#,
            "x6",
            "PropertyConstraintViolation",
        ),
    ];
    for (text, id, code) in cases {
        sim.send_text(text);
        let frames = sim.take();
        assert_eq!(frames.len(), 1, "{text}: {frames:?}");
        assert_eq!(frames[0][0], 4, "{text}");
        assert_eq!(frames[0][1], id, "{text}");
        assert_eq!(frames[0][2], code, "{text}");
    }
    // A broken CALLRESULT is never answered.
    sim.send_text(r#"[3]"#);
    sim.expect_silence();
    // Message id too long (> 36 characters).
    sim.send_text(&format!(
        r#"[2,"{}","Reset",{{"type":"Soft"}}]"#,
        "x".repeat(37)
    ));
    assert_eq!(sim.take()[0][1], "-1");
    let answer = sim.call("GetLocalListVersion", json!({}));
    assert_eq!(answer[0], 3, "still talking");
    assert_eq!(sim.cp.counters().bad_frames, 7);
}

#[test]
fn a_backend_call_while_our_call_is_open_is_answered_and_ours_stays_open() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    let answer = sim.call(
        "TriggerMessage",
        json!({"requestedMessage": "StatusNotification", "connectorId": 1}),
    );
    assert_eq!(answer[2]["status"], "Accepted");
    let (ours, _) = sim.expect_call("StatusNotification");
    let answer = sim.call("GetConfiguration", json!({"key": ["NumberOfConnectors"]}));
    assert_eq!(answer[2]["configurationKey"][0]["value"], "1");
    sim.expect_silence();
    // Only one of ours at a time: a new status waits for the open CALL.
    sim.bay(1, common::status(ctrl22_ocpp::ConnectorStatus::Preparing));
    sim.expect_silence();
    sim.result(&ours, json!({}));
    sim.expect_call("StatusNotification");
}

#[test]
fn answers_with_unknown_ids_are_counted_and_ignored() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.send(&json!([3, "nobody", {}]));
    sim.send(&json!([4, "nobody", "GenericError", "", {}]));
    sim.expect_silence();
    assert_eq!(sim.cp.counters().unknown_answer_ids, 2);
}

#[test]
fn no_answer_within_the_response_timeout_frees_the_line() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.bay(1, common::status(ctrl22_ocpp::ConnectorStatus::Preparing));
    let (late, _) = sim.expect_call("StatusNotification");
    sim.bay(1, common::status(ctrl22_ocpp::ConnectorStatus::Available));
    sim.advance(29_999);
    sim.expect_silence();
    sim.advance(1);
    assert_eq!(sim.cp.counters().response_timeouts, 1);
    sim.expect_call("StatusNotification");
    // The late answer is for a CALL no longer open.
    sim.result(&late, json!({}));
    assert_eq!(sim.cp.counters().unknown_answer_ids, 1);
}

#[test]
fn peer_spellings_of_error_codes_are_read() {
    use ctrl22_ocpp::rpc::{parse_frame, ErrorCode, Frame};
    for (code, expected) in [
        ("FormatViolation", ErrorCode::FormationViolation),
        (
            "OccurrenceConstraintViolation",
            ErrorCode::OccurenceConstraintViolation,
        ),
        ("Whatever", ErrorCode::GenericError),
    ] {
        let frame = parse_frame(&json!([4, "a", code, "d", {}]).to_string());
        assert!(
            matches!(frame, Ok(Frame::CallError { code: c, .. }) if c == expected),
            "{code}"
        );
    }
}
