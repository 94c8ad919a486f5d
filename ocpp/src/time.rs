//! The caller's clock reading: monotonic milliseconds for timers, wall time for the backend.

use chrono::{DateTime, Utc};

/// One reading of both clocks, taken together by the caller.
///
/// Timers (heartbeat, response timeout, retries, sampling) run on `mono_ms`, which never
/// jumps; timestamps in messages, clock-aligned meter values and charging schedules use
/// `wall_ms`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Now {
    /// Milliseconds on a monotonic scale (any origin).
    pub mono_ms: u64,
    /// Milliseconds since the Unix epoch (UTC).
    pub wall_ms: u64,
}

impl Now {
    /// Both clocks at the same reading; for tests and simulations with one time line.
    #[must_use]
    pub const fn at(ms: u64) -> Self {
        Self {
            mono_ms: ms,
            wall_ms: ms,
        }
    }

    /// The reading `ms` later on both clocks.
    #[must_use]
    pub const fn plus_ms(self, ms: u64) -> Self {
        Self {
            mono_ms: self.mono_ms.saturating_add(ms),
            wall_ms: self.wall_ms.saturating_add(ms),
        }
    }

    /// The wall clock as a UTC timestamp, whole milliseconds (OCPP peers choke on nanoseconds).
    #[must_use]
    pub fn wall(self) -> DateTime<Utc> {
        wall_from_ms(self.wall_ms)
    }

    /// The monotonic time at which the wall clock reads `wall_ms`, assuming neither clock
    /// jumps in between (re-derived at every call, so a wall step is corrected on the next one).
    #[must_use]
    pub fn mono_at_wall(self, wall_ms: u64) -> u64 {
        self.mono_ms
            .saturating_add(wall_ms.saturating_sub(self.wall_ms))
    }
}

/// A UTC timestamp from milliseconds since the epoch (saturating at chrono's range).
#[must_use]
pub fn wall_from_ms(wall_ms: u64) -> DateTime<Utc> {
    i64::try_from(wall_ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Milliseconds since the epoch of a timestamp (0 before the epoch).
#[must_use]
pub fn wall_ms_of(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp_millis()).unwrap_or(0)
}
