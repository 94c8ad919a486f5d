//! Fronius Solar API v1, `GET /solar_api/v1/GetPowerFlowRealtimeData.fcgi` (no login).
//!
//! Signs (Fronius Solar API v1 spec, confirmed by measurement in openhab/openhab-addons#15074):
//! `P_Grid` + from the grid (import), matching ours; `P_PV` + production, `null` at night
//! (read as 0); `P_Akku` + discharge, - charge (older PDFs say the opposite and are wrong),
//! `null` without a battery; SoC in `Inverters."1".SOC`. `P_Grid` is `null` without a meter:
//! then this source says nothing about the grid.
//!
//! `kind = "fronius-meter"` reads the Smart Meter behind the same API,
//! `GET /solar_api/v1/GetMeterRealtimeData.cgi?Scope=Device&DeviceId=<unit_id>` (reference
//! inverter-apis.md): `PowerReal_P_Sum` and `PowerReal_P_Phase_1..3` are + import with the
//! meter at the feed-in point (`Meter_Location_Current` 0; a consumption-path meter is
//! refused, it does not see the grid), `Current_AC_Phase_1..3` unsigned, their direction
//! taken from the phase's power.

use super::error::SourceError;
use super::json;
use super::validate::RawReading;

/// The request path, appended to a bare `url`.
pub const PATH: &str = "/solar_api/v1/GetPowerFlowRealtimeData.fcgi";

/// The Smart Meter's request path (`Scope` and `DeviceId` go in the query).
pub const METER_PATH: &str = "/solar_api/v1/GetMeterRealtimeData.cgi";

/// Parses a `GetPowerFlowRealtimeData` answer.
///
/// # Errors
/// Not JSON, a non-zero `Head.Status.Code`, no `Body.Data.Site`, or non-numeric fields.
pub fn parse(body: &[u8]) -> Result<RawReading, SourceError> {
    let doc = json::parse(body)?;
    check_status(&doc)?;
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

/// Parses a `GetMeterRealtimeData` answer of one device (`Scope=Device`).
///
/// # Errors
/// Not JSON, a non-zero status code, a meter not at the feed-in point, or missing or
/// non-numeric power fields.
pub fn parse_meter(body: &[u8]) -> Result<RawReading, SourceError> {
    let doc = json::parse(body)?;
    check_status(&doc)?;
    let data = json::get(&doc, "/Body/Data")
        .filter(|d| d.is_object())
        .ok_or_else(|| SourceError::Missing("Body.Data".into()))?;
    if let Some(location) = json::optional_number(data, "/Meter_Location_Current")? {
        if location != 0.0 {
            return Err(SourceError::Unavailable(format!(
                "the meter is not at the feed-in point (Meter_Location_Current {location})"
            )));
        }
    }
    let number = |pointer: &str| {
        json::optional_number(data, pointer)?
            .ok_or_else(|| SourceError::Missing(pointer.trim_start_matches('/').to_owned()))
    };
    let watts = [
        number("/PowerReal_P_Phase_1")?,
        number("/PowerReal_P_Phase_2")?,
        number("/PowerReal_P_Phase_3")?,
    ];
    let amps = [
        number("/Current_AC_Phase_1")?,
        number("/Current_AC_Phase_2")?,
        number("/Current_AC_Phase_3")?,
    ];
    Ok(RawReading {
        grid_w: Some(number("/PowerReal_P_Sum")?),
        grid_phase_w: Some(watts),
        grid_phase_a: Some(json::signed_currents(amps, Some(watts))),
        ..RawReading::default()
    })
}

/// A non-zero `Head.Status.Code` is the device saying it has no answer.
fn check_status(doc: &serde_json::Value) -> Result<(), SourceError> {
    if let Some(code) = json::optional_number(doc, "/Head/Status/Code")? {
        if code != 0.0 {
            let reason = json::get(doc, "/Head/Status/Reason")
                .and_then(|r| r.as_str())
                .unwrap_or("");
            return Err(SourceError::Unavailable(format!(
                "Fronius status code {code} {reason}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solar::fixture;

    /// Shape of home-assistant/core's `GetMeterRealtimeData_Device_0.json` (Symo with a
    /// Smart Meter 63A), values of our own with phase 2 exporting.
    #[test]
    fn smart_meter_per_phase_with_signed_currents() {
        let r = parse_meter(&fixture("fronius_meter_device.json")).expect("parses");
        assert_eq!(r.grid_w, Some(3900.75));
        assert_eq!(r.grid_phase_w, Some([1840.5, -520.0, 2580.25]));
        assert_eq!(r.grid_phase_a, Some([8.1, -2.4, 11.3]));
        let load = br#"{"Body":{"Data":{"Meter_Location_Current":1,"PowerReal_P_Sum":5}},"Head":{"Status":{"Code":0}}}"#;
        assert_eq!(parse_meter(load).map_err(|e| e.kind()), Err("unavailable"));
        let partial = br#"{"Body":{"Data":{"PowerReal_P_Sum":5}},"Head":{"Status":{"Code":0}}}"#;
        assert_eq!(parse_meter(partial).map_err(|e| e.kind()), Err("missing"));
    }

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
