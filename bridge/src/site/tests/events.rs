//! Event-driven allocation in simulated time: a change that matters is allocated for within
//! the coalescing window, not at the next cycle; repeats ask for nothing; a burst costs one
//! allocation.
//!
//! The nodes here are a minimal model of the firmware's parameter handling (every write is
//! applied and answered 2 ms later, a heartbeat reports the setpoint as offered and drawn on
//! all three phases while a car is there), enough to let the sequencer confirm.

use std::collections::BTreeMap;

use ctrl22_node::mesh::{Address, Command, Heartbeat, MacAddr, NodeMessage};
use ctrl22_node::{Ccss, Deciamps, PhaseSet};

use super::link_up;
use crate::clock::Now;
use crate::site::pending::COALESCE_MS;
use crate::site::{Input, Output, SettingChange, Site, SiteSettings, Stored};

/// The control cycle of the runtime, on the whole second.
const CYCLE_MS: u64 = 1_000;
const ACK_MS: u64 = 2;

fn mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0xc2, 0x22, 0, 1, n])
}

#[derive(Debug)]
struct Node {
    car: bool,
    smaxcur: i16,
    /// Heartbeats at this offset into every second.
    offset_ms: u64,
}

impl Node {
    fn heartbeat(&self) -> Heartbeat {
        let offered = if self.car { self.smaxcur } else { 0 };
        Heartbeat {
            rssi: -60,
            ccss: if self.car { Ccss::C3 } else { Ccss::Off1 },
            amaxcur: Deciamps(offered),
            cmaxcur: Deciamps(if self.car { 320 } else { -1 }),
            aphases: if offered > 0 {
                PhaseSet::ALL
            } else {
                PhaseSet::NONE
            },
            cur: [Deciamps(offered); 3],
        }
    }
}

/// A site and its nodes on one simulated clock, driven as the runtime drives it: a cycle
/// every second, [`Input::Timeout`] at [`Site::poll_timeout`].
struct World {
    site: Site,
    now: u64,
    next_cycle: u64,
    nodes: BTreeMap<MacAddr, Node>,
    acks: Vec<(u64, MacAddr)>,
    /// Every `smaxcur` sent: (ms, bay, value).
    smaxcur: Vec<(u64, MacAddr, i16)>,
}

impl World {
    /// `bays` bays with a car each on a site of `limit_a` per phase, run until the cars
    /// charge steadily.
    fn charging(bays: u8, limit_a: i16) -> Self {
        let settings = SiteSettings {
            heartbeat_timeout_ms: 3_000,
            limits: [Deciamps::from_amps(limit_a); 3],
            ..SiteSettings::default()
        };
        let mut site = Site::new(settings, Stored::default(), Now::at(0)).expect("valid site");
        site.handle(Now::at(0), link_up());
        let nodes = (1..=bays)
            .map(|n| {
                let node = Node {
                    car: true,
                    smaxcur: 0,
                    offset_ms: 300 + u64::from(n) * 7,
                };
                (mac(n), node)
            })
            .collect();
        let mut world = Self {
            site,
            now: 0,
            next_cycle: CYCLE_MS,
            nodes,
            acks: Vec::new(),
            smaxcur: Vec::new(),
        };
        world.run_until(20_000);
        world
    }

    fn input(&mut self, input: Input) {
        let out = self.site.handle(Now::at(self.now), input);
        self.carry(out);
    }

    fn heartbeat(&mut self, bay: MacAddr) {
        if let Some(hb) = self.nodes.get(&bay).map(Node::heartbeat) {
            self.input(Input::Mesh {
                src: bay,
                msg: NodeMessage::Heartbeat(hb),
            });
        }
    }

    fn carry(&mut self, out: Vec<Output>) {
        for output in out {
            if let Output::Send {
                dst: Address::Node(bay),
                cmd: Command::AvrSetPar { par, val },
            } = output
            {
                if par.as_str() == "smaxcur" {
                    if let Some(node) = self.nodes.get_mut(&bay) {
                        node.smaxcur = val;
                    }
                    self.smaxcur.push((self.now, bay, val));
                }
                self.acks.push((self.now + ACK_MS, bay));
            }
        }
    }

