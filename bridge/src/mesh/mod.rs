//! The bridge's link to the mesh root: two uplinks (MQTT topics or the root's plain TCP
//! connection) as thin async adapters around the codec of [`ctrl22_node::mesh`]. Both turn
//! bytes into typed [`MeshEvent`]s and take typed [`MeshCommand`]s through a [`MeshSender`];
//! nothing here parses mesh JSON itself.
//!
//! Bad input from the mesh is never fatal: it becomes a [`MeshEvent::Rejected`] (for the
//! metrics) and a rate-limited log line.

pub mod cli;
mod mqtt;
mod progress;
pub mod table;
mod tcp;
pub mod tree;
mod traffic;
mod via_bridge;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use ctrl22_node::mesh::{Address, Command, MacAddr, NodeMessage, ProtocolError};
pub use mqtt::spawn_mqtt;
pub use tcp::split::{Frame, ObjectSplitter};
pub use tcp::{spawn_tcp, TcpLinkOptions, TCP_IDLE_TIMEOUT, TCP_WRITE_GAP};
pub use traffic::LinkTraffic;

/// What the link reports to the site core.
// A message is ~280 bytes (an avrlog line inline); boxing every heartbeat would cost more.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum MeshEvent {
    /// A node's heartbeat, command reply or log line.
    Message { src: MacAddr, msg: NodeMessage },
    /// Input that was dropped; counted for `/metrics`.
    Rejected { reason: RejectKind, detail: String },
    /// Connected to the broker (and subscribed), or the root connected over TCP.
    LinkUp,
    /// Lost the broker or the root's connection; commands are dropped until [`MeshEvent::LinkUp`].
    LinkDown,
}

/// Why input from the mesh was dropped; [`RejectKind::as_str`] is the metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectKind {
    /// Longer than [`ctrl22_node::mesh::MAX_MESSAGE_LEN`] (checked before parsing).
    TooLong,
    /// Not JSON, or JSON of the wrong shape.
    Malformed,
    /// An `mtype` (or a message on a topic) this protocol does not define.
    UnknownType,
    /// A topic or address that is not of this mesh.
    BadAddress,
    /// A field missing, out of range or with an undefined value.
    BadValue,
    /// A TCP connection from an address not in `mesh.tcp_allow`, closed at once.
    TcpRefused,
    /// A new root connection replaced the previous one (whose input is dropped from then on):
    /// a rebooted root, or two roots fighting over the link when it keeps rising.
    TcpReplaced,
}

impl RejectKind {
    pub const ALL: [Self; 7] = [
        Self::TooLong,
        Self::Malformed,
        Self::UnknownType,
        Self::BadAddress,
        Self::BadValue,
        Self::TcpRefused,
        Self::TcpReplaced,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooLong => "too_long",
            Self::Malformed => "malformed",
            Self::UnknownType => "unknown_type",
            Self::BadAddress => "bad_address",
            Self::BadValue => "bad_value",
            Self::TcpRefused => "tcp_refused",
            Self::TcpReplaced => "tcp_replaced",
        }
    }
}

impl fmt::Display for RejectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&ProtocolError> for RejectKind {
    fn from(e: &ProtocolError) -> Self {
        match e {
            ProtocolError::TooLong => Self::TooLong,
            ProtocolError::Json(_) => Self::Malformed,
            ProtocolError::UnknownCommand | ProtocolError::UnknownMessageType => Self::UnknownType,
            ProtocolError::BadTopic | ProtocolError::BadAddress => Self::BadAddress,
            _ => Self::BadValue,
        }
    }
}

/// One command for one destination (a node, `*` or `root`).
#[derive(Clone, Debug, PartialEq)]
pub struct MeshCommand {
    pub dst: Address,
    pub cmd: Command,
}

/// How long a reply to a write may take on a link of `transport`, its own queue included:
/// a property of the link that the site core is told about when the link comes up.
#[must_use]
pub fn reply_deadline(transport: crate::config::MeshTransport) -> std::time::Duration {
    match transport {
        crate::config::MeshTransport::Mqtt => std::time::Duration::from_secs(3),
        // The TCP uplink paces commands 20 ms apart (the root reads one command per read()),
        // so a burst of writes queues in the link; their replies must not be given up on
        // (and a late reply taken for the next write's) while they wait to be sent.
        crate::config::MeshTransport::Tcp => std::time::Duration::from_secs(10),
    }
}

/// Why a command could not be handed to the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No broker connection or no root connected: the command was dropped.
    #[error("mesh link is down")]
    LinkDown,
    /// The link task has ended (its event receiver was dropped).
    #[error("mesh link is closed")]
    Closed,
}

