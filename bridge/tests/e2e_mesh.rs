//! End to end over a real Mosquitto: the bridge binary, 20 simulated bays (the real charge
//! controller of `ctrl22-node` with mixed 1- and 3-phase cars), and a watcher that checks
//! SPEC section 4 on every message of the run, independently of the bridge's own logic.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ctrl22_node::mesh::{self, decode_command_mqtt, decode_uplink_mqtt, Address, NodeMessage};
use ctrl22_node::sim::{self, Arrivals, SimConfig, SimWorld};
use ctrl22_node::Ccss;
use ctrl22_testkit::safety::check_wire;
use ctrl22_testkit::{Mosquitto, Recorded, Recorder};

const MESH: &str = "DEMESH";
const LIMIT: [i32; 3] = [320, 320, 320];

fn write_config(dir: &Path, broker: &Mosquitto) -> std::path::PathBuf {
    let path = dir.join("ctrl22.toml");
    let text = format!(
        r#"
[mqtt]
url = "{url}"
client_id = "e2e-bridge"

[mesh]
mesh_id = "{MESH}"
heartbeat_timeout = "3s"
wdtsec = 6
setpoint_refresh = "2s"

[site]
name = "e2e"
max_current = [32, 32, 32]
min_on = "5s"
min_off = "5s"
rotation_period = "20s"

[homeassistant]
enabled = false

[http]
listen = "127.0.0.1:0"

[storage]
path = "{db}"
"#,
        url = broker.url(),
        db = dir.join("e2e.db").display(),
    );
    std::fs::write(&path, text).expect("config written");
    path
}

/// The bridge process, killed when the test ends however it ends.
struct BridgeProcess(Child);

impl BridgeProcess {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn start_bridge(config: &Path) -> BridgeProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_ctrl22-bridge"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("bridge starts");
    BridgeProcess(child)
}

fn heartbeats(messages: &[Recorded]) -> impl Iterator<Item = (usize, NodeMessage)> + '_ {
    messages.iter().enumerate().filter_map(|(i, m)| {
        if !m.topic.ends_with("/heartbeat") {
            return None;
        }
        decode_uplink_mqtt(MESH, &m.topic, &m.payload)
            .ok()
            .map(|(_, msg)| (i, msg))
    })
}

/// Bays charging (C3 with current) in the last `window` heartbeats.
fn charging_bays(messages: &[Recorded]) -> usize {
    let mut latest = std::collections::HashMap::new();
    for m in messages.iter().filter(|m| m.topic.ends_with("/heartbeat")) {
        if let Ok((mac, NodeMessage::Heartbeat(hb))) =
            decode_uplink_mqtt(MESH, &m.topic, &m.payload)
        {
            latest.insert(mac, hb);
        }
    }
    latest
        .values()
        .filter(|hb| hb.ccss == Ccss::C3 && hb.cur.iter().any(|c| c.get() > 10))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_bays_stay_within_the_fuse_through_kill_and_restart() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &broker);
    let watcher = Recorder::connect(broker.port(), "e2e-watcher", &["/DEMESH/#"]).await?;

    let mut bridge = start_bridge(&config);
    let world = SimWorld::new(SimConfig {
        nodes: 20,
        seed: 7,
        heartbeat_ms: 1_000,
        speed: 1.0,
        arrivals: Arrivals::AllPlugged,
        mesh_id: MESH.to_owned(),
    });
    let (stop_sim, sim_stopped) = tokio::sync::oneshot::channel::<()>();
    let url = broker.url();
    let simulator = tokio::spawn(async move {
        sim::run_mqtt(world, &url, MESH, 1.0, async {
            let _ = sim_stopped.await;
        })
        .await
    });

    // Bays start charging once the start-up grace (the heartbeat timeout) is over.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while charging_bays(&watcher.messages()) < 4 {
        if tokio::time::Instant::now() > deadline {
            let messages = watcher.messages();
            let all: Vec<String> = heartbeats(&messages)
                .map(|(i, _)| messages[i].text())
                .collect();
            let states = &all[all.len().saturating_sub(20)..];
            let controls: Vec<String> = messages
                .iter()
                .filter(|m| m.topic.ends_with("/control"))
                .take(30)
                .map(|m| format!("{} {}", m.topic, m.text()))
                .collect();
            panic!("bays did not start charging:\n{states:#?}\n{controls:#?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let before_kill = watcher.messages();
    if let Ok(path) = std::env::var("E2E_WIRE_DUMP") {
        let text: String = before_kill
            .iter()
            .enumerate()
            .map(|(i, m)| format!("#{i} {:?} {} {}\n", m.at, m.topic, m.text()))
            .collect();
        let _ = std::fs::write(path, text);
    }
    let stats = check_wire(MESH, &before_kill, LIMIT).map_err(|v| anyhow::anyhow!("{v}"))?;
    assert!(stats.setpoint_writes > 20, "{stats:?}");

    // Killed without a word: the nodes' watchdogs take them to their fail-safe currents.
    bridge.kill();
    let killed_at = watcher.messages().len();
    // What each node was last told to fall back to.
    let mut fail_safe = std::collections::HashMap::new();
    for m in &before_kill {
        if let Ok((Address::Node(mac), mesh::Command::AvrSetPar { par, val })) =
            decode_command_mqtt(MESH, &m.topic, &m.payload)
        {
            if par.as_str() == "fsafecur" {
                fail_safe.insert(mac, val);
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = watcher.messages();
    let watchdog_due = after[killed_at - 1].at + Duration::from_secs(6 + 3);
    let mut late = 0;
    for m in after[killed_at..].iter().filter(|m| m.at >= watchdog_due) {
        if let Ok((mac, NodeMessage::Heartbeat(hb))) =
            decode_uplink_mqtt(MESH, &m.topic, &m.payload)
        {
            late += 1;
            let allowed = fail_safe.get(&mac).copied().unwrap_or(0);
            assert!(
                hb.amaxcur.get() <= allowed,
                "{} offers {} after its watchdog, fail-safe {allowed}",
                m.topic,
                hb.amaxcur
            );
        }
    }
    assert!(late > 20, "heartbeats continue without the bridge ({late})");
    check_wire(MESH, &after, LIMIT)
        .map_err(|v| anyhow::anyhow!("while the bridge was dead: {v}"))?;

    // A restarted bridge knows nothing and must not overshoot while it learns; paused bays
    // resume after the controller's pause and wait states (10 s each).
    let mut bridge = start_bridge(&config);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    let resumed_from = watcher.messages().len();
    while charging_bays(&watcher.messages()[resumed_from..]) < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bays did not charge again after the restart"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all = watcher.messages();
    if let Ok(path) = std::env::var("E2E_WIRE_DUMP") {
        let text: String = all
            .iter()
            .enumerate()
            .map(|(i, m)| format!("#{i} {:?} {} {}\n", m.at, m.topic, m.text()))
            .collect();
        let _ = std::fs::write(path, text);
    }
    let stats = check_wire(MESH, &all, LIMIT).map_err(|v| anyhow::anyhow!("after restart: {v}"))?;
    eprintln!("wire stats: {stats:?}");

    bridge.kill();
    let _ = stop_sim.send(());
    let _ = simulator.await;
    Ok(())
}
