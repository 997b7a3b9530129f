//! Hot paths of push: the gateway looking up a user among 10,000 and queueing a frame, and
//! a client parsing a notification. Run with `cargo bench --bench fanout`.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pollpush::backend::push::{Frame, Registry};
use pollpush::backend::Stats;
use pollpush::config::Fanout;
use pollpush::config::PushConfig;
use pollpush::config::Transport;
use pollpush::scenario::Target;

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

/// The fields a client needs, as a fixed struct: the way to read pollpush's own format
/// only, kept as the yardstick for reading any format through JSON pointers.
#[derive(serde::Deserialize)]
struct Typed {
    #[allow(dead_code)]
    id: i64,
    payload: Stamp,
}

#[derive(serde::Deserialize)]
struct Stamp {
    event: u64,
    #[allow(dead_code)]
    emit_us: u64,
}

fn parse(c: &mut Criterion) {
    let text = r#"{"id":123456,"user_id":4242,"payload":{"event":987654,"emit_us":1700000000000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#;
    let fields = Target::pollpush(Transport::Ws).fields;
    c.bench_function(
        "client reads a notification (JSON pointers, any format)",
        |b| {
            b.iter(|| {
                let v: serde_json::Value = serde_json::from_str(black_box(text)).unwrap();
                fields.read(&v).unwrap().event
            })
        },
    );
    c.bench_function(
        "client parses a notification (typed, pollpush's format)",
        |b| {
            b.iter(|| {
                serde_json::from_str::<Typed>(black_box(text))
                    .unwrap()
                    .payload
                    .event
            })
        },
    );
}

criterion_group!(benches, dispatch, parse);
criterion_main!(benches);
