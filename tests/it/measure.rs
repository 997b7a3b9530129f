//! The sampler's sources against real Postgres and Redis: what they count is what the
//! systems did, and never our own readings.

use std::time::Duration;

use pollpush::backend::db;
use pollpush::metrics::db::DbCounter;
use pollpush::metrics::redis_info::RedisCounter;
use pollpush::services::Services;

#[tokio::test]
async fn readings_count_the_work_done_and_never_themselves() {
    let services = Services::start(None, None).await.expect("services start");
    let pool = db::connect(&services.database_url, 2).await.expect("pool");
    db::seed_users(&pool, 10, &pollpush::token::Signer::random())
        .await
        .expect("seed");
    // Autovacuum's visits are real reads of this database by someone other than the systems
    // under test or us; a run keeps it on, this test turns it off so that counts are exact.
    sqlx::query("ALTER SYSTEM SET autovacuum = off")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&pool)
        .await
        .unwrap();
    let mut counter = DbCounter::new(pool.clone()).await;
    let mut redis = RedisCounter::connect(&services.redis_url).await.unwrap();
    // The publisher connects now: a connection's handshake is traffic too.
    let client = redis::Client::open(services.redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // Postgres publishes a backend's counters within a second of it going idle.
    let settle = || tokio::time::sleep(Duration::from_millis(2000));

    // Warm up: each pooled connection prepares our statements once (its catalog lookups
    // are real reads, made once per connection, before any window).
    for _ in 0..6 {
        counter.read().await.unwrap();
    }
    // Then wait until the setup's own counters have been published: two readings a settle
    // apart that agree.
    let mut quiet = false;
    for _ in 0..15 {
        let a = counter.read().await.unwrap().activity.unwrap();
        settle().await;
        let b = counter.read().await.unwrap().activity.unwrap();
        if b.since(&a) == Default::default() {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "the database never went quiet");
    let db0 = counter.read().await.unwrap();
    let r0 = redis.read().await.unwrap();
    // A clone shares the tally, as the sampler's does.
    let mut sampler = counter.clone();
    let mut sampler_redis = redis.clone();
    for _ in 0..5 {
        sampler.read().await.unwrap();
        sampler_redis.read().await.unwrap();
    }
    settle().await;
    let db1 = counter.read().await.unwrap();
    let r1 = redis.read().await.unwrap();
    let (a0, a1) = (db0.activity.unwrap(), db1.activity.unwrap());
    assert_eq!(db1.total, db0.total, "our statements are not counted");
    assert_eq!(
        a1.since(&a0),
        Default::default(),
        "our readings add no commits, tuples or blocks"
    );
    assert_eq!(
        (
            r1.commands - r0.commands,
            r1.net_in_bytes - r0.net_in_bytes,
            r1.net_out_bytes - r0.net_out_bytes
        ),
        (0, 0, 0),
        "our INFO commands are not counted"
    );

    // Now some work: 40 lookups by primary key, and 7 publishes.
    for id in 1..=40i64 {
        sqlx::query("SELECT name FROM users WHERE id = $1")
            .bind(id % 10 + 1)
            .fetch_optional(&pool)
            .await
            .unwrap();
    }
    for _ in 0..7 {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("chan")
            .arg("hello")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    settle().await;
    let r2 = redis.read().await.unwrap();
    // The statement count is exact at once. The activity counters are not: Postgres
    // publishes a backend's counters asynchronously (an idle backend may hold them for
    // 10 s), so over a short interval they read low (36 of 40 lookups' tuples seen once).
    // Wait, up to 15 s, until they show the work; our own readings add nothing (above).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (db2, a2) = loop {
        let db2 = counter.read().await.unwrap();
        let a2 = db2.activity.unwrap().since(&a1);
        let shown = a2.commits > 0 && a2.tuples_returned + a2.tuples_fetched >= 40;
        if shown || tokio::time::Instant::now() > deadline {
            break (db2, a2);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(db2.total - db1.total, 40, "each lookup is one statement");
    assert!(a2.commits > 0, "the commit counter moves: {a2:?}");
    // A ten-row table is read by sequential scan or by index: either way, each lookup
    // reads at least its row.
    assert!(
        a2.tuples_returned + a2.tuples_fetched >= 40,
        "tuples counted: {a2:?}"
    );
    assert!(a2.blocks_hit + a2.blocks_read > 0, "{a2:?}");
    let publish = "*3\r\n$7\r\nPUBLISH\r\n$4\r\nchan\r\n$5\r\nhello\r\n".len() as u64;
    assert_eq!(r2.commands - r1.commands, 7);
    assert_eq!(r2.net_in_bytes - r1.net_in_bytes, 7 * publish);
    // Each PUBLISH is answered `:0\r\n` (no subscriber).
    assert_eq!(r2.net_out_bytes - r1.net_out_bytes, 7 * 4);

    // A statement Postgres runs inside another is not a query a client sent: with
    // `track = all`, each INSERT's foreign-key check on users is tracked as a nested
    // statement, and must not be counted.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET pg_stat_statements.track = 'all'")
        .execute(&mut *conn)
        .await
        .unwrap();
    for user in 1..=9i64 {
        sqlx::query("INSERT INTO notifications (user_id, payload) VALUES ($1, '{}'::jsonb)")
            .bind(user)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    drop(conn);
    settle().await;
    let db3 = counter.read().await.unwrap();
    assert_eq!(
        db3.total - db2.total,
        9,
        "nested statements are not queries: {:?}",
        db3.statements
    );
    pool.close().await;
}
