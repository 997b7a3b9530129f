//! What a run measured, as plain data: one [`RunResult`] with a [`ModeResult`] per mode.
//! The run engine fills it in; the report turns it into files and tables. Nothing here
//! reads a process or a server.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::Mode;
use crate::metrics::aggregator::{FaultOutcome, Outcome};
use crate::metrics::db::{DbActivity, StatementDelta};
use crate::metrics::redis_info::RedisReading;
use crate::scenario::{Fault, Plan};
use crate::wire::StatsSnapshot;
use crate::workload::WorkloadStats;

/// CPU seconds used by each component over a window; None where it cannot be read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpuSeconds {
    /// The mode's server processes together.
    pub server: Option<f64>,
    /// Each server process of the mode (gateway instances), in index order.
    pub instances: Vec<Option<f64>>,
    /// Of each instance's, the part in the kernel (from /proc: None for a server that
    /// reports its CPU through /metrics).
    #[serde(default)]
    pub instances_system: Vec<Option<f64>>,
    pub ingest: Option<f64>,
    pub db: Option<f64>,
    pub redis: Option<f64>,
    pub swarm: Option<f64>,
}

impl CpuSeconds {
    /// The servers' CPU as the summary reports it: the mode's servers and the ingest API.
    pub fn servers_and_ingest(&self) -> Option<f64> {
        Some(self.server? + self.ingest?)
    }

    /// CPU seconds used between `earlier` and this reading.
    pub fn since(&self, earlier: &CpuSeconds) -> CpuSeconds {
        // Each instance's change, index by index.
        let deltas = |now: &[Option<f64>], then: &[Option<f64>]| -> Vec<Option<f64>> {
            now.iter()
                .enumerate()
                .map(|(i, &b)| delta(then.get(i).copied().flatten(), b))
                .collect()
        };
        let instances = deltas(&self.instances, &earlier.instances);
        CpuSeconds {
            server: known_sum(&instances),
            instances,
            instances_system: deltas(&self.instances_system, &earlier.instances_system),
            ingest: delta(earlier.ingest, self.ingest),
            db: delta(earlier.db, self.db),
            redis: delta(earlier.redis, self.redis),
            swarm: delta(earlier.swarm, self.swarm),
        }
    }
}

/// The instances that could be read together (one killed by a fault cannot); None when
/// none could (servers we did not start).
pub(crate) fn known_sum(instances: &[Option<f64>]) -> Option<f64> {
    instances
        .iter()
        .any(Option::is_some)
        .then(|| instances.iter().flatten().sum())
}

/// The change from `a` to `b`, when both could be read. A counter that went backwards (a process restarted unseen) gives None, not 0.
fn delta(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let d = b? - a?;
    (d >= 0.0).then_some(d)
}

/// Memory of each component at one instant, MiB; None where it cannot be read.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Memory {
    /// RSS of the mode's server processes together.
    pub server_rss_mb: Option<f64>,
    pub ingest_rss_mb: Option<f64>,
    /// PSS of every Postgres process together (shared buffers counted once).
    pub db_pss_mb: Option<f64>,
    pub redis_rss_mb: Option<f64>,
    pub swarm_rss_mb: Option<f64>,
}

/// The machine and service versions a run was measured on (also `machine` in
/// summary.json).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Machine {
    pub cores: usize,
    pub memory_mb: Option<u64>,
    pub os: String,
    pub kernel: String,
    pub postgres_version: Option<String>,
    pub redis_version: Option<String>,
    /// True when Postgres and Redis were started by the run.
    pub ephemeral_services: bool,
}

