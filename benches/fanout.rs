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

/// Dispatch while another thread connects and disconnects other users, as a gateway's
/// cores do under a reconnect storm: with one lock for the whole registry every dispatch
/// may wait for a registration; with the registry split by user it waits only for one of
/// its own shard. The churning thread runs for as long as the measurement does.
fn contended(c: &mut Criterion) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let config = PushConfig {
        fanout: Fanout::None,
        ..PushConfig::default()
    };
    let registry = Arc::new(Registry::new(config, Arc::new(Stats::default())));
    let mut queues: Vec<_> = (1..=10_000).map(|u| registry.register(u)).collect();
    let frame = Frame {
        id: 1,
        text: Utf8Bytes::from(NOTIFICATION.to_string()),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let churn = std::thread::spawn({
        let (registry, stop) = (registry.clone(), stop.clone());
        move || {
            let mut user = 20_000;
            while !stop.load(Ordering::Relaxed) {
                let r = registry.register(user);
                registry.unregister(user, r.id);
                user = if user == 29_999 { 20_000 } else { user + 1 };
            }
        }
    });
    let mut user = 0usize;
    c.bench_function(
        "registry dispatch to 1 of 10,000 users while another thread connects and disconnects",
        |b| {
            b.iter(|| {
                user = (user + 7) % 10_000;
                let n = registry.dispatch(black_box(user as i64 + 1), &frame);
                let _ = queues[user].queue.try_recv();
                n
            })
        },
    );
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    queues.clear();
}

criterion_group!(benches, dispatch, fan_out, contended);
criterion_main!(benches);
