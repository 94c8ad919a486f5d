//! The IO side of every source: polled devices on their interval with a timeout, pushed
//! ones (MQTT, Speedwire) watched for silence. Each result goes to the site core; an error
//! or timeout goes as `Err(why)` so the core drops what the source contributed. Errors are
//! counted per kind and logged at most once a minute per source (with the count since).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::error::SourceError;
use super::health::SourceStats;
use super::value::{self, Sample};
use crate::config::{OnStale, SolarSourceConfig};
use crate::handle::{SiteHandle, SiteRequest};
use crate::site::{LimitScope, SourceId};

/// At most one error line per source this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What a source's results are delivered with.
#[derive(Debug)]
pub struct Delivery {
    pub source: SourceId,
    pub config: SolarSourceConfig,
    pub handle: SiteHandle,
    pub stats: Arc<SourceStats>,
    log: ErrorLog,
}

impl Delivery {
    #[must_use]
    pub fn new(
        source: SourceId,
        config: SolarSourceConfig,
        handle: SiteHandle,
        stats: Arc<SourceStats>,
    ) -> Self {
        Self {
            source,
            config,
            handle,
            stats,
            log: ErrorLog::default(),
        }
    }

    /// Hands one result to the site core, counts it, and logs errors rate-limited.
    pub async fn deliver(&mut self, result: Result<Sample, SourceError>) {
        let request = match result {
            Ok(sample) => {
                self.stats.reading(Instant::now());
                if self.log.failing {
                    tracing::info!("solar.sources[{}]: reading again", self.source.0);
                    self.log.failing = false;
                }
                self.request(Ok(sample))
            }
            Err(e) => {
                self.stats.error(e.kind(), e.to_string());
                self.log.error(self.source, &e);
                self.request(Err(e))
            }
        };
        if let Some(request) = request {
            self.handle.send(request).await;
        }
    }

    fn request(&self, result: Result<Sample, SourceError>) -> Option<SiteRequest> {
        let source = self.source;
        match result {
            Ok(Sample::Power(reading)) => Some(SiteRequest::Power {
                source,
                reading: Ok(reading),
            }),
            Ok(Sample::Limit(limit)) => Some(SiteRequest::ExternalLimit {
                source,
                scope: self.scope(),
                limit,
            }),
            Err(e) if !self.config.is_limit() => Some(SiteRequest::Power {
                source,
                reading: Err(e.to_string()),
            }),
            // A failing limit source keeps its last value, or falls to the safe one.
            Err(_) => match self.config.on_stale {
                None | Some(OnStale::Keep(_)) => None,
                Some(OnStale::Value(safe)) => {
                    let unit = self.config.unit.unwrap_or(crate::config::LimitUnit::W);
                    // Checked by the configuration's validation; a bad one keeps the last value.
                    value::limit(safe, unit)
                        .ok()
                        .map(|limit| SiteRequest::ExternalLimit {
                            source,
                            scope: self.scope(),
                            limit: Some(limit),
                        })
                }
            },
        }
    }

    fn scope(&self) -> LimitScope {
        match self.config.applies_to.as_deref() {
            None | Some("site") => LimitScope::Site,
            Some(circuit) => LimitScope::Circuit(circuit.to_owned()),
        }
    }
}

/// Rate-limited error logging for one source.
#[derive(Debug, Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
    failing: bool,
}

impl ErrorLog {
    fn error(&mut self, source: SourceId, e: &SourceError) {
        self.failing = true;
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        self.last = Some(now);
        let suppressed = std::mem::take(&mut self.suppressed);
        tracing::warn!(
            "solar.sources[{}]: {e} ({suppressed} more errors since the last report)",
            source.0
        );
    }
}

/// Polls `read` every `interval` (missed ticks are skipped, not bunched), each try bounded
/// by `timeout`, until the site is gone.
pub async fn run_polled<F, Fut>(mut delivery: Delivery, mut read: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Sample, SourceError>>,
{
    let timeout = delivery.config.timeout();
    let mut tick = tokio::time::interval(delivery.config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let result = tokio::time::timeout(timeout, read())
            .await
            .unwrap_or(Err(SourceError::Timeout(timeout)));
        delivery.deliver(result).await;
        if delivery.handle.is_closed() {
            return;
        }
    }
}

/// Delivers what a pushed source sends; silence for `timeout` is an error, repeated each
/// `timeout` until the source speaks again.
pub async fn run_pushed(
    mut delivery: Delivery,
    mut messages: mpsc::Receiver<Result<Sample, SourceError>>,
) {
    let timeout = delivery.config.timeout();
    loop {
        match tokio::time::timeout(timeout, messages.recv()).await {
            Ok(Some(result)) => delivery.deliver(result).await,
            Ok(None) => return,
            Err(_) => delivery.deliver(Err(SourceError::Stale(timeout))).await,
        }
        if delivery.handle.is_closed() {
            return;
        }
    }
}
