//! Readable scenarios, one per behaviour; the random properties live in
//! `tests/core/allocate_props.rs`.

use super::*;
use ctrl22_node::PhaseSet;

const MIN: u64 = 60_000;

fn amps(a: i16) -> Deciamps {
    Deciamps::from_amps(a)
}

fn site(limit: i16) -> Topology {
    Topology::site_only([amps(limit); 3])
}

fn bay(name: &str, cap: i16) -> BayDemand {
    BayDemand::new(BayId(name.into()), amps(cap))
}

fn currents(allocation: &Allocation) -> Vec<i16> {
    allocation
        .bays
        .iter()
        .map(|b| b.setpoint.current.get())
        .collect()
}

fn params(strategy: Strategy) -> Params {
    Params {
        strategy,
        ..Params::default()
    }
}

#[test]
fn fair_shares_equally_and_passes_on_what_a_capped_bay_cannot_use() {
    let mut allocator = Allocator::new();
    let bays = [bay("a", 32), bay("b", 32), bay("c", 32)];
    let out = allocator.allocate(0, &site(32), &bays, &params(Strategy::Fair));
    assert_eq!(currents(&out), [106, 106, 106]);
    assert!(out
        .bays
        .iter()
        .all(|b| matches!(b.reason, Reason::Limited(Bottleneck::Site(_)))));

    let bays = [bay("a", 6), bay("b", 32), bay("c", 32)];
    let out = Allocator::new().allocate(0, &site(32), &bays, &params(Strategy::Fair));
    assert_eq!(currents(&out), [60, 130, 130]);
    assert_eq!(out.bays[0].reason, Reason::AtCap);
    assert_eq!(out.site_totals, [amps(32); 3]);
}

#[test]
fn a_single_phase_car_loads_only_its_rotated_site_phase() {
    // Bay phase L1 sits on site L2 ("231"); the car only draws on bay L1.
    let mut one_phase = bay("a", 16);
    one_phase.rotation = [Phase::L2, Phase::L3, Phase::L1];
    one_phase.ev_phases = Some(PhaseSet::L1);
    let three_phase = bay("b", 16);
    let out = Allocator::new().allocate(
        0,
        &site(16),
        &[one_phase, three_phase],
        &params(Strategy::Fair),
    );
    // Site L2 is shared by both, so both get 8 A; L1 and L3 carry only the three-phase bay.
    assert_eq!(currents(&out), [80, 80]);
    assert_eq!(out.bays[0].setpoint.phases, PhaseSet::L1);
    assert_eq!(out.bays[1].setpoint.phases, PhaseSet::ALL);
    assert_eq!(out.site_totals, [amps(8), amps(16), amps(8)]);
}

#[test]
fn circuits_bind_below_the_site() {
    let topo = Topology::new(
        [amps(63); 3],
        vec![Circuit {
            id: "garage".into(),
            parent: None,
            limit: [amps(20); 3],
        }],
    )
    .unwrap();
    let mut a = bay("a", 32);
    a.circuit = Some("garage".into());
    let mut b = bay("b", 32);
    b.circuit = Some("garage".into());
    let c = bay("c", 32);
    let out = Allocator::new().allocate(0, &topo, &[a, b, c], &params(Strategy::Fair));
    assert_eq!(currents(&out), [100, 100, 320]);
    assert_eq!(
        out.bays[0].reason,
        Reason::Limited(Bottleneck::Circuit {
            index: 0,
            phase: Phase::L1
        })
    );
    assert_eq!(out.circuit_totals, vec![[amps(20); 3]]);
}

#[test]
fn fcfs_and_priority_serve_in_rank() {
    let mut first = bay("a", 16);
    first.arrived_at_ms = 1;
    let mut second = bay("b", 16);
    second.arrived_at_ms = 2;
    let out = Allocator::new().allocate(
        10,
        &site(20),
        &[second.clone(), first.clone()],
        &params(Strategy::Fcfs),
    );
    assert_eq!(currents(&out), [60, 140]);

    second.priority = 5;
    let out =
        Allocator::new().allocate(10, &site(20), &[second, first], &params(Strategy::Priority));
    assert_eq!(currents(&out), [140, 60]);
}

