//! What the Home Assistant tests share: a bridge configuration with fast timings, the bridge
//! process, and simulated bays on the broker.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ctrl22_node::sim::{self, Arrivals, SimConfig, SimWorld};
use ctrl22_testkit::{free_port, Mosquitto};

pub const MESH: &str = "DEMESH";
pub const PREFIX: &str = "homeassistant";

/// Writes a configuration for site `site` with `[homeassistant] discovery = mode`.
pub fn write_config(
    dir: &Path,
    broker: &Mosquitto,
    site: &str,
    mode: &str,
) -> anyhow::Result<PathBuf> {
    let path = dir.join("ctrl22.toml");
    let text = format!(
        r#"
[mqtt]
url = "{url}"
client_id = "{site}-bridge"

[mesh]
mesh_id = "{MESH}"
heartbeat_timeout = "3s"
wdtsec = 6
setpoint_refresh = "2s"

[site]
name = "{site}"
max_current = [63, 63, 63]
min_on = "2s"
min_off = "2s"
rotation_period = "20s"

[homeassistant]
enabled = true
discovery_prefix = "{PREFIX}"
discovery = "{mode}"

[http]
listen = "127.0.0.1:{http}"

[storage]
path = "{db}"
"#,
        url = broker.url(),
        http = free_port()?,
        db = dir.join("ctrl22.db").display(),
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The bridge process, killed when the test ends however it ends.
pub struct Bridge(pub Child);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_bridge(config: &Path) -> anyhow::Result<Bridge> {
    Ok(Bridge(
        Command::new(env!("CARGO_BIN_EXE_ctrl22-bridge"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?,
    ))
}

/// `bays` simulated bays with a car each, heartbeats every second; stopped on drop.
pub struct Simulator {
    pub devs: Vec<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Simulator {
    pub fn start(broker: &Mosquitto, bays: usize, seed: u64) -> Self {
        let world = SimWorld::new(SimConfig {
            nodes: bays,
            seed,
            heartbeat_ms: 1_000,
            speed: 1.0,
            arrivals: Arrivals::AllPlugged,
            mesh_id: MESH.to_owned(),
        });
        let devs = world.macs().map(|m| m.topic_form().to_string()).collect();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let url = broker.url();
        tokio::spawn(async move {
            sim::run_mqtt(world, &url, MESH, 1.0, async {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            devs,
            stop: Some(stop),
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
