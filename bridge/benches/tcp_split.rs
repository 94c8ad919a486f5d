//! The TCP uplink's object splitter on a stream of 10,000 heartbeats as the root writes them
//! (bare objects back to back), cut as a network would (1,460-byte segments). At 10,000 bays
//! heartbeating every 10 s this is 10 s of a site's traffic; it must take a tiny part of that.

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ctrl22_bridge::mesh::ObjectSplitter;
use ctrl22_node::mesh::MAX_MESSAGE_LEN;

fn stream(messages: usize) -> Vec<u8> {
    (0..messages)
        .flat_map(|i| {
            format!(
                r#"{{"src":"d8:a0:1d:55:{:02x}:{:02x}","mtype":"heartbeat","rssi":-61,"ccss":30,"amaxcur":160,"cmaxcur":320,"aphases":123,"cur1":158,"cur2":157,"cur3":160}}"#,
                i / 256 % 256,
                i % 256
            )
            .into_bytes()
        })
        .collect()
}

fn split(c: &mut Criterion) {
    let bytes = stream(10_000);
    let mut group = c.benchmark_group("tcp_split");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("10k_heartbeats", |b| {
        b.iter(|| {
            let mut splitter = ObjectSplitter::new(MAX_MESSAGE_LEN);
            let mut frames = Vec::new();
            let mut objects = 0;
            for segment in bytes.chunks(1460) {
                splitter.push(segment, &mut frames);
                objects += frames.len();
                frames.clear();
            }
            assert_eq!(objects, 10_000);
        });
    });
    group.finish();
}

criterion_group!(benches, split);
criterion_main!(benches);
