//! Why a source gave no usable reading, as a type: the poller counts errors by
//! [`SourceError::kind`] for `/metrics` and hands the text to the core, which then drops
//! whatever the source contributed (the solar budget falls, nothing rises).

use std::time::Duration;

/// One failed reading.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SourceError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("no message for {0:?}")]
    Stale(Duration),
    #[error("cannot reach the device: {0}")]
    Connect(String),
    #[error("the device refused the credentials (HTTP {0})")]
    Unauthorized(u16),
    #[error("the device answered HTTP {0}")]
    Status(u16),
    #[error("the answer is an HTML page, not JSON (a login or error page?)")]
    Html,
    #[error("the answer is not JSON: {0}")]
    NotJson(String),
    #[error("{0} is missing from the answer")]
    Missing(String),
    #[error("{0} is not a number")]
    NotNumber(String),
    #[error("{field} = {value} is not plausible ({why})")]
    Absurd {
        field: &'static str,
        value: f64,
        why: &'static str,
    },
    #[error("the device reports no value: {0}")]
    Unavailable(String),
    #[error("malformed answer: {0}")]
    Malformed(String),
    #[error("modbus: {0}")]
    Modbus(String),
}

impl SourceError {
    /// The label of `ctrl22_solar_errors_total{kind}`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Stale(_) => "stale",
            Self::Connect(_) => "connect",
            Self::Unauthorized(_) => "unauthorized",
            Self::Status(_) => "status",
            Self::Html | Self::NotJson(_) => "not_json",
            Self::Missing(_) => "missing",
            Self::NotNumber(_) => "not_number",
            Self::Absurd { .. } => "absurd",
            Self::Unavailable(_) => "unavailable",
            Self::Malformed(_) => "malformed",
            Self::Modbus(_) => "modbus",
        }
    }
}
