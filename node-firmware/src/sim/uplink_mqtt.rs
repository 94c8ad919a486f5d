//! The root's MQTT uplink: one client for the whole mesh, like the real root. It subscribes to
//! `/<mesh>/+/control`, hands every command to the world (which honours `*` and `root`) and
//! publishes what the world emits (heartbeats, acknowledgements) at QoS 0, not retained.
//!
//! Simulator only (the real root never subscribes it): `/<mesh>/<dev>/simctl` with
//! `{"car":"leave"}` or `{"car":"arrive"}` unplugs or plugs a car at that bay, so end-to-end
//! tests can move cars on demand, and `{"link_down_ms":4000}` cuts that bay's radio link
//! for a while ([`SimWorld::drop_link`]). Anything else on it is ignored.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;

use super::clock::{SimClock, TICK};
use super::{SimError, SimWorld};
use crate::mesh::{self, MacAddr, NodeMessage, MAX_MESSAGE_LEN};

const DEFAULT_PORT: u16 = 1883;
/// Pause before the client retries a lost broker connection.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// How long a publish may wait for room in the client's queue before it is dropped.
const QUEUE_WAIT: Duration = Duration::from_secs(1);

/// Runs `world` against the broker at `broker_url` (`mqtt://host[:port]`) under `mesh_id`
/// until `shutdown` completes, with simulated time `speed` times faster than wall time.
///
/// Broker outages are survived (the client reconnects; what the mesh emits meanwhile is
/// dropped, as QoS 0 on the real root is).
///
/// # Errors
/// A malformed URL, mesh id or speed, or the MQTT client shutting down underneath.
pub async fn run_mqtt(
    world: SimWorld,
    broker_url: &str,
    mesh_id: &str,
    speed: f64,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    run_mqtt_observed(world, broker_url, mesh_id, speed, shutdown, |_| {}).await
}

/// [`run_mqtt`], with `observe` shown the world after every step (a test reads the
/// [`SimWorld::ground_truth`] of a running simulation this way).
///
/// # Errors
/// As [`run_mqtt`].
pub async fn run_mqtt_observed(
    mut world: SimWorld,
    broker_url: &str,
    mesh_id: &str,
    speed: f64,
    shutdown: impl Future<Output = ()>,
    mut observe: impl FnMut(&SimWorld),
) -> Result<(), SimError> {
    let (host, port) = parse_broker_url(broker_url)?;
    mesh::check_mesh_id(mesh_id).map_err(|_| SimError::MeshId(mesh_id.to_owned()))?;
    let clock = SimClock::start(speed)?;
    let mut options = MqttOptions::new(client_id(mesh_id, &world), host, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(64 * 1024, 64 * 1024);
    // Room for one heartbeat of every bay plus replies to a broadcast, so a burst never blocks.
    let capacity = world.bay_count().saturating_mul(2).max(1024);
    let (client, eventloop) = AsyncClient::new(options, capacity);
    let (commands_tx, mut commands) = mpsc::channel(1024);
    let filters = [
        format!("/{mesh_id}/+/control"),
        format!("/{mesh_id}/+/{SIMCTL}"),
    ];
    let connected = Arc::new(AtomicBool::new(false));
    let pump = tokio::spawn(pump_events(
        eventloop,
        client.clone(),
        filters,
        commands_tx,
        Arc::clone(&connected),
    ));
    let mut publisher = Publisher {
        client,
        mesh_id,
        connected,
        body: vec![0; MAX_MESSAGE_LEN + 2],
        dropped: 0,
    };

    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            _ = tick.tick() => {
                let out = world.step(clock.now_ms());
                observe(&world);
                publisher.publish_all(&out).await;
            }
            command = commands.recv() => {
                let Some(publish) = command else {
                    break Err(SimError::MqttClosed);
                };
                // Not stepping here: a busy host sends thousands of commands per second, and
                // the world acts on them at its next tick (at most 100 ms away).
                if publish.topic.ends_with(SIMCTL) {
                    sim_control(&mut world, mesh_id, &publish.topic, &publish.payload);
                    continue;
                }
                // A malformed command is dropped without reply, as the node does.
                if let Ok((dst, cmd)) = mesh::decode_command_mqtt(mesh_id, &publish.topic, &publish.payload) {
                    let out = world.handle_command(clock.now_ms(), &dst, &cmd);
                    publisher.publish_all(&out).await;
                }
            }
        }
    };
    let _ = publisher.client.disconnect().await;
    pump.abort();
    result
}

/// Last topic level of the simulator-only control topic.
const SIMCTL: &str = "simctl";

