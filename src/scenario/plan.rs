//! The second stage: a validated [`Plan`], every value typed, in range, with defaults filled
//! in; and its way back to TOML for a result folder's `scenario.toml`.

use std::time::Duration;

use super::raw::{
    RawFault, RawPoll, RawPush, RawScenario, RawSwarm, RawSweep, RawUsers, RawWorkload,
};
use super::target::Target;
use crate::config::{
    fmt_duration, kebab, Choice, Fanout, Mode, PollAuth, PollBackend, PollHttp, Reconnect,
    SlowPolicy, Transport,
};

/// The most users a scenario may ask for; whether this machine can hold them is checked
/// when the run starts (`run::check_resources`), with the arithmetic.
pub const MAX_USERS: u64 = 1_000_000;

/// Swarm processes a run may split its users over.
pub const MAX_SHARDS: u64 = 64;

/// Gateway processes a run may start.
pub const MAX_INSTANCES: u64 = 16;

/// The push side of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PushPlan {
    pub transport: Transport,
    pub instances: usize,
    pub fanout: Fanout,
    pub catch_up: bool,
    pub reconnect: Reconnect,
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
    pub send_queue: usize,
    pub slow_policy: SlowPolicy,
    pub ping_interval: Duration,
    pub slow_clients: u64,
    pub slow_events_per_s: f64,
    pub slow_payload_bytes: usize,
}

impl Default for PushPlan {
    fn default() -> Self {
        let gateway = crate::config::PushConfig::default();
        PushPlan {
            transport: Transport::Ws,
            instances: 1,
            fanout: gateway.fanout,
            catch_up: false,
            reconnect: Reconnect::Jitter,
            reconnect_base: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(10),
            send_queue: gateway.send_queue,
            slow_policy: gateway.slow_policy,
            ping_interval: gateway.ping_interval,
            slow_clients: 0,
            slow_events_per_s: 0.0,
            slow_payload_bytes: 8192,
        }
    }
}

/// One thing that goes wrong during the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Time after the window opens.
    pub at: Duration,
    pub action: FaultAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// `clients` push clients lose their connection and stay offline for `offline`.
    DisconnectClients { clients: u64, offline: Duration },
    /// Redis is killed (SIGKILL: every connection and subscription gone) and a fresh one
    /// starts on the same port after `down` (0 for `restart-redis`).
    KillRedis { down: Duration, restart: bool },
    /// Redis is stopped (SIGSTOP) for `down`, then continued: a stall, not a loss.
    PauseRedis { down: Duration },
    /// Postgres shuts down cleanly (fast shutdown: sessions cut, committed rows kept) and
    /// starts again on the same data after `down`.
    RestartPostgres { down: Duration },
    /// A gateway instance (`instance`, or one picked at random by the seed) is killed
    /// (SIGKILL), and started again on the same port after `down` when given.
    KillGateway {
        instance: Option<usize>,
        down: Option<Duration>,
    },
}

impl FaultAction {
    pub fn name(&self) -> &'static str {
        match self {
            FaultAction::DisconnectClients { .. } => "disconnect-clients",
            FaultAction::KillRedis { restart: true, .. } => "restart-redis",
            FaultAction::KillRedis { restart: false, .. } => "kill-redis",
            FaultAction::PauseRedis { .. } => "pause-redis",
            FaultAction::RestartPostgres { .. } => "restart-postgres",
            FaultAction::KillGateway { .. } => "kill-gateway",
        }
    }

    /// Whether the fault acts in a window of `mode`: polling has no gateway to kill.
    pub fn applies_to(&self, mode: Mode) -> bool {
        mode == Mode::Push || !matches!(self, FaultAction::KillGateway { .. })
    }

    /// The service the fault acts on, which must be the one `run` started itself.
    pub fn needs_own(&self) -> Option<&'static str> {
        match self {
            FaultAction::DisconnectClients { .. } | FaultAction::KillGateway { .. } => None,
            FaultAction::RestartPostgres { .. } => Some("Postgres"),
            _ => Some("Redis"),
        }
    }
}

