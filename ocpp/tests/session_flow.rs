//! A whole charging session through the charge point: statuses, transaction, meter values,
//! remote start and stop.

mod common;

use common::{reading, status, Sim};
use ctrl22_ocpp::{ConnectorEvent, ConnectorStatus, Event, StopReason};
use serde_json::json;

fn statuses(sent: &[(String, serde_json::Value)]) -> Vec<String> {
    sent.iter()
        .filter(|(action, _)| action == "StatusNotification")
        .map(|(_, p)| p["status"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn energy_of(meter_value: &serde_json::Value) -> Option<u64> {
    meter_value["sampledValue"]
        .as_array()?
        .iter()
        .find(|v| v["measurand"] == "Energy.Active.Import.Register")
        .and_then(|v| v["value"].as_str())
        .and_then(|v| v.parse().ok())
}

#[test]
fn statuses_and_messages_through_a_whole_session() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.bay(1, ConnectorEvent::MeterSample(reading(10_000, 0.0)));
    let mut sent = Vec::new();
    sim.bay(1, status(ConnectorStatus::Preparing));
    sent.extend(sim.answer_all());
    sim.start_session(1, "FREE", reading(10_000, 0.0));
    sim.bay(1, status(ConnectorStatus::Charging));
    sent.extend(sim.answer_all());
    let mut energy = 10_000;
    for (minute, next) in [
        (1, ConnectorStatus::SuspendedEVSE),
        (2, ConnectorStatus::Charging),
    ] {
        for _ in 0..6 {
            energy += 110;
            sim.advance(10_000);
            sim.bay(1, ConnectorEvent::MeterSample(reading(energy, 6_600.0)));
        }
        sent.extend(sim.answer_all());
        sim.bay(1, status(next));
        sent.extend(sim.answer_all());
        assert!(minute <= 2);
    }
    sim.bay(
        1,
        ConnectorEvent::SessionStopped {
            meter: reading(energy + 50, 0.0),
            reason: StopReason::Local,
            id_tag: Some("FREE".into()),
        },
    );
    sim.bay(1, status(ConnectorStatus::Finishing));
    sent.extend(sim.answer_all());
    sim.bay(1, status(ConnectorStatus::Available));
    sent.extend(sim.answer_all());

    assert_eq!(
        statuses(&sent),
        [
            "Preparing",
            "Charging",
            "SuspendedEVSE",
            "Charging",
            "Finishing",
            "Available"
        ]
    );
    let actions: Vec<&str> = sent.iter().map(|(a, _)| a.as_str()).collect();
    let start = actions
        .iter()
        .position(|a| *a == "StartTransaction")
        .expect("start sent");
    let stop = actions
        .iter()
        .position(|a| *a == "StopTransaction")
        .expect("stop sent");
    assert!(start < stop);
    // Chronological: Preparing, StartTransaction, Charging.
    assert_eq!(
        &actions[..3],
        [
            "StatusNotification",
            "StartTransaction",
            "StatusNotification"
        ]
    );
    let start_payload = &sent[start].1;
    assert_eq!(start_payload["meterStart"], 10_000);
    assert_eq!(start_payload["idTag"], "FREE");
    let stop_payload = &sent[stop].1;
    assert_eq!(stop_payload["transactionId"], 101);
    assert_eq!(stop_payload["meterStop"], energy + 50);
    assert_eq!(stop_payload["reason"], "Local");
    // Sampled every 60 s (the default MeterValueSampleInterval), with the transaction id,
    // energy rising monotonically between meterStart and meterStop.
    let samples: Vec<u64> = sent
        .iter()
        .filter(|(a, _)| a == "MeterValues")
        .map(|(_, p)| {
            assert_eq!(p["transactionId"], 101);
            assert_eq!(
                p["meterValue"][0]["sampledValue"][0]["context"],
                "Sample.Periodic"
            );
            energy_of(&p["meterValue"][0]).expect("energy measurand")
        })
        .collect();
    assert_eq!(samples.len(), 2, "{samples:?}");
    assert!(samples.windows(2).all(|w| w[0] <= w[1]));
    assert!(samples[0] >= 10_000 && *samples.last().unwrap_or(&0) <= energy + 50);
    assert!(sim.store.is_empty(), "all transaction messages delivered");
}

#[test]
fn a_lower_energy_reading_never_goes_out() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.start_session(1, "T", reading(5_000, 0.0));
    sim.answer_all();
    sim.bay(1, ConnectorEvent::MeterSample(reading(4_000, 0.0)));
    sim.stop_session(1, reading(4_500, 0.0), StopReason::EVDisconnected);
    let sent = sim.answer_all();
    let stop = sent
        .iter()
        .find(|(a, _)| a == "StopTransaction")
        .expect("stop");
    assert_eq!(stop.1["meterStop"], 5_000);
    assert_eq!(sim.cp.counters().energy_went_backwards, 2);
}

#[test]
fn configured_measurands_and_clock_aligned_values() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(86_400);
    for (key, value) in [
        (
            "MeterValuesSampledData",
            "Energy.Active.Import.Register,Current.Import,Power.Active.Import,Current.Offered",
        ),
        ("MeterValueSampleInterval", "0"),
        ("ClockAlignedDataInterval", "900"),
    ] {
        let answer = sim.call("ChangeConfiguration", json!({"key": key, "value": value}));
        assert_eq!(answer[2]["status"], "Accepted");
    }
    sim.start_session(1, "T", reading(1_000, 11_000.0));
    sim.answer_all();
    sim.advance(900_000);
    let sent = sim.answer_all();
    let aligned: Vec<_> = sent.iter().filter(|(a, _)| a == "MeterValues").collect();
    assert_eq!(aligned.len(), 1, "{sent:?}");
    let value = &aligned[0].1["meterValue"][0];
    // Stamped at the slot, 00:15:00, from midnight.
    assert_eq!(value["timestamp"], "2026-12-01T00:15:00Z");
    assert_eq!(value["sampledValue"][0]["context"], "Sample.Clock");
    assert_eq!(energy_of(value), Some(1_000));
    // Sampled data now carries all four measurands (three phases of current).
    let answer = sim.call(
        "TriggerMessage",
        json!({"requestedMessage": "MeterValues", "connectorId": 1}),
    );
    assert_eq!(answer[2]["status"], "Accepted");
    let sent = sim.answer_all();
    let measurands: Vec<&str> = sent[0].1["meterValue"][0]["sampledValue"]
        .as_array()
        .expect("values")
        .iter()
        .filter_map(|v| v["measurand"].as_str())
        .collect();
    assert_eq!(
        measurands,
        [
            "Energy.Active.Import.Register",
            "Current.Import",
            "Current.Import",
            "Current.Import",
            "Power.Active.Import",
            "Current.Offered"
        ]
    );
}

