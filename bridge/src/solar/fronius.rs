//! Fronius Solar API v1, `GET /solar_api/v1/GetPowerFlowRealtimeData.fcgi` (no login).
//!
//! Signs (Fronius Solar API v1 spec, confirmed by measurement in openhab/openhab-addons#15074):
//! `P_Grid` + from the grid (import), matching ours; `P_PV` + production, `null` at night
//! (read as 0); `P_Akku` + discharge, - charge (older PDFs say the opposite and are wrong),
//! `null` without a battery; SoC in `Inverters."1".SOC`. `P_Grid` is `null` without a meter:
//! then this source says nothing about the grid.

use super::error::SourceError;
use super::json;
use super::validate::RawReading;

/// The request path, appended to a bare `url`.
pub const PATH: &str = "/solar_api/v1/GetPowerFlowRealtimeData.fcgi";

/// Parses a `GetPowerFlowRealtimeData` answer.
///
/// # Errors
/// Not JSON, a non-zero `Head.Status.Code`, no `Body.Data.Site`, or non-numeric fields.
pub fn parse(body: &[u8]) -> Result<RawReading, SourceError> {
    let doc = json::parse(body)?;
    if let Some(code) = json::optional_number(&doc, "/Head/Status/Code")? {
        if code != 0.0 {
            let reason = json::get(&doc, "/Head/Status/Reason")
                .and_then(|r| r.as_str())
                .unwrap_or("");
            return Err(SourceError::Unavailable(format!(
                "Fronius status code {code} {reason}"
            )));
        }
    }
    let site = json::get(&doc, "/Body/Data/Site")
        .ok_or_else(|| SourceError::Missing("Body.Data.Site".into()))?;
    if !site.is_object() {
        return Err(SourceError::Malformed(
            "Body.Data.Site is not an object".into(),
        ));
    }
    Ok(RawReading {
        grid_w: json::optional_number(site, "/P_Grid")?,
        pv_w: Some(json::optional_number(site, "/P_PV")?.unwrap_or(0.0)),
        battery_w: json::optional_number(site, "/P_Akku")?,
        battery_soc_pct: json::optional_number(&doc, "/Body/Data/Inverters/1/SOC")?,
        ..RawReading::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solar::fixture;

    #[test]
    fn symo_with_meter_imports() {
        let r = parse(&fixture("fronius_powerflow.json")).expect("parses");
        assert_eq!(r.grid_w, Some(1703.74));
        assert_eq!(r.pv_w, Some(1111.0));
        assert_eq!(r.battery_w, None);
    }

    #[test]
    fn gen24_with_storage_has_battery_and_soc() {
        let r = parse(&fixture("fronius_powerflow_gen24_storage.json")).expect("parses");
        assert_eq!(r.battery_soc_pct, Some(4.6));
        assert!(r.battery_w.is_some());
    }

    #[test]
    fn night_pv_null_is_zero_and_an_error_code_is_refused() {
        let night = br#"{"Body":{"Data":{"Site":{"P_Grid":300,"P_PV":null,"P_Akku":null}}},"Head":{"Status":{"Code":0}}}"#;
        assert_eq!(parse(night).map(|r| r.pv_w), Ok(Some(0.0)));
        let busy = br#"{"Body":{"Data":{}},"Head":{"Status":{"Code":255,"Reason":"busy"}}}"#;
        assert_eq!(parse(busy).map_err(|e| e.kind()), Err("unavailable"));
        assert_eq!(
            parse(br#"{"Body":{}}"#).map_err(|e| e.kind()),
            Err("missing")
        );
    }
}
