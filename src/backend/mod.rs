//! The systems under test: the polling REST API ([`poll`]), the ingest API ([`ingest`]) and
//! the push gateway ([`push`]: WebSocket and SSE, fed by Redis pub/sub), sharing one
//! [`AppState`]; [`serve`] runs them.

pub(crate) mod cache;
pub mod cluster;
pub mod db;
pub(crate) mod ingest;
pub(crate) mod link;
pub(crate) mod longpoll;
pub mod pipeline;
pub(crate) mod poll;
pub(crate) mod prometheus;
pub(crate) mod publisher;
pub mod push;
pub mod serve;

/// The most notifications one poll answers with.
pub use poll::PAGE as POLL_PAGE;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sqlx::PgPool;

use crate::config::PollAuth;
use crate::config::PushConfig;
use crate::token;
use crate::wire::StatsSnapshot;

/// The Redis channel of `fanout = broadcast`: the ingest API publishes every notification
/// to it and every gateway instance subscribes to it.
pub const CHANNEL: &str = "notifications";

/// The Redis channel of one user under `fanout = per-user`.
pub fn user_channel(user: i64) -> String {
    format!("user:{user}")
}

/// Every user's channel, for PSUBSCRIBE.
pub fn user_channel_pattern() -> &'static str {
    "user:*"
}

/// Counters of one server process, served as JSON at `GET /stats`. These are the backend's
/// own view; the database's own count is read from Postgres by the run.
#[derive(Debug, Default)]
pub struct Stats {
    pub poll_requests: AtomicU64,
    pub poll_empty: AtomicU64,
    pub poll_errors: AtomicU64,
    pub unauthorized: AtomicU64,
    /// SQL statements this process sent to Postgres.
    pub db_queries: AtomicU64,
    pub ingested: AtomicU64,
    /// Publishes that failed at first (then queued for Redis, or dropped).
    pub publish_errors: AtomicU64,
    /// Failed publishes sent later, once Redis answered.
    pub republished: AtomicU64,
    /// Failed publishes dropped because the queue was full.
    pub publish_dropped: AtomicU64,
    /// Push connections open (WebSocket and SSE).
    pub connections: AtomicI64,
    pub ws_accepted: AtomicU64,
    pub sse_accepted: AtomicU64,
    /// Messages received from Redis.
    pub redis_received: AtomicU64,
    /// Second copies of a notification from Redis (a retried publish that Redis had run
    /// after all), dropped.
    pub redis_duplicates: AtomicU64,
    /// Messages this instance routed to its sockets: from Redis, or (fanout none) from its
    /// own ingest.
    pub routed: AtomicU64,
    /// Frames queued to a socket of the target user.
    pub delivered: AtomicU64,
    /// Routed messages for users with no socket on this instance.
    pub discarded: AtomicU64,
    /// Connections closed because their send queue was full (slow consumers).
    pub slow_disconnects: AtomicU64,
    /// Frames dropped for a full queue under `slow_policy = drop`.
    pub dropped_frames: AtomicU64,
    /// Notifications sent from Postgres to (re)connecting clients that gave a last id.
    pub catch_up_frames: AtomicU64,
    /// SUBSCRIBE and UNSUBSCRIBE commands sent to Redis.
    pub subscribe_commands: AtomicU64,
    /// Times the Redis subscription was lost (every socket is then closed, so that clients
    /// reconnect and catch up).
    pub redis_resets: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            poll_requests: g(&self.poll_requests),
            poll_empty: g(&self.poll_empty),
            poll_errors: g(&self.poll_errors),
            unauthorized: g(&self.unauthorized),
            db_queries: g(&self.db_queries),
            ingested: g(&self.ingested),
            publish_errors: g(&self.publish_errors),
            republished: g(&self.republished),
            publish_dropped: g(&self.publish_dropped),
            connections: self.connections.load(Ordering::Relaxed),
            ws_accepted: g(&self.ws_accepted),
            sse_accepted: g(&self.sse_accepted),
            redis_received: g(&self.redis_received),
            redis_duplicates: g(&self.redis_duplicates),
            routed: g(&self.routed),
            delivered: g(&self.delivered),
            discarded: g(&self.discarded),
            slow_disconnects: g(&self.slow_disconnects),
            dropped_frames: g(&self.dropped_frames),
            catch_up_frames: g(&self.catch_up_frames),
            subscribe_commands: g(&self.subscribe_commands),
            redis_resets: g(&self.redis_resets),
        }
    }
}

pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub stats: Arc<Stats>,
    pub poll_auth: PollAuth,
    /// Publisher connection (ingest), reconnecting by itself after Redis restarts; None
    /// where this process does not publish.
    pub redis: Option<std::sync::Arc<publisher::Publisher>>,
    pub registry: Arc<push::Registry>,
    pub push: PushConfig,
    /// Test-only: an added delay per poll (`POLLPUSH_TEST_POLL_DELAY_MS`), to prove that a
    /// regression gate catches a slowed server. Zero unless that variable is set.
    pub poll_delay: std::time::Duration,
    /// Verifies signed tokens for `--poll-auth none`; None otherwise.
    pub signer: Option<token::Signer>,
    pub exporter: Arc<prometheus::Exporter>,
    /// Held long polls (`serve --long-poll`); None: polls are never held.
    pub waiters: Option<Arc<longpoll::Waiters>>,
    /// When set, `POST /notifications`, `/stats` and `/metrics` want it in
    /// [`token::OPERATOR_HEADER`]; see [`token::OPERATOR_ENV`].
    pub operator: Option<Arc<str>>,
    /// The poll cache (`--poll-backend redis-cache`); None: every poll asks Postgres.
    pub cache: Option<Arc<cache::PollCache>>,
    /// Polls answer with an ETag and honour If-None-Match (`--conditional`).
    pub conditional: bool,
    /// The poll's statements over pipelining connections (`serve`); None: through `pool`.
    pub pipeline: Option<Arc<pipeline::Pipeline>>,
}

impl AppState {
    pub fn new(pool: PgPool, poll_auth: PollAuth, push: PushConfig) -> Self {
        let stats = Arc::new(Stats::default());
        AppState {
            pool,
            stats: stats.clone(),
            poll_auth,
            redis: None,
            registry: Arc::new(push::Registry::new(push, stats)),
            push,
            poll_delay: std::time::Duration::ZERO,
            signer: None,
            exporter: Arc::default(),
            waiters: None,
            operator: None,
            cache: None,
            conditional: false,
            pipeline: None,
        }
    }

    /// Refuses an operator request (ingest, stats, metrics) without the operator token,
    /// when this server has one.
    pub fn operator_allowed(&self, headers: &HeaderMap) -> Result<(), AppError> {
        let Some(expected) = &self.operator else {
            return Ok(());
        };
        let given = headers
            .get(token::OPERATOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        match token::same_secret(given, expected) {
            true => Ok(()),
            false => Err(AppError::Unauthorized),
        }
    }

    /// Resolves a bearer token to a user, counting the query.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<i64, AppError> {
        match bearer(headers) {
            Some(token) => self.authenticate_token(token).await,
            None => Err(AppError::Unauthorized),
        }
    }

    /// Resolves a session token to a user, counting the query. The token itself is never
    /// logged.
    pub async fn authenticate_token(&self, token: &str) -> Result<i64, AppError> {
        if token.is_empty() || token.len() > 256 {
            return Err(AppError::Unauthorized);
        }
        bump(&self.stats.db_queries);
        let user = match &self.pipeline {
            Some(pipeline) => pipeline.user_for_token(token).await?,
            None => db::user_for_token(&self.pool, token).await?,
        };
        match user {
            Some(user) => Ok(user),
            None => Err(AppError::Unauthorized),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    let token = token.trim();
    (!token.is_empty() && token.len() <= 256).then_some(token)
}

/// Errors a handler returns; the body never carries internals.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("internal error: {0}")]
    Internal(&'static str),
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("temporarily unavailable: {0}")]
    Unavailable(&'static str),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("database error")]
    Pipeline(#[from] pipeline::PipelineError),
}

/// A database error answers 503; its cause is logged, never sent.
fn database_error(cause: &dyn std::fmt::Display) -> StatusCode {
    tracing::warn!(cause = %cause, "database error");
    StatusCode::SERVICE_UNAVAILABLE
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Database(err) => database_error(err),
            AppError::Pipeline(err) => database_error(err),
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

async fn stats(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: HeaderMap,
) -> Result<Json<StatsSnapshot>, AppError> {
    state.operator_allowed(&headers)?;
    Ok(Json(state.stats.snapshot()))
}

/// `GET /metrics`: the same counters in Prometheus text format, with the send queues' depth.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    state.operator_allowed(&headers)?;
    let text = state
        .exporter
        .render(&state.stats.snapshot(), state.registry.queued_frames());
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

/// `GET /healthz`: 200 and an empty JSON array, touching nothing behind the server. A
/// readiness probe for an orchestrator, and the trivial endpoint that load generators are
/// compared on (`benches/polling.sh`): the array reads as an empty poll to any poller,
/// `pollpush swarm`'s included.
async fn healthz() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        "[]",
    )
}

/// `GET /clock`: this host's time, `{"unix_us": N}` (µs since the Unix epoch), for a swarm
/// shard on another host to measure its clock's offset (`swarm --shard`): answered
/// without the operator token, like /healthz, and touching nothing behind the server.
async fn clock() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "unix_us": crate::now_us() }))
}

/// The router for a set of roles, sharing one state.
pub fn app(state: AppState, poll: bool, ingest: bool, push: bool) -> Router {
    let mut router = Router::new()
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/clock", get(clock));
    let mut notifications = axum::routing::MethodRouter::new();
    if poll {
        notifications = notifications.get(poll::handler);
    }
    if ingest {
        notifications = notifications.post(ingest::handler);
    }
    if poll || ingest {
        router = router.route("/notifications", notifications);
    }
    if push {
        router = router
            .route("/ws", get(push::ws_handler))
            .route("/sse", get(push::sse::handler));
    }
    router
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}
