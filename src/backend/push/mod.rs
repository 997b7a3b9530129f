//! The push gateway. A client proves who it is with its session token (an
//! `Authorization: Bearer` header at the handshake, or, for browsers that cannot set
//! headers on a WebSocket, a first frame `{"token": "..."}`); the gateway derives the user
//! from it, so a client can never name a channel or another user. Each connection is a
//! [`Session`]: registered under its user in the [`Registry`], fed by [`fanout`] from Redis
//! (or, with `fanout = none`, only by this instance's own ingest), with a bounded send
//! queue. A client that sends the last id it has seen first gets what it missed from
//! Postgres (catch-up), with no gap and no duplicate at the seam.

pub mod fanout;
mod registry;
pub mod sse;

pub use registry::{Registration, Registry};

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::SinkExt;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{bump, db, AppError, AppState, PushConfig, Stats};
use crate::config::{Fanout, SlowPolicy};

/// One notification on its way to a socket: its stored id (for catch-up and dedup) and the
/// JSON text the client receives, `{"id":..,"user_id":..,"payload":{..}}`.
#[derive(Debug, Clone)]
pub struct Frame {
    pub id: i64,
    pub text: Utf8Bytes,
}

/// What a registration asks of the Redis side (see [`fanout::subscriber`]).
#[derive(Debug)]
pub enum SubOp {
    /// A socket of this user registered: be subscribed for it, then answer.
    Want(i64, oneshot::Sender<()>),
    /// The last socket of this user is gone.
    Unwant(i64),
    /// Answer once the shared channel is subscribed (broadcast).
    Ready(oneshot::Sender<()>),
}

/// How many of the messages an instance routed last it remembers, to drop a second copy.
pub const RECENT_MESSAGES: usize = 65_536;

/// The messages an instance routed last, by a 64-bit hash of their bytes (up to a bound,
/// oldest forgotten first). Redis can deliver one notification twice: a publish that timed
/// out while Redis was stalled is retried, yet Redis may still run the first one once it
/// resumes. The retry is the same bytes (id, user and payload), and each message reaches
/// an instance once (per-user and broadcast channels alike), so a second copy among the
/// last [`RECENT_MESSAGES`] is dropped and counted (`redis_duplicates`). Keyed by the bytes,
/// not the id alone: a system whose ids restart (a `[target]` run publishing `{event}`
/// numbers again) sends a new message under an old id, which must pass.
pub struct RecentMessages {
    seen: HashSet<u64>,
    order: std::collections::VecDeque<u64>,
    bound: usize,
}

impl RecentMessages {
    pub fn new(bound: usize) -> Self {
        RecentMessages {
            seen: HashSet::new(),
            order: std::collections::VecDeque::new(),
            bound,
        }
    }

