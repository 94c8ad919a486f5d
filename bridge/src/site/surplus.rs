//! The solar budget: the power `pv` and `minpv` bays may draw without importing.
//!
//! `budget = export + what the solar bays draw now - reserve`, with the home battery's
//! rules: below its priority state of charge the battery charges first (what it takes is
//! not surplus); above, the cars may take its charging power too; it discharges into cars
//! only above the buffer state of charge (otherwise its discharge is taken off). Falls of
//! the budget apply at once, rises follow with a time constant. A stale reading removes the
//! budget altogether (the caller clears it), so surplus can only ever lower what bays get.

use super::power::{PowerReading, SurplusSettings};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Surplus {
    settings: SurplusSettings,
    /// Smoothed budget (W) and when it was last updated (monotonic ms).
    smoothed: Option<(f64, u64)>,
}

impl Surplus {
    #[must_use]
    pub fn new(settings: SurplusSettings) -> Self {
        Self {
            settings,
            smoothed: None,
        }
    }

    /// The budget for solar bays (W); `None` without a fresh grid reading.
    #[must_use]
    pub fn budget_w(&self) -> Option<i32> {
        #[allow(clippy::cast_possible_truncation)] // clamped into i32 first
        self.smoothed
            .map(|(w, _)| w.clamp(f64::from(i32::MIN), f64::from(i32::MAX)).round() as i32)
    }

    /// A reading while solar bays draw `solar_bays_w`; readings without grid power leave the
    /// budget as it is.
    pub fn on_reading(&mut self, now_ms: u64, reading: &PowerReading, solar_bays_w: i64) {
        let Some(raw) = raw_budget_w(&self.settings, reading, solar_bays_w) else {
            return;
        };
        let next = match self.smoothed {
            Some((last, at)) if raw > last && self.settings.rise_time_constant_ms > 0 => {
                #[allow(clippy::cast_precision_loss)] // durations far below 2^52 ms
                let dt = now_ms.saturating_sub(at) as f64;
                #[allow(clippy::cast_precision_loss)]
                let tau = self.settings.rise_time_constant_ms as f64;
                last + (raw - last) * (1.0 - (-dt / tau).exp())
            }
            _ => raw,
        };
        self.smoothed = Some((next, now_ms));
    }

    /// The grid reading went stale: no budget until the next one.
    pub fn clear(&mut self) {
        self.smoothed = None;
    }
}

/// The unsmoothed budget (W) of one reading.
fn raw_budget_w(
    settings: &SurplusSettings,
    reading: &PowerReading,
    solar_bays_w: i64,
) -> Option<f64> {
    let grid_w = reading
        .grid_w
        .or_else(|| reading.grid_phase_w.map(|p| p.iter().sum()))?;
    #[allow(clippy::cast_precision_loss)] // powers far below 2^52 W
    let mut budget = (solar_bays_w - grid_w) as f64 - f64::from(settings.reserve_w);
    if let Some(battery) = reading.battery_w {
        #[allow(clippy::cast_precision_loss)]
        let battery = battery as f64;
        let soc = reading.battery_soc_pct;
        if battery < 0.0 {
            // Charging: the cars may take that power once the battery is above its priority.
            if soc.is_some_and(|s| s >= settings.battery_priority_soc) {
                budget -= battery;
            }
        } else {
            let may_discharge =
                matches!((soc, settings.battery_buffer_soc), (Some(s), Some(buffer)) if s > buffer);
            if !may_discharge {
                budget -= battery;
            }
        }
    }
    Some(budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(grid: i64, battery: Option<(i64, f64)>) -> PowerReading {
        PowerReading {
            grid_w: Some(grid),
            battery_w: battery.map(|(w, _)| w),
            battery_soc_pct: battery.map(|(_, s)| s),
            ..PowerReading::default()
        }
    }

    #[test]
    fn export_plus_solar_bays_minus_reserve() {
        let settings = SurplusSettings {
            reserve_w: 200,
            rise_time_constant_ms: 0,
            ..SurplusSettings::default()
        };
        let mut surplus = Surplus::new(settings);
        surplus.on_reading(0, &reading(-3_000, None), 1_400);
        assert_eq!(surplus.budget_w(), Some(4_200));
        surplus.clear();
        assert_eq!(surplus.budget_w(), None);
    }

    #[test]
    fn battery_first_below_priority_and_discharge_only_above_buffer() {
        let settings = SurplusSettings {
            battery_priority_soc: 80.0,
            battery_buffer_soc: Some(90.0),
            rise_time_constant_ms: 0,
            ..SurplusSettings::default()
        };
        let mut surplus = Surplus::new(settings);
        // Charging 2 kW at 50 %: it keeps its 2 kW.
        surplus.on_reading(0, &reading(-1_000, Some((-2_000, 50.0))), 0);
        assert_eq!(surplus.budget_w(), Some(1_000));
        // At 85 % the cars may take its charging power.
        surplus.on_reading(1, &reading(-1_000, Some((-2_000, 85.0))), 0);
        assert_eq!(surplus.budget_w(), Some(3_000));
        // Discharging 1.5 kW into cars at 85 %: not allowed, taken off.
        surplus.on_reading(2, &reading(0, Some((1_500, 85.0))), 4_000);
        assert_eq!(surplus.budget_w(), Some(2_500));
        // Above the buffer it may.
        surplus.on_reading(3, &reading(0, Some((1_500, 95.0))), 4_000);
        assert_eq!(surplus.budget_w(), Some(4_000));
    }

    #[test]
    fn rises_follow_slowly_falls_at_once() {
        let mut surplus = Surplus::new(SurplusSettings::default());
        surplus.on_reading(0, &reading(-1_000, None), 0);
        surplus.on_reading(2_000, &reading(-5_000, None), 0);
        let after = surplus.budget_w().unwrap_or(0);
        assert!(after > 1_000 && after < 2_000, "{after}");
        surplus.on_reading(4_000, &reading(-500, None), 0);
        assert_eq!(surplus.budget_w(), Some(500));
    }
}
