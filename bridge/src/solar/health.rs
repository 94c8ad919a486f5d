//! Source health: per source, readings and errors (by kind) counted, and when the last good
//! reading came. Written by the pollers, read by `/metrics` and the site entities.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::site::SourceId;

/// The counters of one source.
#[derive(Debug, Default)]
pub struct SourceStats {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    readings_total: u64,
    errors_total: BTreeMap<&'static str, u64>,
    last_reading: Option<Instant>,
    last_error: Option<String>,
}

impl SourceStats {
    /// A good reading now.
    pub fn reading(&self, at: Instant) {
        let mut c = self.lock();
        c.readings_total += 1;
        c.last_reading = Some(at);
        c.last_error = None;
    }

    /// A failed reading of `kind` (a [`super::SourceError::kind`]).
    pub fn error(&self, kind: &'static str, why: String) {
        let mut c = self.lock();
        *c.errors_total.entry(kind).or_default() += 1;
        c.last_error = Some(why);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counters stay meaningful after a panic elsewhere; nothing here can be half-written.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one source's health looks like now.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceHealth {
    pub source: SourceId,
    /// The configured kind, as in the file (`fronius`, `mqtt`, ...).
    pub kind: String,
    pub readings_total: u64,
    pub errors_total: BTreeMap<&'static str, u64>,
    /// Since the last good reading; `None` before the first.
    pub last_reading_age: Option<Duration>,
    /// Why the last reading failed, while it is the latest news from the source.
    pub last_error: Option<String>,
}

impl SourceHealth {
    /// A source is healthy while its latest poll or message was good.
    #[must_use]
    pub fn healthy(&self) -> bool {
        self.last_reading_age.is_some() && self.last_error.is_none()
    }
}

/// Every configured source's counters, in configuration order.
#[derive(Clone, Debug, Default)]
pub struct Health {
    sources: Arc<Vec<(String, Arc<SourceStats>)>>,
}

impl Health {
    /// Counters for sources of these kinds.
    #[must_use]
    pub fn new(kinds: Vec<String>) -> Self {
        Self {
            sources: Arc::new(
                kinds
                    .into_iter()
                    .map(|k| (k, Arc::new(SourceStats::default())))
                    .collect(),
            ),
        }
    }

    /// The counters of `source`, for its poller.
    #[must_use]
    pub fn stats(&self, source: SourceId) -> Option<Arc<SourceStats>> {
        self.sources
            .get(usize::from(source.0))
            .map(|(_, s)| Arc::clone(s))
    }

    /// Every source's health now.
    #[must_use]
    pub fn snapshot(&self) -> Vec<SourceHealth> {
        let now = Instant::now();
        self.sources
            .iter()
            .enumerate()
            .map(|(i, (kind, stats))| {
                let c = stats.lock();
                SourceHealth {
                    source: SourceId(u16::try_from(i).unwrap_or(u16::MAX)),
                    kind: kind.clone(),
                    readings_total: c.readings_total,
                    errors_total: c.errors_total.clone(),
                    last_reading_age: c.last_reading.map(|t| now.saturating_duration_since(t)),
                    last_error: c.last_error.clone(),
                }
            })
            .collect()
    }
}
