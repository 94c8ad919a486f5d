//! Shelly energy meters. The answer's shape says which API it is, so one parser serves all:
//!
//! - Gen1 3EM / EM, `GET /status`: `emeters[]` with `power` (W, signed, negative =
//!   returning) and `current` (A, a magnitude) per channel (Shelly Gen1 API docs, `/status`
//!   of Shelly 3EM; evcc `meter/shelly/gen1.go` sums `power`).
//! - Gen2+ Pro 3EM, `GET /rpc/EM.GetStatus?id=0`: `total_act_power` (W, + import) and
//!   `a_/b_/c_act_power`, `a_/b_/c_current` (Shelly Gen2 API docs, EM component).
//! - Gen2+ Pro EM and monophase profiles, `GET /rpc/EM1.GetStatus?id=N`: `act_power`,
//!   `current` (Shelly Gen2 API docs, EM1 component).
//! - `POST /rpc` wraps the same object in `result`; unwrapped here.

use serde_json::Value;

use super::error::SourceError;
use super::json;
use super::validate::RawReading;

/// The request path appended to a bare `url` (Gen2+ three-phase); Gen1 and EM1 meters
/// take a `url` with the path (`http://shelly/status`, `.../rpc/EM1.GetStatus?id=0`).
pub const PATH: &str = "/rpc/EM.GetStatus?id=0";

/// Parses any of the three status answers into grid readings.
///
/// # Errors
/// Not JSON, none of the known shapes, or non-numeric fields.
pub fn parse(body: &[u8]) -> Result<RawReading, SourceError> {
    let doc = json::parse(body)?;
    let doc = json::get(&doc, "/result").unwrap_or(&doc);
    if let Some(meters) = json::get(doc, "/emeters") {
        return gen1(meters);
    }
    if json::get(doc, "/total_act_power").is_some() {
        return json::grid_meter(
            doc,
            "/total_act_power",
            ["/a_act_power", "/b_act_power", "/c_act_power"],
            ["/a_current", "/b_current", "/c_current"],
        );
    }
    if json::get(doc, "/act_power").is_some() {
        return Ok(RawReading {
            grid_w: Some(json::number(doc, "/act_power")?),
            ..RawReading::default()
        });
    }
    Err(SourceError::Missing(
        "emeters, total_act_power or act_power (not a Shelly meter status)".into(),
    ))
}

fn gen1(meters: &Value) -> Result<RawReading, SourceError> {
    let meters = meters
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| SourceError::Malformed("emeters is not a non-empty list".into()))?;
    let mut total = 0.0;
    let mut watts = [0.0; 3];
    let mut amps = [0.0; 3];
    for (i, meter) in meters.iter().enumerate() {
        let w = json::number(meter, "/power")?;
        total += w;
        if let Some(slot) = watts.get_mut(i) {
            *slot = w;
        }
        if let (Some(slot), Some(a)) = (amps.get_mut(i), json::optional_number(meter, "/current")?)
        {
            *slot = a;
        }
    }
    // Only a 3EM (three channels, each with a current) is a per-phase grid meter; a
    // two-channel EM measures two circuits, not phases.
    let three_phase =
        meters.len() == 3 && meters.iter().all(|m| json::get(m, "/current").is_some());
    Ok(RawReading {
        grid_w: Some(total),
        grid_phase_w: three_phase.then_some(watts),
        grid_phase_a: three_phase.then(|| json::signed_currents(amps, Some(watts))),
        ..RawReading::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solar::fixture;

    #[test]
    fn gen2_pro3em_has_phases() {
        let r = parse(&fixture("shelly_pro3em_em_getstatus.json")).expect("parses");
        assert_eq!(r.grid_w, Some(103.61));
        assert_eq!(r.grid_phase_w, Some([3.9, 45.4, 54.3]));
        assert_eq!(r.grid_phase_a, Some([0.132, 0.594, 0.368]));
    }

    #[test]
    fn gen2_em1_export_is_negative() {
        let r = parse(&fixture("shelly_proem_em1_getstatus.json")).expect("parses");
        assert_eq!(r.grid_w, Some(-607.3));
    }

    #[test]
    fn gen1_3em_sums_and_signs_currents() {
        let r = parse(&fixture("shelly_3em_gen1_status.json")).expect("parses");
        let total = r.grid_w.expect("grid");
        assert!((total - 212.85).abs() < 0.01, "{total}");
        let a = r.grid_phase_a.expect("phases");
        assert!(a.iter().all(|a| *a >= 0.0));
        let em = parse(&fixture("shelly_em_gen1_status_export.json")).expect("parses");
        assert_eq!(em.grid_w, Some(-620.34));
        assert_eq!(em.grid_phase_w, None);
    }

    #[test]
    fn rpc_result_wrapper_and_unknown_shapes() {
        let wrapped = br#"{"id":1,"src":"shellypro3em","result":{"total_act_power":-1200.5}}"#;
        assert_eq!(parse(wrapped).map(|r| r.grid_w), Ok(Some(-1200.5)));
        assert_eq!(
            parse(br#"{"ok":true}"#).map_err(|e| e.kind()),
            Err("missing")
        );
    }
}
