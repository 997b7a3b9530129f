//! Readings at the edges of a window (Postgres's count, the servers' own counters, CPU,
//! bytes) and the arithmetic that turns two of them into the window's figures.

use std::time::SystemTime;

use tokio::time::Instant;

use super::servers::ServerProcess;
use super::usage::Pids;
use crate::metrics::db::{DbCounter, DbReading};
use crate::metrics::redis_info::{RedisCounter, RedisReading};
use crate::result::CpuSeconds;
use crate::swarm::Meter;
use crate::wire::StatsSnapshot;

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
    /// Each server's memory as its Prometheus endpoint reported it (MiB); None without one.
    pub reported_rss_mb: Vec<Option<f64>>,
    pub bytes: (u64, u64),
    pub redis: Option<RedisReading>,
    /// Each node's reading, when Redis is a cluster (empty otherwise).
    pub redis_nodes: Vec<RedisReading>,
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
    let mut cpu = CpuSeconds::read(pids);
    // Servers that are no process here may report their CPU and memory themselves.
    let reported =
        futures_util::future::join_all(servers.iter().map(|s| s.process_figures())).await;
    for (slot, figures) in cpu.instances.iter_mut().zip(&reported) {
        if slot.is_none() {
            *slot = figures.cpu_seconds;
        }
    }
    cpu.server = crate::result::known_sum(&cpu.instances);
    // An ingest API that is one of the mode's servers used no CPU of its own: it is
    // counted in that server's, so the servers' total is known once theirs is.
    if cpu.ingest.is_none() && ingest.is_one_of(servers) {
        cpu.ingest = Some(0.0);
    }
    let reported_rss_mb = reported.iter().map(|f| f.rss_mb).collect();
    let db = counter.read().await?;
    let nodes = match redis.as_mut() {
        Some(r) => r.read_each().await.ok(),
        None => None,
    };
    let redis = nodes.as_deref().map(RedisReading::sum);
    let redis_nodes = nodes.filter(|n| n.len() > 1).unwrap_or_default();
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
        reported_rss_mb,
        bytes,
        redis,
        redis_nodes,
    })
}
