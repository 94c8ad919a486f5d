//! The task driving one [`ChargePoint`]: its WebSocket (reconnecting with back-off), the
//! frames both ways, its timers, the connector events from the site and what the backend
//! asks for. Store events are committed before any frame after them goes out, so a
//! transaction message is on disk before the backend can see it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ctrl22_ocpp::rust_ocpp::v1_6::types::FirmwareStatus;
use ctrl22_ocpp::{ChargePoint, ConnectorEvent, Event, FirmwareProgress, Now, StopReason};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::commands::Commands;
use super::durable::{self, OcppStore};
use super::firmware::{FirmwareContext, FirmwareUpdates};
use super::mapping;
use super::metrics::{self, PointCounts, PointStats};
use super::transport::{self, Backoff, Security, Socket, TransportError};
use crate::clock::SystemClock;

/// What the site tells a session: something happened at connector n.
#[derive(Clone, Debug)]
pub struct ConnectorInput {
    pub connector_id: u32,
    pub event: ConnectorEvent,
}

/// How one session runs.
#[derive(Clone, Debug)]
pub struct SessionParams {
    pub identity: String,
    pub url: String,
    pub security: Arc<Security>,
    pub reconnect_max: Duration,
    pub charge_point: ctrl22_ocpp::Config,
    /// `MeterValueSampleInterval` (s) until the backend changes it.
    pub sample_interval_s: u64,
    /// `[firmware] max_image_bytes`: the most an UpdateFirmware download may bring.
    pub max_image_bytes: usize,
}

/// A remote start waits this long for the bay's session before its tag is forgotten.
const REMOTE_START_WAIT_MS: u64 = 120_000;
/// Warnings about a backend that cannot be reached, at most once per this.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What the backend asked for at a connector that the next session event must carry.
#[derive(Clone, Debug, Default)]
struct Intent {
    /// RemoteStart's tag, until (monotonic ms).
    remote_tag: Option<(String, u64)>,
    /// Why the next session stop happens, when the backend caused it (RemoteStop, Reset).
    stop_reason: Option<StopReason>,
}

struct Session {
    params: SessionParams,
    cp: ChargePoint,
    /// Resets so far in this process (message ids stay unique across them).
    boots: u32,
    clock: SystemClock,
    store: OcppStore,
    commands: Commands,
    firmware: FirmwareUpdates,
    intents: Vec<Intent>,
    socket: Option<Socket>,
    /// When we last heard anything on the socket (for the ping timeout).
    last_heard: Instant,
    ping_sent: bool,
    /// What `/metrics` shows of this session, and what charge points before the last Reset
    /// counted.
    stats: Arc<PointStats>,
    earlier: ctrl22_ocpp::Counters,
    connections: u64,
    frames_sent: u64,
}

fn now_of(clock: &SystemClock) -> Now {
    let now = clock.now();
    Now {
        mono_ms: now.mono_ms,
        wall_ms: now.wall_ms,
    }
}

