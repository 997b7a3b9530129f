//! Hot paths of push: the gateway looking up a user among 10,000 and queueing a frame, and
//! a client parsing a notification. Run with `cargo bench --bench fanout`.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pollpush::backend::push::{Frame, Registry};
use pollpush::backend::{PushConfig, Stats};
use pollpush::scenario::Fanout;
use pollpush::swarm::Notification;

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

fn parse(c: &mut Criterion) {
    let text = r#"{"id":123456,"user_id":4242,"payload":{"event":987654,"emit_us":1700000000000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#;
    c.bench_function("client parses a notification", |b| {
        b.iter(|| {
            serde_json::from_str::<Notification>(black_box(text))
                .unwrap()
                .payload
                .event
        })
    });
}

criterion_group!(benches, dispatch, parse);
criterion_main!(benches);
