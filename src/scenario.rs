//! Scenario files in two stages: [`RawScenario`] mirrors the TOML exactly (unknown keys are
//! errors), then [`Plan`] is the validated, typed thing a run executes. Every error names
//! where the value came from: `file:line` for the file, `--set KEY` for an override.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{
    fmt_duration, kebab, Fanout, Mode, PollAuth, Reconnect, SlowPolicy, Transport,
};
use crate::error::input;

pub mod target;
pub use target::{RawTarget, Target};

/// The built-in default scenario, the same text as `scenarios/seed.toml`.
pub const SEED_TOML: &str = include_str!("../scenarios/seed.toml");

/// Above this many users one side of the run would hold more sockets than one process may
/// open here (RLIMIT_NOFILE hard limit 20,000); sharding the swarm is not built yet.
pub const MAX_USERS: u64 = 18_000;

/// Gateway processes a run may start.
pub const MAX_INSTANCES: u64 = 16;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Measurement window per mode.
    pub duration: Option<String>,
    /// Time after the ramp before the window opens.
    pub warmup: Option<String>,
    /// Time after the window during which late deliveries are still counted.
    pub drain: Option<String>,
    pub modes: Option<Vec<String>>,
    /// Seed for the random phases and event targets, so two runs draw the same load.
    pub seed: Option<u64>,
    #[serde(default)]
    pub users: RawUsers,
    #[serde(default)]
    pub poll: RawPoll,
    #[serde(default)]
    pub push: RawPush,
    #[serde(default)]
    pub workload: RawWorkload,
    #[serde(default)]
    pub swarm: RawSwarm,
    /// Pass/fail gates evaluated at the end of a run: `"push.latency_ms.p99" = "< 50"`.
    pub checks: Option<toml::Table>,
    /// Per-figure regression thresholds in percent for `compare`: `"push.latency_ms.p99" = 30`.
    pub compare: Option<toml::Table>,
    /// Things that go wrong during the window, in order of time.
    pub faults: Option<Vec<RawFault>>,
    /// Run the scenario once per value of a key (and per value of a second one).
    pub sweep: Option<RawSweep>,
    /// A system `pollpush swarm` drives that is not pollpush (see target.rs).
    pub target: Option<RawTarget>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSweep {
    /// The key swept along the x axis of the sweep plots, e.g. "push.instances".
    pub param: Option<String>,
    pub values: Option<Vec<toml::Value>>,
    /// Optional second key: one curve per value, e.g. "push.fanout".
    pub series: Option<String>,
    pub series_values: Option<Vec<toml::Value>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    /// Time after the window opens.
    pub at: Option<String>,
    pub action: Option<String>,
    /// disconnect-clients: how many clients lose their connection.
    pub clients: Option<u64>,
    /// disconnect-clients: how long they stay offline before reconnecting.
    pub offline: Option<String>,
    /// kill-redis, pause-redis, restart-postgres: how long the service is gone or
    /// stalled; kill-gateway: when to start the instance again (never without it).
    pub down: Option<String>,
    /// kill-gateway: which instance, 0-based, or "random".
    pub instance: Option<toml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawUsers {
    pub count: Option<u64>,
    pub sweep: Option<Vec<u64>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoll {
    pub interval: Option<String>,
    pub auth: Option<String>,
    /// Long polling: each client holds one request open, the server answers when something
    /// arrives (or after `wait`), and the client asks again at once.
    pub long: Option<bool>,
    /// Long polling: how long the server may hold a request.
    pub wait: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPush {
    pub transport: Option<String>,
    pub instances: Option<u64>,
    pub fanout: Option<String>,
    pub catch_up: Option<bool>,
    /// none | fixed | jitter: how a client waits before reconnecting after a drop.
    pub reconnect: Option<String>,
    pub reconnect_base: Option<String>,
    pub reconnect_max: Option<String>,
    /// Frames a connection may have queued before the slow-consumer policy applies.
    pub send_queue: Option<u64>,
    /// disconnect | drop: what happens to a connection whose queue is full.
    pub slow_policy: Option<String>,
    pub ping_interval: Option<String>,
    /// Clients (the first N users) that stop reading once connected.
    pub slow_clients: Option<u64>,
    /// Extra events per second aimed at the slow clients, so that their queues fill.
    pub slow_events_per_s: Option<f64>,
    pub slow_payload_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSwarm {
    /// minimal | browser: which request headers the simulated clients send.
    pub headers: Option<String>,
    /// browser: size of the Cookie header's value in bytes.
    pub cookie_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub events_per_s: Option<f64>,
    pub targets: Option<String>,
    pub payload_bytes: Option<u64>,
}

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

const FAULTS: &str = "\"disconnect-clients\", \"kill-gateway\", \"restart-redis\", \"kill-redis\", \"pause-redis\" or \"restart-postgres\"";

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
    pub events_per_s: f64,
    pub payload_bytes: usize,
    pub headers: Headers,
    pub push: PushPlan,
    pub faults: Vec<Fault>,
    pub checks: Vec<Check>,
    /// Regression thresholds (percent) by figure name or pattern, for `compare`.
    pub compare: Vec<(String, f64)>,
    pub sweep: Option<Sweep>,
    /// The `[target]` table, validated; None: pollpush's own API.
    pub target: Option<Target>,
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
                events_per_s: Some(self.events_per_s),
                targets: Some("uniform".into()),
                payload_bytes: Some(self.payload_bytes as u64),
            },
            swarm: RawSwarm {
                headers: Some(self.headers.name().into()),
                cookie_bytes: match self.headers {
                    Headers::Minimal => None,
                    Headers::Browser { cookie_bytes } => Some(cookie_bytes as u64),
                },
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
            sweep: self.sweep.as_ref().map(|sw| RawSweep {
                param: Some(sw.param.clone()),
                values: Some(sw.values.clone()),
                series: sw.series.clone(),
                series_values: sw.series.as_ref().map(|_| sw.series_values.clone()),
            }),
            target: self.target.as_ref().map(|t| t.raw.clone()),
        };
        toml::to_string_pretty(&raw).unwrap_or_default()
    }
}

/// Where the scenario text came from, for error messages.
pub struct Source<'a> {
    pub label: &'a str,
    pub text: &'a str,
}

