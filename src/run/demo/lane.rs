//! One lane of the demo: a system under test with its own Postgres, Redis and servers, its
//! clients in this process, its emitter, and the reader of its figures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Knobs, LaneFrame, DOTS_PER_SECOND};
use crate::backend::db;
use crate::config::{Mode, Role};
use crate::metrics::events::{Emitted, Report, Reports};
use crate::run::load::{client, emitter};
use crate::run::observe::Observer;
use crate::run::resources::Resources;
use crate::run::sampler::{Sampler, Sources};
use crate::run::servers::{stop_all, ServerProcess};
use crate::run::setup::RunOptions;
use crate::run::usage::Pids;
use crate::scenario::Plan;
use crate::swarm::push::ClientFaults;
use crate::swarm::{Live, Meter, Shared, Swarm};
use crate::workload::{emit_each, Emitter, Workload, MAX_IN_FLIGHT};

/// One system under test with its own services, servers, clients and emitter.
pub(super) struct Lane {
    mode: Mode,
    pub(super) plan: Plan,
    pub(super) res: Resources,
    pub(super) servers: Vec<ServerProcess>,
    shared: Shared,
    pub(super) faults: Arc<ClientFaults>,
    /// The running clients: their users and the token that stops them.
    clients: Vec<(std::ops::RangeInclusive<u64>, CancellationToken)>,
    /// Their tasks, as `run` holds its clients: a client that panics is counted.
    swarm: Swarm,
    panicked: u64,
    observer: Arc<dyn Observer>,
    workload: Option<JoinHandle<()>>,
    /// Event ids: each lane its own range, each emitter a fresh block.
    next_event: u64,
    emitted: mpsc::Sender<Emitted>,
    sampler: Sampler,
    dots: Arc<Mutex<Vec<u64>>>,
    latency: Arc<Mutex<Histogram<u64>>>,
    delivered_total: u64,
    users: u64,
    events_per_s: f64,
}

