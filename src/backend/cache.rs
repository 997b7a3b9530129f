//! Cached polling (`serve --poll-backend redis-cache`): the answer to "is there anything
//! newer than `after` for this user?" comes from Redis, and Postgres is asked only when the
//! answer is yes. Ingest raises each user's latest id in the sorted set [`LATEST`] (ZADD
//! GT, after the row is committed, so the cache never claims an id Postgres does not
//! have); a poll reads it with its session in one round trip. A user missing from the set
//! (Redis restarted, or nobody wrote it yet) is read from Postgres once, `max(id)`, and
//! raised the same way, so a racing ingest is never undone. Sessions are cached under the
//! SHA-256 of their token (never the token) until they expire, at most [`SESSION_TTL`].
//! Redis unreachable: the poll fails (503), it never answers "nothing new" unasked.

use std::time::Duration;

use super::link::Link;

/// The sorted set of each user's latest notification id: member user id, score id.
pub const LATEST: &str = "latest";

/// How long a session lookup stays cached (or less, when the session expires sooner).
pub const SESSION_TTL: Duration = Duration::from_secs(300);

/// One round trip: the session's user (if cached) and that user's latest id (if known).
const LOOKUP: &str = r"
local u = redis.call('GET', KEYS[1])
if not u then return {false, false} end
return {u, redis.call('ZSCORE', KEYS[2], u)}
";

pub struct PollCache {
    link: Link,
    lookup: redis::Script,
}

/// What Redis knows about one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cached {
    /// The session's user, when the session was cached (always Some for signed tokens).
    pub user: Option<i64>,
    /// The user's latest notification id, when known.
    pub latest: Option<i64>,
}

fn session_key(token_sha256: &str) -> String {
    format!("session:{token_sha256}")
}

/// A score as Redis returns it ("42", or "4.2e+16" for large ones) as an id.
fn score(text: Option<String>) -> Option<i64> {
    text.and_then(|t| t.parse::<f64>().ok()).map(|f| f as i64)
}

impl PollCache {
    pub async fn connect(client: redis::Client) -> anyhow::Result<Self> {
        Ok(PollCache {
            link: Link::connect(client).await?,
            lookup: redis::Script::new(LOOKUP),
        })
    }

    /// The cached session of a token's hash and its user's latest id.
    pub async fn by_session(&self, token_sha256: &str) -> anyhow::Result<Cached> {
        let key = session_key(token_sha256);
        let script = &self.lookup;
        let (user, latest): (Option<i64>, Option<String>) = self
            .link
            .run(
                |mut conn| async move { script.key(key).key(LATEST).invoke_async(&mut conn).await },
            )
            .await?;
        Ok(Cached {
            user,
            latest: score(latest),
        })
    }

    /// The latest id of a user already known (a signed token).
    pub async fn latest(&self, user: i64) -> anyhow::Result<Option<i64>> {
        let latest: Option<String> = self
            .link
            .run(|mut conn| async move {
                redis::cmd("ZSCORE")
                    .arg(LATEST)
                    .arg(user)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(score(latest))
    }

    /// Caches a session for `ttl` (at least a second).
    pub async fn remember_session(
        &self,
        token_sha256: &str,
        user: i64,
        ttl: Duration,
    ) -> anyhow::Result<()> {
        let key = session_key(token_sha256);
        let secs = ttl.as_secs().max(1);
        self.link
            .run(|mut conn| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(user)
                    .arg("EX")
                    .arg(secs)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
    }

    /// Raises the user's latest id to `id` (never lowers it).
    pub async fn raise(&self, user: i64, id: i64) -> anyhow::Result<()> {
        self.link
            .run(|mut conn| async move {
                redis::cmd("ZADD")
                    .arg(LATEST)
                    .arg("GT")
                    .arg(id)
                    .arg(user)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_read_as_ids() {
        assert_eq!(score(Some("42".into())), Some(42));
        assert_eq!(score(Some("10000000001".into())), Some(10_000_000_001));
        assert_eq!(score(None), None);
        assert_eq!(score(Some("nope".into())), None);
    }
}
