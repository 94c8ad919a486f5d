//! The charge-point session: one [`ChargePoint`] per OCPP identity, with 1..N connectors.
//!
//! Inputs: [`ChargePoint::handle_connected`] / [`ChargePoint::handle_disconnected`] (the
//! transport), [`ChargePoint::handle_frame`] (a text frame from the backend),
//! [`ChargePoint::on_connector_event`] (the bay), [`ChargePoint::authorize`] (an id tag to
//! check), [`ChargePoint::report_firmware_status`] (a step of the update the backend asked
//! for), [`ChargePoint::handle_timeout`] (when [`ChargePoint::poll_timeout`] said).
//! Outputs: [`ChargePoint::poll_transmit`], [`ChargePoint::poll_event`].

mod connector;
mod events;
mod firmware;
mod incoming;
mod local_list;
mod meter;
mod outgoing;
mod registration;
mod smart;
mod transactions;

use std::collections::VecDeque;

pub use connector::{
    ConnectorError, ConnectorEvent, ConnectorStatus, MeterReading, OpenTransaction, StopReason,
};
pub use events::{Counters, Event};
pub use firmware::{
    FirmwareProgress, FirmwareTransitionError, FirmwareUpdate, DEFAULT_DOWNLOAD_ATTEMPTS,
    DEFAULT_RETRY_INTERVAL_S, MAX_DOWNLOAD_ATTEMPTS, MAX_RETRY_INTERVAL_S,
};
pub use local_list::LocalList;
pub use registration::Registration;

use connector::Connector;
use outgoing::{Pending, Tag};

use crate::config_keys::Configuration;
use crate::queue::{LocalTxId, StoredMessage, TxQueue};
use crate::rpc::{encode_error, parse_frame, Frame, Outstanding};
use crate::smart_charging::{ChargingLimit, InstalledProfile, Profiles};
use crate::time::Now;

/// What the caller knows before the first connection.
#[derive(Clone, Debug)]
pub struct Config {
    pub vendor: String,
    pub model: String,
    pub serial_number: Option<String>,
    pub firmware_version: Option<String>,
    /// Connectors 1..=N (at least 1).
    pub connectors: u32,
    /// Unique per process start (e.g. a boot counter), so message ids never repeat.
    pub message_id_prefix: String,
    /// How long we wait for the answer to our CALL.
    pub response_timeout_ms: u64,
    /// The wait before a BootNotification retry when the backend gives none (interval 0,
    /// CALLERROR, timeout).
    pub boot_retry_ms: u64,
    /// Only for GetCompositeSchedule's A <-> W conversion (the caps themselves keep their unit).
    pub volts_per_phase: f64,
    /// A connector's rating, reported by GetCompositeSchedule where no profile limits.
    pub rated_current_a: f64,
    /// Whether UnlockConnector can do anything (a socket with a lock); `NotSupported` if not.
    pub has_connector_lock: bool,
    /// The most transaction MeterValues kept while the backend is away.
    pub queue_capacity: usize,
}

impl Config {
    /// Defaults for everything but the identity strings.
    #[must_use]
    pub fn new(vendor: &str, model: &str, connectors: u32) -> Self {
        Self {
            vendor: vendor.to_owned(),
            model: model.to_owned(),
            serial_number: None,
            firmware_version: None,
            connectors,
            message_id_prefix: String::new(),
            response_timeout_ms: 30_000,
            boot_retry_ms: 60_000,
            volts_per_phase: 230.0,
            rated_current_a: 32.0,
            has_connector_lock: false,
            queue_capacity: 5_000,
        }
    }
}

/// What the caller persisted and gives back at start.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    pub tx_messages: Vec<StoredMessage>,
    /// ChangeConfiguration results (`Event::ConfigurationChanged`).
    pub configuration: Vec<(String, String)>,
    /// Connectors set Inoperative (0 = the whole charge point).
    pub inoperative_connectors: Vec<u32>,
    pub charging_profiles: Vec<InstalledProfile>,
    pub local_list: LocalList,
    /// Transactions running at the last stop (`Event::TransactionChanged`), by connector.
    pub open_transactions: Vec<(u32, OpenTransaction)>,
    /// The firmware update's progress ([`ChargePoint::firmware_progress`]) when the charge
    /// point starts again in the middle of one (a Reset): its next steps still follow, the
    /// first Downloading of an update accepted but not started yet included.
    pub firmware: FirmwareProgress,
}

