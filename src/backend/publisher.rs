//! Ingest's Redis publisher, over a [`Link`] (a connection that is dropped on any error or
//! timeout and opened again on the next publish), so no PUBLISH hangs on a Redis that was
//! killed and restarted.
//!
//! A notification is stored in Postgres before it is published, so a failed publish must
//! not be the end of it: a client that caught up from Postgres just before the insert stays
//! connected and would never hear of it (measured: a Redis restart lost 3 to 5 of 2,024
//! notifications this way, stored right after the gateways had resubscribed and while
//! ingest's publisher had not yet reconnected). Failed messages wait in a bounded queue,
//! in order, and [`Publisher::republish`] sends them once Redis answers again; while any
//! wait, new messages queue behind them, so a client never sees a newer id before an older
//! one from this process and resumes past it. A client that catches up meanwhile gets the
//! message from Postgres, and the gateway skips the late copy.

use std::collections::VecDeque;

use parking_lot::Mutex;
use redis::AsyncCommands;
use tokio::sync::Notify;

use super::link::{Link, RETRY};

/// Messages that may wait for Redis; past this, a failed message is dropped (it stays in
/// Postgres, where reconnecting clients and pollers find it) and counted.
const PENDING_MAX: usize = 100_000;

pub struct Publisher {
    to: To,
    /// Messages whose publish failed, oldest first.
    pending: Mutex<VecDeque<Message>>,
    wake: Notify,
    /// Cached polling: each message also raises its user's latest id in Redis.
    keep_latest: bool,
}

/// Where messages go: one Redis (PUBLISH), or a Redis Cluster (SPUBLISH, to the shard that
/// owns the channel).
enum To {
    One(Box<Link>),
    Cluster(redis::cluster_async::ClusterConnection),
}

/// One notification on its way to Redis.
#[derive(Debug, Clone)]
pub struct Message {
    pub channel: String,
    pub text: String,
    /// (user, id): raised in the `latest` sorted set first, when the poll API caches.
    pub latest: (i64, i64),
}

/// What became of a message handed to [`Publisher::publish`].
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// Published now, to this many subscribers.
    Now(i64),
    /// Redis did not take it (or older messages wait): it goes out when Redis answers.
    Queued,
    /// The queue is full: not published at all.
    Dropped,
}

impl Publisher {
    /// Connects once, so that a wrong URL fails at start-up. With `keep_latest`, every
    /// message also raises its user's latest id (cached polling).
    pub async fn connect(client: redis::Client, keep_latest: bool) -> anyhow::Result<Self> {
        Ok(Publisher {
            to: To::One(Box::new(Link::connect(client).await?)),
            pending: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            keep_latest,
        })
    }

    /// Publishes with SPUBLISH on the Redis Cluster that `url` is a node of
    /// (`--fanout sharded`).
    pub async fn connect_sharded(url: &str) -> anyhow::Result<Self> {
        Ok(Publisher {
            to: To::Cluster(super::cluster::connect(url, None).await?),
            pending: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            keep_latest: false,
        })
    }

    /// Publishes `msg`, or queues it behind older ones, or for later.
    pub async fn publish(&self, msg: Message) -> Sent {
        if !self.pending.lock().is_empty() {
            return self.enqueue(msg);
        }
        match self.try_publish(&msg).await {
            Ok(n) => Sent::Now(n),
            Err(err) => {
                tracing::warn!(cause = %err, "publish failed; it waits for Redis");
                self.enqueue(msg)
            }
        }
    }

    fn enqueue(&self, msg: Message) -> Sent {
        let mut pending = self.pending.lock();
        if pending.len() >= PENDING_MAX {
            return Sent::Dropped;
        }
        pending.push_back(msg);
        self.wake.notify_one();
        Sent::Queued
    }

    /// Publishes what waits, oldest first, as soon as Redis takes it; calls `sent` for each.
    /// Runs until the server stops (its task is aborted then).
    pub async fn republish(&self, sent: impl Fn()) {
        loop {
            let next = self.pending.lock().front().cloned();
            let Some(msg) = next else {
                self.wake.notified().await;
                continue;
            };
            match self.try_publish(&msg).await {
                Ok(_) => {
                    self.pending.lock().pop_front();
                    sent();
                }
                Err(_) => tokio::time::sleep(RETRY).await,
            }
        }
    }

    /// One PUBLISH on the current connection (after raising the user's latest id, when
    /// polls are cached: a ZADD GT, so an older id never lowers it, and a retried message
    /// changes nothing); how many subscribers got it.
    async fn try_publish(&self, msg: &Message) -> anyhow::Result<i64> {
        let keep_latest = self.keep_latest;
        let link = match &self.to {
            To::One(link) => link,
            To::Cluster(conn) => {
                let mut conn = conn.clone();
                let mut cmd = redis::cmd("SPUBLISH");
                cmd.arg(&msg.channel).arg(&msg.text);
                let spublish = cmd.query_async::<i64>(&mut conn);
                return match tokio::time::timeout(super::link::TIMEOUT, spublish).await {
                    Ok(r) => Ok(r?),
                    Err(_) => Err(anyhow::anyhow!(
                        "the Redis Cluster did not answer within {:?}",
                        super::link::TIMEOUT
                    )),
                };
            }
        };
        link.run(|mut conn| async move {
            if keep_latest {
                let (user, id) = msg.latest;
                let (n,): (i64,) = redis::pipe()
                    .cmd("ZADD")
                    .arg(super::cache::LATEST)
                    .arg("GT")
                    .arg(id)
                    .arg(user)
                    .ignore()
                    .publish(&msg.channel, &msg.text)
                    .query_async(&mut conn)
                    .await?;
                Ok(n)
            } else {
                conn.publish::<_, _, i64>(&msg.channel, &msg.text).await
            }
        })
        .await
    }
}
