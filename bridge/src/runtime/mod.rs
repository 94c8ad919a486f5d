//! The bridge's running process: the wiring. One task owns the [`Site`]; the mesh link,
//! Home Assistant, HTTP and storage talk to it by messages. It runs the control cycle every
//! [`CONTROL_INTERVAL`] and otherwise sleeps until the core's own deadline
//! ([`Site::poll_timeout`]: the allocation a change asked for). No locks are held across awaits:
//! readers get snapshots through a `watch` channel and bay events through a bounded
//! broadcast, writers send [`SiteRequest`]s. No module imports this one: adapters depend on
//! [`crate::handle`].
//!
//! Every queue fed from outside is bounded: mesh events (the link waits), requests (callers
//! wait), commands to the mesh (a full queue drops the command, which the sequencer then
//! counts as possibly applied), the store (the site task waits: losing a session is worse
//! than a late cycle).

#[cfg(feature = "demo")]
pub mod demo;
mod firmware;
mod parameters;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::clock::SystemClock;
use crate::handle::{SiteHandle, SiteRequest, CONTROL_INTERVAL};

use crate::bay::BayId;
use crate::config::{Config, MeshTransport};
use crate::mesh::{self, LinkTraffic, MeshCommand, MeshEvent, MeshSender};
use crate::site::record::BaySettings;
use crate::site::snapshot::SiteSnapshot;
use crate::site::{BayEvent, Input, Output, Site, SiteSettings, Stored};
use crate::store::Store;