#[test]
fn remote_start_and_stop() {
    let mut sim = Sim::new(2);
    sim.boot_accepted(3_600);
    sim.take_events();
    let answer = sim.call(
        "RemoteStartTransaction",
        json!({"connectorId": 2, "idTag": "BACKEND"}),
    );
    assert_eq!(answer[2]["status"], "Accepted");
    assert!(sim.take_events().contains(&Event::RemoteStartRequested {
        connector_id: 2,
        id_tag: "BACKEND".into()
    }));
    // Without a connector: the first free one.
    let answer = sim.call("RemoteStartTransaction", json!({"idTag": "OTHER"}));
    assert_eq!(answer[2]["status"], "Accepted");
    assert!(sim.take_events().contains(&Event::RemoteStartRequested {
        connector_id: 1,
        id_tag: "OTHER".into()
    }));
    sim.start_session(2, "BACKEND", reading(0, 0.0));
    sim.answer_all();
    // A connector with a transaction is not free.
    let answer = sim.call(
        "RemoteStartTransaction",
        json!({"connectorId": 2, "idTag": "AGAIN"}),
    );
    assert_eq!(answer[2]["status"], "Rejected");
    let answer = sim.call("RemoteStopTransaction", json!({"transactionId": 999}));
    assert_eq!(answer[2]["status"], "Rejected");
    let answer = sim.call("RemoteStopTransaction", json!({"transactionId": 101}));
    assert_eq!(answer[2]["status"], "Accepted");
    assert!(sim
        .take_events()
        .contains(&Event::RemoteStopRequested { connector_id: 2 }));
    sim.stop_session(2, reading(2_000, 0.0), StopReason::Remote);
    let sent = sim.answer_all();
    assert_eq!(sent[0].1["reason"], "Remote");
    assert_eq!(sent[0].1["transactionId"], 101);
}

#[test]
fn change_availability_during_a_transaction_is_scheduled() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    sim.start_session(1, "T", reading(0, 0.0));
    sim.bay(1, status(ConnectorStatus::Charging));
    sim.answer_all();
    sim.take_events();
    let answer = sim.call(
        "ChangeAvailability",
        json!({"connectorId": 1, "type": "Inoperative"}),
    );
    assert_eq!(answer[2]["status"], "Scheduled");
    assert!(!sim
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::AvailabilityChanged { .. })));
    sim.stop_session(1, reading(10, 0.0), StopReason::Local);
    sim.bay(1, status(ConnectorStatus::Finishing));
    let sent = sim.answer_all();
    assert!(sim.take_events().contains(&Event::AvailabilityChanged {
        connector_id: 1,
        operative: false
    }));
    assert_eq!(
        statuses(&sent).last().map(String::as_str),
        Some("Unavailable")
    );
    let answer = sim.call(
        "ChangeAvailability",
        json!({"connectorId": 0, "type": "Operative"}),
    );
    assert_eq!(answer[2]["status"], "Accepted");
    let sent = sim.answer_all();
    assert_eq!(statuses(&sent), ["Finishing", "Available"]);
}

#[test]
fn authorize_by_backend_and_by_local_list() {
    let mut sim = Sim::new(1);
    sim.boot_accepted(3_600);
    let answer = sim.call(
        "SendLocalList",
        json!({"listVersion": 3, "updateType": "Full", "localAuthorizationList": [{"idTag": "LOCAL", "idTagInfo": {"status": "Accepted"}}]}),
    );
    assert_eq!(answer[2]["status"], "Accepted");
    let answer = sim.call("GetLocalListVersion", json!({}));
    assert_eq!(answer[2]["listVersion"], 3);
    let answer = sim.call(
        "SendLocalList",
        json!({"listVersion": 2, "updateType": "Differential"}),
    );
    assert_eq!(answer[2]["status"], "VersionMismatch");
    sim.take_events();
    let now = sim.now;
    sim.cp.authorize(now, 1, "REMOTE");
    sim.pump();
    let (id, request) = sim.expect_call("Authorize");
    assert_eq!(request["idTag"], "REMOTE");
    sim.result(&id, json!({"idTagInfo": {"status": "Blocked"}}));
    assert!(sim.take_events().contains(&Event::Authorized {
        connector_id: 1,
        id_tag: "REMOTE".into(),
        accepted: false
    }));
    // Offline the local list decides.
    sim.disconnect();
    sim.cp.authorize(now, 1, "LOCAL");
    sim.pump();
    assert!(sim.take_events().contains(&Event::Authorized {
        connector_id: 1,
        id_tag: "LOCAL".into(),
        accepted: true
    }));
}
