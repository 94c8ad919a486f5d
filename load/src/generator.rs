//! The load generator: N bays' heartbeats at a paced total rate over several MQTT
//! connections, and one more connection that takes the bridge's commands, acknowledges every
//! `avrsetpar` with `ok` (so the bridge's setpoint sequencer sees its writes land) and times
//! plug/unplug -> next changed `smaxcur` per bay.
//!
//! Pacing: each publisher connection owns every C-th bay and, every few milliseconds, sends
//! as many heartbeats as its share of the rate allows since the last round, cycling through
//! its bays. When the broker pushes back (TCP writes block), the unsent credit is capped and
//! counted as shortfall: `sent` is what really left, never a burst claimed as a rate.

use std::sync::atomic::{AtomicI16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctrl22_node::mesh::{self, Address, Command, NodeMessage};
use ctrl22_node::Deciamps;
use rumqttc::Packet;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use crate::fleet::{self, BayPayload, BayState, PlugSchedule};
use crate::wire;

/// How often a publisher connection sends its next batch.
const ROUND: Duration = Duration::from_millis(5);
/// Credit a publisher may carry into a round after falling behind: 50 ms of its rate.
const MAX_CATCH_UP_S: f64 = 0.05;
/// `setpoints` entry of a bay that has not been sent one.
const NO_SETPOINT: i16 = i16::MIN;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GeneratorConfig {
    /// Broker, HOST:PORT.
    pub broker: String,
    pub mesh_id: String,
    pub bays: u32,
    /// Heartbeats per second, all bays together.
    pub rate: f64,
    /// Publisher connections.
    pub connections: u32,
    /// Plug or unplug events per second, all bays together.
    pub plug_events_per_s: f64,
    /// Take the bridge's commands and acknowledge `avrsetpar` (else a one-way load).
    pub answer_commands: bool,
    /// Prefix of the MQTT client ids (two generators on one broker need different ones).
    pub client_prefix: String,
}

/// Counters and per-bay state shared by the generator's tasks.
#[derive(Debug)]
struct Shared {
    start: Instant,
    /// The last `smaxcur` the bridge wrote to each bay.
    setpoints: Vec<AtomicI16>,
    /// Microseconds since `start` (+1) when a heartbeat showing a plug change left; 0 = none
    /// waiting for a new setpoint.
    plug_changed_at_us: Vec<AtomicU64>,
    sent: AtomicU64,
    shortfall: AtomicU64,
    plug_changes: AtomicU64,
    commands: AtomicU64,
    acks: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

impl Shared {
    fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX) + 1
    }

    fn setpoint(&self, index: u32) -> Option<Deciamps> {
        let value = self.setpoints.get(index as usize)?.load(Ordering::Relaxed);
        (value != NO_SETPOINT).then_some(Deciamps(value))
    }
}

/// Totals since the generator started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Heartbeats written to the broker.
    pub sent: u64,
    /// Heartbeats the pacing owed but could not send (the broker pushed back).
    pub shortfall: u64,
    pub plug_changes: u64,
    /// Commands received from the bridge.
    pub commands: u64,
    /// `avrsetpar` acknowledgements sent.
    pub acks: u64,
}

/// A running generator; dropping it stops its tasks.
#[derive(Debug)]
pub struct Generator {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Drop for Generator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Generator {
    /// Connects every publisher (and the command connection) and starts sending.
    ///
    /// # Errors
    /// When a connection fails or a bay's heartbeat does not encode.
    pub async fn start(config: GeneratorConfig) -> anyhow::Result<Self> {
        mesh::check_mesh_id(&config.mesh_id)
            .map_err(|e| anyhow::anyhow!("mesh id {:?}: {e:?}", config.mesh_id))?;
        let bays = config.bays.max(1);
        let shared = Arc::new(Shared {
            start: Instant::now(),
            setpoints: (0..bays).map(|_| AtomicI16::new(NO_SETPOINT)).collect(),
            plug_changed_at_us: (0..bays).map(|_| AtomicU64::new(0)).collect(),
            sent: AtomicU64::new(0),
            shortfall: AtomicU64::new(0),
            plug_changes: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            latencies_us: Mutex::new(Vec::new()),
        });
        let mut tasks = Vec::new();
        if config.answer_commands {
            let filter = format!("/{}/+/control", config.mesh_id);
            let id = format!("{}-commands", config.client_prefix);
            let session = wire::connect(&config.broker, &id, &[&filter]).await?;
            let (shared, mesh_id) = (Arc::clone(&shared), config.mesh_id.clone());
            tasks.push(tokio::spawn(answer_commands(session, shared, mesh_id)));
        }
        let schedule = PlugSchedule::new(bays, config.plug_events_per_s);
        let connections = config.connections.clamp(1, bays);
        for connection in 0..connections {
            let id = format!("{}-{connection}", config.client_prefix);
            let session = wire::connect(&config.broker, &id, &[]).await?;
            let mut payloads = Vec::new();
            for index in (connection..bays).step_by(connections as usize) {
                let state = BayState::at(&schedule, index, 0, None);
                payloads.push(BayPayload::encode(&config.mesh_id, index, state)?);
            }
            let publisher = Publisher {
                shared: Arc::clone(&shared),
                mesh_id: config.mesh_id.clone(),
                schedule,
                payloads,
                rate: config.rate / f64::from(connections),
            };
            tasks.push(tokio::spawn(publisher.run(session)));
        }
        Ok(Self { shared, tasks })
    }