/// One second of one mode.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the window opened, at the end of this sample.
    pub t_s: f64,
    pub requests_per_s: f64,
    pub deliveries_per_s: f64,
    /// Counted by Postgres; None when it could not be read.
    pub db_queries_per_s: Option<f64>,
    /// Postgres's database counters over this second; None when unreadable.
    pub db: Option<DbRates>,
    /// Redis's counters over this second; None when unreadable.
    pub redis: Option<RedisRates>,
    pub bytes_per_s: f64,
    pub connections: i64,
    pub server_cores: Option<f64>,
    pub ingest_cores: Option<f64>,
    pub db_cores: Option<f64>,
    pub redis_cores: Option<f64>,
    pub swarm_cores: Option<f64>,
    /// Memory at the end of this second.
    pub memory: Memory,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct DbRates {
    pub commits_per_s: f64,
    pub tuples_returned_per_s: f64,
    pub tuples_fetched_per_s: f64,
    pub blocks_hit_per_s: f64,
    pub blocks_read_per_s: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RedisRates {
    pub commands_per_s: f64,
    pub net_in_bytes_per_s: f64,
    pub net_out_bytes_per_s: f64,
    pub pubsub_channels: u64,
}

impl Sample {
    /// The servers' cores over this second as the summary counts them: the mode's servers
    /// and the ingest API.
    pub fn servers_and_ingest_cores(&self) -> Option<f64> {
        Some(self.server_cores? + self.ingest_cores?)
    }

    /// The columns of `timeseries.csv` after `repeat,mode`, each with this sample's
    /// value (empty where unknown). Header and rows come from here, so they cannot drift.
    pub fn csv_fields(&self) -> Vec<(&'static str, String)> {
        let f = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
        let r = |v: f64| format!("{}", v.round());
        let db = self.db;
        let rd = self.redis;
        let m = &self.memory;
        vec![
            ("t_s", format!("{}", self.t_s)),
            ("requests_per_s", r(self.requests_per_s)),
            ("deliveries_per_s", r(self.deliveries_per_s)),
            ("db_queries_per_s", f(self.db_queries_per_s.map(f64::round))),
            ("bytes_per_s", r(self.bytes_per_s)),
            ("connections", self.connections.to_string()),
            ("server_cores", f(self.server_cores)),
            ("ingest_cores", f(self.ingest_cores)),
            ("db_cores", f(self.db_cores)),
            ("redis_cores", f(self.redis_cores)),
            ("swarm_cores", f(self.swarm_cores)),
            ("db_commits_per_s", f(db.map(|d| d.commits_per_s.round()))),
            (
                "db_tuples_returned_per_s",
                f(db.map(|d| d.tuples_returned_per_s.round())),
            ),
            (
                "db_tuples_fetched_per_s",
                f(db.map(|d| d.tuples_fetched_per_s.round())),
            ),
            (
                "db_blocks_hit_per_s",
                f(db.map(|d| d.blocks_hit_per_s.round())),
            ),
            (
                "db_blocks_read_per_s",
                f(db.map(|d| d.blocks_read_per_s.round())),
            ),
            (
                "redis_commands_per_s",
                f(rd.map(|d| d.commands_per_s.round())),
            ),
            (
                "redis_net_in_bytes_per_s",
                f(rd.map(|d| d.net_in_bytes_per_s.round())),
            ),
            (
                "redis_net_out_bytes_per_s",
                f(rd.map(|d| d.net_out_bytes_per_s.round())),
            ),
            (
                "redis_pubsub_channels",
                f(rd.map(|d| d.pubsub_channels as f64)),
            ),
            ("server_rss_mb", f(m.server_rss_mb)),
            ("ingest_rss_mb", f(m.ingest_rss_mb)),
            ("db_pss_mb", f(m.db_pss_mb)),
            ("redis_rss_mb", f(m.redis_rss_mb)),
            ("swarm_rss_mb", f(m.swarm_rss_mb)),
        ]
    }
}

/// One gateway instance over the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceResult {
    pub index: usize,
    /// Its counters over the window (connections as at the window's end).
    pub stats: StatsSnapshot,
    /// Client connections it held when the window opened.
    pub connections: i64,
    pub cpu_s: Option<f64>,
    /// Of `cpu_s`, the seconds in the kernel (None where only the total is known).
    #[serde(default)]
    pub cpu_system_s: Option<f64>,
    pub rss_mb: Option<f64>,
}

/// One fault of the window and what it did.
#[derive(Debug, Clone)]
pub struct FaultResult {
    pub fault: Fault,
    /// Seconds after the window opened that it fired.
    pub at_s: f64,
    pub outcome: FaultOutcome,
    /// The highest per-second readings in the 10 s after it: the load of catch-up and
    /// reconnect storms.
    pub db_queries_peak_per_s: Option<f64>,
    pub server_cores_peak: Option<f64>,
    /// Why the fault did not happen as the scenario says; None when it did.
    pub failed: Option<String>,
}

