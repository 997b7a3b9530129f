//! The push gateway: `GET /ws` authenticates the bearer token at the handshake, registers
//! the socket under its user, and a Redis subscriber forwards each published notification
//! to the sockets of its target user on this instance, and to no one else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::{bump, AppError, AppState, Stats, CHANNEL};

/// Frames a connection may have queued before it counts as a slow consumer and is closed.
pub const SEND_QUEUE: usize = 256;
/// Server pings this often; a connection silent for two intervals is closed.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);

/// The send queue of one socket, with the id that tells it apart from the user's others.
type Socket = (u64, mpsc::Sender<Utf8Bytes>);

/// Which sockets of this instance belong to which user.
#[derive(Default)]
pub struct Registry {
    next_id: AtomicU64,
    users: Mutex<HashMap<i64, Vec<Socket>>>,
}

impl Registry {
    /// Adds a socket of `user`; returns its id and the receiving end of its send queue.
    pub fn register(&self, user: i64) -> (u64, mpsc::Receiver<Utf8Bytes>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        self.users
            .lock()
            .expect("registry lock")
            .entry(user)
            .or_default()
            .push((id, tx));
        (id, rx)
    }

    pub fn unregister(&self, user: i64, id: u64) {
        let mut users = self.users.lock().expect("registry lock");
        if let Some(conns) = users.get_mut(&user) {
            conns.retain(|(cid, _)| *cid != id);
            if conns.is_empty() {
                users.remove(&user);
            }
        }
    }

    /// Queues `frame` to every socket of `user` on this instance; returns how many got it.
    /// A socket whose queue is full loses its sender, which closes it.
    pub fn dispatch(&self, user: i64, frame: &Utf8Bytes, stats: &Stats) -> usize {
        let mut users = self.users.lock().expect("registry lock");
        let Some(conns) = users.get_mut(&user) else {
            return 0;
        };
        let mut sent = 0;
        conns.retain(|(_, tx)| match tx.try_send(frame.clone()) {
            Ok(()) => {
                sent += 1;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                bump(&stats.slow_disconnects);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if conns.is_empty() {
            users.remove(&user);
        }
        sent
    }
}

pub async fn ws_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    let user = match state.authenticate(&headers).await {
        Ok(user) => user,
        Err(err) => {
            if matches!(err, AppError::Unauthorized) {
                bump(&state.stats.unauthorized);
            }
            return Err(err);
        }
    };
    // Notifications are small: tungstenite's default 128 KiB buffers per socket would cost
    // more than 1 GB at 10,000 connections and make push look heavier than it is.
    Ok(ws
        .read_buffer_size(4096)
        .write_buffer_size(4096)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| connection(socket, user, state)))
}

/// One client socket: a send task draining the queue (plus pings) and a receive task
/// watching for pongs and close, joined so either ending ends both.
async fn connection(socket: WebSocket, user: i64, state: AppState) {
    let (id, mut queue) = state.registry.register(user);
    bump(&state.stats.ws_accepted);
    state.stats.ws_connections.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    let last_heard = Arc::new(AtomicU64::new(crate::now_us()));

    let heard = last_heard.clone();
    let mut recv = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            heard.store(crate::now_us(), Ordering::Relaxed);
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    });
    let mut send = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.tick().await;
        loop {
            tokio::select! {
                frame = queue.recv() => {
                    let Some(frame) = frame else { break };
                    if sink.send(Message::Text(frame)).await.is_err() {
                        break;
                    }
                }
                _ = ping.tick() => {
                    let silent_us = crate::now_us().saturating_sub(last_heard.load(Ordering::Relaxed));
                    if silent_us > 2 * PING_INTERVAL.as_micros() as u64 {
                        break;
                    }
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    });
    tokio::select! {
        _ = &mut recv => send.abort(),
        _ = &mut send => recv.abort(),
    }
    state.registry.unregister(user, id);
    state.stats.ws_connections.fetch_sub(1, Ordering::Relaxed);
}

#[derive(Deserialize)]
struct Target {
    user_id: i64,
}

/// Subscribes to the shared channel and dispatches each message to its user's sockets,
/// reconnecting with backoff when Redis goes away. `ready` fires once first subscribed.
pub async fn subscriber(client: redis::Client, state: AppState, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(CHANNEL).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        bump(&state.stats.redis_received);
                        let payload = msg.get_payload_bytes();
                        let Ok(target) = serde_json::from_slice::<Target>(payload) else {
                            tracing::warn!("ignoring a malformed message on the channel");
                            continue;
                        };
                        let Ok(text) = std::str::from_utf8(payload) else {
                            continue;
                        };
                        let frame = Utf8Bytes::from(text.to_string());
                        let n = state
                            .registry
                            .dispatch(target.user_id, &frame, &state.stats);
                        if n == 0 {
                            bump(&state.stats.discarded);
                        } else {
                            state.stats.delivered.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                    tracing::warn!("redis subscription ended; resubscribing");
                }
                Err(err) => tracing::warn!(cause = %err, "redis subscribe failed"),
            },
            Err(err) => tracing::warn!(cause = %err, "redis connection failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
