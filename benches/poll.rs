//! The poll handler's whole path against a real Postgres, beside the one query it runs:
//! what the API adds to the SQL (routing, the token check, JSON) is the difference of the
//! two, measured in one process. The handler reads over the pipelining connection, as
//! `serve` does; the query alone is measured both ways, over it and through the sqlx pool
//! (whose every release costs a second round trip). Starts an ephemeral Postgres (and
//! Redis) from the local binaries, as `run` does; without them it says so and measures
//! nothing.
//! Run with `cargo bench --bench poll`.

use axum::body::Body;
use axum::http::Request;
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;

use pollpush::backend::pipeline::Pipeline;
use pollpush::backend::{app, db, AppState};
use pollpush::config::{PollAuth, PushConfig};
use pollpush::token::Signer;
use tower::ServiceExt;

fn poll(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let services = match rt.block_on(pollpush::services::Services::start(None, None)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "poll bench: no Postgres to measure against ({e:#}); install the PostgreSQL server and Redis (apt-get install postgresql redis-server)"
            );
            return;
        }
    };
    let signer = Signer::random();
    let (pool, tokens) = rt.block_on(async {
        let pool = db::connect(&services.database_url, 4).await.expect("pool");
        let tokens = db::seed_users(&pool, 1000, &signer).await.expect("users");
        (pool, tokens)
    });
    let pipeline = Arc::new(Pipeline::new(&services.database_url, 1).expect("the URL"));
    let router = |auth: PollAuth| {
        let mut state = AppState::new(pool.clone(), auth, PushConfig::default());
        state.pipeline = Some(pipeline.clone());
        if auth == PollAuth::None {
            state.signer = Some(signer.clone());
        }
        app(state, true, false, false)
    };
    let request = |token: &str| {
        Request::get("/notifications?after=0")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("a request")
    };
    let token = tokens[41].clone();
    let mut group = c.benchmark_group("an empty poll");
    group.bench_function("the SQL alone, over the pipelining connection", |b| {
        b.iter(|| {
            rt.block_on(pipeline.notifications_after(42, 0, pollpush::backend::POLL_PAGE))
                .unwrap()
        })
    });
    group.bench_function("the SQL alone, through the sqlx pool", |b| {
        b.iter(|| {
            rt.block_on(db::notifications_after(
                &pool,
                42,
                0,
                pollpush::backend::POLL_PAGE,
            ))
            .unwrap()
        })
    });
    for (name, auth) in [
        (
            "the handler, token signature checked (--poll-auth none)",
            PollAuth::None,
        ),
        (
            "the handler, session looked up in Postgres (--poll-auth db)",
            PollAuth::Db,
        ),
    ] {
        let router = router(auth);
        group.bench_function(name, |b| {
            b.iter(|| {
                let resp = rt
                    .block_on(router.clone().oneshot(request(&token)))
                    .unwrap();
                assert!(resp.status().is_success());
                resp
            })
        });
    }
    group.finish();
    drop(pool);
    drop(services);
}

criterion_group!(benches, poll);
criterion_main!(benches);
