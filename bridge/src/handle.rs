//! What adapters hold to talk to the site core: [`SiteHandle`] and its requests.
//!
//! Adapters (Home Assistant, HTTP, solar sources, later OCPP) depend on this module, never on
//! the wiring in `runtime`: they send [`SiteRequest`]s to the one task that owns the site and
//! read the snapshots it publishes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::site::snapshot::SiteSnapshot;
use crate::site::{
    BayEvent, ExternalLimit, LimitScope, PowerReading, SettingChange, SettingError, SourceId,
};

/// How often the site allocates and delivers setpoints.
pub const CONTROL_INTERVAL: Duration = Duration::from_secs(1);

/// A request to the site task.
#[derive(Debug)]
pub enum SiteRequest {
    /// Apply a set of changes, all or nothing; the reply says whether they were accepted.
    Apply {
        changes: Vec<SettingChange>,
        reply: oneshot::Sender<Result<(), SettingError>>,
    },
    /// A power source's reading (or `Err`: the source is down, and why).
    Power {
        source: SourceId,
        reading: Result<PowerReading, String>,
    },
    /// An external limit (grid operator, energy manager) for `scope`; `None` lifts it.
    ExternalLimit {
        source: SourceId,
        scope: LimitScope,
        limit: Option<ExternalLimit>,
    },
    /// An adapter refused some input (counted for `/metrics`).
    Rejected(&'static str),
}

/// What adapters hold to read and change the site.
#[derive(Clone, Debug)]
pub struct SiteHandle {
    requests: mpsc::Sender<SiteRequest>,
    snapshot: watch::Receiver<Arc<SiteSnapshot>>,
    events: broadcast::Sender<BayEvent>,
}

impl SiteHandle {
    /// A handle over the site task's request queue, snapshot channel and event stream.
    #[must_use]
    pub fn new(
        requests: mpsc::Sender<SiteRequest>,
        snapshot: watch::Receiver<Arc<SiteSnapshot>>,
        events: broadcast::Sender<BayEvent>,
    ) -> Self {
        Self {
            requests,
            snapshot,
            events,
        }
    }

    /// Bay events from now on, in order, for a view (Home Assistant, a live stream). The
    /// stream is bounded: a subscriber that falls behind gets `RecvError::Lagged` and should
    /// resync from [`SiteHandle::snapshot`]. Durable facts (sessions) are in the store.
    #[must_use]
    pub fn subscribe_events(&self) -> broadcast::Receiver<BayEvent> {
        self.events.subscribe()
    }

    /// The latest picture of the site.
    #[must_use]
    pub fn snapshot(&self) -> Arc<SiteSnapshot> {
        Arc::clone(&self.snapshot.borrow())
    }

    /// A receiver that wakes on every new snapshot.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Arc<SiteSnapshot>> {
        self.snapshot.clone()
    }

    /// Applies one setting through the site core, the one path every setting takes.
    ///
    /// # Errors
    /// The core's refusal, or [`SettingError::Unavailable`] when the site task is gone.
    pub async fn apply(&self, change: SettingChange) -> Result<(), SettingError> {
        self.apply_all(vec![change]).await
    }

    /// Applies a set of changes, all or nothing: the core validates every one before it
    /// applies any, so a refused set changes nothing.
    ///
    /// # Errors
    /// The core's refusal of the first bad change, or [`SettingError::Unavailable`] when
    /// the site task is gone.
    pub async fn apply_all(&self, changes: Vec<SettingChange>) -> Result<(), SettingError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(SiteRequest::Apply { changes, reply })
            .await
            .map_err(|_| SettingError::Unavailable)?;
        answer.await.map_err(|_| SettingError::Unavailable)?
    }

    /// Sends a request without waiting for an answer.
    pub async fn send(&self, request: SiteRequest) {
        // A stopped site task means the process is shutting down; nothing to do.
        let _ = self.requests.send(request).await;
    }

    /// Whether the site task has stopped taking requests.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }

    /// Sends a request if there is room; `false` once the site task has stopped.
    #[must_use]
    pub fn try_send(&self, request: SiteRequest) -> bool {
        !matches!(
            self.requests.try_send(request),
            Err(mpsc::error::TrySendError::Closed(_))
        )
    }
}
