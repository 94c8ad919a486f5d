//! Our ChargePoint over a real WebSocket against an independent implementation: the PyPI
//! `ocpp` package (JSON schema validation on) as the central system. Boot, heartbeat,
//! statuses through a whole session started remotely, meter values, smart charging,
//! TriggerMessage, GetConfiguration and an unsupported action.
//!
//! The venv is `tests/peer/.venv` (made by `tests/peer/setup.sh` if missing; needs PyPI).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ctrl22_ocpp::{
    ChargePoint, Config, ConnectorEvent, ConnectorStatus, Event, MeterReading, Now, Restored,
    StopReason,
};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the central system; its log lines arrive on the channel, the port comes first.
fn start_central_system() -> (Peer, mpsc::UnboundedReceiver<String>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peer");
    let python = dir.join(".venv/bin/python");
    if !python.exists() {
        let status = Command::new(dir.join("setup.sh"))
            .status()
            .expect("run setup.sh");
        assert!(
            status.success(),
            "tests/peer/setup.sh failed (PyPI reachable?)"
        );
    }
    let mut child = Command::new(python)
        .arg(dir.join("central_system.py"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the central system");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Peer(child), rx)
}

struct Clock(Instant, u64);

impl Clock {
    fn new() -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self(Instant::now(), u64::try_from(wall.as_millis()).unwrap_or(0))
    }
    fn now(&self) -> Now {
        let elapsed = u64::try_from(self.0.elapsed().as_millis()).unwrap_or(0);
        Now {
            mono_ms: elapsed,
            wall_ms: self.1 + elapsed,
        }
    }
}

fn reading(energy_wh: u64) -> MeterReading {
    MeterReading {
        energy_import_wh: energy_wh,
        power_import_w: Some(3_680.0),
        current_import_a: [Some(16.0), None, None],
        current_offered_a: Some(16.0),
    }
}

/// What the bay does once the backend asked for a session, one step every 400 ms.
fn session_script() -> Vec<ConnectorEvent> {
    let status = |status| ConnectorEvent::StatusChanged {
        status,
        error: None,
    };
    vec![
        status(ConnectorStatus::Preparing),
        ConnectorEvent::SessionStarted {
            id_tag: "PYTAG".into(),
            meter: reading(1_000),
        },
        status(ConnectorStatus::Charging),
        ConnectorEvent::MeterSample(reading(1_100)),
        ConnectorEvent::MeterSample(reading(1_200)),
        status(ConnectorStatus::SuspendedEVSE),
        ConnectorEvent::MeterSample(reading(1_200)),
        status(ConnectorStatus::Charging),
        ConnectorEvent::MeterSample(reading(1_350)),
        ConnectorEvent::SessionStopped {
            meter: reading(1_400),
            reason: StopReason::Local,
            id_tag: None,
        },
        status(ConnectorStatus::Finishing),
        status(ConnectorStatus::Available),
    ]
}

#[tokio::test(flavor = "current_thread")]
async fn python_ocpp_central_system_runs_a_whole_session() {
    let (_peer, mut lines) = start_central_system();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.recv())
        .await
        .expect("central system starts")
        .expect("port line");
    let port = first
        .strip_prefix("PORT ")
        .expect("PORT line first")
        .trim()
        .to_owned();
    let mut request = format!("ws://127.0.0.1:{port}/CP1")
        .into_client_request()
        .expect("url");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "ocpp1.6".parse().expect("header"));
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some("ocpp1.6")
    );
    let (mut sink, mut stream) = ws.split();

    let clock = Clock::new();
    let restored = Restored {
        configuration: vec![("MeterValueSampleInterval".into(), "1".into())],
        ..Restored::default()
    };
    let mut cp = ChargePoint::new(Config::new("CTRL22", "bay", 1), restored);
    cp.handle_connected(clock.now());

    let mut log: Vec<Value> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut script = session_script().into_iter();
    let mut next_step: Option<Instant> = None;
    let mut finished_at: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        while let Some(text) = cp.poll_transmit() {
            sink.send(Message::text(text)).await.expect("send");
        }
        while let Some(event) = cp.poll_event() {
            if matches!(
                event,
                Event::RemoteStartRequested {
                    connector_id: 1,
                    ..
                }
            ) {
                next_step = Some(Instant::now());
            }
            events.push(event);
        }
        let stopped = log.iter().any(|l| l["action"] == "StopTransaction");
        let script_done = log.iter().any(|l| l["kind"] == "done");
        if stopped && script_done && finished_at.is_none() && cp.queued_transaction_messages() == 0
        {
            // Idle for a while: heartbeats (interval 2 s) must come.
            finished_at = Some(Instant::now() + Duration::from_millis(4_500));
        }
        if finished_at.is_some_and(|at| Instant::now() >= at) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out; central system log: {log:#?}\nevents: {events:#?}"
        );
        let timer = cp
            .poll_timeout()
            .map(|due| clock.0 + Duration::from_millis(due))
            .into_iter()
            .chain(next_step)
            .chain(finished_at)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_millis(200));
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => cp.handle_frame(clock.now(), text.as_str()),
                Some(Ok(Message::Close(_))) | None => panic!("central system closed; log: {log:#?}"),
                Some(Ok(_)) => {}
                Some(Err(err)) => panic!("websocket: {err}"),
            },
            line = lines.recv() => {
                let line = line.expect("central system alive");
                log.push(serde_json::from_str(&line).unwrap_or(Value::String(line)));
            }
            () = tokio::time::sleep_until(timer.into()) => {
                let now = clock.now();
                cp.handle_timeout(now);
                if next_step.is_some_and(|at| Instant::now() >= at) {
                    match script.next() {
                        Some(step) => {
                            cp.on_connector_event(now, 1, step);
                            next_step = Some(Instant::now() + Duration::from_millis(400));
                        }
                        None => next_step = None,
                    }
                }
            }
        }
    }

    let received = |action: &str| -> Vec<&Value> {
        log.iter()
            .filter(|l| l["kind"] == "recv" && l["action"] == action)
            .map(|l| &l["payload"])
            .collect()
    };
    let result = |action: &str| -> &Value {
        log.iter()
            .find(|l| l["action"] == action && l["kind"] != "recv")
            .map(|l| &l["payload"])
            .unwrap_or_else(|| panic!("no {action} in {log:#?}"))
    };
    assert_eq!(log[0]["payload"]["subprotocol"], "ocpp1.6");
    assert_eq!(received("BootNotification").len(), 1);
    assert!(!received("Heartbeat").is_empty(), "heartbeats: {log:#?}");
    // Statuses of connector 1, in order, through the whole session.
    let statuses: Vec<&str> = received("StatusNotification")
        .iter()
        .filter(|p| p["connector_id"] == 1)
        .filter_map(|p| p["status"].as_str())
        .collect();
    let wanted = [
        "Preparing",
        "Charging",
        "SuspendedEVSE",
        "Charging",
        "Finishing",
        "Available",
    ];
    let mut rest = statuses.iter();
    for status in wanted {
        assert!(
            rest.any(|s| *s == status),
            "{status} missing in order from {statuses:?}"
        );
    }
    let start = received("StartTransaction");
    assert_eq!(start.len(), 1);
    assert_eq!(start[0]["meter_start"], 1_000);
    assert_eq!(start[0]["id_tag"], "PYTAG");
    let stop = received("StopTransaction");
    assert_eq!(stop.len(), 1);
    assert_eq!(stop[0]["transaction_id"], 42);
    assert_eq!(stop[0]["meter_stop"], 1_400);
    let energies: Vec<u64> = received("MeterValues")
        .iter()
        .filter(|p| p["transaction_id"] == 42)
        .flat_map(|p| p["meter_value"].as_array().cloned().unwrap_or_default())
        .flat_map(|mv| mv["sampled_value"].as_array().cloned().unwrap_or_default())
        .filter(|sv| sv["measurand"] == "Energy.Active.Import.Register")
        .filter_map(|sv| sv["value"].as_str().and_then(|v| v.parse().ok()))
        .collect();
    assert!(!energies.is_empty(), "transaction meter values: {log:#?}");
    assert!(
        energies.windows(2).all(|w| w[0] <= w[1]),
        "monotonic: {energies:?}"
    );
    assert!(
        energies.iter().all(|e| (1_000..=1_400).contains(e)),
        "{energies:?}"
    );
    // The backend's calls: answered, and our answers passed its schema validation.
    assert_eq!(result("TriggerMessage")["status"], "Accepted");
    assert_eq!(result("UpdateFirmware"), "answered with a CALLRESULT");
    assert_eq!(result("SetChargingProfile")["status"], "Accepted");
    assert_eq!(result("GetCompositeSchedule")["status"], "Accepted");
    assert_eq!(result("RemoteStartTransaction")["status"], "Accepted");
    let keys = result("GetConfiguration")["configuration_key"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(keys.len(), 2);
    assert!(events.iter().any(|e| matches!(e, Event::ChargingLimitChanged { connector_id: 1, limit: Some(l) } if l.current_a == Some(10.0))));
    // Nothing of ours was refused by the backend's schema validation.
    assert_eq!(cp.counters().failed_calls, 0, "{log:#?}");
    assert_eq!(cp.counters().calls_refused, 0, "{log:#?}");
}