/// What a test asks of a bay on `/<mesh>/<dev>/simctl`.
#[derive(serde::Deserialize)]
struct SimControl {
    car: Option<CarMove>,
    link_down_ms: Option<u64>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum CarMove {
    Leave,
    Arrive,
}

fn sim_control(world: &mut SimWorld, mesh_id: &str, topic: &str, payload: &[u8]) {
    let dev = topic
        .strip_prefix('/')
        .and_then(|t| t.strip_prefix(mesh_id))
        .and_then(|t| t.strip_prefix('/'))
        .and_then(|t| t.strip_suffix(SIMCTL))
        .and_then(|t| t.strip_suffix('/'));
    let (Some(Ok(mac)), Ok(control)) = (
        dev.map(str::parse::<MacAddr>),
        serde_json::from_slice::<SimControl>(payload),
    ) else {
        tracing::warn!("ignored simctl on {topic}");
        return;
    };
    let moved = match control.car {
        Some(CarMove::Leave) => world.unplug(mac),
        Some(CarMove::Arrive) => world.plug(mac),
        None => false,
    };
    let link_dropped = control
        .link_down_ms
        .is_some_and(|ms| world.drop_link(mac, ms));
    tracing::info!(%mac, moved, link_dropped, "simctl");
}

/// Publishes the mesh's output. While the broker link is up a full queue slows the simulation
/// down (a broadcast to 10,000 bays answers in one burst); while it is down, or stuck, what
/// does not fit is dropped and counted: QoS 0 on a lost link, as on the real root.
struct Publisher<'a> {
    client: AsyncClient,
    mesh_id: &'a str,
    connected: Arc<AtomicBool>,
    /// Encoding buffer, reused: 10,000 bays make this a hot path.
    body: Vec<u8>,
    dropped: u64,
}

impl Publisher<'_> {
    async fn publish_all(&mut self, out: &[(MacAddr, NodeMessage)]) {
        for (src, msg) in out {
            let (topic, payload) =
                match mesh::encode_uplink_mqtt(self.mesh_id, *src, msg, &mut self.body) {
                    Ok((topic, len)) => (topic, self.body.get(..len).unwrap_or_default().to_vec()),
                    Err(e) => {
                        tracing::warn!(%src, ?msg, "message does not encode: {e}");
                        continue;
                    }
                };
            let queued = if self.connected.load(Ordering::Relaxed) {
                let publish = self
                    .client
                    .publish(topic.as_str(), QoS::AtMostOnce, false, payload);
                matches!(tokio::time::timeout(QUEUE_WAIT, publish).await, Ok(Ok(())))
            } else {
                self.client
                    .try_publish(topic.as_str(), QoS::AtMostOnce, false, payload)
                    .is_ok()
            };
            if !queued {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped,
                        "MQTT queue full or closed; messages dropped"
                    );
                }
            }
        }
    }
}

/// Drives the client's network side: (re)subscribes after every connect and forwards
/// commands to the simulation loop.
async fn pump_events(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: [String; 2],
    commands: mpsc::Sender<Publish>,
    link_up: Arc<AtomicBool>,
) {
    let mut connected = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                connected = true;
                link_up.store(true, Ordering::Relaxed);
                tracing::info!("connected to broker; subscribing to {filters:?}");
                for filter in &filters {
                    if client
                        .try_subscribe(filter.as_str(), QoS::AtMostOnce)
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if commands.send(publish).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if connected {
                    tracing::warn!("broker connection lost: {e}");
                }
                connected = false;
                link_up.store(false, Ordering::Relaxed);
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        }
    }
}

fn client_id(mesh_id: &str, world: &SimWorld) -> String {
    format!(
        "ctrl22-node-sim-{mesh_id}-{}",
        world.root_mac().topic_form()
    )
}

/// `mqtt://host[:port]` (a bare `host[:port]` is accepted too).
fn parse_broker_url(url: &str) -> Result<(String, u16), SimError> {
    let bad = || SimError::BrokerUrl(url.to_owned());
    let rest = match url.split_once("://") {
        Some(("mqtt" | "tcp", rest)) => rest,
        Some(_) => return Err(bad()),
        None => url,
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
        None => (rest, DEFAULT_PORT),
    };
    if host.is_empty() || host.contains('/') {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_broker_url("mqtt://127.0.0.1:1884").unwrap(),
            ("127.0.0.1".to_owned(), 1884)
        );
        assert_eq!(
            parse_broker_url("mqtt://broker").unwrap(),
            ("broker".to_owned(), 1883)
        );
        assert!(parse_broker_url("mqtts://broker").is_err());
        assert!(parse_broker_url("mqtt://:1883").is_err());
        assert!(parse_broker_url("mqtt://h:x").is_err());
    }
}
