//! Random sites and random event sequences against the allocation engine's promises:
//! - per-phase sums never exceed any circuit or site limit (reserved offline bays count
//!   first; when they alone exceed a limit nobody else under it gets anything), with the
//!   bays at their setpoints and with the bays at their fail-safe currents;
//! - every target is 0 or in [6 A, the bay's cap], on phases it is wired for;
//! - `fair` is max-min fair: a bay below its cap has a full constraint in which nobody has
//!   more than it, and no bay waits for capacity when 6 A would fit.
//!
//! The loads are recomputed here from the inputs, independently of the engine's own sums.

#![allow(clippy::unwrap_used)]

use ctrl22_bridge::allocate::{
    Allocation, Allocator, BayDemand, ChargeMode, Circuit, Params, Reason, Strategy as Sharing,
    Topology,
};
use ctrl22_bridge::bay::{BayId, Setpoint};
use ctrl22_node::{Deciamps, Phase, PhaseSet};
use proptest::prelude::*;

/// A site as generated: circuit `k` has parent `parents[k]` (an earlier circuit or none).
#[derive(Clone, Debug)]
struct Site {
    site_limit: [i16; 3],
    circuits: Vec<(Option<usize>, [i16; 3])>,
}

impl Site {
    fn topology(&self) -> Topology {
        let circuits = self
            .circuits
            .iter()
            .enumerate()
            .map(|(k, (parent, limit))| Circuit {
                id: format!("c{k}"),
                parent: parent.map(|p| format!("c{p}")),
                limit: limit.map(Deciamps),
            })
            .collect();
        Topology::new(self.site_limit.map(Deciamps), circuits).unwrap()
    }

    /// Node 0 is the site, node k + 1 circuit k; the chain from a bay's node to the site.
    fn path(&self, circuit: Option<usize>) -> Vec<usize> {
        let mut path = vec![0];
        let mut cursor = circuit;
        while let Some(k) = cursor {
            path.push(k + 1);
            cursor = self.circuits[k].0;
        }
        path
    }

    fn limit(&self, node: usize, phase: usize) -> i64 {
        let limit = if node == 0 {
            self.site_limit[phase]
        } else {
            self.circuits[node - 1].1[phase]
        };
        i64::from(limit.max(0))
    }
}

fn circuit_of(bay: &BayDemand) -> Option<usize> {
    bay.circuit
        .as_deref()
        .map(|id| id.trim_start_matches('c').parse().unwrap())
}

fn weights(bay: &BayDemand, phases: PhaseSet) -> [i64; 3] {
    let mut w = [0; 3];
    for p in phases.iter() {
        w[bay.rotation[p.index()].index()] += 1;
    }
    w
}

/// Per node and site phase: (load of reserved bays, load of the others).
fn loads(
    site: &Site,
    bays: &[BayDemand],
    currents: &[(Deciamps, PhaseSet)],
) -> Vec<[(i64, i64); 3]> {
    let mut loads = vec![[(0, 0); 3]; site.circuits.len() + 1];
    for (bay, (current, phases)) in bays.iter().zip(currents) {
        let w = weights(bay, *phases);
        for node in site.path(circuit_of(bay)) {
            for phase in 0..3 {
                let load = i64::from(current.get().max(0)) * w[phase];
                if bay.reserved.is_some() {
                    loads[node][phase].0 += load;
                } else {
                    loads[node][phase].1 += load;
                }
            }
        }
    }
    loads
}

fn assert_within_limits(site: &Site, bays: &[BayDemand], currents: &[(Deciamps, PhaseSet)]) {
    for (node, per_phase) in loads(site, bays, currents).iter().enumerate() {
        for (phase, (reserved, others)) in per_phase.iter().enumerate() {
            let room = (site.limit(node, phase) - reserved).max(0);
            assert!(
                *others <= room,
                "node {node} phase {phase}: reserved {reserved} + others {others} > limit {}",
                site.limit(node, phase)
            );
        }
    }
}

