//! The Redis side of a gateway instance: one pub/sub connection that receives what this
//! instance must route, and keeps its subscriptions in step with the registry.
//!
//! - `broadcast`: subscribed to the one shared channel; every message of every user comes
//!   in, and what this instance does not hold is discarded.
//! - `per-user`: subscribed to `user:<id>` for exactly the users it holds. Requests from the
//!   registry are taken in batches (all that queued up while the last batch was in flight),
//!   netted (a connect and a disconnect of the same user cancel out), and sent pipelined.
//! - `sharded`: the same channels on a Redis Cluster, with SSUBSCRIBE (each goes to the
//!   master that owns the channel's slot); messages come as RESP3 pushes.
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

/// Where the gateway's Redis side connects: one Redis (broadcast, per-user), or a Redis
/// Cluster (sharded), given by the URL of one of its nodes.
pub enum Upstream {
    One(redis::Client),
    Cluster(String),
}

/// Runs until the registry goes away. `ready` fires once the first connection is
/// subscribed (broadcast) or open (per-user, sharded).
pub async fn subscriber(
    upstream: Upstream,
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
        match connect(&upstream, fanout).await {
            Ok((subs, mut messages)) => {
                tracing::debug!("redis subscriber connected");
                backoff = Duration::from_millis(100);
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                let mut subscribed = HashSet::new();
                loop {
                    tokio::select! {
                        msg = messages.next() => match msg {
                            Some(payload) => {
                                bump(&state.stats.redis_received);
                                route(&state, payload.bytes(), Some(&mut recent));
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

/// The messages of one connection: a pub/sub stream, or a cluster connection's RESP3
/// pushes. None once the connection is lost: for a cluster, when any node's connection
/// dropped (redis-rs resubscribes by itself, but what was published meanwhile is gone).
enum Messages {
    One(redis::aio::PubSubStream),
    Cluster(mpsc::UnboundedReceiver<PushInfo>),
}

/// One message's payload, as it came (no copy on the way to the router).
enum Payload {
    Msg(redis::Msg),
    Push(Vec<u8>),
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Msg(m) => m.get_payload_bytes(),
            Payload::Push(p) => p,
        }
    }
}

impl Messages {
    async fn next(&mut self) -> Option<Payload> {
        match self {
            Messages::One(stream) => stream.next().await.map(Payload::Msg),
            Messages::Cluster(pushes) => loop {
                match pushes.recv().await? {
                    PushInfo {
                        kind: PushKind::SMessage,
                        mut data,
                        ..
                    } if data.len() > 1 => {
                        if let redis::Value::BulkString(payload) = data.swap_remove(1) {
                            return Some(Payload::Push(payload));
                        }
                    }
                    PushInfo {
                        kind: PushKind::Disconnection,
                        ..
                    } => return None,
                    _ => {}
                }
            },
        }
    }
}

async fn connect(upstream: &Upstream, fanout: Fanout) -> anyhow::Result<(Subs, Messages)> {
    match upstream {
        Upstream::One(client) => {
            let pubsub = tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub())
                .await
                .map_err(|_| anyhow::anyhow!("connect timed out"))??;
            let (mut sink, stream) = pubsub.split();
            if fanout == Fanout::Broadcast {
                sink.subscribe(CHANNEL).await?;
            }
            Ok((Subs::One(sink), Messages::One(stream)))
        }
        Upstream::Cluster(url) => {
            let (tx, rx) = mpsc::unbounded_channel();
            let conn = crate::backend::cluster::connect(url, Some(tx)).await?;
            Ok((Subs::Cluster(conn), Messages::Cluster(rx)))
        }
    }
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
