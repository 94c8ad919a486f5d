//! What the Home Assistant tests share: a bridge configuration with fast timings and the
//! bridge process.

use std::path::{Path, PathBuf};

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
