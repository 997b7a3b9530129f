//! The schema (sqlx migrations) and every SQL statement the systems under test run. All
//! queries are runtime-checked and use bound parameters; sqlx prepares and caches them per
//! connection, so each poll costs the server a bind and an execute, not a parse.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long [`connect`] keeps trying to open its first connection: a Postgres held to a
/// small CPU budget (`db.cpu_limit`) on a busy machine can take longer than the pool's 2 s
/// to fork and authenticate a backend.
const FIRST_CONNECTION_PATIENCE: Duration = Duration::from_secs(20);

/// A pool of `size` connections, migrations applied.
pub async fn connect(url: &str, size: u32) -> anyhow::Result<PgPool> {
    let options = || {
        PgPoolOptions::new()
            .max_connections(size)
            .min_connections(size.min(4))
            // A request that gets no connection within 2 s answers 503: while the database
            // is down, clients are told quickly instead of waiting with their sockets held.
            .acquire_timeout(Duration::from_secs(2))
            // No ping before each query: it cost a round trip to Postgres per poll
            // (measured: 3 sends and 4 receives per poll with it). A connection that broke
            // fails its query instead, that request answers an error, and the pool drops
            // the connection.
            .test_before_acquire(false)
    };
    let deadline = tokio::time::Instant::now() + FIRST_CONNECTION_PATIENCE;
    let pool = loop {
        match options().connect(url).await {
            Ok(pool) => break pool,
            // Slow or not yet listening: try again. A refusal by Postgres itself (a wrong
            // password, a missing database) is final.
            Err(e @ (sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)))
                if tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!("the first database connection failed ({e}); trying again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// The session lookup of [`user_for_token`] (and of the poll's pipeline).
pub const USER_FOR_TOKEN: &str =
    "SELECT user_id FROM sessions WHERE token_sha256 = $1 AND expires_at > now()";

/// The read of [`notifications_after`] (and of the poll's pipeline).
pub const NOTIFICATIONS_AFTER: &str = "SELECT id, payload::text FROM notifications WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3";

/// The user a bearer token belongs to, if the session exists and has not expired.
pub async fn user_for_token(pool: &PgPool, token: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(USER_FOR_TOKEN)
        .bind(crate::token::hash(token))
        .fetch_optional(pool)
        .await
}

/// The user of a live session and the seconds it has left, for caching it no longer.
pub async fn session(pool: &PgPool, token: &str) -> Result<Option<(i64, f64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, extract(epoch FROM expires_at - now())::float8 FROM sessions \
         WHERE token_sha256 = $1 AND expires_at > now()",
    )
    .bind(crate::token::hash(token))
    .fetch_optional(pool)
    .await
}

/// The user's highest notification id (0 when none): what the poll cache starts from.
pub async fn latest_id(pool: &PgPool, user_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM notifications WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
}

/// Up to `limit` notifications of `user_id` with id greater than `after`, oldest first,
/// as (id, payload JSON text).
pub async fn notifications_after(
    pool: &PgPool,
    user_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(NOTIFICATIONS_AFTER)
        .bind(user_id)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Stores a notification; returns its id.
pub async fn insert_notification(
    pool: &PgPool,
    user_id: i64,
    payload: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO notifications (user_id, payload) VALUES ($1, $2::jsonb) RETURNING id",
    )
    .bind(user_id)
    .bind(payload)
    .fetch_one(pool)
    .await
}

/// The highest notification id so far (0 when empty): where a new client starts reading.
pub async fn max_notification_id(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM notifications")
        .fetch_one(pool)
        .await
}

/// Gives each of users 1..=`users` that has no notification yet `per_user` older ones of
/// about `payload_bytes`, then analyzes the table: an inbox with history, as in production.
/// Without it the planner sees a near-empty table and caches a sequential-scan plan in the
/// servers' pooled connections, which every poll then runs against the growing table.
pub async fn seed_history(
    pool: &PgPool,
    users: u64,
    per_user: u32,
    payload_bytes: usize,
) -> Result<u64, sqlx::Error> {
    let pad = "x".repeat(payload_bytes.saturating_sub(40));
    let inserted = sqlx::query(
        "INSERT INTO notifications (user_id, payload, created_at) \
         SELECT u, jsonb_build_object('history', true, 'pad', $3::text), now() - interval '1 day' \
         FROM generate_series(1, $1::bigint) AS u, generate_series(1, $2::int) AS k \
         WHERE NOT EXISTS (SELECT 1 FROM notifications n WHERE n.user_id = u)",
    )
    .bind(users as i64)
    .bind(per_user as i32)
    .bind(pad)
    .execute(pool)
    .await?
    .rows_affected();
    sqlx::query("ANALYZE notifications").execute(pool).await?;
    Ok(inserted)
}

/// Creates users 1..=n (if missing) and gives each a session token signed by `signer`.
/// Returns the tokens, index i for user i + 1; `sessions` keeps only their hashes.
pub async fn seed_users(
    pool: &PgPool,
    n: u64,
    signer: &crate::token::Signer,
) -> anyhow::Result<Vec<String>> {
    let ids: Vec<i64> = (1..=n as i64).collect();
    let tokens: Vec<String> = ids.iter().map(|&id| signer.token(id)).collect();
    let hashes: Vec<String> = tokens.iter().map(|t| crate::token::hash(t)).collect();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO users (id, name) SELECT id, 'user-' || id FROM UNNEST($1::bigint[]) AS t(id) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO sessions (token_sha256, user_id, expires_at) SELECT t, u, now() + interval '1 day' FROM UNNEST($1::text[], $2::bigint[]) AS x(t, u)",
    )
    .bind(&hashes)
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE users, sessions, notifications")
        .execute(pool)
        .await?;
    Ok(tokens)
}
