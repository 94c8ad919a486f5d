//! `[homeassistant]`: MQTT discovery of the bays and the site in Home Assistant.

use serde::{Deserialize, Serialize};

/// Home Assistant discovery layout: `device` (one `device/<id>/config` per bay and one for the
/// site, Home Assistant 2024.11+) or `entity` (one config topic per entity, older versions).
pub use ctrl22_ha::DiscoveryMode;

/// `[homeassistant]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HomeAssistantConfig {
    pub enabled: bool,
    pub discovery_prefix: String,
    pub discovery: DiscoveryMode,
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            discovery_prefix: "homeassistant".into(),
            discovery: DiscoveryMode::Device,
        }
    }
}
