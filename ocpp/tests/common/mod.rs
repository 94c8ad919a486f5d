//! A scripted central system around one `ChargePoint`, on simulated time: frames in and out
//! as JSON, the caller's store as a map, no sockets.
#![allow(dead_code)]

use std::collections::BTreeMap;

use ctrl22_ocpp::queue::StoredMessage;
use ctrl22_ocpp::{
    ChargePoint, Config, ConnectorEvent, Event, MeterReading, Now, OpenTransaction, Restored,
    StopReason,
};
use serde_json::{json, Value};

/// 2026-12-01T00:00:00Z
pub const START_WALL_MS: u64 = 1_796_083_200_000;

pub struct Sim {
    pub cp: ChargePoint,
    pub now: Now,
    /// Frames the charge point sent, not yet looked at.
    pub inbox: Vec<Value>,
    pub events: Vec<Event>,
    /// The caller's durable store of transaction messages.
    pub store: BTreeMap<u64, StoredMessage>,
    /// The caller's record of running transactions, per connector.
    pub open: BTreeMap<u32, OpenTransaction>,
    next_id: u64,
}

pub fn config(connectors: u32) -> Config {
    let mut config = Config::new("CTRL22", "bay", connectors);
    config.message_id_prefix = "t".to_owned();
    config
}

impl Sim {
    pub fn new(connectors: u32) -> Self {
        Self::with(
            config(connectors),
            Restored::default(),
            Now {
                mono_ms: 1_000,
                wall_ms: START_WALL_MS,
            },
        )
    }

    pub fn with(config: Config, restored: Restored, now: Now) -> Self {
        Self {
            cp: ChargePoint::new(config, restored),
            now,
            inbox: Vec::new(),
            events: Vec::new(),
            store: BTreeMap::new(),
            open: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// What the caller persisted, for a restart.
    pub fn restored(&self) -> Restored {
        Restored {
            tx_messages: self.store.values().cloned().collect(),
            open_transactions: self.open.iter().map(|(c, t)| (*c, t.clone())).collect(),
            ..Restored::default()
        }
    }

    /// Drains frames and events (the store follows the persist/remove events).
    pub fn pump(&mut self) {
        while let Some(text) = self.cp.poll_transmit() {
            self.inbox
                .push(serde_json::from_str(&text).expect("the charge point sends JSON"));
        }
        while let Some(event) = self.cp.poll_event() {
            match &event {
                Event::PersistTxMessage(message) => {
                    self.store.insert(message.seq, message.clone());
                }
                Event::TransactionChanged {
                    connector_id,
                    transaction,
                } => match transaction {
                    Some(transaction) => {
                        self.open.insert(*connector_id, transaction.clone());
                    }
                    None => {
                        self.open.remove(connector_id);
                    }
                },
                Event::RemoveTxMessage { seq } => {
                    assert!(
                        self.store.remove(seq).is_some(),
                        "removed a message never persisted"
                    );
                }
                _ => {}
            }
            self.events.push(event);
        }
    }

    pub fn connect(&mut self) {
        self.cp.handle_connected(self.now);
        self.pump();
    }

    pub fn disconnect(&mut self) {
        self.cp.handle_disconnected(self.now);
        self.pump();
    }

    pub fn send_text(&mut self, text: &str) {
        self.cp.handle_frame(self.now, text);
        self.pump();
    }

    pub fn send(&mut self, frame: &Value) {
        self.send_text(&frame.to_string());
    }

    pub fn bay(&mut self, connector: u32, event: ConnectorEvent) {
        self.cp.on_connector_event(self.now, connector, event);
        self.pump();
    }

    /// Moves both clocks on, firing every timer on the way.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now.plus_ms(ms);
        while let Some(due) = self.cp.poll_timeout().filter(|due| *due <= end.mono_ms) {
            let step = due.saturating_sub(self.now.mono_ms);
            self.now = self.now.plus_ms(step);
            self.cp.handle_timeout(self.now);
            self.pump();
            if step == 0 && self.cp.poll_timeout() == Some(due) {
                break;
            }
        }
        self.now = end;
        self.cp.handle_timeout(self.now);
        self.pump();
    }

    /// Takes every frame sent so far.
    pub fn take(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.inbox)
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The one CALL sent so far, which must be `action`: (id, payload).
    pub fn expect_call(&mut self, action: &str) -> (String, Value) {
        let frames = self.take();
        assert_eq!(
            frames.len(),
            1,
            "expected one {action} CALL, got {frames:?}"
        );
        let frame = &frames[0];
        assert_eq!(frame[0], 2, "not a CALL: {frame}");
        assert_eq!(frame[2], action, "wrong CALL: {frame}");
        (frame[1].as_str().expect("id").to_owned(), frame[3].clone())
    }

    /// Nothing sent.
    pub fn expect_silence(&mut self) {
        let frames = self.take();
        assert!(frames.is_empty(), "expected silence, got {frames:?}");
    }

    pub fn result(&mut self, id: &str, payload: Value) {
        self.send(&Value::Array(vec![3.into(), id.into(), payload]));
    }

    /// Answers the pending `action` CALL with `payload`; returns the CALL's payload.
    pub fn answer(&mut self, action: &str, payload: Value) -> Value {
        let (id, request) = self.expect_call(action);
        self.result(&id, payload);
        request
    }

    /// Answers CALLs until none is left, with the usual accepting payloads; returns them.
    pub fn answer_all(&mut self) -> Vec<(String, Value)> {
        let mut seen = Vec::new();
        let mut next_tx = 100;
        loop {
            let frames = self.take();
            if frames.is_empty() {
                return seen;
            }
            for frame in frames {
                assert_eq!(frame[0], 2, "only CALLs expected here: {frame}");
                let action = frame[2].as_str().expect("action").to_owned();
                let payload = match action.as_str() {
                    "StartTransaction" => {
                        next_tx += 1;
                        json!({"transactionId": next_tx, "idTagInfo": {"status": "Accepted"}})
                    }
                    "Authorize" | "StopTransaction" => json!({"idTagInfo": {"status": "Accepted"}}),
                    "Heartbeat" => json!({"currentTime": "2026-12-01T00:00:00Z"}),
                    _ => json!({}),
                };
                let id = frame[1].as_str().expect("id").to_owned();
                seen.push((action, frame[3].clone()));
                self.result(&id, payload);
            }
        }
    }

    /// The backend calls `action`; returns the answer frame.
    pub fn call(&mut self, action: &str, payload: Value) -> Value {
        let id = format!("cs{}", self.next_id);
        self.next_id += 1;
        self.send(&Value::Array(vec![
            2.into(),
            id.clone().into(),
            action.into(),
            payload,
        ]));
        let position = self
            .inbox
            .iter()
            .position(|f| f[1] == id.as_str() && (f[0] == 3 || f[0] == 4))
            .unwrap_or_else(|| panic!("{action} was not answered: {:?}", self.inbox));
        self.inbox.remove(position)
    }

    /// Connect and get Accepted with `interval_s`; the boot statuses are answered.
    pub fn boot_accepted(&mut self, interval_s: u32) {
        self.connect();
        self.answer(
            "BootNotification",
            json!({"status": "Accepted", "currentTime": "2026-12-01T00:00:00Z", "interval": interval_s}),
        );
        self.answer_all();
    }
}

impl Sim {
    pub fn start_session(&mut self, connector: u32, id_tag: &str, meter: MeterReading) {
        let id_tag = id_tag.to_owned();
        self.bay(connector, ConnectorEvent::SessionStarted { id_tag, meter });
    }

