//! What a run is given before it starts ([`RunOptions`], the [`Remote`] servers of
//! `pollpush swarm`), and the checks that refuse a request the engine cannot honour, before
//! anything starts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::observe::Observer;
use crate::config::{fmt_duration, Mode, Transport};
use crate::error::{environment, input};
use crate::scenario::target::Emit;
use crate::scenario::{FaultAction, Plan};

/// What `execute` needs besides the plan.
#[derive(Clone)]
pub struct RunOptions {
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    /// Servers started elsewhere to drive (`pollpush swarm`); None: start our own.
    pub remote: Option<Remote>,
    /// The `pollpush` binary to start servers from (`current_exe` for the CLI).
    pub server_exe: PathBuf,
    /// Where server processes write their logs; None discards them.
    pub log_dir: Option<PathBuf>,
    /// Told of each step and phase; the engine never prints.
    pub observer: Arc<dyn Observer>,
    /// This process is one shard of a run split elsewhere (`swarm --shard I/K`).
    pub shard: Option<ShardSpec>,
}

/// What `swarm --shard I/K` is told by whoever split the run.
#[derive(Debug, Clone)]
pub struct ShardSpec {
    pub info: crate::result::ShardInfo,
    /// When the clients start (the ramp begins), the same instant in every shard.
    pub start_at: Option<SystemTime>,
    /// Notifications up to this id existed before the run: clients start after it. None:
    /// read it from the database (0 without one).
    pub after: Option<i64>,
    /// The first event number of the mode (before this shard's offset); None: 1.
    pub first_event: Option<u64>,
}

/// The servers `pollpush swarm` drives, started by someone else.
#[derive(Debug, Clone)]
pub struct Remote {
    pub poll: Option<std::net::SocketAddr>,
    pub push: Vec<std::net::SocketAddr>,
    /// Where push clients connect when that is not the instances themselves: a balancer in
    /// front of them (`swarm --push-replicas`).
    pub push_clients: Option<Vec<std::net::SocketAddr>>,
    pub ingest: Option<std::net::SocketAddr>,
    /// Each address as the user gave it (flag or scenario key, and URL), for messages.
    pub given: Vec<(String, std::net::SocketAddr)>,
    /// Processes on this machine to measure as the poll server and as the push instances
    /// (in the order of `push`): their CPU and memory count as the servers'.
    pub poll_pid: Option<u32>,
    pub push_pids: Vec<u32>,
    /// Prometheus endpoints of the poll server and of the push instances (in the order of
    /// `push`), read for their CPU and memory where no pid is given.
    pub poll_metrics: Option<String>,
    pub push_metrics: Vec<String>,
}

impl Remote {
    /// Says at once when a target is not there, rather than after a run of failed
    /// connections.
    pub async fn probe(&self) -> anyhow::Result<()> {
        for (what, addr) in &self.given {
            let reached =
                tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                    .await;
            match reached {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(environment(format!(
                        "{what}: cannot connect to {addr}: {e}; is the target running?"
                    )))
                }
                Err(_) => {
                    return Err(environment(format!(
                        "{what}: no answer from {addr} within 5 s; is the target running, and reachable from here?"
                    )))
                }
            }
        }
        Ok(())
    }
}

/// Refuses, before anything starts, what the engine cannot do with this plan: a Socket.IO
/// or `[target]` scenario without remote servers, a remote run without the URLs its modes
/// need, a fault on a process or service that the run did not start.
pub fn check_request(
    plan: &Plan,
    remote: Option<&Remote>,
    postgres_given: bool,
    redis_given: bool,
) -> anyhow::Result<()> {
    // A key that is set is used, or refused: never replaced by a random one unsaid.
    crate::token::Signer::from_env()?;
    let socketio = plan.modes.contains(&Mode::Push) && plan.push.transport == Transport::SocketIo;
    if socketio && remote.is_none() {
        return Err(input(
            "push.transport = \"socketio\" drives a Socket.IO server, which `run` does not start: use `pollpush swarm --push-url URL-of-it --ingest-url URL`",
        ));
    }
    if plan.target.is_some() && remote.is_none() {
        return Err(input(
            "the scenario's [target] table describes a system `pollpush swarm` drives; `run` starts pollpush's own servers: use swarm, or remove the table",
        ));
    }
    if let Some(t) = remote {
        let api = plan.api();
        match &api.emit {
            Emit::Pollpush { .. } if socketio && t.ingest.is_none() => {
                return Err(input(
                    "with push.transport = \"socketio\" events go to an ingest API that publishes to the Socket.IO server's Redis: give it with --ingest-url (or publish to that Redis yourself: [target.emit] via = \"redis\")",
                ));
            }
            Emit::Http { .. } if t.ingest.is_none() => {
                return Err(input(
                    "target.emit.via = \"http\": give the API events go to, with target.emit.url or --ingest-url",
                ));
            }
            _ => {}
        }
        if plan.modes.contains(&Mode::Poll) && t.poll.is_none() {
            return Err(input(
                "the scenario runs mode poll: give the poll API with --poll-url",
            ));
        }
        if plan.modes.contains(&Mode::Push) && t.push.is_empty() {
            return Err(input(
                "the scenario runs mode push: give the gateway instances with --push-url",
            ));
        }
        if let Some(f) = plan
            .faults
            .iter()
            .find(|f| !matches!(f.action, FaultAction::DisconnectClients { .. }))
        {
            return Err(input(format!(
                "the fault {} at {} acts on processes `pollpush run` starts; swarm drives servers it did not start: use run, or remove the fault",
                f.action.name(),
                fmt_duration(f.at)
            )));
        }
    }
    if plan.db_cpu_limit.is_some() && (remote.is_some() || postgres_given) {
        return Err(input(
            "db.cpu_limit holds the Postgres that `run` starts to a CPU budget; this run was given one (--database-url, or `swarm`), whose CPU pollpush does not control: remove db.cpu_limit",
        ));
    }
    super::limits::check_resources(plan, remote.is_none())?;
    faults_need_own_services(plan, postgres_given, redis_given)
}

/// A Redis or Postgres fault needs the service that `run` starts; with a given one it
/// is refused.
fn faults_need_own_services(
    plan: &Plan,
    postgres_given: bool,
    redis_given: bool,
) -> anyhow::Result<()> {
    let given = |service: &str| match service {
        "Postgres" => postgres_given.then_some("--database-url or DATABASE_URL"),
        _ => redis_given.then_some("--redis-url or REDIS_URL"),
    };
    for f in &plan.faults {
        if let Some((service, how)) = f.action.needs_own().and_then(|s| Some((s, given(s)?))) {
            return Err(input(format!(
                "the fault {} at {} needs the {service} that pollpush starts itself, and this run was \
                 given one ({how}); drop it, or remove the fault",
                f.action.name(),
                fmt_duration(f.at)
            )));
        }
    }
    Ok(())
}
