//! SMA Energy Meter / Sunny Home Manager 2.0 Speedwire multicast (UDP 239.12.255.254:9522).
//!
//! Layout (SMA "Energy Meter Protocol" technical information EMETER-Protokoll-TI;
//! datenschuft/SMA-EM `speedwiredecoder.py`): `SMA\0`, then big-endian: length
//! `be16(d[12..14]) + 16` is the datagram's end, protocol id `0x6069` at 16, serial
//! `be32(d[20..24])`, ticker at 24, OBIS entries from 28: `be16 channel, type, tariff` then a
//! u32 (type 4, actual) or u64 (type 8, counter). Channels: 1 / 2 import / export power
//! (0.1 W, unsigned), 21/22, 41/42, 61/62 the same per phase, 31/51/71 phase current (mA,
//! unsigned), 0x9000 the firmware version. grid = import - export (evcc `meter/sma.go`).

use super::error::SourceError;
use super::json::signed_currents;
use super::validate::RawReading;

/// The multicast group and port meters send to.
pub const GROUP: &str = "239.12.255.254:9522";
const MAGIC: &[u8; 4] = b"SMA\0";
const ENERGY_METER: u16 = 0x6069;
const VERSION_CHANNEL: u16 = 0x9000;
/// Largest datagram read; meters send about 600 bytes.
pub const MAX_DATAGRAM: usize = 1500;

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// Parses one datagram. `Ok(None)` for datagrams to ignore: other SMA traffic on the group,
/// another meter than `serial`, or a meter's announcement without data.
///
/// # Errors
/// A datagram that claims to be an energy meter's and is malformed.
pub fn parse(d: &[u8], serial: Option<u32>) -> Result<Option<RawReading>, SourceError> {
    let malformed = |why: &str| SourceError::Malformed(format!("Speedwire: {why}"));
    if d.get(..4) != Some(&MAGIC[..]) || be16(d, 16) != Some(ENERGY_METER) {
        return Ok(None);
    }
    let from = be32(d, 20).ok_or_else(|| malformed("no serial"))?;
    if serial.is_some_and(|s| s != from) {
        return Ok(None);
    }
    let end = usize::from(be16(d, 12).ok_or_else(|| malformed("no length"))?) + 16;
    if end > d.len() {
        return Err(malformed("shorter than its length field"));
    }
    let mut actual = [None::<u32>; 80];
    let mut at = 28;
    while at + 4 <= end {
        let channel = be16(d, at).ok_or_else(|| malformed("truncated entry"))?;
        let kind = d[at + 2];
        at += 4;
        let size = match (channel, kind) {
            (0, 0) => break,
            (VERSION_CHANNEL, _) | (_, 4) => 4,
            (_, 8) => 8,
            _ => {
                return Err(malformed(&format!(
                    "entry type {kind} of channel {channel}"
                )))
            }
        };
        if at + size > end {
            return Err(malformed("an entry runs past the end"));
        }
        if size == 4 {
            if let Some(slot) = actual.get_mut(usize::from(channel)) {
                *slot = be32(d, at);
            }
        }
        at += size;
    }
    let net = |plus: usize, minus: usize| match (actual[plus], actual[minus]) {
        (Some(p), Some(m)) => Some((f64::from(p) - f64::from(m)) / 10.0),
        _ => None,
    };
    let Some(grid_w) = net(1, 2) else {
        // An announcement (54 bytes) or a meter without power channels.
        return Ok(None);
    };
    let phase_w = match (net(21, 22), net(41, 42), net(61, 62)) {
        (Some(a), Some(b), Some(c)) => Some([a, b, c]),
        _ => None,
    };
    let phase_a = match (actual[31], actual[51], actual[71]) {
        (Some(a), Some(b), Some(c)) => Some(signed_currents(
            [a, b, c].map(|ma| f64::from(ma) / 1000.0),
            phase_w,
        )),
        _ => None,
    };
    Ok(Some(RawReading {
        grid_w: Some(grid_w),
        grid_phase_w: phase_w,
        grid_phase_a: phase_a,
        ..RawReading::default()
    }))
}

