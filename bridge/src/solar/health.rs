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

/// `/metrics` rows per source: `ctrl22_solar_source_readings_total`,
/// `ctrl22_solar_source_errors_total{kind}`, `ctrl22_solar_source_last_reading_age_seconds`,
/// `ctrl22_solar_source_healthy`, each labelled `source` (the index) and `device` (the kind).
impl prometheus_client::collector::Collector for Health {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        use prometheus_client::metrics::MetricType;

        let sources = self.snapshot();
        let labels = |h: &SourceHealth| {
            vec![
                ("source".to_owned(), h.source.0.to_string()),
                ("device".to_owned(), h.kind.clone()),
            ]
        };
        let mut readings = encoder.encode_descriptor(
            "ctrl22_solar_source_readings",
            "Good readings per power source",
            None,
            MetricType::Counter,
        )?;
        for h in &sources {
            ConstCounter::new(h.readings_total as f64)
                .encode(readings.encode_family(&labels(h))?)?;
        }
        let mut errors = encoder.encode_descriptor(
            "ctrl22_solar_source_errors",
            "Failed readings per power source and kind of failure",
            None,
            MetricType::Counter,
        )?;
        for h in &sources {
            for (kind, n) in &h.errors_total {
                let mut l = labels(h);
                l.push(("kind".to_owned(), (*kind).to_owned()));
                ConstCounter::new(*n as f64).encode(errors.encode_family(&l)?)?;
            }
        }
        let mut age = encoder.encode_descriptor(
            "ctrl22_solar_source_last_reading_age_seconds",
            "Seconds since the source's last good reading (absent before the first)",
            None,
            MetricType::Gauge,
        )?;
        for h in &sources {
            if let Some(a) = h.last_reading_age {
                ConstGauge::new(a.as_secs_f64()).encode(age.encode_family(&labels(h))?)?;
            }
        }
        let mut healthy = encoder.encode_descriptor(
            "ctrl22_solar_source_healthy",
            "1 while the source's latest reading was good",
            None,
            MetricType::Gauge,
        )?;
        for h in &sources {
            ConstGauge::new(if h.healthy() { 1.0 } else { 0.0 })
                .encode(healthy.encode_family(&labels(h))?)?;
        }
        Ok(())
    }
}
