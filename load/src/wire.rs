//! Plain MQTT 3.1.1 connections without a client library's event loop: rumqttc's packet codec
//! (`mqttbytes`) over a tokio TCP stream. The generator writes pre-encoded PUBLISH packets in
//! large batches and the counting subscribers read packets without per-message bookkeeping;
//! a full client (queues, acks, keep-alive timers) would be the bottleneck at these rates.

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use rumqttc::{Connect, Packet, QoS, Subscribe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Largest packet accepted from the broker (mesh messages are at most 1 KiB).
const MAX_PACKET: usize = 64 * 1024;

/// A connected, subscribed MQTT session, split for reading and writing.
#[derive(Debug)]
pub struct Session {
    pub reader: PacketReader,
    pub writer: OwnedWriteHalf,
}

/// Connects to `broker` (HOST:PORT) as `client_id`, clean session, no keep-alive (the
/// broker never drops a silent client then), and subscribes to `filters` at QoS 0.
///
/// # Errors
/// When the broker is unreachable or refuses the connection or a subscription.
pub async fn connect(broker: &str, client_id: &str, filters: &[&str]) -> anyhow::Result<Session> {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(broker))
        .await
        .with_context(|| format!("connecting to {broker}: timed out"))?
        .with_context(|| format!("connecting to {broker}"))?;
    stream.set_nodelay(true)?;
    let (read, mut writer) = stream.into_split();
    let mut reader = PacketReader::new(read);
    let mut connect = Connect::new(client_id);
    connect.keep_alive = 0;
    connect.clean_session = true;
    let mut out = BytesMut::new();
    connect
        .write(&mut out)
        .map_err(|e| anyhow::anyhow!("CONNECT does not encode: {e:?}"))?;
    if !filters.is_empty() {
        let filters = filters
            .iter()
            .map(|f| rumqttc::SubscribeFilter::new((*f).to_owned(), QoS::AtMostOnce));
        let mut subscribe = Subscribe::new_many(filters);
        subscribe.pkid = 1;
        subscribe
            .write(&mut out)
            .map_err(|e| anyhow::anyhow!("SUBSCRIBE does not encode: {e:?}"))?;
    }
    writer.write_all(&out).await?;
    match reader.next().await? {
        Packet::ConnAck(ack) if ack.code == rumqttc::ConnectReturnCode::Success => {}
        other => bail!("{client_id}: broker answered CONNECT with {other:?}"),
    }
    if !filters.is_empty() {
        match reader.next().await? {
            Packet::SubAck(ack)
                if ack
                    .return_codes
                    .iter()
                    .all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_))) => {}
            other => bail!("{client_id}: broker answered SUBSCRIBE with {other:?}"),
        }
    }
    Ok(Session { reader, writer })
}

/// Reads whole packets from the broker.
#[derive(Debug)]
pub struct PacketReader {
    read: OwnedReadHalf,
    buf: BytesMut,
}

impl PacketReader {
    fn new(read: OwnedReadHalf) -> Self {
        Self {
            read,
            buf: BytesMut::with_capacity(256 * 1024),
        }
    }

    /// The next packet.
    ///
    /// # Errors
    /// When the connection closes or the broker sends something that is not MQTT.
    pub async fn next(&mut self) -> anyhow::Result<Packet> {
        loop {
            match Packet::read(&mut self.buf, MAX_PACKET) {
                Ok(packet) => return Ok(packet),
                Err(rumqttc::Error::InsufficientBytes(_)) => {}
                Err(e) => bail!("bad packet from the broker: {e:?}"),
            }
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                self.buf.reserve(256 * 1024);
            }
            if self.read.read_buf(&mut self.buf).await? == 0 {
                bail!("the broker closed the connection");
            }
        }
    }
}
