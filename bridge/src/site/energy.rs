//! Energy accounting. The nodes report currents only, so the bridge integrates
//! per-phase current x configured voltage over time, per bay.
//!
//! Integration is left-Riemann between heartbeats: a node reports immediately whenever its
//! state changes, so the last reported current is what flowed until the next report. An
//! interval longer than `max_gap_ms` (the heartbeat timeout) adds nothing: energy is never
//! invented across an offline gap. Such gaps are summed per session instead
//! ([`EnergyMeter::session_uncounted_ms`]), so a session that lost some of its energy says
//! for how long, rather than looking complete.
//!
//! Counts are kept exactly, as integer deciamp-volt-milliseconds, so long sessions do not
//! drift; watt-hours are derived.

use ctrl22_node::Deciamps;

/// One watt-hour in deciamp * volt * millisecond.
const RAW_PER_WH: u64 = 10 * 3_600_000;

/// A bay's energy counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnergyMeter {
    last_sample: Option<(u64, u32)>,
    /// When the last sample before an [`Self::interrupt`] was taken.
    interrupted_at_ms: Option<u64>,
    session_raw: u64,
    total_raw: u64,
    /// Time of the session that no sample covered (offline gaps), ms.
    session_uncounted_ms: u64,
}

impl EnergyMeter {
    /// A meter that continues a lifetime total loaded from storage.
    #[must_use]
    pub fn with_total_wh(total_wh: u64) -> Self {
        Self {
            total_raw: total_wh.saturating_mul(RAW_PER_WH),
            ..Self::default()
        }
    }

    /// Adds the energy since the previous sample and remembers this one.
    /// `currents` are the measured per-phase currents at `now_ms`.
    pub fn sample(&mut self, now_ms: u64, currents: [Deciamps; 3], voltage: u16, max_gap_ms: u64) {
        let deciamps: u32 = currents
            .iter()
            .map(|c| u32::from(c.get().max(0).unsigned_abs()))
            .sum();
        if let Some((then_ms, then_deciamps)) = self.last_sample {
            let dt = now_ms.saturating_sub(then_ms);
            if dt <= max_gap_ms {
                let raw = u64::from(then_deciamps) * u64::from(voltage) * dt;
                self.session_raw = self.session_raw.saturating_add(raw);
                self.total_raw = self.total_raw.saturating_add(raw);
            } else {
                self.session_uncounted_ms = self.session_uncounted_ms.saturating_add(dt);
            }
        } else if let Some(then_ms) = self.interrupted_at_ms {
            self.session_uncounted_ms = self
                .session_uncounted_ms
                .saturating_add(now_ms.saturating_sub(then_ms));
        }
        self.interrupted_at_ms = None;
        self.last_sample = Some((now_ms, deciamps));
    }

    /// The bay stopped reporting: whatever flows until it is back is not counted (the time
    /// is, in [`Self::session_uncounted_ms`], once it is back).
    pub fn interrupt(&mut self) {
        if let Some((then_ms, _)) = self.last_sample.take() {
            self.interrupted_at_ms = Some(then_ms);
        }
    }

    /// A new session starts: its counters restart at zero (the lifetime total goes on).
    pub fn start_session(&mut self) {
        self.session_raw = 0;
        self.session_uncounted_ms = 0;
    }

    /// How long the current session went without readings (the bay offline longer than the
    /// heartbeat timeout): its energy misses what flowed meanwhile. 0 for a complete one.
    #[must_use]
    pub fn session_uncounted_ms(&self) -> u64 {
        self.session_uncounted_ms
    }

    #[must_use]
    pub fn session_wh(&self) -> f64 {
        raw_to_wh(self.session_raw)
    }

    #[must_use]
    pub fn total_wh(&self) -> f64 {
        raw_to_wh(self.total_raw)
    }

    /// Whole watt-hours of the lifetime total, as stored.
    #[must_use]
    pub fn total_wh_floor(&self) -> u64 {
        self.total_raw / RAW_PER_WH
    }
}

#[allow(clippy::cast_precision_loss)] // exact up to 2^53 raw units, about 250 MWh
fn raw_to_wh(raw: u64) -> f64 {
    raw as f64 / RAW_PER_WH as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAP: u64 = 30_000;

    fn amps(a: i16) -> [Deciamps; 3] {
        [Deciamps::from_amps(a); 3]
    }

    #[test]
    fn three_phase_16_a_for_an_hour_is_11_kwh() {
        let mut meter = EnergyMeter::default();
        for second in 0..=3600u64 {
            meter.sample(second * 1000, amps(16), 230, GAP);
        }
        assert!((meter.total_wh() - 3.0 * 16.0 * 230.0).abs() < 1e-6);
        assert!((meter.session_wh() - 11_040.0).abs() < 1e-6);
    }

    #[test]
    fn an_offline_gap_adds_nothing() {
        let mut meter = EnergyMeter::default();
        meter.sample(0, amps(10), 230, GAP);
        meter.sample(60_000, amps(10), 230, GAP);
        assert!(meter.total_wh().abs() < f64::EPSILON);
        meter.interrupt();
        meter.sample(70_000, amps(10), 230, GAP);
        assert!(meter.total_wh().abs() < f64::EPSILON);
        meter.sample(80_000, amps(10), 230, GAP);
        assert!(meter.total_wh() > 0.0);
    }

    #[test]
    fn an_offline_gap_is_counted_as_uncounted_time_of_the_session() {
        let mut meter = EnergyMeter::default();
        meter.start_session();
        meter.sample(0, amps(10), 230, GAP);
        meter.sample(1_000, amps(10), 230, GAP);
        assert_eq!(meter.session_uncounted_ms(), 0);
        // Silent past the timeout, then marked offline, back 2 minutes after the last reading.
        meter.interrupt();
        meter.interrupt();
        meter.sample(121_000, amps(10), 230, GAP);
        assert_eq!(meter.session_uncounted_ms(), 120_000);
        // A long gap without an interrupt in between counts the same way.
        meter.sample(181_000, amps(10), 230, GAP);
        assert_eq!(meter.session_uncounted_ms(), 180_000);
        // Short intervals add nothing; a new session starts complete.
        meter.sample(182_000, amps(10), 230, GAP);
        assert_eq!(meter.session_uncounted_ms(), 180_000);
        meter.start_session();
        assert_eq!(meter.session_uncounted_ms(), 0);
    }

    #[test]
    fn sessions_restart_while_the_total_keeps_growing() {
        let mut meter = EnergyMeter::with_total_wh(1000);
        meter.sample(0, amps(10), 230, GAP);
        meter.sample(3_600, amps(10), 230, GAP);
        let before = meter.total_wh();
        meter.start_session();
        assert!(meter.session_wh().abs() < f64::EPSILON);
        assert!(before > 1000.0);
        assert_eq!(meter.total_wh_floor(), 1006);
    }

    #[test]
    fn negative_readings_count_as_zero() {
        let mut meter = EnergyMeter::default();
        meter.sample(0, [Deciamps(-50); 3], 230, GAP);
        meter.sample(1000, amps(0), 230, GAP);
        assert!(meter.total_wh().abs() < f64::EPSILON);
    }
}
