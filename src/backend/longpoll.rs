//! Long polling for the poll API (`serve --long-poll`): `GET /notifications?after=ID&wait_ms=W`
//! answers at once when there is something new; otherwise the request is held until a
//! notification for its user is published on Redis (then Postgres is asked again) or W ms
//! pass (then it answers `[]`). The poll server learns of new notifications the way the
//! gateways do: one subscription to what the ingest API publishes, the shared channel and
//! every per-user channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{bump, AppState, CHANNEL};

/// The longest a poll may be held: longer than most proxies keep an idle request open.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// Held polls by user: one `Notify` per user with a poll held.
#[derive(Default)]
pub struct Waiters {
    by_user: Mutex<HashMap<i64, Arc<Notify>>>,
}

impl Waiters {
    /// The user's wake-up; hold it while the poll waits, then [`Waiters::done`].
    pub fn waiter(&self, user: i64) -> Arc<Notify> {
        let mut map = self.by_user.lock();
        map.entry(user).or_default().clone()
    }

    /// Forgets the user's entry once no poll of theirs holds it.
    pub fn done(&self, user: i64, notify: Arc<Notify>) {
        let mut map = self.by_user.lock();
        // The map's reference and ours: nobody else is waiting.
        if Arc::strong_count(&notify) <= 2 {
            map.remove(&user);
        }
    }

    /// Wakes the user's held polls, if any.
    pub fn wake(&self, user: i64) {
        let map = self.by_user.lock();
        if let Some(n) = map.get(&user) {
            n.notify_waiters();
        }
    }

    /// Wakes every held poll (the subscription was lost: something may have been missed).
    pub fn wake_all(&self) {
        let map = self.by_user.lock();
        for n in map.values() {
            n.notify_waiters();
        }
    }

    pub fn held_users(&self) -> usize {
        self.by_user.lock().len()
    }
}

#[derive(serde::Deserialize)]
/// The user a published notification is for.
struct Addressed {
    user_id: i64,
}

/// Subscribes to everything the ingest API publishes and wakes the held polls of each
/// notification's user. Reconnects with backoff; on a reconnect every held poll is woken,
/// since what was published in between is unknown.
pub async fn subscriber(client: redis::Client, state: AppState, waiters: Arc<Waiters>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match subscribe(&client).await {
            Ok(mut pubsub) => {
                backoff = Duration::from_millis(100);
                waiters.wake_all();
                let mut stream = pubsub.on_message();
                while let Some(msg) = stream.next().await {
                    bump(&state.stats.redis_received);
                    if let Ok(t) = serde_json::from_slice::<Addressed>(msg.get_payload_bytes()) {
                        waiters.wake(t.user_id);
                    }
                }
                tracing::warn!("long-poll subscription lost; reconnecting");
            }
            Err(err) => tracing::warn!(cause = %err, "long-poll subscription failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn subscribe(client: &redis::Client) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(CHANNEL).await?;
    pubsub.psubscribe(super::user_channel_pattern()).await?;
    Ok(pubsub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_poll_wakes_for_its_user_only_and_entries_go_away() {
        let w = Waiters::default();
        let n1 = w.waiter(1);
        let n2 = w.waiter(2);
        {
            let f1 = n1.notified();
            let f2 = n2.notified();
            tokio::pin!(f1, f2);
            f1.as_mut().enable();
            f2.as_mut().enable();
            w.wake(1);
            assert!(tokio::time::timeout(Duration::from_millis(100), f1)
                .await
                .is_ok());
            assert!(tokio::time::timeout(Duration::from_millis(100), f2)
                .await
                .is_err());
        }
        assert_eq!(w.held_users(), 2);
        w.done(1, n1);
        w.done(2, n2);
        assert_eq!(w.held_users(), 0);
    }
}
