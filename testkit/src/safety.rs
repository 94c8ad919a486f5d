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
//!
//! [`check_instant`] (feature `sim`) checks one instant of a simulated site from the
//! simulator's ground truth instead of the wire, against the site's, every circuit's and
//! every bay's limit: the pair harness (`bridge/tests/pair/`) calls it after every step.

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
                // Who may draw what on that phase, so a failure says which bays add up.
                let mut shares: Vec<String> = nodes
                    .iter()
                    .filter(|(_, node)| node.possible()[i] > 0)
                    .map(|(mac, node)| format!("{mac}: {} {node:?}", node.possible()[i]))
                    .collect();
                shares.sort();
                return Err(violation(format!(
                    "bays may draw {} dA on L{}, limit {}: {}",
                    possible[i],
                    i + 1,
                    limit[i],
                    shares.join("; ")
                )));
            }
        }
    }
    Ok(stats)
}

/// The configured limits one instant is held to (SPEC section 4), in 0.1 A per site phase:
/// the site's connection, every circuit, and every bay's own maximum and wiring.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub site: [i32; 3],
    pub circuits: Vec<CircuitLimit>,
    /// Bays not listed are wired straight (bay L1 on site L1) and have no own maximum.
    pub bays: HashMap<MacAddr, BayLimit>,
}

/// A circuit's limit and every bay below it (also those of its sub-circuits).
#[derive(Debug, Clone)]
pub struct CircuitLimit {
    pub name: String,
    pub limit: [i32; 3],
    pub bays: Vec<MacAddr>,
}

/// How one bay is wired and what it may be given at most.
#[derive(Debug, Clone, Copy)]
pub struct BayLimit {
    /// Bay phase `i` is wired to site phase `rotation[i]`.
    pub rotation: [Phase; 3],
    /// The bay's own maximum (its supply cable, its breaker), 0.1 A.
    pub max_current: i32,
}

/// What the whole site may draw at one instant, per site phase, 0.1 A.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstantLoad {
    /// Per bay the most it may draw (what its node applied, or what its car draws if more).
    pub possible: [i32; 3],
    /// What the cars draw.
    pub measured: [i32; 3],
}

#[cfg(feature = "sim")]
impl Envelope {
    /// The limit on each site phase of the site and each circuit, by name.
    fn groups(&self) -> impl Iterator<Item = (&str, [i32; 3], Option<&[MacAddr]>)> {
        std::iter::once(("site", self.site, None)).chain(
            self.circuits
                .iter()
                .map(|c| (c.name.as_str(), c.limit, Some(c.bays.as_slice()))),
        )
    }

    fn bay(&self, mac: &MacAddr) -> BayLimit {
        self.bays.get(mac).copied().unwrap_or(BayLimit {
            rotation: Phase::ALL,
            max_current: i32::MAX,
        })
    }
}

/// Checks one instant of the simulated site against `envelope` from the simulator's ground
/// truth, not from anything the nodes reported: what each node applied (`smaxcur`, `phases`,
/// `fsafecur` and whether its watchdog ran out, i.e. what it may offer any car that comes)
/// and what each car draws.
///
/// - Every bay's offer, `smaxcur` and `fsafecur` are 0 or at least 6.0 A.
/// - No bay may offer more than its own maximum, nor signal more than its cable carries.
/// - On every phase of the site and of every circuit, the sum over its bays of what each
///   may draw stays within the limit.
///
/// # Errors
/// What is broken, naming the bay or the group, the phase and by how much.
#[cfg(feature = "sim")]
pub fn check_instant(
    envelope: &Envelope,
    bays: &[ctrl22_node::sim::BayTruth],
) -> Result<InstantLoad, String> {
    let mut possible_by_bay: Vec<(MacAddr, [i32; 3], [i32; 3])> = Vec::with_capacity(bays.len());
    for bay in bays {
        let own = envelope.bay(&bay.mac);
        for (what, value) in [
            ("offer", bay.offered),
            ("smaxcur", bay.smaxcur),
            ("fsafecur", bay.fsafecur),
        ] {
            if value.get() != 0 && value.get() < 60 {
                return Err(format!(
                    "bay {}: {what} {} dA is neither 0 nor >= 6 A",
                    bay.mac,
                    value.get()
                ));
            }
        }
        let allowed = i32::from(bay.allowed.get().max(0));
        if allowed > own.max_current {
            return Err(format!(
                "bay {}: may offer {allowed} dA (smaxcur {}, fsafecur {}, watchdog expired: {}), \
                 its maximum is {}",
                bay.mac,
                bay.smaxcur.get(),
                bay.fsafecur.get(),
                bay.watchdog_expired,
                own.max_current
            ));
        }
        if let Some(cable) = bay.cable {
            if bay.offered > cable {
                return Err(format!(
                    "bay {}: offers {} dA on a {} dA cable",
                    bay.mac,
                    bay.offered.get(),
                    cable.get()
                ));
            }
        }
        let mut possible = [0i32; 3];
        let mut measured = [0i32; 3];
        for bay_phase in Phase::ALL {
            let site_phase = own.rotation[bay_phase.index()].index();
            let draw = i32::from(bay.draw[bay_phase.index()].get().max(0));
            let applied = if bay.phases.contains(bay_phase) {
                allowed
            } else {
                0
            };
            possible[site_phase] += applied.max(draw);
            measured[site_phase] += draw;
        }
        possible_by_bay.push((bay.mac, possible, measured));
    }
    let mut site = InstantLoad::default();
    for (name, limit, members) in envelope.groups() {
        let mut load = InstantLoad::default();
        for (mac, possible, measured) in &possible_by_bay {
            if members.is_some_and(|m| !m.contains(mac)) {
                continue;
            }
            for i in 0..3 {
                load.possible[i] += possible[i];
                load.measured[i] += measured[i];
            }
        }
        for (i, phase) in Phase::ALL.iter().enumerate() {
            if load.possible[i] > limit[i] {
                let mut top: Vec<_> = possible_by_bay
                    .iter()
                    .filter(|(mac, _, _)| members.is_none_or(|m| m.contains(mac)))
                    .filter(|(_, p, _)| p[i] > 0)
                    .map(|(mac, p, _)| format!("{mac} {}", p[i]))
                    .collect();
                top.sort();
                return Err(format!(
                    "{name} {phase:?}: bays may draw {} dA, limit {} (over by {}; measured {}); \
                     per bay: {}",
                    load.possible[i],
                    limit[i],
                    load.possible[i] - limit[i],
                    load.measured[i],
                    top.join(", ")
                ));
            }
        }
        if members.is_none() {
            site = load;
        }
    }
    Ok(site)
}
