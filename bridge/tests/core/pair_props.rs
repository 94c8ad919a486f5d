//! The site core against simulated bays in one thread on one simulated clock (the pair
//! harness, `tests/pair/`), with the electrical safety rules of SPEC section 4 checked from
//! the simulator's ground truth after every step: scenarios, and a property test of random
//! plug, unplug, limit and loss sequences.
//!
//! Throughput (simulated minutes per wall second):
//! `cargo test --release -p ctrl22-bridge --test core -- --ignored --nocapture throughput`
#![allow(clippy::unwrap_used)]

use crate::pair;

use ctrl22_node::sim::Arrivals;
use pair::layout::{CircuitLayout, Layout};
use pair::network::LinkModel;
use pair::Pair;
use proptest::prelude::*;

const MINUTE_MS: u64 = 60_000;

/// 20 bays on 3 x 32 A, the first ten behind a 3 x 20 A sub-distribution, phases rotated
/// bay by bay.
fn two_rows() -> Layout {
    Layout {
        circuits: vec![CircuitLayout {
            name: "row-a".to_owned(),
            limit_a: 20,
            bays: 0..10,
        }],
        rotate_phases: true,
        ..Layout::plugged(20, 32)
    }
}

fn run(pair: &mut Pair, ms: u64) {
    if let Err(breach) = pair.run_for(ms) {
        panic!("{breach}");
    }
}

#[test]
fn twenty_plugged_bays_on_3x32_a_stay_within_the_limit_for_an_hour() {
    let mut pair = Pair::new(&Layout::plugged(20, 32), 1);
    run(&mut pair, 60 * MINUTE_MS);
    let stats = pair.stats();
    // The cars charged: the site was used up to near its limit, not left idle.
    assert!(stats.peak_measured.iter().all(|&d| d > 200), "{stats:?}");
}

#[test]
fn thirty_percent_of_messages_lost_both_ways() {
    let mut pair = Pair::new(&two_rows(), 2);
    pair.set_links(LinkModel::lossy(0.3), LinkModel::lossy(0.3));
    run(&mut pair, 60 * MINUTE_MS);
    let stats = pair.stats();
    assert!(
        stats.uplink.lost > 1_000 && stats.downlink.lost > 100,
        "{stats:?}"
    );
    assert!(stats.peak_measured.iter().all(|&d| d > 150), "{stats:?}");
}

/// Messages overtake each other between nodes and within one node's stream, but every trip
/// stays under 1.4 s, so a write and its reply fit the core's 3 s reply deadline.
fn reordering(fifo_per_node: bool) -> LinkModel {
    LinkModel {
        loss: 0.05,
        delay_ms: (0, 900),
        reorder: 0.5,
        hold_ms: 500,
        fifo_per_node,
    }
}

#[test]
fn heavy_reordering_between_nodes() {
    let mut pair = Pair::new(&two_rows(), 3);
    pair.set_links(reordering(true), reordering(true));
    run(&mut pair, 30 * MINUTE_MS);
}

#[test]
fn heavy_reordering_within_one_nodes_messages() {
    let mut pair = Pair::new(&two_rows(), 4);
    pair.set_links(reordering(false), reordering(false));
    run(&mut pair, 30 * MINUTE_MS);
}

#[test]
fn a_site_limit_lowered_at_runtime_is_followed_within_15_s() {
    let mut pair = Pair::new(&Layout::plugged(20, 32), 5);
    pair.settle_ms = 15_000;
    run(&mut pair, 10 * MINUTE_MS);
    for phase in 1..=3 {
        pair.set_site_limit(phase, 20.0).unwrap();
    }
    run(&mut pair, 20 * MINUTE_MS);
    let lowered = pair.stats().peak_measured;
    for phase in 1..=3 {
        pair.set_site_limit(phase, 32.0).unwrap();
    }
    run(&mut pair, 10 * MINUTE_MS);
    assert_eq!(pair.snapshot().limit_a, [32.0; 3]);
    assert!(lowered.iter().all(|&d| d > 150), "{lowered:?}");
}

/// Event-driven allocation between the cycles, with cars coming and going, lossy links and
/// the limit lowered and restored: the fuse holds at every step, and the lowered limit is
/// followed.
#[test]
fn event_driven_allocation_keeps_every_limit() {
    let layout = Layout {
        arrivals: Arrivals::Random,
        ..Layout::plugged(20, 32)
    };
    let mut pair = Pair::new(&layout, 8);
    pair.event_driven = true;
    pair.settle_ms = 15_000;
    pair.set_links(LinkModel::lossy(0.1), LinkModel::lossy(0.1));
    run(&mut pair, 5 * MINUTE_MS);
    for bay in 0..10 {
        pair.unplug(bay);
        pair.run_for(700).unwrap();
    }
    for phase in 1..=3 {
        pair.set_site_limit(phase, 20.0).unwrap();
    }
    run(&mut pair, 5 * MINUTE_MS);
    for bay in 0..10 {
        pair.plug(bay);
        pair.run_for(300).unwrap();
    }
    for phase in 1..=3 {
        pair.set_site_limit(phase, 32.0).unwrap();
    }
    run(&mut pair, 5 * MINUTE_MS);
    assert!(
        pair.snapshot().traffic.event_allocations > 10,
        "{:?}",
        pair.snapshot().traffic
    );
}