/// Runs the charge point until `inputs` closes (the bridge stops) or its store fails.
pub async fn run(
    params: SessionParams,
    store: OcppStore,
    commands: Commands,
    mut inputs: mpsc::Receiver<ConnectorInput>,
    stats: Arc<PointStats>,
) {
    let identity = params.identity.clone();
    let cp = match start_charge_point(&params, &store, 0, FirmwareProgress::default()).await {
        Ok(cp) => cp,
        Err(e) => {
            tracing::error!(identity, "OCPP session not started: {e}");
            return;
        }
    };
    let connectors = params.charge_point.connectors.max(1) as usize;
    let mut session = Session {
        cp,
        boots: 0,
        params,
        clock: SystemClock::new(),
        store,
        commands,
        firmware: FirmwareUpdates::default(),
        intents: vec![Intent::default(); connectors],
        socket: None,
        last_heard: Instant::now(),
        ping_sent: false,
        stats,
        earlier: ctrl22_ocpp::Counters::default(),
        connections: 0,
        frames_sent: 0,
    };
    let mut backoff = Backoff::new(session.params.reconnect_max);
    let mut reconnect_at = Instant::now();
    let mut connecting: Option<Connecting> = None;
    let mut last_warning: Option<Instant> = None;
    loop {
        if let Err(e) = session.flush().await {
            tracing::error!(identity, "OCPP store failed; session stopped: {e}");
            return;
        }
        session.publish();
        let timer = session
            .cp
            .poll_timeout()
            .map(|due_ms| {
                let now_ms = session.clock.now().mono_ms;
                Instant::now() + Duration::from_millis(due_ms.saturating_sub(now_ms))
            })
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3_600));
        let ping_at = session.ping_at();
        let connected = session.socket.is_some();
        tokio::select! {
            frame = next_frame(&mut session.socket) => session.on_frame(frame),
            input = inputs.recv() => match input {
                Some(input) => session.on_input(input),
                None => return,
            },
            status = session.firmware.next_step() => session.on_firmware_step(status),
            () = tokio::time::sleep_until(timer) => {
                let now = now_of(&session.clock);
                session.cp.handle_timeout(now);
            }
            () = tokio::time::sleep_until(ping_at), if connected => session.on_ping_timer().await,
            () = tokio::time::sleep_until(reconnect_at), if !connected && connecting.is_none() => {
                let p = &session.params;
                let (url, identity, security) =
                    (p.url.clone(), p.identity.clone(), Arc::clone(&p.security));
                // Polled beside the other inputs: a slow backend does not stall the bay.
                connecting = Some(Box::pin(async move {
                    transport::connect(&url, &identity, &security).await
                }));
            }
            attempt = until_connected(&mut connecting), if connecting.is_some() => {
                connecting = None;
                match attempt {
                    Ok(socket) => {
                        tracing::info!(identity, "connected to the OCPP backend");
                        backoff.reset();
                        session.connections += 1;
                        session.socket = Some(socket);
                        session.last_heard = Instant::now();
                        session.ping_sent = false;
                        let now = now_of(&session.clock);
                        session.cp.handle_connected(now);
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                            tracing::warn!(identity, "OCPP backend unreachable: {e}; retrying in {delay:?}");
                            last_warning = Some(Instant::now());
                        }
                        reconnect_at = Instant::now() + delay;
                    }
                }
            }
        }
        if session.socket.is_none() && connected {
            reconnect_at = Instant::now() + backoff.next_delay();
        }
    }
}

/// The charge point as the store kept it: at start and after a Reset (OCPP's reboot, which
/// keeps the step of a firmware update in progress: the update's task runs on).
async fn start_charge_point(
    params: &SessionParams,
    store: &OcppStore,
    boots: u32,
    firmware: FirmwareProgress,
) -> anyhow::Result<ChargePoint> {
    let saved = store.load(&params.identity).await?;
    let mut restored = durable::restored(&params.identity, saved);
    restored.firmware = firmware;
    if !restored
        .configuration
        .iter()
        .any(|(key, _)| key == "MeterValueSampleInterval")
    {
        restored.configuration.push((
            "MeterValueSampleInterval".into(),
            params.sample_interval_s.to_string(),
        ));
    }
    let mut config = params.charge_point.clone();
    config.message_id_prefix = format!("{}{boots}-", config.message_id_prefix);
    Ok(ChargePoint::new(config, restored))
}

/// A connection attempt in progress.
type Connecting = Pin<Box<dyn Future<Output = Result<Socket, TransportError>> + Send>>;

async fn until_connected(connecting: &mut Option<Connecting>) -> Result<Socket, TransportError> {
    match connecting {
        Some(attempt) => attempt.await,
        None => std::future::pending().await,
    }
}

/// The next message of the socket; never resolves without one.
async fn next_frame(
    socket: &mut Option<Socket>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match socket {
        Some(socket) => socket.next().await,
        None => std::future::pending().await,
    }
}