/// How a check compares a figure with its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
}

impl Op {
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Eq => value == limit,
            Op::Ne => value != limit,
            Op::Ge => value >= limit,
            Op::Gt => value > limit,
        }
    }
}

/// One `[checks]` entry: a figure of the summary (`<mode>.<path>` or `ratios.<name>`), a
/// comparison, and where it was written (for messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub metric: String,
    pub op: Op,
    pub limit: f64,
    /// The condition as written, e.g. "< 50".
    pub condition: String,
    /// `file:line` or `--set checks...`.
    pub at: String,
}

/// Reads "< 50", "<= 0.5", "== 0", "!= 0", ">= 100", "> 1".
pub fn parse_condition(text: &str) -> Option<(Op, f64)> {
    let t = text.trim();
    let (op, rest) = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ]
    .into_iter()
    .find_map(|(p, op)| t.strip_prefix(p).map(|r| (op, r)))?;
    let limit: f64 = rest.trim().replace('_', "").parse().ok()?;
    limit.is_finite().then_some((op, limit))
}

/// Which request headers the simulated clients send on every HTTP request (each poll, and
/// each WebSocket or SSE upgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headers {
    /// Only what the protocol needs: Host and Authorization (plus the upgrade's own).
    Minimal,
    /// What a browser tab sends from a web app: User-Agent, Accept, Accept-Language,
    /// Accept-Encoding, Referer, sec-fetch-* and a Cookie of `cookie_bytes`.
    Browser { cookie_bytes: usize },
}

impl Headers {
    pub fn name(self) -> &'static str {
        match self {
            Headers::Minimal => "minimal",
            Headers::Browser { .. } => "browser",
        }
    }
}

/// Cookie bytes a browser profile sends when the scenario does not say.
pub const DEFAULT_COOKIE_BYTES: u64 = 800;

/// A validated scenario: every value typed, in range, with defaults filled in.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub duration: Duration,
    pub warmup: Duration,
    /// None: one poll interval plus 2 s for poll, 2 s for push.
    pub drain: Option<Duration>,
    pub modes: Vec<Mode>,
    pub seed: u64,
    pub users: u64,
    pub poll_interval: Duration,
    pub poll_auth: PollAuth,
    /// Long polling, held up to this long; None: periodic polling every `poll_interval`.
    pub poll_long: Option<Duration>,
    /// `poll.backend`: what a poll asks before Postgres.
    pub poll_backend: PollBackend,
    /// `poll.conditional`: ETags and 304s.
    pub poll_conditional: bool,
    /// `poll.http`: HTTP/1.1 or HTTP/2 (h2c).
    pub poll_http: PollHttp,
    pub events_per_s: f64,
    /// `workload.events_per_user_per_min`, when the scenario keeps each user's rate:
    /// `events_per_s` is then derived from it and the users.
    pub events_per_user_per_min: Option<f64>,
    pub payload_bytes: usize,
    pub headers: Headers,
    /// `swarm.shards`: swarm processes the users are split over; None: as many as
    /// [`USERS_PER_SHARD`] asks.
    pub shards: Option<u64>,
    pub push: PushPlan,
    pub faults: Vec<Fault>,
    pub checks: Vec<Check>,
    /// Regression thresholds (percent) by figure name or pattern, for `compare`.
    pub compare: Vec<(String, f64)>,
    pub sweep: Option<Sweep>,
    /// The `[target]` table, validated; None: pollpush's own API.
    pub target: Option<Target>,
    /// `[capacity]`: how `pollpush capacity` searches.
    pub capacity: CapacityPlan,
    /// `db.cpu_limit`: cores the ephemeral Postgres may use; None: no limit.
    pub db_cpu_limit: Option<f64>,
    /// `redis.masters`: 1 (one Redis), or an ephemeral Redis Cluster of this many masters.
    pub redis_masters: u32,
}

