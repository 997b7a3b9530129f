//! A live run for a room (`pollpush demo`): polling and push side by side at once, each on
//! its own Postgres, Redis and servers, so that each pane's figures are its own. Once a
//! second a [`Frame`] holds each lane's row as a run's sampler measures it (Postgres's own
//! query count, requests, bytes, CPU of each component) and every notification delivered
//! in that second as a latency. Knobs (users, poll interval, notification rate, gateway
//! instances, fan-out) and actions (kill Redis, kill a gateway, drop clients, notify
//! everyone) change the run while it goes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::load::emitter;
use super::resources::Resources;
use super::sampler::{Sampler, Sources};
use super::servers::{stop_all, ServerProcess};
use super::setup::RunOptions;
use super::usage::Pids;
use crate::backend::db;
use crate::config::{Choice, Fanout, Mode, Role};
use crate::metrics::events::{Emitted, Report, Reports};
use crate::result::Sample;
use crate::scenario::Plan;
use crate::swarm::poller::Poller;
use crate::swarm::push::{ClientFaults, PushClient};
use crate::swarm::{Live, Meter, Shared};
use crate::workload::{emit_each, Emitter, Workload, MAX_IN_FLIGHT};

/// What the room can change while the demo runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knobs {
    pub users: u64,
    pub interval_s: f64,
    /// Notifications per user per minute: kept per user when the users change, so the
    /// demo keeps the seed case's point at any size (0.12: 20 a second for 10,000 users).
    pub events_per_user_per_min: f64,
    pub instances: usize,
    pub fanout: String,
}

impl Knobs {
    pub fn events_per_s(&self) -> f64 {
        self.users as f64 * self.events_per_user_per_min / 60.0
    }

    /// The reason these knobs cannot be taken, if any.
    pub fn refusal(&self, max_users: u64) -> Option<String> {
        if self.users == 0 || self.users > max_users {
            return Some(format!(
                "users: {} is outside 1..={max_users}, the most this demo seeded and this machine holds (start it with --max-users for more)",
                self.users
            ));
        }
        if !(self.interval_s.is_finite() && (0.5..=60.0).contains(&self.interval_s)) {
            return Some(format!(
                "poll interval: {} s is outside 0.5..=60 s",
                self.interval_s
            ));
        }
        if !(self.events_per_user_per_min.is_finite() && self.events_per_user_per_min >= 0.0) {
            return Some(format!(
                "notifications per user per minute: {} is not a rate; give 0 or more",
                self.events_per_user_per_min
            ));
        }
        if self.events_per_s() > MAX_EVENTS_PER_S {
            return Some(format!(
                "{:.0} notifications a second ({} users x {} a minute each) is more than the demo's {MAX_EVENTS_PER_S}: lower the rate or the users",
                self.events_per_s(),
                self.users,
                self.events_per_user_per_min
            ));
        }
        if !(1..=MAX_INSTANCES).contains(&self.instances) {
            return Some(format!(
                "gateway instances: {} is outside 1..={MAX_INSTANCES}",
                self.instances
            ));
        }
        match Fanout::from_name(&self.fanout) {
            Some(Fanout::Broadcast) | Some(Fanout::PerUser) => None,
            _ => Some(format!(
                "fan-out: {:?} is not one the demo runs; give broadcast or per-user",
                self.fanout
            )),
        }
    }
}

/// The most notifications a second the demo emits in each lane: one machine runs both
/// lanes and the room's clients.
pub const MAX_EVENTS_PER_S: f64 = 2000.0;
pub const MAX_INSTANCES: usize = 8;
/// Latencies kept per lane per second for the page's dots (the first of the second).
pub const DOTS_PER_SECOND: usize = 400;

/// Buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// SIGKILL the push lane's Redis; it comes back after 3 s.
    KillRedis,
    /// SIGKILL one gateway instance; it comes back after 5 s on its port.
    KillGateway,
    /// Every push client drops its connection and comes back (with jitter).
    DropClients,
    /// One notification to every user of both lanes at once.
    NotifyAll,
}

