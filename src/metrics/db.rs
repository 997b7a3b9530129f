//! Database figures as Postgres itself counts them: statement calls from
//! `pg_stat_statements` when it is loaded (top-level statements only: those a client
//! sent), otherwise committed transactions from
//! `pg_stat_database`. Our own monitoring statements are left out. Beside the count, the
//! database's activity (commits, tuples, blocks) from the `pg_stat_get_db_*` functions,
//! which read no table, so our readings add nothing to the tuples and blocks they report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::postgres::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    StatStatements,
    XactCommit,
    /// No database to read (`swarm` without `--database-url`): every figure is unknown.
    None,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::StatStatements => "pg_stat_statements",
            Source::XactCommit => "pg_stat_database.xact_commit",
            Source::None => "none",
        }
    }
}

/// A reading of the counters at one instant.
#[derive(Debug, Clone, Default)]
pub struct DbReading {
    pub total: u64,
    /// Calls and total execution time (ms) per normalized statement text
    /// (pg_stat_statements only).
    pub statements: HashMap<String, (u64, f64)>,
    /// The database's counters; None when they could not be read.
    pub activity: Option<DbActivity>,
}

/// Cumulative counters of the database, as `pg_stat_database` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbActivity {
    /// Committed transactions, ours taken out.
    pub commits: u64,
    /// Tuples read by sequential scans and index scans (before filtering).
    pub tuples_returned: u64,
    /// Tuples fetched by index scans.
    pub tuples_fetched: u64,
    /// Buffer reads found in shared buffers.
    pub blocks_hit: u64,
    /// Buffer reads that went to the OS (page cache or disk).
    pub blocks_read: u64,
}

impl DbActivity {
    /// Counters between `earlier` and this reading.
    pub fn since(&self, earlier: &DbActivity) -> DbActivity {
        DbActivity {
            commits: self.commits.saturating_sub(earlier.commits),
            tuples_returned: self.tuples_returned.saturating_sub(earlier.tuples_returned),
            tuples_fetched: self.tuples_fetched.saturating_sub(earlier.tuples_fetched),
            blocks_hit: self.blocks_hit.saturating_sub(earlier.blocks_hit),
            blocks_read: self.blocks_read.saturating_sub(earlier.blocks_read),
        }
    }
}

/// Clones share one tally of readings, so that with the xact_commit source every
/// transaction of ours (the run's snapshots and the sampler's) is taken out of the count.
#[derive(Clone)]
pub struct DbCounter {
    pool: Option<PgPool>,
    pub source: Source,
    /// Transactions our readings committed so far, this counter's and its clones'.
    commits: Arc<AtomicU64>,
    /// The database's oid, so that readings need no catalog scan.
    dbid: Option<u32>,
    /// pg_stat_statements has a `toplevel` column (PostgreSQL 14 and later): statements
    /// Postgres runs inside others (a foreign-key check inside an INSERT, under
    /// `pg_stat_statements.track = all`) are left out, so a query is one a client sent.
    toplevel: bool,
}