/// The site core's settings from the configuration file.
#[must_use]
pub fn site_settings(config: &Config) -> SiteSettings {
    let nodes = config
        .nodes
        .iter()
        .map(|(dev, node)| {
            let id = BayId(dev.clone());
            let mut settings = BaySettings::new(&id);
            if let Some(name) = &node.name {
                settings.name.clone_from(name);
            }
            settings.rotation = node.phase_rotation.0;
            if let Some(max) = node.max_current {
                settings.max_current = max;
            }
            settings.priority = node.priority;
            settings.mode = node.mode;
            (id, (settings, node.circuit.clone()))
        })
        .collect();
    let circuits = config
        .site
        .circuits
        .iter()
        .map(|c| crate::allocate::Circuit {
            id: c.id.clone(),
            parent: c.parent.clone(),
            limit: c.max_current,
        })
        .collect();
    SiteSettings {
        name: config.site.name.clone(),
        voltage: config.site.voltage,
        limits: config.site.max_current,
        circuits,
        strategy: config.site.strategy,
        default_mode: config.site.default_mode,
        rotation_period_ms: millis(config.site.rotation_period),
        min_on_ms: millis(config.site.min_on),
        min_off_ms: millis(config.site.min_off),
        heartbeat_timeout_ms: millis(config.mesh.heartbeat_timeout),
        max_bays: config.site.max_bays,
        wdtsec: config.mesh.wdtsec,
        setpoint_refresh_ms: millis(config.mesh.setpoint_refresh),
        ack_timeout_ms: millis(mesh::reply_deadline(config.mesh.transport)),
        time_zone: config.site.time_zone(),
        default_circuit: config.site.default_circuit.clone(),
        nodes,
        power: config.site.power_settings(),
        autostart: !(config.ocpp.enabled
            && config.ocpp.authorization == crate::config::OcppAuthorization::Backend),
        ..SiteSettings::default()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Starts the mesh link of `config`, forwarding node messages to `events`.
///
/// # Errors
/// A bad broker URL, mesh id or listen address.
pub async fn start_mesh_link(
    config: &Config,
    events: mpsc::Sender<MeshEvent>,
) -> anyhow::Result<MeshSender> {
    let sender = match config.mesh.transport {
        MeshTransport::Mqtt => mesh::spawn_mqtt(&config.mqtt, &config.mesh.mesh_id, events).await,
        MeshTransport::Tcp => {
            mesh::spawn_tcp(
                config.mesh.tcp_listen,
                mesh::TcpLinkOptions {
                    allow: config.mesh.tcp_allow.clone(),
                },
                events,
            )
            .await
        }
    };
    sender.context("starting the mesh link")
}

/// Runs the bridge until `shutdown` resolves.
///
/// # Errors
/// Fails when a required adapter cannot start (bad broker URL, port in use), or when the
/// mesh link or the store dies while running (the process then exits 1 so a supervisor
/// restarts it).
pub async fn run(
    mut config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    if let Some(listen) = config.mqtt.embedded {
        let login = crate::broker::BrokerLogin::from_config(&config.mqtt);
        let broker =
            crate::broker::start_with_login(listen, login.as_ref()).context("mqtt.embedded")?;
        tracing::info!("embedded MQTT broker on {}", broker.addr);
        // With its own broker the bridge is a client of it, whatever `mqtt.url` says.
        config.mqtt.url = broker.url();
    }
    let bridge = Bridge::start(&config).await?;
    let ocpp = if config.ocpp.enabled {
        Some(crate::ocpp::spawn(&config, bridge.handle.clone()).context("ocpp")?)
    } else {
        None
    };
    let mut http: crate::http::HttpOptions = (&config).into();
    http.ocpp = ocpp;
    http.link = Some(bridge.traffic.clone());
    http.solar = Some(crate::solar::spawn(&config, &bridge.handle)?);
    let _http = crate::http::spawn(http, bridge.handle.clone()).await?;
    if config.homeassistant.enabled {
        crate::ha::spawn(&config, bridge.handle.clone())?;
    }
    bridge.run_until(shutdown).await
}

/// How many bay events a view subscriber (HA, SSE) may fall behind before it is told it
/// lagged and resyncs from a snapshot.
const VIEW_EVENTS: usize = 4096;
/// Store batches waiting for the disk before the site task waits for it.
const STORE_QUEUE: usize = 256;
/// Commits that fail in a row before the bridge stops (a full or read-only disk).
const STORE_FAILURES: u32 = 5;
/// Command batches waiting for the mesh link; beyond that commands are dropped (and count
/// as possibly applied).
const COMMAND_BATCHES: usize = 4096;

/// The wired-up bridge: the site task and its adapters.
#[derive(Debug)]
pub struct Bridge {
    pub handle: SiteHandle,
    /// What the site task handed to the mesh link (for `/metrics`).
    pub traffic: LinkTraffic,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    stop: oneshot::Sender<()>,
}

impl Bridge {
    /// Starts the store, the site task and the mesh link.
    ///
    /// # Errors
    /// When the store cannot be opened, the circuit tree is invalid or the mesh link cannot
    /// start.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let path = &config.storage.path;
        let store =
            Store::open(path).with_context(|| format!("storage.path {}", path.display()))?;
        let stored = Stored {
            totals_wh: store.energy_totals().context("reading energy totals")?,
            reservations: store.reservations().context("reading reservations")?,
        };
        let stored_settings = store.settings().context("reading stored settings")?;
        let storage = StoreWriter::spawn(store)?;
        let (mesh_events_tx, mesh_events) = mpsc::channel(8192);
        let link = start_mesh_link(config, mesh_events_tx).await?;
        let clock = SystemClock::new();
        let now = clock.now();
        if !stored.reservations.is_empty() {
            tracing::info!(
                bays = stored.reservations.len(),
                "reserving what bays may still be drawing until they are heard"
            );
        }
        let mut site = Site::new(site_settings(config), stored, now).context("site.circuits")?;
        site.set_firmware_params(firmware::params(&config.firmware));
        let restored = site.restore_settings(now, stored_settings);
        let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(site.snapshot(now)));
        let (events_tx, _) = broadcast::channel(VIEW_EVENTS);
        let (requests_tx, requests) = mpsc::channel(256);
        let (stop, stopped) = oneshot::channel();
        let (commands_tx, commands) = mpsc::channel(COMMAND_BATCHES);
        let traffic = LinkTraffic::default();
        tokio::spawn(forward_commands(commands, link, traffic.clone()));
        let mut task = SiteTask {
            site,
            parameter_replies: parameters::Waiting::default(),
            clock,
            reply_deadline_ms: millis(mesh::reply_deadline(config.mesh.transport)),
            snapshot: snapshot_tx,
            events: events_tx.clone(),
            storage,
            commands: commands_tx,
            pending_since: None,
            published_at: Instant::now(),
            publish_due: None,
        };
        task.execute(now, restored).await?;
        let task = tokio::spawn(site_task(task, mesh_events, requests, stopped));
        let handle = SiteHandle::new(requests_tx, snapshot_rx, events_tx);
        firmware::spawn_folder_scan(&config.firmware, handle.clone());
        firmware::spawn_image_server(&config.firmware);
        Ok(Self {
            handle,
            traffic,
            task,
            stop,
        })
    }

    /// Runs until `shutdown`, then stops the site task and flushes the store.
    ///
    /// # Errors
    /// When the site task failed: the mesh link or the store died.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let mut task = self.task;
        tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down");
                let _ = self.stop.send(());
                task.await.context("site task")?
            }
            result = &mut task => result.context("site task ended")?,
        }
    }
}

