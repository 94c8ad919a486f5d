//! `[ocpp]`: the OCPP 1.6-J backend the bays report to.

use std::path::PathBuf;
use std::time::Duration;

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

/// Who lets a plugged car charge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OcppAuthorization {
    /// The bay starts a plugged car at once; the transaction carries `ocpp.id_tag`.
    #[default]
    Free,
    /// A plugged car waits (Preparing) until the backend starts it (RemoteStartTransaction).
    Backend,
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
    /// The basic-auth password (profiles 1 and 2); the user is the charge point's identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// PEM CA certificates that sign the backend's certificate (`wss://`); without it, the
    /// operating system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and its key (profile 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// BootNotification's `chargePointVendor` (at most 20 characters).
    pub vendor: String,
    /// BootNotification's `chargePointModel` (at most 20 characters).
    pub model: String,
    /// The idTag of sessions started at the bay (free charging); sessions the backend starts
    /// (RemoteStartTransaction) carry the backend's tag.
    pub id_tag: String,
    /// Free charging or start only when the backend says so.
    pub authorization: OcppAuthorization,
    /// `MeterValueSampleInterval` until the backend changes it (0 = no sampled meter values).
    #[serde(with = "humantime_serde")]
    pub meter_value_sample_interval: Duration,
    /// The longest wait between reconnection attempts (exponential back-off with full jitter
    /// up to this).
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
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
            ca_file: None,
            client_cert: None,
            client_key: None,
            vendor: "CTRL22".into(),
            model: "CTRL22 bay".into(),
            id_tag: "CTRL22".into(),
            authorization: OcppAuthorization::Free,
            meter_value_sample_interval: Duration::from_secs(60),
            reconnect_max: Duration::from_secs(300),
        }
    }
}
