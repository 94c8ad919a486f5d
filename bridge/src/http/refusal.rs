//! Refused requests: each one is counted for `/metrics`
//! (`ctrl22_rejected_input_total{kind="http..."}`) and logged, at most one line a second per
//! kind, so a flood of bad requests cannot flood the log.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::handle::{SiteHandle, SiteRequest};
use crate::mesh::RejectLog;

/// The most log lines per kind of refusal in this time.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Counts and logs refusals.
#[derive(Debug)]
pub(super) struct Refusals {
    site: SiteHandle,
    /// Keyed by kind names from this module's callers (`&'static str`): the map cannot
    /// grow from outside.
    log: Mutex<RejectLog<&'static str>>,
}

impl Refusals {
    pub(super) fn new(site: SiteHandle) -> Self {
        Self {
            site,
            log: Mutex::new(RejectLog::new(LOG_INTERVAL)),
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
            .note(kind, Instant::now());
        match admitted {
            Some(0) => tracing::info!("HTTP refused ({kind}): {why}"),
            Some(suppressed) => {
                tracing::info!("HTTP refused ({kind}): {why} ({suppressed} more not logged)");
            }
            None => {}
        }
    }
}
