//! One scenario run: services, server processes, then per mode a ramp, a measurement
//! window with the workload, a drain, and the reconciled figures, as a [`RunResult`].
//! Nothing here formats results for humans: that is [`crate::report`]'s job.

mod machine;
mod progress;
pub mod sampler;
mod servers;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use machine::read_machine;
pub use machine::Machine;
pub use progress::Progress;
pub use sampler::Sample;
use servers::ServerProcess;
use snapshot::{add_stats, snapshot, stats_delta};

use crate::backend::{db, StatsSnapshot};
use crate::cli::RunArgs;
use crate::error::{environment, input};
use crate::metrics::aggregator::{collect, FaultOutcome, Outcome};
use crate::metrics::db::{statement_deltas, DbCounter};
use crate::metrics::redis_info::{RedisCounter, RedisReading};
use crate::procs;
use crate::scenario::target::Emit;
use crate::scenario::{self, Mode, Plan};
use crate::services::Services;
use crate::swarm::push::{ClientFaults, PushClient};
use crate::swarm::{poller::Poller, Live, Meter, Shared, Swarm};
use crate::workload::{Emitter, Workload, WorkloadStats};

/// What `execute` needs besides the plan.
pub struct RunOptions {
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    /// Servers started elsewhere to drive (`pollpush swarm`); None: start our own.
    pub targets: Option<Targets>,
    /// The `pollpush` binary to start servers from (`current_exe` for the CLI).
    pub server_exe: PathBuf,
    /// Where server processes write their logs; None discards them.
    pub log_dir: Option<PathBuf>,
    pub progress: Progress,
}

/// The servers `pollpush swarm` drives.
#[derive(Debug, Clone)]
pub struct Targets {
    pub poll: Option<std::net::SocketAddr>,
    pub push: Vec<std::net::SocketAddr>,
    pub ingest: Option<std::net::SocketAddr>,
    /// Each address as the user gave it (flag or scenario key, and URL), for messages.
    pub given: Vec<(String, std::net::SocketAddr)>,
}

impl Targets {
    /// Says at once when a target is not there, rather than after a run of failed
    /// connections.
    async fn probe(&self) -> anyhow::Result<()> {
        for (what, addr) in &self.given {
            let reached =
                tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                    .await;
            match reached {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(environment(format!(
                        "{what}: cannot connect to {addr}: {e}; is the target running?"
                    )))
                }
                Err(_) => {
                    return Err(environment(format!(
                        "{what}: no answer from {addr} within 5 s; is the target running, and reachable from here?"
                    )))
                }
            }
        }
        Ok(())
    }
}

/// CPU seconds used by each component over a window; None where it cannot be read.
#[derive(Debug, Clone, Default)]
pub struct CpuSeconds {
    /// The mode's server processes together.
    pub server: Option<f64>,
    /// Each server process of the mode (gateway instances), in index order.
    pub instances: Vec<Option<f64>>,
    pub ingest: Option<f64>,
    pub db: Option<f64>,
    pub redis: Option<f64>,
    pub swarm: Option<f64>,
}

/// Memory of each component at one instant, MiB; None where it cannot be read.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Memory {
    /// RSS of the mode's server processes together.
    pub server_rss_mb: Option<f64>,
    pub ingest_rss_mb: Option<f64>,
    /// PSS of every Postgres process together (shared buffers counted once).
    pub db_pss_mb: Option<f64>,
    pub redis_rss_mb: Option<f64>,
    pub swarm_rss_mb: Option<f64>,
}

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
        let instances: Vec<Option<f64>> = p
            .servers
            .iter()
            .map(|pid| pid.and_then(procs::cpu_seconds))
            .collect();
        CpuSeconds {
            server: known_sum(&instances),
            instances,
            ingest: p.ingest.and_then(procs::cpu_seconds),
            db: p.postgres.and_then(procs::tree_cpu_seconds),
            redis: p.redis.and_then(procs::cpu_seconds),
            swarm: procs::cpu_seconds(p.swarm),
        }
    }

    /// CPU seconds used between `earlier` and this reading.
    pub fn since(&self, earlier: &CpuSeconds) -> CpuSeconds {
        let instances: Vec<Option<f64>> = self
            .instances
            .iter()
            .enumerate()
            .map(|(i, &b)| delta(earlier.instances.get(i).copied().flatten(), b))
            .collect();
        CpuSeconds {
            server: known_sum(&instances),
            instances,
            ingest: delta(earlier.ingest, self.ingest),
            db: delta(earlier.db, self.db),
            redis: delta(earlier.redis, self.redis),
            swarm: delta(earlier.swarm, self.swarm),
        }
    }
}

/// The instances that could be read together (one killed by a fault cannot); None when
/// none could (servers we did not start).
fn known_sum(instances: &[Option<f64>]) -> Option<f64> {
    instances
        .iter()
        .any(Option::is_some)
        .then(|| instances.iter().flatten().sum())
}

/// The change from `a` to `b`, when both could be read.
fn delta(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some((b? - a?).max(0.0))
}