/// How `pollpush capacity` raises the users, and the objectives a step must meet.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityPlan {
    pub start: u64,
    pub max: u64,
    pub factor: f64,
    pub refine: u64,
    pub push_p99_ms: f64,
    pub poll_lateness_share: f64,
    pub poll_grace: Duration,
}

impl Default for CapacityPlan {
    fn default() -> Self {
        CapacityPlan {
            start: 1000,
            max: 64_000,
            factor: 2.0,
            refine: 2,
            push_p99_ms: 50.0,
            poll_lateness_share: 0.1,
            poll_grace: Duration::from_millis(500),
        }
    }
}

/// A sweep: the plan once per value of `param` (times each value of `series`).
#[derive(Debug, Clone)]
pub struct Sweep {
    pub param: String,
    pub values: Vec<toml::Value>,
    pub series: Option<String>,
    pub series_values: Vec<toml::Value>,
    /// Every combination, series-major: for each series value, every param value.
    pub points: Vec<SweepPoint>,
    /// Set when the sweep runs `[[alternatives]]` (param `alternative`), as written.
    pub alternatives: Option<Vec<super::raw::RawAlternative>>,
}

#[derive(Debug, Clone)]
pub struct SweepPoint {
    pub value: toml::Value,
    pub series_value: Option<toml::Value>,
    /// `push.instances=2,push.fanout=per-user`: names its folder under `runs/`.
    pub label: String,
    /// The scenario with these values set (and no sweep).
    pub plan: Plan,
}

