//! The bridge's running process: one task owns the [`Site`]; the mesh link, Home Assistant,
//! HTTP and storage talk to it by messages. No locks are held across awaits: readers get
//! snapshots through a `watch` channel, writers send [`SiteRequest`]s.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::wall_ms as now_ms;
pub use crate::handle::{SiteHandle, SiteRequest, CONTROL_INTERVAL};

use crate::bay::BayId;
use crate::config::{Config, MeshTransport};
use crate::mesh::{self, MeshCommand, MeshEvent, MeshSender};
use crate::site::bay::BaySettings;
use crate::site::snapshot::SiteSnapshot;
use crate::site::{Input, Output, Site, SiteSettings};
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
        wdtsec: config.mesh.wdtsec,
        setpoint_refresh_ms: millis(config.mesh.setpoint_refresh),
        // The TCP uplink paces commands 20 ms apart (the root reads one command per read()),
        // so a burst of writes queues in the link; their replies must not be given up on
        // (and a late reply taken for the next write's) while they wait to be sent.
        ack_timeout_ms: match config.mesh.transport {
            MeshTransport::Mqtt => 3_000,
            MeshTransport::Tcp => 10_000,
        },
        nodes,
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
/// Fails when a required adapter cannot start (bad broker URL, port in use).
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
    // Parsed and validated already, so a file written for a later version keeps working.
    if !config.solar.sources.is_empty() {
        tracing::warn!(
            "solar.sources: inverter and meter APIs are not supported yet; pv bays get no surplus"
        );
    }
    if config.ocpp.enabled {
        tracing::warn!(
            "ocpp.enabled: the OCPP 1.6-J adapter is not built yet; no backend is contacted"
        );
    }
    let bridge = Bridge::start(&config).await?;
    let _http = crate::http::spawn((&config).into(), bridge.handle.clone()).await?;
    if config.homeassistant.enabled {
        crate::ha::spawn(&config, bridge.handle.clone())?;
    }
    bridge.run_until(shutdown).await
}

/// The wired-up bridge: the site task and its adapters.
#[derive(Debug)]
pub struct Bridge {
    pub handle: SiteHandle,
    task: tokio::task::JoinHandle<()>,
    stop: oneshot::Sender<()>,
}

impl Bridge {
    /// Starts the site task and the mesh link.
    ///
    /// # Errors
    /// When the circuit tree is invalid or the mesh link cannot start.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let path = &config.storage.path;
        let store =
            Store::open(path).with_context(|| format!("storage.path {}", path.display()))?;
        let totals = store.energy_totals().context("reading energy totals")?;
        let stored_settings = store.settings().context("reading stored settings")?;
        let storage = StoreWriter::spawn(store)?;
        let (mesh_events_tx, mesh_events) = mpsc::channel(8192);
        let link = start_mesh_link(config, mesh_events_tx).await?;
        let now = now_ms();
        let mut site = Site::new(site_settings(config), &totals, now).context("site.circuits")?;
        let restored = site.restore_settings(now, stored_settings);
        let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(site.snapshot(now_ms())));
        let (requests_tx, requests) = mpsc::channel(256);
        let (stop, stopped) = oneshot::channel();
        let task = SiteTask {
            site,
            mesh_events,
            requests,
            link,
            snapshot: snapshot_tx,
            stopped,
            storage,
        };
        let (commands_tx, commands) = mpsc::unbounded_channel();
        task.execute(now, restored, &commands_tx);
        // Commands go through their own task so a slow link never stalls the control loop.
        tokio::spawn(forward_commands(commands, task.link.clone()));
        let task = tokio::spawn(site_task(task, commands_tx));
        Ok(Self {
            handle: SiteHandle::new(requests_tx, snapshot_rx),
            task,
            stop,
        })
    }

    /// Runs until `shutdown`, then stops the site task.
    ///
    /// # Errors
    /// When the site task failed.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let mut task = self.task;
        tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down");
                let _ = self.stop.send(());
                task.await.context("site task")?;
            }
            result = &mut task => result.context("site task ended")?,
        }
        Ok(())
    }
}

struct SiteTask {
    site: Site,
    mesh_events: mpsc::Receiver<MeshEvent>,
    requests: mpsc::Receiver<SiteRequest>,
    link: MeshSender,
    snapshot: watch::Sender<Arc<SiteSnapshot>>,
    stopped: oneshot::Receiver<()>,
    storage: StoreWriter,
}

