//! Readings at the edges of a window (Postgres's count, the servers' own counters, CPU,
//! bytes) and the arithmetic that turns two of them into the window's figures.

use std::time::SystemTime;

use tokio::time::Instant;

use super::servers::ServerProcess;
use super::{CpuSeconds, Pids};
use crate::backend::StatsSnapshot;
use crate::metrics::db::{DbCounter, DbReading};
use crate::metrics::redis_info::{RedisCounter, RedisReading};
use crate::swarm::Meter;

/// Readings at one edge of the window.
pub struct Snapshot {
    pub at: Instant,
    pub wall: SystemTime,
    pub db: DbReading,
    /// The mode's server processes, in index order.
    pub servers: Vec<StatsSnapshot>,
    pub ingest: StatsSnapshot,
    /// False when a server we drive but did not start has no `/stats`: its counters (and
    /// every figure made of them) are unknown, not zero.
    pub counters_known: bool,
    pub cpu: CpuSeconds,
    pub bytes: (u64, u64),
    pub redis: Option<RedisReading>,
}

pub async fn snapshot(
    counter: &mut DbCounter,
    redis: &mut Option<RedisCounter>,
    servers: &[ServerProcess],
    ingest: &ServerProcess,
    pids: &Pids,
    meter: &Meter,
) -> anyhow::Result<Snapshot> {
    let at = Instant::now();
    let wall = SystemTime::now();
    let bytes = meter.read();
    let cpu = CpuSeconds::read(pids);
    let db = counter.read().await?;
    let redis = match redis.as_mut() {
        Some(r) => r.read().await.ok(),
        None => None,
    };
    let (servers, ingest) = tokio::try_join!(
        futures_util::future::try_join_all(servers.iter().map(|s| s.total_stats())),
        ingest.total_stats()
    )?;
    let counters_known = ingest.is_some() && servers.iter().all(Option::is_some);
    Ok(Snapshot {
        at,
        wall,
        db,
        servers: servers.into_iter().map(Option::unwrap_or_default).collect(),
        ingest: ingest.unwrap_or_default(),
        counters_known,
        cpu,
        bytes,
        redis,
    })
}

/// Applies `f` to each field of two snapshots (the field list lives in one place: the
/// struct).
fn zip_stats(a: &StatsSnapshot, b: &StatsSnapshot, f: impl Fn(i64, i64) -> i64) -> StatsSnapshot {
    let (va, vb) = (serde_json::to_value(a), serde_json::to_value(b));
    let (Ok(serde_json::Value::Object(ma)), Ok(serde_json::Value::Object(mb))) = (va, vb) else {
        return *b;
    };
    let merged: serde_json::Map<String, serde_json::Value> = mb
        .iter()
        .map(|(k, y)| {
            let y = y.as_i64().unwrap_or(0);
            let x = ma.get(k).and_then(|x| x.as_i64()).unwrap_or(0);
            (k.clone(), serde_json::json!(f(x, y)))
        })
        .collect();
    serde_json::from_value(serde_json::Value::Object(merged)).unwrap_or(*b)
}

/// Counters over a window; the connection gauge is as it stands at its end.
pub fn stats_delta(a: &StatsSnapshot, b: &StatsSnapshot) -> StatsSnapshot {
    StatsSnapshot {
        connections: b.connections,
        ..zip_stats(a, b, |x, y| (y - x).max(0))
    }
}

pub fn add_stats(a: &StatsSnapshot, b: &StatsSnapshot) -> StatsSnapshot {
    zip_stats(a, b, |x, y| x + y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_arithmetic_covers_every_field() {
        let a = StatsSnapshot {
            poll_requests: 10,
            connections: 5,
            slow_disconnects: 1,
            ..Default::default()
        };
        let b = StatsSnapshot {
            poll_requests: 25,
            connections: 7,
            slow_disconnects: 4,
            ..Default::default()
        };
        let d = stats_delta(&a, &b);
        assert_eq!(
            (d.poll_requests, d.connections, d.slow_disconnects),
            (15, 7, 3)
        );
        let s = add_stats(&a, &b);
        assert_eq!(
            (s.poll_requests, s.connections, s.slow_disconnects),
            (35, 12, 5)
        );
    }
}