/// A TOML value as written in a label: strings without quotes.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Plan {
    /// How the swarm talks to the system under test: the `[target]` table, or pollpush's
    /// own API.
    pub fn api(&self) -> Target {
        self.target
            .clone()
            .unwrap_or_else(|| Target::pollpush(self.push.transport))
    }

    /// Swarm processes this plan's users are split over: `swarm.shards`, or as many as
    /// this machine's open-files limit asks ([`crate::procs::users_per_process`]).
    pub fn shard_count(&self) -> u64 {
        self.shards
            .unwrap_or_else(|| self.users.div_ceil(crate::procs::users_per_process()))
            .max(1)
    }

    /// Drain period after the window for one mode: at least one poll interval for polling.
    pub fn drain_for(&self, mode: Mode) -> Duration {
        self.drain.unwrap_or(match mode {
            Mode::Poll if self.poll_long.is_some() => Duration::from_secs(2),
            Mode::Poll => self.poll_interval + Duration::from_secs(2),
            Mode::Push => Duration::from_secs(2),
        })
    }

    /// The fully resolved scenario as TOML, defaults filled in, for `scenario.toml`.
    pub fn to_toml(&self) -> String {
        let raw = RawScenario {
            name: Some(self.name.clone()),
            description: Some(self.description.clone()),
            duration: Some(fmt_duration(self.duration)),
            warmup: Some(fmt_duration(self.warmup)),
            drain: self.drain.map(fmt_duration),
            modes: Some(self.modes.iter().map(|m| m.to_string()).collect()),
            seed: Some(self.seed),
            users: RawUsers {
                count: Some(self.users),
                sweep: None,
            },
            poll: RawPoll {
                interval: Some(fmt_duration(self.poll_interval)),
                auth: Some(
                    match self.poll_auth {
                        PollAuth::Db => "db",
                        PollAuth::None => "none",
                    }
                    .into(),
                ),
                long: Some(self.poll_long.is_some()),
                wait: self.poll_long.map(fmt_duration),
                backend: Some(self.poll_backend.name().into()),
                conditional: Some(self.poll_conditional),
                http: Some(self.poll_http.name().into()),
            },
            push: RawPush {
                transport: Some(kebab(&self.push.transport)),
                instances: Some(self.push.instances as u64),
                fanout: Some(kebab(&self.push.fanout)),
                catch_up: Some(self.push.catch_up),
                reconnect: Some(kebab(&self.push.reconnect)),
                reconnect_base: Some(fmt_duration(self.push.reconnect_base)),
                reconnect_max: Some(fmt_duration(self.push.reconnect_max)),
                send_queue: Some(self.push.send_queue as u64),
                slow_policy: Some(kebab(&self.push.slow_policy)),
                ping_interval: Some(fmt_duration(self.push.ping_interval)),
                slow_clients: Some(self.push.slow_clients),
                slow_events_per_s: Some(self.push.slow_events_per_s),
                slow_payload_bytes: Some(self.push.slow_payload_bytes as u64),
            },
            faults: (!self.faults.is_empty()).then(|| {
                self.faults
                    .iter()
                    .map(|f| {
                        let mut raw = RawFault {
                            at: Some(fmt_duration(f.at)),
                            action: Some(f.action.name().into()),
                            ..RawFault::default()
                        };
                        match f.action {
                            FaultAction::DisconnectClients { clients, offline } => {
                                raw.clients = Some(clients);
                                raw.offline = Some(fmt_duration(offline));
                            }
                            FaultAction::KillRedis { down, .. }
                            | FaultAction::PauseRedis { down }
                            | FaultAction::RestartPostgres { down } => {
                                raw.down = Some(fmt_duration(down));
                            }
                            FaultAction::KillGateway { instance, down } => {
                                raw.instance = Some(match instance {
                                    Some(i) => toml::Value::Integer(i as i64),
                                    None => toml::Value::String("random".into()),
                                });
                                raw.down = down.map(fmt_duration);
                            }
                        }
                        raw
                    })
                    .collect()
            }),
            workload: RawWorkload {
                events_per_s: match self.events_per_user_per_min {
                    Some(_) => None,
                    None => Some(self.events_per_s),
                },
                events_per_user_per_min: self.events_per_user_per_min,
                targets: Some("uniform".into()),
                payload_bytes: Some(self.payload_bytes as u64),
            },
            swarm: RawSwarm {
                headers: Some(self.headers.name().into()),
                cookie_bytes: match self.headers {
                    Headers::Minimal => None,
                    Headers::Browser { cookie_bytes } => Some(cookie_bytes as u64),
                },
                shards: self.shards,
            },
            db: super::raw::RawDb {
                cpu_limit: self.db_cpu_limit,
            },
            redis: super::raw::RawRedis {
                masters: (self.redis_masters != 1).then_some(self.redis_masters),
            },
            checks: (!self.checks.is_empty()).then(|| {
                self.checks
                    .iter()
                    .map(|c| (c.metric.clone(), toml::Value::String(c.condition.clone())))
                    .collect()
            }),
            compare: (!self.compare.is_empty()).then(|| {
                self.compare
                    .iter()
                    .map(|(k, v)| (k.clone(), toml::Value::Float(*v)))
                    .collect()
            }),
            sweep: self
                .sweep
                .as_ref()
                .filter(|sw| sw.alternatives.is_none())
                .map(|sw| RawSweep {
                    param: Some(sw.param.clone()),
                    values: Some(sw.values.clone()),
                    series: sw.series.clone(),
                    series_values: sw.series.as_ref().map(|_| sw.series_values.clone()),
                }),
            target: self.target.as_ref().map(|t| t.raw.clone()),
            alternatives: self.sweep.as_ref().and_then(|sw| sw.alternatives.clone()),
            capacity: (self.capacity != CapacityPlan::default()).then(|| {
                let c = &self.capacity;
                super::raw::RawCapacity {
                    start: Some(c.start),
                    max: Some(c.max),
                    factor: Some(c.factor),
                    refine: Some(c.refine),
                    push_p99_ms: Some(c.push_p99_ms),
                    poll_lateness_share: Some(c.poll_lateness_share),
                    poll_grace: Some(fmt_duration(c.poll_grace)),
                }
            }),
        };
        // Plain data whose tables follow its values: serializing it cannot fail, and an
        // empty scenario.toml would lose what ran, so a failure is a bug to hear of.
        toml::to_string_pretty(&raw).expect("a resolved scenario serializes as TOML")
    }
}