/// Why a link could not start.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("mqtt.url: {0}")]
    BadUrl(String),
    #[error("mqtt TLS: {0}")]
    Tls(String),
    #[error("mesh.mesh_id: {0}")]
    BadMeshId(ProtocolError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The sending half of a link, the same for both uplinks. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MeshSender {
    commands: mpsc::Sender<MeshCommand>,
    up: Arc<AtomicBool>,
}

/// How many commands may wait for the writer; beyond that `send` waits.
const COMMAND_QUEUE: usize = 256;

impl MeshSender {
    fn new() -> (Self, mpsc::Receiver<MeshCommand>, Arc<AtomicBool>) {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let up = Arc::new(AtomicBool::new(false));
        (
            Self {
                commands: tx,
                up: Arc::clone(&up),
            },
            rx,
            up,
        )
    }

    /// Queues `command` for the link. Commands are not kept while the link is down: a stale
    /// setpoint delivered minutes later could be wrong, and the sender retries anyway.
    ///
    /// # Errors
    /// [`SendError::LinkDown`] when not connected, [`SendError::Closed`] when the link ended.
    pub async fn send(&self, command: MeshCommand) -> Result<(), SendError> {
        if !self.is_up() {
            return Err(SendError::LinkDown);
        }
        self.commands
            .send(command)
            .await
            .map_err(|_| SendError::Closed)
    }

    /// Whether the link is connected right now.
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

/// Rate limit for logging rejected input: at most one line per kind per window, with the
/// number of rejections suppressed since the previous line. Sans-IO: the caller passes `now`.
/// Kinds are mesh [`RejectKind`]s here; the HTTP adapter keys it by its own `&'static str`s.
#[derive(Debug)]
pub struct RejectLog<K = RejectKind> {
    window: Duration,
    kinds: HashMap<K, (Instant, u64)>,
}

impl RejectLog {
    /// One line per kind per 10 s.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
}

impl<K: std::hash::Hash + Eq> RejectLog<K> {
    #[must_use]
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            kinds: HashMap::new(),
        }
    }

    /// Records one rejection; returns `Some(suppressed)` when it should be logged now.
    pub fn note(&mut self, kind: K, now: Instant) -> Option<u64> {
        match self.kinds.get_mut(&kind) {
            Some((last, suppressed)) if now.saturating_duration_since(*last) < self.window => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                *last = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                self.kinds.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

/// The events side shared by both uplinks: forwards events and rate-limits reject logging.
#[derive(Debug)]
struct EventSink {
    events: mpsc::Sender<MeshEvent>,
    rejects: RejectLog,
    up: Arc<AtomicBool>,
    link: &'static str,
}

impl EventSink {
    fn new(events: mpsc::Sender<MeshEvent>, up: Arc<AtomicBool>, link: &'static str) -> Self {
        Self {
            events,
            rejects: RejectLog::new(RejectLog::DEFAULT_WINDOW),
            up,
            link,
        }
    }

    /// Forwards an event; `false` once the receiver is gone (the link should end).
    async fn emit(&self, event: MeshEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    async fn message(&self, src: MacAddr, msg: NodeMessage) -> bool {
        self.emit(MeshEvent::Message { src, msg }).await
    }

    async fn reject(&mut self, reason: RejectKind, detail: String) -> bool {
        if let Some(suppressed) = self.rejects.note(reason, Instant::now()) {
            tracing::warn!(
                link = self.link,
                %reason,
                suppressed,
                "dropped mesh input: {detail}"
            );
        }
        self.emit(MeshEvent::Rejected { reason, detail }).await
    }

    async fn set_up(&self, up: bool) -> bool {
        let was = self.up.swap(up, Ordering::Relaxed);
        if was == up {
            return !self.events.is_closed();
        }
        if up {
            tracing::info!(link = self.link, "mesh link up");
        } else {
            tracing::warn!(link = self.link, "mesh link down");
        }
        self.emit(if up {
            MeshEvent::LinkUp
        } else {
            MeshEvent::LinkDown
        })
        .await
    }
}

/// Short, printable excerpt of rejected bytes for a log line.
fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 80;
    let text = String::from_utf8_lossy(bytes.get(..MAX).unwrap_or(bytes));
    let mut out: String = text.chars().filter(|c| !c.is_control()).collect();
    if bytes.len() > MAX {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_log_allows_one_line_per_kind_per_window() {
        let mut log = RejectLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(log.note(RejectKind::Malformed, t0), Some(0));
        assert_eq!(
            log.note(RejectKind::Malformed, t0 + Duration::from_secs(1)),
            None
        );
        assert_eq!(
            log.note(RejectKind::Malformed, t0 + Duration::from_secs(9)),
            None
        );
        assert_eq!(
            log.note(RejectKind::TooLong, t0 + Duration::from_secs(9)),
            Some(0)
        );
        assert_eq!(
            log.note(RejectKind::Malformed, t0 + Duration::from_secs(10)),
            Some(2)
        );
        assert_eq!(
            log.note(RejectKind::Malformed, t0 + Duration::from_secs(11)),
            None
        );
    }

    #[test]
    fn excerpt_is_short_and_printable() {
        assert_eq!(excerpt(b"ab\r\ncd"), "abcd");
        assert_eq!(excerpt(&[b'x'; 200]).len(), 83);
    }
}