/// The measured figures of one mode. A shard writes it to `shard.json` (faults aside:
/// sharded runs take none) for `merge`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModeResult {
    pub mode: Mode,
    pub users: u64,
    pub window_start: SystemTime,
    pub window_end: SystemTime,
    /// Measured length of the window, seconds.
    pub window_s: f64,
    pub outcome: Outcome,
    /// Statements counted by Postgres over the window.
    pub db_queries: u64,
    /// Statements the server processes say they sent over the window.
    pub backend_queries: u64,
    pub db_statements: Vec<StatementDelta>,
    pub cpu: CpuSeconds,
    /// Memory as the window closed.
    pub memory: Memory,
    /// Postgres's database counters over the window.
    pub db_activity: Option<DbActivity>,
    /// Redis's counters over the window (pub/sub channels: as it closed).
    pub redis: Option<RedisReading>,
    /// Each master's counters over the window, when Redis is a cluster (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redis_nodes: Vec<RedisReading>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Client connections open when the window started.
    pub connections: i64,
    /// Server-side counters over the window (mode server and ingest together).
    pub server: StatsSnapshot,
    /// False when a server driven by `swarm` has no `/stats`: `server`, the instances'
    /// counters and the servers' query count are unknown (written as null).
    pub server_counters: bool,
    /// False when `swarm` has no database to read: every database figure is unknown.
    pub db_known: bool,
    pub workload: WorkloadStats,
    /// One sample per second through the window.
    pub samples: Vec<Sample>,
    /// Push: one entry per gateway instance.
    pub instances: Vec<InstanceResult>,
    #[serde(skip)]
    pub faults: Vec<FaultResult>,
    /// Poll: bytes of one empty poll besides its body (request line and headers, status
    /// line and headers), measured on a probe connection before the ramp.
    pub probe_header_bytes: Option<u64>,
    /// Simulated clients whose task panicked (a bug in the swarm, never expected).
    pub client_panics: u64,
    /// Push: the ramp over which the clients' first connections were spread, s, and how
    /// long after its start every client was connected (None: not before the window).
    pub ramp_s: f64,
    pub all_connected_s: Option<f64>,
}

#[derive(Debug)]
pub struct RunResult {
    pub plan: Plan,
    pub started_at: SystemTime,
    pub machine: Machine,
    pub db_source: String,
    /// Which shard of a sharded run this is; None for a whole run.
    pub shard: Option<ShardInfo>,
    pub modes: Vec<ModeResult>,
}

impl RunResult {
    /// A result in which nothing was measured: the shape of a summary for this plan, used
    /// to know which figures exist before anything runs.
    pub fn template(plan: &Plan) -> Self {
        RunResult {
            plan: plan.clone(),
            started_at: SystemTime::UNIX_EPOCH,
            machine: Machine {
                cores: 0,
                memory_mb: None,
                os: String::new(),
                kernel: String::new(),
                postgres_version: None,
                redis_version: None,
                ephemeral_services: false,
            },
            db_source: String::new(),
            shard: None,
            modes: plan
                .modes
                .iter()
                .map(|&mode| ModeResult {
                    server_counters: true,
                    db_known: true,
                    mode,
                    users: plan.users,
                    window_start: SystemTime::UNIX_EPOCH,
                    window_end: SystemTime::UNIX_EPOCH,
                    window_s: 0.0,
                    outcome: Outcome::empty(),
                    db_queries: 0,
                    backend_queries: 0,
                    db_statements: Vec::new(),
                    cpu: CpuSeconds::default(),
                    memory: Memory::default(),
                    db_activity: None,
                    redis: None,
                    redis_nodes: Vec::new(),
                    bytes_in: 0,
                    bytes_out: 0,
                    connections: 0,
                    server: StatsSnapshot::default(),
                    workload: WorkloadStats::default(),
                    samples: Vec::new(),
                    instances: match mode {
                        Mode::Poll => Vec::new(),
                        Mode::Push => (0..plan.push.instances)
                            .map(|index| InstanceResult {
                                index,
                                stats: StatsSnapshot::default(),
                                connections: 0,
                                cpu_s: None,
                                cpu_system_s: None,
                                rss_mb: None,
                            })
                            .collect(),
                    },
                    // Every mode's window sees every fault of the plan that applies to it.
                    faults: plan
                        .faults
                        .iter()
                        .filter(|f| f.action.applies_to(mode))
                        .map(|f| FaultResult {
                            fault: f.clone(),
                            at_s: 0.0,
                            outcome: Default::default(),
                            db_queries_peak_per_s: None,
                            server_cores_peak: None,
                            failed: None,
                        })
                        .collect(),
                    probe_header_bytes: None,
                    client_panics: 0,
                    ramp_s: 0.0,
                    all_connected_s: None,
                })
                .collect(),
        }
    }
}

/// Which part of a run a result is, when the run's users were split over several swarm
/// processes (shards): each shard has its own users and its own share of the events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// The same in every shard of one run, different in every run.
    pub run_id: String,
    pub index: u64,
    pub count: u64,
    /// This shard's clock against the servers', measured before it started (`swarm
    /// --shard` against a server with `GET /clock`); None where it was not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockOffset>,
}

