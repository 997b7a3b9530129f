//! The gateway's registry: looking up a user among 10,000 and queueing a frame on its
//! connection, and one user's N connections. Run with `cargo bench --bench fanout`.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pollpush::backend::push::{Frame, Registry};
use pollpush::backend::Stats;
use pollpush::config::Fanout;
use pollpush::config::PushConfig;

fn dispatch(c: &mut Criterion) {
    // No Redis side: registration answers at once.
    let config = PushConfig {
        fanout: Fanout::None,
        ..PushConfig::default()
    };
    let registry = Registry::new(config, Arc::new(Stats::default()));
    // Keep the receivers alive and drained so queues never fill.
    let mut queues: Vec<_> = (1..=10_000).map(|u| registry.register(u)).collect();
    let frame = Frame {
        id: 1,
        text: Utf8Bytes::from(
        r#"{"id":1,"user_id":4242,"payload":{"event":1,"emit_us":1700000000000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#.to_string(),
        ),
    };
    c.bench_function("registry dispatch to 1 of 10,000 users", |b| {
        b.iter(|| {
            let n = registry.dispatch(black_box(4242), &frame);
            let _ = queues[4241].queue.try_recv();
            n
        })
    });
    c.bench_function("registry dispatch to a user not held (discard)", |b| {
        b.iter(|| registry.dispatch(black_box(99_999), &frame))
    });
    queues.clear();
}

/// One user holding N connections (tabs, devices): the registry queues the frame on each.
fn fan_out(c: &mut Criterion) {
    let config = PushConfig {
        fanout: Fanout::None,
        ..PushConfig::default()
    };
    let registry = Registry::new(config, Arc::new(Stats::default()));
    let frame = Frame {
        id: 1,
        text: Utf8Bytes::from(NOTIFICATION.to_string()),
    };
    let mut group = c.benchmark_group("registry fan-out to one user's N connections");
    for n in [1usize, 10, 100] {
        let user = 7_000 + n as i64;
        let mut queues: Vec<_> = (0..n).map(|_| registry.register(user)).collect();
        group.bench_function(format!("N = {n}"), |b| {
            b.iter(|| {
                let sent = registry.dispatch(black_box(user), &frame);
                for q in queues.iter_mut() {
                    let _ = q.queue.try_recv();
                }
                sent
            })
        });
    }
    group.finish();
}

const NOTIFICATION: &str = r#"{"id":123456,"user_id":4242,"payload":{"event":987654,"emit_us":1700000000000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#;

criterion_group!(benches, dispatch, fan_out);
criterion_main!(benches);
