//! One mode of a run, phase by phase: start its servers, spawn its clients, ramp up,
//! measure the window (workload, sampler and faults beside it), drain, and reconcile the
//! readings into a [`ModeResult`]. Each phase is one method of [`ModeRun`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::faults::{inject_faults, peak_after, Fired};
use super::load::{emitter, spawn_clients};
use super::observe::{wait_phase, Phase};
use super::resources::Resources;
use super::sampler;
use super::servers::{stop_all, ServerProcess};
use super::setup::RunOptions;
use super::shards::{self, Children, Part, START_LEAD};
use super::snapshot::{snapshot, Snapshot};
use super::usage::Pids;
use crate::backend::db;
use crate::config::{Choice, Mode, Role};
use crate::error::{environment, input};
use crate::metrics::aggregator::{collect, Collected, Outcome};
use crate::metrics::db::statement_deltas;
use crate::metrics::events::{Emitted, Reports, MAX_RECORDS, REPORT_QUEUE};
use crate::result::{CpuSeconds, FaultResult, InstanceResult, Memory, ModeResult, Sample};
use crate::scenario::{Plan, Target};
use crate::swarm::push::ClientFaults;
use crate::swarm::{Live, Meter, Shared, Swarm};
use crate::wire::StatsSnapshot;
use crate::workload::{Emitter, Workload, WorkloadStats};

mod reconcile;

/// How many workload records may wait for the aggregator; past it the workload waits.
const EMITTED_QUEUE: usize = 65_536;
/// Event ids of the stream aimed at slow clients start here, apart from the main stream.
const SLOW_EVENT_BASE: u64 = 1_000_000_000_000;

/// The main workload and, when the plan has slow clients, theirs.
type Workloads = (JoinHandle<WorkloadStats>, Option<JoinHandle<WorkloadStats>>);

/// The newest notification id when the clients start: what they have already seen.
async fn newest_id(res: &Resources, part: &Part) -> anyhow::Result<i64> {
    Ok(match (&res.pool, part.after) {
        (_, Some(after)) => after,
        (Some(pool), None) => {
            // Another shard seeds the history (the first, on another host perhaps): the
            // newest id is read just before the common start, once it is there.
            if part.index > 0 {
                let lead = tokio::time::Instant::now() + Duration::from_millis(500);
                tokio::time::sleep_until(part.base().max(lead) - Duration::from_millis(500)).await;
            }
            db::max_notification_id(pool).await?
        }
        (None, None) => 0,
    })
}

/// One empty poll on its own connection, before any load: its header bytes feed the
/// header-overhead model. The first shard makes it for all.
async fn probe(
    mode: Mode,
    plan: &Plan,
    res: &Resources,
    part: &Part,
    shared: &Shared,
    after: i64,
) -> Option<u64> {
    match (mode, res.tokens.first()) {
        (Mode::Poll, Some(token)) if part.index == 0 => crate::swarm::poller::probe(
            shared,
            1,
            token,
            after,
            plan.poll_http == crate::config::PollHttp::H2,
        )
        .await
        .map_err(|e| tracing::warn!("header probe poll failed: {e:#}"))
        .ok(),
        _ => None,
    }
}

/// Runs one mode of `plan` and returns its measured figures.
pub async fn run_mode(
    mode: Mode,
    plan: &Plan,
    opts: &RunOptions,
    res: &mut Resources,
    first_event: u64,
) -> anyhow::Result<ModeResult> {
    let servers = start_servers(mode, plan, opts, res).await?;
    let (part, children) = match split(mode, plan, opts, res, &servers, first_event).await {
        Ok(split) => split,
        Err(e) => {
            let mut servers = servers;
            stop_all(&mut servers).await;
            return Err(e);
        }
    };
    let mut run = ModeRun::spawn(mode, plan, opts, res, servers, first_event, part).await?;
    let mut children = children;
    let result = async {
        run.ramp().await?;
        if let Some(c) = &mut children {
            c.check_alive()?;
        }
        let window = run.measure(res).await?;
        let mut result = run.reconcile(res, window).await?;
        // The other shards use the servers until they finish: stopped only after.
        if let Some(children) = children {
            opts.observer
                .note(&format!("{mode}: adding the other swarm shards' figures"));
            children
                .finish(&mut result, plan, res, opts.observer.as_ref())
                .await?;
        }
        Ok(result)
    }
    .await;
    let stopping = Instant::now();
    stop_all(&mut run.servers).await;
    tracing::debug!(
        servers = run.servers.len(),
        elapsed_ms = stopping.elapsed().as_millis() as u64,
        "{mode}: servers stopped"
    );
    result
}