impl Session {
    fn publish(&self) {
        self.stats.publish(PointCounts {
            connected: self.socket.is_some(),
            connections: self.connections,
            frames_sent: self.frames_sent,
            session: metrics::carried(&self.earlier, self.cp.counters()),
            queued_tx_messages: u64::try_from(self.cp.queued_transaction_messages())
                .unwrap_or(u64::MAX),
        });
    }

    /// Carries out and persists what the session asked for, then sends its frames.
    async fn flush(&mut self) -> anyhow::Result<()> {
        let connectors = self.params.charge_point.connectors;
        let mut writes = Vec::new();
        let mut actions = Vec::new();
        while let Some(event) = self.cp.poll_event() {
            let for_store = durable::writes(&event, connectors);
            if for_store.is_empty() {
                actions.push(event);
            } else {
                writes.extend(for_store);
                // Availability is both stored and carried out.
                if matches!(event, Event::AvailabilityChanged { .. }) {
                    actions.push(event);
                }
            }
        }
        if !writes.is_empty() {
            self.store.write(&self.params.identity, writes).await?;
        }
        let mut reset = false;
        for event in actions {
            self.note_intent(&event);
            if let Event::TxMessageDiscarded { seq, action } = &event {
                tracing::warn!(
                    identity = self.params.identity,
                    seq,
                    action,
                    "transaction message dropped after its attempts"
                );
            }
            reset |= matches!(event, Event::ResetRequested { .. });
            if let Event::FirmwareUpdateRequested(update) = event {
                let context = FirmwareContext {
                    identity: self.params.identity.clone(),
                    handle: self.commands.handle.clone(),
                    bays: self.commands.bays.clone(),
                    max_image_bytes: self.params.max_image_bytes,
                };
                self.firmware.start(update, context);
                continue;
            }
            self.commands.carry_out(&self.params.identity, &event).await;
        }
        if let Some(socket) = &mut self.socket {
            let mut failed = false;
            while let Some(text) = self.cp.poll_transmit() {
                if let Err(e) = socket.feed(Message::text(text)).await {
                    tracing::info!(identity = self.params.identity, "OCPP send failed: {e}");
                    failed = true;
                    break;
                }
                self.frames_sent += 1;
            }
            if !failed {
                failed = socket.flush().await.is_err();
            }
            // After Reset's answer has gone: close, then reconnect and boot again.
            if reset && !failed {
                let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
            }
            if failed || reset {
                self.drop_socket();
            }
            if reset {
                self.reboot().await?;
            }
        } else {
            // Nothing goes out offline; the session keeps what must survive in its queue.
            while self.cp.poll_transmit().is_some() {}
        }
        Ok(())
    }

    /// Reset: the charge point starts again from what it stored (it boots on the next
    /// connection); what the old one still had to persist is written first.
    async fn reboot(&mut self) -> anyhow::Result<()> {
        let connectors = self.params.charge_point.connectors;
        let writes: Vec<_> = std::iter::from_fn(|| self.cp.poll_event())
            .flat_map(|event| durable::writes(&event, connectors))
            .collect();
        if !writes.is_empty() {
            self.store.write(&self.params.identity, writes).await?;
        }
        self.boots += 1;
        self.earlier = metrics::carried(&self.earlier, self.cp.counters());
        let firmware = self.cp.firmware_progress().clone();
        self.cp = start_charge_point(&self.params, &self.store, self.boots, firmware).await?;
        // The new one knows no statuses yet: the bays' current ones.
        let snapshot = self.commands.handle.snapshot();
        let now = now_of(&self.clock);
        for (index, bay) in self.commands.bays.iter().enumerate() {
            if let Some(bay) = snapshot.bays.iter().find(|b| b.dev == bay.0) {
                let connector_id = u32::try_from(index + 1).unwrap_or(u32::MAX);
                let status = mapping::status_event(bay.status, Some(bay));
                self.cp.on_connector_event(now, connector_id, status);
            }
        }
        Ok(())
    }

