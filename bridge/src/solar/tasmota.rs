//! Tasmota, `GET /cm?cmnd=Status%2010` (with `&user=..&password=..` when a web password is
//! set). Energy plugs answer `StatusSNS.ENERGY.Power` (W, an array on multi-channel
//! devices); SML readers answer `StatusSNS.<prefix>.<name>` with names from the user's meter
//! script. evcc's template (`meter/tasmota`) assumes `SML.Power_curr` (OBIS 16.7.0, W,
//! negative = export) and per-phase `power_l1..3`, `current_l1..3`; `pointer` overrides the
//! power field for other scripts.

use super::error::SourceError;
use super::json;
use super::validate::RawReading;

/// The request path, appended to a bare `url`.
pub const PATH: &str = "/cm?cmnd=Status%2010";

/// Parses a `Status 10` answer. `pointer` (absolute, e.g. `/StatusSNS/MT175/P`) names the
/// power field of an SML script; `channel` picks an entry of a multi-channel `Power` array.
///
/// # Errors
/// Not JSON, no `StatusSNS`, or no power field.
pub fn parse(
    body: &[u8],
    pointer: Option<&str>,
    channel: usize,
) -> Result<RawReading, SourceError> {
    let doc = json::parse(body)?;
    let sns = json::get(&doc, "/StatusSNS")
        .ok_or_else(|| SourceError::Missing("StatusSNS (not a Tasmota Status 10 answer)".into()))?;
    if let Some(pointer) = pointer {
        return Ok(RawReading {
            grid_w: Some(json::number(&doc, pointer)?),
            ..RawReading::default()
        });
    }
    if let Some(sml) = json::get(sns, "/SML") {
        return json::grid_meter(
            sml,
            "/Power_curr",
            ["/power_l1", "/power_l2", "/power_l3"],
            ["/current_l1", "/current_l2", "/current_l3"],
        );
    }
    let power = json::get(sns, "/ENERGY/Power").ok_or_else(|| {
        SourceError::Missing("StatusSNS.SML.Power_curr or StatusSNS.ENERGY.Power".into())
    })?;
    let power = match power.as_array() {
        Some(channels) => channels
            .get(channel)
            .ok_or_else(|| SourceError::Missing(format!("ENERGY.Power[{channel}]")))?,
        None => power,
    };
    Ok(RawReading {
        grid_w: Some(json::number_of(power, "ENERGY.Power")?),
        ..RawReading::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solar::fixture;

    #[test]
    fn sml_meter_with_phases() {
        let r = parse(&fixture("tasmota_status10_sml.json"), None, 0).expect("parses");
        assert_eq!(r.grid_w, Some(-36.0));
        assert_eq!(r.grid_phase_w, Some([60.0, -111.0, 14.0]));
        assert_eq!(r.grid_phase_a, Some([0.98, -1.47, 1.18]));
        let export = parse(&fixture("tasmota_status10_sml_export.json"), None, 0).expect("parses");
        assert_eq!(export.grid_w, Some(-894.0));
        assert_eq!(export.grid_phase_w, None);
    }

    #[test]
    fn energy_plug_single_and_multichannel() {
        let r = parse(&fixture("tasmota_status10_energy.json"), None, 0).expect("parses");
        assert_eq!(r.grid_w, Some(47.11));
        let multi = fixture("tasmota_status10_energy_multichannel.json");
        assert_eq!(parse(&multi, None, 0).map(|r| r.grid_w), Ok(Some(8.15)));
        assert_eq!(parse(&multi, None, 1).map(|r| r.grid_w), Ok(Some(0.0)));
        assert_eq!(parse(&multi, None, 5).map_err(|e| e.kind()), Err("missing"));
    }

    #[test]
    fn a_pointer_reads_a_custom_sml_script() {
        let body = br#"{"StatusSNS":{"Time":"x","MT631":{"P_in":1234}}}"#;
        assert_eq!(
            parse(body, Some("/StatusSNS/MT631/P_in"), 0).map(|r| r.grid_w),
            Ok(Some(1234.0))
        );
    }
}
