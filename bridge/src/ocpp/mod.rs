//! The OCPP 1.6-J adapter: every bay (or the site, with a connector per bay) as a charge
//! point of a backend. The decisions are `ctrl22-ocpp`'s sans-IO [`ChargePoint`]; this
//! module is its async edge.
//!
//! | file | what it is |
//! |---|---|
//! | `mod.rs` | the supervisor: a session per charge point, bay events and meter readings routed to it |
//! | `session.rs` | the task driving one charge point: socket, frames, timers, store |
//! | `transport.rs` | the WebSocket: TLS, subprotocol, security profiles, back-off |
//! | `mapping.rs` | bay events and snapshots in OCPP's words; identities |
//! | `commands.rs` | what the backend asked for, carried out through the site handle |
//! | `firmware.rs` | UpdateFirmware: the download, the bays' firmware jobs, the steps back |
//! | `durable.rs` | the queue and state of each charge point in SQLite |
//! | `metrics.rs` | the sessions' counters for `/metrics` |
//!
//! [`ChargePoint`]: ctrl22_ocpp::ChargePoint

mod commands;
mod durable;
mod firmware;
mod mapping;
mod metrics;
mod session;
mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ctrl22_ocpp::ConnectorEvent;
use tokio::sync::{broadcast, mpsc};

use crate::bay::BayId;
use crate::config::{Config, OcppConfig, OcppLayout};
use crate::handle::SiteHandle;
use crate::site::snapshot::SiteSnapshot;
use crate::site::BayEvent;
use commands::Commands;
use durable::OcppStore;
pub use metrics::OcppMetrics;
use session::{ConnectorInput, SessionParams};
use transport::Security;

/// Connector events waiting for one session (the supervisor waits beyond that).
const SESSION_INPUTS: usize = 64;
/// How often meter readings of charging bays go to their sessions (which sample them per
/// `MeterValueSampleInterval`).
const METER_EVERY: Duration = Duration::from_secs(1);

/// Where a bay is: its session's inputs and its connector there.
struct Route {
    inputs: mpsc::Sender<ConnectorInput>,
    connector_id: u32,
}

struct Supervisor {
    cfg: OcppConfig,
    site_name: String,
    url: String,
    security: Arc<Security>,
    store: OcppStore,
    handle: SiteHandle,
    routes: BTreeMap<String, Route>,
    /// The one charge point's bays in connector order (layout `single`).
    single_bays: Vec<String>,
    /// `[firmware] max_image_bytes`, for UpdateFirmware downloads.
    max_image_bytes: usize,
    warned_unrouted: bool,
    metrics: OcppMetrics,
}

/// Starts the adapter: the OCPP store thread and the supervisor task. Returns the sessions'
/// counters for `/metrics`.
///
/// # Errors
/// A bad TLS setup (unreadable certificates) or a store that cannot be opened.
pub fn spawn(config: &Config, handle: SiteHandle) -> anyhow::Result<OcppMetrics> {
    let cfg = config.ocpp.clone();
    let url = cfg
        .url
        .clone()
        .ok_or_else(|| anyhow::anyhow!("ocpp.url is required"))?;
    let security = Arc::new(Security::from_config(&cfg)?);
    let store = OcppStore::open(&config.storage.path)?;
    let single_bays = config.nodes.keys().cloned().collect();
    let mut supervisor = Supervisor {
        cfg,
        site_name: config.site.name.clone(),
        url,
        security,
        store,
        handle,
        routes: BTreeMap::new(),
        single_bays,
        max_image_bytes: config.firmware.max_image_bytes,
        warned_unrouted: false,
        metrics: OcppMetrics::default(),
    };
    let metrics = supervisor.metrics.clone();
    if supervisor.cfg.layout == OcppLayout::Single {
        supervisor.start_single();
    }
    tokio::spawn(supervisor.run());
    Ok(metrics)
}

impl Supervisor {
    fn params(&self, identity: String, connectors: u32) -> SessionParams {
        let mut charge_point =
            ctrl22_ocpp::Config::new(&self.cfg.vendor, &self.cfg.model, connectors);
        charge_point.serial_number = Some(identity.chars().take(25).collect());
        charge_point.firmware_version = Some(env!("CARGO_PKG_VERSION").to_owned());
        charge_point.message_id_prefix = format!("{:x}-", crate::clock::wall_ms());
        SessionParams {
            identity,
            url: self.url.clone(),
            security: Arc::clone(&self.security),
            reconnect_max: self.cfg.reconnect_max,
            charge_point,
            sample_interval_s: self.cfg.meter_value_sample_interval.as_secs(),
            max_image_bytes: self.max_image_bytes,
        }
    }

    fn spawn_session(
        &self,
        params: SessionParams,
        bays: Vec<BayId>,
    ) -> mpsc::Sender<ConnectorInput> {
        let (inputs_tx, inputs) = mpsc::channel(SESSION_INPUTS);
        let commands = Commands {
            handle: self.handle.clone(),
            bays,
            site_wide: self.cfg.layout == OcppLayout::Single,
        };
        tokio::spawn(session::run(
            params,
            self.store.clone(),
            commands,
            inputs,
            self.metrics.point(),
        ));
        inputs_tx
    }