/// Bound on the non-transaction requests waiting (statuses, heartbeats, Authorize, ...).
const MAX_PENDING: usize = 256;

/// An OCPP 1.6-J charge point. See the module docs for its inputs and outputs.
#[derive(Debug)]
pub struct ChargePoint {
    config: Config,
    keys: Configuration,
    connectors: Vec<Connector>,
    registration: Registration,
    connected: bool,
    rpc: Outstanding<Tag>,
    pending: VecDeque<Pending>,
    queue: TxQueue,
    profiles: Profiles,
    local_list: LocalList,
    firmware: FirmwareProgress,
    next_local_tx: LocalTxId,
    last_sent_mono_ms: u64,
    next_aligned_wall_ms: Option<u64>,
    next_limit_change_wall_ms: Option<u64>,
    limits_dirty: bool,
    /// The last cap handed out for the whole charge point (connector 0).
    charge_point_limit: Option<ChargingLimit>,
    last_now: Now,
    transmit: VecDeque<String>,
    events: VecDeque<Event>,
    counters: Counters,
}

impl ChargePoint {
    #[must_use]
    pub fn new(mut config: Config, restored: Restored) -> Self {
        config.connectors = config.connectors.max(1);
        let mut keys = Configuration::new(config.connectors);
        for (key, value) in &restored.configuration {
            keys.restore(key, value);
        }
        let all_inoperative = restored.inoperative_connectors.contains(&0);
        let open = |id: u32| {
            restored
                .open_transactions
                .iter()
                .find(|(connector_id, _)| *connector_id == id)
                .map(|(_, transaction)| transaction.clone())
        };
        let connectors: Vec<Connector> = (1..=config.connectors)
            .map(|id| Connector {
                inoperative: all_inoperative || restored.inoperative_connectors.contains(&id),
                transaction: open(id),
                // Sampling resumes at the first input.
                next_sample_mono_ms: open(id).map(|_| 0),
                ..Connector::default()
            })
            .collect();
        let next_local_tx = restored
            .tx_messages
            .iter()
            .map(|m| m.local_tx)
            .chain(
                connectors
                    .iter()
                    .filter_map(|c| c.transaction.as_ref().map(|t| t.local_tx)),
            )
            .max()
            .map_or(1, |max| max + 1);
        let mut queue = TxQueue::restore(restored.tx_messages, config.queue_capacity);
        for transaction in connectors.iter().filter_map(|c| c.transaction.as_ref()) {
            if let Some(id) = transaction.transaction_id {
                queue.learn(transaction.local_tx, id);
            }
        }
        Self {
            queue,
            profiles: Profiles::restore(restored.charging_profiles, config.connectors),
            local_list: restored.local_list,
            firmware: restored.firmware,
            rpc: Outstanding::new(&config.message_id_prefix),
            config,
            keys,
            connectors,
            registration: Registration::default(),
            connected: false,
            pending: VecDeque::new(),
            next_local_tx,
            last_sent_mono_ms: 0,
            next_aligned_wall_ms: None,
            next_limit_change_wall_ms: None,
            limits_dirty: true,
            charge_point_limit: None,
            last_now: Now::default(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// The transport is up (WebSocket open).
    pub fn handle_connected(&mut self, now: Now) {
        self.last_now = now;
        self.connected = true;
        self.registration.on_connected(now.mono_ms);
        self.queue_status_changes();
        self.drive(now);
    }

    /// The transport went down: the CALL in flight gets no answer (a transaction message
    /// stays at the head and goes again as soon as the next connection is up: the retry
    /// interval is for a backend that does not answer, and waiting it out after an outage
    /// held every transaction message back for up to a minute), stale requests are dropped.
    pub fn handle_disconnected(&mut self, now: Now) {
        self.connected = false;
        if let Some(call) = self.rpc.abandon() {
            if !matches!(call.tag, Tag::Transaction { .. }) {
                self.on_no_answer(now, call.tag);
            }
        }
        self.transmit.clear();
        self.pending.retain(Pending::survives_disconnect);
        self.drive(now);
    }

    /// A text frame from the backend.
    pub fn handle_frame(&mut self, now: Now, text: &str) {
        self.counters.frames_received += 1;
        match parse_frame(text) {
            Ok(Frame::Call {
                id,
                action,
                payload,
            }) => self.handle_call(now, &id, &action, payload),
            Ok(Frame::CallResult { id, payload }) => match self.rpc.finish(&id) {
                Some(call) => self.on_result(now, call.tag, payload),
                None => self.counters.unknown_answer_ids += 1,
            },
            Ok(Frame::CallError { id, code, .. }) => match self.rpc.finish(&id) {
                Some(call) => self.on_call_error(now, call.tag, code),
                None => self.counters.unknown_answer_ids += 1,
            },
            Err(bad) => {
                self.counters.bad_frames += 1;
                if let Some(id) = bad.answer_id {
                    if self.registration.may_answer(now.mono_ms) {
                        self.transmit
                            .push_back(encode_error(&id, bad.code, &bad.description));
                    }
                }
            }
        }
        self.drive(now);
    }

    /// Something happened at connector `connector_id` (1..=N; others are counted and ignored).
    pub fn on_connector_event(&mut self, now: Now, connector_id: u32, event: ConnectorEvent) {
        if connector_id == 0 || connector_id > self.config.connectors {
            self.counters.bad_connector_events += 1;
            return;
        }
        self.connector_event(now, connector_id, event);
        self.drive(now);
    }

    /// Timers: call when [`Self::poll_timeout`] is due (calling early is harmless).
    pub fn handle_timeout(&mut self, now: Now) {
        if let Some(call) = self.rpc.expire(now.mono_ms) {
            self.counters.response_timeouts += 1;
            self.on_no_answer(now, call.tag);
        }
        self.drive(now);
    }

    /// The next frame to send over the WebSocket.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.transmit.pop_front()
    }

    /// The next thing for the caller to act on or persist.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next, in monotonic ms.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let now = self.last_now;
        let wall = |wall_ms: Option<u64>| wall_ms.map(|w| now.mono_at_wall(w));
        let samples = self.connectors.iter().filter_map(|c| c.next_sample_mono_ms);
        // Timers that need the line only count while it is free: a past deadline that
        // cannot act yet would make the caller spin.
        let line_free = self.connected && self.rpc.is_idle();
        [
            self.rpc.deadline(),
            line_free
                .then(|| self.registration.next_boot_mono_ms())
                .flatten(),
            line_free.then(|| self.heartbeat_due_mono_ms()).flatten(),
            (line_free && self.registration.is_accepted())
                .then(|| self.queue.retry_at())
                .flatten(),
            wall(self.next_aligned_wall_ms),
            wall(self.next_limit_change_wall_ms),
        ]
        .into_iter()
        .flatten()
        .chain(samples)
        .min()
    }

    /// Counters for metrics.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Where registration stands.
    #[must_use]
    pub fn registration(&self) -> Registration {
        self.registration
    }

    /// Configuration key values (for the adapter: `WebSocketPingInterval`, ...).
    #[must_use]
    pub fn configuration(&self) -> &Configuration {
        &self.keys
    }

    /// The installed charging profiles.
    #[must_use]
    pub fn charging_profiles(&self) -> &[InstalledProfile] {
        self.profiles.all()
    }

    /// Transaction messages not yet delivered.
    #[must_use]
    pub fn queued_transaction_messages(&self) -> usize {
        self.queue.len()
    }

    fn push_event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn connector(&self, connector_id: u32) -> Option<&Connector> {
        let index = usize::try_from(connector_id.checked_sub(1)?).ok()?;
        self.connectors.get(index)
    }

    fn connector_mut(&mut self, connector_id: u32) -> Option<&mut Connector> {
        let index = usize::try_from(connector_id.checked_sub(1)?).ok()?;
        self.connectors.get_mut(index)
    }

    /// After every input: timers that are due, caps that changed, the next CALL.
    fn drive(&mut self, now: Now) {
        self.last_now = now;
        self.run_meter_timers(now);
        self.update_limits(now);
        self.start_next_call(now);
        while let Some(op) = self.queue.poll_store_op() {
            self.events.push_back(Event::from(op));
        }
    }

    fn queue_request(&mut self, pending: Pending) {
        if self.pending.len() >= MAX_PENDING {
            self.counters.requests_dropped += 1;
            return;
        }
        self.pending.push_back(pending);
    }
}
