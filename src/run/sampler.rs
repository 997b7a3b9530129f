//! Once a second through the measurement window: requests, deliveries, queries counted by
//! Postgres and what the database did for them (commits, tuples, blocks), Redis's own
//! counters, bytes, connections, and the CPU and memory of every component, as rates (or,
//! for memory and gauges, levels) over that second. The sampler's own statements and
//! commands are left out of the counts like the run's are.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::usage::Pids;
use crate::metrics::db::{DbActivity, DbCounter};
use crate::metrics::redis_info::{RedisCounter, RedisReading};
use crate::result::{CpuSeconds, DbRates, Memory, RedisRates, Sample};
use crate::swarm::{Live, Meter};

pub struct Sources {
    pub counter: DbCounter,
    pub redis: Option<RedisCounter>,
    pub pids: Pids,
    pub meter: Arc<Meter>,
    pub live: Arc<Live>,
}

struct Reading {
    at: Instant,
    requests: u64,
    deliveries: u64,
    queries: Option<u64>,
    activity: Option<DbActivity>,
    redis: Option<RedisReading>,
    bytes: u64,
    cpu: CpuSeconds,
}

async fn read(src: &mut Sources) -> Reading {
    let at = Instant::now();
    let (i, o) = src.meter.read();
    // /proc is read on a blocking thread: a few ms of file reads on a runtime worker would
    // delay the swarm's own receipts and show up in the latency tail it measures.
    let pids = src.pids.clone();
    let cpu = tokio::task::spawn_blocking(move || CpuSeconds::read(&pids));
    let db = match src.counter.source {
        crate::metrics::db::Source::None => None,
        _ => src.counter.read().await.ok(),
    };
    let redis = match src.redis.as_mut() {
        Some(r) => r.read().await.ok(),
        None => None,
    };
    Reading {
        at,
        requests: src.live.requests.load(Ordering::Relaxed),
        deliveries: src.live.deliveries.load(Ordering::Relaxed),
        bytes: i + o,
        cpu: cpu.await.unwrap_or_default(),
        queries: db.as_ref().map(|r| r.total),
        activity: db.and_then(|r| r.activity),
        redis,
    }
}

async fn read_memory(pids: &Pids) -> Memory {
    let pids = pids.clone();
    tokio::task::spawn_blocking(move || Memory::read(&pids))
        .await
        .unwrap_or_default()
}

/// Samples from now until `end`, one row per second.
pub async fn sample(src: Sources, end: Instant) -> Vec<Sample> {
    let mut sampler = Sampler::new(src).await;
    let mut out = Vec::new();
    let mut tick = tokio::time::interval_at(
        sampler.start + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    loop {
        tick.tick().await;
        if Instant::now() > end + Duration::from_millis(200) {
            break;
        }
        out.push(sampler.next().await);
        if Instant::now() >= end {
            break;
        }
    }
    out
}

/// Reads the sources and turns two readings into one row of rates: the run's window
/// takes a row a second until its end, a live demo for as long as it goes.
pub struct Sampler {
    pub src: Sources,
    start: Instant,
    prev: Reading,
}

impl Sampler {
    /// Takes the first reading: rates start from now.
    pub async fn new(mut src: Sources) -> Self {
        let start = Instant::now();
        let prev = read(&mut src).await;
        Sampler { src, start, prev }
    }

    /// The rates since the last reading (or the start).
    pub async fn next(&mut self) -> Sample {
        let cur = read(&mut self.src).await;
        let prev = std::mem::replace(&mut self.prev, cur);
        let cur = &self.prev;
        let dt = cur.at.duration_since(prev.at).as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / dt;
        let cpu = cur.cpu.since(&prev.cpu);
        let cores = |c: Option<f64>| c.map(|c| (c / dt * 1000.0).round() / 1000.0);
        let db = match (prev.activity, cur.activity) {
            (Some(a), Some(b)) => {
                let d = b.since(&a);
                Some(DbRates {
                    commits_per_s: d.commits as f64 / dt,
                    tuples_returned_per_s: d.tuples_returned as f64 / dt,
                    tuples_fetched_per_s: d.tuples_fetched as f64 / dt,
                    blocks_hit_per_s: d.blocks_hit as f64 / dt,
                    blocks_read_per_s: d.blocks_read as f64 / dt,
                })
            }
            _ => None,
        };
        // A Redis restarted within the second (a fault) has no rate for it: unknown.
        let redis_delta = match (prev.redis, cur.redis) {
            (Some(a), Some(b)) => b.since(&a),
            _ => None,
        };
        let redis = redis_delta.map(|d| RedisRates {
            commands_per_s: d.commands as f64 / dt,
            net_in_bytes_per_s: d.net_in_bytes as f64 / dt,
            net_out_bytes_per_s: d.net_out_bytes as f64 / dt,
            pubsub_channels: d.pubsub_channels,
        });
        Sample {
            t_s: (cur.at.duration_since(self.start).as_secs_f64() * 10.0).round() / 10.0,
            requests_per_s: rate(prev.requests, cur.requests),
            deliveries_per_s: rate(prev.deliveries, cur.deliveries),
            db_queries_per_s: match (prev.queries, cur.queries) {
                (Some(a), Some(b)) => Some(rate(a, b)),
                _ => None,
            },
            db,
            redis,
            bytes_per_s: rate(prev.bytes, cur.bytes),
            connections: self.src.live.connections.load(Ordering::Relaxed),
            server_cores: cores(cpu.server),
            ingest_cores: cores(cpu.ingest),
            db_cores: cores(cpu.db),
            // Redis's own CPU count stands in where /proc cannot see it (a remote Redis).
            redis_cores: cores(cpu.redis.or(redis_delta.map(|d| d.cpu_s))),
            swarm_cores: cores(cpu.swarm),
            memory: read_memory(&self.src.pids).await,
        }
    }
}
