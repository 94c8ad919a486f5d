//! The simulated bays: who they are (a MAC per index), what state each is in at a given time
//! (plugged or not, charging at the setpoint the bridge sent, currents that drift), and the
//! heartbeat each state puts on the wire, serialised with `ctrl22-node`'s own codec so the
//! generator cannot drift from what the bridge parses.
//!
//! A bay's heartbeat is encoded once per state and kept as a finished MQTT PUBLISH packet
//! ([`BayPayload`]): sending is then a copy of bytes, which is what lets one process outrun
//! the broker.

use bytes::BytesMut;
use ctrl22_node::mesh::{self, Heartbeat, MacAddr, NodeMessage};
use ctrl22_node::{Ccss, Deciamps, PhaseSet};
use rumqttc::{Publish, QoS};

/// The first three bytes of every generated MAC: locally administered, so no real node's.
const MAC_PREFIX: [u8; 3] = [0x02, 0x22, 0x00];

/// The cable capacity a plugged car's cable reports: 32 A.
const CABLE_CAPACITY: Deciamps = Deciamps(320);

/// How often a bay's measured currents drift to a new value.
const DRIFT_PERIOD_MS: u64 = 1_000;

/// The MAC of bay `index` (`02:22:00:xx:yy:zz`, the index in the last three bytes).
#[must_use]
pub fn mac(index: u32) -> MacAddr {
    let [_, hi, mid, lo] = index.to_be_bytes();
    MacAddr([MAC_PREFIX[0], MAC_PREFIX[1], MAC_PREFIX[2], hi, mid, lo])
}

/// The bay index of a MAC made by [`mac`]; `None` for any other node.
#[must_use]
pub fn index_of(addr: MacAddr) -> Option<u32> {
    let [a, b, c, hi, mid, lo] = addr.0;
    ([a, b, c] == MAC_PREFIX).then(|| u32::from_be_bytes([0, hi, mid, lo]))
}

/// When bays plug and unplug: every bay toggles every `toggle_period_ms`, the bays' toggles
/// spread evenly over the period, so the site sees `events_per_s` plug changes per second and
/// about half the bays have a car at any time.
#[derive(Clone, Copy, Debug)]
pub struct PlugSchedule {
    bays: u32,
    toggle_period_ms: u64,
}

impl PlugSchedule {
    /// `events_per_s` plug or unplug events per second across `bays` bays, but no bay toggles
    /// more often than every 10 s (a car stays long enough to get its setpoint), so a small
    /// site sees fewer.
    #[must_use]
    pub fn new(bays: u32, events_per_s: f64) -> Self {
        let period_ms = (f64::from(bays.max(1)) * 1000.0 / events_per_s.max(0.001)).max(10_000.0);
        Self {
            bays: bays.max(1),
            toggle_period_ms: period_ms as u64,
        }
    }

    /// Whether bay `index` has a car at `t_ms` after the start.
    #[must_use]
    pub fn plugged(&self, index: u32, t_ms: u64) -> bool {
        let offset = u64::from(index) * self.toggle_period_ms / u64::from(self.bays);
        let phase = (t_ms + offset) / self.toggle_period_ms;
        (phase + u64::from(index)) % 2 == 0
    }
}

/// What a bay reports at one moment; equal states give equal heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BayState {
    pub plugged: bool,
    /// The last `smaxcur` the bridge wrote to this bay, if any.
    pub setpoint: Option<Deciamps>,
    /// 0..4: how far the measured currents sit below the offered current.
    pub drift: u8,
}

impl BayState {
    /// The state of bay `index` at `t_ms`, given its schedule and last setpoint.
    #[must_use]
    pub fn at(schedule: &PlugSchedule, index: u32, t_ms: u64, setpoint: Option<Deciamps>) -> Self {
        Self {
            plugged: schedule.plugged(index, t_ms),
            setpoint,
            drift: ((t_ms / DRIFT_PERIOD_MS + u64::from(index)) % 4) as u8,
        }
    }

    /// The heartbeat of a bay in this state, as the firmware would report it: no car = waiting
    /// in A1 without cable; a car and a setpoint of at least 6 A = charging (C1) on three
    /// phases a little below the offer; a car without one = B1, vehicle present, no current.
    #[must_use]
    pub fn heartbeat(&self, index: u32) -> Heartbeat {
        let rssi = -60 - i16::try_from(index % 20).unwrap_or(0);
        let idle = Heartbeat {
            rssi,
            ccss: Ccss::A1,
            amaxcur: Deciamps::ZERO,
            cmaxcur: Deciamps(-1),
            aphases: PhaseSet::NONE,
            cur: [Deciamps::ZERO; 3],
        };
        if !self.plugged {
            return idle;
        }
        match self.setpoint {
            Some(offer) if offer >= Deciamps::MIN_CHARGE => {
                let amaxcur = Deciamps(offer.get().min(CABLE_CAPACITY.get()));
                let drawn = Deciamps((amaxcur.get() - 5 - 3 * i16::from(self.drift)).max(0));
                Heartbeat {
                    ccss: Ccss::C1,
                    amaxcur,
                    cmaxcur: CABLE_CAPACITY,
                    aphases: PhaseSet::ALL,
                    cur: [drawn; 3],
                    ..idle
                }
            }
            _ => Heartbeat {
                ccss: Ccss::B1,
                cmaxcur: CABLE_CAPACITY,
                ..idle
            },
        }
    }
}

/// One bay's finished heartbeat packet and the state it was encoded from.
#[derive(Debug)]
pub struct BayPayload {
    pub index: u32,
    pub state: BayState,
    /// A complete MQTT 3.1.1 PUBLISH packet, QoS 0, not retained.
    pub packet: Vec<u8>,
}

