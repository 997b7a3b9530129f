//! Once a second through the measurement window: requests, deliveries, queries counted by
//! Postgres, bytes, connections and the CPU of every component, as rates over that second.
//! The sampler's own statements are left out of the query count like the run's are.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{CpuSeconds, Pids};
use crate::metrics::db::DbCounter;
use crate::swarm::{Live, Meter};

/// One second of one mode.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the window opened, at the end of this sample.
    pub t_s: f64,
    pub requests_per_s: f64,
    pub deliveries_per_s: f64,
    /// Counted by Postgres; None when it could not be read.
    pub db_queries_per_s: Option<f64>,
    pub bytes_per_s: f64,
    pub connections: i64,
    pub server_cores: Option<f64>,
    pub ingest_cores: Option<f64>,
    pub db_cores: Option<f64>,
    pub redis_cores: Option<f64>,
    pub swarm_cores: Option<f64>,
}

pub struct Sources {
    pub counter: DbCounter,
    pub pids: Pids,
    pub meter: Arc<Meter>,
    pub live: Arc<Live>,
}

struct Reading {
    at: Instant,
    requests: u64,
    deliveries: u64,
    queries: Option<u64>,
    bytes: u64,
    cpu: CpuSeconds,
}

async fn read(src: &mut Sources) -> Reading {
    let at = Instant::now();
    let (i, o) = src.meter.read();
    Reading {
        at,
        requests: src.live.requests.load(Ordering::Relaxed),
        deliveries: src.live.deliveries.load(Ordering::Relaxed),
        bytes: i + o,
        cpu: CpuSeconds::read(&src.pids),
        queries: src.counter.read().await.ok().map(|r| r.total),
    }
}

/// Samples from now until `end`, one row per second.
pub async fn sample(mut src: Sources, end: Instant) -> Vec<Sample> {
    let start = Instant::now();
    let mut prev = read(&mut src).await;
    let mut out = Vec::new();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    loop {
        tick.tick().await;
        if Instant::now() > end + Duration::from_millis(200) {
            break;
        }
        let cur = read(&mut src).await;
        let dt = cur.at.duration_since(prev.at).as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / dt;
        let cpu = cur.cpu.since(&prev.cpu);
        let cores = |c: Option<f64>| c.map(|c| (c / dt * 1000.0).round() / 1000.0);
        out.push(Sample {
            t_s: (cur.at.duration_since(start).as_secs_f64() * 10.0).round() / 10.0,
            requests_per_s: rate(prev.requests, cur.requests),
            deliveries_per_s: rate(prev.deliveries, cur.deliveries),
            db_queries_per_s: match (prev.queries, cur.queries) {
                (Some(a), Some(b)) => Some(rate(a, b)),
                _ => None,
            },
            bytes_per_s: rate(prev.bytes, cur.bytes),
            connections: src.live.connections.load(Ordering::Relaxed),
            server_cores: cores(cpu.server),
            ingest_cores: cores(cpu.ingest),
            db_cores: cores(cpu.db),
            redis_cores: cores(cpu.redis),
            swarm_cores: cores(cpu.swarm),
        });
        prev = cur;
        if Instant::now() >= end {
            break;
        }
    }
    out
}
