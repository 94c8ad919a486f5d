//! An independent check of SPEC section 4 on the wire: it reads every command the bridge
//! sent and every acknowledgement and heartbeat the nodes sent, in the order the broker
//! delivered them, and verifies that the site's per-phase limit held at every instant.
//!
//! Per bay it keeps what the node may be applying: a raise counts from the moment it is
//! sent, a reduction only once the node acknowledged it (until then the old value may still
//! be in force); a write left unanswered counts at its worst (as applied) once a new one is
//! sent. A bay's possible draw is max(smaxcur, fsafecur) on the phases it was last
//! told (all three until told), capped by its cable. Every value written must be 0 or at
//! least 6.0 A. Measured currents are checked against the limit as well.
//!
//! It reads MQTT recordings and TCP-uplink recordings alike (anything [`WireRecord`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ctrl22_node::mesh::{Address, Command, MacAddr, NodeMessage};
use ctrl22_node::{Phase, PhaseSet};

use crate::wire::{WireMessage, WireRecord};

/// A breach of the rules, with the message that caused it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub index: usize,
    pub topic: String,
    pub payload: String,
    pub problem: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "message #{} {} {}: {}",
            self.index, self.topic, self.payload, self.problem
        )
    }
}

/// What the check saw.
#[derive(Debug, Clone, Default)]
pub struct WireStats {
    pub setpoint_writes: usize,
    pub heartbeats: usize,
    /// The highest possible draw per site phase seen at any instant, in 0.1 A.
    pub peak_possible: [i32; 3],
    /// The highest measured sum per site phase, in 0.1 A.
    pub peak_measured: [i32; 3],
}

/// A write unanswered this long may be followed by another: the bridge gives up on a reply
/// after 3 s (`SequencerParams::ack_timeout_ms`); the margin covers recording delays.
pub const ACK_GIVE_UP: Duration = Duration::from_millis(2_500);

#[derive(Debug, Clone, Copy, Default)]
struct Param {
    /// Acknowledged value in force; `None` until the first acknowledged write.
    confirmed: Option<i16>,
    /// Sent, not yet acknowledged.
    in_flight: Option<i16>,
}

impl Param {
    fn bound(&self, unknown: i16) -> i16 {
        let confirmed = self.confirmed.unwrap_or(unknown);
        self.in_flight.map_or(confirmed, |f| f.max(confirmed))
    }
}

#[derive(Debug, Clone, Default)]
struct Node {
    smaxcur: Param,
    fsafecur: Param,
    /// Phases the node may use: union of confirmed and in flight.
    phases_confirmed: Option<PhaseSet>,
    phases_in_flight: Option<PhaseSet>,
    /// The one write awaiting its acknowledgement, and when it was seen.
    outstanding: Option<(String, i16, Instant)>,
    amaxcur: i16,
    cable: i16,
    cur: [i32; 3],
}

impl Node {
    /// The outstanding write was answered (`ok`), failed, or given up on (`!ok`).
    fn settle(&mut self, ok: bool) {
        let Some((par, _, _)) = self.outstanding.take() else {
            // A reply nobody waits for changes nothing.
            return;
        };
        let settle = |p: &mut Param| {
            if ok {
                p.confirmed = p.in_flight.take().or(p.confirmed);
            } else {
                // A failed write may still have been applied: keep the max.
                let worst = p.bound(0);
                p.confirmed = Some(worst);
                p.in_flight = None;
            }
        };
        match par.as_str() {
            "smaxcur" => settle(&mut self.smaxcur),
            "fsafecur" => settle(&mut self.fsafecur),
            "phases" => {
                if ok {
                    self.phases_confirmed = self.phases_in_flight.take();
                } else if let (Some(c), Some(f)) =
                    (self.phases_confirmed, self.phases_in_flight.take())
                {
                    self.phases_confirmed = Some(c.union(f));
                }
            }
            _ => {}
        }
    }

    fn possible(&self) -> [i32; 3] {
        let current = self.smaxcur.bound(self.amaxcur).max(self.fsafecur.bound(0));
        let current = i32::from(current.min(self.cable.max(self.amaxcur)).max(0));
        let phases = match (self.phases_confirmed, self.phases_in_flight) {
            (Some(c), Some(f)) => c.union(f),
            (Some(c), None) => c,
            _ => PhaseSet::ALL,
        };
        Phase::ALL.map(|p| if phases.contains(p) { current } else { 0 })
    }
}