    /// True the first time `message` comes (within the bound), false for a repeat.
    pub fn first_time(&mut self, message: &[u8]) -> bool {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let key = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(message);
        if !self.seen.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.bound {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// Routes one published notification (JSON of `ingest::Published`) to the sockets
/// of its user on this instance. With `recent`, a byte-identical copy of a message routed
/// already is dropped (see [`RecentMessages`]).
pub fn route(state: &AppState, payload: &[u8], recent: Option<&mut RecentMessages>) {
    /// The fields of a published notification that say where it goes.
    #[derive(Deserialize)]
    struct Addressed {
        id: i64,
        user_id: i64,
    }
    let (Ok(addressed), Ok(text)) = (
        serde_json::from_slice::<Addressed>(payload),
        std::str::from_utf8(payload),
    ) else {
        tracing::warn!("ignoring a malformed notification message");
        return;
    };
    if recent.is_some_and(|r| !r.first_time(payload)) {
        tracing::debug!(id = addressed.id, "dropped a second copy from Redis");
        bump(&state.stats.redis_duplicates);
        return;
    }
    bump(&state.stats.routed);
    let frame = Frame {
        id: addressed.id,
        text: Utf8Bytes::from(text.to_string()),
    };
    match state.registry.dispatch(addressed.user_id, &frame) {
        0 => {
            tracing::trace!(
                user = addressed.user_id,
                id = addressed.id,
                "routed to no socket"
            );
            bump(&state.stats.discarded)
        }
        n => {
            state.stats.delivered.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// How long a new connection waits for this instance to be subscribed for its user.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);
/// Catch-up reads Postgres in pages of this many notifications.
const CATCH_UP_PAGE: i64 = 500;

/// One client connection of one user: registered, caught up, then fed live.
pub struct Session {
    user: i64,
    id: u64,
    registry: Arc<Registry>,
    stats: Arc<Stats>,
    /// How often the connection pings its client.
    pub ping_interval: Duration,
    queue: flume::Receiver<Frame>,
    /// Catch-up frames not yet sent, oldest first.
    backlog: std::collections::VecDeque<Frame>,
    /// Ids sent from catch-up: the same notification arriving live is skipped once.
    caught_up: HashSet<i64>,
    /// Cancelled when the registry gives up on this connection as a slow consumer.
    pub kill: CancellationToken,
}

impl Session {
    /// Registers a connection of `user`; with `last_id`, reads what it missed after that id.
    /// The order is what makes the seam exact: subscribe first, then read Postgres, so every
    /// notification stored after the read arrives live, and one stored before is in the read.
    pub async fn open(state: &AppState, user: i64, last_id: Option<i64>) -> Result<Self, AppError> {
        let Registration {
            id,
            queue,
            ready,
            kill,
        } = state.registry.register(user);
        let mut session = Session {
            user,
            id,
            registry: state.registry.clone(),
            stats: state.stats.clone(),
            ping_interval: state.push.ping_interval,
            queue,
            backlog: Default::default(),
            caught_up: HashSet::new(),
            kill,
        };
        state.stats.connections.fetch_add(1, Ordering::Relaxed);
        if let Some(ready) = ready {
            match tokio::time::timeout(SUBSCRIBE_WAIT, ready).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(AppError::Unavailable(
                        "the gateway is not subscribed to Redis; retry",
                    ))
                }
            }
        }
        if let Some(mut after) = last_id {
            loop {
                bump(&state.stats.db_queries);
                let page = db::notifications_after(&state.pool, user, after, CATCH_UP_PAGE).await?;
                let n = page.len() as i64;
                for (nid, payload) in page {
                    let text = format!("{{\"id\":{nid},\"user_id\":{user},\"payload\":{payload}}}");
                    session.caught_up.insert(nid);
                    session.backlog.push_back(Frame {
                        id: nid,
                        text: Utf8Bytes::from(text),
                    });
                    after = nid;
                }
                if n < CATCH_UP_PAGE {
                    break;
                }
            }
            tracing::trace!(
                user,
                last_id,
                frames = session.backlog.len(),
                through = after,
                "caught up"
            );
            state
                .stats
                .catch_up_frames
                .fetch_add(session.backlog.len() as u64, Ordering::Relaxed);
        }
        Ok(session)
    }

    /// The next frame for the client: the catch-up backlog, then live frames (skipping any
    /// already sent from the backlog). None when the registry let go of this connection
    /// (slow consumer, or the Redis subscription was lost).
    pub async fn next(&mut self) -> Option<Frame> {
        if let Some(f) = self.backlog.pop_front() {
            return Some(f);
        }
        loop {
            let frame = self.queue.recv_async().await.ok()?;
            if self.caught_up.is_empty() || !self.caught_up.remove(&frame.id) {
                return Some(frame);
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.registry.unregister(self.user, self.id);
        self.stats.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `?last_id=N`: the last notification id the client has seen (browsers' WebSocket cannot
/// send headers; `Last-Event-ID` works too).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectQuery {
    pub last_id: Option<i64>,
}

/// The last id a client has seen, from `Last-Event-ID` or `?last_id=`.
pub fn last_id(headers: &HeaderMap, query: &ConnectQuery) -> Result<Option<i64>, AppError> {
    match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|id| *id >= 0)
            .map(Some)
            .ok_or(AppError::BadRequest(
                "Last-Event-ID must be a notification id (a number)",
            )),
        None => match query.last_id {
            Some(id) if id < 0 => Err(AppError::BadRequest("last_id must be 0 or more")),
            other => Ok(other),
        },
    }
}

/// The first frame of a browser client that cannot send an Authorization header.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Hello {
    token: String,
    last_id: Option<i64>,
}

/// Reads a first frame: the credentials, or None for anything else (not JSON, other keys,
/// a negative last id). Whatever the frame holds, this never panics.
fn parse_hello(text: &str) -> Option<Hello> {
    serde_json::from_str::<Hello>(text)
        .ok()
        .filter(|h| h.last_id.is_none_or(|id| id >= 0))
}

/// Close codes: 1008 policy violation (bad or missing credentials), 1013 try again later.
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TRY_AGAIN: u16 = 1013;
/// How long a browser client has to send its credentials.
const HELLO_WAIT: Duration = Duration::from_secs(5);

pub async fn ws_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ConnectQuery>, axum::extract::rejection::QueryRejection>,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    let Ok(Query(query)) = query else {
        return Err(AppError::BadRequest(
            "the only query parameter is last_id, a number",
        ));
    };
    let last = last_id(&headers, &query)?;
    // With a header the token is checked before the upgrade (a bad one gets a 401); without
    // one, the first frame must carry it.
    let session = if headers.contains_key(axum::http::header::AUTHORIZATION) {
        let user = state.authenticate(&headers).await.inspect_err(|e| {
            if matches!(e, AppError::Unauthorized) {
                bump(&state.stats.unauthorized);
            }
        })?;
        Some(Session::open(&state, user, last).await?)
    } else {
        None
    };
    bump(&state.stats.ws_accepted);
    // Notifications are small: tungstenite's default 128 KiB buffers per socket would cost
    // more than 1 GB at 10,000 connections and make push look heavier than it is. The read
    // buffer is zero-filled to its size before each read, so all of it is resident: a
    // client sends only pongs and a first frame, and 512 bytes hold them (a larger frame
    // grows the buffer for itself). 4 KiB cost 3.5 KB more per connection.
    let ws = ws
        .read_buffer_size(512)
        .write_buffer_size(4096)
        .max_message_size(64 * 1024);
    // Each connection's future keeps only what it needs: the session, or the state to
    // authenticate the first frame with.
    Ok(match session {
        Some(s) => ws.on_upgrade(move |socket| connection(socket, s)),
        None => ws.on_upgrade(move |socket| hello_then_connection(socket, state)),
    })
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

/// First-frame authentication: `{"token": "...", "last_id": N}` within 5 s.
async fn hello_then_connection(mut socket: WebSocket, state: AppState) {
    let hello = match tokio::time::timeout(HELLO_WAIT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => parse_hello(&t),
        _ => None,
    };
    let Some(hello) = hello else {
        bump(&state.stats.unauthorized);
        return close(
            socket,
            CLOSE_POLICY,
            "send {\"token\": ...} as the first frame",
        )
        .await;
    };
    // Boxed: the database queries' futures are held while they run, not for the life of
    // the connection.
    let user = match Box::pin(state.authenticate_token(&hello.token)).await {
        Ok(user) => user,
        Err(AppError::Unauthorized) => {
            bump(&state.stats.unauthorized);
            return close(socket, CLOSE_POLICY, "invalid token").await;
        }
        Err(_) => return close(socket, CLOSE_TRY_AGAIN, "try again later").await,
    };
    let session = Box::pin(Session::open(&state, user, hello.last_id)).await;
    // The connection may last hours: hold only the session, not a copy of the state.
    drop(state);
    match session {
        Ok(session) => connection(socket, session).await,
        Err(_) => close(socket, CLOSE_TRY_AGAIN, "try again later").await,
    }
}

/// When a connection's pings go out: at `interval` after `now`, moved onto a grid shared
/// by every connection of the process (1/40 of the interval, at most 250 ms), with the
/// period rounded to that grid. Pings of thousands of idle sockets then come in a few
/// batches a second, so the runtime wakes a few times a second for all of them instead of
/// once per socket; each ping moves by at most half a grid step.
fn ping_schedule(
    epoch: tokio::time::Instant,
    now: tokio::time::Instant,
    interval: Duration,
) -> (tokio::time::Instant, Duration) {
    let grid = (interval / 40).clamp(Duration::from_millis(1), Duration::from_millis(250));
    let g = grid.as_nanos();
    let period = Duration::from_nanos(((interval.as_nanos() + g / 2) / g).max(1) as u64 * g as u64);
    let due = now.saturating_duration_since(epoch) + period;
    let first = epoch + Duration::from_nanos((due.as_nanos().div_ceil(g) * g) as u64);
    (first, period)
}

/// The instant every connection's ping grid counts from.
fn ping_epoch() -> tokio::time::Instant {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(tokio::time::Instant::now)
}

/// One client socket, in one task: it waits at once for the client (pongs, close), for
/// the session's next frame and for the ping grid, and writes what is due. A client silent
/// for two ping intervals (no pong) is closed, and so is one that does not take a frame
/// within a ping interval or that the registry gave up on. One task and no split halves:
/// a socket costs one future, not two tasks and a lock between them.
async fn connection(mut socket: WebSocket, mut session: Session) {
    let ping_interval = session.ping_interval;
    let (first, period) = ping_schedule(ping_epoch(), tokio::time::Instant::now(), ping_interval);
    let mut ping = tokio::time::interval_at(first, period);
    let kill = session.kill.clone();
    let mut last_heard = tokio::time::Instant::now();
    let mut code = None;
    loop {
        // Each branch is cancel-safe: a frame half-read stays in the socket's buffer, and a
        // frame is taken from the queue only when it is returned. Polled in this order
        // (`biased`: no random draw per wakeup): what the client sent, then frames, then
        // the ping grid.
        let msg = tokio::select! {
            biased;
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {
                    last_heard = tokio::time::Instant::now();
                    continue;
                }
            },
            frame = session.next() => match frame {
                Some(frame) => Message::Text(frame.text),
                None => {
                    // Let go by the registry: slow, or Redis was lost. Tell the client to
                    // come back.
                    code = Some(CLOSE_TRY_AGAIN);
                    break;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > 2 * ping_interval {
                    break;
                }
                Message::Ping(Default::default())
            }
        };
        // The write first: it almost always completes at once, and then neither its timer
        // nor the kill signal's waiter is ever registered.
        let sent = tokio::select! {
            biased;
            r = tokio::time::timeout(ping_interval, socket.send(msg)) => matches!(r, Ok(Ok(()))),
            _ = kill.cancelled() => false,
        };
        if !sent {
            break;
        }
    }
    drop(session);
    if let Some(code) = code {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static("reconnect"),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            socket.send(Message::Close(Some(frame))),
        )
        .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pings_fall_on_a_shared_grid_about_one_interval_apart() {
        let epoch = tokio::time::Instant::now();
        let interval = Duration::from_secs(20);
        let grid = Duration::from_millis(250);
        for offset_ms in [0u64, 1, 137, 249, 250, 9_999] {
            let now = epoch + Duration::from_millis(offset_ms);
            let (first, period) = ping_schedule(epoch, now, interval);
            assert_eq!(period, interval, "20 s is already on the grid");
            let since = first.duration_since(epoch);
            assert_eq!(
                since.as_nanos() % grid.as_nanos(),
                0,
                "{offset_ms} ms: on the grid"
            );
            let wait = first.duration_since(now);
            assert!(
                wait >= interval && wait < interval + grid,
                "{offset_ms} ms: {wait:?}"
            );
        }
        // A period off the 250 ms grid is rounded to it.
        let (_, period) = ping_schedule(epoch, epoch, Duration::from_millis(20_100));
        assert_eq!(period, interval);
        // Tiny intervals keep a grid of at least 1 ms.
        let (first, period) = ping_schedule(epoch, epoch, Duration::from_millis(10));
        assert_eq!(
            (first.duration_since(epoch), period),
            (Duration::from_millis(10), Duration::from_millis(10))
        );
    }

    #[test]
    fn a_second_copy_is_dropped_while_remembered_an_old_id_with_new_bytes_is_not() {
        let mut recent = RecentMessages::new(3);
        let m = |id: u32| format!(r#"{{"id":{id},"user_id":7,"payload":{{"emit_us":5}}}}"#);
        assert!([1, 2, 3]
            .iter()
            .all(|&id| recent.first_time(m(id).as_bytes())));
        assert!(
            !recent.first_time(m(2).as_bytes()),
            "a repeat within the bound"
        );
        assert!(recent.first_time(m(4).as_bytes()), "a new message");
        // 1 was the oldest: forgotten, so a copy of it now passes; 3 and 4 are still held.
        assert!(recent.first_time(m(1).as_bytes()));
        assert!(!recent.first_time(m(4).as_bytes()) && !recent.first_time(m(1).as_bytes()));
        assert_eq!(recent.seen.len(), 3);
        // An old id with another payload is another message: it passes.
        let reused = r#"{"id":4,"user_id":7,"payload":{"emit_us":6}}"#;
        assert!(recent.first_time(reused.as_bytes()));
    }

    #[test]
    fn a_first_frame_carries_a_token_and_maybe_a_last_id() {
        let h = parse_hello(r#"{"token":"7.ab","last_id":3}"#).unwrap();
        assert_eq!((h.token.as_str(), h.last_id), ("7.ab", Some(3)));
        assert!(parse_hello(r#"{"token":"7.ab"}"#).is_some());
        for bad in [
            "",
            "{}",
            "null",
            r#"{"token":7}"#,
            r#"{"token":"x","last_id":-1}"#,
            r#"{"token":"x","user":2}"#,
            "{\"token\":\"é",
        ] {
            assert!(parse_hello(bad).is_none(), "{bad:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("POLLPUSH_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
        ))]
        /// Any text parses without a panic; credentials written out come back as written.
        #[test]
        fn any_first_frame_parses_without_panic(text in "\\PC{0,80}") {
            let _ = parse_hello(&text);
        }

        #[test]
        fn credentials_round_trip(token in "\\PC{0,40}", last in proptest::option::of(0i64..)) {
            let frame = serde_json::json!({"token": token, "last_id": last}).to_string();
            let h = parse_hello(&frame).unwrap();
            prop_assert_eq!(h.token, token);
            prop_assert_eq!(h.last_id, last);
        }
    }
}
