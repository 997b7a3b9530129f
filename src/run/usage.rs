//! Reading the CPU and memory of a run's processes from `/proc`.

use crate::procs;
use crate::result::{CpuSeconds, Memory};

impl Memory {
    pub fn read(p: &Pids) -> Self {
        Memory {
            server_rss_mb: p
                .servers
                .iter()
                .map(|pid| pid.and_then(procs::rss_mb))
                .sum(),
            ingest_rss_mb: p.ingest.and_then(procs::rss_mb),
            db_pss_mb: p.postgres.and_then(procs::tree_pss_mb),
            redis_rss_mb: p.redis.and_then(procs::rss_mb),
            swarm_rss_mb: procs::rss_mb(p.swarm),
        }
    }
}

/// The processes whose CPU a run reads.
#[derive(Debug, Clone)]
pub struct Pids {
    /// The mode's server processes (one per gateway instance); None for servers we did
    /// not start.
    pub servers: Vec<Option<u32>>,
    pub ingest: Option<u32>,
    pub postgres: Option<u32>,
    pub redis: Option<u32>,
    pub swarm: u32,
}

impl CpuSeconds {
    /// CPU seconds used so far by each component.
    pub fn read(p: &Pids) -> Self {
        // One reading per server for its total and its kernel part, so that the part is
        // never from a later instant than the whole.
        let stats: Vec<Option<procs::ProcStat>> = p
            .servers
            .iter()
            .map(|pid| pid.and_then(procs::proc_stat))
            .collect();
        let instances: Vec<Option<f64>> = stats.iter().map(|s| s.map(|s| s.cpu_s)).collect();
        CpuSeconds {
            server: crate::result::known_sum(&instances),
            instances,
            instances_system: stats.iter().map(|s| s.map(|s| s.system_s)).collect(),
            ingest: p.ingest.and_then(procs::cpu_seconds),
            db: p.postgres.and_then(procs::tree_cpu_seconds),
            redis: p.redis.and_then(procs::cpu_seconds),
            swarm: procs::cpu_seconds(p.swarm),
        }
    }
}
