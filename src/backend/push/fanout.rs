//! The Redis side of a gateway instance: one pub/sub connection that receives what this
//! instance must route, and keeps its subscriptions in step with the registry.
//!
//! - `broadcast`: subscribed to the one shared channel; every message of every user comes
//!   in, and what this instance does not hold is discarded.
//! - `per-user`: subscribed to `user:<id>` for exactly the users it holds. Requests from the
//!   registry are taken in batches (all that queued up while the last batch was in flight),
//!   netted (a connect and a disconnect of the same user cancel out), and sent pipelined.
//!
//! When the connection drops, the subscriber reconnects with backoff and resubscribes. It
//! cannot know what was published in between, so it closes every socket first: clients
//! reconnect and catch up from Postgres.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind};
use tokio::sync::{mpsc, oneshot};

use super::{route, RecentMessages, SubOp, RECENT_MESSAGES};
use crate::backend::{bump, user_channel, AppState, CHANNEL};
use crate::config::Fanout;

/// Requests taken in one batch at most.
const BATCH: usize = 10_000;

/// Runs until the registry goes away. `ready` fires once the first connection is
/// subscribed (broadcast) or open (per-user).
pub async fn subscriber(
    client: redis::Client,
    state: AppState,
    mut ops: mpsc::Receiver<SubOp>,
    ready: oneshot::Sender<()>,
) {
    let fanout = state.push.fanout;
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    // Kept across reconnects: a retried publish may come after the subscription is back.
    let mut recent = RecentMessages::new(RECENT_MESSAGES);
    loop {
        match connect(&client, fanout).await {
            Ok((sink, mut stream)) => {
                let subs = Subs::One(sink);
                tracing::debug!("redis subscriber connected");
                backoff = Duration::from_millis(100);
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                let mut subscribed = HashSet::new();
                loop {
                    tokio::select! {
                        msg = stream.next() => match msg {
                            Some(msg) => {
                                bump(&state.stats.redis_received);
                                route(&state, msg.get_payload_bytes(), Some(&mut recent));
                            }
                            None => break,
                        },
                        op = ops.recv() => {
                            let Some(op) = op else { return };
                            let mut batch = vec![op];
                            while batch.len() < BATCH {
                                match ops.try_recv() {
                                    Ok(op) => batch.push(op),
                                    Err(_) => break,
                                }
                            }
                            if let Err(err) = apply(&subs, &mut subscribed, batch, &state).await {
                                tracing::warn!(cause = %err, "redis subscribe failed");
                                break;
                            }
                        }
                    }
                }
                tracing::warn!("redis subscription lost; closing sockets so clients catch up");
                bump(&state.stats.redis_resets);
                state.registry.close_all();
            }
            Err(err) => tracing::warn!(cause = %err, "redis connection failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn connect(
    client: &redis::Client,
    fanout: Fanout,
) -> redis::RedisResult<(PubSubSink, redis::aio::PubSubStream)> {
    let pubsub = tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub())
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
    let (mut sink, stream) = pubsub.split();
    if fanout == Fanout::Broadcast {
        sink.subscribe(CHANNEL).await?;
    }
    Ok((sink, stream))
}

/// What subscribes a user's channel: a pub/sub connection to one Redis, or the cluster
/// connection (SSUBSCRIBE, sent to the shard that owns the channel).
enum Subs {
    One(PubSubSink),
    Cluster(ClusterConnection),
}

impl Subs {
    /// (Un)subscribes `user`'s channel; answers with what it did.
    fn set(
        &self,
        user: i64,
        on: bool,
    ) -> impl std::future::Future<Output = redis::RedisResult<(i64, bool)>> {
        let channel = user_channel(user);
        let mut subs = match self {
            Subs::One(sink) => Subs::One(sink.clone()),
            Subs::Cluster(conn) => Subs::Cluster(conn.clone()),
        };
        async move {
            match (&mut subs, on) {
                (Subs::One(sink), true) => sink.subscribe(channel).await,
                (Subs::One(sink), false) => sink.unsubscribe(channel).await,
                (Subs::Cluster(conn), true) => conn.ssubscribe(channel).await,
                (Subs::Cluster(conn), false) => conn.sunsubscribe(channel).await,
            }
            .map(|()| (user, on))
        }
    }
}

/// `sharded`: users' channels on a Redis Cluster. Runs like [`subscriber`]; messages come
/// as RESP3 pushes, and a dropped node connection (redis-rs resubscribes by itself, but
/// cannot know what was published meanwhile) closes every socket, as a lost subscription
/// does.
pub async fn sharded_subscriber(
    url: String,
    state: AppState,
    mut ops: mpsc::Receiver<SubOp>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    let mut recent = RecentMessages::new(RECENT_MESSAGES);
    loop {
        let (tx, mut pushes) = mpsc::unbounded_channel();
        match crate::backend::cluster::connect(&url, Some(tx)).await {
            Ok(conn) => {
                tracing::debug!("redis cluster subscriber connected");
                backoff = Duration::from_millis(100);
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                let subs = Subs::Cluster(conn);
                let mut subscribed = HashSet::new();
                loop {
                    tokio::select! {
                        push = pushes.recv() => match push {
                            Some(PushInfo { kind: PushKind::SMessage, data, .. }) => {
                                if let Some(redis::Value::BulkString(payload)) = data.get(1) {
                                    bump(&state.stats.redis_received);
                                    route(&state, payload, Some(&mut recent));
                                }
                            }
                            Some(PushInfo { kind: PushKind::Disconnection, .. }) | None => break,
                            Some(_) => {}
                        },
                        op = ops.recv() => {
                            let Some(op) = op else { return };
                            let mut batch = vec![op];
                            while batch.len() < BATCH {
                                match ops.try_recv() {
                                    Ok(op) => batch.push(op),
                                    Err(_) => break,
                                }
                            }
                            if let Err(err) = apply(&subs, &mut subscribed, batch, &state).await {
                                tracing::warn!(cause = %err, "redis cluster subscribe failed");
                                break;
                            }
                        }
                    }
                }
                tracing::warn!(
                    "a redis cluster connection dropped; closing sockets so clients catch up"
                );
                bump(&state.stats.redis_resets);
                state.registry.close_all();
            }
            Err(err) => tracing::warn!(cause = %err, "redis cluster connection failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Brings the subscriptions in line with a batch of requests, then answers them. One
/// channel per command: redis-rs matches one reply to one request.
async fn apply(
    subs: &Subs,
    subscribed: &mut HashSet<i64>,
    batch: Vec<SubOp>,
    state: &AppState,
) -> redis::RedisResult<()> {
    let mut want: HashMap<i64, bool> = HashMap::new();
    let mut acks = Vec::new();
    for op in batch {
        match op {
            SubOp::Want(user, ack) => {
                want.insert(user, true);
                acks.push(ack);
            }
            SubOp::Unwant(user) => {
                want.insert(user, false);
            }
            SubOp::Ready(ack) => acks.push(ack),
        }
    }
    let mut commands = Vec::new();
    for (user, on) in want {
        if on == subscribed.contains(&user) {
            continue;
        }
        commands.push(subs.set(user, on));
    }
    let n = commands.len() as u64;
    let results = futures_util::future::join_all(commands).await;
    tracing::trace!(commands = n, acks = acks.len(), "subscriptions applied");
    state
        .stats
        .subscribe_commands
        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    for r in results {
        let (user, on) = r?;
        if on {
            subscribed.insert(user);
        } else {
            subscribed.remove(&user);
        }
    }
    for ack in acks {
        let _ = ack.send(());
    }
    Ok(())
}
