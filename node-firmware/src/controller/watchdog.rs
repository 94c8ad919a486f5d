//! The setpoint watchdog: when the host stops writing `smaxcur` (bridge down, mesh partitioned),
//! the bay falls back to a fail-safe current so that the site stays under its fuse limit
//! without anyone talking to it.

use crate::units::Deciamps;

/// Default `wdtsec`: a minute without a setpoint write.
pub const DEFAULT_TIMEOUT_S: i16 = 60;

/// Tracks when `smaxcur` was last written and what the controller should use instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetpointWatchdog {
    /// `wdtsec`; zero disables the watchdog.
    timeout_s: i16,
    /// `fsafecur`: the fallback current.
    fail_safe: Deciamps,
    /// When `smaxcur` was last written; `None` until the first write or step, which arms it so
    /// that a controller that boots without a host also falls back.
    last_write_ms: Option<u64>,
}

impl SetpointWatchdog {
    #[must_use]
    pub const fn new(timeout_s: i16, fail_safe: Deciamps) -> Self {
        Self {
            timeout_s,
            fail_safe,
            last_write_ms: None,
        }
    }

    #[must_use]
    pub const fn timeout_s(&self) -> i16 {
        self.timeout_s
    }

    #[must_use]
    pub const fn fail_safe(&self) -> Deciamps {
        self.fail_safe
    }

    /// Changes `wdtsec`; the current period keeps counting from the last write.
    pub fn set_timeout_s(&mut self, timeout_s: i16) {
        self.timeout_s = timeout_s;
    }

    pub fn set_fail_safe(&mut self, fail_safe: Deciamps) {
        self.fail_safe = fail_safe;
    }

    /// A setpoint write arrived: re-arm.
    pub fn feed(&mut self, now_ms: u64) {
        self.last_write_ms = Some(now_ms);
    }

    /// Starts the first period at `now_ms` if nothing has armed the watchdog yet.
    pub fn arm_if_unarmed(&mut self, now_ms: u64) {
        self.last_write_ms.get_or_insert(now_ms);
    }

    /// Whether `wdtsec` seconds have passed without a write.
    #[must_use]
    pub fn expired(&self, now_ms: u64) -> bool {
        let Ok(timeout_s) = u64::try_from(self.timeout_s) else {
            return false;
        };
        match self.last_write_ms {
            Some(last) if timeout_s > 0 => now_ms.saturating_sub(last) >= timeout_s * 1_000,
            _ => false,
        }
    }

    /// The allocation the controller acts on: the written setpoint while fresh; once expired,
    /// the fail-safe current, but never more than the last setpoint (stale input may only
    /// lower an allocation, never raise it).
    #[must_use]
    pub fn effective(&self, now_ms: u64, written: Deciamps) -> Deciamps {
        if self.expired(now_ms) {
            written.min(self.fail_safe)
        } else {
            written
        }
    }

    /// When the watchdog will expire, if it is armed and enabled.
    #[must_use]
    pub fn deadline_ms(&self) -> Option<u64> {
        let timeout_s = u64::try_from(self.timeout_s).ok().filter(|t| *t > 0)?;
        self.last_write_ms.map(|last| last + timeout_s * 1_000)
    }
}
