//! Payloads: strict when sending, lenient when reading.
//!
//! Real backends send `300.0` for integer fields and timestamps without a zone, which
//! `rust-ocpp`'s types refuse; [`decode`] repairs both before deserialising and sorts what
//! still fails into the OCPP-J error code to answer with.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Number, Value};

use super::frame::ErrorCode;

/// Why a payload could not be read: the code and a short description for the CALLERROR.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {description}")]
pub struct DecodeError {
    pub code: ErrorCode,
    pub description: String,
}

/// Deserialises `payload` into `T` after the lenient repairs.
pub fn decode<T: DeserializeOwned>(payload: Value) -> Result<T, DecodeError> {
    if !payload.is_object() {
        return Err(DecodeError {
            code: ErrorCode::FormationViolation,
            description: "payload is not a JSON object".to_owned(),
        });
    }
    serde_json::from_value(repair(payload)).map_err(|err| {
        let text = err.to_string();
        let code = if text.starts_with("missing field") {
            ErrorCode::OccurenceConstraintViolation
        } else if text.starts_with("invalid type") {
            ErrorCode::TypeConstraintViolation
        } else if text.starts_with("unknown variant")
            || text.starts_with("invalid value")
            || text.starts_with("premature end")
            || text.contains("input contains invalid characters")
        {
            ErrorCode::PropertyConstraintViolation
        } else {
            ErrorCode::FormationViolation
        };
        DecodeError {
            code,
            description: text.chars().take(200).collect(),
        }
    })
}

/// Serialises a message type (never fails for `rust-ocpp`'s types; `{}` if it did).
#[must_use]
pub fn encode<T: Serialize>(message: &T) -> Value {
    serde_json::to_value(message).unwrap_or_else(|_| Value::Object(serde_json::Map::new()))
}

/// Integral floats become integers, zone-less timestamps become UTC.
fn repair(value: Value) -> Value {
    match value {
        Value::Number(number) => Value::Number(integral(number)),
        Value::String(text) => Value::String(with_zone(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(repair).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, repair(v))).collect()),
        other @ (Value::Null | Value::Bool(_)) => other,
    }
}

fn integral(number: Number) -> Number {
    // Within ±2^53 an f64 is exact, so the integer is the value the peer meant.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match number.as_f64() {
        Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() <= EXACT =>
        {
            #[allow(clippy::cast_possible_truncation)]
            Number::from(float as i64)
        }
        _ => number,
    }
}

/// `2024-05-01T12:00:00` or `2024-05-01T12:00` (no zone) is read as UTC.
fn with_zone(text: String) -> String {
    let bytes = text.as_bytes();
    let looks_like_date_time = bytes.len() >= 16
        && bytes.len() <= 32
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'T' | b'.'));
    if !looks_like_date_time || text[11..].contains('-') {
        return text;
    }
    if bytes.len() == 16 {
        format!("{text}:00Z")
    } else {
        format!("{text}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_floats_and_zones() {
        let fixed = repair(serde_json::json!({
            "interval": 300.0, "limit": 6.5, "at": "2024-05-01T12:00:00", "short": "2024-05-01T12:00",
            "zoned": "2024-05-01T12:00:00+02:00", "name": "plain"
        }));
        assert_eq!(fixed["interval"], serde_json::json!(300));
        assert_eq!(fixed["limit"], serde_json::json!(6.5));
        assert_eq!(fixed["at"], "2024-05-01T12:00:00Z");
        assert_eq!(fixed["short"], "2024-05-01T12:00:00Z");
        assert_eq!(fixed["zoned"], "2024-05-01T12:00:00+02:00");
        assert_eq!(fixed["name"], "plain");
    }
}
