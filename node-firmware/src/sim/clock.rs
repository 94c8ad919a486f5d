//! The drivers' link between wall time and simulated time (`--speed`).

use std::time::Duration;

use tokio::time::Instant;

use super::SimError;

/// How often the drivers advance the world in wall time; the world sub-steps inside.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Simulated milliseconds since the driver started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SimClock {
    started: Instant,
    speed: f64,
}

impl SimClock {
    pub(crate) fn start(speed: f64) -> Result<Self, SimError> {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(SimError::Speed(speed));
        }
        Ok(Self {
            started: Instant::now(),
            speed,
        })
    }

    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub(crate) fn now_ms(&self) -> u64 {
        // Non-negative and far below 2^53 for any run that ends this millennium.
        (self.started.elapsed().as_secs_f64() * 1000.0 * self.speed) as u64
    }
}