impl DbCounter {
    /// Uses pg_stat_statements when it can be created and read, else pg_stat_database.
    pub async fn new(pool: PgPool) -> Self {
        let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&pool)
            .await;
        let ok = sqlx::query("SELECT 1 FROM pg_stat_statements LIMIT 1")
            .fetch_optional(&pool)
            .await
            .is_ok();
        let toplevel = ok
            && sqlx::query("SELECT toplevel FROM pg_stat_statements LIMIT 1")
                .fetch_optional(&pool)
                .await
                .is_ok();
        let dbid: Option<i64> = sqlx::query_scalar(
            "SELECT oid::bigint FROM pg_database WHERE datname = current_database()",
        )
        .fetch_optional(&pool)
        .await
        .ok()
        .flatten();
        DbCounter {
            pool: Some(pool),
            source: if ok {
                Source::StatStatements
            } else {
                Source::XactCommit
            },
            commits: Arc::new(AtomicU64::new(0)),
            dbid: dbid.map(|d| d as u32),
            toplevel,
        }
    }

    /// A counter with no database: readings are empty and the source says `none`.
    pub fn absent() -> Self {
        DbCounter {
            pool: None,
            source: Source::None,
            commits: Arc::new(AtomicU64::new(0)),
            dbid: None,
            toplevel: false,
        }
    }

    /// The database's counters; our statement is one commit, taken out with the rest of
    /// ours.
    async fn activity(&self) -> anyhow::Result<DbActivity> {
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no database"))?;
        let dbid = self
            .dbid
            .ok_or_else(|| anyhow::anyhow!("the database's oid is unknown"))?;
        let ours = self.commits.fetch_add(1, Ordering::Relaxed) + 1;
        let (commits, returned, fetched, blocks, hit): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT pg_stat_get_db_xact_commit($1::oid), pg_stat_get_db_tuples_returned($1::oid), \
             pg_stat_get_db_tuples_fetched($1::oid), pg_stat_get_db_blocks_fetched($1::oid), \
             pg_stat_get_db_blocks_hit($1::oid)",
        )
        .bind(dbid as i64)
        .fetch_one(pool)
        .await?;
        Ok(DbActivity {
            commits: (commits as u64).saturating_sub(ours),
            tuples_returned: returned as u64,
            tuples_fetched: fetched as u64,
            blocks_hit: hit as u64,
            blocks_read: (blocks - hit).max(0) as u64,
        })
    }

    pub async fn read(&mut self) -> anyhow::Result<DbReading> {
        let activity = self.activity().await.ok();
        let Some(pool) = &self.pool else {
            return Ok(DbReading::default());
        };
        match self.source {
            Source::None => Ok(DbReading::default()),
            Source::StatStatements => {
                // Our own statements all mention pg_stat: leaving them out keeps the count to
                // what the systems under test asked for.
                self.commits.fetch_add(1, Ordering::Relaxed);
                let sql = if self.toplevel {
                    "SELECT query, sum(calls)::bigint, sum(total_exec_time)::float8 \
                     FROM pg_stat_statements WHERE dbid = $1::oid AND toplevel \
                     AND query NOT ILIKE '%pg_stat%' GROUP BY query"
                } else {
                    "SELECT query, sum(calls)::bigint, sum(total_exec_time)::float8 \
                     FROM pg_stat_statements WHERE dbid = $1::oid \
                     AND query NOT ILIKE '%pg_stat%' GROUP BY query"
                };
                let rows: Vec<(String, i64, f64)> = sqlx::query_as(sql)
                    .bind(self.dbid.unwrap_or(0) as i64)
                    .fetch_all(pool)
                    .await?;
                let statements: HashMap<String, (u64, f64)> = rows
                    .into_iter()
                    .map(|(q, c, ms)| (q, (c as u64, ms)))
                    .collect();
                Ok(DbReading {
                    total: statements.values().map(|s| s.0).sum(),
                    statements,
                    activity,
                })
            }
            Source::XactCommit => {
                let activity =
                    activity.ok_or_else(|| anyhow::anyhow!("cannot read pg_stat_database"))?;
                Ok(DbReading {
                    total: activity.commits,
                    statements: HashMap::new(),
                    activity: Some(activity),
                })
            }
        }
    }
}

/// One statement over a window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatementDelta {
    pub query: String,
    pub calls: u64,
    /// Execution time of those calls, ms (as pg_stat_statements sums it).
    pub total_ms: f64,
}

/// Per-statement calls between two readings, most frequent first.
pub fn statement_deltas(start: &DbReading, end: &DbReading) -> Vec<StatementDelta> {
    let mut out: Vec<StatementDelta> = end
        .statements
        .iter()
        .map(|(q, &(c, ms))| {
            let (c0, ms0) = start.statements.get(q).copied().unwrap_or((0, 0.0));
            StatementDelta {
                query: q.clone(),
                calls: c.saturating_sub(c0),
                total_ms: (ms - ms0).max(0.0),
            }
        })
        .filter(|d| d.calls > 0)
        .collect();
    out.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.query.cmp(&b.query)));
    out
}
