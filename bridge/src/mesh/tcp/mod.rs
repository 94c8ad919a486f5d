//! Uplink B: the mesh root connects to us over plain TCP and writes its messages as bare JSON
//! objects back to back, no delimiter ([`split`] cuts them apart); we answer with one command
//! per write.
//!
//! The root parses each `read()` as exactly one JSON object, so writes are paced
//! ([`TCP_WRITE_GAP`]) and sent with `TCP_NODELAY` so that two commands never share a TCP
//! segment. The root reconnects every 2 s when it loses us; a new connection replaces the old
//! one, which is then stale (a rebooted root never closes its old socket). Whoever holds the
//! connection commands every bay, so [`TcpLinkOptions::allow`] can restrict it to the root's
//! address.

pub mod split;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ctrl22_node::mesh::{self as wire, MAX_MESSAGE_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{excerpt, EventSink, LinkError, MeshCommand, MeshEvent, MeshSender, RejectKind};
use split::{Frame, ObjectSplitter};

/// Minimum gap between two writes to the root.
pub const TCP_WRITE_GAP: Duration = Duration::from_millis(20);
/// A root that does not take a command within this time is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A root that sends nothing (not even its own heartbeat, every 10 s by default) for this
/// long is gone without a FIN (power cut, Wi-Fi lost); closing lets it reconnect cleanly.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const READ_CHUNK: usize = 4096;

/// Who may be the mesh root (`mesh.tcp_allow`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpLinkOptions {
    /// The addresses a root may connect from; empty = any. A connection from elsewhere is
    /// closed at once and counted as `tcp_refused`.
    pub allow: Vec<IpAddr>,
}

impl TcpLinkOptions {
    /// Whether a root at `peer` may connect. IPv4 peers of a dual-stack listener arrive as
    /// `::ffff:a.b.c.d` and match `a.b.c.d`.
    #[must_use]
    pub fn allows(&self, peer: IpAddr) -> bool {
        self.allow.is_empty()
            || self
                .allow
                .iter()
                .any(|allowed| allowed.to_canonical() == peer.to_canonical())
    }
}

/// Listens on `listen` for the mesh root and forwards its messages to `events`. Runs in a
/// background task until `events`' receiver is dropped.
///
/// # Errors
/// [`LinkError::Listen`] when the address cannot be bound.
pub async fn spawn_tcp(
    listen: SocketAddr,
    options: TcpLinkOptions,
    events: mpsc::Sender<MeshEvent>,
) -> Result<MeshSender, LinkError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| LinkError::Listen {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(listen);
    tracing::info!("waiting for the mesh root on tcp {local}");
    let (sender, commands, up) = MeshSender::new();
    let sink = EventSink::new(events, up, "tcp");
    tokio::spawn(Hub::new(sink, options).run(listener, commands));
    Ok(sender)
}

/// The current root connection.
#[derive(Debug)]
struct Connection {
    id: u64,
    peer: SocketAddr,
    writer: OwnedWriteHalf,
    reader: JoinHandle<()>,
}

/// Owns the listener, the current connection's write half and the pacing.
#[derive(Debug)]
struct Hub {
    sink: EventSink,
    options: TcpLinkOptions,
    current: Option<Connection>,
    next_id: u64,
    next_write: Instant,
}

impl Hub {
    fn new(sink: EventSink, options: TcpLinkOptions) -> Self {
        Self {
            sink,
            options,
            current: None,
            next_id: 0,
            next_write: Instant::now(),
        }
    }

