//! `[mqtt]`: the broker the bridge (and, with `mesh.transport = "mqtt"`, the mesh root) uses.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[mqtt]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://host[:port]` or `mqtts://host[:port]` (TLS with the platform's root certificates).
    pub url: String,
    /// With `embedded`: the one user the embedded broker accepts (with `password`); without
    /// both the embedded broker is open to anyone who can reach its port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub client_id: String,
    /// PEM file with extra CA certificates to trust for `mqtts://` (self-signed brokers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Run an embedded broker listening here (standalone sites without Home Assistant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedded: Option<SocketAddr>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            username: None,
            password: None,
            client_id: "ctrl22-bridge".into(),
            ca_file: None,
            embedded: None,
        }
    }
}