/// Loads a scenario file (or the built-in seed) and applies `key=value` overrides.
pub fn load(path: Option<&Path>, overrides: &[String]) -> anyhow::Result<Plan> {
    let (label, text) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                input(format!(
                    "cannot read scenario file {}: {e} (give the path of a TOML scenario, e.g. scenarios/seed.toml)",
                    p.display()
                ))
            })?;
            (p.display().to_string(), text)
        }
        None => (
            "scenarios/seed.toml (built in)".to_string(),
            SEED_TOML.to_string(),
        ),
    };
    parse(
        &Source {
            label: &label,
            text: &text,
        },
        overrides,
    )
}

/// Parses scenario text, applies overrides, validates.
pub fn parse(src: &Source<'_>, overrides: &[String]) -> anyhow::Result<Plan> {
    // First the file alone, so that its errors carry its own line numbers.
    let mut raw: RawScenario = toml::from_str(src.text).map_err(|e| {
        input(format!(
            "scenario {}: {}",
            src.label,
            e.to_string().trim_end()
        ))
    })?;
    let mut overridden = BTreeSet::new();
    if !overrides.is_empty() {
        let mut table: toml::Table =
            toml::from_str(src.text).map_err(|e| input(format!("scenario {}: {e}", src.label)))?;
        for ov in overrides {
            let (key, value) = parse_override(ov)?;
            set_path(&mut table, &key, value)?;
            overridden.insert(key);
        }
        raw = RawScenario::deserialize(toml::Value::Table(table)).map_err(|e| {
            input(format!(
                "--set {}: {} (check the key names against scenarios/seed.toml)",
                overridden.iter().cloned().collect::<Vec<_>>().join(", "),
                e.to_string().trim_end()
            ))
        })?;
    }
    let ctx = Ctx { src, overridden };
    let sweep = raw.sweep.clone();
    let users_sweep = raw.users.sweep.clone();
    let mut plan = validate(raw, &ctx)?;
    let sweep_key = if users_sweep.is_some() {
        "users.sweep"
    } else {
        "sweep.values"
    };
    if let Some(sweep) = sweep_of(sweep, users_sweep, &ctx)? {
        let mut points = Vec::new();
        let series: Vec<Option<&toml::Value>> = match &sweep.series {
            Some(_) => sweep.series_values.iter().map(Some).collect(),
            None => vec![None],
        };
        for sv in series {
            for value in &sweep.values {
                let mut sets = vec![(sweep.param.clone(), value.clone())];
                if let (Some(key), Some(v)) = (&sweep.series, sv) {
                    sets.push((key.clone(), v.clone()));
                }
                let label = sets
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_text(v)))
                    .collect::<Vec<_>>()
                    .join(",");
                let mut ov = overrides.to_vec();
                ov.extend(sets.iter().map(|(k, v)| format!("{k}={v}")));
                let point_plan = parse_point(src, &ov).map_err(|e| {
                    input(format!(
                        "{}: the run with {label} is not a valid scenario: {}",
                        ctx.at(sweep_key),
                        e.to_string().trim_start_matches("bad input: ")
                    ))
                })?;
                points.push(SweepPoint {
                    value: value.clone(),
                    series_value: sv.cloned(),
                    label,
                    plan: point_plan,
                });
            }
        }
        plan.sweep = Some(Sweep { points, ..sweep });
    }
    Ok(plan)
}

/// One point of a sweep: the scenario with the point's values set and the sweep left out.
fn parse_point(src: &Source<'_>, overrides: &[String]) -> anyhow::Result<Plan> {
    let mut table: toml::Table =
        toml::from_str(src.text).map_err(|e| input(format!("scenario {}: {e}", src.label)))?;
    table.remove("sweep");
    if let Some(users) = table.get_mut("users").and_then(|u| u.as_table_mut()) {
        users.remove("sweep");
    }
    let text = toml::to_string(&table)?;
    let is_sweep = |ov: &String| {
        let key = ov.split('=').next().unwrap_or("").trim();
        key == "sweep" || key.starts_with("sweep.") || key == "users.sweep"
    };
    let overrides: Vec<String> = overrides.iter().filter(|o| !is_sweep(o)).cloned().collect();
    let mut plan = parse(
        &Source {
            label: src.label,
            text: &text,
        },
        &overrides,
    )?;
    plan.sweep = None;
    Ok(plan)
}

/// Keys a sweep may not vary: they name the run or belong to the sweep.
const NOT_SWEPT: &[&str] = &[
    "name",
    "description",
    "sweep",
    "checks",
    "compare",
    "faults",
    "users.sweep",
];

/// The sweep a scenario asks for (`[sweep]`, or `users.sweep` as its shorthand), checked;
/// its points are filled in by the caller.
fn sweep_of(
    raw: Option<RawSweep>,
    users_sweep: Option<Vec<u64>>,
    ctx: &Ctx<'_>,
) -> anyhow::Result<Option<Sweep>> {
    let from_users = users_sweep.is_some();
    let raw = match (raw, users_sweep) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(ctx.err(
                "users.sweep",
                "a scenario has one sweep: use either users.sweep or [sweep]",
            ))
        }
        (None, Some(users)) => RawSweep {
            param: Some("users.count".into()),
            values: Some(
                users
                    .into_iter()
                    .map(|u| toml::Value::Integer(u as i64))
                    .collect(),
            ),
            series: None,
            series_values: None,
        },
        (Some(raw), None) => raw,
    };
    let param = raw.param.ok_or_else(|| {
        ctx.err(
            "sweep",
            "needs `param`, the key to vary, e.g. param = \"push.instances\"",
        )
    })?;
    let check_key = |key: &str, field: &str| {
        if key.is_empty()
            || NOT_SWEPT
                .iter()
                .any(|k| key == *k || key.starts_with(&format!("{k}.")))
        {
            Err(ctx.err(field, format!("{key:?} cannot be swept; sweep a setting such as users.count, poll.interval or push.instances")))
        } else {
            Ok(())
        }
    };
    let values_key = if from_users {
        "users.sweep"
    } else {
        "sweep.values"
    };
    check_key(&param, "sweep.param")?;
    let values = raw.values.unwrap_or_default();
    if values.is_empty() || values.len() > 20 {
        return Err(ctx.err(
            values_key,
            "give 1 to 20 values to run, e.g. values = [1, 2, 4]",
        ));
    }
    let (series, series_values) = match (raw.series, raw.series_values) {
        (None, None) => (None, Vec::new()),
        (Some(key), Some(vals)) if !vals.is_empty() && vals.len() <= 10 => {
            check_key(&key, "sweep.series")?;
            if key == param {
                return Err(ctx.err("sweep.series", "must be another key than sweep.param"));
            }
            (Some(key), vals)
        }
        (Some(_), _) => return Err(ctx.err("sweep.series_values", "give 1 to 10 values, one curve each, e.g. series_values = [\"broadcast\", \"per-user\"]")),
        (None, Some(_)) => return Err(ctx.err("sweep.series_values", "needs sweep.series, the key they set")),
    };
    Ok(Some(Sweep {
        param,
        values,
        series,
        series_values,
        points: Vec::new(),
    }))
}

