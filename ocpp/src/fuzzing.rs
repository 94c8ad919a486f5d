//! The body of the fuzz target `ocpp_frames` (the repository's `fuzz/` crate) and of its
//! corpus replay (`tests/fuzz_corpus.rs`): one function, so the fuzzer and `cargo test` check
//! the same things. Not part of the API.

use serde_json::Value;

use crate::rpc::{parse_frame, Frame, MAX_MESSAGE_ID_LEN};
use crate::session::Registration;
use crate::{ChargePoint, Config, ConnectorEvent, MeterReading, Now, Restored};

/// 2026-12-01T00:00:00Z, the wall clock at the start of every run.
const START_WALL_MS: u64 = 1_796_083_200_000;

/// How far both clocks move between two frames: timers (heartbeat, response timeout,
/// sampling) fire along the way.
const STEP_MS: u64 = 7_000;

/// Feeds `data`, cut at `\n` into text frames (invalid UTF-8 replaced), to a charge point that
/// has booted (accepted) and runs a transaction on connector 1. Panics (the fuzzer's finding)
/// when the charge point panics, sends something that is not a JSON array, or does not answer
/// a frame that expects an answer exactly once.
pub fn frames(data: &[u8]) {
    let mut now = Now {
        mono_ms: 1_000,
        wall_ms: START_WALL_MS,
    };
    let mut config = Config::new("CTRL22", "fuzz", 2);
    config.message_id_prefix = "f".to_owned();
    let mut cp = ChargePoint::new(config, Restored::default());
    cp.handle_connected(now);
    answer_calls(&mut cp, now);
    assert_eq!(cp.registration(), Registration::Accepted, "boot sequence");
    cp.on_connector_event(
        now,
        1,
        ConnectorEvent::SessionStarted {
            id_tag: "FUZZ".to_owned(),
            meter: MeterReading::default(),
        },
    );
    answer_calls(&mut cp, now);

    for line in data.split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let answer_id = expected_answer(&text);
        let may_answer = !matches!(cp.registration(), Registration::Rejected { .. });
        cp.handle_frame(now, &text);
        let sent = drain(&mut cp);
        if let (Some(id), true) = (&answer_id, may_answer) {
            let answers = sent
                .iter()
                .filter(|frame| {
                    matches!(frame[0].as_u64(), Some(3 | 4)) && frame[1].as_str() == Some(id)
                })
                .count();
            assert_eq!(answers, 1, "{text:?} answered {answers} times: {sent:?}");
        }
        now = now.plus_ms(STEP_MS);
        cp.handle_timeout(now);
        drain(&mut cp);
    }
}

/// The id the peer waits for an answer to: the charge point's own decoder decides, and a
/// frame that plainly is a CALL (`[2, "<id>", ...]` with a usable id) always needs one.
fn expected_answer(text: &str) -> Option<String> {
    let decoded = match parse_frame(text) {
        Ok(Frame::Call { id, .. }) => Some(id),
        Ok(_) => None,
        Err(bad) => bad.answer_id,
    };
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) {
        if let (Some(2), Some(id)) = (items.first().and_then(Value::as_u64), items.get(1)) {
            if let Some(id) = id
                .as_str()
                .filter(|id| (1..=MAX_MESSAGE_ID_LEN).contains(&id.len()))
            {
                assert_eq!(
                    decoded.as_deref(),
                    Some(id),
                    "a CALL left unanswered: {text}"
                );
            }
        }
    }
    decoded
}

/// Everything the charge point has to send, as JSON (it must send nothing else); events are
/// taken too, so nothing piles up.
fn drain(cp: &mut ChargePoint) -> Vec<Value> {
    let mut sent = Vec::new();
    while let Some(text) = cp.poll_transmit() {
        let frame: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the charge point sent {text:?}, not JSON: {e}"));
        assert!(frame.is_array(), "the charge point sent {text}");
        sent.push(frame);
    }
    while cp.poll_event().is_some() {}
    sent
}

/// Answers the charge point's CALLs the way a willing backend does, until it sends none.
fn answer_calls(cp: &mut ChargePoint, now: Now) {
    loop {
        let calls = drain(cp);
        if calls.is_empty() {
            return;
        }
        for call in calls {
            let id = call[1].as_str().unwrap_or_default();
            let payload = match call[2].as_str() {
                Some("BootNotification") => serde_json::json!({
                    "status": "Accepted", "currentTime": "2026-12-01T00:00:00Z", "interval": 60
                }),
                Some("StartTransaction") => serde_json::json!({
                    "transactionId": 1, "idTagInfo": {"status": "Accepted"}
                }),
                Some("Authorize") => serde_json::json!({"idTagInfo": {"status": "Accepted"}}),
                _ => serde_json::json!({}),
            };
            let answer = serde_json::json!([3, id, payload]).to_string();
            cp.handle_frame(now, &answer);
        }
    }
}