fn check_safety(site: &Site, bays: &[BayDemand], out: &Allocation) {
    assert_eq!(out.bays.len(), bays.len());
    for (bay, got) in bays.iter().zip(&out.bays) {
        assert_eq!(got.id, bay.id);
        if let Some(reserved) = bay.reserved {
            assert_eq!(got.setpoint, reserved);
            continue;
        }
        let current = got.setpoint.current;
        assert!(current.is_valid_offer(), "{current} for {}", bay.id);
        assert!(
            current <= bay.max_current.max(Deciamps::ZERO),
            "{current} over cap"
        );
        assert_eq!(current == Deciamps::ZERO, got.setpoint.phases.is_empty());
        assert!(got.setpoint.phases.is_subset_of(bay.wired_phases));
        if bay.mode == ChargeMode::Off || !bay.wants_charge {
            assert_eq!(got.setpoint, Setpoint::PAUSED);
        }
        assert!(got.fail_safe <= current && got.fail_safe.is_valid_offer());
    }
    let at_setpoint: Vec<_> = out
        .bays
        .iter()
        .map(|b| (b.setpoint.current, b.setpoint.phases))
        .collect();
    assert_within_limits(site, bays, &at_setpoint);
    let at_fail_safe: Vec<_> = out
        .bays
        .iter()
        .map(|b| (b.fail_safe, b.setpoint.phases))
        .collect();
    assert_within_limits(site, bays, &at_fail_safe);
}

/// Max-min fairness for a fresh allocator under `fair`: each charging bay below its cap has
/// a (nearly) full constraint in which no charging bay has more than it.
fn check_fair(site: &Site, bays: &[BayDemand], out: &Allocation, params: &Params) {
    let currents: Vec<_> = out
        .bays
        .iter()
        .map(|b| (b.setpoint.current, b.setpoint.phases))
        .collect();
    let loads = loads(site, bays, &currents);
    let charging = |i: usize| bays[i].reserved.is_none() && currents[i].0 > Deciamps::ZERO;
    // The solar budget in deciamps * volts, shared by pv and minpv bays.
    // A `schedule` bay that can still wait for its latest start lives on the surplus too.
    let solar_member = |i: usize| {
        matches!(bays[i].mode, ChargeMode::Pv | ChargeMode::MinPv) || out.bays[i].surplus_only
    };
    let volts = i64::from(params.voltage);
    let solar_load: i64 = (0..bays.len())
        .filter(|&i| charging(i) && solar_member(i))
        .map(|i| i64::from(currents[i].0.get()) * i64::from(currents[i].1.len()) * volts)
        .sum();
    for i in (0..bays.len()).filter(|&i| charging(i)) {
        let mine = currents[i].0;
        if mine >= bays[i].max_current {
            continue;
        }
        let my_path = site.path(circuit_of(&bays[i]));
        let my_weights = weights(&bays[i], currents[i].1);
        let mut bottleneck_found = false;
        for &node in &my_path {
            for phase in (0..3).filter(|&p| my_weights[p] > 0) {
                let members: Vec<usize> = (0..bays.len())
                    .filter(|&j| charging(j))
                    .filter(|&j| weights(&bays[j], currents[j].1)[phase] > 0)
                    .filter(|&j| site.path(circuit_of(&bays[j])).contains(&node))
                    .collect();
                let slack_allowed: i64 = members
                    .iter()
                    .map(|&j| weights(&bays[j], currents[j].1)[phase])
                    .sum::<i64>()
                    + 1;
                let (reserved, others) = loads[node][phase];
                let full = site.limit(node, phase) - reserved - others <= slack_allowed;
                let highest = members.iter().map(|&j| currents[j].0).max().unwrap();
                if full && mine >= highest {
                    bottleneck_found = true;
                }
            }
        }
        if solar_member(i) {
            let members: Vec<usize> = (0..bays.len())
                .filter(|&j| charging(j) && solar_member(j))
                .collect();
            let budget = if volts == 0 {
                0
            } else {
                i64::from(params.solar_budget_w.unwrap_or(0).max(0)) * 10
            };
            let slack_allowed: i64 = members
                .iter()
                .map(|&j| i64::from(currents[j].1.len()) * volts)
                .sum::<i64>()
                + volts * 3;
            let highest = members.iter().map(|&j| currents[j].0).max().unwrap();
            if budget - solar_load <= slack_allowed && mine >= highest {
                bottleneck_found = true;
            }
        }
        assert!(
            bottleneck_found,
            "bay {i} at {mine} below cap {} has no bottleneck where it is highest",
            bays[i].max_current
        );
    }
}