/// Splits `a.b=value` and reads the value as TOML; a bare word becomes a string.
pub fn parse_override(ov: &str) -> anyhow::Result<(String, toml::Value)> {
    let (key, value) = ov.split_once('=').ok_or_else(|| {
        input(format!(
            "--set {ov:?}: expected KEY=VALUE, e.g. --set push.instances=2"
        ))
    })?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.trim().is_empty()) {
        return Err(input(format!(
            "--set {ov:?}: the key must be a dotted path such as poll.interval"
        )));
    }
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    Ok((key.to_string(), parsed))
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> anyhow::Result<()> {
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    let mut cur = table;
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur.insert(part.to_string(), value);
            return Ok(());
        }
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| {
            input(format!(
                "--set {key}: `{}` is not a table",
                parts[..=i].join(".")
            ))
        })?;
    }
    Ok(())
}

struct Ctx<'a> {
    src: &'a Source<'a>,
    overridden: BTreeSet<String>,
}

impl Ctx<'_> {
    /// `file:line: key` or `--set key`, for the message of a bad value.
    fn at(&self, key: &str) -> String {
        let path: Vec<&str> = key.split('.').collect();
        self.at_path(key, &path)
    }

    /// Like [`Ctx::at`] for a key whose last part may itself contain dots (checks).
    fn at_path(&self, key: &str, path: &[&str]) -> String {
        if self
            .overridden
            .iter()
            .any(|o| o == key || key.starts_with(&format!("{o}.")))
        {
            return format!("--set {key}");
        }
        match line_of_path(self.src.text, path) {
            Some(line) => format!("{}:{line}: key `{key}`", self.src.label),
            None => format!("{}: key `{key}` (default)", self.src.label),
        }
    }

    fn err(&self, key: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        input(format!("{}: {msg}", self.at(key)))
    }

    fn duration(&self, key: &str, value: Option<&str>, default: &str) -> anyhow::Result<Duration> {
        let text = value.unwrap_or(default);
        humantime::parse_duration(text.trim()).map_err(|e| {
            self.err(
                key,
                format!("{text:?} is not a duration ({e}); write a number and a unit, e.g. \"30s\", \"500ms\", \"2m\""),
            )
        })
    }

    fn choice<'v>(
        &self,
        key: &str,
        value: Option<&'v str>,
        default: &'v str,
        supported: &[&str],
        known_later: &[&str],
    ) -> anyhow::Result<&'v str> {
        let v = value.unwrap_or(default);
        if supported.contains(&v) {
            return Ok(v);
        }
        if known_later.contains(&v) {
            return Err(self.err(
                key,
                format!(
                    "{v:?} is not implemented in this version; use {}",
                    supported.join(" or ")
                ),
            ));
        }
        Err(self.err(key, format!("{v:?} is not one of {}", supported.join(", "))))
    }
}

/// The 1-based line of a key given as its path of table names (an array of tables is
/// entered by index: `faults.0.at`).
pub fn line_of_path(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut span = None;
    let mut parts = path.iter().peekable();
    while let Some(&part) = parts.next() {
        if let Some(array) = item.as_array_of_tables() {
            let table = array.get(part.parse::<usize>().ok()?)?;
            span = table.span().or(span);
            let Some(&next) = parts.next() else { break };
            let (k, it) = table.get_key_value(next)?;
            span = k.span().or_else(|| it.span()).or(span);
            item = it;
            continue;
        }
        let table = item.as_table_like()?;
        let (k, it) = table.get_key_value(part)?;
        span = k.span().or_else(|| it.span());
        item = it;
    }
    let offset = span?.start;
    Some(text[..offset.min(text.len())].matches('\n').count() + 1)
}

