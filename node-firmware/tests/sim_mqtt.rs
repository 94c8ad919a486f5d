//! End to end with real parts: a Mosquitto broker, the `ctrl22-node-sim` binary with 5 bays,
//! and a test client acting as the host. The client starts every bay, allocates current, sees
//! the bays charge under the setpoint, then goes silent and sees the setpoint watchdog drop
//! every bay to its fail-safe current.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ctrl22_node::mesh::{decode_uplink_mqtt, Heartbeat, MacAddr, NodeMessage};
use ctrl22_node::{CcssGroup, Deciamps};
use ctrl22_testkit::{Mosquitto, Recorder};

const MESH: &str = "DEMESH";
const BAYS: usize = 5;
const SETPOINT: i16 = 130;
const FAIL_SAFE: i16 = 60;

/// Kills the simulator when the test ends, however it ends.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim(args: &[&str]) -> Sim {
    let child = Command::new(env!("CARGO_BIN_EXE_ctrl22-node-sim"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Sim(child)
}

fn decoded(recorder: &Recorder, from: usize) -> Vec<(MacAddr, NodeMessage)> {
    recorder
        .messages()
        .iter()
        .skip(from)
        .filter_map(|m| decode_uplink_mqtt(MESH, &m.topic, &m.payload).ok())
        .collect()
}

/// Polls until `done` holds for the messages recorded since `from`.
async fn wait_until(
    recorder: &Recorder,
    from: usize,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&[(MacAddr, NodeMessage)]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if done(&decoded(recorder, from)) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sets a parameter on every bay and waits for all of them to acknowledge it with `ok`.
async fn set_everywhere(recorder: &Recorder, par: &str, val: i16) {
    let from = recorder.messages().len();
    let body = format!(r#"{{"cmd":"avrsetpar","avrpar":"{par}","avrval":{val}}}"#);
    recorder
        .publish(&format!("/{MESH}/*/control"), body)
        .await
        .unwrap();
    wait_until(recorder, from, Duration::from_secs(10), par, |msgs| {
        let oks = msgs
            .iter()
            .filter(|(_, m)| *m == NodeMessage::AvrSetPar { ok: true })
            .count();
        assert!(
            !msgs
                .iter()
                .any(|(_, m)| *m == NodeMessage::AvrSetPar { ok: false }),
            "{par} refused"
        );
        oks >= BAYS
    })
    .await;
}

fn latest_heartbeats(msgs: &[(MacAddr, NodeMessage)]) -> HashMap<MacAddr, Heartbeat> {
    msgs.iter()
        .filter_map(|(mac, m)| match m {
            NodeMessage::Heartbeat(hb) => Some((*mac, *hb)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bays_charge_under_the_setpoint_and_fall_back_when_the_host_goes_silent() {
    let broker = Mosquitto::start().unwrap();
    let recorder = Recorder::connect(
        broker.port(),
        "sim-test-host",
        &[
            &format!("/{MESH}/+/heartbeat"),
            &format!("/{MESH}/+/acknowledge"),
        ],
    )
    .await
    .unwrap();
    let url = broker.url();
    let _sim = start_sim(&[
        "--broker",
        &url,
        "--nodes",
        "5",
        "--heartbeat",
        "1000",
        "--seed",
        "11",
        "--speed",
        "10",
        "--arrivals",
        "all-plugged",
    ]);

    wait_until(
        &recorder,
        0,
        Duration::from_secs(20),
        "5 bays online",
        |msgs| latest_heartbeats(msgs).len() == BAYS,
    )
    .await;

    // 1 s of wall time is 10 s simulated: a 10 s watchdog needs a setpoint every 0.2 s.
    set_everywhere(&recorder, "wdtsec", 10).await;
    set_everywhere(&recorder, "fsafecur", FAIL_SAFE).await;
    set_everywhere(&recorder, "phases", 123).await;
    set_everywhere(&recorder, "smaxcur", SETPOINT).await;
    let allocated_from = recorder.messages().len();
    let feeder = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            let body = format!(r#"{{"cmd":"avrsetpar","avrpar":"smaxcur","avrval":{SETPOINT}}}"#);
            loop {
                let _ = recorder
                    .publish(&format!("/{MESH}/*/control"), body.clone())
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    set_everywhere(&recorder, "opbutton", 1).await;

    wait_until(
        &recorder,
        allocated_from,
        Duration::from_secs(30),
        "every bay charging (ccss 3x)",
        |msgs| {
            let latest = latest_heartbeats(msgs);
            latest.len() == BAYS
                && latest
                    .values()
                    .all(|hb| hb.ccss.group() == CcssGroup::C && hb.cur.iter().any(|c| c.get() > 0))
        },
    )
    .await;
    for (mac, hb) in latest_heartbeats(&decoded(&recorder, allocated_from)) {
        assert_eq!(
            hb.amaxcur,
            Deciamps(SETPOINT).min(hb.cmaxcur),
            "{mac} {hb:?}"
        );
    }
    let charging = decoded(&recorder, allocated_from);
    for (mac, msg) in &charging {
        if let NodeMessage::Heartbeat(hb) = msg {
            assert!(hb.amaxcur <= Deciamps(SETPOINT), "{mac} {hb:?}");
            assert!(
                hb.cur.iter().all(|c| *c <= Deciamps(SETPOINT)),
                "{mac} {hb:?}"
            );
        }
    }

    // The host goes silent: within wdtsec every bay falls back to fsafecur.
    feeder.abort();
    let silent_from = recorder.messages().len();
    wait_until(
        &recorder,
        silent_from,
        Duration::from_secs(20),
        "every bay at fsafecur",
        |msgs| {
            let latest = latest_heartbeats(msgs);
            latest.len() == BAYS
                && latest.values().all(|hb| {
                    hb.amaxcur == Deciamps(FAIL_SAFE)
                        && hb.cur.iter().all(|c| *c <= Deciamps(FAIL_SAFE))
                })
        },
    )
    .await;
}

#[test]
fn without_broker_or_uplink_the_cli_exits_2() {
    let status = Command::new(env!("CARGO_BIN_EXE_ctrl22-node-sim"))
        .args(["--nodes", "3"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let status = Command::new(env!("CARGO_BIN_EXE_ctrl22-node-sim"))
        .args(["--broker", "mqtts://x", "--nodes", "3"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let status = Command::new(env!("CARGO_BIN_EXE_ctrl22-node-sim"))
        .args([
            "--broker",
            "mqtt://127.0.0.1:1",
            "--mesh-id",
            "a/b",
            "--nodes",
            "3",
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
}