    /// A step of the firmware update, for the backend; one that does not follow the last is
    /// logged and not sent.
    fn on_firmware_step(&mut self, status: FirmwareStatus) {
        let now = now_of(&self.clock);
        if let Err(e) = self.cp.report_firmware_status(now, status) {
            tracing::warn!(
                identity = self.params.identity,
                "firmware step not reported: {e}"
            );
        }
    }

    fn drop_socket(&mut self) {
        if self.socket.take().is_some() {
            let now = now_of(&self.clock);
            self.cp.handle_disconnected(now);
        }
    }

    fn on_frame(&mut self, frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) {
        let now = now_of(&self.clock);
        self.last_heard = Instant::now();
        self.ping_sent = false;
        match frame {
            Some(Ok(Message::Text(text))) => self.cp.handle_frame(now, text.as_str()),
            // OCPP-J is text only: a binary frame is a formation violation we cannot answer
            // (no id); counted by the session as a bad frame.
            Some(Ok(Message::Binary(_))) => self.cp.handle_frame(now, ""),
            Some(Ok(Message::Close(_))) | None => {
                tracing::info!(
                    identity = self.params.identity,
                    "OCPP backend closed the connection"
                );
                self.drop_socket();
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::info!(identity = self.params.identity, "OCPP connection lost: {e}");
                self.drop_socket();
            }
        }
    }

    /// `WebSocketPingInterval` (0: no pings): ping when idle that long, give up after
    /// another interval without any answer.
    fn ping_at(&self) -> Instant {
        let interval = u64::from(self.cp.configuration().int("WebSocketPingInterval"));
        if interval == 0 {
            return Instant::now() + Duration::from_secs(3_600);
        }
        self.last_heard + Duration::from_secs(interval) * if self.ping_sent { 2 } else { 1 }
    }

    async fn on_ping_timer(&mut self) {
        if self.ping_sent {
            tracing::info!(
                identity = self.params.identity,
                "OCPP backend stopped answering pings"
            );
            self.drop_socket();
            return;
        }
        self.ping_sent = true;
        if let Some(socket) = &mut self.socket {
            if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                self.drop_socket();
            }
        }
    }

    fn intent(&mut self, connector_id: u32) -> Option<&mut Intent> {
        let index = usize::try_from(connector_id.checked_sub(1)?).ok()?;
        self.intents.get_mut(index)
    }

    fn note_intent(&mut self, event: &Event) {
        let mono = self.clock.now().mono_ms;
        match event {
            Event::RemoteStartRequested {
                connector_id,
                id_tag,
            } => {
                if let Some(intent) = self.intent(*connector_id) {
                    intent.remote_tag = Some((id_tag.clone(), mono + REMOTE_START_WAIT_MS));
                }
            }
            Event::RemoteStopRequested { connector_id } => {
                if let Some(intent) = self.intent(*connector_id) {
                    intent.stop_reason = Some(StopReason::Remote);
                }
            }
            Event::ResetRequested { hard } => {
                let reason = if *hard {
                    StopReason::HardReset
                } else {
                    StopReason::SoftReset
                };
                for intent in &mut self.intents {
                    intent.stop_reason = Some(reason);
                }
            }
            _ => {}
        }
    }

    /// A bay event for the charge point, with what the backend asked for filled in: its tag
    /// on a session it started, its reason (Remote, SoftReset, HardReset) on one it stopped.
    fn on_input(&mut self, input: ConnectorInput) {
        let mono = self.clock.now().mono_ms;
        let ConnectorInput {
            connector_id,
            mut event,
        } = input;
        if let Some(intent) = self.intent(connector_id) {
            match &mut event {
                ConnectorEvent::SessionStarted { id_tag, .. } => {
                    if let Some((tag, until)) = intent.remote_tag.take() {
                        if mono <= until {
                            *id_tag = tag;
                        }
                    }
                    intent.stop_reason = None;
                }
                ConnectorEvent::SessionStopped { reason, .. } => {
                    if let Some(cause) = intent.stop_reason.take() {
                        *reason = cause;
                    }
                }
                _ => {}
            }
        }
        let now = now_of(&self.clock);
        self.cp.on_connector_event(now, connector_id, event);
    }
}
