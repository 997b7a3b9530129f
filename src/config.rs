//! Typed settings shared by every layer: the domain's small enums, and [`ServeConfig`], the
//! whole configuration of one `pollpush serve` process. The lowest layer: it knows neither
//! the command line nor the scenario file; both convert into these types.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One of the two systems a run compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Poll,
    Push,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Poll => "poll",
            Mode::Push => "push",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A closed set of named values that a flag or a scenario key takes: each value with its
/// name (as written) and a one-line help text. The command line builds its choices from it.
pub trait Choice: Copy + PartialEq + 'static {
    /// Every value, its name and its help, in the order help lists them.
    const ALL: &'static [(Self, &'static str, &'static str)];

    /// The value's name as written on the command line and in scenario files.
    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(v, _, _)| *v == self)
            .map(|(_, n, _)| *n)
            .unwrap_or("")
    }

    /// The value of that name.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n, _)| *n == name).map(|c| c.0)
    }
}

/// How the push gateway carries notifications to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    Ws,
    Sse,
    #[serde(rename = "socketio")]
    SocketIo,
}

impl Choice for Transport {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (Transport::Ws, "ws", "WebSocket at GET /ws"),
        (Transport::Sse, "sse", "Server-sent events at GET /sse"),
        (
            Transport::SocketIo,
            "socketio",
            "Socket.IO v4 over WebSocket (a Socket.IO server driven by `pollpush swarm`): the \
             token in the auth payload, notifications as `notification` events on \"/\"",
        ),
    ];
}

/// How a notification finds the gateway instance that holds its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fanout {
    Broadcast,
    PerUser,
    Sharded,
    None,
}

impl Fanout {
    /// A channel per user, subscribed for the users an instance holds.
    pub fn per_user_channels(self) -> bool {
        matches!(self, Fanout::PerUser | Fanout::Sharded)
    }
}

impl Choice for Fanout {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (
            Fanout::Broadcast,
            "broadcast",
            "One shared Redis channel: every instance receives every message and drops what it \
             does not hold (the blog post's design)",
        ),
        (
            Fanout::PerUser,
            "per-user",
            "A channel per user: an instance subscribes only for the users it holds",
        ),
        (
            Fanout::Sharded,
            "sharded",
            "A channel per user on a Redis Cluster (7.0 or later), with SPUBLISH and SSUBSCRIBE: \
             each message goes only to the shard that owns its channel, so the messages spread \
             over the cluster's masters",
        ),
        (
            Fanout::None,
            "none",
            "No Redis: an instance delivers only to sockets it holds itself",
        ),
    ];
}

/// How a push client waits before reconnecting after its connection drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reconnect {
    /// At once: every dropped client comes back together (a reconnect storm).
    None,
    /// After `reconnect_base`, every time.
    Fixed,
    /// Exponential backoff with full jitter: uniform in [0, min(max, base * 2^attempt)].
    Jitter,
}

impl Choice for Reconnect {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (
            Reconnect::None,
            "none",
            "At once: every dropped client comes back together",
        ),
        (
            Reconnect::Fixed,
            "fixed",
            "After reconnect_base, every time",
        ),
        (
            Reconnect::Jitter,
            "jitter",
            "Exponential backoff with full jitter",
        ),
    ];
}

/// What the gateway does with a connection whose send queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlowPolicy {
    Disconnect,
    Drop,
}

impl Choice for SlowPolicy {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (
            SlowPolicy::Disconnect,
            "disconnect",
            "Close it (the client reconnects and, with catch-up, recovers what it missed)",
        ),
        (
            SlowPolicy::Drop,
            "drop",
            "Keep it, drop the frame, count it",
        ),
    ];
}

/// How a poll proves who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PollAuth {
    Db,
    None,
}

impl Choice for PollAuth {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (
            PollAuth::Db,
            "db",
            "Each poll looks the session token up in Postgres first (the blog post's server)",
        ),
        (
            PollAuth::None,
            "none",
            "The token's signature is verified without a lookup (a signed token)",
        ),
    ];
}

/// What a poll asks before it asks Postgres for the user's notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PollBackend {
    /// Every poll queries Postgres (the blog post's server).
    #[default]
    Db,
    /// Ingest keeps each user's latest id in Redis; a poll asks Redis first and queries
    /// Postgres only when something is newer than what the client has.
    RedisCache,
}

impl Choice for PollBackend {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (
            PollBackend::Db,
            "db",
            "Every poll queries Postgres (the blog post's server)",
        ),
        (
            PollBackend::RedisCache,
            "redis-cache",
            "Ingest keeps each user's latest id in Redis; a poll queries Postgres only when \
             something is newer than the client's id (sessions cached in Redis too)",
        ),
    ];
}

/// Which HTTP version pollers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PollHttp {
    #[default]
    H1,
    H2,
}

impl Choice for PollHttp {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (PollHttp::H1, "h1", "HTTP/1.1 with keep-alive"),
        (
            PollHttp::H2,
            "h2",
            "HTTP/2 over cleartext (h2c, prior knowledge): HPACK compresses repeated headers",
        ),
    ];
}

/// Which system under test a `serve` process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Poll,
    Push,
    Ingest,
    All,
}