impl BayPayload {
    /// Encodes bay `index` in `state` on mesh `mesh_id`.
    ///
    /// # Errors
    /// When the mesh id is unusable or the heartbeat does not encode (values no node sends).
    pub fn encode(mesh_id: &str, index: u32, state: BayState) -> anyhow::Result<Self> {
        let mut packet = Vec::new();
        encode_heartbeat(mesh_id, index, state, &mut packet)?;
        Ok(Self {
            index,
            state,
            packet,
        })
    }

    /// Re-encodes the packet when `state` differs from the one it was made from; returns
    /// whether the bay's plug state changed.
    ///
    /// # Errors
    /// As [`BayPayload::encode`].
    pub fn refresh(&mut self, mesh_id: &str, state: BayState) -> anyhow::Result<bool> {
        if state == self.state {
            return Ok(false);
        }
        let plug_changed = state.plugged != self.state.plugged;
        encode_heartbeat(mesh_id, self.index, state, &mut self.packet)?;
        self.state = state;
        Ok(plug_changed)
    }
}

fn encode_heartbeat(
    mesh_id: &str,
    index: u32,
    state: BayState,
    packet: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let message = NodeMessage::Heartbeat(state.heartbeat(index));
    let (topic, body) = mesh::encode_uplink_mqtt_vec(mesh_id, mac(index), &message)
        .map_err(|e| anyhow::anyhow!("bay {index}: heartbeat does not encode: {e:?}"))?;
    publish_packet(&topic, body, packet)
}

/// Writes a QoS 0 PUBLISH of `body` on `topic` into `packet` (replacing its contents).
///
/// # Errors
/// When the topic or body exceed MQTT's limits.
pub fn publish_packet(topic: &str, body: Vec<u8>, packet: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut buf = BytesMut::with_capacity(topic.len() + body.len() + 8);
    Publish::new(topic, QoS::AtMostOnce, body)
        .write(&mut buf)
        .map_err(|e| anyhow::anyhow!("PUBLISH on {topic} does not encode: {e:?}"))?;
    packet.clear();
    packet.extend_from_slice(&buf);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::Packet;

    /// Decodes a generated packet the way the bridge does: MQTT framing by rumqttc, the
    /// body by `ctrl22_node::mesh::decode_uplink_mqtt` (what `bridge/src/mesh/mqtt.rs` calls).
    fn decode(packet: &[u8]) -> (MacAddr, NodeMessage) {
        let mut buf = BytesMut::from(packet);
        let Ok(Packet::Publish(publish)) = Packet::read(&mut buf, 4096) else {
            panic!("not one PUBLISH packet");
        };
        assert!(buf.is_empty(), "trailing bytes after the packet");
        assert_eq!(publish.qos, QoS::AtMostOnce);
        assert!(!publish.retain);
        mesh::decode_uplink_mqtt("DEMESH", &publish.topic, &publish.payload)
            .expect("bridge decodes it")
    }

    #[test]
    fn every_state_decodes_as_the_heartbeat_it_was_made_from() {
        let setpoints = [
            None,
            Some(Deciamps(0)),
            Some(Deciamps(59)),
            Some(Deciamps(160)),
            Some(Deciamps(800)),
        ];
        for index in [0, 1, 19_999, 0x00ff_ffff] {
            for plugged in [false, true] {
                for setpoint in setpoints {
                    for drift in 0..4 {
                        let state = BayState {
                            plugged,
                            setpoint,
                            drift,
                        };
                        let payload = BayPayload::encode("DEMESH", index, state).expect("encodes");
                        let (src, msg) = decode(&payload.packet);
                        assert_eq!(src, mac(index));
                        assert_eq!(index_of(src), Some(index));
                        assert_eq!(msg, NodeMessage::Heartbeat(state.heartbeat(index)));
                    }
                }
            }
        }
    }

    #[test]
    fn the_bridge_sees_a_car_exactly_when_the_schedule_plugs_one() {
        let unplugged = BayState {
            plugged: false,
            setpoint: Some(Deciamps(160)),
            drift: 0,
        };
        assert!(unplugged.heartbeat(3).cmaxcur.get() <= 0);
        let charging = BayState {
            plugged: true,
            ..unplugged
        };
        let hb = charging.heartbeat(3);
        assert!(hb.cmaxcur.get() > 0 && hb.ccss == Ccss::C1 && hb.cur[0].get() >= 10);
        assert!(hb.amaxcur <= Deciamps(160));
    }

    #[test]
    fn the_plug_schedule_makes_the_asked_event_rate_with_half_the_bays_plugged() {
        let bays = 1_000;
        let schedule = PlugSchedule::new(bays, 50.0);
        let plugged_at = |t| (0..bays).filter(|&i| schedule.plugged(i, t)).count();
        let toggles: usize = (0..bays)
            .filter(|&i| schedule.plugged(i, 10_000) != schedule.plugged(i, 20_000))
            .count();
        assert!((450..=550).contains(&plugged_at(12_345)));
        assert!((480..=520).contains(&toggles), "{toggles} toggles in 10 s");
    }

    #[test]
    fn refresh_reencodes_only_on_a_change_and_reports_plug_changes() {
        let state = BayState {
            plugged: false,
            setpoint: None,
            drift: 1,
        };
        let mut payload = BayPayload::encode("DEMESH", 7, state).expect("encodes");
        assert!(!payload.refresh("DEMESH", state).expect("encodes"));
        assert!(!payload
            .refresh("DEMESH", BayState { drift: 2, ..state })
            .expect("encodes"));
        assert!(payload
            .refresh(
                "DEMESH",
                BayState {
                    plugged: true,
                    ..state
                }
            )
            .expect("encodes"));
        assert!(decode(&payload.packet).1 == NodeMessage::Heartbeat(payload.state.heartbeat(7)));
    }
}