    #[must_use]
    pub fn counters(&self) -> Counters {
        let s = &self.shared;
        Counters {
            sent: s.sent.load(Ordering::Relaxed),
            shortfall: s.shortfall.load(Ordering::Relaxed),
            plug_changes: s.plug_changes.load(Ordering::Relaxed),
            commands: s.commands.load(Ordering::Relaxed),
            acks: s.acks.load(Ordering::Relaxed),
        }
    }

    /// The plug -> setpoint latencies measured since the last call, in microseconds.
    #[must_use]
    pub fn take_latencies_us(&self) -> Vec<u64> {
        self.shared
            .latencies_us
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// Whether a task ended (a lost connection): a generator that stopped is no load.
    #[must_use]
    pub fn failed(&self) -> bool {
        self.tasks.iter().any(JoinHandle::is_finished)
    }
}

/// One publisher connection and the bays it sends for.
struct Publisher {
    shared: Arc<Shared>,
    mesh_id: String,
    schedule: PlugSchedule,
    payloads: Vec<BayPayload>,
    /// This connection's heartbeats per second.
    rate: f64,
}

impl Publisher {
    async fn run(mut self, session: wire::Session) -> anyhow::Result<()> {
        let wire::Session {
            mut reader,
            mut writer,
        } = session;
        // Nothing is subscribed here; the broker sends nothing, but a reader keeps the socket
        // drained and notices a closed connection.
        let drain = tokio::spawn(async move { while reader.next().await.is_ok() {} });
        let mut round = tokio::time::interval(ROUND);
        round.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = Instant::now();
        let mut credit = 0.0_f64;
        let mut cursor = 0usize;
        let mut batch = Vec::with_capacity(256 * 1024);
        let result = loop {
            round.tick().await;
            let now = Instant::now();
            credit += now.duration_since(last).as_secs_f64() * self.rate;
            last = now;
            let cap = self.rate * MAX_CATCH_UP_S + 1.0;
            if credit > cap {
                self.shared
                    .shortfall
                    .fetch_add((credit - cap) as u64, Ordering::Relaxed);
                credit = cap;
            }
            let due = credit as usize;
            credit -= due as f64;
            if let Err(e) = self.fill(due, &mut cursor, &mut batch) {
                break Err(e);
            }
            if let Err(e) = writer.write_all(&batch).await {
                break Err(e.into());
            }
            batch.clear();
            self.shared.sent.fetch_add(due as u64, Ordering::Relaxed);
        };
        drain.abort();
        result
    }

    /// Appends the next `due` bays' heartbeats to `batch`, re-encoding those whose state
    /// changed.
    fn fill(&mut self, due: usize, cursor: &mut usize, batch: &mut Vec<u8>) -> anyhow::Result<()> {
        let shared = &*self.shared;
        let now_us = shared.now_us();
        let t_ms = now_us / 1000;
        let bays = self.payloads.len();
        for _ in 0..due {
            let Some(payload) = self.payloads.get_mut(*cursor) else {
                break;
            };
            *cursor = (*cursor + 1) % bays;
            let state = BayState::at(
                &self.schedule,
                payload.index,
                t_ms,
                shared.setpoint(payload.index),
            );
            if payload.refresh(&self.mesh_id, state)? {
                shared.plug_changes.fetch_add(1, Ordering::Relaxed);
                if let Some(at) = shared.plug_changed_at_us.get(payload.index as usize) {
                    at.store(now_us, Ordering::Relaxed);
                }
            }
            batch.extend_from_slice(&payload.packet);
        }
        Ok(())
    }
}

/// Takes the bridge's commands: `avrsetpar` is acknowledged `ok`; a new `smaxcur` value is
/// remembered (the bay then reports it) and, if the bay's plug state changed since its last
/// setpoint, timed. Other commands go unanswered, as a node that drops them would.
async fn answer_commands(
    session: wire::Session,
    shared: Arc<Shared>,
    mesh_id: String,
) -> anyhow::Result<()> {
    let wire::Session {
        mut reader,
        mut writer,
    } = session;
    let mut ack = Vec::new();
    loop {
        let Packet::Publish(publish) = reader.next().await? else {
            continue;
        };
        shared.commands.fetch_add(1, Ordering::Relaxed);
        let Ok((Address::Node(node), Command::AvrSetPar { par, val })) =
            mesh::decode_command_mqtt(&mesh_id, &publish.topic, &publish.payload)
        else {
            continue;
        };
        let Some(index) = fleet::index_of(node) else {
            continue;
        };
        if par.as_str() == "smaxcur" {
            note_setpoint(&shared, index, val);
        }
        let reply = NodeMessage::AvrSetPar { ok: true };
        let Ok((topic, body)) = mesh::encode_uplink_mqtt_vec(&mesh_id, node, &reply) else {
            continue;
        };
        // At once, one by one: the bridge writes one setpoint per bay at a time and waits.
        fleet::publish_packet(&topic, body, &mut ack)?;
        writer.write_all(&ack).await?;
        shared.acks.fetch_add(1, Ordering::Relaxed);
    }
}

fn note_setpoint(shared: &Shared, index: u32, smaxcur: i16) {
    let Some(slot) = shared.setpoints.get(index as usize) else {
        return;
    };
    let previous = slot.swap(smaxcur, Ordering::Relaxed);
    if previous == smaxcur {
        return;
    }
    let Some(changed) = shared.plug_changed_at_us.get(index as usize) else {
        return;
    };
    let since = changed.swap(0, Ordering::Relaxed);
    if since != 0 {
        let latency = shared.now_us().saturating_sub(since);
        if let Ok(mut latencies) = shared.latencies_us.lock() {
            latencies.push(latency);
        }
    }
}
