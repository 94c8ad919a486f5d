//! The one gate between device numbers and the core: finite, bounded, signs plausible.
//! Parsers hand over a [`RawReading`] of whatever the device said; only what passes here
//! becomes a [`PowerReading`].

use super::error::SourceError;
use crate::config::Measure;
use crate::site::PowerReading;

/// No house or shop connection carries more than this (1 MW).
pub const MAX_POWER_W: f64 = 1e6;
/// No phase of such a connection carries more than this.
pub const MAX_CURRENT_A: f64 = 1000.0;
/// PV below zero by up to this much is sensor noise at night (Enphase CTs), read as 0;
/// further below zero the device's sign is not what its adapter expects.
const PV_NOISE_W: f64 = 100.0;

/// A reading as parsed, before validation. Signs already normalised by the adapter: grid
/// positive when importing, battery positive when discharging.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RawReading {
    pub grid_w: Option<f64>,
    pub grid_phase_a: Option<[f64; 3]>,
    pub grid_phase_w: Option<[f64; 3]>,
    pub pv_w: Option<f64>,
    pub battery_w: Option<f64>,
    pub battery_soc_pct: Option<f64>,
}

impl RawReading {
    /// Only the parts of the reading `measures` asks for: a Fronius read for PV alone does
    /// not also speak for the grid.
    #[must_use]
    pub fn keep(mut self, measures: &[Measure]) -> Self {
        if !measures.contains(&Measure::Grid) {
            self.grid_w = None;
            self.grid_phase_a = None;
            self.grid_phase_w = None;
        }
        if !measures.contains(&Measure::Pv) {
            self.pv_w = None;
        }
        if !measures.contains(&Measure::Battery) {
            self.battery_w = None;
        }
        if !measures.contains(&Measure::Soc) {
            self.battery_soc_pct = None;
        }
        self
    }
}

impl RawReading {
    /// The grid with its sign flipped: for meters that report export as positive.
    #[must_use]
    pub fn invert_grid(mut self) -> Self {
        self.grid_w = self.grid_w.map(|w| -w);
        self.grid_phase_w = self.grid_phase_w.map(|p| p.map(|w| -w));
        self.grid_phase_a = self.grid_phase_a.map(|p| p.map(|a| -a));
        self
    }
}

/// A finite power within [`MAX_POWER_W`], rounded to whole watts.
///
/// # Errors
/// [`SourceError::Absurd`] for NaN, infinities and magnitudes beyond a megawatt.
pub fn power(field: &'static str, w: f64) -> Result<i64, SourceError> {
    if !w.is_finite() {
        return Err(absurd(field, w, "not a finite number"));
    }
    if w.abs() > MAX_POWER_W {
        return Err(absurd(field, w, "beyond 1 MW"));
    }
    // Bounded above, so the cast is exact after rounding.
    #[allow(clippy::cast_possible_truncation)]
    Ok(w.round() as i64)
}

/// A finite current within [`MAX_CURRENT_A`].
///
/// # Errors
/// [`SourceError::Absurd`] for NaN, infinities and magnitudes beyond 1000 A.
pub fn current(field: &'static str, a: f64) -> Result<f64, SourceError> {
    if !a.is_finite() {
        return Err(absurd(field, a, "not a finite number"));
    }
    if a.abs() > MAX_CURRENT_A {
        return Err(absurd(field, a, "beyond 1000 A"));
    }
    Ok(a)
}

/// Checks every field of `raw`.
///
/// # Errors
/// The first implausible field; a reading with nothing in it is [`SourceError::Missing`].
pub fn reading(raw: &RawReading) -> Result<PowerReading, SourceError> {
    let phases_w = |p: [f64; 3]| -> Result<[i64; 3], SourceError> {
        Ok([
            power("grid_phase_w", p[0])?,
            power("grid_phase_w", p[1])?,
            power("grid_phase_w", p[2])?,
        ])
    };
    let phases_a = |p: [f64; 3]| -> Result<[f64; 3], SourceError> {
        Ok([
            current("grid_phase_a", p[0])?,
            current("grid_phase_a", p[1])?,
            current("grid_phase_a", p[2])?,
        ])
    };
    let pv_w = match raw.pv_w {
        Some(w) if w < -PV_NOISE_W => {
            return Err(absurd("pv_w", w, "PV below zero: wrong sign?"));
        }
        Some(w) => Some(power("pv_w", w.max(0.0))?),
        None => None,
    };
    let battery_soc_pct = match raw.battery_soc_pct {
        Some(s) if !(0.0..=100.0).contains(&s) => {
            return Err(absurd("battery_soc_pct", s, "outside 0..=100 %"));
        }
        other => other,
    };
    let reading = PowerReading {
        grid_w: raw.grid_w.map(|w| power("grid_w", w)).transpose()?,
        grid_phase_a: raw.grid_phase_a.map(phases_a).transpose()?,
        grid_phase_w: raw.grid_phase_w.map(phases_w).transpose()?,
        pv_w,
        battery_w: raw.battery_w.map(|w| power("battery_w", w)).transpose()?,
        battery_soc_pct,
    };
    if reading == PowerReading::default() {
        return Err(SourceError::Missing(
            "every measured value (nothing this source is configured to measure)".into(),
        ));
    }
    Ok(reading)
}

fn absurd(field: &'static str, value: f64, why: &'static str) -> SourceError {
    SourceError::Absurd { field, value, why }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_values_are_refused() {
        for w in [f64::NAN, f64::INFINITY, 1e12, -1e12] {
            let raw = RawReading {
                grid_w: Some(w),
                ..RawReading::default()
            };
            assert_eq!(reading(&raw).map_err(|e| e.kind()), Err("absurd"), "{w}");
        }
        let raw = RawReading {
            grid_phase_a: Some([1.0, 2000.0, 3.0]),
            ..RawReading::default()
        };
        assert!(reading(&raw).is_err());
    }

    #[test]
    fn pv_noise_is_zero_and_negative_pv_is_a_wrong_sign() {
        let noise = RawReading {
            pv_w: Some(-3.5),
            ..RawReading::default()
        };
        assert_eq!(reading(&noise).map(|r| r.pv_w), Ok(Some(0)));
        let wrong = RawReading {
            pv_w: Some(-2500.0),
            ..RawReading::default()
        };
        assert!(reading(&wrong).is_err());
    }

    #[test]
    fn soc_outside_0_100_and_empty_readings_are_refused() {
        let soc = RawReading {
            battery_soc_pct: Some(101.0),
            ..RawReading::default()
        };
        assert!(reading(&soc).is_err());
        assert_eq!(
            reading(&RawReading::default()).map_err(|e| e.kind()),
            Err("missing")
        );
    }

    #[test]
    fn keep_drops_what_is_not_measured() {
        let raw = RawReading {
            grid_w: Some(100.0),
            pv_w: Some(2000.0),
            ..RawReading::default()
        };
        let kept = raw.keep(&[Measure::Pv]);
        assert_eq!(kept.grid_w, None);
        assert_eq!(kept.pv_w, Some(2000.0));
    }
}