/// One gateway instance over the window.
#[derive(Debug, Clone)]
pub struct InstanceResult {
    pub index: usize,
    /// Its counters over the window (connections as at the window's end).
    pub stats: StatsSnapshot,
    /// Client connections it held when the window opened.
    pub connections: i64,
    pub cpu_s: Option<f64>,
    pub rss_mb: Option<f64>,
}

/// One fault of the window and what it did.
#[derive(Debug, Clone)]
pub struct FaultResult {
    pub fault: scenario::Fault,
    /// Seconds after the window opened that it fired.
    pub at_s: f64,
    pub outcome: FaultOutcome,
    /// The highest per-second readings in the 10 s after it: the load of catch-up and
    /// reconnect storms.
    pub db_queries_peak_per_s: Option<f64>,
    pub server_cores_peak: Option<f64>,
}

/// The highest value of a per-second column over the samples that end in (from, from + 10 s].
fn peak_after(
    samples: &[Sample],
    from_s: f64,
    col: impl Fn(&Sample) -> Option<f64>,
) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.t_s > from_s && s.t_s <= from_s + 10.0)
        .filter_map(col)
        .reduce(f64::max)
}

/// The measured figures of one mode.
#[derive(Debug)]
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
    pub db_statements: Vec<crate::metrics::db::StatementDelta>,
    pub cpu: CpuSeconds,
    /// Memory as the window closed.
    pub memory: Memory,
    /// Postgres's database counters over the window.
    pub db_activity: Option<crate::metrics::db::DbActivity>,
    /// Redis's counters over the window (pub/sub channels: as it closed).
    pub redis: Option<crate::metrics::redis_info::RedisReading>,
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
    pub faults: Vec<FaultResult>,
    /// Poll: bytes of one empty poll besides its body (request line and headers, status
    /// line and headers), measured on a probe connection before the ramp.
    pub probe_header_bytes: Option<u64>,
}

#[derive(Debug)]
pub struct RunResult {
    pub plan: Plan,
    pub started_at: SystemTime,
    pub machine: Machine,
    pub db_source: &'static str,
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
            db_source: "",
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
                        })
                        .collect(),
                    probe_header_bytes: None,
                })
                .collect(),
        }
    }
}

/// The `run` command: load, execute, write the result folder, print the table.
pub async fn command(args: RunArgs) -> anyhow::Result<()> {
    command_with(args, None, &[]).await
}

/// The `swarm` command: `run` against servers started elsewhere.
pub async fn swarm_command(args: crate::cli::SwarmArgs) -> anyhow::Result<()> {
    // The scenario's `[target]` may give the URLs; flags win.
    let api = scenario::load(args.run.scenario.as_deref(), &args.run.overrides())?.api();
    let resolve = |flag: &str, url: &str| {
        let flag = flag.to_string();
        let url = url.to_string();
        async move {
            let hostport = ["http://", "ws://"]
                .iter()
                .find_map(|p| url.strip_prefix(p))
                .unwrap_or(&url)
                .trim_end_matches('/');
            let found = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::lookup_host(hostport.to_string()),
            )
            .await;
            let addr = match found {
                Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| {
                    input(format!("{flag} {url}: the name resolves to no address"))
                })?,
                _ => {
                    return Err(input(format!(
                        "{flag} {url}: not an http://host:port URL that resolves; e.g. http://127.0.0.1:8080"
                    )))
                }
            };
            Ok((format!("{flag} {url}"), addr))
        }
    };
    let mut given = Vec::new();
    let poll = match (&args.poll_url, &api.poll_url) {
        (Some(u), _) => Some(resolve("--poll-url", u).await?),
        (None, Some(u)) => Some(resolve("target.poll.url", u).await?),
        (None, None) => None,
    };
    given.extend(poll.clone());
    let mut push = Vec::new();
    for u in &args.push_url {
        push.push(resolve("--push-url", u).await?);
    }
    if push.is_empty() {
        for u in &api.push_urls {
            push.push(resolve("target.push.urls", u).await?);
        }
    }
    given.extend(push.iter().cloned());
    let ingest = match (&args.ingest_url, api.emit.url()) {
        (Some(u), _) => Some(resolve("--ingest-url", u).await?),
        (None, Some(u)) => Some(resolve("target.emit.url", u).await?),
        (None, None) => None,
    };
    given.extend(ingest.clone());
    let (poll, push, ingest) = (
        poll.map(|p| p.1),
        push.into_iter().map(|p| p.1).collect::<Vec<_>>(),
        ingest.map(|p| p.1),
    );
    // The clients spread over the instances given: the plan says how many there are.
    let extra = if push.is_empty() {
        Vec::new()
    } else {
        vec![format!("push.instances={}", push.len())]
    };
    let targets = Targets {
        poll,
        push,
        ingest,
        given,
    };
    command_with(args.run, Some(targets), &extra).await
}

