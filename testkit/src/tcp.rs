//! A recording TCP proxy for the mesh's plain TCP uplink: the simulated root connects to the
//! proxy, the proxy connects onward to the bridge and forwards both directions unchanged,
//! keeping every root line and every host command with the time it passed. While the host is
//! away (a killed bridge) the proxy keeps the root's connection and goes on recording, and
//! connects onward again when the host is back: to the host that is the root reconnecting.
//!
//! The root takes each `read()` as one command, so the proxy keeps the bridge's framing: a
//! read from the bridge that holds several JSON objects (segments merged on a loaded machine)
//! is written on as one write per object, a few milliseconds apart, never merged.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Which way a recorded message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Root to host: one line, without its `\r\n`.
    Uplink,
    /// Host to root: one command.
    Downlink,
}

/// One line or command as the proxy passed it on.
#[derive(Clone, Debug)]
pub struct TcpRecorded {
    pub at: Instant,
    pub direction: Direction,
    pub bytes: Vec<u8>,
}

type Log = Arc<Mutex<Vec<TcpRecorded>>>;

/// Pause between the writes of commands that arrived merged: the bridge's own gap
/// (`TCP_WRITE_GAP`), which they lost on the way.
const SPLIT_GAP: Duration = Duration::from_millis(20);
/// How often the proxy tries to reach a host that is away.
const HOST_RETRY: Duration = Duration::from_millis(500);

/// The proxy; stops accepting when dropped (open connections end with the test's runtime).
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    log: Log,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`, keeping
    /// the root connected (and recorded) while `upstream` is down.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the proxy port")?;
        let port = listener.local_addr()?.port();
        let log: Log = Arc::default();
        let sink = Arc::clone(&log);
        let accept = tokio::spawn(async move {
            while let Ok((root, _)) = listener.accept().await {
                tokio::spawn(relay(root, upstream, Arc::clone(&sink)));
            }
        });
        Ok(Self { port, log, accept })
    }

    /// Where the root should connect.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A copy of everything recorded so far.
    #[must_use]
    pub fn messages(&self) -> Vec<TcpRecorded> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Serves one root connection: records every line, relays both ways while the host is
/// connected, and reconnects to the host every [`HOST_RETRY`] while it is away. The root's
/// connection is kept open meanwhile, so its lines are still recorded (a tap on the wire
/// sees them even though no host reads them).
async fn relay(root: TcpStream, upstream: SocketAddr, log: Log) {
    let _ = root.set_nodelay(true);
    let (mut root_read, mut root_write) = root.into_split();
    let mut host_read: Option<OwnedReadHalf> = None;
    let mut host_write: Option<OwnedWriteHalf> = None;
    let mut retry = tokio::time::interval(HOST_RETRY);
    let mut up_chunk = vec![0u8; 8192];
    let mut down_chunk = vec![0u8; 8192];
    let mut line = Vec::new();
    loop {
        tokio::select! {
            read = root_read.read(&mut up_chunk) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let data = up_chunk.get(..n).unwrap_or_default();
                if let Some(host) = host_write.as_mut() {
                    if host.write_all(data).await.is_err() {
                        host_read = None;
                        host_write = None;
                    }
                }
                for &byte in data {
                    if byte == b'\n' {
                        let mut done = std::mem::take(&mut line);
                        if done.last() == Some(&b'\r') {
                            done.pop();
                        }
                        record(&log, Direction::Uplink, done);
                    } else {
                        line.push(byte);
                    }
                }
            }
            read = read_host(&mut host_read, &mut down_chunk) => {
                let n = match read {
                    Ok(0) | Err(_) => {
                        host_read = None;
                        host_write = None;
                        continue;
                    }
                    Ok(n) => n,
                };
                let data = down_chunk.get(..n).unwrap_or_default();
                let objects = json_objects(data);
                // Recorded as they arrive, when the bridge sent them: the gaps below are the
                // proxy's doing, and must not make a retry look early.
                for object in &objects {
                    record(&log, Direction::Downlink, object.to_vec());
                }
                for (i, object) in objects.into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(SPLIT_GAP).await;
                    }
                    if root_write.write_all(object).await.is_err() {
                        return;
                    }
                }
            }
            _ = retry.tick(), if host_write.is_none() => {
                if let Ok(Ok(host)) =
                    tokio::time::timeout(HOST_RETRY, TcpStream::connect(upstream)).await
                {
                    let _ = host.set_nodelay(true);
                    let (read, write) = host.into_split();
                    host_read = Some(read);
                    host_write = Some(write);
                }
            }
        }
    }
}

/// Reads from the host when connected; never completes otherwise.
async fn read_host(host: &mut Option<OwnedReadHalf>, buf: &mut [u8]) -> std::io::Result<usize> {
    match host.as_mut() {
        Some(read) => read.read(buf).await,
        None => std::future::pending().await,
    }
}

fn record(log: &Log, direction: Direction, bytes: Vec<u8>) {
    if let Ok(mut log) = log.lock() {
        log.push(TcpRecorded {
            at: Instant::now(),
            direction,
            bytes,
        });
    }
}

/// `data` cut after each complete JSON value; anything unparsable stays one piece.
fn json_objects(data: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut values = serde_json::Deserializer::from_slice(data).into_iter::<serde_json::Value>();
    let mut start = 0;
    while let Some(Ok(_)) = values.next() {
        let end = values.byte_offset();
        pieces.push(data.get(start..end).unwrap_or_default());
        start = end;
    }
    match data.get(start..) {
        Some(rest) if !rest.iter().all(u8::is_ascii_whitespace) => {
            if let Some(last) = pieces.pop() {
                // Unparsable tail: keep it with the value before it, as the bridge wrote it.
                let from = start - last.len();
                pieces.push(data.get(from..).unwrap_or_default());
            } else {
                pieces.push(rest);
            }
        }
        _ => {}
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::json_objects;

    #[test]
    fn merged_commands_are_cut_apart() {
        let one: &[u8] = br#"{"dst":"*","cmd":"status"}"#;
        assert_eq!(json_objects(one), vec![one]);
        let two = br#"{"a":1}{"b":[2,"}"]}"#;
        assert_eq!(
            json_objects(two),
            vec![&br#"{"a":1}"#[..], &br#"{"b":[2,"}"]}"#[..]]
        );
        assert_eq!(
            json_objects(b"{\"a\":1}{garb"),
            vec![&b"{\"a\":1}{garb"[..]]
        );
        assert_eq!(json_objects(b"garbage"), vec![&b"garbage"[..]]);
    }
}
