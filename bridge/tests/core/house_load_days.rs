//! House-load scenarios on simulated time: an apartment block whose flats share the fuse
//! with the cars, a grid meter that closes the loop, a meter that dies, a house-load jump,
//! and a grid operator's dimming order.

#![allow(clippy::unwrap_used)]

use ctrl22_bridge::handle::CONTROL_INTERVAL;
use ctrl22_bridge::site::snapshot::SiteSnapshot;
use ctrl22_bridge::site::{ExternalLimit, Input, LimitScope, PowerSettings, SourceId};
use ctrl22_node::Deciamps;

use crate::metered::{Grid, Metered, METER};
use crate::pair::layout::Layout;
use crate::pair::Pair;

const FUSE_A: i16 = 35;
const RESERVE_A: i16 = 25;

fn cycle_ms() -> u64 {
    u64::try_from(CONTROL_INTERVAL.as_millis()).unwrap_or(1_000)
}

/// The flats: 5..30 A per phase, L1 the heaviest, swinging over minutes as cookers,
/// heat pumps and washing machines come and go.
struct Flats;

impl Grid for Flats {
    fn house_da(&self, t_ms: u64) -> [i32; 3] {
        let t = t_ms as f64 / 1000.0;
        let swing = |mid: f64, amp: f64, period_s: f64, shift: f64| {
            let a = mid + amp * (std::f64::consts::TAU * t / period_s + shift).sin();
            (a * 10.0).round() as i32
        };
        [
            swing(17.5, 12.5, 240.0, 0.0),
            swing(12.0, 7.0, 300.0, 1.0),
            swing(10.0, 5.0, 420.0, 2.0),
        ]
    }
}

/// A constant house load that can jump.
struct Steady {
    house_da: [i32; 3],
    jump: Option<(u64, [i32; 3])>,
}

impl Grid for Steady {
    fn house_da(&self, t_ms: u64) -> [i32; 3] {
        match self.jump {
            Some((at, after)) if t_ms >= at => after,
            _ => self.house_da,
        }
    }
}

fn block(bays: usize) -> Layout {
    Layout {
        bay_max_a: 16,
        power: PowerSettings {
            house_reserve: Some([Deciamps::from_amps(RESERVE_A); 3]),
            // The flats change by up to 0.33 A/s: a reading, a cycle and the cars' answer
            // of that, and the cars' own 0.2 A of noise each.
            house_margin: Deciamps(25),
            ..PowerSettings::default()
        },
        ..Layout::plugged(bays, FUSE_A)
    }
}

/// What the allocation gives the bays per site phase (0.1 A); every test bay is wired
/// straight (no rotation).
fn allocated_da(snapshot: &SiteSnapshot) -> [i32; 3] {
    let mut sum = [0i32; 3];
    for bay in &snapshot.bays {
        let current = (bay.allocated_a * 10.0).round() as i32;
        let digits = bay.allocated_phases.to_string();
        for (p, digit) in ['1', '2', '3'].iter().enumerate() {
            if digits.contains(*digit) {
                sum[p] += current;
            }
        }
    }
    sum
}

#[test]
fn an_apartment_block_never_loads_the_fuse_beyond_its_rating() {
    let mut metered = Metered::new(Pair::new(&block(20), 11), Flats, 1_000);
    let fuse = i32::from(FUSE_A) * 10;
    metered
        .run(20 * 60_000, |m| {
            let grid = m.grid_da();
            for (p, g) in grid.iter().enumerate() {
                if *g > fuse {
                    return Err(format!(
                        "L{} at {:.1} s: grid {} dA above the {fuse} dA fuse (house {:?}, cars {:?})",
                        p + 1,
                        m.pair.now_ms() as f64 / 1000.0,
                        g,
                        m.grid.house_da(m.pair.now_ms()),
                        m.pair.cars_draw()
                    ));
                }
            }
            Ok(())
        })
        .unwrap();
    // The run must have charged cars in the room the flats left, and been bound by them.
    let snapshot = metered.pair.snapshot();
    let energy: f64 = snapshot.bays.iter().map(|b| b.session_energy_wh).sum();
    eprintln!(
        "apartment block: peak grid {:?} dA, cars charged {energy:.0} Wh",
        metered.peak_grid_da
    );
    assert!(
        energy > 500.0,
        "the cars charged only {energy} Wh in 20 minutes"
    );
    assert!(
        snapshot.power.house_load_a.is_some() && !snapshot.power.house_fallback,
        "{:?}",
        snapshot.power
    );
    assert!(
        metered.peak_grid_da.iter().any(|p| *p > fuse - 40),
        "the fuse was never near its rating ({:?}): the scenario tests nothing",
        metered.peak_grid_da
    );
}