async fn command_with(
    args: RunArgs,
    targets: Option<Targets>,
    extra: &[String],
) -> anyhow::Result<()> {
    let overrides: Vec<String> = args
        .overrides()
        .into_iter()
        .chain(extra.iter().cloned())
        .collect();
    let plan = scenario::load(args.scenario.as_deref(), &overrides)?;
    let socketio =
        plan.modes.contains(&Mode::Push) && plan.push.transport == scenario::Transport::SocketIo;
    if socketio && targets.is_none() {
        return Err(input(
            "push.transport = \"socketio\" drives a Socket.IO server, which `run` does not start: use `pollpush swarm --push-url URL-of-it --ingest-url URL`",
        ));
    }
    if plan.target.is_some() && targets.is_none() {
        return Err(input(
            "the scenario's [target] table describes a system `pollpush swarm` drives; `run` starts pollpush's own servers: use swarm, or remove the table",
        ));
    }
    if let Some(t) = &targets {
        let api = plan.api();
        match &api.emit {
            Emit::Pollpush { .. } if socketio && t.ingest.is_none() => {
                return Err(input(
                    "with push.transport = \"socketio\" events go to an ingest API that publishes to the Socket.IO server's Redis: give it with --ingest-url (or publish to that Redis yourself: [target.emit] via = \"redis\")",
                ));
            }
            Emit::Http { .. } if t.ingest.is_none() => {
                return Err(input(
                    "target.emit.via = \"http\": give the API events go to, with target.emit.url or --ingest-url",
                ));
            }
            _ => {}
        }
        if plan.modes.contains(&Mode::Poll) && t.poll.is_none() {
            return Err(input(
                "the scenario runs mode poll: give the poll API with --poll-url",
            ));
        }
        if plan.modes.contains(&Mode::Push) && t.push.is_empty() {
            return Err(input(
                "the scenario runs mode push: give the gateway instances with --push-url",
            ));
        }
        if let Some(f) = plan
            .faults
            .iter()
            .find(|f| !matches!(f.action, scenario::FaultAction::DisconnectClients { .. }))
        {
            return Err(input(format!(
                "the fault {} at {} acts on processes `pollpush run` starts; swarm drives servers it did not start: use run, or remove the fault",
                f.action.name(),
                scenario::fmt_duration(f.at)
            )));
        }
        if let Ok(k) = std::env::var(crate::backend::token::KEY_ENV) {
            if crate::backend::token::Signer::from_hex(&k).is_none() {
                return Err(input(format!(
                    "{} must be 64 hex digits (a 32-byte key)",
                    crate::backend::token::KEY_ENV
                )));
            }
        }
    }
    // A check on a figure that does not exist is a scenario error, caught before anything
    // starts.
    crate::report::checks::validate(&plan)?;
    if let Some(t) = &targets {
        t.probe().await?;
    }
    // Refused before the result folder is made, so that bad input leaves nothing behind.
    faults_need_own_services(&plan, args.database_url.is_some(), args.redis_url.is_some())?;
    let started = SystemTime::now();
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!("{}-{}", plan.name, folder_timestamp(started)))
    });
    prepare_out_dir(&out)?;
    let progress = Progress::new(args.quiet);
    progress.note(&format!(
        "pollpush: scenario {} · {} users · modes {} · results in {}",
        plan.name,
        plan.users,
        plan.modes
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(","),
        out.display()
    ));
    let mut opts = RunOptions {
        targets,
        database_url: args.database_url.clone(),
        redis_url: args.redis_url.clone(),
        server_exe: std::env::current_exe()?,
        log_dir: Some(out.join("logs")),
        progress,
    };
    let summary = match &plan.sweep {
        None => {
            let results = repeats(&plan, args.repeat, &opts).await?;
            let summary = crate::report::write(&results, &out)?;
            println!("{}", crate::report::table::render(&summary));
            summary
        }
        Some(sweep) => {
            let mut runs = Vec::new();
            for (i, point) in sweep.points.iter().enumerate() {
                opts.progress.note(&format!(
                    "sweep {} of {}: {}",
                    i + 1,
                    sweep.points.len(),
                    point.label
                ));
                // Each point keeps its own server logs, next to its results.
                let dir = out.join("runs").join(&point.label);
                prepare_out_dir(&dir)?;
                opts.log_dir = Some(dir.join("logs"));
                let results = repeats(&point.plan, args.repeat, &opts).await?;
                let summary = crate::report::write(&results, &dir)?;
                runs.push((point, summary));
            }
            let summary = crate::report::sweep::write(&plan, &runs, &out)?;
            println!("{}", crate::report::sweep::render_table(&summary));
            summary
        }
    };
    println!("results: {}", out.display());
    let checks: Vec<crate::report::checks::CheckResult> =
        serde_json::from_value(summary["checks"].clone()).unwrap_or_default();
    let failed = crate::report::checks::failures(&checks);
    if !checks.is_empty() {
        println!(
            "checks: {} passed, {} failed",
            checks.len() - failed.len(),
            failed.len()
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        for f in &failed {
            println!("  FAILED {f}");
        }
        Err(crate::UserError::CheckFailed(failed.join("; ")).into())
    }
}

