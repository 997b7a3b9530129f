//! Ingest's Redis publisher. redis-rs's `ConnectionManager` reconnects by itself, but we saw
//! it stop answering for good after Redis was killed and restarted: every PUBLISH after the
//! outage hung. This one keeps a multiplexed connection, bounds each publish with a
//! timeout, drops the connection on any error, and opens a new one on the next publish (at
//! most one attempt per `RETRY`), so an outage costs failed publishes, counted, and
//! nothing hangs.

use parking_lot::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use tokio::time::Instant;

/// A publish, or a connection attempt, that takes longer than this has failed.
const TIMEOUT: Duration = Duration::from_secs(1);
/// The least time between two connection attempts.
const RETRY: Duration = Duration::from_millis(200);

pub struct Publisher {
    client: redis::Client,
    state: Mutex<State>,
}

struct State {
    conn: Option<MultiplexedConnection>,
    last_attempt: Option<Instant>,
}

impl Publisher {
    /// Connects once, so that a wrong URL fails at start-up.
    pub async fn connect(client: redis::Client) -> anyhow::Result<Self> {
        let conn = tokio::time::timeout(TIMEOUT * 5, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer within 5 s"))??;
        Ok(Publisher {
            client,
            state: Mutex::new(State {
                conn: Some(conn),
                last_attempt: None,
            }),
        })
    }

    /// Publishes `msg` on `channel`; returns how many subscribers got it.
    pub async fn publish(&self, channel: String, msg: String) -> anyhow::Result<i64> {
        let mut conn = self.connection().await?;
        let result = tokio::time::timeout(TIMEOUT, conn.publish::<_, _, i64>(channel, msg)).await;
        match result {
            Ok(Ok(n)) => Ok(n),
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
        let conn = tokio::time::timeout(TIMEOUT, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| anyhow::anyhow!("connecting to Redis timed out"))??;
        self.state.lock().conn = Some(conn.clone());
        Ok(conn)
    }
}