    /// Layout `single`: one charge point, a connector per configured bay.
    fn start_single(&mut self) {
        let identity = mapping::identity(&self.cfg, &self.site_name, "");
        let connectors = u32::try_from(self.single_bays.len())
            .unwrap_or(u32::MAX)
            .max(1);
        let bays: Vec<BayId> = self.single_bays.iter().cloned().map(BayId).collect();
        let inputs = self.spawn_session(self.params(identity, connectors), bays);
        for (index, dev) in self.single_bays.iter().enumerate() {
            let connector_id = u32::try_from(index + 1).unwrap_or(u32::MAX);
            self.routes.insert(
                dev.clone(),
                Route {
                    inputs: inputs.clone(),
                    connector_id,
                },
            );
        }
    }

    /// The route of a bay; layout `per-bay` starts its session when it is first seen.
    fn route(&mut self, dev: &str) -> Option<&Route> {
        if !self.routes.contains_key(dev) {
            if self.cfg.layout == OcppLayout::Single {
                if !self.warned_unrouted {
                    tracing::warn!(
                        dev,
                        "ocpp layout single: a bay not in [nodes] has no connector"
                    );
                    self.warned_unrouted = true;
                }
                return None;
            }
            let identity = mapping::identity(&self.cfg, &self.site_name, dev);
            let inputs = self.spawn_session(self.params(identity, 1), vec![BayId(dev.to_owned())]);
            self.routes.insert(
                dev.to_owned(),
                Route {
                    inputs,
                    connector_id: 1,
                },
            );
        }
        self.routes.get(dev)
    }

    async fn send(&mut self, dev: &str, event: ConnectorEvent) {
        if let Some(route) = self.route(dev) {
            let input = ConnectorInput {
                connector_id: route.connector_id,
                event,
            };
            // A session ends only with the bridge; waiting here is back-pressure.
            let _ = route.inputs.send(input).await;
        }
    }

    /// Every bay's status from a snapshot: at start and after the event stream lagged.
    async fn resync(&mut self, snapshot: &SiteSnapshot) {
        for bay in &snapshot.bays {
            self.send(&bay.dev, mapping::status_event(bay.status, Some(bay)))
                .await;
        }
    }

    /// After the event stream lagged: statuses, and the sessions as the snapshot has them. A
    /// bay in session opens a transaction on a connector without one, a bay out of session
    /// closes one still open (with the register now); the charge point ignores (and counts)
    /// the one that matches what it has. A stop and start both missed stay one transaction:
    /// only a replay of the store's `bay_events` would split them.
    async fn reconcile(&mut self, snapshot: &SiteSnapshot) {
        self.resync(snapshot).await;
        for bay in &snapshot.bays {
            let meter = mapping::reading(Some(bay), None);
            let event = if bay.session_started_ms.is_some() {
                ConnectorEvent::SessionStarted {
                    id_tag: self.cfg.id_tag.clone(),
                    meter,
                }
            } else {
                ConnectorEvent::SessionStopped {
                    meter,
                    reason: ctrl22_ocpp::StopReason::Other,
                    id_tag: None,
                }
            };
            self.send(&bay.dev, event).await;
        }
    }

    async fn on_event(&mut self, event: BayEvent) {
        let snapshot = self.handle.snapshot();
        let bay = snapshot.bays.iter().find(|b| b.dev == event.bay.0);
        if let Some(connector_event) = mapping::connector_event(&event.kind, bay, &self.cfg.id_tag)
        {
            self.send(&event.bay.0, connector_event).await;
        }
    }

    /// Meter readings of the bays in a session. A reading may be dropped for a session that
    /// is behind (the next one supersedes it); statuses and sessions never are.
    fn meter_readings(&mut self) {
        let snapshot = self.handle.snapshot();
        for bay in snapshot
            .bays
            .iter()
            .filter(|b| b.session_started_ms.is_some())
        {
            if let Some(route) = self.route(&bay.dev) {
                let input = ConnectorInput {
                    connector_id: route.connector_id,
                    event: ConnectorEvent::MeterSample(mapping::reading(Some(bay), None)),
                };
                let _ = route.inputs.try_send(input);
            }
        }
    }

    async fn run(mut self) {
        let mut events = self.handle.subscribe_events();
        let mut meter = tokio::time::interval(METER_EVERY);
        meter.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let snapshot = self.handle.snapshot();
        self.resync(&snapshot).await;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => self.on_event(event).await,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "OCPP adapter fell behind the bay events; resyncing statuses and sessions");
                        let snapshot = self.handle.snapshot();
                        self.reconcile(&snapshot).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = meter.tick() => self.meter_readings(),
            }
        }
    }
}