/// Runs `plan` `k` times; Ctrl-C stops the servers and services and ends the run.
async fn repeats(plan: &Plan, k: u32, opts: &RunOptions) -> anyhow::Result<Vec<RunResult>> {
    let mut results = Vec::new();
    for i in 0..k {
        if k > 1 {
            opts.progress.note(&format!("repeat {} of {k}", i + 1));
        }
        let result = tokio::select! {
            res = execute(plan.clone(), opts) => res?,
            _ = crate::backend::serve::shutdown_signal() => {
                // Returning drops the run future: servers, Postgres and Redis are stopped
                // by their guards before the process exits.
                return Err(environment("interrupted; servers and services were stopped"));
            }
        };
        results.push(result);
    }
    Ok(results)
}

fn folder_timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace([':', '-'], "")
}

fn prepare_out_dir(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out.join("logs")).map_err(|e| {
        input(format!(
            "cannot create the result folder {}: {e}; pass a writable folder with --out",
            out.display()
        ))
    })
}

/// A Redis or Postgres fault needs the service that `run` starts; with a given one it
/// is refused.
fn faults_need_own_services(
    plan: &Plan,
    postgres_given: bool,
    redis_given: bool,
) -> anyhow::Result<()> {
    let given = |service: &str| match service {
        "Postgres" => postgres_given.then_some("--database-url or DATABASE_URL"),
        _ => redis_given.then_some("--redis-url or REDIS_URL"),
    };
    for f in &plan.faults {
        if let Some((service, how)) = f.action.needs_own().and_then(|s| Some((s, given(s)?))) {
            return Err(input(format!(
                "the fault {} at {} needs the {service} that pollpush starts itself, and this run was \
                 given one ({how}); drop it, or remove the fault",
                f.action.name(),
                scenario::fmt_duration(f.at)
            )));
        }
    }
    Ok(())
}

/// What faults act on during one mode's window.
struct FaultTargets<'a> {
    mode: Mode,
    plan: &'a Plan,
    opts: &'a RunOptions,
    services: &'a mut Services,
    servers: &'a mut Vec<ServerProcess>,
}

/// The key this process signs its users' tokens with: POLLPUSH_TOKEN_KEY when set (so
/// that `swarm` and a `serve --poll-auth none` started elsewhere share it), else drawn
/// once at random. The servers `run` starts get it through their environment.
pub fn token_signer() -> &'static crate::backend::token::Signer {
    use crate::backend::token::{Signer, KEY_ENV};
    static SIGNER: std::sync::OnceLock<Signer> = std::sync::OnceLock::new();
    SIGNER.get_or_init(|| {
        std::env::var(KEY_ENV)
            .ok()
            .and_then(|k| Signer::from_hex(&k))
            .unwrap_or_else(Signer::random)
    })
}

/// Older notifications each user has before a run starts (never delivered: clients start
/// after the newest id).
pub const HISTORY_PER_USER: u32 = 5;

/// Runs every mode of `plan` and returns the measured figures.
pub async fn execute(plan: Plan, opts: &RunOptions) -> anyhow::Result<RunResult> {
    let started_at = SystemTime::now();
    procs::raise_nofile_limit();
    opts.progress.note(match opts.targets {
        Some(_) => "connecting to the services given",
        None => "starting Postgres and Redis",
    });
    faults_need_own_services(&plan, opts.database_url.is_some(), opts.redis_url.is_some())?;
    let mut services = match &opts.targets {
        // Another deployment's services: read, never started or faulted.
        Some(_) => Services::given(opts.database_url.clone(), opts.redis_url.clone()).await?,
        None => Services::start(opts.database_url.clone(), opts.redis_url.clone()).await?,
    };
    // Without a database (`swarm` against a system whose database we do not read) the
    // users' tokens are only signed, and every database figure is unknown.
    let pool = match services.database_url.as_str() {
        "" => None,
        url => Some(
            db::connect(url, 2)
                .await
                .map_err(|e| environment(format!("cannot prepare the database: {e:#}")))?,
        ),
    };
    let tokens = match &pool {
        Some(pool) => db::seed_users(pool, plan.users, token_signer()).await?,
        None => (1..=plan.users as i64)
            .map(|u| token_signer().token(u))
            .collect(),
    };
    let tokens = Arc::new(tokens);
    let mut counter = match &pool {
        Some(pool) => {
            db::seed_history(pool, plan.users, HISTORY_PER_USER, plan.payload_bytes)
                .await
                .map_err(|e| environment(format!("cannot seed the notifications' history: {e}")))?;
            DbCounter::new(pool.clone()).await
        }
        None => DbCounter::absent(),
    };
    let mut redis = match services.redis_url.as_str() {
        "" => None,
        url => RedisCounter::connect(url)
            .await
            .map_err(|e| tracing::warn!("cannot read Redis INFO: {e:#}"))
            .ok(),
    };
    let machine = read_machine(pool.as_ref(), &services).await;
    // `[target.emit] via = "redis"`: one multiplexed connection publishes every event.
    let emit_redis = match plan.api().emit {
        Emit::Redis { url, .. } => {
            // --redis-url wins over the scenario's URL, as flags do.
            let url = (!services.redis_url.is_empty())
                .then(|| services.redis_url.clone())
                .or(url)
                .ok_or_else(|| {
                    input("target.emit.via = \"redis\": give the Redis the target listens on, with target.emit.url or --redis-url")
                })?;
            let conn = async {
                let client = redis::Client::open(url.as_str())?;
                tokio::time::timeout(
                    Duration::from_secs(5),
                    client.get_multiplexed_async_connection(),
                )
                .await
                .map_err(|_| anyhow::anyhow!("no answer within 5 s"))?
                .map_err(anyhow::Error::from)
            };
            Some(conn.await.map_err(|e| {
                environment(format!(
                    "cannot connect to the Redis of target.emit ({}): {e:#}",
                    crate::services::redact(&url)
                ))
            })?)
        }
        _ => None,
    };
    let ingest = match &opts.targets {
        Some(t) => ServerProcess::remote(
            "ingest",
            0,
            t.ingest
                .or(t.poll)
                .or(t.push.first().copied())
                .ok_or_else(|| input("no ingest URL"))?,
        ),
        None => ServerProcess::start(opts, "ingest", 0, &services, &plan).await?,
    };
    let mut modes = Vec::new();
    let mut first_event = 1;
    for &mode in &plan.modes {
        let result = run_mode(
            mode,
            &plan,
            opts,
            &mut services,
            &pool,
            &mut counter,
            &mut redis,
            &ingest,
            &tokens,
            &emit_redis,
            first_event,
        )
        .await?;
        first_event += result.workload.emitted + 1;
        modes.push(result);
    }
    drop(ingest);
    if let Some(pool) = pool {
        pool.close().await;
    }
    Ok(RunResult {
        plan,
        started_at,
        machine,
        db_source: counter.source.as_str(),
        modes,
    })
}

