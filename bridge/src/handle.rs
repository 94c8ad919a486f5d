//! What adapters hold to talk to the site core: [`SiteHandle`] and its requests.
//!
//! Adapters (Home Assistant, HTTP, solar sources, later OCPP) depend on this module, never on
//! the wiring in `runtime`: they send [`SiteRequest`]s to the one task that owns the site and
//! read the snapshots it publishes.

use std::sync::Arc;
use std::time::Duration;

use ctrl22_node::mesh::ParName;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::bay::BayId;
use crate::ota::esp32::{CancelError, Esp32Image};
use crate::ota::folder::FolderImage;
use crate::ota::jobs::{AnyJobView, AvrImage, Refusal};
use crate::site::parameters::{ParAnswer, ParRefusal};
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
    /// An OCPP backend's cap for a bay in A (`None`: lifted); only ever lowers.
    BayCap {
        bay: crate::bay::BayId,
        cap_a: Option<f64>,
    },
    /// An OCPP backend's limit on the site's phases in A (`None`: lifted).
    OcppSiteLimit { limit_a: Option<[f64; 3]> },
    /// Firmware: queue an install, or list the jobs.
    Firmware(FirmwareRequest),
    /// An operator's `getpar` (`value: None`) or `setpar` of a bay's controller, sent by the
    /// site so that the reply reaches the operator; answered when the node replied.
    Parameter {
        bay: BayId,
        par: ParName,
        value: Option<i16>,
        reply: oneshot::Sender<Result<ParAnswer, ParRefusal>>,
    },
}

/// A firmware request to the site task.
#[derive(Debug)]
pub enum FirmwareRequest {
    /// Flash `image` into `bay`'s controller (`force`: even while it charges); the reply is
    /// the job's id.
    Install {
        bay: BayId,
        image: AvrImage,
        force: bool,
        reply: oneshot::Sender<Result<u64, Refusal>>,
    },
    /// Upgrade the ESP32 nodes of `image`'s board (`bay`: the bay the request named, which
    /// must be of that board); the reply is the job's id.
    InstallEsp32 {
        bay: Option<BayId>,
        image: Esp32Image,
        reply: oneshot::Sender<Result<u64, Refusal>>,
    },
    /// Cancel job `job`, AVR or ESP32.
    Cancel {
        job: u64,
        reply: oneshot::Sender<Result<(), CancelError>>,
    },
    /// Every job, running ones first.
    Jobs {
        reply: oneshot::Sender<Vec<AnyJobView>>,
    },
    /// The firmware folder's images, rescanned.
    Catalogue(Vec<FolderImage>),
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

    /// Queues a firmware install through the site core; the answer is the job's id.
    ///
    /// # Errors
    /// The core's refusal, or `None` when the site task is gone.
    pub async fn install_firmware(
        &self,
        bay: BayId,
        image: AvrImage,
        force: bool,
    ) -> Option<Result<u64, Refusal>> {
        let (reply, answer) = oneshot::channel();
        let request = FirmwareRequest::Install {
            bay,
            image,
            force,
            reply,
        };
        self.requests
            .send(SiteRequest::Firmware(request))
            .await
            .ok()?;
        answer.await.ok()
    }

    /// Queues an ESP32 upgrade of `image`'s board through the site core; the answer is the
    /// job's id, `None` when the site task is gone.
    pub async fn install_esp32(
        &self,
        bay: Option<BayId>,
        image: Esp32Image,
    ) -> Option<Result<u64, Refusal>> {
        let (reply, answer) = oneshot::channel();
        let request = FirmwareRequest::InstallEsp32 { bay, image, reply };
        self.requests
            .send(SiteRequest::Firmware(request))
            .await
            .ok()?;
        answer.await.ok()
    }

    /// Cancels firmware job `job`; `None` when the site task is gone.
    pub async fn cancel_firmware(&self, job: u64) -> Option<Result<(), CancelError>> {
        let (reply, answer) = oneshot::channel();
        let request = FirmwareRequest::Cancel { job, reply };
        self.requests
            .send(SiteRequest::Firmware(request))
            .await
            .ok()?;
        answer.await.ok()
    }

    /// Every firmware job; `None` when the site task is gone.
    pub async fn firmware_jobs(&self) -> Option<Vec<AnyJobView>> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(SiteRequest::Firmware(FirmwareRequest::Jobs { reply }))
            .await
            .ok()?;
        answer.await.ok()
    }

    /// An operator's `getpar`/`setpar` through the site; `None` when the site task is gone.
    pub async fn parameter(
        &self,
        bay: BayId,
        par: ParName,
        value: Option<i16>,
    ) -> Option<Result<ParAnswer, ParRefusal>> {
        let (reply, answer) = oneshot::channel();
        let request = SiteRequest::Parameter {
            bay,
            par,
            value,
            reply,
        };
        self.requests.send(request).await.ok()?;
        answer.await.ok()
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