/// One lane's second.
#[derive(Debug, Clone, Serialize)]
pub struct LaneFrame {
    /// The run's own per-second row for this lane.
    pub sample: Sample,
    /// Latency (ms) of the notifications delivered in this second, up to
    /// [`DOTS_PER_SECOND`].
    pub dots: Vec<f32>,
    pub delivered: u64,
    /// Since the demo began.
    pub delivered_total: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Push: the gateways' Redis reconnections so far.
    pub redis_resets: Option<u64>,
}

/// One second of the demo.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    pub t_s: f64,
    pub knobs: Knobs,
    pub poll: LaneFrame,
    pub push: LaneFrame,
    /// What happened in this second (a knob changed, a fault fired).
    pub notes: Vec<String>,
}

enum Command {
    Set(Knobs, oneshot::Sender<Result<String, String>>),
    Act(Action, oneshot::Sender<Result<String, String>>),
}

/// The running demo: where to send changes, where frames come out, and the frames so far.
#[derive(Clone)]
pub struct Demo {
    commands: mpsc::Sender<Command>,
    pub frames: broadcast::Sender<Arc<Frame>>,
    pub history: Arc<Mutex<Vec<Arc<Frame>>>>,
    pub knobs: Arc<Mutex<Knobs>>,
    pub max_users: u64,
    /// Cancelled when the demo ends: streams of frames end with it.
    pub stop: CancellationToken,
}

impl Demo {
    /// Changes the knobs; Err with the reason when they cannot be taken (nothing changes).
    pub async fn set(&self, knobs: Knobs) -> Result<String, String> {
        if let Some(why) = knobs.refusal(self.max_users) {
            return Err(why);
        }
        self.ask(|tx| Command::Set(knobs, tx)).await
    }

    pub async fn act(&self, action: Action) -> Result<String, String> {
        self.ask(|tx| Command::Act(action, tx)).await
    }

    async fn ask(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<String, String>>) -> Command,
    ) -> Result<String, String> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| "the demo has stopped".to_string())?;
        rx.await.map_err(|_| "the demo has stopped".to_string())?
    }
}

/// Starts both lanes and the loop that runs them; the loop ends when `stop` is cancelled.
pub async fn start(
    plan: Plan,
    opts: &RunOptions,
    knobs: Knobs,
    max_users: u64,
    stop: CancellationToken,
) -> anyhow::Result<(Demo, JoinHandle<()>)> {
    if let Some(why) = knobs.refusal(max_users) {
        return Err(crate::error::input(why));
    }
    let mut seeded = plan.clone();
    seeded.users = max_users;
    seeded.poll_interval = Duration::from_secs_f64(knobs.interval_s);
    seeded.push.instances = knobs.instances;
    seeded.push.fanout = Fanout::from_name(&knobs.fanout).unwrap_or(Fanout::Broadcast);
    opts.observer
        .note("poll lane: starting Postgres, Redis, ingest and the poll API");
    let mut poll = Lane::start(Mode::Poll, seeded.clone(), opts).await?;
    opts.observer
        .note("push lane: starting Postgres, Redis and the gateways");
    let mut push = Lane::start(Mode::Push, seeded, opts).await?;
    poll.apply(&knobs, true).await?;
    push.apply(&knobs, true).await?;
    let (tx, rx) = mpsc::channel(16);
    let (frames, _) = broadcast::channel(64);
    let demo = Demo {
        commands: tx,
        frames: frames.clone(),
        history: Default::default(),
        knobs: Arc::new(Mutex::new(knobs.clone())),
        max_users,
        stop: stop.clone(),
    };
    let looped = demo.clone();
    let task = tokio::spawn(async move {
        run_loop(poll, push, knobs, rx, looped, stop).await;
    });
    Ok((demo, task))
}

