//! A Redis connection that never leaves a caller waiting on a dead one: redis-rs's
//! `ConnectionManager` reconnects by itself, but we saw it stop answering for good after
//! Redis was killed and restarted. This one keeps a multiplexed connection, bounds each
//! use with a timeout, drops the connection on any error, and opens a new one on the next
//! use (at most one attempt per [`RETRY`]). Ingest's publisher and the poll cache use it.

use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use tokio::time::Instant;

/// A use of the connection, or a connection attempt, that takes longer than this has failed.
pub const TIMEOUT: Duration = Duration::from_secs(1);
/// The least time between two connection attempts.
pub const RETRY: Duration = Duration::from_millis(200);

struct State {
    conn: Option<MultiplexedConnection>,
    last_attempt: Option<Instant>,
}

/// A multiplexed connection whose commands wait as long as the caller lets them: the
/// callers time out themselves (redis-rs would cut every response at 500 ms by default).
async fn open(client: &redis::Client) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// A multiplexed Redis connection that is dropped on any error or timeout and opened
/// again on the next use (at most one attempt per `RETRY`), so nothing waits on a dead one.
pub struct Link {
    client: redis::Client,
    state: Mutex<State>,
}

impl Link {
    /// Connects once, so that a wrong URL fails at start-up.
    pub async fn connect(client: redis::Client) -> anyhow::Result<Self> {
        let conn = tokio::time::timeout(TIMEOUT * 5, open(&client))
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer within 5 s"))??;
        Ok(Link {
            client,
            state: Mutex::new(State {
                conn: Some(conn),
                last_attempt: None,
            }),
        })
    }

    /// Runs `f` on the current connection within `TIMEOUT`; any failure drops it.
    pub async fn run<T, F, Fut>(&self, f: F) -> anyhow::Result<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection().await?;
        match tokio::time::timeout(TIMEOUT, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.forget();
                Err(e.into())
            }
            Err(_) => {
                self.forget();
                Err(anyhow::anyhow!("Redis did not answer within {TIMEOUT:?}"))
            }
        }
    }

    fn forget(&self) {
        self.state.lock().conn = None;
    }

    async fn connection(&self) -> anyhow::Result<MultiplexedConnection> {
        {
            let mut st = self.state.lock();
            if let Some(c) = &st.conn {
                return Ok(c.clone());
            }
            if st.last_attempt.is_some_and(|t| t.elapsed() < RETRY) {
                anyhow::bail!("Redis is unreachable; retrying shortly");
            }
            st.last_attempt = Some(Instant::now());
        }
        let conn = tokio::time::timeout(TIMEOUT, open(&self.client))
            .await
            .map_err(|_| anyhow::anyhow!("connecting to Redis timed out"))??;
        self.state.lock().conn = Some(conn.clone());
        Ok(conn)
    }
}
