//! MeterValues: which measurands go into a sample, and the clock-aligned grid.

use chrono::{DateTime, Utc};
use rust_ocpp::v1_6::types::{
    Location, Measurand, MeterValue, Phase, ReadingContext, SampledValue, UnitOfMeasure,
};

use super::connector::MeterReading;

const DAY_MS: u64 = 86_400_000;

/// One MeterValue with the configured `measurands` that `reading` has.
pub(crate) fn meter_value<'a>(
    reading: &MeterReading,
    measurands: impl Iterator<Item = &'a str>,
    context: &ReadingContext,
    at: DateTime<Utc>,
) -> MeterValue {
    let sample = |value: String, measurand, phase, unit| SampledValue {
        value,
        context: Some(context.clone()),
        format: None,
        measurand: Some(measurand),
        phase,
        location: Some(Location::Outlet),
        unit: Some(unit),
    };
    let mut sampled_value = Vec::new();
    for measurand in measurands {
        match measurand {
            "Energy.Active.Import.Register" => sampled_value.push(sample(
                reading.energy_import_wh.to_string(),
                Measurand::EnergyActiveImportRegister,
                None,
                UnitOfMeasure::Wh,
            )),
            "Power.Active.Import" => {
                if let Some(watts) = reading.power_import_w {
                    sampled_value.push(sample(
                        decimal(watts),
                        Measurand::PowerActiveImport,
                        None,
                        UnitOfMeasure::W,
                    ));
                }
            }
            "Current.Import" => {
                let phases = [Phase::L1, Phase::L2, Phase::L3];
                for (amps, phase) in reading.current_import_a.iter().zip(phases) {
                    if let Some(amps) = amps {
                        sampled_value.push(sample(
                            decimal(*amps),
                            Measurand::CurrentImport,
                            Some(phase),
                            UnitOfMeasure::A,
                        ));
                    }
                }
            }
            "Current.Offered" => {
                if let Some(amps) = reading.current_offered_a {
                    sampled_value.push(sample(
                        decimal(amps),
                        Measurand::CurrentOffered,
                        None,
                        UnitOfMeasure::A,
                    ));
                }
            }
            _ => {}
        }
    }
    MeterValue {
        timestamp: at,
        sampled_value,
    }
}

/// One decimal; a reading that is not finite is reported as 0 rather than `NaN`.
fn decimal(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1}")
    } else {
        "0.0".to_owned()
    }
}

/// The next instant after `wall_ms` on the grid of `interval_s` counted from midnight UTC
/// (`ClockAlignedDataInterval`; the grid restarts at midnight when the interval does not
/// divide the day).
pub(crate) fn next_aligned_wall_ms(wall_ms: u64, interval_s: u32) -> Option<u64> {
    let interval_ms = u64::from(interval_s) * 1000;
    if interval_ms == 0 {
        return None;
    }
    let midnight = wall_ms - wall_ms % DAY_MS;
    let since = wall_ms - midnight;
    let next = midnight + (since / interval_ms + 1) * interval_ms;
    Some(next.min(midnight + DAY_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_from_midnight() {
        let day = 20_000 * DAY_MS;
        assert_eq!(next_aligned_wall_ms(day, 900), Some(day + 900_000));
        assert_eq!(
            next_aligned_wall_ms(day + 899_999, 900),
            Some(day + 900_000)
        );
        assert_eq!(
            next_aligned_wall_ms(day + 900_000, 900),
            Some(day + 1_800_000)
        );
        // 7 h does not divide the day: the last slot ends at midnight.
        assert_eq!(
            next_aligned_wall_ms(day + 22 * 3_600_000, 7 * 3600),
            Some(day + DAY_MS)
        );
        assert_eq!(next_aligned_wall_ms(day, 0), None);
    }
}
