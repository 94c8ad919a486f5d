//! A recording TCP proxy for the mesh's plain TCP uplink: the simulated root connects to the
//! proxy, the proxy connects onward to the bridge and forwards both directions unchanged,
//! keeping every root line and every host command with the time it passed. While the host is
//! away (a killed bridge) the proxy keeps the root's connection and goes on recording, and
//! connects onward again when the host is back: to the host that is the root reconnecting.
//!
//! Both directions carry bare JSON objects back to back, as the firmware frames them (no
//! delimiter; whitespace, `\r\n` or NUL between are tolerated). The root takes each `read()`
//! as one command, so the proxy keeps the bridge's framing: a read from the bridge that holds
//! several JSON objects (segments merged on a loaded machine) is written on as one write per
//! object, a few milliseconds apart, never merged.

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
    /// Root to host: one message object.
    Uplink,
    /// Host to root: one command.
    Downlink,
}

/// One message or command as the proxy passed it on.
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

/// Connects to a host's uplink port as the real root does: again every 50 ms until the host
/// listens (a bridge just started may not yet).
pub async fn connect_as_root(host: SocketAddr) -> TcpStream {
    loop {
        match TcpStream::connect(host).await {
            Ok(stream) => return stream,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

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

/// Serves one root connection: records every message, relays both ways while the host is
/// connected, and reconnects to the host every [`HOST_RETRY`] while it is away. The root's
/// connection is kept open meanwhile, so its lines are still recorded (a tap on the wire
/// sees them even though no host reads them).
///
/// Root to host the bytes pass unchanged (the bridge must cope with TCP's cuts); host to
/// root each complete command is written on its own.
async fn relay(root: TcpStream, upstream: SocketAddr, log: Log) {
    let _ = root.set_nodelay(true);
    let (mut root_read, mut root_write) = root.into_split();
    let mut host_read: Option<OwnedReadHalf> = None;
    let mut host_write: Option<OwnedWriteHalf> = None;
    let mut retry = tokio::time::interval(HOST_RETRY);
    let mut up_chunk = vec![0u8; 8192];
    let mut down_chunk = vec![0u8; 8192];
    let mut uplink = ObjectStream::default();
    let mut downlink = ObjectStream::default();
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
                for object in uplink.push(data) {
                    record(&log, Direction::Uplink, object);
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
                let objects = downlink.push(data);
                // Recorded as they arrive, when the bridge sent them: the gaps below are the
                // proxy's doing, and must not make a retry look early.
                for object in &objects {
                    record(&log, Direction::Downlink, object.clone());
                }
                for (i, object) in objects.iter().enumerate() {
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

/// Bytes of one direction, cut into complete JSON objects (serde_json's stream reader); an
/// object cut by TCP waits for the rest of it.
#[derive(Debug, Default)]
struct ObjectStream {
    pending: Vec<u8>,
}

/// A test proxy keeps at most this much of an unfinished object (a broken peer).
const PENDING_LIMIT: usize = 64 * 1024;

impl ObjectStream {
    fn push(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        self.pending.extend_from_slice(data);
        let mut objects = Vec::new();
        let mut start = 0;
        loop {
            // Whitespace, `\r\n` and NUL between objects (serde_json takes no NUL).
            while self
                .pending
                .get(start)
                .is_some_and(|b| b.is_ascii_whitespace() || *b == 0)
            {
                start += 1;
            }
            let rest = self.pending.get(start..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            let mut values =
                serde_json::Deserializer::from_slice(rest).into_iter::<serde_json::Value>();
            match values.next() {
                Some(Ok(_)) => {
                    let end = values.byte_offset();
                    objects.push(rest.get(..end).unwrap_or_default().to_vec());
                    start += end;
                }
                Some(Err(e)) if e.is_eof() => break,
                // Not JSON: skip to the next object's `{`.
                _ => {
                    let skip = rest
                        .iter()
                        .skip(1)
                        .position(|&b| b == b'{')
                        .map_or(rest.len(), |p| p + 1);
                    start += skip;
                }
            }
        }
        self.pending.drain(..start.min(self.pending.len()));
        if self.pending.len() > PENDING_LIMIT {
            self.pending.clear();
        }
        objects
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectStream;

    #[test]
    fn objects_are_cut_apart_and_joined_across_reads() {
        let mut s = ObjectStream::default();
        let one: &[u8] = br#"{"dst":"*","cmd":"status"}"#;
        assert_eq!(s.push(one), vec![one.to_vec()]);
        assert_eq!(
            s.push(br#"{"a":1}{"b":[2,"}"]}"#),
            vec![br#"{"a":1}"#.to_vec(), br#"{"b":[2,"}"]}"#.to_vec()]
        );
        assert!(s.push(b"\0\r\n{\"a\":").is_empty());
        assert_eq!(
            s.push(b"1}garbage{\"c\":3}"),
            vec![b"{\"a\":1}".to_vec(), b"{\"c\":3}".to_vec()]
        );
    }
}