async fn run_loop(
    mut poll: Lane,
    mut push: Lane,
    mut knobs: Knobs,
    mut rx: mpsc::Receiver<Command>,
    demo: Demo,
    stop: CancellationToken,
) {
    let start = Instant::now();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut notes: Vec<String> = Vec::new();
    let never = start + Duration::from_secs(86_400 * 365);
    let mut redis_back: Option<Instant> = None;
    let mut gateway_back: Option<(usize, Instant)> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                let (p, q) = tokio::join!(poll.frame(), push.frame());
                let frame = Arc::new(Frame {
                    t_s: (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                    knobs: knobs.clone(),
                    poll: p,
                    push: q,
                    notes: std::mem::take(&mut notes),
                });
                if let Ok(mut h) = demo.history.lock() {
                    h.push(frame.clone());
                }
                let _ = demo.frames.send(frame);
            }
            _ = tokio::time::sleep_until(redis_back.unwrap_or(never)), if redis_back.is_some() => {
                redis_back = None;
                let msg = match push.res.services.redis.as_mut() {
                    Some(r) => match r.revive().await {
                        Ok(()) => "push: Redis is back (empty: every subscription is gone until the gateways reconnect)".to_string(),
                        Err(e) => format!("push: Redis did not start again: {e:#}"),
                    },
                    None => "push: no Redis of ours".into(),
                };
                notes.push(msg);
            }
            _ = tokio::time::sleep_until(gateway_back.map_or(never, |g| g.1)), if gateway_back.is_some() => {
                let (i, _) = gateway_back.take().expect("checked");
                let msg = match push.servers.get_mut(i) {
                    Some(s) => match s.restart().await {
                        Ok(()) => format!("push: gateway {i} is back on its port"),
                        Err(e) => format!("push: gateway {i} did not start again: {e:#}"),
                    },
                    None => format!("push: gateway {i} is gone (instances changed)"),
                };
                push.refresh_pids();
                notes.push(msg);
            }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                match cmd {
                    Command::Set(new, reply) => {
                        let result = change(&mut poll, &mut push, &knobs, &new).await;
                        if result.is_ok() {
                            knobs = new.clone();
                            if let Ok(mut k) = demo.knobs.lock() {
                                *k = new;
                            }
                        }
                        if let Ok(msg) = &result {
                            notes.push(msg.clone());
                        }
                        let _ = reply.send(result);
                    }
                    Command::Act(action, reply) => {
                        let result = match action {
                            Action::KillRedis if redis_back.is_some() => Err("Redis is already down; it comes back within 3 s".to_string()),
                            Action::KillRedis => match push.res.services.redis.as_mut() {
                                Some(r) => {
                                    r.kill();
                                    redis_back = Some(Instant::now() + Duration::from_secs(3));
                                    Ok("push: Redis killed (SIGKILL); back in 3 s".to_string())
                                }
                                None => Err("this demo's Redis is not its own to kill".to_string()),
                            },
                            Action::KillGateway if gateway_back.is_some() => Err("a gateway is already down; it comes back within 5 s".to_string()),
                            Action::KillGateway => {
                                let i = push.servers.len() - 1;
                                if push.servers[i].kill().await {
                                    gateway_back = Some((i, Instant::now() + Duration::from_secs(5)));
                                    Ok(match i {
                                        0 => "push: the only gateway killed (SIGKILL): its clients retry, with backoff, until it is back in 5 s; what is sent meanwhile is lost".to_string(),
                                        _ => format!("push: gateway {i} killed (SIGKILL); its clients go to the others, and it is back in 5 s"),
                                    })
                                } else {
                                    Err("no gateway of ours to kill".to_string())
                                }
                            }
                            Action::DropClients => {
                                let users: Vec<u64> = (1..=knobs.users).collect();
                                push.faults.take_offline(&users, crate::now_us() + 1_000_000);
                                Ok(format!("push: {} clients dropped their connections; they come back after 1 s, with jitter", knobs.users))
                            }
                            Action::NotifyAll => {
                                poll.notify_all(knobs.users);
                                push.notify_all(knobs.users);
                                Ok(format!("both: one notification to each of {} users, now", knobs.users))
                            }
                        };
                        if let Ok(msg) = &result {
                            notes.push(msg.clone());
                        }
                        let _ = reply.send(result);
                    }
                }
            }
        }
    }
    poll.close().await;
    push.close().await;
}

/// Applies new knobs to both lanes: what changed, in words.
async fn change(
    poll: &mut Lane,
    push: &mut Lane,
    old: &Knobs,
    new: &Knobs,
) -> Result<String, String> {
    let servers = old.instances != new.instances || old.fanout != new.fanout;
    if servers {
        push.plan.push.instances = new.instances;
        push.plan.push.fanout = Fanout::from_name(&new.fanout).unwrap_or(Fanout::Broadcast);
        push.restart_servers().await.map_err(|e| format!("{e:#}"))?;
    }
    poll.apply(
        new,
        old.users != new.users || old.interval_s != new.interval_s,
    )
    .await
    .map_err(|e| format!("{e:#}"))?;
    push.apply(new, servers || old.users != new.users)
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok(format!(
        "now: {} users, poll every {} s, {} notifications per user per minute ({:.1}/s), {} gateway instance(s), {} fan-out",
        new.users,
        new.interval_s,
        new.events_per_user_per_min,
        new.events_per_s(),
        new.instances,
        new.fanout
    ))
}

