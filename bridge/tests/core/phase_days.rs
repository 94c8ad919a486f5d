//! Automatic 1-phase <-> 3-phase switching on simulated days: one `pv` bay with a
//! three-phase car behind the closed-loop grid meter. Counted from the simulator's ground
//! truth: changes of the bay's `phases` register (switches), the W8 states the node passes
//! through, W9 (the car refusing a set), and the surplus at each switch.

#![allow(clippy::unwrap_used)]

use ctrl22_bridge::allocate::ChargeMode;
use ctrl22_bridge::site::PowerSettings;
use ctrl22_node::{Ccss, PhaseSet};

use crate::metered::{Grid, Metered};
use crate::pair::layout::Layout;
use crate::pair::Pair;
use crate::solar_days::{clear, passing_clouds, Sky, DAY_MS, HOUSE_W};

/// 6 A on one phase and on three, at 230 V.
const ONE_PHASE_MIN_W: i64 = 1_380;
const THREE_PHASE_MIN_W: i64 = 4_140;

#[derive(Debug, Default)]
struct SwitchStats {
    /// (ms, surplus W from the sky at that moment, phases now told).
    switches: Vec<(u64, i64, PhaseSet)>,
    w8_entries: u32,
    w9_entries: u32,
    /// Steps with the car charging on one phase / three.
    one_phase_steps: u64,
    three_phase_steps: u64,
    energy_wh: f64,
    /// Mean grid import (W) over the steps in which the car charged.
    mean_import_w: f64,
}

fn layout(switching: bool) -> Layout {
    Layout {
        bay_max_a: 16,
        modes: vec![ChargeMode::Pv],
        power: PowerSettings {
            phase_switching: switching,
            ..PowerSettings::default()
        },
        ..Layout::plugged(1, 32)
    }
}

fn run(sky: Sky, seed: u64, switching: bool) -> SwitchStats {
    let layout = layout(switching);
    let cloud = sky.cloud;
    let offset = sky.offset_ms;
    let mut metered = Metered::new(Pair::new(&layout, seed), sky, 2_000);
    let mut stats = SwitchStats::default();
    let first = metered.pair.truth().remove(0);
    let (mut phases, mut state) = (first.phases, first.ccss);
    let mut import = (0i64, 0u64);
    metered
        .run(DAY_MS - offset, |m| {
            let now = m.pair.now_ms();
            let bay = m.pair.truth().remove(0);
            if let Some(car) = bay.car_phases {
                assert_eq!(car, PhaseSet::ALL, "seed {seed}: not a three-phase car");
            }
            if bay.phases != phases && !bay.phases.is_empty() {
                let surplus = m.grid.pv_w(now) - HOUSE_W;
                stats.switches.push((now, surplus, bay.phases));
                phases = bay.phases;
            }
            if bay.ccss != state {
                stats.w8_entries += u32::from(bay.ccss == Ccss::W8);
                stats.w9_entries += u32::from(bay.ccss == Ccss::W9);
                state = bay.ccss;
            }
            match bay.contactors.iter().count() {
                0 => {}
                1 => stats.one_phase_steps += 1,
                _ => stats.three_phase_steps += 1,
            }
            if !bay.contactors.is_empty() {
                import.0 += m.grid_w().max(0);
                import.1 += 1;
            }
            let _ = cloud;
            Ok(())
        })
        .unwrap();
    stats.mean_import_w = if import.1 == 0 {
        0.0
    } else {
        import.0 as f64 / import.1 as f64
    };
    stats.energy_wh = metered.pair.snapshot().bays[0].session_energy_wh;
    stats
}

/// A seed whose car is three-phase and takes a change of phase set.
const TOLERANT_CAR: u64 = 1;

#[test]
fn a_sunny_day_switches_three_times_at_the_right_surplus() {
    let sky = Sky {
        peak_w: 7_000.0,
        cloud: clear,
        offset_ms: 0,
    };
    let stats = run(sky, TOLERANT_CAR, true);
    eprintln!("sunny day with phase switching: {stats:?}");
    assert_eq!(stats.w9_entries, 0, "{stats:?}");
    // Morning: one phase once 1.4 kW are there; three phases past 4.1 kW; afternoon: one
    // phase again under 4.1 kW. Nothing else.
    let sets: Vec<PhaseSet> = stats.switches.iter().map(|s| s.2).collect();
    assert_eq!(
        sets,
        [PhaseSet::L1, PhaseSet::ALL, PhaseSet::L1],
        "{stats:?}"
    );
    for (at, surplus, set) in &stats.switches {
        if *set == PhaseSet::L1 {
            assert!(
                (ONE_PHASE_MIN_W..THREE_PHASE_MIN_W).contains(surplus),
                "to one phase at {at} ms with {surplus} W"
            );
        } else {
            assert!(
                *surplus >= THREE_PHASE_MIN_W,
                "to three at {at} ms with {surplus} W"
            );
        }
    }
    // Every switch of a charging car passes through W8.
    assert!(stats.w8_entries >= 1, "{stats:?}");
    assert!(stats.one_phase_steps > 0 && stats.three_phase_steps > 0);
    assert!(stats.mean_import_w < 150.0, "{stats:?}");

    let without = run(
        Sky {
            peak_w: 7_000.0,
            cloud: clear,
            offset_ms: 0,
        },
        TOLERANT_CAR,
        false,
    );
    eprintln!("the same day without: {without:?}");
    assert!(without.switches.is_empty());
    assert!(
        stats.energy_wh > without.energy_wh,
        "switching charged {} Wh, three phases only {} Wh",
        stats.energy_wh,
        without.energy_wh
    );
}

#[test]
fn passing_clouds_do_not_make_the_phases_flap() {
    let sky = Sky {
        peak_w: 7_000.0,
        cloud: passing_clouds,
        offset_ms: 0,
    };
    let interval = PowerSettings::default().phase_switch_interval_ms;
    let stats = run(sky, TOLERANT_CAR, true);
    eprintln!("cloudy day with phase switching: {stats:?}");
    // Two switches are at least the interval apart.
    for pair in stats.switches.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= interval, "{stats:?}");
    }
    assert!(
        stats.switches.len() as u64 <= DAY_MS / interval / 2,
        "{} switches: {stats:?}",
        stats.switches.len()
    );
}

/// A seed whose three-phase car refuses a phase set other than the one it started on.
const PICKY_CAR: u64 = 14;

#[test]
fn a_car_that_refuses_the_new_set_goes_back_and_is_left_alone() {
    let sky = Sky {
        peak_w: 7_000.0,
        cloud: clear,
        offset_ms: 0,
    };
    let stats = run(sky, PICKY_CAR, true);
    eprintln!("picky car: {stats:?}");
    // It started on one phase in the morning, refused three (W9), went back to one within
    // the firmware's phase check, and was not switched again all day.
    assert_eq!(stats.w9_entries, 1, "{stats:?}");
    let sets: Vec<PhaseSet> = stats.switches.iter().map(|s| s.2).collect();
    assert_eq!(
        sets,
        [PhaseSet::L1, PhaseSet::ALL, PhaseSet::L1],
        "{stats:?}"
    );
    assert!(
        stats.switches[2].0 - stats.switches[1].0 < 60_000,
        "{stats:?}"
    );
    assert!(stats.energy_wh > 5_000.0, "{stats:?}");
}
