//! The bridge's configuration: one TOML file, every key overridable by an environment variable
//! `CTRL22_<SECTION>__<KEY>` (e.g. `CTRL22_SITE__MAX_CURRENT="[25,25,25]"`).
//!
//! Loading happens in two steps ([`load`]): serde (through figment) checks shapes and rejects
//! unknown keys, then [`Config::validate`] ([`validate`]) checks what serde cannot (limits,
//! phase rotations, MAC addresses, the circuit tree, URL schemes). Every error names the key it
//! is about, because an operator reading `exit 2` needs to know which line of the file to fix;
//! no error, log line or `check-config` output shows a secret ([`redact`]).
//!
//! One file per section: [`mqtt`], [`mesh`], [`site`], [`nodes`], [`solar`],
//! [`homeassistant`], [`ocpp`], [`http`], [`storage`], [`firmware`].

mod amps;
mod error;
pub mod firmware;
pub mod homeassistant;
pub mod http;
mod load;
pub mod mesh;
pub mod mqtt;
pub mod nodes;
pub mod ocpp;
pub mod redact;
pub mod site;
pub mod solar;
pub mod storage;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::bay::BayId;

pub use error::{ConfigError, Invalid};
pub use firmware::FirmwareConfig;
pub use homeassistant::{DiscoveryMode, HomeAssistantConfig};
pub use http::HttpConfig;
pub use load::ENV_PREFIX;
pub use mesh::{MeshConfig, MeshTransport};
pub use mqtt::MqttConfig;
pub use nodes::{NodeConfig, PhaseRotation};
pub use ocpp::{OcppAuthorization, OcppConfig, OcppLayout};
pub use redact::REDACTED;
pub use site::{ChargeMode, CircuitConfig, SiteConfig, Strategy};
pub use solar::{LimitUnit, Measure, OnStale, SolarConfig, SolarKind, SolarSourceConfig};
pub use storage::StorageConfig;

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub mqtt: MqttConfig,
    pub mesh: MeshConfig,
    pub site: SiteConfig,
    /// Per-bay settings, keyed by the node's MAC in topic form (`d8a01d55a710`); the colon form
    /// is accepted in the file and normalised by [`Config::load`].
    pub nodes: BTreeMap<String, NodeConfig>,
    pub solar: SolarConfig,
    pub homeassistant: HomeAssistantConfig,
    pub ocpp: OcppConfig,
    pub http: HttpConfig,
    pub storage: StorageConfig,
    pub firmware: FirmwareConfig,
}

impl Config {
    /// The settings of one bay, if the file has any.
    #[must_use]
    pub fn node(&self, bay: &BayId) -> Option<&NodeConfig> {
        self.nodes.get(&bay.0)
    }
}

/// The flags of `ctrl22-bridge demo`.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoArgs {
    /// Number of simulated bays.
    pub nodes: u32,
    /// Where the HTTP API and dashboard listen.
    pub http: SocketAddr,
    /// Simulation time factor (2.0 = twice as fast as real time).
    pub speed: f64,
    /// Where the embedded broker listens; none = a free port.
    pub mqtt_listen: Option<SocketAddr>,
}
