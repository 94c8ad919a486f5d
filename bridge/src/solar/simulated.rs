//! A simulated PV plant and household for `demo`: a clear-sky day compressed into
//! `day_ms`, a household base load, and the grid meter that results from both plus what the
//! cars draw.

use std::time::Duration;

use crate::handle::{SiteHandle, SiteRequest};
use crate::site::{PowerReading, SourceId};

/// A PV plant on a sunny day and the house it belongs to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimulatedPv {
    /// Peak PV power at noon.
    pub peak_w: f64,
    /// Length of one simulated day.
    pub day_ms: u64,
    /// What the house draws besides the cars.
    pub house_w: f64,
}

impl SimulatedPv {
    /// PV power at `t_ms`: zero at night (first and last quarter of the day), a sine arch
    /// from sunrise to sunset.
    #[must_use]
    pub fn pv_w(&self, t_ms: u64) -> f64 {
        if self.day_ms == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)] // a day's milliseconds are far below 2^52
        let phase = (t_ms % self.day_ms) as f64 / self.day_ms as f64;
        let daylight = (phase - 0.25) / 0.5;
        if (0.0..=1.0).contains(&daylight) {
            self.peak_w * (daylight * std::f64::consts::PI).sin()
        } else {
            0.0
        }
    }

    /// The meters at `t_ms` while the cars draw `ev_w`: grid positive when importing.
    #[must_use]
    pub fn reading(&self, t_ms: u64, ev_w: i64) -> PowerReading {
        let pv = self.pv_w(t_ms);
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let grid = (self.house_w + ev_w as f64 - pv).round() as i64;
        #[allow(clippy::cast_possible_truncation)]
        PowerReading {
            grid_w: Some(grid),
            pv_w: Some(pv.round() as i64),
            ..PowerReading::default()
        }
    }
}

/// Feeds the site a reading every `interval` until the site task stops.
pub fn spawn(pv: SimulatedPv, site: SiteHandle, interval: Duration) {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            let t = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            let reading = pv.reading(t, site.snapshot().ev_power_w);
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

    const PV: SimulatedPv = SimulatedPv {
        peak_w: 10_000.0,
        day_ms: 1_000_000,
        house_w: 500.0,
    };

    #[test]
    fn dark_at_night_peak_at_noon() {
        assert!(PV.pv_w(0).abs() < 1e-9);
        assert!((PV.pv_w(500_000) - 10_000.0).abs() < 1e-6);
        assert!(PV.pv_w(900_000).abs() < 1e-9);
    }

    #[test]
    fn grid_is_house_plus_cars_minus_pv() {
        let noon = PV.reading(500_000, 7_000);
        assert_eq!(noon.grid_w, Some(500 + 7_000 - 10_000));
        assert_eq!(noon.pv_w, Some(10_000));
    }
}
