//! Time for the core: monotonic milliseconds for timers, wall time for people.
//!
//! Every timeout, hold, grace and refresh in the core runs on [`Now::mono_ms`], which never
//! jumps when the wall clock is stepped (NTP at boot on a box without a real-time clock).
//! Session and departure times use [`Now::wall_ms`]. Decision code never reads a clock: the
//! runtime reads [`Clock::now`] once per input and hands the result in, and tests drive the
//! core with a simulated clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One reading of both clocks, taken together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Now {
    /// Milliseconds on a monotonic scale (any origin): for every timer.
    pub mono_ms: u64,
    /// Milliseconds since the Unix epoch: for session times, departures, logs.
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
}

/// The system clock: monotonic time from process start, wall time from the OS.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    #[must_use]
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Both clocks, now.
    #[must_use]
    pub fn now(&self) -> Now {
        Now {
            mono_ms: millis(self.origin.elapsed()),
            wall_ms: wall_ms(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Milliseconds since the Unix epoch, from the OS.
#[must_use]
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
