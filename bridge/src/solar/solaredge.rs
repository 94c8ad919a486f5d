//! SolarEdge monitoring API, `GET https://monitoringapi.solaredge.com/site/{site_id}/currentPowerFlow?api_key=KEY`.
//!
//! `GRID/LOAD/PV.currentPower` are magnitudes; the grid's direction is only in
//! `connections` (`GRID -> Load` import, `LOAD -> Grid` export; the casing varies), the
//! battery's in `STORAGE.status` (Charging / Discharging / Idle). `unit` is `W` or (in real
//! captures) `kW`. SolarEdge monitoring API documentation, "Site Power Flow"; shapes of
//! home-assistant/core's solaredge fixtures and TeslaSolarCharger's captured payload. The
//! API allows about 300 requests a day: poll every 5 minutes, not faster.

use serde_json::Value;

use super::error::SourceError;
use super::json;
use super::validate::RawReading;

/// The monitoring API's host, used when `url` is not set.
pub const API: &str = "https://monitoringapi.solaredge.com";

/// The request path for a site id.
#[must_use]
pub fn path(site_id: &str) -> String {
    format!("/site/{site_id}/currentPowerFlow")
}

/// Parses a `currentPowerFlow` answer.
///
/// # Errors
/// Not JSON, no `siteCurrentPowerFlow`, an unknown unit, or grid power without a direction.
pub fn parse(body: &[u8]) -> Result<RawReading, SourceError> {
    let doc = json::parse(body)?;
    let flow = json::get(&doc, "/siteCurrentPowerFlow")
        .ok_or_else(|| SourceError::Missing("siteCurrentPowerFlow".into()))?;
    let scale = match json::get(flow, "/unit").and_then(Value::as_str) {
        Some("W") => 1.0,
        Some("kW") => 1e3,
        Some("MW") => 1e6,
        other => {
            return Err(SourceError::Malformed(format!(
                "unit {other:?} is none of W, kW, MW"
            )))
        }
    };
    let connections: Vec<(String, String)> = json::get(flow, "/connections")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| {
                    let from = c.get("from")?.as_str()?.to_ascii_uppercase();
                    let to = c.get("to")?.as_str()?.to_ascii_uppercase();
                    Some((from, to))
                })
                .collect()
        })
        .unwrap_or_default();
    let flows = |from: &str, to: &str| connections.iter().any(|(f, t)| f == from && t == to);
    let grid_w = match json::optional_number(flow, "/GRID/currentPower")? {
        None => None,
        Some(0.0) => Some(0.0),
        Some(w) if flows("GRID", "LOAD") => Some(w.abs() * scale),
        Some(w) if flows("LOAD", "GRID") => Some(-w.abs() * scale),
        Some(_) => {
            return Err(SourceError::Malformed(
                "grid power without a GRID<->LOAD connection giving its direction".into(),
            ))
        }
    };
    let pv_w = json::optional_number(flow, "/PV/currentPower")?.map(|w| w * scale);
    let (battery_w, battery_soc_pct) = match json::get(flow, "/STORAGE") {
        None => (None, None),
        Some(storage) => {
            let w = json::optional_number(storage, "/currentPower")?
                .unwrap_or(0.0)
                .abs()
                * scale;
            let battery = match storage.get("status").and_then(Value::as_str) {
                Some("Charging") => -w,
                Some("Discharging") => w,
                _ => 0.0,
            };
            (
                Some(battery),
                json::optional_number(storage, "/chargeLevel")?,
            )
        }
    };
    Ok(RawReading {
        grid_w,
        pv_w,
        battery_w,
        battery_soc_pct,
        ..RawReading::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solar::fixture;

    #[test]
    fn watts_import_with_a_charging_battery() {
        let r = parse(&fixture("solaredge_currentpowerflow.json")).expect("parses");
        assert_eq!(r.grid_w, Some(250.0));
        assert_eq!(r.pv_w, Some(1500.0));
        assert_eq!(r.battery_w, Some(-250.0));
        assert_eq!(r.battery_soc_pct, Some(75.0));
    }

    #[test]
    fn kilowatts_export() {
        let r = parse(&fixture("solaredge_currentpowerflow_kw_export.json")).expect("parses");
        assert_eq!(r.grid_w, Some(-1090.0));
        assert_eq!(r.pv_w, Some(6340.0));
        assert_eq!(r.battery_w, Some(-5000.0));
    }

    #[test]
    fn no_direction_is_an_error() {
        let body = br#"{"siteCurrentPowerFlow":{"unit":"W","connections":[],"GRID":{"currentPower":100}}}"#;
        assert_eq!(parse(body).map_err(|e| e.kind()), Err("malformed"));
    }
}
