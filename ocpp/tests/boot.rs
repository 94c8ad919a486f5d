//! Registration: BootNotification Accepted, Pending, Rejected, retries; the heartbeat.

mod common;

use common::Sim;
use ctrl22_ocpp::session::Registration;
use serde_json::json;

fn boot_answer(status: &str, interval: u32) -> serde_json::Value {
    json!({"status": status, "currentTime": "2026-12-01T00:00:00Z", "interval": interval})
}

#[test]
fn accepted_boot_sends_statuses_then_heartbeats_at_the_interval() {
    let mut sim = Sim::new(2);
    sim.expect_silence();
    sim.connect();
    let boot = sim.answer("BootNotification", boot_answer("Accepted", 300));
    assert_eq!(boot["chargePointVendor"], "CTRL22");
    assert_eq!(boot["chargePointModel"], "bay");
    assert!(sim.cp.registration().is_accepted());
    let sent = sim.answer_all();
    let connectors: Vec<_> = sent
        .iter()
        .map(|(action, payload)| {
            assert_eq!(action, "StatusNotification");
            assert_eq!(payload["status"], "Available");
            payload["connectorId"].as_u64().expect("connector id")
        })
        .collect();
    assert_eq!(connectors, vec![0, 1, 2]);
    // The heartbeat follows the interval from the boot answer, counted from the last CALL.
    sim.advance(299_000);
    sim.expect_silence();
    sim.advance(1_000);
    sim.answer("Heartbeat", json!({"currentTime": "2026-12-01T00:05:00Z"}));
    sim.advance(300_000);
    sim.answer("Heartbeat", json!({"currentTime": "2026-12-01T00:10:00Z"}));
    assert_eq!(sim.cp.configuration().int("HeartbeatInterval"), 300);
}

#[test]
fn heartbeat_is_skipped_while_other_messages_go_out() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(60);
    for _ in 0..5 {
        sim.advance(50_000);
        sim.bay(1, common::status(ctrl22_ocpp::ConnectorStatus::Preparing));
        sim.answer_all();
        sim.bay(1, common::status(ctrl22_ocpp::ConnectorStatus::Available));
        let sent = sim.answer_all();
        assert!(
            sent.iter()
                .all(|(action, _)| action == "StatusNotification"),
            "{sent:?}"
        );
    }
}

#[test]
fn pending_answers_calls_sends_nothing_and_boots_again_after_the_interval() {
    let mut sim = Sim::new(1);
    sim.connect();
    sim.answer("BootNotification", boot_answer("Pending", 30));
    assert!(matches!(
        sim.cp.registration(),
        Registration::Pending { .. }
    ));
    // The backend may configure us while Pending.
    let answer = sim.call("GetConfiguration", json!({"key": ["HeartbeatInterval"]}));
    assert_eq!(answer[0], 3);
    assert_eq!(answer[2]["configurationKey"][0]["key"], "HeartbeatInterval");
    // Our own requests wait: a status change sends nothing.
    sim.bay(1, common::status(ctrl22_ocpp::ConnectorStatus::Preparing));
    sim.expect_silence();
    // RemoteStart is not allowed while Pending.
    let answer = sim.call("RemoteStartTransaction", json!({"idTag": "TAG"}));
    assert_eq!(answer[2]["status"], "Rejected");
    sim.advance(29_000);
    sim.expect_silence();
    sim.advance(1_000);
    sim.answer("BootNotification", boot_answer("Accepted", 600));
    let sent = sim.answer_all();
    assert!(sent
        .iter()
        .any(|(action, p)| action == "StatusNotification" && p["status"] == "Preparing"));
}

#[test]
fn triggered_boot_while_pending_goes_at_once_but_is_refused_once_accepted() {
    let mut sim = Sim::new(1);
    sim.connect();
    sim.answer("BootNotification", boot_answer("Pending", 3_600));
    let answer = sim.call(
        "TriggerMessage",
        json!({"requestedMessage": "BootNotification"}),
    );
    assert_eq!(answer[2]["status"], "Accepted");
    sim.advance(0);
    sim.answer("BootNotification", boot_answer("Accepted", 600));
    sim.answer_all();
    let answer = sim.call(
        "TriggerMessage",
        json!({"requestedMessage": "BootNotification"}),
    );
    assert_eq!(answer[2]["status"], "Rejected");
}

#[test]
fn rejected_is_silent_until_the_interval_has_passed() {
    let mut sim = Sim::new(1);
    sim.connect();
    sim.answer("BootNotification", boot_answer("Rejected", 120));
    sim.send(&json!([2, "cs1", "GetConfiguration", {}]));
    sim.expect_silence();
    assert_eq!(sim.cp.counters().calls_ignored_while_rejected, 1);
    sim.advance(119_000);
    sim.expect_silence();
    sim.advance(1_000);
    sim.answer("BootNotification", boot_answer("Accepted", 600));
    assert!(sim.cp.registration().is_accepted());
}

#[test]
fn boot_is_retried_after_callerror_timeout_and_zero_interval() {
    let mut sim = Sim::new(1);
    sim.connect();
    let (id, _) = sim.expect_call("BootNotification");
    sim.send(&json!([4, id, "InternalError", "busy", {}]));
    sim.advance(59_000);
    sim.expect_silence();
    sim.advance(1_000);
    // No answer: after the response timeout and the retry wait, again.
    sim.expect_call("BootNotification");
    sim.advance(30_000 + 60_000);
    let (id, _) = sim.expect_call("BootNotification");
    // Pending with interval 0: our own back-off (60 s).
    sim.result(&id, boot_answer("Pending", 0));
    sim.advance(60_000);
    sim.answer("BootNotification", boot_answer("Accepted", 600));
    assert!(sim.cp.registration().is_accepted());
}

#[test]
fn reconnect_keeps_the_registration_and_reports_only_the_current_status() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(600);
    sim.disconnect();
    sim.bay(1, common::status(ctrl22_ocpp::ConnectorStatus::Preparing));
    sim.bay(1, common::status(ctrl22_ocpp::ConnectorStatus::Faulted));
    sim.bay(1, common::status(ctrl22_ocpp::ConnectorStatus::Preparing));
    sim.expect_silence();
    sim.connect();
    let sent = sim.answer_all();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "StatusNotification");
    assert_eq!(sent[0].1["status"], "Preparing");
}

#[test]
fn lenient_boot_answer_with_float_interval_and_zoneless_time() {
    let mut sim = Sim::new(1);
    sim.connect();
    let (id, _) = sim.expect_call("BootNotification");
    sim.send_text(&format!(
        r#"[3,"{id}",{{"status":"Accepted","currentTime":"2026-12-01T00:00:00","interval":300.0}}]"#
    ));
    assert!(sim.cp.registration().is_accepted());
    assert_eq!(sim.cp.configuration().int("HeartbeatInterval"), 300);
}
