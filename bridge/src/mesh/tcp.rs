//! Uplink B: the mesh root connects to us over plain TCP and streams one JSON object per
//! `\r\n`-terminated line; we answer with one command per write.
//!
//! The root parses each `read()` as exactly one JSON object, so writes are paced
//! ([`TCP_WRITE_GAP`]) so that two commands never share a TCP segment. The root reconnects
//! every 2 s when it loses us; a new connection replaces the old one, which is then stale
//! (a rebooted root never closes its old socket).

use std::net::SocketAddr;
use std::time::Duration;

use ctrl22_node::mesh::{self as wire, MAX_MESSAGE_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{excerpt, EventSink, LinkError, MeshCommand, MeshEvent, MeshSender, RejectKind};

/// Minimum gap between two writes to the root.
pub const TCP_WRITE_GAP: Duration = Duration::from_millis(20);
/// A root that does not take a command within this time is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A root that sends nothing (not even its own heartbeat, every 10 s by default) for this
/// long is gone without a FIN (power cut, Wi-Fi lost); closing lets it reconnect cleanly.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const READ_CHUNK: usize = 4096;

/// A complete line, or the fact that one was too long and is being discarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitLine {
    /// A line without its `\r\n`.
    Line(Vec<u8>),
    /// A line grew beyond the limit; it is skipped up to the next `\n`. Reported once, when
    /// the limit is crossed, with the bytes seen so far.
    TooLong { seen: usize },
}

/// Splits a byte stream into lines of bounded length. Memory stays at most `max_len` bytes
/// whatever arrives: a line that outgrows it is dropped, not buffered.
#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    max_len: usize,
    discarding: bool,
}

impl LineSplitter {
    /// Lines up to `max_len` bytes, not counting the terminator.
    #[must_use]
    pub fn new(max_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_len,
            discarding: false,
        }
    }

    /// Feeds received bytes; complete lines (empty ones skipped) go to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<SplitLine>) {
        while !data.is_empty() {
            let newline = data.iter().position(|&b| b == b'\n');
            let (part, rest) = match newline {
                Some(i) => (
                    data.get(..i).unwrap_or_default(),
                    data.get(i + 1..).unwrap_or_default(),
                ),
                None => (data, &[][..]),
            };
            data = rest;
            if !self.discarding {
                // One byte of slack for the `\r` of `\r\n`, which may end a chunk.
                let seen = self.buf.len() + part.len();
                if seen > self.max_len + 1 {
                    out.push(SplitLine::TooLong { seen });
                    self.buf = Vec::new();
                    self.discarding = true;
                } else {
                    self.buf.extend_from_slice(part);
                }
            }
            if newline.is_some() {
                if !self.discarding {
                    let mut line = std::mem::take(&mut self.buf);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if line.len() > self.max_len {
                        out.push(SplitLine::TooLong { seen: line.len() });
                    } else if !line.is_empty() {
                        out.push(SplitLine::Line(line));
                    }
                }
                self.discarding = false;
            }
        }
    }
}

/// Listens on `listen` for the mesh root and forwards its messages to `events`. Runs in a
/// background task until `events`' receiver is dropped.
///
/// # Errors
/// [`LinkError::Listen`] when the address cannot be bound.
pub async fn spawn_tcp(
    listen: SocketAddr,
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
    tokio::spawn(Hub::new(sink).run(listener, commands));
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
    current: Option<Connection>,
    next_id: u64,
    next_write: Instant,
}

impl Hub {
    fn new(sink: EventSink) -> Self {
        Self {
            sink,
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
            tracing::info!(
                "mesh root {peer} replaces the stale connection from {}",
                old.peer
            );
            old.reader.abort();
        } else {
            tracing::info!("mesh root connected from {peer}");
        }
        self.next_id += 1;
        let id = self.next_id;
        let reader = tokio::spawn(read_lines(
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
async fn read_lines(
    mut read: OwnedReadHalf,
    mut sink: EventSink,
    id: u64,
    closed: mpsc::Sender<u64>,
) {
    let mut splitter = LineSplitter::new(MAX_MESSAGE_LEN);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut lines = Vec::new();
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
        splitter.push(chunk.get(..n).unwrap_or_default(), &mut lines);
        for line in lines.drain(..) {
            let alive = match line {
                SplitLine::Line(line) => match wire::decode_uplink_tcp(&line) {
                    Ok((src, msg)) => sink.message(src, msg).await,
                    Err(e) => {
                        sink.reject((&e).into(), format!("{e}: {}", excerpt(&line)))
                            .await
                    }
                },
                SplitLine::TooLong { seen } => {
                    sink.reject(
                        RejectKind::TooLong,
                        format!(
                            "line over {MAX_MESSAGE_LEN} bytes ({seen} so far), skipped to its end"
                        ),
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

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<SplitLine> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out
    }

    fn line(s: &str) -> SplitLine {
        SplitLine::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(
            split(10, &[b"ab", b"c\r\nde\r", b"\n\r\n", b"f\n"]),
            vec![line("abc"), line("de"), line("f")]
        );
    }

    #[test]
    fn exactly_max_with_crlf_is_accepted() {
        assert_eq!(split(3, &[b"abc\r", b"\n"]), vec![line("abc")]);
        assert_eq!(split(3, &[b"abc\r\n"]), vec![line("abc")]);
    }

    #[test]
    fn overlong_line_is_reported_once_and_skipped() {
        let big = vec![b'x'; 100];
        let out = split(10, &[&big, &big, b"yy\r\nok\r\n"]);
        assert_eq!(out, vec![SplitLine::TooLong { seen: 100 }, line("ok")]);
    }

    #[test]
    fn memory_stays_bounded_without_newline() {
        let mut s = LineSplitter::new(1024);
        let mut out = Vec::new();
        let chunk = vec![b'{'; 4096];
        for _ in 0..256 {
            s.push(&chunk, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert!(s.buf.capacity() <= 4096);
    }
}
