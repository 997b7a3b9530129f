//! `pollpush serve`'s flags: one system under test as a process, its configuration checked.

use clap::Args;

use super::duration_flag;
use crate::config::{Fanout, PollAuth, PollBackend, PushConfig, Role, ServeConfig, SlowPolicy};
use crate::error::input;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which system under test to run.
    #[arg(long, value_enum)]
    pub role: Role,

    /// TCP port on the --bind address; 0 picks a free one. The bound address is printed on stdout
    /// as one line: `pollpush: listening on http://ADDR`.
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// Address to bind. Beyond loopback, POLLPUSH_OPERATOR_TOKEN must be set: ingest,
    /// /stats and /metrics then answer only requests that carry it.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,

    /// Name of this instance in logs and stats.
    #[arg(long, default_value = "0")]
    pub instance_id: String,

    /// How polls authenticate: db looks each token's SHA-256 up in Postgres; none verifies
    /// the token's signature (`<user>.<HMAC-SHA256 of user>`) with the key in
    /// POLLPUSH_TOKEN_KEY, without a lookup.
    #[arg(long, value_enum, default_value = "db")]
    pub poll_auth: PollAuth,

    /// Database connections in this process's pool (default: two per core, at least 4
    /// and at most 64; more only queue inside a Postgres on the same cores). Polls go over
    /// one more pipelining connection per core (at most this many).
    #[arg(long, default_value_t = crate::config::default_pool_size())]
    pub pool_size: u32,

    /// Threads of this process's async runtime (default: one per core). One thread spends
    /// less CPU per notification (no wakeups handed between threads: 16 % less at 5,000/s
    /// on 2 cores) and holds up to one core; run one instance per core to use more.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,

    /// How notifications reach the gateway instance that holds their user.
    #[arg(long, value_enum, default_value = "broadcast")]
    pub fanout: Fanout,

    /// Frames a push connection may have queued before --slow-policy applies.
    #[arg(long, default_value_t = 256)]
    pub send_queue: usize,

    /// What happens to a push connection whose send queue is full.
    #[arg(long, value_enum, default_value = "disconnect")]
    pub slow_policy: SlowPolicy,

    /// WebSocket ping (and SSE keep-alive) interval; a WebSocket silent for two intervals is
    /// closed.
    #[arg(long, default_value = "20s", value_name = "DURATION")]
    pub ping_interval: String,

    /// How long a client may take to send a request's headers, idle keep-alive time
    /// included; past it the connection is closed (slow-loris clients cannot hold sockets).
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub header_timeout: String,

    /// Long polling: a poll with `wait_ms=W` that finds nothing new is held until a
    /// notification for its user is published on Redis, or W ms (at most 300000) pass.
    #[arg(long)]
    pub long_poll: bool,

    /// What a poll asks before Postgres. redis-cache: ingest keeps each user's latest id
    /// in Redis (the sorted set `latest`; Redis 6.2 or later), a poll whose `after` is
    /// that id or newer answers `[]` without a query, and session lookups are cached in
    /// Redis until they expire, at most 5 minutes. Give it to the ingest process too.
    /// Redis not answering within 1 s: the poll answers 503, never `[]`.
    #[arg(long, value_enum, default_value = "db")]
    pub poll_backend: PollBackend,

    /// Conditional polls: every answer carries an ETag, and a poll whose If-None-Match
    /// matches gets `304 Not Modified` without a body.
    #[arg(long)]
    pub conditional: bool,

    /// Also serve HTTP/2 over cleartext (h2c with prior knowledge) on the same port.
    /// Without it, a connection that opens with the HTTP/2 preface is closed. An HTTP/2
    /// connection has no header timeout: an idle one holds its socket until it closes.
    #[arg(long)]
    pub http2: bool,

    /// PostgreSQL to use; without it an ephemeral one is started.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Redis to use; without it an ephemeral one is started.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_name = "URL")]
    pub redis_url: Option<String>,

    /// The ephemeral Postgres and Redis listen on the --bind address too (each with its
    /// password per run, in the URLs file named on stderr), so that swarm shards on other
    /// hosts can seed their users and read the counters: for a test network. Needs --bind
    /// beyond loopback; services given by URL are left as they are.
    #[arg(long)]
    pub share_services: bool,
}

impl ServeArgs {
    /// The typed configuration these flags give; durations and sizes checked.
    pub fn config(&self) -> anyhow::Result<ServeConfig> {
        if self.send_queue == 0 {
            return Err(input("--send-queue must be at least 1 frame"));
        }
        Ok(ServeConfig {
            role: self.role,
            bind: self.bind,
            port: self.port,
            instance_id: self.instance_id.clone(),
            poll_auth: self.poll_auth,
            pool_size: self.pool_size,
            push: PushConfig {
                fanout: self.fanout,
                send_queue: self.send_queue,
                slow_policy: self.slow_policy,
                ping_interval: duration_flag(
                    "--ping-interval",
                    &self.ping_interval,
                    "100ms",
                    "20s",
                )?,
            },
            header_timeout: duration_flag("--header-timeout", &self.header_timeout, "1s", "60s")?,
            long_poll: self.long_poll,
            poll_backend: self.poll_backend,
            conditional: self.conditional,
            http2: self.http2,
        })
    }
}
