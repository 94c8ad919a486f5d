//! What the Home Assistant tests share: a bridge configuration with fast timings, the bridge
//! process, and simulated bays on the broker.

use std::path::{Path, PathBuf};

use ctrl22_node::sim::{self, Arrivals, SimConfig, SimWorld};
use ctrl22_testkit::bridge::{BridgeConfig, BridgeProcess, HomeAssistant};
use ctrl22_testkit::Mosquitto;

pub const MESH: &str = "DEMESH";
pub const PREFIX: &str = "homeassistant";

/// Writes a configuration for site `site` on a 3x63 A fuse with `[homeassistant] discovery =
/// mode`.
pub fn write_config(
    dir: &Path,
    broker: &Mosquitto,
    site: &str,
    mode: &str,
) -> anyhow::Result<PathBuf> {
    BridgeConfig {
        mesh_id: MESH.to_owned(),
        max_current_amps: [63; 3],
        site_name: site.to_owned(),
        min_on_off_s: 2,
        homeassistant: Some(HomeAssistant {
            discovery_prefix: PREFIX.to_owned(),
            discovery: mode.to_owned(),
        }),
        ..BridgeConfig::new(broker.url())
    }
    .write(dir)
}

/// The bridge process, killed when the test ends however it ends.
pub fn start_bridge(config: &Path) -> anyhow::Result<BridgeProcess> {
    BridgeProcess::start(Path::new(env!("CARGO_BIN_EXE_ctrl22-bridge")), config)
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
