//! Reading numbers out of device JSON: an HTML page (a login or error page where JSON was
//! expected) and a missing or non-numeric field are typed errors, never a panic or a 0.

use serde_json::Value;

use super::error::SourceError;

/// Largest answer a device may send; beyond it the answer is refused unread.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Parses a device's answer as JSON.
///
/// # Errors
/// [`SourceError::Html`] for an HTML page, [`SourceError::NotJson`] for anything else that is
/// not JSON.
pub fn parse(body: &[u8]) -> Result<Value, SourceError> {
    serde_json::from_slice(body).map_err(|e| {
        let start = body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map_or(&[][..], |i| &body[i..]);
        if start.first() == Some(&b'<') {
            SourceError::Html
        } else {
            SourceError::NotJson(e.to_string())
        }
    })
}

/// The value at `pointer` (RFC 6901); `null` counts as absent.
#[must_use]
pub fn get<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    doc.pointer(pointer).filter(|v| !v.is_null())
}

/// A number at `pointer`: a JSON number or a string holding one (Home Assistant states,
/// some meters). `None` when the field is absent or `null`.
///
/// # Errors
/// [`SourceError::NotNumber`] for anything else.
pub fn optional_number(doc: &Value, pointer: &str) -> Result<Option<f64>, SourceError> {
    get(doc, pointer).map(|v| number_of(v, pointer)).transpose()
}

/// A number at `pointer` that must be there.
///
/// # Errors
/// [`SourceError::Missing`] when absent or `null`, [`SourceError::NotNumber`] otherwise.
pub fn number(doc: &Value, pointer: &str) -> Result<f64, SourceError> {
    optional_number(doc, pointer)?.ok_or_else(|| SourceError::Missing(pointer.into()))
}

/// A JSON value as a number; `field` names it in the error.
///
/// # Errors
/// [`SourceError::NotNumber`] unless it is a number or a numeric string.
pub fn number_of(value: &Value, field: &str) -> Result<f64, SourceError> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| SourceError::NotNumber(field.into()))
}

/// The three phases at `pointers`, or `None` unless all three are there.
///
/// # Errors
/// [`SourceError::NotNumber`] when a present field is not a number.
pub fn phases(doc: &Value, pointers: [&str; 3]) -> Result<Option<[f64; 3]>, SourceError> {
    let [a, b, c] = pointers;
    Ok(
        match (
            optional_number(doc, a)?,
            optional_number(doc, b)?,
            optional_number(doc, c)?,
        ) {
            (Some(a), Some(b), Some(c)) => Some([a, b, c]),
            _ => None,
        },
    )
}

/// A grid meter's reading from JSON: total power at `total`, per-phase powers and
/// (unsigned) currents where all three are there, currents signed by the phase powers.
///
/// # Errors
/// [`SourceError::Missing`] without the total, [`SourceError::NotNumber`] for bad fields.
pub fn grid_meter(
    doc: &Value,
    total: &str,
    watts: [&str; 3],
    amps: [&str; 3],
) -> Result<super::validate::RawReading, SourceError> {
    let watts = phases(doc, watts)?;
    let amps = phases(doc, amps)?;
    Ok(super::validate::RawReading {
        grid_w: Some(number(doc, total)?),
        grid_phase_w: watts,
        grid_phase_a: amps.map(|a| signed_currents(a, watts)),
        ..super::validate::RawReading::default()
    })
}

/// Unsigned phase currents signed by the phase's active power (meters report current as a
/// magnitude; exporting phases carry a negative current in a [`crate::site::PowerReading`]).
#[must_use]
pub fn signed_currents(amps: [f64; 3], watts: Option<[f64; 3]>) -> [f64; 3] {
    match watts {
        Some(w) => [0, 1, 2].map(|i| {
            if w[i] < 0.0 {
                -amps[i].abs()
            } else {
                amps[i].abs()
            }
        }),
        None => amps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_and_garbage_are_told_apart() {
        assert_eq!(parse(b"  <!DOCTYPE html><html>"), Err(SourceError::Html));
        assert_eq!(parse(b"hello").map_err(|e| e.kind()), Err("not_json"));
    }

    #[test]
    fn numbers_strings_and_nulls() {
        let doc: Value = serde_json::json!({"a": 1.5, "b": "-2", "c": null, "d": "x"});
        assert_eq!(number(&doc, "/a"), Ok(1.5));
        assert_eq!(number(&doc, "/b"), Ok(-2.0));
        assert_eq!(optional_number(&doc, "/c"), Ok(None));
        assert!(matches!(number(&doc, "/c"), Err(SourceError::Missing(_))));
        assert!(matches!(number(&doc, "/d"), Err(SourceError::NotNumber(_))));
    }
}
