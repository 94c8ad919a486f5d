//! `[ocpp]`: the OCPP 1.6-J backend the bays report to.

use serde::{Deserialize, Serialize};

/// How bays map onto OCPP charge points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OcppLayout {
    /// One charge point (one WebSocket) per bay, one connector each.
    #[default]
    PerBay,
    /// One charge point for the site with one connector per bay.
    Single,
}

/// `[ocpp]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcppConfig {
    pub enabled: bool,
    /// The backend's `ws://` or `wss://` URL; the identity is appended as the last path segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Charge point identity; `{dev}` is replaced by the bay's MAC in topic form and `{site}`
    /// by `site.name`.
    pub identity: String,
    pub layout: OcppLayout,
    /// OCPP security profile: 0 none, 1 basic auth, 2 basic auth over TLS, 3 client certificate.
    pub security_profile: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl Default for OcppConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: None,
            identity: "{dev}".into(),
            layout: OcppLayout::PerBay,
            security_profile: 0,
            password: None,
        }
    }
}
