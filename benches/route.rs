//! What each message from Redis and each delivery cost besides the fan-out itself: the
//! gateway's check for a second copy (a hash of the message's bytes against the last
//! 65,536), and the aggregator recording one latency. Run with `cargo bench --bench route`.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use pollpush::backend::push::{RecentMessages, RECENT_MESSAGES};

fn message(id: u64) -> String {
    format!(
        r#"{{"id":{id},"user_id":4242,"payload":{{"event":{id},"emit_us":1700000000000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}}}"#
    )
}

fn second_copy(c: &mut Criterion) {
    // A full memory, as after the first 65,536 messages: every new one also forgets one.
    let mut recent = RecentMessages::new(RECENT_MESSAGES);
    for id in 0..RECENT_MESSAGES as u64 {
        recent.first_time(message(id).as_bytes());
    }
    let mut next = 1_000_000u64;
    c.bench_function(
        "a new message from Redis checked for a second copy (65,536 held)",
        |b| {
            b.iter_batched(
                || {
                    next += 1;
                    message(next)
                },
                |m| recent.first_time(black_box(m.as_bytes())),
                BatchSize::SmallInput,
            )
        },
    );
    let held = message(RECENT_MESSAGES as u64 - 1);
    c.bench_function("a second copy found (a retried publish)", |b| {
        b.iter(|| recent.first_time(black_box(held.as_bytes())))
    });
}

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

criterion_group!(benches, second_copy, record);
criterion_main!(benches);
