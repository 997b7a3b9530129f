//! The swarm's aggregator recording one latency in its histogram (hdrhistogram, 3
//! significant digits, µs up to an hour), at every notification and every poll. Run with
//! `cargo bench --bench record`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn record(c: &mut Criterion) {
    let mut h = pollpush::metrics::latency_histogram();
    let mut v = 1u64;
    c.bench_function("the aggregator records one latency", |b| {
        b.iter(|| {
            v = v.wrapping_mul(6364136223846793005).wrapping_add(1);
            h.saturating_record(black_box(1 + (v >> 44)));
        })
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