fn validate(raw: RawScenario, ctx: &Ctx<'_>) -> anyhow::Result<Plan> {
    let name = raw.name.clone().unwrap_or_else(|| "scenario".into());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ctx.err(
            "name",
            format!("{name:?} must be letters, digits, '-' or '_' (it names the result folder)"),
        ));
    }
    let duration = ctx.duration("duration", raw.duration.as_deref(), "30s")?;
    if duration < Duration::from_secs(1) || duration > Duration::from_secs(24 * 3600) {
        return Err(ctx.err("duration", "must be between 1s and 24h"));
    }
    let warmup = ctx.duration("warmup", raw.warmup.as_deref(), "5s")?;
    if warmup > Duration::from_secs(3600) {
        return Err(ctx.err("warmup", "must be at most 1h"));
    }
    let drain = match raw.drain.as_deref() {
        Some(d) => Some(ctx.duration("drain", Some(d), d)?),
        None => None,
    };
    let mode_names = raw
        .modes
        .clone()
        .unwrap_or_else(|| vec!["poll".into(), "push".into()]);
    if mode_names.is_empty() {
        return Err(ctx.err("modes", "needs at least one of \"poll\", \"push\""));
    }
    let mut modes = Vec::new();
    for m in &mode_names {
        let mode = match m.as_str() {
            "poll" => Mode::Poll,
            "push" => Mode::Push,
            other => {
                return Err(ctx.err(
                    "modes",
                    format!("{other:?} is not a mode; use \"poll\" and/or \"push\""),
                ))
            }
        };
        if modes.contains(&mode) {
            return Err(ctx.err("modes", format!("{m:?} is listed twice")));
        }
        modes.push(mode);
    }
    let users = raw.users.count.unwrap_or(1000);
    if users == 0 || users > MAX_USERS {
        return Err(ctx.err(
            "users.count",
            format!("{users} is out of range; use 1 to {MAX_USERS} (one process may hold at most 20,000 sockets here)"),
        ));
    }
    let poll_interval = ctx.duration("poll.interval", raw.poll.interval.as_deref(), "5s")?;
    if poll_interval < Duration::from_millis(10) || poll_interval > Duration::from_secs(3600) {
        return Err(ctx.err("poll.interval", "must be between 10ms and 1h"));
    }
    let poll_auth = match ctx.choice(
        "poll.auth",
        raw.poll.auth.as_deref(),
        "db",
        &["db", "none"],
        &[],
    )? {
        "db" => PollAuth::Db,
        _ => PollAuth::None,
    };
    let push = validate_push(&raw.push, users, ctx)?;
    let poll_long = match raw.poll.long {
        Some(true) => {
            let wait = ctx.duration("poll.wait", raw.poll.wait.as_deref(), "25s")?;
            if wait < Duration::from_secs(1) || wait > Duration::from_secs(300) {
                return Err(ctx.err("poll.wait", "must be between 1s and 5m"));
            }
            if push.fanout == Fanout::None && raw.target.is_none() {
                return Err(ctx.err(
                    "poll.long",
                    "the poll API wakes held polls through Redis, and push.fanout = \"none\" publishes nothing there: use \"broadcast\" or \"per-user\"",
                ));
            }
            Some(wait)
        }
        _ => {
            if raw.poll.wait.is_some() {
                return Err(ctx.err(
                    "poll.wait",
                    "applies only with poll.long = true; set that too, or remove this key",
                ));
            }
            None
        }
    };
    let events_per_s = raw.workload.events_per_s.unwrap_or(20.0);
    if !events_per_s.is_finite() || events_per_s <= 0.0 || events_per_s > 10_000.0 {
        return Err(ctx.err(
            "workload.events_per_s",
            format!("{events_per_s} is out of range; use a number above 0 and at most 10000"),
        ));
    }
    ctx.choice(
        "workload.targets",
        raw.workload.targets.as_deref(),
        "uniform",
        &["uniform"],
        &["zipf", "broadcast"],
    )?;
    let payload_bytes = raw.workload.payload_bytes.unwrap_or(120);
    if !(64..=65_536).contains(&payload_bytes) {
        return Err(ctx.err(
            "workload.payload_bytes",
            format!("{payload_bytes} is out of range; use 64 to 65536 (the payload carries an id and a timestamp)"),
        ));
    }
    let headers = match ctx.choice(
        "swarm.headers",
        raw.swarm.headers.as_deref(),
        "minimal",
        &["minimal", "browser"],
        &[],
    )? {
        "browser" => {
            let cookie_bytes = raw.swarm.cookie_bytes.unwrap_or(DEFAULT_COOKIE_BYTES);
            if cookie_bytes > 8192 {
                return Err(ctx.err(
                    "swarm.cookie_bytes",
                    format!("{cookie_bytes} is out of range; use 0 to 8192 (servers commonly refuse larger headers)"),
                ));
            }
            Headers::Browser {
                cookie_bytes: cookie_bytes as usize,
            }
        }
        _ => {
            if raw.swarm.cookie_bytes.is_some() {
                return Err(ctx.err(
                    "swarm.cookie_bytes",
                    "applies only with swarm.headers = \"browser\"; set that too, or remove this key",
                ));
            }
            Headers::Minimal
        }
    };
    let target = raw
        .target
        .as_ref()
        .map(|t| target::validate(t, push.transport, Some(ctx)))
        .transpose()?;
    let faults = validate_faults(
        raw.faults.as_deref().unwrap_or_default(),
        duration,
        &push,
        users,
        &modes,
        ctx,
    )?;
    let mut checks = Vec::new();
    for (metric, value) in raw.checks.iter().flatten() {
        let key = format!("checks.{metric}");
        let at = ctx.at_path(&key, &["checks", metric]);
        let text = value.as_str().ok_or_else(|| {
            input(format!(
                "{at}: write the condition as a string, e.g. \"< 50\" or \"== 0\""
            ))
        })?;
        let (op, limit) = parse_condition(text).ok_or_else(|| {
            input(format!(
                "{at}: {text:?} is not a condition; use one of <, <=, ==, !=, >=, > and a number, e.g. \"< 50\""
            ))
        })?;
        checks.push(Check {
            metric: metric.clone(),
            op,
            limit,
            condition: text.trim().to_string(),
            at,
        });
    }
    let mut compare = Vec::new();
    for (metric, value) in raw.compare.iter().flatten() {
        let at = ctx.at_path(&format!("compare.{metric}"), &["compare", metric]);
        let pct = value
            .as_float()
            .or_else(|| value.as_integer().map(|i| i as f64));
        match pct {
            Some(p) if p.is_finite() && p >= 0.0 => compare.push((metric.clone(), p)),
            _ => {
                return Err(input(format!(
                    "{at}: a regression threshold is a percentage of 0 or more, e.g. 25"
                )))
            }
        }
    }
    Ok(Plan {
        name,
        description: raw.description.unwrap_or_default(),
        duration,
        warmup,
        drain,
        modes,
        seed: raw.seed.unwrap_or(1),
        users,
        poll_interval,
        poll_auth,
        poll_long,
        events_per_s,
        payload_bytes: payload_bytes as usize,
        headers,
        push,
        faults,
        checks,
        compare,
        sweep: None,
        target,
    })
}