struct SiteTask {
    site: Site,
    /// Operators waiting for a node's reply to their `getpar`/`setpar`, by request id.
    parameter_replies: parameters::Waiting,
    clock: SystemClock,
    reply_deadline_ms: u64,
    snapshot: watch::Sender<Arc<SiteSnapshot>>,
    events: broadcast::Sender<BayEvent>,
    storage: StoreWriter,
    commands: mpsc::Sender<CommandBatch>,
    /// When the first change the core's pending allocation answers came in.
    pending_since: Option<Instant>,
    /// When the last snapshot went out.
    published_at: Instant,
    /// An allocation a change asked for ran since: its targets are published at this moment
    /// (at most every [`EVENT_PUBLISH_SPACING`], so a stream of them costs no snapshot each).
    publish_due: Option<Instant>,
}

/// The least time between two snapshots published for allocations a change asked for (a
/// snapshot of 10,000 bays takes milliseconds to build); the cycle publishes anyway.
const EVENT_PUBLISH_SPACING: Duration = Duration::from_millis(200);

/// When the snapshot of an allocation that ran at `now` goes out: at once if the last one is
/// [`EVENT_PUBLISH_SPACING`] old, else that long after it; an earlier due moment stands.
fn publish_due_after_allocation(
    now: Instant,
    published_at: Instant,
    due: Option<Instant>,
) -> Instant {
    due.unwrap_or_else(|| now.max(published_at + EVENT_PUBLISH_SPACING))
}

/// Commands of one input, sent in order once the reservations they raise are on disk.
struct CommandBatch {
    after: Option<oneshot::Receiver<()>>,
    commands: Vec<MeshCommand>,
    /// For an allocation a change asked for: when that change came in.
    caused_at: Option<Instant>,
}

impl SiteTask {
    /// Carries out the core's outputs: records to storage (a raised reservation before the
    /// commands after it), commands to the mesh, bay events to the view subscribers, log
    /// lines.
    ///
    /// # Errors
    /// When the store thread has stopped.
    async fn execute(
        &mut self,
        now: crate::clock::Now,
        outputs: Vec<Output>,
    ) -> anyhow::Result<()> {
        self.execute_caused(now, outputs, None).await
    }