impl SiteTask {
    /// Carries out the core's outputs: commands to the mesh, records to storage, log lines.
    fn execute(
        &self,
        now: u64,
        outputs: Vec<Output>,
        commands: &mpsc::UnboundedSender<MeshCommand>,
    ) {
        let mut records = Vec::new();
        for output in outputs {
            match output {
                Output::Send { dst, cmd } => {
                    let _ = commands.send(MeshCommand { dst, cmd });
                }
                Output::Event { bay, text } => {
                    match &bay {
                        Some(bay) => tracing::info!(%bay, "{text}"),
                        None => tracing::info!("{text}"),
                    }
                    records.push(Output::Event { bay, text });
                }
                record @ (Output::SaveEnergy { .. }
                | Output::SessionEnded { .. }
                | Output::SaveSetting(_)) => records.push(record),
            }
        }
        if !records.is_empty() {
            self.storage.write(now, records);
        }
    }
}

/// SQLite commits wait for the disk; they run on their own thread so the control loop never
/// does. One batch per input, one transaction per batch.
#[derive(Debug)]
struct StoreWriter {
    batches: std::sync::mpsc::Sender<(u64, Vec<Output>)>,
}

impl StoreWriter {
    fn spawn(mut store: Store) -> anyhow::Result<Self> {
        let (batches, incoming) = std::sync::mpsc::channel::<(u64, Vec<Output>)>();
        std::thread::Builder::new()
            .name("store".to_owned())
            .spawn(move || {
                while let Ok((at_ms, outputs)) = incoming.recv() {
                    if let Err(e) = store.persist_outputs(at_ms, &outputs) {
                        tracing::error!("storage: {e}");
                    }
                }
            })
            .context("starting the storage thread")?;
        Ok(Self { batches })
    }

    fn write(&self, at_ms: u64, outputs: Vec<Output>) {
        if self.batches.send((at_ms, outputs)).is_err() {
            tracing::error!("storage thread has stopped; records lost");
        }
    }
}

/// The one owner of the site state.
async fn site_task(mut t: SiteTask, commands_tx: mpsc::UnboundedSender<MeshCommand>) {
    let mut tick = tokio::time::interval(CONTROL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (input, publish) = tokio::select! {
            _ = &mut t.stopped => break,
            event = t.mesh_events.recv() => match event {
                Some(event) => (mesh_input(event), false),
                None => break,
            },
            request = t.requests.recv() => match request {
                Some(SiteRequest::Apply { changes, reply }) => {
                    let now = now_ms();
                    let result = t.site.apply_all(now, changes);
                    let (outputs, answer) = match result {
                        Ok(outputs) => (outputs, Ok(())),
                        Err(e) => {
                            tracing::info!("setting refused: {e}");
                            (Vec::new(), Err(e))
                        }
                    };
                    t.execute(now, outputs, &commands_tx);
                    // Published before the answer: whoever asked reads the new state.
                    let _ = t.snapshot.send(Arc::new(t.site.snapshot(now)));
                    let _ = reply.send(answer);
                    continue;
                }
                Some(SiteRequest::Solar(Some(reading))) => (Input::Solar(reading), false),
                Some(SiteRequest::Solar(None)) => (Input::SolarLost, false),
                Some(SiteRequest::Rejected(kind)) => (Input::Rejected { kind }, false),
                None => break,
            },
            _ = tick.tick() => (Input::Tick, true),
        };
        let now = now_ms();
        let outputs = t.site.handle(now, input);
        t.execute(now, outputs, &commands_tx);
        if publish {
            let _ = t.snapshot.send(Arc::new(t.site.snapshot(now)));
        }
    }
}

fn mesh_input(event: MeshEvent) -> Input {
    match event {
        MeshEvent::Message { src, msg } => Input::Mesh { src, msg },
        MeshEvent::Rejected { reason, .. } => Input::Rejected {
            kind: reason.as_str(),
        },
        MeshEvent::LinkUp => Input::MeshLink { up: true },
        MeshEvent::LinkDown => Input::MeshLink { up: false },
    }
}

async fn forward_commands(mut commands: mpsc::UnboundedReceiver<MeshCommand>, link: MeshSender) {
    while let Some(command) = commands.recv().await {
        if let Err(e) = link.send(command).await {
            tracing::debug!("command dropped: {e}");
        }
    }
}