    pub fn stop_session(&mut self, connector: u32, meter: MeterReading, reason: StopReason) {
        self.bay(
            connector,
            ConnectorEvent::SessionStopped {
                meter,
                reason,
                id_tag: None,
            },
        );
    }

    /// The bridge restarts: a new charge point from what the caller persisted, `ms` later.
    pub fn restart(&self, ms: u64) -> Self {
        let mut next = Self::with(config(1), self.restored(), self.now.plus_ms(ms));
        next.store = self.store.clone();
        next.open = self.open.clone();
        next
    }

    /// Connects and boots after a restart; the CALLs answered after the boot, statuses left out.
    pub fn reboot_accepted(&mut self) -> Vec<(String, Value)> {
        self.connect();
        self.answer(
            "BootNotification",
            json!({"status": "Accepted", "currentTime": "2026-12-01T00:00:00Z", "interval": 3600}),
        );
        self.answer_all()
            .into_iter()
            .filter(|(action, _)| action != "StatusNotification")
            .collect()
    }
}

pub fn reading(energy_wh: u64, power_w: f64) -> MeterReading {
    MeterReading {
        energy_import_wh: energy_wh,
        power_import_w: Some(power_w),
        current_import_a: [
            Some(power_w / 690.0),
            Some(power_w / 690.0),
            Some(power_w / 690.0),
        ],
        current_offered_a: Some(16.0),
    }
}

pub fn status(status: ctrl22_ocpp::ConnectorStatus) -> ConnectorEvent {
    ConnectorEvent::StatusChanged {
        status,
        error: None,
    }
}

/// GetCompositeSchedule of connector 1 from the start, in A, 32 A where nothing limits.
pub fn composite_query(duration_s: u32) -> ctrl22_ocpp::smart_charging::ScheduleQuery {
    ctrl22_ocpp::smart_charging::ScheduleQuery {
        connector_id: 1,
        from_wall_ms: START_WALL_MS,
        duration_s,
        tx: None,
        unit: rust_ocpp::v1_6::types::ChargingRateUnitType::A,
        volts_per_phase: 230.0,
        unlimited: 32.0,
    }
}
