//! Refused requests: each one is counted for `/metrics`
//! (`ctrl22_rejected_input_total{kind="http..."}`) and logged, at most one line a second per
//! kind, so a flood of bad requests cannot flood the log.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::handle::{SiteHandle, SiteRequest};

/// The most log lines per kind of refusal in this time.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Counts and logs refusals.
#[derive(Debug)]
pub(super) struct Refusals {
    site: SiteHandle,
    log: Mutex<LogLimiter>,
}

impl Refusals {
    pub(super) fn new(site: SiteHandle) -> Self {
        Self {
            site,
            log: Mutex::new(LogLimiter::new(LOG_INTERVAL)),
        }
    }

    /// Counts one refusal of `kind` and logs `why` unless this kind was logged within the
    /// last second. `why` must not carry secrets (it never holds a token or a cookie).
    pub(super) fn refuse(&self, kind: &'static str, why: &dyn std::fmt::Display) {
        // A full queue drops the count rather than stalling the answer.
        let _ = self.site.try_send(SiteRequest::Rejected(kind));
        let admitted = self
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(kind, Instant::now());
        match admitted {
            Some(0) => tracing::info!("HTTP refused ({kind}): {why}"),
            Some(suppressed) => {
                tracing::info!("HTTP refused ({kind}): {why} ({suppressed} more not logged)");
            }
            None => {}
        }
    }
}

/// At most one log line per kind and interval; counts what it held back.
#[derive(Debug)]
pub(super) struct LogLimiter {
    interval: Duration,
    /// Per kind: when it was last logged and how many were held back since. The kinds are
    /// `&'static str` names from this module's code, so the map cannot grow from outside.
    kinds: HashMap<&'static str, (Instant, u64)>,
}

impl LogLimiter {
    pub(super) fn new(interval: Duration) -> Self {
        Self {
            interval,
            kinds: HashMap::new(),
        }
    }

    /// `Some(held back since the last line)` when a line of `kind` may be logged at `now`.
    pub(super) fn admit(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        match self.kinds.get_mut(kind) {
            Some((last, held)) if now.saturating_duration_since(*last) < self.interval => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                *last = now;
                Some(std::mem::take(held))
            }
            None => {
                self.kinds.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_per_kind_with_the_count_held_back() {
        let mut limiter = LogLimiter::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(limiter.admit("http_host", at(0)), Some(0));
        assert_eq!(limiter.admit("http_host", at(10)), None);
        assert_eq!(limiter.admit("http_host", at(999)), None);
        // Another kind has its own budget.
        assert_eq!(limiter.admit("http", at(500)), Some(0));
        assert_eq!(limiter.admit("http_host", at(1000)), Some(2));
        assert_eq!(limiter.admit("http_host", at(1500)), None);
        assert_eq!(limiter.admit("http_host", at(2600)), Some(1));
        assert_eq!(limiter.admit("http", at(1400)), None);
        assert_eq!(limiter.admit("http", at(1600)), Some(1));
    }
}
