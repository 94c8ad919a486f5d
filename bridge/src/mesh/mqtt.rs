//! Uplink A: the mesh root publishes to a broker under `/<mesh_id>/<dev>/{heartbeat,
//! acknowledge,avrlog}` and takes commands on `/<mesh_id>/<dev>/control`, all at QoS 0.
//!
//! rumqttc reconnects by itself when polled again; this adapter adds the backoff, subscribes
//! anew on every ConnAck (a clean session forgets subscriptions) and turns publishes into
//! [`MeshEvent`]s.

use std::time::Duration;

use ctrl22_node::mesh::{self as wire, TopicKind, MAX_MESSAGE_LEN};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::mpsc;

use super::{excerpt, EventSink, LinkError, MeshCommand, MeshEvent, MeshSender, RejectKind};
use crate::config::MqttConfig;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Requests rumqttc may queue; the writer never waits for room (see `write_commands`).
/// One control cycle can release a write for every bay at once (a lowered site limit, the
/// refreshes falling due together) while the same event loop reads 10,000 heartbeats a second;
/// with room for only 128, such bursts at 10,000 bays dropped writes that then waited out the
/// 3 s reply timeout (bridge/BENCH.md).
const REQUEST_QUEUE: usize = 16_384;

/// Connects to the broker of `cfg` as a host of mesh `mesh_id` and forwards node messages to
/// `events`. The link runs in background tasks until `events`' receiver is dropped; it
/// reconnects with backoff and reports [`MeshEvent::LinkUp`]/[`MeshEvent::LinkDown`].
///
/// # Errors
/// A bad `mqtt.url`, mesh id or TLS setup. Connection failures are not errors: the link
/// keeps retrying.
pub async fn spawn_mqtt(
    cfg: &MqttConfig,
    mesh_id: &str,
    events: mpsc::Sender<MeshEvent>,
) -> Result<MeshSender, LinkError> {
    wire::check_mesh_id(mesh_id).map_err(LinkError::BadMeshId)?;
    let options = crate::broker_client::options(cfg, "mesh")?;
    let (client, mut eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
    let (sender, commands, up) = MeshSender::new();
    let mut sink = EventSink::new(events, up, "mqtt");
    let mesh_id = mesh_id.to_owned();

    tokio::spawn(write_commands(client.clone(), mesh_id.clone(), commands));
    tokio::spawn(async move {
        let mut backoff = BACKOFF_MIN;
        loop {
            let polled = tokio::select! {
                () = sink.events.closed() => break,
                polled = eventloop.poll() => polled,
            };
            let alive = match polled {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = BACKOFF_MIN;
                    for filter in wire::subscriptions(&mesh_id) {
                        // try_: the request queue is drained by this very loop, so waiting for
                        // room here could deadlock; it is nearly empty right after a connect.
                        if let Err(e) = client.try_subscribe(filter.as_str(), QoS::AtMostOnce) {
                            tracing::error!("cannot subscribe to {filter}: {e}");
                        }
                    }
                    true
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => sink.set_up(true).await,
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    on_publish(&mut sink, &mesh_id, &p.topic, &p.payload).await
                }
                Ok(_) => true,
                Err(e) => {
                    tracing::debug!("mqtt: {e}; retrying in {backoff:?}");
                    let alive = sink.set_up(false).await;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    alive
                }
            };
            if !alive {
                break;
            }
        }
        let _ = client.try_disconnect();
    });
    Ok(sender)
}

async fn on_publish(sink: &mut EventSink, mesh_id: &str, topic: &str, payload: &[u8]) -> bool {
    if payload.len() > MAX_MESSAGE_LEN {
        return sink
            .reject(
                RejectKind::TooLong,
                format!("{topic}: {} bytes: {}", payload.len(), excerpt(payload)),
            )
            .await;
    }
    match wire::decode_uplink_mqtt(mesh_id, topic, payload) {
        Ok((src, msg)) => sink.message(src, msg).await,
        Err(e) => {
            sink.reject((&e).into(), format!("{topic}: {e}: {}", excerpt(payload)))
                .await
        }
    }
}

/// Publishes commands as they come. Never waits for rumqttc's queue: while the broker is
/// unreachable the queue fills, and a blocked writer would stall whoever sends setpoints.
async fn write_commands(
    client: AsyncClient,
    mesh_id: String,
    mut commands: mpsc::Receiver<MeshCommand>,
) {
    while let Some(MeshCommand { dst, cmd }) = commands.recv().await {
        let topic = wire::topic(&mesh_id, &dst, TopicKind::Control);
        let body = cmd.to_json_string();
        if let Err(e) = client.try_publish(topic.as_str(), QoS::AtMostOnce, false, body) {
            tracing::warn!("mesh command to {dst} dropped: {e}");
        }
    }
}