/// Nobody waits needlessly under `fair`: a bay paused for capacity would not fit at 6 A
/// even if every charging bay dropped to 6 A.
fn check_no_needless_wait(site: &Site, bays: &[BayDemand], out: &Allocation) {
    let at_floor: Vec<_> = out
        .bays
        .iter()
        .zip(bays)
        .map(|(b, bay)| {
            let floor = if bay.reserved.is_some() || b.setpoint.current == Deciamps::ZERO {
                b.setpoint.current
            } else {
                Deciamps::MIN_CHARGE
            };
            (floor, b.setpoint.phases)
        })
        .collect();
    let loads = loads(site, bays, &at_floor);
    for (i, got) in out.bays.iter().enumerate() {
        if got.reason != Reason::WaitingForCapacity {
            continue;
        }
        let w = weights(&bays[i], bays[i].usable_phases());
        let blocked = site.path(circuit_of(&bays[i])).iter().any(|&node| {
            (0..3).any(|phase| {
                let (reserved, others) = loads[node][phase];
                w[phase] > 0 && site.limit(node, phase) - reserved - others < 60 * w[phase]
            })
        });
        assert!(blocked, "bay {i} waits although 6 A would fit");
    }
}

fn phase() -> impl Strategy<Value = Phase> {
    prop_oneof![Just(Phase::L1), Just(Phase::L2), Just(Phase::L3)]
}

fn phase_set() -> impl Strategy<Value = PhaseSet> {
    (0..8i32).prop_map(|bits| {
        Phase::ALL
            .into_iter()
            .filter(|p| bits & (1 << p.index()) != 0)
            .fold(PhaseSet::NONE, PhaseSet::with)
    })
}

fn rotation() -> impl Strategy<Value = [Phase; 3]> {
    prop_oneof![
        // Proper rotations, as configured.
        8 => (0..6usize).prop_map(|k| {
            [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [1, 0, 2], [2, 1, 0]][k]
                .map(|i| Phase::from_index(i).unwrap())
        }),
        // Miswired: two bay phases on one site phase.
        1 => [phase(), phase(), phase()],
    ]
}

fn mode() -> impl Strategy<Value = ChargeMode> {
    prop_oneof![
        Just(ChargeMode::Off),
        Just(ChargeMode::Now),
        Just(ChargeMode::MinPv),
        Just(ChargeMode::Pv),
        Just(ChargeMode::Schedule),
    ]
}

fn strategy() -> impl Strategy<Value = Sharing> {
    prop_oneof![
        Just(Sharing::Fair),
        Just(Sharing::Fcfs),
        Just(Sharing::Priority),
        Just(Sharing::Schedule),
    ]
}

fn site() -> impl Strategy<Value = Site> {
    let limits = [0..=4000i16, 0..=4000i16, 0..=4000i16];
    (limits, 0..8usize).prop_flat_map(|(site_limit, n)| {
        let circuits: Vec<_> = (0..n)
            .map(|k| {
                (
                    proptest::option::of(0..k.max(1)).prop_map(move |p| p.filter(|p| *p < k)),
                    [0..=1600i16, 0..=1600i16, 0..=1600i16],
                )
            })
            .collect();
        circuits.prop_map(move |circuits| Site {
            site_limit,
            circuits,
        })
    })
}

fn bay(index: usize, circuits: usize) -> impl Strategy<Value = BayDemand> {
    let circuit = proptest::option::of(0..circuits.max(1))
        .prop_map(move |c| c.filter(|c| *c < circuits).map(|c| format!("c{c}")));
    let wired = prop_oneof![Just(PhaseSet::ALL), Just(PhaseSet::L1), phase_set()];
    let ev = proptest::option::of(prop_oneof![Just(PhaseSet::L1), phase_set()]);
    let reserved = proptest::option::weighted(
        0.1,
        (-50..=500i16, phase_set()).prop_map(|(c, phases)| Setpoint {
            current: Deciamps(c),
            phases,
        }),
    );
    let goal = proptest::option::of((0..20_000_000u64, 0..80_000u32));
    (
        (circuit, rotation(), wired, ev, -10..=800i16, mode()),
        (any::<bool>(), -3..=3i32, 0..10_000_000u64, goal, reserved),
    )
        .prop_map(
            move |(
                (circuit, rotation, wired_phases, ev_phases, max, mode),
                (wants, priority, arrived, goal, reserved),
            )| {
                let mut bay = BayDemand::new(BayId(format!("bay{index}")), Deciamps(max));
                bay.circuit = circuit;
                bay.rotation = rotation;
                bay.wired_phases = wired_phases;
                bay.ev_phases = ev_phases;
                bay.mode = mode;
                // Mostly plugged, so that there is contention.
                bay.wants_charge = wants || index % 3 != 0;
                bay.priority = priority;
                bay.arrived_at_ms = arrived;
                bay.departure_ms = goal.map(|g| g.0);
                bay.energy_needed_wh = goal.map(|g| g.1);
                bay.reserved = reserved;
                bay
            },
        )
}