#[test]
fn offline_bays_stay_reserved_even_beyond_the_limit() {
    let mut offline = bay("a", 32);
    offline.reserved = Some(Setpoint {
        current: amps(20),
        phases: PhaseSet::ALL,
    });
    let out = Allocator::new().allocate(
        0,
        &site(32),
        &[offline.clone(), bay("b", 32), bay("c", 32)],
        &params(Strategy::Fair),
    );
    assert_eq!(currents(&out), [200, 60, 60]);
    assert_eq!(out.bays[0].reason, Reason::Reserved);

    offline.reserved = Some(Setpoint {
        current: amps(40),
        phases: PhaseSet::ALL,
    });
    let out = Allocator::new().allocate(
        0,
        &site(32),
        &[offline, bay("b", 32)],
        &params(Strategy::Fair),
    );
    assert_eq!(currents(&out), [400, 0]);
    assert_eq!(out.bays[1].reason, Reason::WaitingForCapacity);
}

#[test]
fn paused_bays_take_turns_after_the_rotation_period() {
    // 12 A fits two bays at 6 A, not three.
    let bays: Vec<BayDemand> = (0..3u64)
        .map(|i| {
            let mut b = bay(&format!("bay{i}"), 16);
            b.arrived_at_ms = i;
            b
        })
        .collect();
    let p = params(Strategy::Fair);
    let mut allocator = Allocator::new();
    let first = allocator.allocate(0, &site(12), &bays, &p);
    assert_eq!(currents(&first), [60, 60, 0]);
    assert_eq!(first.bays[2].reason, Reason::WaitingForCapacity);

    let mut charged_ms = [0u64; 3];
    let step = MIN / 2;
    let mut now = 0;
    while now < 180 * MIN {
        let out = allocator.allocate(now, &site(12), &bays, &p);
        assert!(out.site_totals.iter().all(|t| *t <= amps(12)));
        for (total, b) in charged_ms.iter_mut().zip(&out.bays) {
            if b.setpoint.current > Deciamps::ZERO {
                *total += step;
            }
        }
        now += step;
    }
    // Everyone charges about two thirds of the time.
    for total in charged_ms {
        assert!((100 * MIN..=140 * MIN).contains(&total), "{charged_ms:?}");
    }
}

#[test]
fn rotation_waits_for_the_minimum_off_time() {
    let p = Params {
        min_off_ms: 5 * MIN,
        ..params(Strategy::Fair)
    };
    let mut allocator = Allocator::new();
    let mut b = bay("a", 16);
    assert_eq!(
        currents(&allocator.allocate(0, &site(16), &[b.clone()], &p)),
        [160]
    );
    b.wants_charge = false;
    assert_eq!(
        currents(&allocator.allocate(MIN, &site(16), &[b.clone()], &p)),
        [0]
    );
    b.wants_charge = true;
    let out = allocator.allocate(2 * MIN, &site(16), &[b.clone()], &p);
    assert_eq!(out.bays[0].reason, Reason::MinOffTime);
    assert_eq!(
        currents(&allocator.allocate(6 * MIN, &site(16), &[b], &p)),
        [160]
    );
}

#[test]
fn hysteresis_holds_small_rises_but_never_a_fall() {
    let p = params(Strategy::Fair);
    let mut allocator = Allocator::new();
    let b = [bay("a", 32)];
    assert_eq!(currents(&allocator.allocate(0, &site(20), &b, &p)), [200]);
    let topo = Topology::site_only([Deciamps(203); 3]);
    let out = allocator.allocate(1000, &topo, &b, &p);
    assert_eq!(currents(&out), [200]);
    assert_eq!(out.bays[0].reason, Reason::Hysteresis);
    let topo = Topology::site_only([Deciamps(199); 3]);
    assert_eq!(currents(&allocator.allocate(2000, &topo, &b, &p)), [199]);
    let topo = Topology::site_only([Deciamps(210); 3]);
    assert_eq!(currents(&allocator.allocate(3000, &topo, &b, &p)), [210]);
}

#[test]
fn pv_bays_follow_the_surplus_and_stop_without_it() {
    let mut pv = bay("pv", 16);
    pv.mode = ChargeMode::Pv;
    let mut minpv = bay("minpv", 16);
    minpv.mode = ChargeMode::MinPv;
    let bays = [pv, minpv];
    let mut allocator = Allocator::new();
    let with = |watts| Params {
        solar_budget_w: watts,
        min_on_ms: 0,
        min_off_ms: 0,
        ..params(Strategy::Fair)
    };
    // 8280 W is 6 A on three phases at 230 V for each of the two bays: minpv takes its 6 A
    // first, the pv bay would start at exactly 6 A, below the start margin, so minpv uses
    // the whole surplus.
    let out = allocator.allocate(0, &site(32), &bays, &with(Some(8280)));
    assert_eq!(currents(&out), [0, 120]);
    assert_eq!(out.bays[0].reason, Reason::NoSurplus);
    // 10 kW: both share 10000 / (2 * 690) = 7.2 A.
    let out = allocator.allocate(MIN, &site(32), &bays, &with(Some(10_000)));
    assert_eq!(currents(&out), [72, 72]);
    assert_eq!(out.bays[0].reason, Reason::Limited(Bottleneck::Solar));
    // Source down: pv stops, minpv keeps its minimum.
    let out = allocator.allocate(2 * MIN, &site(32), &bays, &with(None));
    assert_eq!(currents(&out), [0, 60]);
    assert_eq!(out.fail_safe_currents(), [Deciamps::ZERO, amps(6)]);
}

