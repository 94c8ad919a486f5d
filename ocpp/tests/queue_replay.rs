//! Durable transaction messages: persisted before sending, replayed in order after an outage
//! and a restart, none lost, none duplicated; Stop behind a queued Start; attempts exhausted.

mod common;

use common::{reading, Sim};
use ctrl22_ocpp::{ConnectorEvent, Event, StopReason};
use serde_json::json;

fn session(sim: &mut Sim, connector: u32, start_wh: u64, stop_wh: u64) {
    sim.bay(
        connector,
        ConnectorEvent::SessionStarted {
            id_tag: "T".into(),
            meter: reading(start_wh, 7_000.0),
        },
    );
    sim.advance(60_000);
    sim.bay(
        connector,
        ConnectorEvent::MeterSample(reading((start_wh + stop_wh) / 2, 7_000.0)),
    );
    sim.advance(60_000);
    sim.bay(
        connector,
        ConnectorEvent::SessionStopped {
            meter: reading(stop_wh, 0.0),
            reason: StopReason::Local,
            id_tag: None,
        },
    );
}

#[test]
fn persisted_before_sent() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.start_session(1, "T", reading(0, 0.0));
    let events = sim.take_events();
    let persisted = events
        .iter()
        .position(|e| matches!(e, Event::PersistTxMessage(m) if m.action == "StartTransaction"));
    assert!(persisted.is_some(), "{events:?}");
    // The CALL went out in the same step, and the message is in the store while it is open.
    let (id, _) = sim.expect_call("StartTransaction");
    assert_eq!(sim.store.len(), 1);
    sim.result(
        &id,
        json!({"transactionId": 7, "idTagInfo": {"status": "Accepted"}}),
    );
    assert!(sim.store.is_empty());
}

#[test]
fn outage_then_restart_replays_everything_once_in_order() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    // The backend goes away mid-session; two sessions happen while it is away.
    sim.disconnect();
    session(&mut sim, 1, 1_000, 3_000);
    session(&mut sim, 1, 3_000, 4_500);
    sim.expect_silence();
    assert_eq!(sim.store.len(), 2 * 4, "start, 2 samples, stop per session");
    // The bridge restarts while the backend is still down: only the store survives.
    let mut sim2 = sim.restart(5_000);
    let sent = sim2.reboot_accepted();
    let tx: Vec<(&str, &serde_json::Value)> = sent.iter().map(|(a, p)| (a.as_str(), p)).collect();
    let actions: Vec<&str> = tx.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        actions,
        [
            "StartTransaction",
            "MeterValues",
            "MeterValues",
            "StopTransaction",
            "StartTransaction",
            "MeterValues",
            "MeterValues",
            "StopTransaction"
        ]
    );
    // The backend's ids (101, 102, from answer_all) replace the local ones.
    assert_eq!(tx[1].1["transactionId"], 101);
    assert_eq!(tx[3].1["transactionId"], 101);
    assert_eq!(tx[7].1["transactionId"], 102);
    assert_eq!(tx[0].1["meterStart"], 1_000);
    assert_eq!(tx[3].1["meterStop"], 3_000);
    assert!(sim2.store.is_empty());
    // Nothing more once delivered.
    sim2.advance(600_000);
    assert!(sim2.answer_all().iter().all(|(a, _)| a == "Heartbeat"));
}

#[test]
fn a_lost_result_resends_the_call_unchanged_after_reconnect() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.start_session(1, "T", reading(10, 0.0));
    let (_, first) = sim.expect_call("StartTransaction");
    sim.disconnect();
    sim.advance(1_000);
    sim.connect();
    sim.advance(60_000);
    let (_, again) = sim.expect_call("StartTransaction");
    assert_eq!(first, again);
}

#[test]
fn stop_whose_start_is_still_queued_gets_the_backend_id() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.start_session(1, "T", reading(0, 0.0));
    let (start_id, _) = sim.expect_call("StartTransaction");
    // The session ends before the backend answered the start.
    sim.stop_session(1, reading(900, 0.0), StopReason::EVDisconnected);
    sim.expect_silence();
    let queued_stop = sim
        .store
        .values()
        .find(|m| m.action == "StopTransaction")
        .expect("stop stored");
    assert_eq!(queued_stop.transaction_id, None);
    sim.result(
        &start_id,
        json!({"transactionId": 4242, "idTagInfo": {"status": "Accepted"}}),
    );
    let stop = sim.answer("StopTransaction", json!({}));
    assert_eq!(stop["transactionId"], 4242);
    assert_eq!(stop["meterStop"], 900);
}

