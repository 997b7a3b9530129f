//! From [`RawScenario`] to [`Plan`]: every key checked, with the place it came from in
//! every message.

use std::time::Duration;

/// The most events a second a scenario may ask for. Whether the machine, the emit path
/// and the system under test keep up is measured in each run (`workload.late_ratio`,
/// `workload.emitted_per_s`), not assumed.
const MAX_EVENTS_PER_S: f64 = 1_000_000.0;

use super::ctx::Ctx;
use super::faults::validate_faults;
use super::plan::*;
use super::raw::{RawPush, RawScenario, RawSwarm};
use super::target;
use crate::config::{Fanout, Mode, PollAuth, PollBackend, PollHttp, Transport};
use crate::error::input;

/// The plan a raw scenario describes; the first bad key is an error naming it.
pub fn validate(raw: RawScenario, ctx: &Ctx<'_>) -> anyhow::Result<Plan> {
    let name = validate_name(raw.name.clone(), ctx)?;
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
    let modes = validate_modes(raw.modes.clone(), ctx)?;
    let users = raw.users.count.unwrap_or(1000);
    if users == 0 || users > MAX_USERS {
        return Err(ctx.err(
            "users.count",
            format!("{users} is out of range; use 1 to {MAX_USERS}"),
        ));
    }
    let poll_interval = ctx.duration("poll.interval", raw.poll.interval.as_deref(), "5s")?;
    if poll_interval < Duration::from_millis(10) || poll_interval > Duration::from_secs(3600) {
        return Err(ctx.err("poll.interval", "must be between 10ms and 1h"));
    }
    let poll_auth = ctx.choose("poll.auth", raw.poll.auth.as_deref(), PollAuth::Db)?;
    let push = validate_push(&raw.push, users, ctx)?;
    let poll_long = validate_long_poll(&raw, push.fanout, ctx)?;
    let (poll_backend, poll_conditional, poll_http) =
        validate_poll_kind(&raw, push.fanout, poll_long.is_some(), ctx)?;
    let per_user = raw.workload.events_per_user_per_min;
    let (events_per_s, key) = match (raw.workload.events_per_s, per_user) {
        (Some(_), Some(_)) => {
            return Err(ctx.err(
                "workload.events_per_user_per_min",
                "give either workload.events_per_s (all users together) or workload.events_per_user_per_min (each user's, kept when the users change), not both",
            ))
        }
        (None, Some(r)) => {
            if !r.is_finite() || r <= 0.0 {
                return Err(ctx.err(
                    "workload.events_per_user_per_min",
                    format!("{r} is out of range; use a number above 0, e.g. 0.12 (the seed case: 20 a second for 10,000 users)"),
                ));
            }
            (users as f64 * r / 60.0, "workload.events_per_user_per_min")
        }
        (e, None) => (e.unwrap_or(20.0), "workload.events_per_s"),
    };
    if !events_per_s.is_finite() || events_per_s <= 0.0 || events_per_s > MAX_EVENTS_PER_S {
        return Err(ctx.err(
            key,
            format!("{events_per_s} events/s is out of range; the run can emit above 0 and at most 1000000"),
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
    let headers = validate_headers(&raw.swarm, ctx)?;
    let shards = raw.swarm.shards;
    if let Some(k) = shards {
        if !(1..=MAX_SHARDS).contains(&k) || k > users {
            return Err(ctx.err(
                "swarm.shards",
                format!("{k} is out of range; use 1 to {MAX_SHARDS}, and no more than the users ({users})"),
            ));
        }
    }
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
    let checks = validate_checks(&raw, ctx)?;
    let compare = validate_compare(&raw, ctx)?;
    let capacity = validate_capacity(&raw, ctx)?;
    let db_cpu_limit = raw.db.cpu_limit;
    if let Some(c) = db_cpu_limit {
        if !(c.is_finite() && (0.05..=64.0).contains(&c)) {
            return Err(ctx.err(
                "db.cpu_limit",
                format!("{c} is out of range; use 0.05 to 64 cores (0.5: half of one core)"),
            ));
        }
    }
    let redis_masters = validate_redis(&raw, push.fanout, ctx)?;
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
        poll_backend,
        poll_conditional,
        poll_http,
        events_per_s,
        events_per_user_per_min: per_user,
        payload_bytes: payload_bytes as usize,
        headers,
        shards,
        push,
        faults,
        checks,
        compare,
        sweep: None,
        target,
        capacity,
        db_cpu_limit,
        redis_masters,
    })
}

/// `redis.masters`: one Redis, or a cluster of 3 to 16 masters; a sharded fan-out needs a
/// cluster (3 masters unless told).
fn validate_redis(raw: &RawScenario, fanout: Fanout, ctx: &Ctx<'_>) -> anyhow::Result<u32> {
    let sharded = fanout == Fanout::Sharded;
    match raw.redis.masters {
        None => Ok(if sharded { 3 } else { 1 }),
        Some(1) if sharded => Err(ctx.err(
            "redis.masters",
            "push.fanout = \"sharded\" publishes with SPUBLISH on a Redis Cluster: give 3 or more masters (or leave the key out: 3)",
        )),
        Some(n) if n == 1 || (3..=16).contains(&n) => Ok(n),
        Some(n) => Err(ctx.err(
            "redis.masters",
            format!("{n}: give 1 (one Redis) or 3 to 16 (a Redis Cluster: redis-cli creates one from 3 masters)"),
        )),
    }
}

/// `[capacity]`: every value in range, defaults filled in.
fn validate_capacity(raw: &RawScenario, ctx: &Ctx<'_>) -> anyhow::Result<CapacityPlan> {
    let d = CapacityPlan::default();
    let Some(c) = &raw.capacity else {
        return Ok(d);
    };
    let start = c.start.unwrap_or(d.start);
    let max = c.max.unwrap_or(d.max.max(start));
    if start == 0 || start > MAX_USERS {
        return Err(ctx.err(
            "capacity.start",
            format!("{start} is out of range; use 1 to {MAX_USERS}"),
        ));
    }
    if max < start || max > MAX_USERS {
        return Err(ctx.err(
            "capacity.max",
            format!("{max} is out of range; use capacity.start ({start}) to {MAX_USERS}"),
        ));
    }
    let factor = c.factor.unwrap_or(d.factor);
    if !(factor.is_finite() && (1.1..=10.0).contains(&factor)) {
        return Err(ctx.err(
            "capacity.factor",
            format!("{factor} is out of range; use 1.1 to 10"),
        ));
    }
    let refine = c.refine.unwrap_or(d.refine);
    if refine > 10 {
        return Err(ctx.err(
            "capacity.refine",
            format!("{refine} is out of range; use 0 to 10"),
        ));
    }
    let push_p99_ms = c.push_p99_ms.unwrap_or(d.push_p99_ms);
    if !(push_p99_ms.is_finite() && push_p99_ms > 0.0) {
        return Err(ctx.err("capacity.push_p99_ms", "must be a number of ms above 0"));
    }
    let share = c.poll_lateness_share.unwrap_or(d.poll_lateness_share);
    if !(share.is_finite() && share > 0.0 && share <= 1.0) {
        return Err(ctx.err("capacity.poll_lateness_share", format!("{share} is out of range; use a share above 0 and at most 1 (0.1: 10 % of the interval)")));
    }
    let grace = match c.poll_grace.as_deref() {
        Some(g) => ctx.duration("capacity.poll_grace", Some(g), g)?,
        None => d.poll_grace,
    };
    Ok(CapacityPlan {
        start,
        max,
        factor,
        refine,
        push_p99_ms,
        poll_lateness_share: share,
        poll_grace: grace,
    })
}

/// The scenario's name, which names the result folder.
fn validate_name(name: Option<String>, ctx: &Ctx<'_>) -> anyhow::Result<String> {
    let name = name.unwrap_or_else(|| "scenario".into());
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
    Ok(name)
}

/// The modes to run, in order, each once.
fn validate_modes(names: Option<Vec<String>>, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Mode>> {
    let mode_names = names.unwrap_or_else(|| vec!["poll".into(), "push".into()]);
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
    Ok(modes)
}

/// Long polling: how long a poll may be held, or None for periodic polling.
fn validate_long_poll(
    raw: &RawScenario,
    fanout: Fanout,
    ctx: &Ctx<'_>,
) -> anyhow::Result<Option<Duration>> {
    let poll_long = match raw.poll.long {
        Some(true) => {
            let wait = ctx.duration("poll.wait", raw.poll.wait.as_deref(), "25s")?;
            if wait < Duration::from_secs(1) || wait > Duration::from_secs(300) {
                return Err(ctx.err("poll.wait", "must be between 1s and 5m"));
            }
            if fanout == Fanout::Sharded {
                return Err(ctx.err(
                    "poll.long",
                    "held polls wake through one Redis's PUBLISH, and push.fanout = \"sharded\" publishes with SPUBLISH on a cluster: use \"broadcast\" or \"per-user\" with long polling",
                ));
            }
            if fanout == Fanout::None && raw.target.is_none() {
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
    Ok(poll_long)
}

/// `poll.backend`, `poll.conditional` and `poll.http`, and the combinations that make no
/// sense refused.
fn validate_poll_kind(
    raw: &RawScenario,
    fanout: Fanout,
    long: bool,
    ctx: &Ctx<'_>,
) -> anyhow::Result<(PollBackend, bool, PollHttp)> {
    let backend = ctx.choose("poll.backend", raw.poll.backend.as_deref(), PollBackend::Db)?;
    let conditional = raw.poll.conditional.unwrap_or(false);
    let http = ctx.choose("poll.http", raw.poll.http.as_deref(), PollHttp::H1)?;
    let target_poll = raw
        .target
        .as_ref()
        .map(|t| t.poll.clone().unwrap_or_default());
    if backend == PollBackend::RedisCache {
        if target_poll.is_some() {
            return Err(ctx.err(
                "poll.backend",
                "\"redis-cache\" is how pollpush's own poll API caches; a [target] caches (or not) on its own side: remove this key",
            ));
        }
        if fanout == Fanout::Sharded {
            return Err(ctx.err(
                "poll.backend",
                "\"redis-cache\" keeps every user's latest id in one Redis sorted set, and push.fanout = \"sharded\" runs on a cluster: use \"broadcast\" or \"per-user\" with it",
            ));
        }
        if fanout == Fanout::None {
            return Err(ctx.err(
                "poll.backend",
                "\"redis-cache\": ingest raises each user's latest id in Redis as it publishes, and push.fanout = \"none\" publishes nothing there: use \"broadcast\" or \"per-user\"",
            ));
        }
    }
    if conditional && long {
        return Err(ctx.err(
            "poll.conditional",
            "a held poll answers when something arrives, so there is nothing to revalidate: use conditional requests with periodic polling (poll.long = false)",
        ));
    }
    if http == PollHttp::H2 {
        if let Some(tp) = &target_poll {
            if tp.h2c != Some(true) {
                return Err(ctx.err(
                    "poll.http",
                    "\"h2\" speaks HTTP/2 over cleartext with prior knowledge, and the [target]'s poll API does not say it does: set target.poll.h2c = true if it does, or use \"h1\"",
                ));
            }
        }
    }
    Ok((backend, conditional, http))
}

/// Which headers the simulated clients send.
fn validate_headers(swarm: &RawSwarm, ctx: &Ctx<'_>) -> anyhow::Result<Headers> {
    let headers = match ctx.choice(
        "swarm.headers",
        swarm.headers.as_deref(),
        "minimal",
        &["minimal", "browser"],
        &[],
    )? {
        "browser" => {
            let cookie_bytes = swarm.cookie_bytes.unwrap_or(DEFAULT_COOKIE_BYTES);
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
            if swarm.cookie_bytes.is_some() {
                return Err(ctx.err(
                    "swarm.cookie_bytes",
                    "applies only with swarm.headers = \"browser\"; set that too, or remove this key",
                ));
            }
            Headers::Minimal
        }
    };
    Ok(headers)
}

/// The `[checks]` gates: a figure, a comparison and a limit each.
fn validate_checks(raw: &RawScenario, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Check>> {
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
    Ok(checks)
}

/// The `[compare]` regression thresholds, percent by figure name or pattern.
fn validate_compare(raw: &RawScenario, ctx: &Ctx<'_>) -> anyhow::Result<Vec<(String, f64)>> {
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
    Ok(compare)
}

fn validate_push(raw: &RawPush, users: u64, ctx: &Ctx<'_>) -> anyhow::Result<PushPlan> {
    let d = PushPlan::default();
    let transport = ctx.choose("push.transport", raw.transport.as_deref(), Transport::Ws)?;
    let fanout = ctx.choose("push.fanout", raw.fanout.as_deref(), d.fanout)?;
    let instances = raw.instances.unwrap_or(1);
    if !(1..=MAX_INSTANCES).contains(&instances) {
        return Err(ctx.err(
            "push.instances",
            format!("{instances} is out of range; use 1 to {MAX_INSTANCES} gateway processes"),
        ));
    }
    let reconnect = ctx.choose("push.reconnect", raw.reconnect.as_deref(), d.reconnect)?;
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
    let slow_policy = ctx.choose(
        "push.slow_policy",
        raw.slow_policy.as_deref(),
        d.slow_policy,
    )?;
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
    let (slow_clients, slow_events_per_s, slow_payload_bytes) = validate_slow(raw, users, ctx)?;
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
        slow_payload_bytes,
    })
}

/// Slow clients: how many, and the stream of events aimed at them.
fn validate_slow(raw: &RawPush, users: u64, ctx: &Ctx<'_>) -> anyhow::Result<(u64, f64, usize)> {
    let d = PushPlan::default();
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
            "needs push.slow_clients above 0 to aim at; to run without slow clients, set both to 0 (--set push.slow_clients=0 --set push.slow_events_per_s=0)",
        ));
    }
    let slow_payload_bytes = raw
        .slow_payload_bytes
        .unwrap_or(d.slow_payload_bytes as u64);
    if !(64..=65_536).contains(&slow_payload_bytes) {
        return Err(ctx.err("push.slow_payload_bytes", "must be between 64 and 65536"));
    }
    Ok((slow_clients, slow_events_per_s, slow_payload_bytes as usize))
}
