//! Recorded traffic of either mesh uplink, decoded the same way: MQTT messages seen by a
//! [`crate::Recorder`] and TCP lines and commands seen by a [`crate::tcp::TcpProxy`]. The
//! wire checks ([`crate::safety::check_wire`]) and the helpers below read both through
//! [`WireRecord`].

use std::collections::HashMap;
use std::time::Instant;

use ctrl22_node::mesh::{
    decode_command_mqtt, decode_command_tcp, decode_uplink_mqtt, decode_uplink_tcp, Address,
    Command, Heartbeat, MacAddr, NodeMessage,
};
use ctrl22_node::CcssGroup;

use crate::tcp::{Direction, TcpRecorded};
use crate::Recorded;

/// One decoded message, whichever way it went.
// Commands carry OTA chunks inline; boxing them would only cost the checks time.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum WireMessage {
    /// Host to node.
    Command { dst: Address, cmd: Command },
    /// Node to host.
    Uplink { src: MacAddr, msg: NodeMessage },
}

/// A recorded message of some uplink.
pub trait WireRecord {
    /// When the recorder saw it.
    fn at(&self) -> Instant;
    /// Where it went (the MQTT topic, or the TCP direction), for reports.
    fn label(&self) -> String;
    /// The raw bytes as text, for reports.
    fn text(&self) -> String;
    /// The message, or `None` for what the protocol does not define (garbage, simctl).
    fn decode(&self, mesh_id: &str) -> Option<WireMessage>;
}

impl WireRecord for Recorded {
    fn at(&self) -> Instant {
        self.at
    }

    fn label(&self) -> String {
        self.topic.clone()
    }

    fn text(&self) -> String {
        Recorded::text(self)
    }

    fn decode(&self, mesh_id: &str) -> Option<WireMessage> {
        if self.topic.ends_with("/control") {
            decode_command_mqtt(mesh_id, &self.topic, &self.payload)
                .ok()
                .map(|(dst, cmd)| WireMessage::Command { dst, cmd })
        } else {
            decode_uplink_mqtt(mesh_id, &self.topic, &self.payload)
                .ok()
                .map(|(src, msg)| WireMessage::Uplink { src, msg })
        }
    }
}

impl WireRecord for TcpRecorded {
    fn at(&self) -> Instant {
        self.at
    }

    fn label(&self) -> String {
        match self.direction {
            Direction::Uplink => "tcp root->host".to_owned(),
            Direction::Downlink => "tcp host->root".to_owned(),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    fn decode(&self, _mesh_id: &str) -> Option<WireMessage> {
        match self.direction {
            Direction::Uplink => decode_uplink_tcp(&self.bytes)
                .ok()
                .map(|(src, msg)| WireMessage::Uplink { src, msg }),
            Direction::Downlink => decode_command_tcp(&self.bytes)
                .ok()
                .map(|(dst, cmd)| WireMessage::Command { dst, cmd }),
        }
    }
}

/// Every heartbeat in order, with its index in `records`.
pub fn heartbeats<'a, R: WireRecord>(
    mesh_id: &'a str,
    records: &'a [R],
) -> impl Iterator<Item = (usize, MacAddr, Heartbeat)> + 'a {
    records
        .iter()
        .enumerate()
        .filter_map(move |(i, r)| match r.decode(mesh_id) {
            Some(WireMessage::Uplink {
                src,
                msg: NodeMessage::Heartbeat(hb),
            }) => Some((i, src, hb)),
            _ => None,
        })
}

/// Each node's last heartbeat in `records`.
#[must_use]
pub fn latest_heartbeats<R: WireRecord>(
    mesh_id: &str,
    records: &[R],
) -> HashMap<MacAddr, Heartbeat> {
    heartbeats(mesh_id, records)
        .map(|(_, mac, hb)| (mac, hb))
        .collect()
}

/// Bays whose last heartbeat says they charge (a C state with more than 1 A on some phase).
#[must_use]
pub fn charging_bays<R: WireRecord>(mesh_id: &str, records: &[R]) -> usize {
    latest_heartbeats(mesh_id, records)
        .values()
        .filter(|hb| hb.ccss.group() == CcssGroup::C && hb.cur.iter().any(|c| c.get() > 10))
        .count()
}

/// The fail-safe current (`fsafecur`) each node was last told, in 0.1 A.
#[must_use]
pub fn fail_safe_currents<R: WireRecord>(mesh_id: &str, records: &[R]) -> HashMap<MacAddr, i16> {
    let mut fail_safe = HashMap::new();
    for r in records {
        if let Some(WireMessage::Command {
            dst: Address::Node(mac),
            cmd: Command::AvrSetPar { par, val },
        }) = r.decode(mesh_id)
        {
            if par.as_str() == "fsafecur" {
                fail_safe.insert(mac, val);
            }
        }
    }
    fail_safe
}

/// Writes `records` one per line to `$E2E_WIRE_DUMP` when that is set (for debugging a run).
pub fn dump_if_asked<R: WireRecord>(records: &[R]) {
    let Ok(path) = std::env::var("E2E_WIRE_DUMP") else {
        return;
    };
    let Some(start) = records.first().map(WireRecord::at) else {
        return;
    };
    let text: String = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "#{i} {:>9.3} {} {}\n",
                r.at().duration_since(start).as_secs_f64(),
                r.label(),
                r.text()
            )
        })
        .collect();
    let _ = std::fs::write(path, text);
}