fn validate_push(raw: &RawPush, users: u64, ctx: &Ctx<'_>) -> anyhow::Result<PushPlan> {
    let d = PushPlan::default();
    let transport = match ctx.choice(
        "push.transport",
        raw.transport.as_deref(),
        "ws",
        &["ws", "sse", "socketio"],
        &[],
    )? {
        "ws" => Transport::Ws,
        "socketio" => Transport::SocketIo,
        _ => Transport::Sse,
    };
    let fanout = match ctx.choice(
        "push.fanout",
        raw.fanout.as_deref(),
        "broadcast",
        &["broadcast", "per-user", "none"],
        &[],
    )? {
        "broadcast" => Fanout::Broadcast,
        "per-user" => Fanout::PerUser,
        _ => Fanout::None,
    };
    let instances = raw.instances.unwrap_or(1);
    if !(1..=MAX_INSTANCES).contains(&instances) {
        return Err(ctx.err(
            "push.instances",
            format!("{instances} is out of range; use 1 to {MAX_INSTANCES} gateway processes"),
        ));
    }
    let reconnect = match ctx.choice(
        "push.reconnect",
        raw.reconnect.as_deref(),
        "jitter",
        &["none", "fixed", "jitter"],
        &[],
    )? {
        "none" => Reconnect::None,
        "fixed" => Reconnect::Fixed,
        _ => Reconnect::Jitter,
    };
    let reconnect_base = ctx.duration(
        "push.reconnect_base",
        raw.reconnect_base.as_deref(),
        "500ms",
    )?;
    let reconnect_max = ctx.duration("push.reconnect_max", raw.reconnect_max.as_deref(), "10s")?;
    if reconnect_base > Duration::from_secs(60) {
        return Err(ctx.err("push.reconnect_base", "must be at most 60s"));
    }
    if reconnect_max < reconnect_base || reconnect_max > Duration::from_secs(600) {
        return Err(ctx.err(
            "push.reconnect_max",
            "must be at least push.reconnect_base and at most 10m",
        ));
    }
    let send_queue = raw.send_queue.unwrap_or(d.send_queue as u64);
    if !(1..=65_536).contains(&send_queue) {
        return Err(ctx.err(
            "push.send_queue",
            format!("{send_queue} is out of range; use 1 to 65536 frames"),
        ));
    }
    let slow_policy = match ctx.choice(
        "push.slow_policy",
        raw.slow_policy.as_deref(),
        "disconnect",
        &["disconnect", "drop"],
        &[],
    )? {
        "disconnect" => SlowPolicy::Disconnect,
        _ => SlowPolicy::Drop,
    };
    let ping_interval = ctx.duration("push.ping_interval", raw.ping_interval.as_deref(), "20s")?;
    if ping_interval < Duration::from_millis(100) || ping_interval > Duration::from_secs(3600) {
        return Err(ctx.err("push.ping_interval", "must be between 100ms and 1h"));
    }
    if transport == Transport::SocketIo && raw.catch_up == Some(true) {
        return Err(ctx.err(
            "push.catch_up",
            "a Socket.IO client has no last id to resume from; set catch_up = false with transport = \"socketio\"",
        ));
    }
    let slow_clients = raw.slow_clients.unwrap_or(0);
    if slow_clients >= users && slow_clients > 0 {
        return Err(ctx.err(
            "push.slow_clients",
            format!("{slow_clients} slow clients leave no normal client among {users} users; use fewer than users.count"),
        ));
    }
    let slow_events_per_s =
        raw.slow_events_per_s
            .unwrap_or(if slow_clients > 0 { 100.0 } else { 0.0 });
    if !slow_events_per_s.is_finite() || !(0.0..=10_000.0).contains(&slow_events_per_s) {
        return Err(ctx.err("push.slow_events_per_s", "must be between 0 and 10000"));
    }
    if slow_events_per_s > 0.0 && slow_clients == 0 {
        return Err(ctx.err(
            "push.slow_events_per_s",
            "needs push.slow_clients above 0 to aim at",
        ));
    }
    let slow_payload_bytes = raw
        .slow_payload_bytes
        .unwrap_or(d.slow_payload_bytes as u64);
    if !(64..=65_536).contains(&slow_payload_bytes) {
        return Err(ctx.err("push.slow_payload_bytes", "must be between 64 and 65536"));
    }
    Ok(PushPlan {
        transport,
        instances: instances as usize,
        fanout,
        catch_up: raw.catch_up.unwrap_or(false),
        reconnect,
        reconnect_base,
        reconnect_max,
        send_queue: send_queue as usize,
        slow_policy,
        ping_interval,
        slow_clients,
        slow_events_per_s,
        slow_payload_bytes: slow_payload_bytes as usize,
    })
}

