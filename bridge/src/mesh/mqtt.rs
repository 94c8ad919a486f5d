//! Uplink A: the mesh root publishes to a broker under `/<mesh_id>/<dev>/{heartbeat,
//! acknowledge,avrlog}` and takes commands on `/<mesh_id>/<dev>/control`, all at QoS 0.
//!
//! rumqttc reconnects by itself when polled again; this adapter adds the backoff, subscribes
//! anew on every ConnAck (a clean session forgets subscriptions) and turns publishes into
//! [`MeshEvent`]s.

use std::sync::Arc;
use std::time::Duration;

use ctrl22_node::mesh::{self as wire, TopicKind, MAX_MESSAGE_LEN};
use rumqttc::tokio_rustls::rustls;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use tokio::sync::mpsc;

use super::{excerpt, EventSink, LinkError, MeshCommand, MeshEvent, MeshSender, RejectKind};
use crate::config::MqttConfig;

const KEEP_ALIVE: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Larger than any mesh message so that oversized garbage reaches us and is rejected as
/// `TooLong`, instead of rumqttc dropping the whole connection over it.
const MAX_INCOMING_PACKET: usize = 1024 * 1024;
const MAX_OUTGOING_PACKET: usize = 16 * 1024;
/// Requests rumqttc may queue; the writer never waits for room (see `write_commands`).
const REQUEST_QUEUE: usize = 128;

/// A broker address taken from `mqtt.url`.
#[derive(Debug, PartialEq, Eq)]
struct BrokerUrl {
    tls: bool,
    host: String,
    port: u16,
    /// `user:password@` from the URL, used when `mqtt.username` is not set.
    credentials: Option<(String, String)>,
}

fn parse_url(url: &str) -> Result<BrokerUrl, LinkError> {
    let bad = |why: &str| LinkError::BadUrl(format!("{url:?}: {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let tls = match scheme {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        _ => return Err(bad("scheme must be mqtt:// or mqtts://")),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (Some((user.to_owned(), pass.to_owned())), hp)
        }
        None => (None, authority),
    };
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None => default_port,
        };
        (host, port)
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad("bad port"))?),
            None => (host_port, default_port),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(BrokerUrl {
        tls,
        host: host.to_owned(),
        port,
        credentials,
    })
}

/// TLS with the platform's roots plus `ca_file`; bad platform certificates are skipped rather
/// than fatal (rumqttc's default configuration would panic on them).
fn tls_config(cfg: &MqttConfig) -> Result<TlsConfiguration, LinkError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!("skipping platform certificates: {e}");
    }
    let (_, skipped) = roots.add_parsable_certificates(native.certs);
    if skipped > 0 {
        tracing::debug!(skipped, "unparsable platform certificates");
    }
    if let Some(path) = &cfg.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| LinkError::Tls(format!("mqtt.ca_file {}: {e}", path.display())))?;
        roots.add_parsable_certificates(certs);
    }
    if roots.is_empty() {
        return Err(LinkError::Tls(
            "no trusted CA certificates (platform store empty; set mqtt.ca_file)".into(),
        ));
    }
    // An explicit provider: several crates of the build enable rustls providers, and
    // `ClientConfig::builder()` refuses to choose between them.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LinkError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

fn mqtt_options(cfg: &MqttConfig) -> Result<MqttOptions, LinkError> {
    let url = parse_url(&cfg.url)?;
    // Its own client id: the bridge's other MQTT client (Home Assistant) uses `client_id`, and
    // two clients with one id would keep disconnecting each other.
    let mut options = MqttOptions::new(format!("{}-mesh", cfg.client_id), &url.host, url.port);
    options.set_keep_alive(KEEP_ALIVE);
    options.set_clean_session(true);
    options.set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
    match (&cfg.username, url.credentials) {
        (Some(user), _) => {
            options.set_credentials(user, cfg.password.clone().unwrap_or_default());
        }
        (None, Some((user, pass))) => {
            options.set_credentials(user, pass);
        }
        (None, None) => {}
    }
    if url.tls {
        options.set_transport(Transport::tls_with_config(tls_config(cfg)?));
    }
    Ok(options)
}

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
    let options = mqtt_options(cfg)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let u = parse_url("mqtt://broker").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "broker", 1883));
        let u = parse_url("mqtts://u:p@broker.example:8884/").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (true, "broker.example", 8884)
        );
        assert_eq!(u.credentials, Some(("u".into(), "p".into())));
        let u = parse_url("mqtt://[::1]:1999").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1999));
        for bad in ["broker:1883", "http://broker", "mqtt://", "mqtt://h:port"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
