//! Database figures as Postgres itself counts them: statement calls from
//! `pg_stat_statements` when it is loaded, otherwise committed transactions from
//! `pg_stat_database`. Our own monitoring statements are left out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::postgres::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    StatStatements,
    XactCommit,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::StatStatements => "pg_stat_statements",
            Source::XactCommit => "pg_stat_database.xact_commit",
        }
    }
}

/// A reading of the counters at one instant.
#[derive(Debug, Clone, Default)]
pub struct DbReading {
    pub total: u64,
    /// Calls per normalized statement text (pg_stat_statements only).
    pub statements: HashMap<String, u64>,
}

/// Clones share one tally of readings, so that with the xact_commit source every
/// transaction of ours (the run's snapshots and the sampler's) is taken out of the count.
#[derive(Clone)]
pub struct DbCounter {
    pool: PgPool,
    pub source: Source,
    /// Readings taken so far by this counter and its clones.
    readings: Arc<AtomicU64>,
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
        DbCounter {
            pool,
            source: if ok {
                Source::StatStatements
            } else {
                Source::XactCommit
            },
            readings: Arc::new(AtomicU64::new(0)),
        }
    }

    pub async fn read(&mut self) -> anyhow::Result<DbReading> {
        let ours = self.readings.fetch_add(1, Ordering::Relaxed) + 1;
        match self.source {
            Source::StatStatements => {
                // Our own statements all mention pg_stat: leaving them out keeps the count to
                // what the systems under test asked for.
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT query, sum(calls)::bigint FROM pg_stat_statements \
                     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     AND query NOT ILIKE '%pg_stat%' GROUP BY query",
                )
                .fetch_all(&self.pool)
                .await?;
                let statements: HashMap<String, u64> =
                    rows.into_iter().map(|(q, c)| (q, c as u64)).collect();
                Ok(DbReading {
                    total: statements.values().sum(),
                    statements,
                })
            }
            Source::XactCommit => {
                let commits: i64 = sqlx::query_scalar(
                    "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(DbReading {
                    total: (commits as u64).saturating_sub(ours),
                    statements: HashMap::new(),
                })
            }
        }
    }
}

/// Per-statement calls between two readings, most frequent first.
pub fn statement_deltas(start: &DbReading, end: &DbReading) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = end
        .statements
        .iter()
        .map(|(q, &c)| {
            (
                q.clone(),
                c.saturating_sub(*start.statements.get(q).unwrap_or(&0)),
            )
        })
        .filter(|(_, c)| *c > 0)
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}
