//! The pair's one simulated clock: both the site core and the simulated bays read it, and
//! only the harness moves it.

use ctrl22_bridge::clock::Now;

/// Wall time at the start of every run (2026-01-01T00:00Z), so that the core's wall clock
/// and its monotonic clock differ from the first step on.
const WALL_START_MS: u64 = 1_767_225_600_000;

/// Simulated time, monotonic and wall, advanced together.
#[derive(Clone, Copy, Debug)]
pub struct SimClock {
    now: Now,
}

/// The time the site core takes: monotonic for its timers, wall for people.
pub type CoreTime = Now;

impl SimClock {
    pub fn start() -> Self {
        Self {
            now: Now {
                mono_ms: 0,
                wall_ms: WALL_START_MS,
            },
        }
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.plus_ms(ms);
    }

    /// What the site core is handed.
    pub fn core(&self) -> CoreTime {
        self.now
    }

    /// Simulated milliseconds since the start: the simulator's and the network's time line.
    pub fn sim_ms(&self) -> u64 {
        self.now.mono_ms
    }
}
