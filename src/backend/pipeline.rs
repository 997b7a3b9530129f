//! The statements every poll runs (its session lookup and its read), over a few
//! long-lived, pipelining Postgres connections (tokio-postgres).
//!
//! Through the sqlx pool each poll cost two round trips to Postgres: the query, then the
//! pool's own check of the connection as it takes it back (sqlx 0.8 sends a Sync and waits
//! for the answer on every release; it cannot be turned off). Here a poll is one Bind,
//! Execute and Sync on a connection that stays open, and the polls in flight at once share
//! each connection's writes: the server sends several polls' statements in one write, and
//! a Postgres backend answers them one after the other without waiting on the network.
//! Each poll is still its own statement and its own implicit transaction: Postgres counts
//! exactly as many as before.
//!
//! A connection that broke (Postgres restarted) is noticed by the next poll on its lane,
//! which opens a new one; a poll that cannot get a connection within 2 s answers 503, as
//! the pool does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, NoTls, Statement};

use super::db;

/// How long a poll waits for a connection (opening one included) before it answers 503.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no database connection within {CONNECT_TIMEOUT:?}")]
    TimedOut,
}

/// A few pipelining connections, used round-robin.
pub struct Pipeline {
    config: tokio_postgres::Config,
    lanes: Vec<tokio::sync::Mutex<Option<Arc<Lane>>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("lanes", &self.lanes.len())
            .finish_non_exhaustive()
    }
}

/// One open connection and its prepared statements.
struct Lane {
    client: Client,
    after: Statement,
    token: Statement,
}

impl Pipeline {
    /// `lanes` connections to the database at `url`, opened on first use. An error when
    /// tokio-postgres cannot read the URL (a parameter only sqlx knows): the caller then
    /// keeps to the pool.
    pub fn new(url: &str, lanes: usize) -> Result<Self, tokio_postgres::Error> {
        let config: tokio_postgres::Config = url.parse()?;
        Ok(Pipeline {
            config,
            lanes: (0..lanes.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// Up to `limit` notifications of `user` with id greater than `after`, oldest first,
    /// as (id, payload JSON text).
    pub async fn notifications_after(
        &self,
        user: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, PipelineError> {
        let lane = self.lane().await?;
        let rows = lane
            .client
            .query(&lane.after, &[&user, &after, &limit])
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// The user of a live session with this token.
    pub async fn user_for_token(&self, token: &str) -> Result<Option<i64>, PipelineError> {
        let lane = self.lane().await?;
        let hash = crate::token::hash(token);
        let row = lane.client.query_opt(&lane.token, &[&hash]).await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// The next lane's connection, opened again when it broke.
    async fn lane(&self) -> Result<Arc<Lane>, PipelineError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        let get = async {
            let mut slot = self.lanes[i].lock().await;
            if let Some(lane) = slot.as_ref().filter(|l| !l.client.is_closed()) {
                return Ok(lane.clone());
            }
            *slot = None;
            let lane = Arc::new(self.open().await?);
            *slot = Some(lane.clone());
            Ok::<_, PipelineError>(lane)
        };
        tokio::time::timeout(CONNECT_TIMEOUT, get)
            .await
            .map_err(|_| PipelineError::TimedOut)?
    }

    async fn open(&self) -> Result<Lane, PipelineError> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::warn!(cause = %err, "a pipelined database connection ended");
            }
        });
        let after = client.prepare(db::NOTIFICATIONS_AFTER).await?;
        let token = client.prepare(db::USER_FOR_TOKEN).await?;
        tracing::debug!("pipelined database connection open");
        Ok(Lane {
            client,
            after,
            token,
        })
    }
}
