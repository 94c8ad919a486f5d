//! Sources that carry one number (generic HTTP JSON, an MQTT topic, a Home Assistant
//! entity): the number, what `scale` and `invert` make of it, and which measure or
//! external limit it fills.

use super::error::SourceError;
use super::validate::{self, RawReading, MAX_CURRENT_A, MAX_POWER_W};
use crate::bay::Deciamps;
use crate::config::{LimitUnit, Measure, SolarSourceConfig};
use crate::site::{ExternalLimit, PowerReading};

/// One value as the source sent it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Number(f64),
    /// A relay, binary sensor or switch.
    On(bool),
}

/// What one poll or message of a source means for the core.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sample {
    Power(PowerReading),
    /// `None`: no external limit in force.
    Limit(Option<ExternalLimit>),
}

/// A value from a JSON document: a number, a numeric string, a boolean or `"on"`/`"off"`.
///
/// # Errors
/// [`SourceError::Missing`] when `pointer` finds nothing, [`SourceError::NotNumber`] for
/// anything else.
pub fn from_json(doc: &serde_json::Value, pointer: &str) -> Result<Value, SourceError> {
    let field =
        super::json::get(doc, pointer).ok_or_else(|| SourceError::Missing(pointer.into()))?;
    match field {
        serde_json::Value::Bool(on) => Ok(Value::On(*on)),
        serde_json::Value::String(s) => from_word(s)
            .map(Ok)
            .unwrap_or_else(|| super::json::number_of(field, pointer).map(Value::Number)),
        _ => super::json::number_of(field, pointer).map(Value::Number),
    }
}

/// `on`/`off`, `true`/`false` in any case, or `None`.
#[must_use]
pub fn from_word(word: &str) -> Option<Value> {
    let word = word.trim();
    if word.eq_ignore_ascii_case("on") || word.eq_ignore_ascii_case("true") {
        Some(Value::On(true))
    } else if word.eq_ignore_ascii_case("off") || word.eq_ignore_ascii_case("false") {
        Some(Value::On(false))
    } else {
        None
    }
}

/// Turns a value into what the source is configured to measure.
///
/// # Errors
/// A relay where a number is needed, a negative or absurd limit, or what
/// [`validate::reading`] refuses.
pub fn sample(value: Value, source: &SolarSourceConfig) -> Result<Sample, SourceError> {
    if source.is_limit() {
        return limit_sample(value, source).map(Sample::Limit);
    }
    let Value::Number(number) = value else {
        return Err(SourceError::NotNumber("an on/off state".into()));
    };
    let sign = if source.invert { -1.0 } else { 1.0 };
    let v = number * source.scale * sign;
    let mut raw = RawReading::default();
    match source.measures.first() {
        Some(Measure::Grid) => raw.grid_w = Some(v),
        Some(Measure::Pv) => raw.pv_w = Some(v),
        Some(Measure::Battery) => raw.battery_w = Some(v),
        Some(Measure::Soc) => raw.battery_soc_pct = Some(v),
        Some(Measure::Limit) | None => {}
    }
    validate::reading(&raw).map(Sample::Power)
}

fn limit_sample(
    value: Value,
    source: &SolarSourceConfig,
) -> Result<Option<ExternalLimit>, SourceError> {
    let unit = source.unit.unwrap_or(LimitUnit::W);
    let amount = match (value, source.when_on) {
        (Value::On(true), Some(limit)) => limit,
        (Value::Number(n), Some(limit)) if n != 0.0 => limit,
        (Value::On(false) | Value::Number(_), Some(_)) => return Ok(None),
        (Value::On(_), None) => {
            return Err(SourceError::NotNumber(
                "an on/off state (set when_on)".into(),
            ))
        }
        (Value::Number(n), None) => n * source.scale,
    };
    limit(amount, unit).map(Some)
}

/// A limit of `amount` in `unit`, bounded like every other outside number.
///
/// # Errors
/// [`SourceError::Absurd`] for negative, non-finite or implausibly large amounts.
pub fn limit(amount: f64, unit: LimitUnit) -> Result<ExternalLimit, SourceError> {
    let absurd = |why| SourceError::Absurd {
        field: "limit",
        value: amount,
        why,
    };
    if !amount.is_finite() {
        return Err(absurd("not a finite number"));
    }
    if amount < 0.0 {
        return Err(absurd("a limit below zero"));
    }
    match unit {
        LimitUnit::W if amount <= MAX_POWER_W => {
            // Bounded to 0..=1e6 above.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(ExternalLimit::Watts(amount.round() as u32))
        }
        LimitUnit::A if amount <= MAX_CURRENT_A => {
            let amps = Deciamps::try_from_amps(amount).ok_or(absurd("not a current"))?;
            Ok(ExternalLimit::Amps([amps; 3]))
        }
        LimitUnit::W => Err(absurd("beyond 1 MW")),
        LimitUnit::A => Err(absurd("beyond 1000 A")),
    }
}