#[test]
fn a_house_load_jump_is_answered_within_one_reading_and_one_cycle() {
    let interval = 2_000;
    let grid = Steady {
        house_da: [50; 3],
        jump: None,
    };
    let mut metered = Metered::new(Pair::new(&block(4), 12), grid, interval);
    metered.run(90_000, |_| Ok(())).unwrap();
    let before = allocated_da(&metered.pair.snapshot());
    let limit_l1 = i32::from(FUSE_A) * 10 - 250 - 25;
    assert!(
        before[0] > limit_l1,
        "the jump must call for a lowering: {before:?}"
    );
    // L1's house load jumps from 5 to 25 A.
    let at = metered.pair.now_ms() + 50;
    metered.grid.jump = Some((at, [250, 50, 50]));
    let answer_by = at + interval + cycle_ms() + 100;
    metered
        .run(answer_by - metered.pair.now_ms(), |_| Ok(()))
        .unwrap();
    let after = allocated_da(&metered.pair.snapshot());
    assert!(
        // The cars' own meters are 0.2 A noisy each.
        after[0] <= limit_l1 + 5,
        "{} ms after the jump L1 still gets {} dA (limit {limit_l1} dA)",
        answer_by - at,
        after[0]
    );
    // The cars follow their lowered setpoints within a few seconds.
    metered.run(5_000, |_| Ok(())).unwrap();
    assert!(metered.grid_da()[0] <= i32::from(FUSE_A) * 10);
}

#[test]
fn a_dead_meter_drops_the_cars_to_the_reserve_within_one_cycle() {
    let grid = Steady {
        house_da: [50; 3],
        jump: None,
    };
    let mut metered = Metered::new(Pair::new(&block(4), 13), grid, 1_000);
    metered.run(90_000, |_| Ok(())).unwrap();
    let fallback = i32::from(FUSE_A - RESERVE_A) * 10;
    assert!(allocated_da(&metered.pair.snapshot())[0] > fallback);
    metered.alive = false;
    metered.pair.input(Input::PowerLost {
        source: METER,
        error: "connection refused".to_owned(),
    });
    metered.run(cycle_ms() + 100, |_| Ok(())).unwrap();
    let snapshot = metered.pair.snapshot();
    let after = allocated_da(&snapshot);
    assert!(
        after.iter().all(|a| *a <= fallback),
        "{after:?} above {fallback}"
    );
    assert!(snapshot.power.house_fallback);
    assert!(snapshot
        .power
        .sources
        .iter()
        .any(|s| !s.healthy && s.errors == 1));
    // A meter that merely goes silent does the same once it is stale.
    let mut silent = Metered::new(
        Pair::new(&block(4), 14),
        Steady {
            house_da: [50; 3],
            jump: None,
        },
        1_000,
    );
    silent.run(90_000, |_| Ok(())).unwrap();
    silent.alive = false;
    let timeout = PowerSettings::default().reading_timeout_ms;
    silent.run(timeout + cycle_ms() + 100, |_| Ok(())).unwrap();
    let after = allocated_da(&silent.pair.snapshot());
    assert!(
        after.iter().all(|a| *a <= fallback),
        "{after:?} above {fallback}"
    );
}

#[test]
fn an_external_limit_of_4_2_kw_is_applied_and_lifted() {
    let layout = Layout {
        bay_max_a: 16,
        ..Layout::plugged(4, FUSE_A)
    };
    let mut pair = Pair::new(&layout, 15);
    pair.run_for(90_000).unwrap();
    let power = |pair: &Pair| -> i64 { pair.cars_draw().iter().map(|d| i64::from(*d) * 23).sum() };
    assert!(power(&pair) > 8_000, "{} W before dimming", power(&pair));
    pair.input(Input::ExternalLimit {
        source: SourceId(3),
        scope: LimitScope::Site,
        limit: Some(ExternalLimit::Watts(4_200)),
    });
    pair.run_for(cycle_ms() + 100).unwrap();
    let allocated: i32 = allocated_da(&pair.snapshot()).iter().sum();
    assert!(
        allocated * 23 <= 4_200,
        "{} W allocated while dimmed",
        allocated * 23
    );
    pair.run_for(5_000).unwrap();
    assert!(
        power(&pair) <= 4_200 + 3 * 23 * 2,
        "{} W drawn while dimmed",
        power(&pair)
    );
    assert_eq!(
        pair.snapshot().power.external.first().and_then(|e| e.watts),
        Some(4_200)
    );
    pair.input(Input::ExternalLimit {
        source: SourceId(3),
        scope: LimitScope::Site,
        limit: None,
    });
    pair.run_for(60_000).unwrap();
    assert!(power(&pair) > 8_000, "{} W after lifting", power(&pair));
    assert!(pair.snapshot().power.external.is_empty());
}