    /// [`Self::execute`] for the outputs of an allocation that answers the change that came
    /// in at `caused_at` (timed to its writes for `/metrics`).
    async fn execute_caused(
        &mut self,
        now: crate::clock::Now,
        outputs: Vec<Output>,
        caused_at: Option<Instant>,
    ) -> anyhow::Result<()> {
        let mut records = Vec::new();
        let mut commands = Vec::new();
        let mut barrier = false;
        for output in outputs {
            match output {
                Output::Send { dst, cmd } => commands.push(MeshCommand { dst, cmd }),
                Output::Event { bay, text } => {
                    match &bay {
                        Some(bay) => tracing::info!(%bay, "{text}"),
                        None => tracing::info!("{text}"),
                    }
                    records.push(Output::Event { bay, text });
                }
                Output::Bay(event) => {
                    // No view subscriber is fine; a slow one is told it lagged.
                    let _ = self.events.send(event.clone());
                    records.push(Output::Bay(event));
                }
                Output::SaveReservation { raised, .. } => {
                    barrier |= raised;
                    records.push(output);
                }
                record @ (Output::SaveEnergy { .. } | Output::SaveSetting(_)) => {
                    records.push(record);
                }
            }
        }
        let after = if records.is_empty() {
            None
        } else {
            self.storage.write(now.wall_ms, records, barrier).await?
        };
        if !commands.is_empty() {
            let batch = CommandBatch {
                after,
                commands,
                caused_at,
            };
            if self.commands.try_send(batch).is_err() {
                // The sequencer counts an unanswered write as possibly applied and retries.
                self.site.count_rejected("mesh_queue_full");
                tracing::warn!("mesh command queue full; commands dropped");
            }
        }
        Ok(())
    }

    fn publish(&mut self, now: crate::clock::Now) {
        let _ = self.snapshot.send(Arc::new(self.site.snapshot(now)));
        self.published_at = Instant::now();
        self.publish_due = None;
    }

    /// Follows the core's pending allocation after an input that came in at `received`:
    /// the change that started it, and, once an allocation answered it, that change's time.
    fn follow_pending(&mut self, received: Instant) -> Option<Instant> {
        match (self.site.allocation_pending(), self.pending_since) {
            (true, None) => {
                self.pending_since = Some(received);
                None
            }
            (false, Some(since)) => {
                self.pending_since = None;
                Some(since)
            }
            _ => None,
        }
    }

    /// When the site task must wake without input: the next cycle, or the core's deadline
    /// or a snapshot due if that is sooner.
    fn wake_at(&self, next_cycle: Instant) -> Instant {
        let next_cycle = self
            .publish_due
            .map_or(next_cycle, |due| due.min(next_cycle));
        let Some(due_ms) = self.site.poll_timeout() else {
            return next_cycle;
        };
        // The core counts whole ms: waking `due - now` ms from now is never early.
        let wait = Duration::from_millis(due_ms.saturating_sub(self.clock.now().mono_ms));
        next_cycle.min(Instant::now() + wait)
    }
}

/// SQLite commits wait for the disk; they run on their own thread so the control loop never
/// does. One batch per input; one transaction for every batch queued when the thread gets
/// to them; the queue is bounded, and a full one makes the site task wait rather than lose
/// a record.
#[derive(Debug)]
struct StoreWriter {
    batches: mpsc::Sender<StoreBatch>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct StoreBatch {
    at_ms: u64,
    outputs: Vec<Output>,
    /// Told once the batch is committed, when commands wait for it.
    committed: Option<oneshot::Sender<()>>,
}

impl StoreWriter {
    fn spawn(mut store: Store) -> anyhow::Result<Self> {
        let (batches, mut incoming) = mpsc::channel::<StoreBatch>(STORE_QUEUE);
        let thread = std::thread::Builder::new()
            .name("store".to_owned())
            .spawn(move || {
                let mut failures = 0;
                while let Some(first) = incoming.blocking_recv() {
                    // Everything queued while the last commit waited for the disk goes in
                    // this one: a batch per input (a heartbeat's events) must not cost an
                    // fsync each, or 10,000 bays block the site task on the store.
                    let mut group = vec![first];
                    while group.len() < STORE_QUEUE {
                        match incoming.try_recv() {
                            Ok(batch) => group.push(batch),
                            Err(_) => break,
                        }
                    }
                    let batches: Vec<(u64, &[Output])> = group
                        .iter()
                        .map(|b| (b.at_ms, b.outputs.as_slice()))
                        .collect();
                    match store.persist_batches(&batches) {
                        Ok(()) => {
                            failures = 0;
                            for done in group.into_iter().filter_map(|b| b.committed) {
                                let _ = done.send(());
                            }
                        }
                        // The commands waiting for it are dropped with `done`: a raise
                        // that is not on disk does not go out.
                        Err(e) => {
                            tracing::error!("storage: {e}");
                            failures += 1;
                            if failures >= STORE_FAILURES {
                                // The site task sees the thread gone and ends the process
                                // (exit 1) so a supervisor restarts it.
                                tracing::error!("storage keeps failing; stopping the bridge");
                                break;
                            }
                        }
                    }
                }
            })
            .context("starting the storage thread")?;
        Ok(Self {
            batches,
            thread: Some(thread),
        })
    }

