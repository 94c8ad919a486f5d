//! Errors of building and rendering discovery configs.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DiscoveryError {
    /// Discovery topics, unique ids and entity ids allow `[a-zA-Z0-9_-]` only; anything else
    /// makes Home Assistant ignore the topic or mangle the id.
    #[error("{what} {value:?} may only contain a-z, A-Z, 0-9, '_' and '-'")]
    InvalidId { what: &'static str, value: String },
    #[error("two components of device {device:?} share the key {key:?}")]
    DuplicateKey { device: String, key: String },
    #[error("number range min {min} max {max} step {step}: need min < max and step >= 0.001")]
    InvalidRange { min: f64, max: f64, step: f64 },
    /// Cannot happen for the types of this crate (plain structs of strings and numbers); kept
    /// typed rather than panicking.
    #[error("serialising a discovery payload: {0}")]
    Serialize(#[from] serde_json::Error),
}