/// This process's share of the mode's users and events, and the other shards' processes
/// when the plan splits the users and no one else split them (`swarm --shard` is a part).
async fn split(
    mode: Mode,
    plan: &Plan,
    opts: &RunOptions,
    res: &Resources,
    servers: &[ServerProcess],
    first_event: u64,
) -> anyhow::Result<(Part, Option<Children>)> {
    if let Some(spec) = &opts.shard {
        return Ok((Part::of(spec), None));
    }
    let count = plan.shard_count();
    if count == 1 {
        return Ok((Part::whole(), None));
    }
    let after = match &res.pool {
        Some(pool) => db::max_notification_id(pool).await?,
        None => 0,
    };
    let part = Part {
        index: 0,
        count,
        start_at: Some(std::time::SystemTime::now() + START_LEAD),
        after: Some(after),
    };
    let root = match &opts.log_dir {
        Some(logs) => logs.with_file_name("shards"),
        None => std::env::temp_dir().join(format!("pollpush-shards-{}", std::process::id())),
    };
    opts.observer.note(&format!(
        "{mode}: {} users over {count} swarm processes (this one and {} more; their folders: {})",
        plan.users,
        count - 1,
        root.display()
    ));
    let children = shards::spawn(mode, plan, opts, res, servers, &part, first_event, &root)?;
    Ok((part, Some(children)))
}

/// The mode's own servers: started here, or the remote ones `swarm` was given.
async fn start_servers(
    mode: Mode,
    plan: &Plan,
    opts: &RunOptions,
    res: &Resources,
) -> anyhow::Result<Vec<ServerProcess>> {
    match (mode, &opts.remote) {
        (Mode::Poll, Some(r)) => {
            let addr = r.poll.ok_or_else(|| input("mode poll needs --poll-url"))?;
            Ok(vec![ServerProcess::remote(
                "poll",
                0,
                addr,
                r.poll_pid,
                r.poll_metrics.clone(),
            )])
        }
        (Mode::Push, Some(r)) if r.push.is_empty() => Err(input("mode push needs --push-url")),
        (Mode::Push, Some(r)) => Ok(r
            .push
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let metrics = r.push_metrics.get(i).cloned();
                ServerProcess::remote("push", i, a, r.push_pids.get(i).copied(), metrics)
            })
            .collect()),
        (Mode::Poll, None) => {
            opts.observer.note("poll: starting the server");
            Ok(vec![
                ServerProcess::start(&res.launch, Role::Poll, 0, plan).await?,
            ])
        }
        (Mode::Push, None) => {
            opts.observer.note(&format!(
                "push: starting {} gateway instance(s), fanout {}, {}",
                plan.push.instances,
                plan.push.fanout.name(),
                plan.push.transport.name()
            ));
            let starts = (0..plan.push.instances)
                .map(|i| ServerProcess::start(&res.launch, Role::Push, i, plan));
            futures_util::future::try_join_all(starts).await
        }
    }
}

/// A mode under way: its servers, its clients and what listens to them.
struct ModeRun<'a> {
    mode: Mode,
    plan: &'a Plan,
    opts: &'a RunOptions,
    api: Arc<Target>,
    servers: Vec<ServerProcess>,
    first_event: u64,
    swarm: Option<Swarm>,
    meter: Arc<Meter>,
    live: Arc<Live>,
    client_faults: Arc<ClientFaults>,
    collector: Option<JoinHandle<Collected>>,
    /// Reports the clients' queue refused (see [`REPORT_QUEUE`]).
    reports_dropped: Arc<std::sync::atomic::AtomicU64>,
    emitted: Option<mpsc::Sender<Emitted>>,
    emitter: Emitter,
    /// Poll: the workload starts before the window; push: with it.
    workloads: Option<Workloads>,
    window_start: Instant,
    probe_header_bytes: Option<u64>,
    /// Which users and events are this process's.
    part: Part,
    /// When the clients started, and over how long.
    base: Instant,
    ramp: Duration,
    /// Push: seconds from `base` until every client was connected.
    all_connected_s: Option<f64>,
}

/// The readings a window leaves behind, for [`ModeRun::reconcile`].
struct Window {
    s0: Snapshot,
    s1: Snapshot,
    samples: Vec<Sample>,
    memory: Memory,
    rss: Vec<Option<f64>>,
    fired: Vec<Fired>,
    workload: WorkloadStats,
    connections: i64,
}