impl Lane {
    pub(super) async fn start(mode: Mode, plan: Plan, opts: &RunOptions) -> anyhow::Result<Lane> {
        let res = Resources::prepare(&plan, opts).await?;
        let servers = match mode {
            Mode::Poll => vec![ServerProcess::start(&res.launch, Role::Poll, 0, &plan).await?],
            Mode::Push => start_gateways(&res, &plan).await?,
        };
        let (reports, mut rx) = Reports::channel(65_536);
        let dots: Arc<Mutex<Vec<u64>>> = Default::default();
        let latency = Arc::new(Mutex::new(
            Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
        ));
        let (d, l) = (dots.clone(), latency.clone());
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                if let Report::Delivered { latency_us, .. } = r {
                    if let Ok(mut d) = d.lock() {
                        if d.len() < DOTS_PER_SECOND {
                            d.push(latency_us);
                        }
                    }
                    if let Ok(mut l) = l.lock() {
                        let _ = l.record(latency_us.max(1));
                    }
                }
            }
        });
        let (emitted, mut drained) = mpsc::channel(4096);
        tokio::spawn(async move { while drained.recv().await.is_some() {} });
        let faults = Arc::new(ClientFaults::new(plan.users));
        let (meter, live) = (Arc::new(Meter::default()), Arc::new(Live::default()));
        let host = servers[0].addr;
        let api = Arc::new(plan.api());
        let shared = Shared {
            server: host,
            meter: meter.clone(),
            live: live.clone(),
            reports,
            stop: CancellationToken::new(),
            faults: faults.clone(),
            headers: Arc::new(crate::swarm::headers::extra(
                plan.headers,
                &host.to_string(),
            )),
            api,
        };
        let pids = pids(&res, &servers);
        let sampler = Sampler::new(Sources {
            counter: res.counter.clone(),
            redis: res.redis.clone(),
            pids,
            meter,
            live,
        })
        .await;
        let stop = shared.stop.clone();
        Ok(Lane {
            mode,
            next_event: if mode == Mode::Poll { 1 } else { 1 << 40 },
            plan,
            res,
            servers,
            shared,
            faults,
            clients: Vec::new(),
            swarm: Swarm::new(stop),
            panicked: 0,
            observer: opts.observer.clone(),
            workload: None,
            emitted,
            sampler,
            dots,
            latency,
            delivered_total: 0,
            users: 0,
            events_per_s: 0.0,
        })
    }

    pub(super) fn refresh_pids(&mut self) {
        self.sampler.src.pids = pids(&self.res, &self.servers);
    }

    /// Stops the gateways and starts the plan's number of them with its fan-out.
    pub(super) async fn restart_servers(&mut self) -> anyhow::Result<()> {
        stop_all(&mut self.servers).await;
        self.servers = start_gateways(&self.res, &self.plan).await?;
        self.shared.server = self.servers[0].addr;
        self.refresh_pids();
        Ok(())
    }

    /// Brings the clients and the emitter to `knobs`; `respawn` starts every client anew
    /// (a new interval, new gateways), otherwise only the difference in users changes.
    pub(super) async fn apply(&mut self, knobs: &Knobs, respawn: bool) -> anyhow::Result<()> {
        self.plan.poll_interval = Duration::from_secs_f64(knobs.interval_s);
        let after = match &self.res.pool {
            Some(pool) => db::max_notification_id(pool).await?,
            None => 0,
        };
        if respawn {
            for (_, t) in self.clients.drain(..) {
                t.cancel();
            }
            self.users = 0;
        }
        if knobs.users < self.users {
            // Stop whole batches above the new count; the one across it starts again below.
            let mut keep = Vec::new();
            let mut restart_from = None;
            for (range, token) in self.clients.drain(..) {
                if *range.start() > knobs.users {
                    token.cancel();
                } else if *range.end() > knobs.users {
                    token.cancel();
                    restart_from = Some(*range.start());
                } else {
                    keep.push((range, token));
                }
            }
            self.clients = keep;
            if let Some(from) = restart_from {
                self.spawn(from..=knobs.users, after);
            }
        } else if knobs.users > self.users {
            self.spawn(self.users + 1..=knobs.users, after);
        }
        self.users = knobs.users;
        let rate = knobs.events_per_s();
        if respawn || (rate - self.events_per_s).abs() > 1e-9 || self.workload.is_none() {
            self.restart_workload(rate)?;
        }
        Ok(())
    }

    fn spawn(&mut self, users: std::ops::RangeInclusive<u64>, after: i64) {
        let token = self.shared.stop.child_token();
        let shared = Shared {
            stop: token.clone(),
            ..self.shared.clone()
        };
        let now = Instant::now();
        // Pollers spread over one interval, as in a run; push clients over a second.
        let ramp = match self.mode {
            Mode::Poll => self.plan.poll_interval,
            Mode::Push => Duration::from_secs(1),
        };
        let addrs: Arc<Vec<std::net::SocketAddr>> =
            Arc::new(self.servers.iter().map(|s| s.addr).collect());
        let span = (*users.end() - *users.start() + 1).max(1) as f64;
        for user in users.clone() {
            let first = now + ramp.mul_f64((user - *users.start()) as f64 / span);
            let token = self.res.tokens[user as usize - 1].clone();
            self.swarm.spawn(client(
                self.mode,
                &self.plan,
                user,
                token,
                &addrs,
                first,
                after,
                shared.clone(),
            ));
        }
        self.clients.push((users, token));
    }

    fn emitter(&self) -> anyhow::Result<Emitter> {
        emitter(
            self.mode,
            &self.plan,
            &self.shared.api,
            &self.res,
            &self.servers,
        )
    }

    fn restart_workload(&mut self, events_per_s: f64) -> anyhow::Result<()> {
        if let Some(w) = self.workload.take() {
            w.abort();
        }
        self.events_per_s = events_per_s;
        if events_per_s <= 0.0 || self.users == 0 {
            return Ok(());
        }
        let workload = Workload {
            emitter: self.emitter()?,
            users: 1..=self.users,
            events_per_s,
            payload_bytes: self.plan.payload_bytes,
            seed: self.next_event,
            first_event: self.next_event,
            max_in_flight: MAX_IN_FLIGHT,
        };
        self.next_event += 1 << 30;
        let out = self.emitted.clone();
        let now = Instant::now();
        self.workload = Some(tokio::spawn(async move {
            workload
                .run(now, now + Duration::from_secs(86_400 * 365), out)
                .await;
        }));
        Ok(())
    }

    pub(super) fn notify_all(&mut self, users: u64) {
        let Ok(emitter) = self.emitter() else { return };
        let first = self.next_event;
        self.next_event += 1 << 30;
        let bytes = self.plan.payload_bytes;
        tokio::spawn(async move {
            emit_each(&emitter, 1..=users, first, bytes, 256).await;
        });
    }

    pub(super) async fn frame(&mut self) -> LaneFrame {
        self.panicked += self.swarm.reap();
        let sample = self.sampler.next().await;
        let dots: Vec<u64> = self
            .dots
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        let delivered = sample.deliveries_per_s.round() as u64;
        self.delivered_total += delivered;
        let (p50, p99) = match self.latency.lock() {
            Ok(h) if !h.is_empty() => (
                Some(h.value_at_quantile(0.5) as f64 / 1000.0),
                Some(h.value_at_quantile(0.99) as f64 / 1000.0),
            ),
            _ => (None, None),
        };
        let redis_resets = match self.mode {
            Mode::Poll => None,
            Mode::Push => {
                let mut total = 0;
                for s in &self.servers {
                    if let Ok(Ok(Some(st))) =
                        tokio::time::timeout(Duration::from_millis(300), s.total_stats()).await
                    {
                        total += st.redis_resets;
                    }
                }
                Some(total)
            }
        };
        LaneFrame {
            sample,
            dots: dots.iter().map(|us| *us as f32 / 1000.0).collect(),
            delivered,
            delivered_total: self.delivered_total,
            latency_p50_ms: p50,
            latency_p99_ms: p99,
            redis_resets,
        }
    }

    pub(super) async fn close(mut self) {
        if let Some(w) = self.workload.take() {
            w.abort();
        }
        self.shared.stop.cancel();
        let panicked = self.panicked + self.swarm.stop(Duration::from_secs(2)).await;
        if panicked > 0 {
            self.observer.warn(&format!(
                "demo {}: {panicked} simulated clients panicked (a bug in pollpush's clients; their users' figures are incomplete)",
                self.mode
            ));
        }
        stop_all(&mut self.servers).await;
        self.res.close().await;
    }
}

async fn start_gateways(res: &Resources, plan: &Plan) -> anyhow::Result<Vec<ServerProcess>> {
    let starts =
        (0..plan.push.instances).map(|i| ServerProcess::start(&res.launch, Role::Push, i, plan));
    futures_util::future::try_join_all(starts).await
}

fn pids(res: &Resources, servers: &[ServerProcess]) -> Pids {
    Pids {
        servers: servers.iter().map(|s| s.pid()).collect(),
        ingest: res.ingest.pid(),
        postgres: res.services.postgres_pid(),
        redis: res.services.redis_pid(),
        swarm: std::process::id(),
    }
}