/// Says plainly when the target did not behave as the scenario describes it: messages the
/// clients could not read, or no notification at all.
fn warn_about_target(mode: Mode, o: &Outcome, api: &scenario::Target, progress: &Progress) {
    if o.unreadable > 0 {
        let f = &api.fields;
        progress.warn(&format!(
            "{mode}: {} message(s) from the target carried no event number at {:?} or emit time at {:?} (set them in [target.notification]); the first: {}",
            o.unreadable,
            f.event,
            f.emit_us,
            o.unreadable_sample.as_deref().unwrap_or("")
        ));
    }
    if o.sent > 0 && o.delivered == 0 {
        progress.warn(&format!(
            "{mode}: none of the {} events sent reached a client; check where events go ([target.emit], --ingest-url) and that the target forwards them",
            o.sent
        ));
    }
}

/// Event ids of the stream aimed at slow clients start here, apart from the main stream.
const SLOW_EVENT_BASE: u64 = 1_000_000_000_000;

#[allow(clippy::too_many_arguments)]
async fn run_mode(
    mode: Mode,
    plan: &Plan,
    opts: &RunOptions,
    services: &mut Services,
    pool: &Option<sqlx::PgPool>,
    counter: &mut DbCounter,
    redis: &mut Option<RedisCounter>,
    ingest: &ServerProcess,
    tokens: &Arc<Vec<String>>,
    emit_redis: &Option<redis::aio::MultiplexedConnection>,
    first_event: u64,
) -> anyhow::Result<ModeResult> {
    let progress = &opts.progress;
    let api = Arc::new(plan.api());
    let mut servers = Vec::new();
    match (mode, &opts.targets) {
        (Mode::Poll, Some(t)) => {
            let addr = t.poll.ok_or_else(|| input("mode poll needs --poll-url"))?;
            servers.push(ServerProcess::remote("poll", 0, addr));
        }
        (Mode::Push, Some(t)) if t.push.is_empty() => {
            return Err(input("mode push needs --push-url"));
        }
        (Mode::Push, Some(t)) => {
            servers = t
                .push
                .iter()
                .enumerate()
                .map(|(i, &a)| ServerProcess::remote("push", i, a))
                .collect();
        }
        (Mode::Poll, None) => {
            progress.note("poll: starting the server");
            servers.push(ServerProcess::start(opts, "poll", 0, services, plan).await?);
        }
        (Mode::Push, None) => {
            progress.note(&format!(
                "push: starting {} gateway instance(s), fanout {}, {}",
                plan.push.instances,
                scenario::kebab(&plan.push.fanout),
                scenario::kebab(&plan.push.transport)
            ));
            let starts = (0..plan.push.instances)
                .map(|i| ServerProcess::start(opts, "push", i, services, plan));
            servers = futures_util::future::try_join_all(starts).await?;
        }
    }
    let after = match pool {
        Some(pool) => db::max_notification_id(pool).await?,
        None => 0,
    };
    let stop = CancellationToken::new();
    let (reports_tx, reports_rx) = mpsc::unbounded_channel();
    let (emitted_tx, emitted_rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(reports_rx, emitted_rx));
    let meter = Arc::new(Meter::default());
    let live = Arc::new(Live::default());
    let client_faults = Arc::new(ClientFaults::new(plan.users));
    let shared = Shared {
        target: servers[0].addr,
        meter: meter.clone(),
        live: live.clone(),
        reports: reports_tx,
        stop: stop.clone(),
        faults: client_faults.clone(),
        headers: Arc::new(crate::swarm::headers::extra(
            plan.headers,
            &servers[0].addr.to_string(),
        )),
        api: api.clone(),
    };
    // One empty poll on its own connection, before any load: its header bytes feed the
    // header-overhead model.
    let probe_header_bytes = match (mode, tokens.first()) {
        (Mode::Poll, Some(token)) => crate::swarm::poller::probe(&shared, 1, token, after)
            .await
            .map_err(|e| tracing::warn!("header probe poll failed: {e:#}"))
            .ok(),
        _ => None,
    };
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(plan.seed.wrapping_mul(31).wrapping_add(mode as u64));
    let base = Instant::now() + Duration::from_millis(100);
    let mut swarm = Swarm::new(stop.clone());
    let ramp = match mode {
        // Each poller's phase is uniform over one interval: polls spread evenly, no herd.
        Mode::Poll if plan.poll_long.is_none() => plan.poll_interval,
        // Long pollers and push clients open their connection over the warm-up.
        _ => plan.warmup.max(Duration::from_secs(1)),
    };
    let instances: Arc<Vec<std::net::SocketAddr>> =
        Arc::new(servers.iter().map(|s| s.addr).collect());
    for (i, token) in tokens.iter().enumerate() {
        let user = i as u64 + 1;
        let offset = ramp.mul_f64(rng.gen::<f64>());
        match mode {
            Mode::Poll => swarm.spawn(
                Poller {
                    user,
                    token: token.clone(),
                    interval: plan.poll_interval,
                    first: base + offset,
                    after,
                    wait: plan.poll_long,
                }
                .run(shared.clone()),
            ),
            Mode::Push => swarm.spawn(
                PushClient::new(
                    user,
                    token.clone(),
                    instances.clone(),
                    base + offset,
                    after,
                    &plan.push,
                )
                .run(shared.clone()),
            ),
        }
    }
    drop(shared);
    // The window opens once the ramp is over and the warm-up has passed.
    let mut window_start = base + ramp.max(plan.warmup) + Duration::from_millis(500);
    // Polling: events go to the ingest API. Push: each through a randomly chosen gateway
    // instance, so the sender is usually not the instance that holds the user. A
    // `[target.emit]` says otherwise.
    let emitter = match api.emit.clone() {
        Emit::Pollpush { .. } => Emitter::Pollpush(match mode {
            Mode::Poll => vec![ingest.addr],
            // A Socket.IO server takes no POSTs: events go to the ingest API, which
            // publishes to the Redis it listens on.
            Mode::Push if plan.push.transport == scenario::Transport::SocketIo => {
                vec![ingest.addr]
            }
            Mode::Push => servers.iter().map(|s| s.addr).collect(),
        }),
        Emit::Http {
            method, path, body, ..
        } => Emitter::Http {
            addr: ingest.addr,
            method: method
                .parse()
                .map_err(|_| input(format!("target.emit.method: {method:?}")))?,
            path,
            body,
        },
        Emit::Redis {
            channel, message, ..
        } => Emitter::Redis {
            conn: emit_redis
                .clone()
                .ok_or_else(|| input("target.emit.via = \"redis\" needs a Redis to publish to"))?,
            channel,
            message,
        },
    };
    let slow =
        (mode == Mode::Push && plan.push.slow_clients > 0 && plan.push.slow_events_per_s > 0.0)
            .then_some(plan.push.slow_clients);
    let workload = |start: Instant, window_start: Instant, emitted: mpsc::UnboundedSender<_>| {
        let main = tokio::spawn(
            Workload {
                emitter: emitter.clone(),
                users: 1..=plan.users,
                events_per_s: plan.events_per_s,
                payload_bytes: plan.payload_bytes,
                seed: plan.seed.wrapping_add(first_event),
                first_event,
            }
            .run(start, window_start + plan.duration, emitted.clone()),
        );
        let slow = slow.map(|n| {
            tokio::spawn(
                Workload {
                    emitter: emitter.clone(),
                    users: 1..=n,
                    events_per_s: plan.push.slow_events_per_s,
                    payload_bytes: plan.push.slow_payload_bytes,
                    seed: plan.seed.wrapping_add(first_event).wrapping_add(7),
                    first_event: first_event + SLOW_EVENT_BASE,
                }
                .run(start, window_start + plan.duration, emitted),
            )
        });
        (main, slow)
    };
    // Polling: events start one interval before the window, so that every poll in the
    // window finds a steady stream behind it (otherwise the first interval's polls find
    // fewer events and the empty share reads high). Push: events start with the window,
    // once every socket is open, since pub/sub without catch-up drops what comes earlier.
    let mut emitted_tx = Some(emitted_tx);
    let mut running = None;
    if mode == Mode::Poll {
        let lead = match plan.poll_long {
            Some(_) => Duration::ZERO,
            None => plan.poll_interval,
        };
        let start = window_start - lead;
        running = Some(workload(
            start,
            window_start,
            emitted_tx.take().expect("unused"),
        ));
    }
    progress
        .phase(
            mode,
            "ramp",
            window_start.saturating_duration_since(Instant::now()),
            &live,
        )
        .await;
    if mode == Mode::Push {
        // Give stragglers up to 30 s to connect.
        let deadline = Instant::now() + Duration::from_secs(30);
        while live.connections.load(Ordering::Relaxed) < plan.users as i64
            && Instant::now() < deadline
        {
            // Every client tried and none got in: waiting longer changes nothing.
            if live.connections.load(Ordering::Relaxed) == 0
                && live.connect_errors.load(Ordering::Relaxed) >= plan.users
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if live.connections.load(Ordering::Relaxed) == 0 {
            swarm.stop(Duration::from_secs(5)).await;
            let why = live
                .first_connect_error
                .lock()
                .ok()
                .and_then(|f| f.clone())
                .unwrap_or_else(|| "no error seen; the handshake never finished".into());
            return Err(environment(format!(
                "push: none of the {} clients could connect to {}; the first failure: {why}",
                plan.users,
                servers
                    .iter()
                    .map(|s| s.addr.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        window_start = window_start.max(Instant::now());
    }
    let connections = live.connections.load(Ordering::Relaxed);
    if connections < plan.users as i64 {
        tracing::warn!(
            connections,
            users = plan.users,
            "not every client is connected as the window opens"
        );
    }
    tokio::time::sleep_until(window_start).await;
    let pids = Pids {
        servers: servers.iter().map(|s| s.pid()).collect(),
        ingest: ingest.pid(),
        postgres: services.postgres_pid(),
        redis: services.redis_pid(),
        swarm: std::process::id(),
    };
    let s0 = snapshot(counter, redis, &servers, ingest, &pids, &meter).await?;
    let window_end = window_start + plan.duration;
    let sampler = tokio::spawn(sampler::sample(
        sampler::Sources {
            counter: counter.clone(),
            redis: redis.clone(),
            pids: pids.clone(),
            meter: meter.clone(),
            live: live.clone(),
        },
        window_end,
    ));
    let (main_workload, slow_workload) = match running {
        Some(w) => w,
        None => workload(
            window_start,
            window_start,
            emitted_tx.take().expect("unused"),
        ),
    };
    // Faults run beside the window, in this task: they may need our Redis, mutably.
    let faults = inject_faults(
        FaultTargets {
            mode,
            plan,
            opts,
            services,
            servers: &mut servers,
        },
        window_start,
        client_faults,
    );
    let window = async {
        progress.phase(mode, "window", plan.duration, &live).await;
        tokio::time::sleep_until(window_end).await;
    };
    let (fired, ()) = tokio::join!(faults, window);
    let s1 = snapshot(counter, redis, &servers, ingest, &pids, &meter).await?;
    let samples = sampler.await?;
    let rss: Vec<Option<f64>> = servers
        .iter()
        .map(|s| s.pid().and_then(procs::rss_mb))
        .collect();
    let memory = Memory::read(&pids);
    let workload = main_workload.await?;
    if let Some(w) = slow_workload {
        w.await?;
    }
    progress
        .phase(mode, "drain", plan.drain_for(mode), &live)
        .await;
    swarm.stop(Duration::from_secs(10)).await;
    let collected = collector.await?;
    // A server driven by `swarm` may be the ingest API too (`serve --role all`): its
    // counters then count once.
    let ingest_apart = !servers.iter().any(|s| s.addr == ingest.addr);
    drop(servers);
    let slow_users = if mode == Mode::Push {
        plan.push.slow_clients
    } else {
        0
    };
    let outcome = collected.outcome(window_start, window_end, slow_users);
    warn_about_target(mode, &outcome, &api, progress);
    let faults = fired
        .into_iter()
        .map(|(fault, at, back, users)| {
            let at_s = at.duration_since(window_start).as_secs_f64();
            FaultResult {
                at_s,
                outcome: collected.fault(users.as_ref(), at, back),
                fault,
                db_queries_peak_per_s: peak_after(&samples, at_s, |s| s.db_queries_per_s),
                server_cores_peak: peak_after(&samples, at_s, |s| s.server_cores),
            }
        })
        .collect();
    let cpu = s1.cpu.since(&s0.cpu);
    let instance_stats: Vec<StatsSnapshot> = s0
        .servers
        .iter()
        .zip(&s1.servers)
        .map(|(a, b)| stats_delta(a, b))
        .collect();
    let instances = match mode {
        Mode::Poll => Vec::new(),
        Mode::Push => instance_stats
            .iter()
            .enumerate()
            .map(|(index, stats)| InstanceResult {
                index,
                stats: *stats,
                connections: s0.servers[index].connections,
                cpu_s: cpu.instances.get(index).copied().flatten(),
                rss_mb: rss.get(index).copied().flatten(),
            })
            .collect(),
    };
    let ingest_delta = if ingest_apart {
        stats_delta(&s0.ingest, &s1.ingest)
    } else {
        StatsSnapshot::default()
    };
    let server_stats = instance_stats
        .iter()
        .fold(ingest_delta, |acc, s| add_stats(&acc, s));
    Ok(ModeResult {
        server_counters: s0.counters_known && s1.counters_known,
        db_known: counter.source != crate::metrics::db::Source::None,
        mode,
        users: plan.users,
        window_start: s0.wall,
        window_end: s1.wall,
        window_s: s1.at.duration_since(s0.at).as_secs_f64(),
        outcome,
        db_queries: s1.db.total.saturating_sub(s0.db.total),
        backend_queries: server_stats.db_queries,
        db_statements: statement_deltas(&s0.db, &s1.db),
        cpu,
        memory,
        db_activity: match (s0.db.activity, s1.db.activity) {
            (Some(a), Some(b)) => Some(b.since(&a)),
            _ => None,
        },
        redis: match (s0.redis, s1.redis) {
            (Some(a), Some(b)) => Some(RedisReading {
                commands: b.commands.saturating_sub(a.commands),
                net_in_bytes: b.net_in_bytes.saturating_sub(a.net_in_bytes),
                net_out_bytes: b.net_out_bytes.saturating_sub(a.net_out_bytes),
                pubsub_channels: b.pubsub_channels,
                cpu_s: (b.cpu_s - a.cpu_s).max(0.0),
            }),
            _ => None,
        },
        bytes_in: s1.bytes.0 - s0.bytes.0,
        bytes_out: s1.bytes.1 - s0.bytes.1,
        connections,
        server: server_stats,
        workload,
        samples,
        instances,
        faults,
        probe_header_bytes,
    })
}

/// Fires each fault at its time after `window_start`; returns when each fired and which
/// clients it took down. Slow clients are never picked (they do not read anyway).
async fn inject_faults(
    targets: FaultTargets<'_>,
    window_start: Instant,
    clients: Arc<ClientFaults>,
) -> Vec<(
    scenario::Fault,
    Instant,
    Option<Instant>,
    Option<std::collections::HashSet<u64>>,
)> {
    let FaultTargets {
        mode,
        plan,
        opts,
        services,
        servers,
    } = targets;
    let (users, slow_clients) = (plan.users, plan.push.slow_clients);
    let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed.wrapping_add(0xfa17));
    let mut fired = Vec::new();
    for mut fault in plan
        .faults
        .iter()
        .filter(|f| f.action.applies_to(mode))
        .cloned()
    {
        tokio::time::sleep_until(window_start + fault.at).await;
        let at = Instant::now();
        let mut taken = std::collections::HashSet::new();
        // A service fault hits whoever it hits: the clients that reconnect after it.
        let whoever = fault.action.needs_own().is_some();
        match fault.action {
            scenario::FaultAction::KillGateway { instance, down } => {
                let n = servers.len();
                let i = instance.unwrap_or_else(|| rng.gen_range(0..n)).min(n - 1);
                fault.action = scenario::FaultAction::KillGateway {
                    instance: Some(i),
                    down,
                };
                // Its clients, as the round-robin balanced them (slow ones aside).
                taken.extend((slow_clients + 1..=users).filter(|u| (u - 1) as usize % n == i));
                servers[i].kill().await;
                if let Some(down) = down {
                    tokio::time::sleep(down).await;
                    if let Err(e) = servers[i].restart(opts, i, services, plan).await {
                        tracing::error!("fault kill-gateway could not start push-{i} again: {e:#}");
                    }
                }
            }
            scenario::FaultAction::RestartPostgres { down } => {
                // `execute` refused this fault unless the Postgres is ours.
                if let Some(pg) = services.postgres.as_mut() {
                    if let Err(e) = pg.restart(down).await {
                        tracing::error!("fault restart-postgres went wrong: {e:#}");
                    }
                }
            }
            scenario::FaultAction::KillRedis { down, .. }
            | scenario::FaultAction::PauseRedis { down } => {
                // `execute` refused these faults unless the Redis is ours.
                if let Some(r) = services.redis.as_mut() {
                    let done = match fault.action {
                        scenario::FaultAction::PauseRedis { .. } => r.pause(down).await,
                        _ => r.restart(down).await,
                    };
                    if let Err(e) = done {
                        tracing::error!("fault {} went wrong: {e:#}", fault.action.name());
                    }
                }
            }
            scenario::FaultAction::DisconnectClients {
                clients: n,
                offline,
            } => {
                let pool: Vec<u64> = (slow_clients + 1..=users).collect();
                for u in
                    rand::seq::index::sample(&mut rng, pool.len(), (n as usize).min(pool.len()))
                {
                    taken.insert(pool[u]);
                }
                let list: Vec<u64> = taken.iter().copied().collect();
                clients.take_offline(&list, crate::now_us() + offline.as_micros() as u64);
            }
        }
        // A service fault's action returns once the service is back.
        let back = whoever.then(Instant::now);
        fired.push((fault, at, back, (!whoever).then_some(taken)));
    }
    fired
}
