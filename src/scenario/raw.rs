//! The first stage: structs that mirror the scenario TOML exactly. Unknown keys are errors
//! (`deny_unknown_fields`); every value is still as written.

use serde::{Deserialize, Serialize};

use super::target::RawTarget;

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
    #[serde(default)]
    pub db: RawDb,
    #[serde(default)]
    pub redis: RawRedis,
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
    /// How `pollpush capacity` searches, and its service level objectives.
    pub capacity: Option<RawCapacity>,
    /// Ways to deliver the same notifications, each run on its own and ranked side by
    /// side (scenarios/fair.toml).
    pub alternatives: Option<Vec<RawAlternative>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlternative {
    /// A short name, also its folder: lower-case letters, digits and dashes.
    pub name: Option<String>,
    /// poll or push.
    pub mode: Option<String>,
    /// What it is, for the report.
    pub about: Option<String>,
    /// Keys set for this alternative, as `--set` would: `{ "poll.backend" = "redis-cache" }`.
    pub set: Option<toml::Table>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// Masters of the ephemeral Redis: 1, or a Redis Cluster of 3 to 16.
    pub masters: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDb {
    /// CPU cores the ephemeral Postgres may use (cgroup cpu controller).
    pub cpu_limit: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapacity {
    /// Users of the first step.
    pub start: Option<u64>,
    /// The most users a step may have.
    pub max: Option<u64>,
    /// Users grow by this factor per step until an objective breaks.
    pub factor: Option<f64>,
    /// Bisection steps between the last load held and the first that broke.
    pub refine: Option<u64>,
    /// Push objective: latency p99 at most this many ms.
    pub push_p99_ms: Option<f64>,
    /// Poll objective: schedule lateness p99 under this share of the interval.
    pub poll_lateness_share: Option<f64>,
    /// Poll objective: every notification seen within the interval plus this.
    pub poll_grace: Option<String>,
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
    /// db | redis-cache: what a poll asks before Postgres.
    pub backend: Option<String>,
    /// ETag and 304 Not Modified; the swarm keeps each answer's ETag like a browser cache.
    pub conditional: Option<bool>,
    /// h1 | h2: the HTTP version pollers speak.
    pub http: Option<String>,
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
    /// Swarm processes the users are split over; unset: as many as the file budget needs.
    pub shards: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub events_per_s: Option<f64>,
    /// Instead of events_per_s: each user's rate, kept when the users change.
    pub events_per_user_per_min: Option<f64>,
    pub targets: Option<String>,
    pub payload_bytes: Option<u64>,
}
