//! The Home Assistant adapter's work per control cycle at 100, 1,000 and 10,000 bays: one
//! [`Publisher::update`] with a new snapshot in which nothing changed (most cycles of a
//! quiet site), and one in which a tenth of the bays report new power and energy (a busy
//! one). Announcing is not measured here: it happens on connect and on Home Assistant's
//! birth, not per cycle.

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ctrl22_bridge::ha::publisher::{HaSettings, Publisher};
use ctrl22_bridge::ha::sample::charging_bay;
use ctrl22_bridge::site::snapshot::SiteSnapshot;
use ctrl22_ha::DiscoveryMode;

fn site(bays: usize) -> SiteSnapshot {
    SiteSnapshot {
        name: "bench".to_owned(),
        limit_a: [3_200.0; 3],
        ceiling_a: [3_200.0; 3],
        bays: (0..bays)
            .map(|i| charging_bay(&format!("d8a01d{i:06x}")))
            .collect(),
        ..SiteSnapshot::default()
    }
}

fn announced(snapshot: &SiteSnapshot) -> Publisher {
    let settings = HaSettings {
        prefix: "homeassistant".to_owned(),
        mode: DiscoveryMode::Device,
        bridge_version: "0.1.0".to_owned(),
        configuration_url: Some("http://127.0.0.1:8080/".to_owned()),
    };
    let mut publisher = Publisher::new(settings, &snapshot.name).unwrap();
    publisher.announce_all(0, snapshot);
    publisher
}

fn cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("ha_cycle");
    for bays in [100, 1_000, 10_000] {
        let snapshot = site(bays);
        group.throughput(Throughput::Elements(bays as u64));

        let mut publisher = announced(&snapshot);
        let mut now_ms = 0;
        group.bench_with_input(BenchmarkId::new("unchanged", bays), &snapshot, |b, s| {
            b.iter(|| {
                // Less than the refresh interval: a quiet cycle, nothing to send.
                now_ms = (now_ms + 1) % 1_000;
                publisher.update(now_ms, s)
            });
        });

        let mut publisher = announced(&snapshot);
        let mut busy = snapshot.clone();
        let mut round = 0_i64;
        group.bench_function(BenchmarkId::new("tenth_changed", bays), |b| {
            b.iter(|| {
                round += 1;
                for bay in busy.bays.iter_mut().step_by(10) {
                    bay.power_w = 11_000 + round % 40;
                    bay.session_energy_wh += 3.0;
                }
                publisher.update(1, &busy)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, cycle);
criterion_main!(benches);
