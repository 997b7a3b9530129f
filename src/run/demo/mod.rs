//! A live run for a room (`pollpush demo`): polling and push side by side at once, each on
//! its own Postgres, Redis and servers, so that each pane's figures are its own. Once a
//! second a [`Frame`] holds each lane's row as a run's sampler measures it (Postgres's own
//! query count, requests, bytes, CPU of each component) and every notification delivered
//! in that second as a latency. Knobs (users, poll interval, notification rate, gateway
//! instances, fan-out) and actions (kill Redis, kill a gateway, drop clients, notify
//! everyone) change the run while it goes.

mod lane;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::setup::RunOptions;
use crate::config::{Choice, Fanout, Mode};
use crate::result::Sample;
use crate::scenario::Plan;
use lane::Lane;

/// The scenario keys `run` honours and the demo's lanes do not (they poll periodically,
/// over HTTP/1.1, for whole answers): named with what to do instead, never ignored.
pub fn plan_refusal(plan: &Plan) -> Option<String> {
    let unsupported: Vec<&str> = [
        (plan.poll_long.is_some(), "poll.long"),
        (plan.poll_conditional, "poll.conditional"),
        (
            plan.poll_http != crate::config::PollHttp::default(),
            "poll.http",
        ),
    ]
    .into_iter()
    .filter_map(|(set, key)| set.then_some(key))
    .collect();
    (!unsupported.is_empty()).then(|| {
        format!(
            "the scenario sets {}, which the demo's lanes do not do yet (they poll periodically over HTTP/1.1): remove it, or measure it with `pollpush run` (scenarios/fair.toml runs every kind of poll)",
            unsupported.join(", ")
        )
    })
}

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

/// The lanes and what the loop keeps between its events.
struct Controller {
    poll: Lane,
    push: Lane,
    knobs: Knobs,
    demo: Demo,
    start: Instant,
    /// Said in the next frame.
    notes: Vec<String>,
    /// When the killed Redis starts again.
    redis_back: Option<Instant>,
    /// Which gateway was killed, and when it starts again.
    gateway_back: Option<(usize, Instant)>,
}

async fn run_loop(
    poll: Lane,
    push: Lane,
    knobs: Knobs,
    mut rx: mpsc::Receiver<Command>,
    demo: Demo,
    stop: CancellationToken,
) {
    let start = Instant::now();
    let mut c = Controller {
        poll,
        push,
        knobs,
        demo,
        start,
        notes: Vec::new(),
        redis_back: None,
        gateway_back: None,
    };
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let never = start + Duration::from_secs(86_400 * 365);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => c.frame().await,
            _ = tokio::time::sleep_until(c.redis_back.unwrap_or(never)), if c.redis_back.is_some() => {
                c.revive_redis().await;
            }
            _ = tokio::time::sleep_until(c.gateway_back.map_or(never, |g| g.1)), if c.gateway_back.is_some() => {
                c.revive_gateway().await;
            }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                let (result, reply) = match cmd {
                    Command::Set(knobs, reply) => (c.set(knobs).await, reply),
                    Command::Act(action, reply) => (c.act(action).await, reply),
                };
                if let Ok(msg) = &result {
                    c.notes.push(msg.clone());
                }
                let _ = reply.send(result);
            }
        }
    }
    c.poll.close().await;
    c.push.close().await;
}

impl Controller {
    /// Both lanes' second, to the page and the history.
    async fn frame(&mut self) {
        let (p, q) = tokio::join!(self.poll.frame(), self.push.frame());
        let frame = Arc::new(Frame {
            t_s: (self.start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            knobs: self.knobs.clone(),
            poll: p,
            push: q,
            notes: std::mem::take(&mut self.notes),
        });
        if let Ok(mut h) = self.demo.history.lock() {
            h.push(frame.clone());
        }
        let _ = self.demo.frames.send(frame);
    }

    async fn revive_redis(&mut self) {
        self.redis_back = None;
        let msg = match self.push.res.services.redis.as_mut() {
            Some(r) => match r.revive().await {
                Ok(()) => "push: Redis is back (empty: every subscription is gone until the gateways reconnect)".to_string(),
                Err(e) => format!("push: Redis did not start again: {e:#}"),
            },
            None => "push: no Redis of ours".into(),
        };
        self.notes.push(msg);
    }

    async fn revive_gateway(&mut self) {
        let Some((i, _)) = self.gateway_back.take() else {
            return;
        };
        let msg = match self.push.servers.get_mut(i) {
            Some(s) => match s.restart().await {
                Ok(()) => format!("push: gateway {i} is back on its port"),
                Err(e) => format!("push: gateway {i} did not start again: {e:#}"),
            },
            None => format!("push: gateway {i} is gone (instances changed)"),
        };
        self.push.refresh_pids();
        self.notes.push(msg);
    }

    async fn set(&mut self, new: Knobs) -> Result<String, String> {
        let said = change(&mut self.poll, &mut self.push, &self.knobs, &new).await?;
        if let Ok(mut k) = self.demo.knobs.lock() {
            *k = new.clone();
        }
        self.knobs = new;
        Ok(said)
    }

    async fn act(&mut self, action: Action) -> Result<String, String> {
        let users = self.knobs.users;
        match action {
            Action::KillRedis if self.redis_back.is_some() => {
                Err("Redis is already down; it comes back within 3 s".to_string())
            }
            Action::KillRedis => match self.push.res.services.redis.as_mut() {
                Some(r) => {
                    r.kill().await;
                    self.redis_back = Some(Instant::now() + Duration::from_secs(3));
                    Ok("push: Redis killed (SIGKILL); back in 3 s".to_string())
                }
                None => Err("this demo's Redis is not its own to kill".to_string()),
            },
            Action::KillGateway if self.gateway_back.is_some() => {
                Err("a gateway is already down; it comes back within 5 s".to_string())
            }
            Action::KillGateway => {
                let i = self.push.servers.len() - 1;
                if !self.push.servers[i].kill().await {
                    return Err("no gateway of ours to kill".to_string());
                }
                self.gateway_back = Some((i, Instant::now() + Duration::from_secs(5)));
                Ok(match i {
                    0 => "push: the only gateway killed (SIGKILL): its clients retry, with backoff, until it is back in 5 s; what is sent meanwhile is lost".to_string(),
                    _ => format!("push: gateway {i} killed (SIGKILL); its clients go to the others, and it is back in 5 s"),
                })
            }
            Action::DropClients => {
                let all: Vec<u64> = (1..=users).collect();
                self.push
                    .faults
                    .take_offline(&all, crate::now_us() + 1_000_000);
                Ok(format!("push: {users} clients dropped their connections; they come back after 1 s, with jitter"))
            }
            Action::NotifyAll => {
                self.poll.notify_all(users);
                self.push.notify_all(users);
                Ok(format!(
                    "both: one notification to each of {users} users, now"
                ))
            }
        }
    }
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
    // Clients start over only when they must: pollers for a new interval, push clients
    // for new gateways. Otherwise only the users above or below the old count change.
    poll.apply(new, old.interval_s != new.interval_s)
        .await
        .map_err(|e| format!("{e:#}"))?;
    push.apply(new, servers)
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