#[test]
fn a_runtime_site_limit_above_the_ceiling_lifts_nothing() {
    let mut pair = Pair::new(&Layout::plugged(20, 32), 6);
    run(&mut pair, 5 * MINUTE_MS);
    for phase in 1..=3 {
        // Refused (the fix) or accepted: the configured limit must hold either way.
        let _ = pair.set_site_limit(phase, 64.0);
    }
    run(&mut pair, 10 * MINUTE_MS);
}

#[test]
fn the_check_catches_a_site_that_allots_more_than_the_fuse() {
    // The core is told 3 x 32 A, the check holds it to the 3 x 20 A that is really there.
    let mut pair = Pair::new(&Layout::plugged(20, 32), 7);
    pair.hold_to(&Layout::plugged(20, 20));
    let breach = pair.run_for(10 * MINUTE_MS).unwrap_err();
    assert!(breach.problem.starts_with("site L"), "{breach}");
    assert!(breach.problem.contains("limit 200"), "{breach}");
}

#[test]
fn a_seed_replays_exactly() {
    let run_once = || {
        let mut pair = Pair::new(&two_rows(), 8);
        pair.set_links(LinkModel::lossy(0.2), reordering(true));
        run(&mut pair, 5 * MINUTE_MS);
        (format!("{:?}", pair.truth()), format!("{:?}", pair.stats()))
    };
    assert_eq!(run_once(), run_once());
}

/// Something that happens to a running site.
#[derive(Clone, Debug)]
enum Action {
    Run {
        secs: u64,
    },
    Plug {
        bay: usize,
    },
    Unplug {
        bay: usize,
    },
    /// One phase's site limit, or (`None`) all three.
    SiteLimit {
        phase: Option<u8>,
        amps: i16,
    },
    Links {
        up: LinkModel,
        down: LinkModel,
    },
}

fn link() -> impl Strategy<Value = LinkModel> {
    (0.0..0.4f64, 0u64..600, 0.0..0.5f64, any::<bool>()).prop_map(
        |(loss, spread_ms, reorder, fifo_per_node)| LinkModel {
            loss,
            delay_ms: (10, 10 + spread_ms),
            reorder,
            hold_ms: 700,
            fifo_per_node,
        },
    )
}

fn action(bays: usize, ceiling_a: i16) -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (1u64..=60).prop_map(|secs| Action::Run { secs }),
        2 => (0..bays).prop_map(|bay| Action::Plug { bay }),
        2 => (0..bays).prop_map(|bay| Action::Unplug { bay }),
        2 => (prop::option::of(1u8..=3), 0..=ceiling_a)
            .prop_map(|(phase, amps)| Action::SiteLimit { phase, amps }),
        1 => (link(), link()).prop_map(|(up, down)| Action::Links { up, down }),
    ]
}

/// A small random site: its layout, the seed of its cars and mesh, and what happens to it.
fn case() -> impl Strategy<Value = (Layout, u64, Vec<Action>)> {
    (2usize..=6, 10i16..=40, any::<bool>(), any::<bool>(), 0u8..3).prop_flat_map(
        |(bays, site_limit_a, circuit, rotate_phases, arrivals)| {
            let circuit_limit = 6i16..=site_limit_a;
            (circuit_limit, any::<u64>()).prop_flat_map(move |(circuit_a, seed)| {
                let layout = Layout {
                    circuits: if circuit {
                        vec![CircuitLayout {
                            name: "sub".to_owned(),
                            limit_a: circuit_a,
                            bays: 0..bays / 2,
                        }]
                    } else {
                        Vec::new()
                    },
                    rotate_phases,
                    arrivals: [Arrivals::AllPlugged, Arrivals::None, Arrivals::Random]
                        [usize::from(arrivals)],
                    ..Layout::plugged(bays, site_limit_a)
                };
                let actions = prop::collection::vec(action(bays, site_limit_a), 1..10);
                (Just(layout), Just(seed), actions)
            })
        },
    )
}

proptest! {
    // 256 cases (about 30 s in a debug build); `PROPTEST_CASES` explores further.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    /// No sequence of plugs, unplugs, runtime limits and mesh trouble lets the bays draw, or
    /// be allowed, more than a fuse carries, at any step.
    #[test]
    fn limits_hold_at_every_step((layout, seed, actions) in case()) {
        let mut pair = Pair::new(&layout, seed);
        let mut result = Ok(());
        for action in &actions {
            result = match action {
                Action::Run { secs } => pair.run_for(secs * 1_000),
                Action::Plug { bay } => {
                    pair.plug(*bay);
                    Ok(())
                }
                Action::Unplug { bay } => {
                    pair.unplug(*bay);
                    Ok(())
                }
                Action::SiteLimit { phase, amps } => {
                    for phase in phase.map_or(1..=3, |p| p..=p) {
                        pair.set_site_limit(phase, f64::from(*amps)).unwrap();
                    }
                    Ok(())
                }
                Action::Links { up, down } => {
                    pair.set_links(*up, *down);
                    Ok(())
                }
            };
            if result.is_err() {
                break;
            }
        }
        let result = result.and_then(|()| pair.run_for(30_000));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

#[test]
#[ignore = "measurement: run with --release --nocapture"]
fn throughput() {
    for bays in [2, 5, 20] {
        let started = std::time::Instant::now();
        let mut pair = Pair::new(&Layout::plugged(bays, 32), 1);
        run(&mut pair, 60 * MINUTE_MS);
        let wall = started.elapsed().as_secs_f64();
        println!(
            "pair harness, {bays:2} bays: 60 simulated minutes in {wall:.3} s = {:.0} simulated \
             minutes per second ({} checks)",
            60.0 / wall,
            pair.stats().checks
        );
    }
}
