//! The root's plain TCP uplink: the root is the client, retries every 2 s while the host is
//! away, writes every node message as one JSON line ending in `\r\n`, and takes each `read()`
//! from the host as exactly one JSON command, as the firmware does.

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
    loop {
        if link.is_none() && Instant::now() >= next_attempt {
            link = connect(addr).await;
            next_attempt = Instant::now() + RECONNECT_DELAY;
        }
        let Some(stream) = link.as_mut() else {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                _ = tick.tick() => drop(world.step(clock.now_ms())),
            }
            continue;
        };
        let out = tokio::select! {
            () = &mut shutdown => return Ok(()),
            _ = tick.tick() => world.step(clock.now_ms()),
            read = stream.read(&mut read_buf) => match read {
                Ok(0) | Err(_) => {
                    tracing::info!("uplink host closed the connection");
                    link = None;
                    continue;
                }
                // One read = one command; anything unparsable is dropped silently.
                Ok(n) => match read_buf.get(..n).map(mesh::decode_command_tcp) {
                    Some(Ok((dst, cmd))) => world.handle_command(clock.now_ms(), &dst, &cmd),
                    _ => continue,
                },
            },
        };
        if let Err(e) = stream.write_all(&encode_lines(&out)).await {
            tracing::info!("uplink write failed: {e}");
            link = None;
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

fn encode_lines(out: &[(MacAddr, NodeMessage)]) -> Vec<u8> {
    let mut line = [0u8; MAX_MESSAGE_LEN + 2];
    let mut bytes = Vec::with_capacity(out.len() * 160);
    for (src, msg) in out {
        match mesh::encode_uplink_tcp(*src, msg, &mut line) {
            Ok(len) => bytes.extend_from_slice(line.get(..len).unwrap_or_default()),
            Err(e) => tracing::warn!(%src, "message does not encode: {e}"),
        }
    }
    bytes
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