#[test]
fn the_id_learned_before_a_restart_survives_in_the_store() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.start_session(1, "T", reading(0, 0.0));
    let (start_id, _) = sim.expect_call("StartTransaction");
    sim.stop_session(1, reading(50, 0.0), StopReason::Local);
    sim.result(
        &start_id,
        json!({"transactionId": 77, "idTagInfo": {"status": "Accepted"}}),
    );
    // The stop is on the line; the bridge dies before its answer.
    sim.expect_call("StopTransaction");
    let stored: Vec<_> = sim.store.values().cloned().collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].transaction_id, Some(77));
    let mut sim2 = sim.restart(0);
    let sent = sim2.reboot_accepted();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "StopTransaction");
    assert_eq!(sent[0].1["transactionId"], 77);
    assert!(sim2.store.is_empty());
}

#[test]
fn attempts_exhausted_drops_the_message_after_growing_waits() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    for (key, value) in [
        ("TransactionMessageAttempts", "3"),
        ("TransactionMessageRetryInterval", "60"),
        ("MeterValueSampleInterval", "0"),
    ] {
        sim.call("ChangeConfiguration", json!({"key": key, "value": value}));
    }
    sim.take_events();
    sim.start_session(1, "T", reading(0, 0.0));
    let fail = |sim: &mut Sim| {
        let (id, _) = sim.expect_call("StartTransaction");
        sim.send(&json!([4, id, "InternalError", "db down", {}]));
    };
    fail(&mut sim);
    // Retry 1 after 60 s, retry 2 after 120 s (OCPP 1.6 §4.10's example).
    sim.advance(59_000);
    sim.expect_silence();
    sim.advance(1_000);
    fail(&mut sim);
    sim.advance(119_000);
    sim.expect_silence();
    sim.advance(1_000);
    fail(&mut sim);
    assert!(sim.store.is_empty());
    assert_eq!(sim.cp.counters().tx_messages_discarded, 1);
    assert!(sim.take_events().iter().any(
        |e| matches!(e, Event::TxMessageDiscarded { action, .. } if action == "StartTransaction")
    ));
    // The stop of that transaction goes with transactionId -1 (errata 3.54).
    sim.stop_session(1, reading(5, 0.0), StopReason::Local);
    let stop = sim.answer("StopTransaction", json!({}));
    assert_eq!(stop["transactionId"], -1);
}

#[test]
fn statuses_overtake_a_queue_waiting_for_its_retry() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.start_session(1, "T", reading(0, 0.0));
    let (id, _) = sim.expect_call("StartTransaction");
    sim.send(&json!([4, id, "InternalError", "", {}]));
    sim.bay(1, common::status(ctrl22_ocpp::ConnectorStatus::Charging));
    sim.expect_call("StatusNotification");
}

/// The bridge restarts while a session goes on: after the restart the session's meter values
/// and its stop still belong to the transaction, with the backend's id.
#[test]
fn a_session_running_across_a_restart_keeps_its_transaction() {
    for start_delivered in [true, false] {
        let mut sim = Sim::new(1);
        sim.boot_accepted(3_600);
        sim.start_session(1, "T", reading(100, 0.0));
        if start_delivered {
            sim.answer_all();
        } else {
            sim.disconnect();
        }
        assert_eq!(sim.open.len(), 1);
        let mut sim2 = sim.restart(10_000);
        sim2.bay(1, ConnectorEvent::MeterSample(reading(300, 3_000.0)));
        sim2.advance(60_000);
        sim2.stop_session(1, reading(500, 0.0), StopReason::Local);
        assert!(sim2.open.is_empty());
        let sent = sim2.reboot_accepted();
        let actions: Vec<&str> = sent.iter().map(|(a, _)| a.as_str()).collect();
        let expected: &[&str] = if start_delivered {
            &["MeterValues", "MeterValues", "StopTransaction"]
        } else {
            &[
                "StartTransaction",
                "MeterValues",
                "MeterValues",
                "StopTransaction",
            ]
        };
        assert_eq!(
            actions, expected,
            "start delivered before the restart: {start_delivered}"
        );
        let (_, stop) = sent.last().expect("stop");
        assert_eq!(stop["transactionId"], 101);
        assert_eq!(stop["meterStop"], 500);
        assert!(sent
            .iter()
            .filter(|(a, _)| a == "MeterValues")
            .all(|(_, p)| p["transactionId"] == 101));
        assert!(sim2.store.is_empty());
    }
}