    async fn run(mut self, listener: TcpListener, mut commands: mpsc::Receiver<MeshCommand>) {
        let (closed_tx, mut closed_rx) = mpsc::channel::<u64>(4);
        let mut commands_open = true;
        loop {
            let alive = tokio::select! {
                () = self.sink.events.closed() => false,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) if !self.options.allows(peer.ip()) => {
                        drop(stream);
                        self.sink
                            .reject(
                                RejectKind::TcpRefused,
                                format!("connection from {peer} refused: not in mesh.tcp_allow"),
                            )
                            .await
                    }
                    Ok((stream, peer)) => {
                        // Commands must leave in their own segments, not wait for Nagle.
                        let _ = stream.set_nodelay(true);
                        let (read, write) = stream.into_split();
                        self.replace(read, write, peer, closed_tx.clone()).await
                    }
                    Err(e) => {
                        tracing::warn!("tcp accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        true
                    }
                },
                Some(id) = closed_rx.recv() => self.on_closed(id).await,
                command = commands.recv(), if commands_open => match command {
                    Some(command) => self.write(&command).await,
                    None => {
                        commands_open = false;
                        true
                    }
                },
            };
            if !alive {
                break;
            }
        }
        if let Some(old) = self.current.take() {
            old.reader.abort();
        }
    }

    async fn replace(
        &mut self,
        read: OwnedReadHalf,
        writer: OwnedWriteHalf,
        peer: SocketAddr,
        closed: mpsc::Sender<u64>,
    ) -> bool {
        if let Some(old) = self.current.take() {
            // Every replacement is logged (they are rare: a rebooted root, at most one per
            // 2 s retry) and counted; a steady count means two roots fight over the link.
            tracing::info!(
                "mesh root {peer} replaces the stale connection from {}",
                old.peer
            );
            old.reader.abort();
            let counted = self
                .sink
                .emit(MeshEvent::Rejected {
                    reason: RejectKind::TcpReplaced,
                    detail: format!("connection from {} replaced by {peer}", old.peer),
                })
                .await;
            if !counted {
                return false;
            }
        } else {
            tracing::info!("mesh root connected from {peer}");
        }
        self.next_id += 1;
        let id = self.next_id;
        let reader = tokio::spawn(read_objects(
            read,
            EventSink::new(self.sink.events.clone(), self.sink.up.clone(), "tcp"),
            id,
            closed,
        ));
        self.current = Some(Connection {
            id,
            peer,
            writer,
            reader,
        });
        self.sink.set_up(true).await
    }

    async fn on_closed(&mut self, id: u64) -> bool {
        if self.current.as_ref().is_some_and(|c| c.id == id) {
            self.drop_connection().await
        } else {
            true
        }
    }

    async fn drop_connection(&mut self) -> bool {
        if let Some(old) = self.current.take() {
            old.reader.abort();
        }
        self.sink.set_up(false).await
    }

    async fn write(&mut self, command: &MeshCommand) -> bool {
        let Some(conn) = self.current.as_mut() else {
            tracing::debug!(
                "no mesh root connected; dropped command for {}",
                command.dst
            );
            return true;
        };
        let bytes = match wire::encode_command_tcp_vec(&command.dst, &command.cmd) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot encode command for {}: {e}", command.dst);
                return true;
            }
        };
        tokio::time::sleep_until(self.next_write).await;
        let written = tokio::time::timeout(WRITE_TIMEOUT, conn.writer.write_all(&bytes)).await;
        self.next_write = Instant::now() + TCP_WRITE_GAP;
        match written {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!("writing to the mesh root {}: {e}", conn.peer);
                self.drop_connection().await
            }
            Err(_) => {
                tracing::warn!(
                    "the mesh root {} took no data for {WRITE_TIMEOUT:?}",
                    conn.peer
                );
                self.drop_connection().await
            }
        }
    }
}

/// Reads one connection until it ends, then tells the hub (which ignores it if the
/// connection was replaced meanwhile).
async fn read_objects(
    mut read: OwnedReadHalf,
    mut sink: EventSink,
    id: u64,
    closed: mpsc::Sender<u64>,
) {
    let mut splitter = ObjectSplitter::new(MAX_MESSAGE_LEN);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut frames = Vec::new();
    'conn: loop {
        let n = match tokio::time::timeout(TCP_IDLE_TIMEOUT, read.read(&mut chunk)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!("reading from the mesh root: {e}");
                break;
            }
            Err(_) => {
                tracing::warn!("nothing from the mesh root for {TCP_IDLE_TIMEOUT:?}; closing");
                break;
            }
        };
        splitter.push(chunk.get(..n).unwrap_or_default(), &mut frames);
        for frame in frames.drain(..) {
            let alive = match frame {
                Frame::Object(object) => match wire::decode_uplink_tcp(&object) {
                    Ok((src, msg)) => sink.message(src, msg).await,
                    Err(e) => {
                        sink.reject((&e).into(), format!("{e}: {}", excerpt(&object)))
                            .await
                    }
                },
                Frame::TooLong { seen } => {
                    sink.reject(
                        RejectKind::TooLong,
                        format!(
                            "object over {MAX_MESSAGE_LEN} bytes ({seen} so far), skipped to its end"
                        ),
                    )
                    .await
                }
                Frame::Garbage { len } => {
                    sink.reject(
                        RejectKind::Malformed,
                        format!("{len} bytes that are not a JSON object, skipped"),
                    )
                    .await
                }
            };
            if !alive {
                break 'conn;
            }
        }
    }
    let _ = closed.send(id).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_matches_mapped_addresses() {
        let any = TcpLinkOptions::default();
        assert!(any.allows(IpAddr::from([10, 0, 0, 9])));
        let one = TcpLinkOptions {
            allow: vec![IpAddr::from([192, 168, 1, 40])],
        };
        assert!(one.allows(IpAddr::from([192, 168, 1, 40])));
        assert!(one.allows(
            "::ffff:192.168.1.40"
                .parse()
                .unwrap_or(IpAddr::from([0; 4]))
        ));
        assert!(!one.allows(IpAddr::from([192, 168, 1, 41])));
        assert!(!one.allows(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])));
    }
}