/// One system under test with its own services, servers, clients and emitter.
struct Lane {
    mode: Mode,
    plan: Plan,
    res: Resources,
    servers: Vec<ServerProcess>,
    shared: Shared,
    faults: Arc<ClientFaults>,
    /// The running clients: their users and the token that stops them.
    clients: Vec<(std::ops::RangeInclusive<u64>, CancellationToken)>,
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
    async fn start(mode: Mode, plan: Plan, opts: &RunOptions) -> anyhow::Result<Lane> {
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
        Ok(Lane {
            mode,
            next_event: if mode == Mode::Poll { 1 } else { 1 << 40 },
            plan,
            res,
            servers,
            shared,
            faults,
            clients: Vec::new(),
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

    fn refresh_pids(&mut self) {
        self.sampler.src.pids = pids(&self.res, &self.servers);
    }

    /// Stops the gateways and starts the plan's number of them with its fan-out.
    async fn restart_servers(&mut self) -> anyhow::Result<()> {
        stop_all(&mut self.servers).await;
        self.servers = start_gateways(&self.res, &self.plan).await?;
        self.shared.server = self.servers[0].addr;
        self.refresh_pids();
        Ok(())
    }

    /// Brings the clients and the emitter to `knobs`; `respawn` starts every client anew
    /// (a new interval, new gateways), otherwise only the difference in users changes.
    async fn apply(&mut self, knobs: &Knobs, respawn: bool) -> anyhow::Result<()> {
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
            let shared = shared.clone();
            match self.mode {
                Mode::Poll => {
                    tokio::spawn(
                        Poller {
                            user,
                            token,
                            interval: self.plan.poll_interval,
                            first,
                            after,
                            wait: None,
                            conditional: false,
                            h2: false,
                            cached: None,
                        }
                        .run(shared),
                    );
                }
                Mode::Push => {
                    tokio::spawn(
                        PushClient::new(user, token, addrs.clone(), first, after, &self.plan.push)
                            .run(shared),
                    );
                }
            }
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

    fn notify_all(&mut self, users: u64) {
        let Ok(emitter) = self.emitter() else { return };
        let first = self.next_event;
        self.next_event += 1 << 30;
        let bytes = self.plan.payload_bytes;
        tokio::spawn(async move {
            emit_each(&emitter, 1..=users, first, bytes, 256).await;
        });
    }

    async fn frame(&mut self) -> LaneFrame {
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

    async fn close(mut self) {
        if let Some(w) = self.workload.take() {
            w.abort();
        }
        self.shared.stop.cancel();
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

/// The per-second rows of one lane as `timeseries.csv` columns, with the demo's own.
pub fn csv(frames: &[Arc<Frame>]) -> String {
    let mut out = String::new();
    let Some(first) = frames.first() else {
        return out;
    };
    let head: Vec<&str> = first.poll.sample.csv_fields().iter().map(|f| f.0).collect();
    out += &format!(
        "mode,demo_t_s,users,interval_s,events_per_user_per_min,instances,fanout,delivered,latency_p50_ms,latency_p99_ms,{}\n",
        head.join(",")
    );
    for f in frames {
        for (mode, lane) in [("poll", &f.poll), ("push", &f.push)] {
            let fields: Vec<String> = lane.sample.csv_fields().into_iter().map(|x| x.1).collect();
            let o = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_default();
            out += &format!(
                "{mode},{},{},{},{},{},{},{},{},{},{}\n",
                f.t_s,
                f.knobs.users,
                f.knobs.interval_s,
                f.knobs.events_per_user_per_min,
                f.knobs.instances,
                f.knobs.fanout,
                lane.delivered,
                o(lane.latency_p50_ms),
                o(lane.latency_p99_ms),
                fields.join(",")
            );
        }
    }
    out
}
