//! A simulated site for `demo`: a PV plant on a clear day compressed into `day_ms`, a house
//! whose load swings per phase (one phase heavier), and the grid meter at the connection
//! that results from both plus what the cars draw, so the readings follow the cars.

use std::time::Duration;

use crate::handle::{SiteHandle, SiteRequest};
use crate::site::{PowerReading, SourceId};

/// The simulated plant, house and meter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimulatedSite {
    /// Peak PV power at noon (a three-phase inverter: a third on each phase).
    pub peak_w: f64,
    /// Length of one simulated day.
    pub day_ms: u64,
    /// Where in the day the run starts (0.25 = sunrise, 0.5 = noon).
    pub start_of_day: f64,
    /// The house's base load per phase (A) and how far it swings above it.
    pub house_base_a: [f64; 3],
    pub house_swing_a: [f64; 3],
    /// How long one swing of the house load takes.
    pub swing_ms: u64,
    pub voltage: f64,
}

impl SimulatedSite {
    /// Where in the day `t_ms` after the start lies, 0..1.
    fn day_phase(&self, t_ms: u64) -> f64 {
        if self.day_ms == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)] // a run's milliseconds are far below 2^52
        let elapsed = (t_ms % self.day_ms) as f64 / self.day_ms as f64;
        (self.start_of_day + elapsed).fract()
    }

    /// PV power at `t_ms`: zero at night (first and last quarter of the day), a sine arch
    /// from sunrise to sunset.
    #[must_use]
    pub fn pv_w(&self, t_ms: u64) -> f64 {
        let daylight = (self.day_phase(t_ms) - 0.25) / 0.5;
        if (0.0..=1.0).contains(&daylight) {
            self.peak_w * (daylight * std::f64::consts::PI).sin()
        } else {
            0.0
        }
    }

    /// The house's own load per phase at `t_ms` (A): each phase swings on its own period.
    #[must_use]
    pub fn house_a(&self, t_ms: u64) -> [f64; 3] {
        #[allow(clippy::cast_precision_loss)]
        let x = t_ms as f64 / self.swing_ms.max(1) as f64 * std::f64::consts::TAU;
        [0usize, 1, 2].map(|p| {
            #[allow(clippy::cast_precision_loss)]
            let shape = 0.5 + 0.5 * (x / (1.0 + 0.3 * p as f64) + p as f64 * 2.1).sin();
            self.house_base_a[p] + self.house_swing_a[p] * shape
        })
    }

    /// The grid meter at `t_ms` while the cars draw `cars_a` per site phase: per-phase
    /// current and power and their sum, import positive.
    #[must_use]
    pub fn reading(&self, t_ms: u64, cars_a: [f64; 3]) -> PowerReading {
        let pv_per_phase_a = self.pv_w(t_ms) / 3.0 / self.voltage.max(1.0);
        let house = self.house_a(t_ms);
        let grid_a = [0usize, 1, 2].map(|p| house[p] + cars_a[p] - pv_per_phase_a);
        #[allow(clippy::cast_possible_truncation)] // bounded: tens of kW
        let grid_w = grid_a.map(|a| (a * self.voltage).round() as i64);
        #[allow(clippy::cast_possible_truncation)]
        PowerReading {
            grid_w: Some(grid_w.iter().sum()),
            grid_phase_a: Some(grid_a.map(|a| (a * 10.0).round() / 10.0)),
            grid_phase_w: Some(grid_w),
            pv_w: Some(self.pv_w(t_ms).round() as i64),
            ..PowerReading::default()
        }
    }
}

/// Feeds the site a meter reading every `interval` until the site task stops; the cars'
/// draw comes from the site's own picture of what the bays measure.
pub fn spawn(sim: SimulatedSite, site: SiteHandle, interval: Duration) {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            let t = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            let reading = sim.reading(t, site.snapshot().measured_a);
            if !site.try_send(SiteRequest::Power {
                source: SourceId(0),
                reading: Ok(reading),
            }) {
                break;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: SimulatedSite = SimulatedSite {
        peak_w: 9_000.0,
        day_ms: 1_000_000,
        start_of_day: 0.0,
        house_base_a: [4.0, 2.0, 2.0],
        house_swing_a: [10.0, 4.0, 3.0],
        swing_ms: 60_000,
        voltage: 230.0,
    };

    #[test]
    fn dark_at_night_peak_at_noon() {
        assert!(SITE.pv_w(0).abs() < 1e-9);
        assert!((SITE.pv_w(500_000) - 9_000.0).abs() < 1e-6);
        assert!(SITE.pv_w(900_000).abs() < 1e-9);
        let mid_morning = SimulatedSite {
            start_of_day: 0.375,
            ..SITE
        };
        assert!(mid_morning.pv_w(0) > 6_000.0);
    }

    #[test]
    fn the_meter_sees_house_plus_cars_minus_pv_per_phase() {
        let noon = SITE.reading(500_000, [16.0, 16.0, 0.0]);
        let house = SITE.house_a(500_000);
        let phases = noon.grid_phase_a.unwrap_or_default();
        assert!(
            (phases[0] - (house[0] + 16.0 - 13.04)).abs() < 0.1,
            "{phases:?}"
        );
        assert!((phases[2] - (house[2] - 13.04)).abs() < 0.1, "{phases:?}");
        assert_eq!(noon.pv_w, Some(9_000));
        let sum: i64 = noon.grid_phase_w.unwrap_or_default().iter().sum();
        assert_eq!(noon.grid_w, Some(sum));
        for t in (0..600_000).step_by(7_000) {
            let h = SITE.house_a(t);
            assert!(h.iter().zip(SITE.house_base_a).all(|(a, b)| *a >= b - 1e-9));
            assert!(h[0] <= 14.0 + 1e-9);
        }
    }
}
