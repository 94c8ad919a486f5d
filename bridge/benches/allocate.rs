//! One allocation round at 10, 100, 1,000 and 10,000 bays behind a tree of circuits, with
//! mixed rotations, single- and three-phase cars, modes and not enough current for
//! everyone (so admission, rotation and water-filling all have work). Target: under 1 ms
//! at 1,000 bays, growing about linearly.

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ctrl22_bridge::allocate::{
    Allocator, BayDemand, ChargeMode, Circuit, Params, Strategy, Topology,
};
use ctrl22_bridge::bay::BayId;
use ctrl22_node::{Deciamps, Phase, PhaseSet};

const ROTATIONS: [[Phase; 3]; 3] = [
    [Phase::L1, Phase::L2, Phase::L3],
    [Phase::L2, Phase::L3, Phase::L1],
    [Phase::L3, Phase::L1, Phase::L2],
];

/// A site of `bays` bays in rows of 10 (one circuit each) grouped in feeders of 10 rows,
/// with about 11 A per bay at the site and 16 A per bay per row: tight, as in real lots.
fn site(bays: usize) -> (Topology, Vec<BayDemand>) {
    let rows = bays.div_ceil(10);
    let feeders = rows.div_ceil(10);
    let amps = |a: usize| Deciamps(i16::try_from(a * 10).unwrap_or(i16::MAX));
    let mut circuits = Vec::new();
    for f in 0..feeders {
        circuits.push(Circuit {
            id: format!("feeder{f}"),
            parent: None,
            limit: [amps(1200); 3],
        });
    }
    for r in 0..rows {
        circuits.push(Circuit {
            id: format!("row{r}"),
            parent: Some(format!("feeder{}", r / 10)),
            limit: [amps(160); 3],
        });
    }
    let topo = Topology::new([amps((bays * 11).min(3200)); 3], circuits).unwrap();
    let demands = (0..bays)
        .map(|i| {
            let mut bay = BayDemand::new(BayId(format!("bay{i:05}")), Deciamps::from_amps(16));
            bay.circuit = Some(format!("row{}", i / 10));
            bay.rotation = ROTATIONS[i % 3];
            if i % 4 == 0 {
                bay.ev_phases = Some(PhaseSet::L1);
            }
            bay.mode = match i % 10 {
                0 => ChargeMode::Pv,
                1 => ChargeMode::MinPv,
                2 => ChargeMode::Off,
                _ => ChargeMode::Now,
            };
            bay.arrived_at_ms = (i as u64 * 7919) % 100_000;
            bay.priority = i32::try_from(i % 3).unwrap_or(0);
            bay
        })
        .collect();
    (topo, demands)
}

fn allocation(c: &mut Criterion) {
    let mut group = c.benchmark_group("allocate");
    for bays in [10, 100, 1_000, 10_000] {
        let (topo, demands) = site(bays);
        for strategy in [Strategy::Fair, Strategy::Fcfs] {
            let params = Params {
                strategy,
                solar_budget_w: Some(i32::try_from(bays * 500).unwrap_or(i32::MAX)),
                ..Params::default()
            };
            let mut allocator = Allocator::new();
            let mut now = 0;
            group.throughput(Throughput::Elements(bays as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{strategy:?}"), bays),
                &demands,
                |b, demands| {
                    b.iter(|| {
                        now += 10_000;
                        allocator.allocate(now, &topo, demands, &params)
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, allocation);
criterion_main!(benches);
