//! The last 24 hours of site power for the dashboard's chart: one averaged sample per minute,
//! kept in memory only (a restart starts an empty chart; sessions are what the store keeps).
//!
//! Plain data fed with snapshots; the time is the snapshot's own `at_ms`.

use std::collections::VecDeque;
use std::sync::PoisonError;

use axum::extract::State as Extract;
use axum::Json;
use serde::Serialize;

use super::State;
use crate::site::snapshot::SiteSnapshot;

/// How many one-minute samples are kept.
pub const HISTORY_MINUTES: usize = 24 * 60;

const MINUTE_MS: u64 = 60_000;

/// One minute's average power. Sources that were unknown all minute are `None`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PowerSample {
    /// Unix ms of the minute's start.
    pub at_ms: u64,
    pub ev_power_w: i64,
    pub pv_power_w: Option<i64>,
    pub grid_power_w: Option<i64>,
    pub battery_power_w: Option<i64>,
    pub surplus_w: Option<i64>,
}

/// Sums of the minute being collected.
#[derive(Clone, Debug, Default)]
struct Accumulator {
    minute_ms: u64,
    ev: Mean,
    pv: Mean,
    grid: Mean,
    battery: Mean,
    surplus: Mean,
}

#[derive(Clone, Copy, Debug, Default)]
struct Mean {
    sum: i128,
    count: i128,
}

impl Mean {
    fn add(&mut self, value: Option<i64>) {
        if let Some(value) = value {
            self.sum += i128::from(value);
            self.count += 1;
        }
    }

    fn get(self) -> Option<i64> {
        (self.count > 0).then(|| i64::try_from(self.sum / self.count).unwrap_or(i64::MAX))
    }
}

impl Accumulator {
    fn sample(&self) -> PowerSample {
        PowerSample {
            at_ms: self.minute_ms,
            ev_power_w: self.ev.get().unwrap_or(0),
            pv_power_w: self.pv.get(),
            grid_power_w: self.grid.get(),
            battery_power_w: self.battery.get(),
            surplus_w: self.surplus.get(),
        }
    }
}

/// The ring of finished minutes and the minute in progress.
#[derive(Clone, Debug, Default)]
pub struct History {
    minutes: VecDeque<PowerSample>,
    current: Option<Accumulator>,
}

impl History {
    /// Adds a snapshot to its minute; a snapshot of a later minute closes the current one.
    /// Snapshots from an earlier minute (a clock stepped back) start a new minute too, so
    /// the chart never stalls, at the price of one out-of-order point.
    pub fn observe(&mut self, snapshot: &SiteSnapshot) {
        let minute_ms = snapshot.at_ms - snapshot.at_ms % MINUTE_MS;
        if self
            .current
            .as_ref()
            .is_some_and(|a| a.minute_ms != minute_ms)
        {
            if let Some(done) = self.current.take() {
                if self.minutes.len() == HISTORY_MINUTES {
                    self.minutes.pop_front();
                }
                self.minutes.push_back(done.sample());
            }
        }
        let acc = self.current.get_or_insert_with(|| Accumulator {
            minute_ms,
            ..Accumulator::default()
        });
        acc.ev.add(Some(snapshot.ev_power_w));
        acc.pv.add(snapshot.pv_power_w);
        acc.grid.add(snapshot.grid_power_w);
        acc.battery.add(snapshot.battery_power_w);
        acc.surplus.add(snapshot.surplus_w);
    }

    /// Finished minutes, oldest first, then the minute in progress.
    #[must_use]
    pub fn samples(&self) -> Vec<PowerSample> {
        self.minutes
            .iter()
            .cloned()
            .chain(self.current.as_ref().map(Accumulator::sample))
            .collect()
    }
}

/// `GET /api/v1/history`.
pub(super) async fn serve(Extract(state): Extract<State>) -> Json<Vec<PowerSample>> {
    let samples = state
        .history
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .samples();
    Json(samples)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn snap(at_ms: u64, ev: i64, pv: Option<i64>) -> SiteSnapshot {
        SiteSnapshot {
            at_ms,
            ev_power_w: ev,
            pv_power_w: pv,
            ..SiteSnapshot::default()
        }
    }

    #[test]
    fn one_averaged_sample_per_minute() {
        let mut h = History::default();
        h.observe(&snap(60_000, 1000, Some(2000)));
        h.observe(&snap(90_000, 3000, None));
        h.observe(&snap(120_500, 500, Some(100)));
        let s = h.samples();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].at_ms, 60_000);
        assert_eq!(s[0].ev_power_w, 2000);
        // Unknown PV for part of the minute averages over the known part.
        assert_eq!(s[0].pv_power_w, Some(2000));
        assert_eq!(s[0].grid_power_w, None);
        assert_eq!(s[1].at_ms, 120_000);
        assert_eq!(s[1].ev_power_w, 500);
    }

    #[test]
    fn keeps_24_hours() {
        let mut h = History::default();
        for minute in 0..(HISTORY_MINUTES as u64 + 10) {
            h.observe(&snap(minute * MINUTE_MS, 1, None));
        }
        let s = h.samples();
        // The full ring plus the minute in progress.
        assert_eq!(s.len(), HISTORY_MINUTES + 1);
        assert_eq!(s[0].at_ms, 9 * MINUTE_MS);
        assert!(s.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    }

    #[test]
    fn a_clock_stepped_back_starts_a_new_minute() {
        let mut h = History::default();
        h.observe(&snap(10 * MINUTE_MS, 1, None));
        h.observe(&snap(5 * MINUTE_MS, 2, None));
        assert_eq!(h.samples().len(), 2);
    }
}
