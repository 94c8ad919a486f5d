//! The root's plain TCP uplink, framed as the firmware frames it (mesh-protocol.md section 3):
//! the root is the client and retries every 2 s while the host is away; it composes every node
//! message with a trailing `\r\n`, strips it, and `write()`s the bare JSON object, one write
//! per message with `TCP_NODELAY`; it takes each `read()` from the host as exactly one JSON
//! command.
//!
//! On the real mesh the messages reach the root one by one, milliseconds apart, which is why
//! the original `dmctrl.py` (one `recv()` = one object) works against it. The simulator makes
//! its messages all at once per step, so it spaces its writes by [`WRITE_GAP`] to keep that
//! true.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::clock::{SimClock, TICK};
use super::{SimError, SimWorld};
use crate::mesh::{self, MacAddr, NodeMessage, MAX_MESSAGE_LEN};

/// The firmware's retry period while the host is away.
const RECONNECT_DELAY: Duration = Duration::from_secs(2);
/// Pause between two writes, so that each reaches the host in its own segment and read.
pub const WRITE_GAP: Duration = Duration::from_millis(20);
/// Messages waiting for their write; beyond this the oldest are dropped (a root's queue is
/// bounded too). At [`WRITE_GAP`] this is about 20 s of traffic.
const OUTBOX_LIMIT: usize = 1024;

/// Runs `world` with its root connected to the host at `addr` (`tcp://host:port` or
/// `host:port`) until `shutdown` completes, simulated time `speed` times faster than wall
/// time. While the host is away the bays keep running and their messages are lost.
///
/// # Errors
/// A malformed address or speed.
pub async fn run_tcp(
    mut world: SimWorld,
    addr: &str,
    speed: f64,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    let addr = parse_uplink_addr(addr)?;
    let clock = SimClock::start(speed)?;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut link: Option<TcpStream> = None;
    let mut next_attempt = Instant::now();
    let mut read_buf = vec![0u8; MAX_MESSAGE_LEN * 2];
    let mut outbox = Outbox::default();
    let mut next_write = Instant::now();
    loop {
        if link.is_none() && Instant::now() >= next_attempt {
            link = connect(addr).await;
            next_attempt = Instant::now() + RECONNECT_DELAY;
        }
        let Some(stream) = link.as_mut() else {
            outbox.clear();
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                _ = tick.tick() => drop(world.step(clock.now_ms())),
            }
            continue;
        };
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            _ = tick.tick() => outbox.extend(&world.step(clock.now_ms())),
            read = stream.read(&mut read_buf) => match read {
                Ok(0) | Err(_) => {
                    tracing::info!("uplink host closed the connection");
                    link = None;
                }
                // One read = one command; anything unparsable is dropped silently.
                Ok(n) => {
                    if let Some(Ok((dst, cmd))) = read_buf.get(..n).map(mesh::decode_command_tcp) {
                        outbox.extend(&world.handle_command(clock.now_ms(), &dst, &cmd));
                    }
                }
            },
            () = tokio::time::sleep_until(next_write), if !outbox.is_empty() => {
                if let Some(object) = outbox.pop() {
                    if let Err(e) = stream.write_all(&object).await {
                        tracing::info!("uplink write failed: {e}");
                        link = None;
                    }
                }
                next_write = Instant::now() + WRITE_GAP;
            }
        }
    }
}

/// Encoded messages waiting for their own write.
#[derive(Debug, Default)]
struct Outbox {
    queue: VecDeque<Vec<u8>>,
    dropped: u64,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn clear(&mut self) {
        self.queue.clear();
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        self.queue.pop_front()
    }

    fn extend(&mut self, out: &[(MacAddr, NodeMessage)]) {
        for (src, msg) in out {
            let Some(object) = encode_object(*src, msg) else {
                continue;
            };
            if self.queue.len() >= OUTBOX_LIMIT {
                self.queue.pop_front();
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped,
                        "uplink too slow; oldest messages dropped"
                    );
                }
            }
            self.queue.push_back(object);
        }
    }
}

async fn connect(addr: &str) -> Option<TcpStream> {
    match tokio::time::timeout(RECONNECT_DELAY, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            tracing::info!("uplink connected to {addr}");
            Some(stream)
        }
        Ok(Err(e)) => {
            tracing::debug!("uplink connect to {addr}: {e}");
            None
        }
        Err(_) => None,
    }
}

/// One message as the root writes it: the codec's line without its `\r\n`.
fn encode_object(src: MacAddr, msg: &NodeMessage) -> Option<Vec<u8>> {
    let mut line = [0u8; MAX_MESSAGE_LEN + 2];
    match mesh::encode_uplink_tcp(src, msg, &mut line) {
        Ok(len) => {
            let line = line.get(..len).unwrap_or_default();
            Some(line.strip_suffix(b"\r\n").unwrap_or(line).to_vec())
        }
        Err(e) => {
            tracing::warn!(%src, "message does not encode: {e}");
            None
        }
    }
}

/// `tcp://host:port` or `host:port`.
fn parse_uplink_addr(addr: &str) -> Result<&str, SimError> {
    let rest = addr
        .strip_prefix("tcp://")
        .unwrap_or(addr)
        .trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(rest),
        _ => Err(SimError::UplinkAddr(addr.to_owned())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uplink_addresses() {
        assert_eq!(
            parse_uplink_addr("tcp://127.0.0.1:8070").unwrap(),
            "127.0.0.1:8070"
        );
        assert_eq!(parse_uplink_addr("host:8070").unwrap(), "host:8070");
        assert!(parse_uplink_addr("tcp://host").is_err());
        assert!(parse_uplink_addr("tcp://:80").is_err());
    }
}