fn validate_faults(
    raw: &[RawFault],
    duration: Duration,
    push: &PushPlan,
    users: u64,
    modes: &[Mode],
    ctx: &Ctx<'_>,
) -> anyhow::Result<Vec<Fault>> {
    let _ = push;
    let mut faults = Vec::new();
    for (i, f) in raw.iter().enumerate() {
        let key = |k: &str| format!("faults.{i}.{k}");
        let at_text = f.at.as_deref().ok_or_else(|| {
            ctx.err(
                &format!("faults.{i}"),
                "needs `at`, the time after the window opens, e.g. at = \"5s\"",
            )
        })?;
        let at = ctx.duration(&key("at"), Some(at_text), at_text)?;
        if at >= duration {
            return Err(ctx.err(
                &key("at"),
                format!(
                    "{at_text} is not inside the {} window",
                    fmt_duration(duration)
                ),
            ));
        }
        let action = f.action.as_deref().unwrap_or("");
        let action = match action {
            "disconnect-clients" => {
                if !modes.contains(&Mode::Push) {
                    return Err(ctx.err(
                        &key("action"),
                        "disconnect-clients acts on push clients; add \"push\" to modes",
                    ));
                }
                let clients = f.clients.unwrap_or(1);
                if clients == 0 || clients > users {
                    return Err(ctx.err(
                        &key("clients"),
                        format!("{clients} is out of range; use 1 to users.count ({users})"),
                    ));
                }
                let offline = ctx.duration(&key("offline"), f.offline.as_deref(), "10s")?;
                FaultAction::DisconnectClients { clients, offline }
            }
            "restart-redis" | "kill-redis" | "pause-redis" | "restart-postgres" => {
                let default = if action.starts_with("restart-") {
                    "0s"
                } else {
                    "5s"
                };
                let down = ctx.duration(&key("down"), f.down.as_deref(), default)?;
                if at + down >= duration {
                    return Err(ctx.err(
                        &key("down"),
                        format!(
                            "{} would still be {} when the {} window closes; end the fault inside it",
                            if action == "restart-postgres" { "Postgres" } else { "Redis" },
                            if action == "pause-redis" { "stalled" } else { "down" },
                            fmt_duration(duration)
                        ),
                    ));
                }
                match action {
                    "pause-redis" => FaultAction::PauseRedis { down },
                    "restart-postgres" => FaultAction::RestartPostgres { down },
                    _ => FaultAction::KillRedis {
                        down,
                        restart: action == "restart-redis",
                    },
                }
            }
            "kill-gateway" => {
                if !modes.contains(&Mode::Push) {
                    return Err(ctx.err(
                        &key("action"),
                        "kill-gateway acts on push gateway instances; add \"push\" to modes",
                    ));
                }
                let n = push.instances;
                let instance = match &f.instance {
                    None => Some(0),
                    Some(toml::Value::String(s)) if s == "random" => None,
                    Some(toml::Value::Integer(i)) if *i >= 0 && (*i as u64) < n as u64 => {
                        Some(*i as usize)
                    }
                    Some(v) => {
                        return Err(ctx.err(
                            &key("instance"),
                            format!(
                                "{v} is not an instance; use 0 to {} (push.instances - 1) or \"random\"",
                                n.saturating_sub(1)
                            ),
                        ))
                    }
                };
                let down = match f.down.as_deref() {
                    None => None,
                    Some(d) => {
                        let down = ctx.duration(&key("down"), Some(d), d)?;
                        if at + down >= duration {
                            return Err(ctx.err(
                                &key("down"),
                                format!(
                                    "the instance would still be down when the {} window closes; end the fault inside it, or leave out `down` to keep it down",
                                    fmt_duration(duration)
                                ),
                            ));
                        }
                        Some(down)
                    }
                };
                FaultAction::KillGateway { instance, down }
            }
            other => {
                return Err(ctx.err(
                    &key("action"),
                    format!("{other:?} is not a fault; use {FAULTS}"),
                ))
            }
        };
        if f.clients.is_some() && !matches!(action, FaultAction::DisconnectClients { .. }) {
            return Err(ctx.err(&key("clients"), "only disconnect-clients takes `clients`"));
        }
        if f.offline.is_some() && !matches!(action, FaultAction::DisconnectClients { .. }) {
            return Err(ctx.err(
                &key("offline"),
                "only disconnect-clients takes `offline`; Redis and Postgres faults take `down`",
            ));
        }
        if f.instance.is_some() && !matches!(action, FaultAction::KillGateway { .. }) {
            return Err(ctx.err(&key("instance"), "only kill-gateway takes `instance`"));
        }
        if f.down.is_some() && matches!(action, FaultAction::DisconnectClients { .. }) {
            return Err(ctx.err(
                &key("down"),
                "disconnect-clients takes `offline`, not `down`",
            ));
        }
        faults.push(Fault { at, action });
    }
    faults.sort_by_key(|f| f.at);
    Ok(faults)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str, overrides: &[&str]) -> anyhow::Result<Plan> {
        let ov: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        parse(
            &Source {
                label: "t.toml",
                text,
            },
            &ov,
        )
    }

    fn err(text: &str, overrides: &[&str]) -> String {
        plan(text, overrides).unwrap_err().to_string()
    }

    #[test]
    fn seed_scenario_is_the_blog_post_case() {
        let p = plan(SEED_TOML, &[]).unwrap();
        assert_eq!(p.users, 10_000);
        assert_eq!(p.poll_interval, Duration::from_secs(5));
        assert_eq!(p.events_per_s, 20.0);
        assert_eq!(p.duration, Duration::from_secs(30));
        assert_eq!(p.modes, vec![Mode::Poll, Mode::Push]);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = err("name = \"x\"\n\n[poll]\nintervall = \"5s\"\n", &[]);
        assert!(e.contains("t.toml"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(e.contains("intervall"), "{e}");
    }

    #[test]
    fn bad_duration_names_key_and_line() {
        let e = err("name = \"x\"\n[poll]\ninterval = \"5 parsecs\"\n", &[]);
        assert!(
            e.starts_with("bad input: t.toml:3: key `poll.interval`"),
            "{e}"
        );
        assert!(e.contains("e.g. \"30s\""), "{e}");
    }

    #[test]
    fn wrong_type_and_negative_count_are_errors_with_lines() {
        let e = err("[users]\ncount = \"ten\"\n", &[]);
        assert!(e.contains("line 2") && e.contains("count"), "{e}");
        let e = err("[users]\ncount = -5\n", &[]);
        assert!(e.contains("line 2"), "{e}");
        let e = err("[users]\ncount = 0\n", &[]);
        assert!(e.contains("t.toml:2: key `users.count`"), "{e}");
    }

    #[test]
    fn overrides_apply_and_are_validated_like_the_file() {
        let p = plan(
            SEED_TOML,
            &[
                "users.count=200",
                "poll.interval=\"1s\"",
                "modes=[\"push\"]",
            ],
        )
        .unwrap();
        assert_eq!(p.users, 200);
        assert_eq!(p.poll_interval, Duration::from_secs(1));
        assert_eq!(p.modes, vec![Mode::Push]);
        // A bare word is read as a string.
        let p = plan(SEED_TOML, &["poll.auth=none"]).unwrap();
        assert_eq!(p.poll_auth, PollAuth::None);
        let e = err(SEED_TOML, &["poll.interval=fast"]);
        assert!(e.contains("--set poll.interval"), "{e}");
        let e = err(SEED_TOML, &["poll.intervall=1s"]);
        assert!(e.contains("intervall"), "{e}");
        let e = err(SEED_TOML, &["nonsense"]);
        assert!(e.contains("KEY=VALUE"), "{e}");
    }

    #[test]
    fn target_tables_parse_round_trip_and_name_bad_keys() {
        let text = r#"
modes = ["push"]
[push]
transport = "socketio"
catch_up = false
[target.push]
urls = ["http://10.0.0.5:3000"]
namespace = "/live"
query = "room=u{user}"
event = "inbox"
auth = { via = "query", name = "token", value = "{token}" }
[target.notification]
event = "/data/n"
emit_us = "/data/t"
[target.emit]
via = "redis"
channel = "user:{user}"
message = '{"n":{event},"t":{emit_us}}'
"#;
        let p = plan(text, &[]).unwrap();
        let t = p.target.clone().unwrap();
        assert!(t.described);
        assert_eq!(t.namespace, "/live");
        assert_eq!(t.event.as_deref(), Some("inbox"));
        assert_eq!(t.push_urls, vec!["http://10.0.0.5:3000".to_string()]);
        assert!(matches!(t.push_auth, target::Auth::Query { ref name, .. } if name == "token"));
        assert!(matches!(t.emit, target::Emit::Redis { .. }));
        let again = plan(&p.to_toml(), &[]).unwrap();
        assert_eq!(again.target, p.target);

        let cases: &[(&str, &str, &str)] = &[
            (
                "[target.notification]\nevent = \"payload.event\"\n",
                "key `target.notification.event`",
                "not a JSON pointer",
            ),
            (
                "[target.poll]\npath = \"/inbox?since={last}\"\n",
                ":3: key `target.poll.path`",
                "{last} is not a placeholder here; use {after}, {user}, {token}",
            ),
            (
                "[target.push]\nnamespace = \"/n\"\n",
                "key `target.push.namespace`",
                "applies only to push.transport = \"socketio\"",
            ),
            (
                "[target.push]\nauth = { via = \"socketio\" }\n",
                "key `target.push.auth.via`",
                "applies only to push.transport = \"socketio\"",
            ),
            (
                "[target.emit]\nvia = \"http\"\nbody = '{\"user\":{user}}'\n",
                "key `target.emit.body`",
                "must carry {payload}",
            ),
            (
                "[target.emit]\nvia = \"kafka\"\n",
                "key `target.emit.via`",
                "not one of pollpush, http, redis",
            ),
            (
                "[target.poll]\nurl = \"http://h:1/api\"\n",
                "key `target.poll.url`",
                "not a base URL",
            ),
            (
                "[target.push]\nurl = \"x\"\n",
                "unknown field `url`",
                "urls",
            ),
        ];
        for (body, at, what) in cases {
            let e = err(&format!("modes = [\"push\"]\n{body}"), &[]);
            assert!(e.contains(at) && e.contains(what), "{body}: {e}");
        }
    }

    #[test]
    fn long_polling_keys() {
        let p = plan("[poll]\nlong = true\nwait = \"10s\"\n", &[]).unwrap();
        assert_eq!(p.poll_long, Some(Duration::from_secs(10)));
        assert_eq!(plan(&p.to_toml(), &[]).unwrap().poll_long, p.poll_long);
        assert_eq!(plan("", &[]).unwrap().poll_long, None);
        let e = err("[poll]\nwait = \"10s\"\n", &[]);
        assert!(
            e.contains(":2: key `poll.wait`") && e.contains("poll.long = true"),
            "{e}"
        );
        let e = err("[poll]\nlong = true\nwait = \"10m\"\n", &[]);
        assert!(
            e.contains("key `poll.wait`") && e.contains("between 1s and 5m"),
            "{e}"
        );
        let e = err("[poll]\nlong = true\n[push]\nfanout = \"none\"\n", &[]);
        assert!(
            e.contains("key `poll.long`") && e.contains("\"broadcast\""),
            "{e}"
        );
    }

    #[test]
    fn resolved_toml_round_trips() {
        let p = plan(SEED_TOML, &["users.count=300"]).unwrap();
        let again = plan(&p.to_toml(), &[]).unwrap();
        assert_eq!(again.users, 300);
        assert_eq!(again.poll_interval, p.poll_interval);
        assert_eq!(again.duration, p.duration);
        assert_eq!(again.events_per_s, p.events_per_s);
    }

    #[test]
    fn checks_and_compare_thresholds_parse_with_locations() {
        let text = "name = \"c\"\n[checks]\n\"push.latency_ms.p99\" = \"< 50\"\n\"poll.events.lost\" = \"== 0\"\n[compare]\n\"push.latency_ms.p99\" = 30\n";
        let p = plan(text, &[]).unwrap();
        assert_eq!(p.checks.len(), 2);
        let c = p
            .checks
            .iter()
            .find(|c| c.metric == "push.latency_ms.p99")
            .unwrap();
        assert_eq!((c.op, c.limit), (Op::Lt, 50.0));
        assert_eq!(c.at, "t.toml:3: key `checks.push.latency_ms.p99`");
        assert_eq!(p.compare, vec![("push.latency_ms.p99".to_string(), 30.0)]);
        let again = plan(&p.to_toml(), &[]).unwrap();
        assert_eq!(again.checks.len(), 2);
        assert_eq!(again.compare, p.compare);
        let e = err("[checks]\n\"push.latency_ms.p99\" = \"about 50\"\n", &[]);
        assert!(
            e.contains("t.toml:2") && e.contains("not a condition"),
            "{e}"
        );
        let e = err("[checks]\n\"push.latency_ms.p99\" = 50\n", &[]);
        assert!(e.contains("as a string"), "{e}");
        let e = err("[compare]\n\"x\" = -3\n", &[]);
        assert!(e.contains("t.toml:2"), "{e}");
    }

    #[test]
    fn conditions() {
        assert_eq!(parse_condition("<50"), Some((Op::Lt, 50.0)));
        assert_eq!(parse_condition(" >= 1_000 "), Some((Op::Ge, 1000.0)));
        assert_eq!(parse_condition("== 0"), Some((Op::Eq, 0.0)));
        assert_eq!(parse_condition("50"), None);
        assert_eq!(parse_condition("< fast"), None);
        assert!(Op::Le.holds(5.0, 5.0) && !Op::Lt.holds(5.0, 5.0));
    }

    #[test]
    fn push_keys_parse_and_round_trip() {
        let text = "[push]\ntransport = \"sse\"\ninstances = 4\nfanout = \"per-user\"\ncatch_up = true\nreconnect = \"fixed\"\nsend_queue = 32\nslow_policy = \"drop\"\nslow_clients = 2\n\n[[faults]]\nat = \"3s\"\naction = \"disconnect-clients\"\nclients = 10\noffline = \"5s\"\n";
        let p = plan(text, &[]).unwrap();
        assert_eq!(p.push.transport, Transport::Sse);
        assert_eq!(p.push.instances, 4);
        assert_eq!(p.push.fanout, Fanout::PerUser);
        assert!(p.push.catch_up);
        assert_eq!(p.push.reconnect, Reconnect::Fixed);
        assert_eq!(p.push.send_queue, 32);
        assert_eq!(p.push.slow_policy, SlowPolicy::Drop);
        assert_eq!((p.push.slow_clients, p.push.slow_events_per_s), (2, 100.0));
        assert_eq!(
            p.faults,
            vec![Fault {
                at: Duration::from_secs(3),
                action: FaultAction::DisconnectClients {
                    clients: 10,
                    offline: Duration::from_secs(5)
                }
            }]
        );
        let again = plan(&p.to_toml(), &[]).unwrap();
        assert_eq!(again.push, p.push);
        assert_eq!(again.faults, p.faults);
        let p = plan(SEED_TOML, &["push.instances=2", "push.fanout=none"]).unwrap();
        assert_eq!((p.push.instances, p.push.fanout), (2, Fanout::None));
    }

    #[test]
    fn bad_push_and_fault_keys_name_key_and_line() {
        let e = err("[push]\ninstances = 0\n", &[]);
        assert!(e.contains("t.toml:2: key `push.instances`"), "{e}");
        let e = err("[push]\nfanout = \"multicast\"\n", &[]);
        assert!(e.contains("t.toml:2") && e.contains("per-user"), "{e}");
        let e = err(
            "[push]\nreconnect_base = \"1m\"\nreconnect_max = \"2s\"\n",
            &[],
        );
        assert!(e.contains("t.toml:3"), "{e}");
        let e = err(
            "duration = \"10s\"\n[[faults]]\nat = \"3s\"\naction = \"explode\"\n",
            &[],
        );
        assert!(e.contains("t.toml:4: key `faults.0.action`"), "{e}");
        let e = err(
            "duration = \"10s\"\n[[faults]]\nat = \"30s\"\naction = \"disconnect-clients\"\n",
            &[],
        );
        assert!(
            e.contains("t.toml:3: key `faults.0.at`") && e.contains("window"),
            "{e}"
        );
        // kill-gateway: an instance that exists, push in the modes, `instance` only there.
        let gw = |extra: &str| {
            format!("modes = [\"push\"]\n[push]\ninstances = 3\n[[faults]]\nat = \"3s\"\naction = \"kill-gateway\"\n{extra}")
        };
        let p = plan(&gw("instance = \"random\"\ndown = \"2s\"\n"), &[]).unwrap();
        assert_eq!(
            p.faults[0].action,
            FaultAction::KillGateway {
                instance: None,
                down: Some(Duration::from_secs(2))
            }
        );
        let e = err(&gw("instance = 3\n"), &[]);
        assert!(
            e.contains("t.toml:7: key `faults.0.instance`") && e.contains("0 to 2"),
            "{e}"
        );
        let e = err(&gw("instance = \"any\"\n"), &[]);
        assert!(e.contains("\"random\""), "{e}");
        let e = err(
            "modes = [\"poll\"]\n[[faults]]\nat = \"3s\"\naction = \"kill-gateway\"\n",
            &[],
        );
        assert!(e.contains("add \"push\" to modes"), "{e}");
        let e = err(
            "[[faults]]\nat = \"3s\"\naction = \"kill-redis\"\ninstance = 1\n",
            &[],
        );
        assert!(e.contains("only kill-gateway takes `instance`"), "{e}");
        // The default window is 30 s: Redis down from 28 s for 5 s would outlast it.
        let e = err("[[faults]]\nat = \"28s\"\naction = \"kill-redis\"\n", &[]);
        assert!(
            e.contains("t.toml:1: key `faults.0.down`") || e.contains("faults.0.down"),
            "{e}"
        );
        let e = err(
            "[[faults]]\nat = \"3s\"\naction = \"pause-redis\"\noffline = \"2s\"\n",
            &[],
        );
        assert!(e.contains("t.toml:4: key `faults.0.offline`"), "{e}");
        let p = plan(
            "[[faults]]\nat = \"3s\"\naction = \"kill-redis\"\ndown = \"2s\"\n[[faults]]\nat = \"9s\"\naction = \"restart-redis\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            p.faults.iter().map(|f| f.action).collect::<Vec<_>>(),
            [
                FaultAction::KillRedis {
                    down: Duration::from_secs(2),
                    restart: false
                },
                FaultAction::KillRedis {
                    down: Duration::ZERO,
                    restart: true
                },
            ]
        );
        assert!(p
            .faults
            .iter()
            .all(|f| f.action.needs_own() == Some("Redis")));
        let e = err(
            "[[faults]]\nat = \"3s\"\naction = \"disconnect-clients\"\nclients = 5000\n",
            &[],
        );
        assert!(e.contains("t.toml:4: key `faults.0.clients`"), "{e}");
        let e = err("[[faults]]\nat = \"3s\"\nactoin = \"x\"\n", &[]);
        assert!(e.contains("actoin"), "{e}");
    }
}

/// The parser against generated input: random text, and random documents built from the
/// real keys with values of every type. It may refuse; it may never panic, and a refusal
/// names the file.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "name",
        "description",
        "duration",
        "warmup",
        "drain",
        "modes",
        "seed",
        "users.count",
        "users.sweep",
        "poll.interval",
        "poll.auth",
        "push.transport",
        "push.instances",
        "push.fanout",
        "push.catch_up",
        "push.reconnect",
        "push.reconnect_base",
        "push.reconnect_max",
        "push.send_queue",
        "push.slow_policy",
        "push.ping_interval",
        "push.slow_clients",
        "push.slow_events_per_s",
        "workload.events_per_s",
        "workload.targets",
        "workload.payload_bytes",
        "swarm.headers",
        "swarm.cookie_bytes",
        "sweep.param",
        "sweep.values",
        "sweep.series",
        "sweep.series_values",
        "checks.\"push.latency_ms.p99\"",
        "compare.\"push.latency_ms.p50\"",
        "unknown_key",
    ];

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|i| i.to_string()),
            (-1e12f64..1e12).prop_map(|f| format!("{f:?}")),
            any::<bool>().prop_map(|b| b.to_string()),
            "[a-z0-9 .<=>!-]{0,12}".prop_map(|s| format!("{s:?}")),
            prop::sample::select(vec![
                "\"0s\"",
                "\"1ms\"",
                "\"5s\"",
                "\"1h\"",
                "\"99999h\"",
                "\"-5s\"",
                "\"ws\"",
                "\"sse\"",
                "\"per-user\"",
                "\"none\"",
                "\"browser\"",
                "\"poll\"",
                "[\"poll\", \"push\"]",
                "[\"push\", \"push\"]",
                "[]",
                "[0]",
                "[1, 2, 3]",
                "[\"a\", 1]",
                "\"users.count\"",
                "\"push.instances\"",
                "\"< 50\"",
                "{}",
            ])
            .prop_map(str::to_string),
            prop::collection::vec(any::<i32>(), 0..4).prop_map(|v| format!("{v:?}")),
        ]
    }

    fn fault() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "disconnect-clients",
                "kill-redis",
                "restart-redis",
                "pause-redis",
                "kill-gateway",
                "restart-postgres",
                "explode",
            ]),
            value(),
            prop::option::of(value()),
            prop::option::of(value()),
        )
            .prop_map(|(action, at, down, clients)| {
                let mut t = format!("\n[[faults]]\naction = {action:?}\nat = {at}\n");
                if let Some(d) = down {
                    t += &format!("down = {d}\n");
                }
                if let Some(c) = clients {
                    t += &format!("clients = {c}\n");
                }
                t
            })
    }

    fn document() -> impl Strategy<Value = String> {
        (
            prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), value(), 0..12),
            prop::collection::vec(fault(), 0..3),
        )
            .prop_map(|(pairs, faults)| {
                let mut text: String = pairs.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
                text.extend(faults);
                text
            })
    }

    fn check(text: &str) -> Result<(), TestCaseError> {
        let src = Source {
            label: "t.toml",
            text,
        };
        if let Err(e) = parse(&src, &[]) {
            let msg = e.to_string();
            prop_assert!(msg.contains("t.toml"), "{msg}\n--- for ---\n{text}");
        }
        Ok(())
    }

    proptest! {
        // 3,000 cases each per `cargo test`; POLLPUSH_FUZZ_CASES for a longer run.
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("POLLPUSH_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
        ))]

        #[test]
        fn generated_scenarios_are_accepted_or_refused_by_name(text in document()) {
            check(&text)?;
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            check(&text)?;
        }
    }
}