impl Choice for Role {
    const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (
            Role::Poll,
            "poll",
            "The polling REST API: GET /notifications?after=ID",
        ),
        (
            Role::Push,
            "push",
            "A push gateway instance: GET /ws (WebSocket) and GET /sse, fed by Redis pub/sub per \
             --fanout; also POST /notifications (stores, then publishes or, with fanout none, \
             delivers to its own sockets)",
        ),
        (
            Role::Ingest,
            "ingest",
            "The ingest API: POST /notifications stores in Postgres, then publishes to Redis per \
             --fanout",
        ),
        (Role::All, "all", "All three on one port"),
    ];
}

impl Role {
    /// Which APIs a process of this role serves: (poll, ingest, push). A gateway instance
    /// also takes notifications in: with fanout none that is the only way it hears of them,
    /// and `run` sends each event through a random instance.
    pub fn apis(self) -> (bool, bool, bool) {
        match self {
            Role::Poll => (true, false, false),
            Role::Ingest => (false, true, false),
            Role::Push => (false, true, true),
            Role::All => (true, true, true),
        }
    }
}

/// A serde enum's name as written (`per-user`), for tables and messages.
pub fn kebab<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// A duration as the scenario and the command line write it: `5s`, `1m 30s` -> `1m30s`.
pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// How the push gateway of a process routes and protects its connections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PushConfig {
    pub fanout: Fanout,
    /// Frames a connection may have queued before `slow_policy` applies.
    pub send_queue: usize,
    pub slow_policy: SlowPolicy,
    /// WebSocket ping (and SSE keep-alive) interval.
    pub ping_interval: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            fanout: Fanout::Broadcast,
            send_queue: 256,
            slow_policy: SlowPolicy::Disconnect,
            ping_interval: Duration::from_secs(20),
        }
    }
}

/// Everything one `pollpush serve` process is told, typed. `run` builds one per child and
/// turns it into flags with [`ServeConfig::to_args`]; the command line parses those flags
/// back into the same value (a test checks the round trip), so the two cannot drift apart.
/// The database and Redis URLs are not here: they may carry passwords, and travel in the
/// child's environment (`DATABASE_URL`, `REDIS_URL`), never on its command line.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    pub role: Role,
    pub bind: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Name of this instance in logs and stats.
    pub instance_id: String,
    pub poll_auth: PollAuth,
    /// Database connections in the process's pool.
    pub pool_size: u32,
    pub push: PushConfig,
    /// How long a client may take to send a request's head, idle keep-alive included.
    pub header_timeout: Duration,
    /// Hold polls that ask to wait (long polling).
    pub long_poll: bool,
    /// Each user's latest id in Redis: ingest sets it, polls read it first.
    pub poll_backend: PollBackend,
    /// Polls answer with an ETag, and 304 to a matching If-None-Match.
    pub conditional: bool,
    /// Also serve HTTP/2 over cleartext (h2c with prior knowledge), beside HTTP/1.1.
    pub http2: bool,
}

/// The database pool a poll API gets by default: two connections per core of this machine
/// (at least 4, at most 64), the usual rule for a Postgres serving CPU-bound queries. More
/// only queue inside Postgres instead of in the pool: on 2 cores, `wrk -c64` against
/// `serve --role poll --poll-auth none` measured about 9,000 polls/s with 3 or 4
/// connections and 6,400-7,300 with 16 (benches/polling.sh, README).
pub fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    (2 * cores).clamp(4, 64)
}

impl ServeConfig {
    /// The defaults of `pollpush serve --role ROLE`.
    pub fn new(role: Role) -> Self {
        ServeConfig {
            role,
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            instance_id: "0".into(),
            poll_auth: PollAuth::Db,
            pool_size: default_pool_size(),
            push: PushConfig::default(),
            header_timeout: Duration::from_secs(60),
            long_poll: false,
            poll_backend: PollBackend::Db,
            conditional: false,
            http2: false,
        }
    }

    /// The `serve` flags that give this configuration, after the subcommand's name.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--role".to_string(),
            self.role.name().into(),
            "--bind".into(),
            self.bind.to_string(),
            "--port".into(),
            self.port.to_string(),
            "--instance-id".into(),
            self.instance_id.clone(),
            "--poll-auth".into(),
            self.poll_auth.name().into(),
            "--pool-size".into(),
            self.pool_size.to_string(),
            "--fanout".into(),
            self.push.fanout.name().into(),
            "--send-queue".into(),
            self.push.send_queue.to_string(),
            "--slow-policy".into(),
            self.push.slow_policy.name().into(),
            "--ping-interval".into(),
            fmt_duration(self.push.ping_interval),
            "--header-timeout".into(),
            fmt_duration(self.header_timeout),
        ];
        if self.long_poll {
            args.push("--long-poll".into());
        }
        if self.poll_backend != PollBackend::Db {
            args.extend(["--poll-backend".into(), self.poll_backend.name().into()]);
        }
        if self.conditional {
            args.push("--conditional".into());
        }
        if self.http2 {
            args.push("--http2".into());
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_names_match_the_serde_names() {
        fn check<T: Choice + Serialize>() {
            for (v, name, _) in T::ALL {
                assert_eq!(kebab(v), *name);
                assert!(T::from_name(name) == Some(*v));
            }
        }
        check::<Transport>();
        check::<Fanout>();
        check::<SlowPolicy>();
        check::<PollAuth>();
        check::<PollBackend>();
        check::<PollHttp>();
        check::<Reconnect>();
    }

    #[test]
    fn durations_are_written_without_spaces() {
        assert_eq!(fmt_duration(Duration::from_millis(90_500)), "1m30s500ms");
    }
}
