//! A discard endpoint that speaks just enough MQTT to accept the generator's publisher
//! connections (CONNECT -> CONNACK, then every byte read and thrown away): the generator's
//! own ceiling, without a broker in the way. It routes nothing and answers nothing else, so
//! it only serves `ctrl22-load gen --one-way`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use rumqttc::Packet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// CONNACK, session not present, connection accepted.
const CONNACK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// Accepts connections on `listener` until the task is dropped; `bytes` counts what arrived.
///
/// # Errors
/// When accepting fails.
pub async fn serve(listener: TcpListener, bytes: Arc<AtomicU64>) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(discard(stream, Arc::clone(&bytes)));
    }
}

async fn discard(mut stream: TcpStream, bytes: Arc<AtomicU64>) -> anyhow::Result<()> {
    let mut buf = BytesMut::with_capacity(256 * 1024);
    // The first packet must be a CONNECT; whatever follows it is only counted.
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        match Packet::read(&mut buf, 64 * 1024) {
            Ok(Packet::Connect(..)) => break,
            Err(rumqttc::Error::InsufficientBytes(_)) => {}
            other => anyhow::bail!("sink: expected CONNECT, got {other:?}"),
        }
    }
    stream.write_all(&CONNACK).await?;
    bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}
