//! Enphase IQ Gateway (Envoy) local API, `GET /production.json?details=1`; firmware 7 and
//! later want `Authorization: Bearer <token>` over HTTPS with the gateway's self-signed
//! certificate.
//!
//! Fields (pyenphase fixtures; evcc's `enphase` template): grid is
//! `consumption[measurementType = "net-consumption"].wNow` (W, + import), PV the CT's
//! `production[measurementType = "production"].wNow` when `activeCount >= 1`, else the
//! microinverters' `production[type = "inverters"].wNow`; the AC battery is
//! `storage[type = "acb"].wNow` (+ discharge). With `details=1` each CT entry has `lines[]`
//! per phase (`wNow`, `rmsCurrent` signed like the power). A CT's PV reads slightly
//! negative at night; validation reads that noise as 0.

use serde_json::Value;

use super::error::SourceError;
use super::json;
use super::validate::RawReading;

/// The request path, appended to a bare `url`.
pub const PATH: &str = "/production.json?details=1";

/// Parses a `production.json` answer.
///
/// # Errors
/// Not JSON, no `production` list, or non-numeric fields.
pub fn parse(body: &[u8]) -> Result<RawReading, SourceError> {
    let doc = json::parse(body)?;
    let production =
        list(&doc, "/production").ok_or_else(|| SourceError::Missing("production".into()))?;
    let consumption = list(&doc, "/consumption").unwrap_or_default();
    let ct = production.iter().find(|e| {
        field(e, "measurementType") == Some("production")
            && json::optional_number(e, "/activeCount").ok().flatten() >= Some(1.0)
    });
    let inverters = production
        .iter()
        .find(|e| field(e, "type") == Some("inverters"));
    let pv_w = match ct.or(inverters) {
        Some(entry) => Some(json::number(entry, "/wNow")?),
        None => None,
    };
    let net = consumption
        .iter()
        .find(|e| field(e, "measurementType") == Some("net-consumption"));
    let (grid_w, grid_phase_w, grid_phase_a) = match net {
        None => (None, None, None),
        Some(net) => {
            let lines = json::get(net, "/lines")
                .and_then(Value::as_array)
                .filter(|l| l.len() == 3);
            let (w, a) = match lines {
                Some(l) => (
                    Some([
                        json::number(&l[0], "/wNow")?,
                        json::number(&l[1], "/wNow")?,
                        json::number(&l[2], "/wNow")?,
                    ]),
                    Some([
                        json::number(&l[0], "/rmsCurrent")?,
                        json::number(&l[1], "/rmsCurrent")?,
                        json::number(&l[2], "/rmsCurrent")?,
                    ]),
                ),
                None => (None, None),
            };
            (
                Some(json::number(net, "/wNow")?),
                w,
                a.map(|a| json::signed_currents(a, w)),
            )
        }
    };
    let battery_w = match list(&doc, "/storage").unwrap_or_default().iter().find(|e| {
        field(e, "type") == Some("acb")
            && json::optional_number(e, "/activeCount").ok().flatten() >= Some(1.0)
    }) {
        Some(acb) => Some(json::number(acb, "/wNow")?),
        None => None,
    };
    Ok(RawReading {
        grid_w,
        grid_phase_a,
        grid_phase_w,
        pv_w,
        battery_w,
        battery_soc_pct: None,
    })
}

/// The path of the meter readings, the alternative to `production.json` on firmware 7+.
pub const READINGS_PATH: &str = "/ivp/meters/readings";
/// The meter list that says which reading is which.
pub const METERS_PATH: &str = "/ivp/meters";

/// Parses `GET /ivp/meters` and `GET /ivp/meters/readings`, joined on `eid`: the enabled
/// `net-consumption` meter is the grid (`activePower` W, + import; per phase in
/// `channels[]`, current unsigned), the `production` meter the PV (pyenphase
/// `ivp_meters`, `ivp_meters_readings` fixtures).
///
/// # Errors
/// Not JSON, not lists, or non-numeric fields.
pub fn parse_meters(meters: &[u8], readings: &[u8]) -> Result<RawReading, SourceError> {
    let meters = json::parse(meters)?;
    let readings = json::parse(readings)?;
    let (Some(meters), Some(readings)) = (meters.as_array(), readings.as_array()) else {
        return Err(SourceError::Malformed(
            "/ivp/meters answers are not lists".into(),
        ));
    };
    let reading_of = |kind: &str| {
        let eid = meters
            .iter()
            .find(|m| {
                field(m, "measurementType") == Some(kind) && field(m, "state") == Some("enabled")
            })?
            .get("eid")?;
        readings.iter().find(|r| r.get("eid") == Some(eid))
    };
    let mut raw = RawReading::default();
    if let Some(pv) = reading_of("production") {
        raw.pv_w = Some(json::number(pv, "/activePower")?);
    }
    if let Some(net) = reading_of("net-consumption") {
        raw = RawReading {
            pv_w: raw.pv_w,
            ..json::grid_meter(
                net,
                "/activePower",
                [
                    "/channels/0/activePower",
                    "/channels/1/activePower",
                    "/channels/2/activePower",
                ],
                [
                    "/channels/0/current",
                    "/channels/1/current",
                    "/channels/2/current",
                ],
            )?
        };
    }
    Ok(raw)
}

fn list(doc: &Value, pointer: &str) -> Option<Vec<Value>> {
    json::get(doc, pointer).and_then(Value::as_array).cloned()
}

fn field<'a>(entry: &'a Value, name: &str) -> Option<&'a str> {
    entry.get(name).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solar::fixture;

    #[test]
    fn ct_production_and_net_export() {
        let r = parse(&fixture("enphase_production.json")).expect("parses");
        assert_eq!(r.pv_w, Some(13028.54));
        assert_eq!(r.grid_w, Some(-7812.457));
        // The AC battery entry is inactive (activeCount 0): no battery.
        assert_eq!(r.battery_w, None);
    }

    #[test]
    fn details_give_phases() {
        let r = parse(&fixture("enphase_production_details.json")).expect("parses");
        assert_eq!(r.grid_phase_w, Some([-2932.704, -886.257, -1161.306]));
        assert_eq!(r.grid_phase_a, Some([-12.263, -4.015, -5.11]));
    }

    #[test]
    fn ivp_meter_readings_joined_on_eid() {
        let r = parse_meters(
            &fixture("enphase_ivp_meters.json"),
            &fixture("enphase_ivp_meters_readings.json"),
        )
        .expect("parses");
        assert_eq!(r.pv_w, Some(5235.674));
        assert_eq!(r.grid_w, Some(-4912.241));
        assert_eq!(r.grid_phase_a, Some([-12.129, -3.982, -5.053]));
        assert_eq!(
            parse_meters(b"{}", b"[]").map_err(|e| e.kind()),
            Err("malformed")
        );
    }

    #[test]
    fn microinverters_only() {
        let body = br#"{"production":[{"type":"inverters","activeCount":10,"wNow":2500}]}"#;
        let r = parse(body).expect("parses");
        assert_eq!((r.pv_w, r.grid_w), (Some(2500.0), None));
    }
}