#[test]
fn schedule_meets_reachable_goals_and_says_when_it_cannot() {
    let hour = 60 * MIN;
    // 6.9 kWh in one hour on three phases: 10 A; at its 12 A it takes 50 minutes, so its
    // latest start (with the 15 minute margin) has come.
    let mut commuter = bay("commuter", 12);
    commuter.mode = ChargeMode::Schedule;
    commuter.departure_ms = Some(hour);
    commuter.energy_needed_wh = Some(6_900);
    let other = bay("other", 16);
    let out = Allocator::new().allocate(
        0,
        &site(16),
        &[commuter.clone(), other.clone()],
        &params(Strategy::Schedule),
    );
    assert_eq!(currents(&out), [100, 60]);
    assert_eq!(
        out.bays[0].deadline,
        Some(DeadlineOutlook {
            needed: amps(10),
            reachable: true
        })
    );
    // Fair sharing alone would miss it, and says so.
    let out = Allocator::new().allocate(
        0,
        &site(16),
        &[commuter.clone(), other],
        &params(Strategy::Fair),
    );
    assert_eq!(currents(&out), [80, 80]);
    assert_eq!(out.bays[0].deadline.map(|d| d.reachable), Some(false));
    // 30 kWh in an hour needs 43.5 A: more than the bay can take.
    commuter.energy_needed_wh = Some(30_000);
    commuter.max_current = amps(16);
    let out = Allocator::new().allocate(0, &site(63), &[commuter], &params(Strategy::Schedule));
    assert_eq!(currents(&out), [160]);
    assert_eq!(out.bays[0].deadline.map(|d| d.reachable), Some(false));
}

#[test]
fn schedule_takes_surplus_first_and_the_grid_from_its_latest_start() {
    let hour = 60 * MIN;
    // 6.9 kWh by a departure in 3 hours; at 16 A on three phases it takes 37.5 minutes.
    let mut commuter = bay("commuter", 16);
    commuter.mode = ChargeMode::Schedule;
    commuter.departure_ms = Some(3 * hour);
    commuter.energy_needed_wh = Some(6_900);
    let p = Params {
        pv_start_delay_ms: 0,
        ..params(Strategy::Schedule)
    };
    let mut allocator = Allocator::new();
    // No surplus source: it waits.
    let out = allocator.allocate(0, &site(32), std::slice::from_ref(&commuter), &p);
    assert_eq!(currents(&out), [0]);
    assert_eq!(out.bays[0].reason, Reason::NoSurplus);
    // 5 kW of surplus: it charges from it, 7.2 A on three phases.
    let sunny = Params {
        solar_budget_w: Some(5_000),
        ..p
    };
    let out = allocator.allocate(MIN, &site(32), std::slice::from_ref(&commuter), &sunny);
    assert_eq!(currents(&out), [72]);
    // The sun goes, the energy still to come stays: from 3 h - 37.5 min - 15 min on, grid.
    let latest = 3 * hour - 52 * MIN - 30_000;
    let mut allocator = Allocator::new();
    let out = allocator.allocate(latest - MIN, &site(32), std::slice::from_ref(&commuter), &p);
    assert_eq!(currents(&out), [0]);
    let out = allocator.allocate(latest, &site(32), std::slice::from_ref(&commuter), &p);
    assert_eq!(currents(&out), [160]);
    // Its goal met, it only takes surplus again.
    commuter.energy_needed_wh = Some(0);
    let out = allocator.allocate(latest + hour, &site(32), &[commuter], &p);
    assert_eq!(out.bays[0].reason, Reason::NoSurplus);
}