impl<'a> ModeRun<'a> {
    /// Spawns every client, spread over the ramp, and prepares the workload.
    async fn spawn(
        mode: Mode,
        plan: &'a Plan,
        opts: &'a RunOptions,
        res: &Resources,
        servers: Vec<ServerProcess>,
        first_event: u64,
        part: Part,
    ) -> anyhow::Result<ModeRun<'a>> {
        let api = Arc::new(plan.api());
        let after = newest_id(res, &part).await?;
        let stop = CancellationToken::new();
        let (reports_tx, reports_rx) = Reports::channel(REPORT_QUEUE);
        // The workload waits for room (its events are already out; only their record waits).
        let (emitted_tx, emitted_rx) = mpsc::channel(EMITTED_QUEUE);
        let collector = tokio::spawn(collect(reports_rx, emitted_rx));
        let reports_dropped = reports_tx.dropped_count();
        let (meter, live) = (Arc::new(Meter::default()), Arc::new(Live::default()));
        let client_faults = Arc::new(ClientFaults::new(plan.users));
        let host = servers[0].addr;
        let shared = Shared {
            server: host,
            meter: meter.clone(),
            live: live.clone(),
            reports: reports_tx,
            stop: stop.clone(),
            faults: client_faults.clone(),
            headers: Arc::new(crate::swarm::headers::extra(
                plan.headers,
                &host.to_string(),
            )),
            api: api.clone(),
        };
        let probe_header_bytes = probe(mode, plan, res, &part, &shared, after).await;
        let base = part.base();
        let ramp = match mode {
            // Each poller's phase is uniform over one interval: polls spread evenly, no herd.
            Mode::Poll if plan.poll_long.is_none() => plan.poll_interval,
            // Long pollers and push clients open their connection over the warm-up.
            _ => plan.warmup.max(Duration::from_secs(1)),
        };
        let mut swarm = Swarm::new(stop);
        let addrs: Arc<Vec<std::net::SocketAddr>> = Arc::new(
            match opts.remote.as_ref().and_then(|r| r.push_clients.as_ref()) {
                Some(balancer) if mode == Mode::Push => balancer.clone(),
                _ => servers.iter().map(|s| s.addr).collect(),
            },
        );
        spawn_clients(
            mode,
            plan,
            &mut swarm,
            &shared,
            &res.tokens,
            part.users(plan.users),
            &addrs,
            base,
            ramp,
            after,
        );
        let emitter = emitter(mode, plan, &api, res, &servers)?;
        let mut run = ModeRun {
            mode,
            plan,
            opts,
            api,
            servers,
            first_event,
            swarm: Some(swarm),
            meter,
            live,
            client_faults,
            collector: Some(collector),
            reports_dropped,
            emitted: Some(emitted_tx),
            emitter,
            workloads: None,
            // The window opens once the ramp is over and the warm-up has passed.
            window_start: base + ramp.max(plan.warmup) + Duration::from_millis(500),
            probe_header_bytes,
            part,
            base,
            ramp,
            all_connected_s: None,
        };
        if mode == Mode::Poll {
            // Events start one interval before the window, so that every poll in the window
            // finds a steady stream behind it (otherwise the first interval's polls find
            // fewer events and the empty share reads high). Push starts them with the
            // window, once every socket is open: pub/sub without catch-up drops what comes
            // earlier.
            let lead = match plan.poll_long {
                Some(_) => Duration::ZERO,
                None => plan.poll_interval,
            };
            run.workloads = Some(run.start_workload(run.window_start - lead));
        }
        Ok(run)
    }

    /// Starts the workload (and the slow clients' one) at `start`, ending with the window.
    fn start_workload(&mut self, start: Instant) -> Workloads {
        let plan = self.plan;
        let first_event = self.part.first_event(self.first_event);
        let until = self.window_start + plan.duration;
        let emitted = self.emitted.take().expect("the workload starts once");
        // Slow clients are the first users: the first shard's.
        let slow = (self.mode == Mode::Push
            && self.part.index == 0
            && plan.push.slow_clients > 0
            && plan.push.slow_events_per_s > 0.0)
            .then(|| {
                let stream = Workload {
                    emitter: self.emitter.clone(),
                    users: 1..=plan.push.slow_clients,
                    events_per_s: plan.push.slow_events_per_s,
                    payload_bytes: plan.push.slow_payload_bytes,
                    seed: plan.seed.wrapping_add(first_event).wrapping_add(7),
                    first_event: first_event + SLOW_EVENT_BASE,
                    max_in_flight: crate::workload::MAX_IN_FLIGHT,
                };
                tokio::spawn(stream.run(start, until, emitted.clone()))
            });
        let main = Workload {
            emitter: self.emitter.clone(),
            users: self.part.users(plan.users),
            events_per_s: self.part.events_per_s(plan),
            payload_bytes: plan.payload_bytes,
            seed: plan.seed.wrapping_add(first_event),
            first_event,
            max_in_flight: crate::workload::MAX_IN_FLIGHT,
        };
        (tokio::spawn(main.run(start, until, emitted)), slow)
    }

    /// Waits out the ramp; push waits (up to 30 s more) for every client to connect.
    async fn ramp(&mut self) -> anyhow::Result<()> {
        let observer = self.opts.observer.as_ref();
        // Push: when the last client got in (read every 20 ms), for the connect rate.
        let users = self.part.users(self.plan.users).count() as i64;
        let (live, base) = (self.live.clone(), self.base);
        let watch = (self.mode == Mode::Push).then(|| {
            tokio::spawn(async move {
                while live.connections.load(Ordering::Relaxed) < users {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Instant::now().saturating_duration_since(base).as_secs_f64()
            })
        });
        wait_phase(
            observer,
            self.mode,
            Phase::Ramp,
            self.window_start,
            &self.live,
        )
        .await;
        let connected = match self.mode {
            Mode::Push => self.await_connections().await,
            Mode::Poll => Ok(()),
        };
        if let Some(watch) = watch {
            match watch.is_finished() {
                true => self.all_connected_s = watch.await.ok(),
                false => watch.abort(),
            }
        }
        connected?;
        if self.mode == Mode::Push {
            self.window_start = self.window_start.max(Instant::now());
        }
        let connections = self.live.connections.load(Ordering::Relaxed);
        let users = self.part.users(self.plan.users).count() as i64;
        if connections < users {
            tracing::warn!(
                connections,
                users,
                "not every client is connected as the window opens"
            );
        }
        tokio::time::sleep_until(self.window_start).await;
        Ok(())
    }

    /// Gives stragglers up to 30 s to connect; an error when none could.
    async fn await_connections(&mut self) -> anyhow::Result<()> {
        let users = self.part.users(self.plan.users).count() as u64;
        let live = &self.live;
        let deadline = Instant::now() + Duration::from_secs(30);
        while live.connections.load(Ordering::Relaxed) < users as i64 && Instant::now() < deadline {
            // Every client tried and none got in: waiting longer changes nothing.
            if live.connections.load(Ordering::Relaxed) == 0
                && live.connect_errors.load(Ordering::Relaxed) >= users
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if live.connections.load(Ordering::Relaxed) > 0 {
            return Ok(());
        }
        if let Some(swarm) = self.swarm.take() {
            swarm.stop(Duration::from_secs(5)).await;
        }
        let why = live
            .first_connect_error
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_else(|| "no error seen; the handshake never finished".into());
        let addrs: Vec<String> = self.servers.iter().map(|s| s.addr.to_string()).collect();
        Err(environment(format!(
            "push: none of the {users} clients could connect to {}; the first failure: {why}",
            addrs.join(", ")
        )))
    }

    /// The measurement window: readings at both edges, a sample a second, the workload and
    /// the faults beside it.
    async fn measure(&mut self, res: &mut Resources) -> anyhow::Result<Window> {
        let connections = self.live.connections.load(Ordering::Relaxed);
        let pids = Pids {
            servers: self.servers.iter().map(|s| s.pid()).collect(),
            ingest: res.ingest.pid(),
            postgres: res.services.postgres_pid(),
            redis: res.services.redis_pid(),
            swarm: std::process::id(),
        };
        let s0 = self.snapshot(res, &pids).await?;
        let (start, end) = (self.window_start, self.window_start + self.plan.duration);
        let sampler = tokio::spawn(sampler::sample(
            sampler::Sources {
                counter: res.counter.clone(),
                redis: res.redis.clone(),
                pids: pids.clone(),
                meter: self.meter.clone(),
                live: self.live.clone(),
            },
            end,
        ));
        let workloads = match self.workloads.take() {
            Some(w) => w,
            None => self.start_workload(start),
        };
        // Faults run beside the window, in this task: they may need our Redis, mutably.
        let observer = self.opts.observer.as_ref();
        let (mode, live) = (self.mode, self.live.clone());
        let faults = inject_faults(
            self.plan,
            mode,
            &mut res.services,
            &mut self.servers,
            start,
            &self.client_faults,
        );
        let window = wait_phase(observer, mode, Phase::Window, end, &live);
        let (fired, ()) = tokio::join!(faults, window);
        let s1 = self.snapshot(res, &pids).await?;
        let samples = sampler.await?;
        let rss: Vec<Option<f64>> = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| match s.pid() {
                Some(pid) => crate::procs::rss_mb(pid),
                None => s1.reported_rss_mb.get(i).copied().flatten(),
            })
            .collect();
        let mut memory = Memory::read(&pids);
        memory.server_rss_mb = rss.iter().copied().sum();
        let workload = workloads.0.await?;
        if let Some(slow) = workloads.1 {
            slow.await?;
        }
        Ok(Window {
            s0,
            s1,
            samples,
            memory,
            rss,
            fired,
            workload,
            connections,
        })
    }

    async fn snapshot(&self, res: &mut Resources, pids: &Pids) -> anyhow::Result<Snapshot> {
        snapshot(
            &mut res.counter,
            &mut res.redis,
            &self.servers,
            &res.ingest,
            pids,
            &self.meter,
        )
        .await
    }
}