fn site_and_bays(max_bays: usize) -> impl Strategy<Value = (Site, Vec<BayDemand>)> {
    site().prop_flat_map(move |site| {
        let n = site.circuits.len();
        (1..=max_bays).prop_flat_map(move |count| {
            let site = site.clone();
            (0..count)
                .map(|i| bay(i, n))
                .collect::<Vec<_>>()
                .prop_map(move |bays| (site.clone(), bays))
        })
    })
}

fn params() -> impl Strategy<Value = Params> {
    (
        strategy(),
        prop_oneof![Just(230u16), Just(0u16), 100..=250u16],
        proptest::option::of(-5_000..=60_000i32),
        0..=20i16,
    )
        .prop_map(|(strategy, voltage, solar_budget_w, hysteresis)| Params {
            strategy,
            voltage,
            solar_budget_w,
            hysteresis: Deciamps(hysteresis),
            ..Params::default()
        })
}

/// Something that happens between two rounds.
#[derive(Clone, Debug)]
enum Event {
    Plug(usize),
    Unplug(usize),
    Mode(usize, ChargeMode),
    Cap(usize, i16),
    GoOffline(usize),
    ComeBack(usize),
    SiteLimit([i16; 3]),
    Solar(Option<i32>),
    Strategy(Sharing),
    Advance(u64),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        1 => (0..200usize).prop_map(Event::Plug),
        1 => (0..200usize).prop_map(Event::Unplug),
        1 => (0..200usize, mode()).prop_map(|(i, m)| Event::Mode(i, m)),
        1 => (0..200usize, -10..=800i16).prop_map(|(i, c)| Event::Cap(i, c)),
        1 => (0..200usize).prop_map(Event::GoOffline),
        1 => (0..200usize).prop_map(Event::ComeBack),
        1 => [0..=4000i16, 0..=4000i16, 0..=4000i16].prop_map(Event::SiteLimit),
        1 => proptest::option::of(-5_000..=60_000i32).prop_map(Event::Solar),
        1 => strategy().prop_map(Event::Strategy),
        4 => (0..=20 * 60_000u64).prop_map(Event::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn limits_and_offers_hold_on_random_sites((site, bays) in site_and_bays(200), params in params()) {
        let topo = site.topology();
        let out = Allocator::new().allocate(1_000_000, &topo, &bays, &params);
        check_safety(&site, &bays, &out);
    }

    #[test]
    fn fair_is_max_min_fair((site, bays) in site_and_bays(60), params in params()) {
        let params = Params { strategy: Sharing::Fair, ..params };
        let topo = site.topology();
        let out = Allocator::new().allocate(1_000_000, &topo, &bays, &params);
        check_safety(&site, &bays, &out);
        check_fair(&site, &bays, &out, &params);
        check_no_needless_wait(&site, &bays, &out);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn limits_hold_through_random_event_sequences(
        (mut site, mut bays) in site_and_bays(200),
        mut params in params(),
        events in proptest::collection::vec(event(), 1..60),
    ) {
        let mut allocator = Allocator::new();
        let mut now = 0u64;
        let mut last: Option<Allocation> = None;
        for event in events {
            let count = bays.len();
            match event {
                Event::Plug(i) => bays[i % count].wants_charge = true,
                Event::Unplug(i) => bays[i % count].wants_charge = false,
                Event::Mode(i, mode) => bays[i % count].mode = mode,
                Event::Cap(i, cap) => bays[i % count].max_current = Deciamps(cap),
                Event::GoOffline(i) => {
                    // It keeps what it was last given.
                    let given = last
                        .as_ref()
                        .map_or(Setpoint::PAUSED, |out| out.bays[i % count].setpoint);
                    if bays[i % count].reserved.is_none() {
                        bays[i % count].reserved = Some(given);
                    }
                }
                Event::ComeBack(i) => bays[i % count].reserved = None,
                Event::SiteLimit(limit) => site.site_limit = limit,
                Event::Solar(watts) => params.solar_budget_w = watts,
                Event::Strategy(strategy) => params.strategy = strategy,
                Event::Advance(ms) => now += ms,
            }
            let out = allocator.allocate(now, &site.topology(), &bays, &params);
            check_safety(&site, &bays, &out);
            last = Some(out);
        }
    }
}
