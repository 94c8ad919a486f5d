//! A Home Assistant entity, `GET <url>/api/states/<entity_id>` with
//! `Authorization: Bearer <long-lived token>` (HA developer docs, REST API).
//!
//! `state` is a string, `"unknown"` or `"unavailable"` when the sensor has no value: a typed
//! error, never 0. Power is scaled by `attributes.unit_of_measurement` (W, kW, MW, as evcc's
//! `util/homeassistant` does); a binary sensor or switch says `on` / `off`.

use serde_json::Value;

use super::error::SourceError;
use super::json;
use super::value::Value as Single;

/// The request path for an entity.
#[must_use]
pub fn path(entity: &str) -> String {
    format!("/api/states/{entity}")
}

/// Parses a state answer into one value.
///
/// # Errors
/// Not JSON, no `state`, a state of `unknown`/`unavailable`, or neither a number nor on/off.
pub fn parse(body: &[u8]) -> Result<Single, SourceError> {
    let doc = json::parse(body)?;
    let state = json::get(&doc, "/state")
        .and_then(Value::as_str)
        .ok_or_else(|| SourceError::Missing("state".into()))?;
    match state {
        "unknown" | "unavailable" => {
            return Err(SourceError::Unavailable(format!("state is {state:?}")));
        }
        "on" => return Ok(Single::On(true)),
        "off" => return Ok(Single::On(false)),
        _ => {}
    }
    let number: f64 = state
        .trim()
        .parse()
        .map_err(|_| SourceError::NotNumber(format!("state {state:?}")))?;
    let scale = match json::get(&doc, "/attributes/unit_of_measurement").and_then(Value::as_str) {
        Some("kW") => 1e3,
        Some("MW") => 1e6,
        _ => 1.0,
    };
    Ok(Single::Number(number * scale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solar::fixture;

    #[test]
    fn power_sensor_state_is_a_number() {
        assert_eq!(
            parse(&fixture("homeassistant_state_sensor_power.json")),
            Ok(Single::Number(77.1))
        );
    }

    #[test]
    fn kilowatts_binary_and_unavailable() {
        let kw = br#"{"entity_id":"sensor.grid","state":"-1.5","attributes":{"unit_of_measurement":"kW"}}"#;
        assert_eq!(parse(kw), Ok(Single::Number(-1500.0)));
        let relay = br#"{"entity_id":"binary_sensor.dimming","state":"on","attributes":{}}"#;
        assert_eq!(parse(relay), Ok(Single::On(true)));
        let gone = br#"{"entity_id":"sensor.grid","state":"unavailable","attributes":{}}"#;
        assert_eq!(parse(gone).map_err(|e| e.kind()), Err("unavailable"));
        assert_eq!(
            parse(&fixture("homeassistant_state_docs.json")).map_err(|e| e.kind()),
            Err("not_number")
        );
    }
}
