//! A bridge on a real Mosquitto with a watcher on the mesh: the setup the mesh tests share.

use std::path::PathBuf;

use ctrl22_testkit::bridge::{BridgeConfig, BridgeProcess};
use ctrl22_testkit::scenario::Wire;
use ctrl22_testkit::{Mosquitto, Recorded, Recorder};

/// The broker, the bridge's written configuration and a recorder of every mesh message.
pub struct MqttSite {
    pub broker: Mosquitto,
    pub bridge_config: BridgeConfig,
    pub config: PathBuf,
    pub mesh: String,
    pub watcher: Recorder,
    _dir: tempfile::TempDir,
}

impl MqttSite {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_configured(|_| {}).await
    }

    /// Like [`MqttSite::start`], with `configure` changing the bridge's configuration.
    pub async fn start_configured(
        configure: impl FnOnce(&mut BridgeConfig),
    ) -> anyhow::Result<Self> {
        let broker = Mosquitto::start()?;
        let dir = tempfile::tempdir()?;
        let mut bridge_config = BridgeConfig::new(broker.url());
        configure(&mut bridge_config);
        let config = bridge_config.write(dir.path())?;
        let mesh = bridge_config.mesh_id.clone();
        let watcher = Recorder::connect(broker.port(), "e2e-watcher", &["/DEMESH/#"]).await?;
        Ok(Self {
            broker,
            bridge_config,
            config,
            mesh,
            watcher,
            _dir: dir,
        })
    }

    /// Starts (or restarts) the bridge binary on this site's configuration.
    pub fn bridge(&self) -> anyhow::Result<BridgeProcess> {
        BridgeProcess::start(crate::bridge_binary(), &self.config)
    }

    /// The independent wire check over everything the watcher recorded.
    pub fn wire(&self) -> Wire<impl Fn() -> Vec<Recorded> + '_> {
        Wire::new(&self.mesh, self.bridge_config.limit_deciamps(), || {
            self.watcher.messages()
        })
    }
}