/// A clock's offset from a reference host's, from round-trip time exchanges (the one
/// with the shortest round trip is kept, as NTP's clock filter does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// The host whose clock is the reference (a server's address).
    pub reference: String,
    /// The reference's clock minus this one's, µs: positive when this clock is behind.
    pub offset_us: i64,
    /// Half the shortest round trip: the true offset is within this of `offset_us`, µs.
    pub uncertainty_us: u64,
    /// Exchanges made.
    pub samples: u32,
}

/// What a shard leaves for `merge`: `shard.json`, its raw figures (histograms lossless).
#[derive(Debug, Serialize, Deserialize)]
pub struct ShardFile {
    pub shard: ShardInfo,
    /// The scenario as the shard ran it (TOML), so that shards of different scenarios are
    /// never merged.
    pub scenario: String,
    pub started_at: SystemTime,
    pub machine: Machine,
    pub db_source: String,
    pub modes: Vec<ModeResult>,
}

/// Writes a shard's `shard.json` from borrowed parts, as [`ShardFile`] reads it back.
pub fn write_shard_json(
    path: &std::path::Path,
    shard: &ShardInfo,
    scenario: String,
    started_at: SystemTime,
    machine: &Machine,
    db_source: &str,
    modes: &[ModeResult],
) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        shard: &'a ShardInfo,
        scenario: String,
        started_at: SystemTime,
        machine: &'a Machine,
        db_source: &'a str,
        modes: &'a [ModeResult],
    }
    let text = serde_json::to_string(&Borrowed {
        shard,
        scenario,
        started_at,
        machine,
        db_source,
        modes,
    })?;
    std::fs::write(path, text)
        .map_err(|e| crate::error::input(format!("cannot write {}: {e}", path.display())))
}

impl ShardFile {
    /// A shard folder's `shard.json`.
    pub fn read(dir: &std::path::Path) -> anyhow::Result<ShardFile> {
        let path = dir.join("shard.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            crate::error::input(format!(
                "cannot read {}: {e}; give folders written by `pollpush swarm --shard I/K`",
                path.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            crate::error::input(format!("{} is not a shard's figures: {e}", path.display()))
        })
    }
}

impl ModeResult {
    /// Seconds between the openings of two shards' windows.
    pub fn window_gap(&self, other: &ModeResult) -> f64 {
        match self.window_start.duration_since(other.window_start) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => e.duration().as_secs_f64(),
        }
    }

    /// Adds another shard of the same mode and run. The clients' side adds up: users,
    /// deliveries and losses, latency histograms, polls, bytes, connections, the swarm's CPU
    /// and memory, the workload's events, and each second's client rates. The servers' side
    /// (Postgres, Redis, the servers' CPU and counters) was measured by the first shard
    /// alone, once for the whole run, and stays as it is.
    pub fn absorb_shard(&mut self, o: &ModeResult) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.mode == o.mode,
            "a shard of mode {} cannot be added to mode {}",
            o.mode,
            self.mode
        );
        self.outcome.absorb(&o.outcome)?;
        self.users += o.users;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.connections += o.connections;
        self.client_panics += o.client_panics;
        // Every shard started on one clock: all were connected when the last one was.
        self.all_connected_s = match (self.all_connected_s, o.all_connected_s) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        self.cpu.swarm = add_known(self.cpu.swarm, o.cpu.swarm);
        self.memory.swarm_rss_mb = add_known(self.memory.swarm_rss_mb, o.memory.swarm_rss_mb);
        let (w, ow) = (&mut self.workload, &o.workload);
        w.emitted += ow.emitted;
        w.late += ow.late;
        w.max_lateness_us = w.max_lateness_us.max(ow.max_lateness_us);
        w.span_s = w.span_s.max(ow.span_s);
        w.in_flight_peak += ow.in_flight_peak;
        // The probe poll is made by the first shard only.
        self.probe_header_bytes = self.probe_header_bytes.or(o.probe_header_bytes);
        for (s, os) in self.samples.iter_mut().zip(&o.samples) {
            s.requests_per_s += os.requests_per_s;
            s.deliveries_per_s += os.deliveries_per_s;
            s.bytes_per_s += os.bytes_per_s;
            s.connections += os.connections;
            s.swarm_cores = add_known(s.swarm_cores, os.swarm_cores);
            s.memory.swarm_rss_mb = add_known(s.memory.swarm_rss_mb, os.memory.swarm_rss_mb);
        }
        Ok(())
    }
}

/// The sum of what could be read; None when neither could.
fn add_known(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        _ => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}