    /// Runs every input due up to `until` in time order.
    fn run_until(&mut self, until: u64) {
        loop {
            let heartbeat = self
                .nodes
                .iter()
                .map(|(mac, node)| {
                    let second = self.now / 1_000 * 1_000;
                    let mut at = second + node.offset_ms;
                    if at <= self.now {
                        at += 1_000;
                    }
                    (at, *mac)
                })
                .min();
            let ack = self.acks.iter().min().copied();
            let timeout = self.site.poll_timeout();
            let next = [
                Some(self.next_cycle),
                heartbeat.map(|h| h.0),
                ack.map(|a| a.0),
                timeout,
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(u64::MAX);
            if next > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(next);
            if let Some((at, bay)) = ack.filter(|a| a.0 <= self.now) {
                self.acks.retain(|a| *a != (at, bay));
                self.input(Input::Mesh {
                    src: bay,
                    msg: NodeMessage::AvrSetPar { ok: true },
                });
            } else if timeout.is_some_and(|t| t <= self.now) {
                self.input(Input::Timeout);
            } else if self.next_cycle <= self.now {
                self.next_cycle += CYCLE_MS;
                self.input(Input::Tick);
            } else if let Some((_, bay)) = heartbeat.filter(|h| h.0 <= self.now) {
                self.heartbeat(bay);
                // One input per loop: a second heartbeat due in the same ms comes next.
                self.now += 1;
            }
        }
    }

    fn allocated_a(&self, bay: MacAddr) -> f64 {
        let id = bay.topic_form().to_string();
        self.site
            .snapshot(Now::at(self.now))
            .bays
            .iter()
            .find(|b| b.dev == id)
            .map_or(f64::NAN, |b| b.allocated_a)
    }

    fn event_allocations(&self) -> u64 {
        self.site
            .snapshot(Now::at(self.now))
            .traffic
            .event_allocations
    }
}

#[test]
fn an_unplug_frees_its_current_for_another_bay_between_two_cycles() {
    let (a, b) = (mac(1), mac(2));
    let mut world = World::charging(2, 16);
    assert_eq!(world.allocated_a(b), 8.0, "two cars share 16 A");
    assert!(world.smaxcur.iter().any(|&(_, bay, v)| bay == b && v == 80));

    // Between the cycles at 20 s and 21 s, car A leaves; its node reports at once.
    world.run_until(20_250);
    world.nodes.get_mut(&a).expect("bay a").car = false;
    world.heartbeat(a);
    let unplugged = world.now;
    assert_eq!(world.site.poll_timeout(), Some(unplugged + COALESCE_MS));
    world.run_until(unplugged + COALESCE_MS);
    assert_eq!(
        world.allocated_a(b),
        16.0,
        "the allocation ran within the window"
    );
    // The leaving bay is lowered first (its fail-safe, then its setpoint), at once.
    world.run_until(unplugged + COALESCE_MS + 2 * ACK_MS);
    let lowered = world
        .smaxcur
        .iter()
        .find(|&&(at, bay, v)| at > unplugged && bay == a && v == 0);
    assert!(lowered.is_some(), "{:?}", world.smaxcur);

    // B's raise waits only for A's next report (its node confirmed 0 A and its current
    // followed), at 20.307 s: well before the next cycle.
    world.run_until(20_999);
    let raise = world
        .smaxcur
        .iter()
        .find(|&&(at, bay, v)| at > unplugged && bay == b && v == 160);
    assert_eq!(raise.map(|r| r.0), Some(20_307), "{:?}", world.smaxcur);
}

#[test]
fn heartbeats_that_change_nothing_ask_for_no_allocation() {
    let b = mac(2);
    let mut world = World::charging(2, 16);
    let before = world.event_allocations();
    for _ in 0..1_000 {
        world.heartbeat(b);
        assert_eq!(world.site.poll_timeout(), None);
        world.now += 1;
    }
    // The car's current wanders, as a real one's does: still nothing to allocate.
    for wobble in 0..100 {
        let mut hb = world.nodes.get(&b).map(Node::heartbeat).expect("bay b");
        hb.cur = [Deciamps(70 + wobble % 10); 3];
        world.input(Input::Mesh {
            src: b,
            msg: NodeMessage::Heartbeat(hb),
        });
        assert_eq!(world.site.poll_timeout(), None);
    }
    world.input(Input::Timeout);
    assert_eq!(world.event_allocations(), before);
}

#[test]
fn a_burst_of_changes_costs_one_allocation() {
    let mut world = World::charging(50, 320);
    let before = world.event_allocations();
    // Within 5 ms: 25 cars leave and 25 operator changes come in.
    world.run_until(30_100);
    let first = world.now;
    for n in 1..=25 {
        world.nodes.get_mut(&mac(n)).expect("bay").car = false;
        world.heartbeat(mac(n));
        world.now = first + u64::from(n) * (COALESCE_MS - 1) / 25;
        let change = SettingChange::BayPriority {
            bay: crate::bay::BayId(mac(n + 25).topic_form().to_string()),
            priority: i32::from(n),
        };
        let out = world
            .site
            .apply(Now::at(world.now), change)
            .expect("a valid priority");
        world.carry(out);
        assert_eq!(world.site.poll_timeout(), Some(first + COALESCE_MS));
    }
    // A timeout before the deadline does nothing; the one at it allocates once.
    world.input(Input::Timeout);
    assert_eq!(world.event_allocations(), before);
    world.run_until(first + COALESCE_MS);
    assert_eq!(world.event_allocations(), before + 1);
    assert_eq!(world.site.poll_timeout(), None);
    for n in 1..=25 {
        assert_eq!(world.allocated_a(mac(n)), 0.0);
    }
}

#[test]
fn costly_allocations_are_spaced_further_apart() {
    let mut world = World::charging(2, 16);
    world.run_until(20_250);
    world.nodes.get_mut(&mac(1)).expect("bay a").car = false;
    world.heartbeat(mac(1));
    world.run_until(20_255);
    // A whole cycle's cost does not space them; the allocation's own does. The runtime
    // measured that allocation at 10 ms: the next change waits 40 ms after it.
    world.site.record_cycle_time(500_000);
    world.site.record_allocation_time(10_000);
    world.nodes.get_mut(&mac(1)).expect("bay a").car = true;
    world.heartbeat(mac(1));
    assert_eq!(world.site.poll_timeout(), Some(20_255 + 40));
}

#[test]
fn messages_and_writes_are_counted_for_metrics() {
    let world = World::charging(2, 16);
    let traffic = world.site.snapshot(Now::at(world.now)).traffic;
    // 20 s of one heartbeat a second from each bay (the first one in the first second).
    assert!(
        (38..=40).contains(&traffic.messages_of("heartbeat")),
        "{traffic:?}"
    );
    assert_eq!(
        traffic.messages_of("avrsetpar") + world.acks.len() as u64,
        traffic.setpoint_writes,
        "every write is answered"
    );
    assert!(traffic.setpoint_writes >= 4, "{traffic:?}");
    assert_eq!(traffic.cycle_allocations, 20);
}
