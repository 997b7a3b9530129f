//! What each message from Redis costs the gateway: the whole route (parse the message,
//! check it for a second copy, queue the frame on its user's connection), the check for a
//! second copy alone (a hash of the message's bytes against the last 65,536). Run with
//! `cargo bench --bench route`.

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

/// The whole path of one message from Redis to its user's send queue, among 10,000 users.
fn route(c: &mut Criterion) {
    use pollpush::backend::push::route;
    use pollpush::backend::AppState;
    use pollpush::config::{Fanout, PollAuth, PushConfig};
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let _in_runtime = rt.enter();
    // Routing never touches Postgres: a pool that never connects will do.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("a lazy pool");
    let push = PushConfig {
        fanout: Fanout::None,
        ..PushConfig::default()
    };
    let state = AppState::new(pool, PollAuth::Db, push);
    let mut queues: Vec<_> = (1..=10_000).map(|u| state.registry.register(u)).collect();
    let mut recent = RecentMessages::new(RECENT_MESSAGES);
    let mut next = 0u64;
    c.bench_function(
        "route a message from Redis to 1 of 10,000 users (parse, second-copy check, queue)",
        |b| {
            b.iter_batched(
                || {
                    next += 1;
                    message(next)
                },
                |m| {
                    route(&state, black_box(m.as_bytes()), Some(&mut recent));
                    let _ = queues[4241].queue.try_recv();
                },
                BatchSize::SmallInput,
            )
        },
    );
    queues.clear();
}

criterion_group!(benches, route, second_copy);
criterion_main!(benches);