/// Checks the whole recording against `limit` (per site phase, 0.1 A; bays wired straight).
///
/// # Errors
/// The first [`Violation`].
pub fn check_wire<R: WireRecord>(
    mesh_id: &str,
    messages: &[R],
    limit: [i32; 3],
) -> Result<WireStats, Violation> {
    check_wire_with(mesh_id, messages, limit, ACK_GIVE_UP)
}

/// [`check_wire`] with the time after which an unanswered write may be followed by another
/// to the same node, as seen on the wire (`ack_give_up`).
///
/// # Errors
/// The first [`Violation`].
pub fn check_wire_with<R: WireRecord>(
    mesh_id: &str,
    messages: &[R],
    limit: [i32; 3],
    ack_give_up: Duration,
) -> Result<WireStats, Violation> {
    let mut nodes: HashMap<MacAddr, Node> = HashMap::new();
    let mut stats = WireStats::default();
    for (index, m) in messages.iter().enumerate() {
        let violation = |problem: String| Violation {
            index,
            topic: m.label(),
            payload: m.text(),
            problem,
        };
        let Some(decoded) = m.decode(mesh_id) else {
            continue;
        };
        if let WireMessage::Command { dst, cmd } = decoded {
            let (Address::Node(mac), Command::AvrSetPar { par, val }) = (dst, cmd) else {
                continue;
            };
            let node = nodes.entry(mac).or_default();
            if let Some((pending, pending_val, sent)) = &node.outstanding {
                if par.as_str() != "opbutton" {
                    let age = m.at().saturating_duration_since(*sent);
                    if age < ack_give_up {
                        return Err(violation(format!(
                            "a second avrsetpar while {pending}={pending_val}, sent {age:?} \
                             before, is unanswered"
                        )));
                    }
                    // Given up on: it may have been applied all the same.
                    node.settle(false);
                }
            }
            match par.as_str() {
                "smaxcur" | "fsafecur" => {
                    if val != 0 && val < 60 {
                        return Err(violation(format!("{par}={val}: neither 0 nor >= 6 A")));
                    }
                    let p = if par.as_str() == "smaxcur" {
                        &mut node.smaxcur
                    } else {
                        &mut node.fsafecur
                    };
                    p.in_flight = Some(val);
                    stats.setpoint_writes += 1;
                }
                "phases" => {
                    node.phases_in_flight = PhaseSet::from_digits(i32::from(val)).ok();
                }
                _ => {}
            }
            node.outstanding = Some((par.to_string(), val, m.at()));
        } else if let WireMessage::Uplink { src: mac, msg } = decoded {
            let node = nodes.entry(mac).or_default();
            match msg {
                NodeMessage::Heartbeat(hb) => {
                    stats.heartbeats += 1;
                    node.amaxcur = hb.amaxcur.get();
                    node.cable = hb.cmaxcur.get();
                    node.cur = hb.cur.map(|c| i32::from(c.get().max(0)));
                }
                NodeMessage::AvrSetPar { ok } => node.settle(ok),
                _ => {}
            }
        }
        let mut possible = [0i32; 3];
        let mut measured = [0i32; 3];
        for node in nodes.values() {
            for (i, (p, c)) in node.possible().iter().zip(node.cur).enumerate() {
                possible[i] += p;
                measured[i] += c;
            }
        }
        for i in 0..3 {
            stats.peak_possible[i] = stats.peak_possible[i].max(possible[i]);
            stats.peak_measured[i] = stats.peak_measured[i].max(measured[i]);
            if measured[i] > limit[i] {
                return Err(violation(format!(
                    "measured L{} = {} dA above the limit {}",
                    i + 1,
                    measured[i],
                    limit[i]
                )));
            }
            if possible[i] > limit[i] {
                return Err(violation(format!(
                    "bays may draw {} dA on L{}, limit {}",
                    possible[i],
                    i + 1,
                    limit[i]
                )));
            }
        }
    }
    Ok(stats)
}