#[test]
fn minpv_takes_the_surplus_part_by_the_pv_delays() {
    let mut bay = bay("m", 16);
    bay.mode = ChargeMode::MinPv;
    let p = |budget| Params {
        solar_budget_w: Some(budget),
        pv_start_delay_ms: MIN,
        pv_stop_delay_ms: 3 * MIN,
        ..params(Strategy::Fair)
    };
    let mut allocator = Allocator::new();
    let at = |allocator: &mut Allocator, t: u64, budget: i32| {
        currents(&allocator.allocate(t, &site(32), std::slice::from_ref(&bay), &p(budget)))[0]
    };
    // 6 A always; 6.9 kW of sun is 10 A, but only after the start delay.
    assert_eq!(at(&mut allocator, 0, 6_900), 60);
    assert_eq!(at(&mut allocator, 30_000, 6_900), 60);
    assert_eq!(at(&mut allocator, MIN, 6_900), 100);
    // A cloud: back to 6 A at once (the budget says so); the sun back within the stop
    // delay: 10 A at once, no new start delay.
    assert_eq!(at(&mut allocator, 2 * MIN, 0), 60);
    assert_eq!(at(&mut allocator, 4 * MIN, 6_900), 100);
    // Gone longer than the stop delay: the start delay applies again.
    assert_eq!(at(&mut allocator, 5 * MIN, 0), 60);
    assert_eq!(at(&mut allocator, 9 * MIN, 0), 60);
    assert_eq!(at(&mut allocator, 9 * MIN + 1, 6_900), 60);
    assert_eq!(at(&mut allocator, 10 * MIN + 1, 6_900), 100);
}

#[test]
fn bays_that_cannot_charge_say_why() {
    let mut off = bay("off", 16);
    off.mode = ChargeMode::Off;
    let mut idle = bay("idle", 16);
    idle.wants_charge = false;
    let small = bay("small", 5);
    let mut lost = bay("lost", 16);
    lost.circuit = Some("nowhere".into());
    let mut mismatch = bay("mismatch", 16);
    mismatch.wired_phases = PhaseSet::L1;
    mismatch.ev_phases = Some(PhaseSet::NONE.with(Phase::L2));
    let out = Allocator::new().allocate(
        0,
        &site(32),
        &[off, idle, small, lost, mismatch],
        &params(Strategy::Fair),
    );
    let reasons: Vec<Reason> = out.bays.iter().map(|b| b.reason).collect();
    assert_eq!(
        reasons,
        [
            Reason::ModeOff,
            Reason::Idle,
            Reason::CapBelowMinimum,
            Reason::UnknownCircuit,
            Reason::NoUsablePhases
        ]
    );
    assert!(out.bays.iter().all(|b| b.setpoint == Setpoint::PAUSED));
}

#[test]
fn a_bay_that_just_started_keeps_charging_for_the_minimum_on_time() {
    let p = params(Strategy::Priority);
    let mut allocator = Allocator::new();
    let low = bay("low", 16);
    assert_eq!(
        currents(&allocator.allocate(0, &site(6), std::slice::from_ref(&low), &p)),
        [60]
    );
    // A higher-priority car arrives; only one fits at 6 A.
    let mut high = bay("high", 16);
    high.priority = 5;
    let bays = [low, high];
    let out = allocator.allocate(MIN, &site(6), &bays, &p);
    assert_eq!(currents(&out), [60, 0]);
    assert_eq!(out.bays[1].reason, Reason::WaitingForCapacity);
    // Once the minimum on time is over, priority wins.
    let out = allocator.allocate(2 * MIN, &site(6), &bays, &p);
    assert_eq!(currents(&out), [0, 60]);
    // A limit drop is never held back by the minimum on time.
    let out = allocator.allocate(2 * MIN + 1000, &site(5), &bays, &p);
    assert_eq!(currents(&out), [0, 0]);
}

#[test]
fn a_pv_bay_rides_out_a_cloud_for_the_stop_delay() {
    let mut pv = bay("pv", 16);
    pv.mode = ChargeMode::Pv;
    let bays = [pv];
    let with = |watts| Params {
        solar_budget_w: Some(watts),
        min_on_ms: 0,
        ..params(Strategy::Fair)
    };
    let mut allocator = Allocator::new();
    // 10 A worth of surplus on three phases.
    assert_eq!(
        currents(&allocator.allocate(0, &site(32), &bays, &with(6_900))),
        [100]
    );
    // A cloud: it keeps 6 A for the stop delay, then pauses.
    for minute in 1..=3 {
        let out = allocator.allocate(minute * MIN, &site(32), &bays, &with(500));
        assert_eq!(currents(&out), [60], "minute {minute}");
    }
    let out = allocator.allocate(4 * MIN + 1, &site(32), &bays, &with(500));
    assert_eq!(currents(&out), [0]);
    assert_eq!(out.bays[0].reason, Reason::NoSurplus);
}