    /// Queues a batch; with `barrier`, returns what tells when it is on disk.
    async fn write(
        &self,
        at_ms: u64,
        outputs: Vec<Output>,
        barrier: bool,
    ) -> anyhow::Result<Option<oneshot::Receiver<()>>> {
        let (committed, done) = if barrier {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.batches
            .send(StoreBatch {
                at_ms,
                outputs,
                committed,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the storage thread has stopped"))?;
        Ok(done)
    }

    /// Waits until everything queued is on disk and the thread has ended.
    fn flush(mut self) {
        let thread = self.thread.take();
        drop(self);
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("the storage thread panicked");
            }
        }
    }
}

/// The one owner of the site state.
async fn site_task(
    mut t: SiteTask,
    mut mesh_events: mpsc::Receiver<MeshEvent>,
    mut requests: mpsc::Receiver<SiteRequest>,
    mut stopped: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    // The first cycle at once, the next ones an interval after the last began (a late one
    // delays those after it rather than bunching them).
    let mut next_cycle = Instant::now();
    let wake = tokio::time::sleep_until(next_cycle.into());
    tokio::pin!(wake);
    let mut requests_open = true;
    let result = loop {
        let wake_at = t.wake_at(next_cycle);
        if wake.deadline() != wake_at.into() {
            wake.as_mut().reset(wake_at.into());
        }
        let (input, publish) = tokio::select! {
            _ = &mut stopped => break Ok(()),
            event = mesh_events.recv() => match event {
                Some(event) => (mesh_input(event, t.reply_deadline_ms), false),
                None => break Err(anyhow::anyhow!("the mesh link has stopped")),
            },
            request = requests.recv(), if requests_open => match request {
                Some(SiteRequest::Apply { changes, reply }) => {
                    let received = Instant::now();
                    let now = t.clock.now();
                    match t.site.apply_all(now, changes) {
                        Ok(outputs) => {
                            t.follow_pending(received);
                            if let Err(e) = t.execute(now, outputs).await {
                                break Err(e);
                            }
                            // Published before the answer: whoever asked reads the new state.
                            t.publish(now);
                            let _ = reply.send(Ok(()));
                        }
                        Err(e) => {
                            // A refusal changed nothing: no new snapshot to build.
                            tracing::info!("setting refused: {e}");
                            let _ = reply.send(Err(e));
                        }
                    }
                    continue;
                }
                Some(SiteRequest::Power { source, reading }) => match reading {
                    Ok(reading) => (Input::Power { source, reading }, false),
                    Err(error) => (Input::PowerLost { source, error }, false),
                },
                Some(SiteRequest::ExternalLimit { source, scope, limit }) => (Input::ExternalLimit { source, scope, limit }, false),
                Some(SiteRequest::Rejected(kind)) => (Input::Rejected { kind }, false),
                Some(SiteRequest::BayCap { bay, cap_a }) => (Input::BayCap { bay, cap_a }, false),
                Some(SiteRequest::OcppSiteLimit { limit_a }) => (Input::OcppSiteLimit { limit_a }, false),
                Some(SiteRequest::Firmware(request)) => {
                    if let Err(e) = t.firmware(request).await {
                        break Err(e);
                    }
                    continue;
                }
                Some(SiteRequest::Parameter { bay, par, value, reply }) => {
                    if let Err(e) = t.parameter(bay, par, value, reply).await {
                        break Err(e);
                    }
                    continue;
                }
                // Every handle is gone: nobody can ask anything any more, the mesh still runs.
                None => {
                    requests_open = false;
                    continue;
                }
            },
            () = &mut wake => {
                let woke = Instant::now();
                if woke >= next_cycle {
                    next_cycle = woke + CONTROL_INTERVAL;
                    (Input::Tick, true)
                } else {
                    (Input::Timeout, false)
                }
            }
        };
        let now = t.clock.now();
        let started = Instant::now();
        let outputs = t.site.handle(now, input);
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let caused_at = t.follow_pending(started);
        if publish {
            t.site.record_cycle_time(elapsed_us);
        } else if caused_at.is_some() {
            // An allocation a change asked for, and nothing else: its cost spaces the next.
            t.site.record_allocation_time(elapsed_us);
            t.publish_due = Some(publish_due_after_allocation(
                Instant::now(),
                t.published_at,
                t.publish_due,
            ));
        }
        if let Err(e) = t.execute_caused(now, outputs, caused_at).await {
            break Err(e);
        }
        t.answer_parameters();
        if publish || t.publish_due.is_some_and(|due| Instant::now() >= due) {
            t.publish(now);
        }
    };
    let SiteTask { storage, .. } = t;
    tokio::task::spawn_blocking(move || storage.flush())
        .await
        .context("flushing the store")?;
    result
}

fn mesh_input(event: MeshEvent, reply_deadline_ms: u64) -> Input {
    match event {
        MeshEvent::Message { src, msg } => Input::Mesh { src, msg },
        MeshEvent::Rejected { reason, .. } => Input::Rejected {
            kind: reason.as_str(),
        },
        MeshEvent::LinkUp => Input::MeshLink {
            up: true,
            reply_deadline_ms,
        },
        MeshEvent::LinkDown => Input::MeshLink {
            up: false,
            reply_deadline_ms,
        },
    }
}

async fn forward_commands(
    mut batches: mpsc::Receiver<CommandBatch>,
    link: MeshSender,
    traffic: LinkTraffic,
) {
    while let Some(batch) = batches.recv().await {
        if let Some(after) = batch.after {
            if after.await.is_err() {
                tracing::warn!("reservation not stored; the writes that raise it are dropped");
                continue;
            }
        }
        let mut wrote = false;
        for command in batch.commands {
            let name = command.cmd.name();
            let setpoint = matches!(command.cmd, mesh::Command::AvrSetPar { .. });
            match link.send(command).await {
                Ok(()) => {
                    traffic.handed(name);
                    wrote |= setpoint;
                }
                Err(e) => tracing::debug!("command dropped: {e}"),
            }
        }
        if let Some(caused_at) = batch.caused_at.filter(|_| wrote) {
            traffic.observe_event_to_write(caused_at.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{publish_due_after_allocation, EVENT_PUBLISH_SPACING};

    #[test]
    fn an_allocation_is_published_at_once_or_one_spacing_after_the_last_snapshot() {
        let start = Instant::now();
        let long_after = start + EVENT_PUBLISH_SPACING * 3;
        assert_eq!(
            publish_due_after_allocation(long_after, start, None),
            long_after
        );
        let soon = start + Duration::from_millis(10);
        assert_eq!(
            publish_due_after_allocation(soon, start, None),
            start + EVENT_PUBLISH_SPACING
        );
        // A second allocation before the snapshot went out rides along with the first's.
        let due = start + EVENT_PUBLISH_SPACING;
        assert_eq!(publish_due_after_allocation(soon, start, Some(due)), due);
    }
}