/// Listens on `url` (`udp://239.12.255.254:9522` joins the group on all interfaces; a
/// unicast address is bound as is) and forwards a reading at most every `interval`.
///
/// # Errors
/// A bad address or a port that cannot be bound.
pub fn spawn(
    source: &crate::config::SolarSourceConfig,
    out: tokio::sync::mpsc::Sender<Result<super::value::Sample, SourceError>>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::net::{Ipv4Addr, SocketAddr};

    let url = source.url.as_deref().unwrap_or(GROUP);
    let target = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .trim_end_matches('/');
    let addr: SocketAddr = target
        .parse()
        .with_context(|| format!("url {target:?}: not ip:port"))?;
    let socket = match addr {
        SocketAddr::V4(v4) if v4.ip().is_multicast() => {
            let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, v4.port()))
                .with_context(|| format!("binding UDP port {}", v4.port()))?;
            socket
                .join_multicast_v4(v4.ip(), &Ipv4Addr::UNSPECIFIED)
                .with_context(|| format!("joining {}", v4.ip()))?;
            socket
        }
        _ => std::net::UdpSocket::bind(addr).with_context(|| format!("binding {addr}"))?,
    };
    socket.set_nonblocking(true)?;
    let socket = tokio::net::UdpSocket::from_std(socket)?;
    let source = source.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut last: Option<std::time::Instant> = None;
        loop {
            let Ok(n) = socket.recv(&mut buf).await else {
                continue;
            };
            let sample = match parse(&buf[..n], source.serial) {
                Ok(None) => continue,
                Ok(Some(raw)) => super::validate::reading(&raw.keep(&source.measures))
                    .map(super::value::Sample::Power),
                Err(e) => Err(e),
            };
            // Meters send every second; the site hears from this source once per interval.
            if sample.is_ok() && last.is_some_and(|t| t.elapsed() < source.interval) {
                continue;
            }
            last = Some(std::time::Instant::now());
            if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = out.try_send(sample) {
                return;
            }
        }
    });
    Ok(())
}

/// An energy meter datagram with these actual values (channel, value), for tests and the
/// simulated meter.
#[must_use]
pub fn datagram(serial: u32, actual: &[(u16, u32)]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(MAGIC);
    d.extend_from_slice(&[0x00, 0x04, 0x02, 0xA0, 0x00, 0x00, 0x00, 0x01]);
    d.extend_from_slice(&[0, 0]); // length, filled below
    d.extend_from_slice(&[0x00, 0x10]);
    d.extend_from_slice(&ENERGY_METER.to_be_bytes());
    d.extend_from_slice(&0x015Du16.to_be_bytes()); // susy id
    d.extend_from_slice(&serial.to_be_bytes());
    d.extend_from_slice(&1_000u32.to_be_bytes()); // ticker
    for (channel, value) in actual {
        d.extend_from_slice(&channel.to_be_bytes());
        d.extend_from_slice(&[4, 0]);
        d.extend_from_slice(&value.to_be_bytes());
    }
    // A counter, to be skipped.
    d.extend_from_slice(&[0, 1, 8, 0]);
    d.extend_from_slice(&123_456_789u64.to_be_bytes());
    d.extend_from_slice(&[0x90, 0x00, 0x00, 0x00, 2, 0, 18, 82]);
    d.extend_from_slice(&[0, 0, 0, 0]);
    let length = u16::try_from(d.len() - 16).unwrap_or(u16::MAX);
    d[12..14].copy_from_slice(&length.to_be_bytes());
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_export_and_phases() {
        let d = datagram(
            1_900_000_001,
            &[
                (1, 0),
                (2, 23_000),
                (21, 0),
                (22, 12_000),
                (41, 0),
                (42, 6_000),
                (61, 1_000),
                (62, 6_000),
                (31, 5_200),
                (51, 2_600),
                (71, 2_200),
            ],
        );
        let r = parse(&d, None).expect("parses").expect("a reading");
        assert_eq!(r.grid_w, Some(-2300.0));
        assert_eq!(r.grid_phase_w, Some([-1200.0, -600.0, -500.0]));
        assert_eq!(r.grid_phase_a, Some([-5.2, -2.6, -2.2]));
    }

    #[test]
    fn foreign_serials_short_and_broken_datagrams() {
        let d = datagram(7, &[(1, 100), (2, 0)]);
        assert_eq!(parse(&d, Some(8)), Ok(None));
        assert_eq!(
            parse(&d, Some(7)).map(|r| r.and_then(|r| r.grid_w)),
            Ok(Some(10.0))
        );
        assert_eq!(parse(b"SMA\0", None), Ok(None));
        assert_eq!(
            parse(&d[..40], None).map_err(|e| e.kind()),
            Err("malformed")
        );
        let mut bad = d.clone();
        bad[30] = 9; // an entry type that does not exist
        assert!(parse(&bad, None).is_err());
        for cut in 0..d.len() {
            let _ = parse(&d[..cut], None);
        }
    }
}
