//! Server processes of a run: `pollpush serve --role ...` children that print their
//! address on stdout, serve `/stats`, and die with the run.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use crate::config::{Choice, PollHttp, PushConfig, Role, ServeConfig};
use crate::error::environment;
use crate::metrics::prom::ProcessFigures;
use crate::procs::{die_with_parent, OwnedChild};
use crate::scenario::Plan;
use crate::token::{Signer, KEY_ENV};
use crate::wire::{parse_ready_line, StatsSnapshot};

/// How this run starts its servers: the binary, where logs go, and the services they use.
#[derive(Debug)]
pub struct Launch {
    pub exe: PathBuf,
    /// Where server processes write their logs; None discards them.
    pub log_dir: Option<PathBuf>,
    pub database_url: String,
    pub redis_url: String,
}

impl Launch {
    fn log_path(&self, name: &str) -> Option<PathBuf> {
        self.log_dir
            .as_ref()
            .map(|d| d.join(format!("server-{name}.log")))
    }
}

/// The configuration of instance `index` of `role` for `plan`.
pub fn serve_config(role: Role, index: usize, plan: &Plan) -> ServeConfig {
    ServeConfig {
        instance_id: format!("{}-{index}", role.name()),
        pool_size: match role {
            Role::Poll => crate::config::default_pool_size(),
            Role::Push => 8,
            _ => 4,
        },
        poll_auth: plan.poll_auth,
        push: PushConfig {
            fanout: plan.push.fanout,
            send_queue: plan.push.send_queue,
            slow_policy: plan.push.slow_policy,
            ping_interval: plan.push.ping_interval,
        },
        long_poll: plan.poll_long.is_some(),
        // Ingest raises the latest ids that the poll API reads.
        poll_backend: plan.poll_backend,
        conditional: plan.poll_conditional,
        http2: role == Role::Poll && plan.poll_http == PollHttp::H2,
        ..ServeConfig::new(role)
    }
}

pub struct ServerProcess {
    pub addr: SocketAddr,
    /// `poll-0`, `push-2`, ...
    name: String,
    /// How it was started, to start it again after a fault; None for a remote server.
    started: Option<(Arc<Launch>, ServeConfig)>,
    /// None for a server we drive but did not start (`pollpush swarm`).
    child: Option<OwnedChild>,
    /// A process someone else started that `swarm` was told to measure (`--push-pid`).
    watched: Option<u32>,
    /// Its Prometheus endpoint (`--push-metrics`), read for its CPU and memory when it is
    /// not a process here.
    metrics_url: Option<String>,
    client: Client<HttpConnector, Empty<Bytes>>,
    /// Counters of this instance's earlier processes (killed by a fault), so that its
    /// figures cover the whole window; its connection gauge is 0.
    carried: StatsSnapshot,
    /// Killed by a fault and not started again.
    dead: bool,
}

impl ServerProcess {
    /// Starts `pollpush serve` as instance `index` of `role` and waits (up to 30 s) for its
    /// address.
    pub async fn start(
        launch: &Arc<Launch>,
        role: Role,
        index: usize,
        plan: &Plan,
    ) -> anyhow::Result<Self> {
        Self::start_with(launch.clone(), serve_config(role, index, plan)).await
    }

    /// A server at `addr` that someone else runs: its `/stats` are read, but it has no
    /// process of ours to kill. With `pid` (a process on this machine the user named), its
    /// CPU and memory are measured as a server's.
    /// With `metrics_url`, its Prometheus endpoint gives them instead.
    pub fn remote(
        role: &str,
        index: usize,
        addr: SocketAddr,
        pid: Option<u32>,
        metrics_url: Option<String>,
    ) -> Self {
        ServerProcess {
            addr,
            name: format!("{role}-{index}"),
            started: None,
            child: None,
            watched: pid,
            metrics_url,
            client: Client::builder(TokioExecutor::new()).build_http(),
            carried: StatsSnapshot::default(),
            dead: false,
        }
    }

    /// Kills the process (SIGKILL: its sockets just go), keeping the counters it had;
    /// false for a server that is not ours to kill.
    pub async fn kill(&mut self) -> bool {
        if self.child.is_none() {
            return false;
        }
        let last = tokio::time::timeout(Duration::from_millis(500), self.stats()).await;
        if let Ok(Ok(last)) = last {
            self.carried = self.carried.plus(&StatsSnapshot {
                connections: 0,
                ..last
            });
        }
        if let Some(child) = self.child.as_mut() {
            child.stop_async(libc::SIGKILL).await;
        }
        self.dead = true;
        true
    }

    /// Stops the process politely (SIGTERM, then SIGKILL after its grace), without
    /// blocking a thread.
    pub async fn stop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            child.stop_async(libc::SIGTERM).await;
        }
    }

    /// Starts this instance again on its port, after [`ServerProcess::kill`].
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let Some((launch, config)) = self.started.clone() else {
            return Ok(());
        };
        let config = ServeConfig {
            port: self.addr.port(),
            ..config
        };
        let mut fresh = Self::start_with(launch, config).await?;
        fresh.carried = self.carried;
        *self = fresh;
        Ok(())
    }

    /// The counters of this instance over all its processes; those it had when killed if
    /// it is down. None for a remote server without pollpush's `/stats` (a Socket.IO
    /// server, say).
    pub async fn total_stats(&self) -> anyhow::Result<Option<StatsSnapshot>> {
        if self.dead {
            return Ok(Some(self.carried));
        }
        match self.stats().await {
            Ok(now) => Ok(Some(self.carried.plus(&now))),
            Err(_) if self.child.is_none() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn start_with(launch: Arc<Launch>, config: ServeConfig) -> anyhow::Result<Self> {
        let name = config.instance_id.clone();
        let mut cmd = Command::new(&launch.exe);
        cmd.arg("serve")
            .args(config.to_args())
            // Secrets travel in the environment, never on a command line any local user
            // can read.
            .env("DATABASE_URL", &launch.database_url)
            .env("REDIS_URL", &launch.redis_url)
            .env(KEY_ENV, Signer::process().key_hex())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        match launch.log_path(&name) {
            Some(path) => {
                // Appended to: a restarted instance keeps its first life's log.
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                cmd.stderr(Stdio::from(file));
            }
            None => {
                cmd.stderr(Stdio::null());
            }
        }
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| {
            environment(format!("cannot start {} serve: {e}", launch.exe.display()))
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let child = OwnedChild::new(
            format!("server-{name}"),
            child,
            libc::SIGTERM,
            Duration::from_secs(3),
        );
        let addr = read_ready_line(stdout).await.map_err(|why| {
            let log = match launch.log_path(&name) {
                Some(p) => format!(
                    "; see {}{}",
                    p.display(),
                    match crate::procs::log_tail(&p, 6) {
                        t if t.is_empty() => String::new(),
                        t => format!(", which ends:\n{t}"),
                    }
                ),
                None => String::new(),
            };
            environment(format!("the {name} server did not start: {why}{log}"))
        })?;
        Ok(ServerProcess {
            addr,
            name,
            started: Some((launch, config)),
            child: Some(child),
            watched: None,
            metrics_url: None,
            client: Client::builder(TokioExecutor::new()).build_http(),
            carried: StatsSnapshot::default(),
            dead: false,
        })
    }

    /// True when this server is one of `servers` (the same address): an ingest API that
    /// is also a server of the mode (`swarm` against `serve --role all`, or a target fed
    /// through its own instance). Its counters and CPU then count once, in that server's.
    pub fn is_one_of(&self, servers: &[ServerProcess]) -> bool {
        servers.iter().any(|s| s.addr == self.addr)
    }

    /// The process's pid; None for a remote server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid()).or(self.watched)
    }

    /// The process's CPU seconds and memory from its Prometheus endpoint; all unknown
    /// without one, or when it does not answer.
    pub async fn process_figures(&self) -> ProcessFigures {
        let Some(url) = &self.metrics_url else {
            return ProcessFigures::default();
        };
        match scrape(&self.client, url).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(server = %self.name, url = %url, "cannot read its metrics: {e:#}");
                ProcessFigures::default()
            }
        }
    }

    /// The server's own counters.
    pub async fn stats(&self) -> anyhow::Result<StatsSnapshot> {
        let fetch = async {
            let mut req = hyper::Request::get(format!("http://{}/stats", self.addr));
            if let Some(token) = crate::token::operator_token() {
                req = req.header(crate::token::OPERATOR_HEADER, token);
            }
            let req = req.body(Empty::new())?;
            let resp =
                tokio::time::timeout(Duration::from_secs(5), self.client.request(req)).await??;
            match resp.status() {
                s if s.is_success() => {}
                hyper::StatusCode::UNAUTHORIZED => anyhow::bail!(
                    "/stats answered 401: the server wants the operator token; set {} here to the server's",
                    crate::token::OPERATOR_ENV
                ),
                s => anyhow::bail!("/stats answered {s}"),
            }
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok(serde_json::from_slice(&body)?)
        };
        fetch.await.map_err(|err| {
            let log = self
                .started
                .as_ref()
                .and_then(|(launch, _)| launch.log_path(&self.name))
                .map(|l| format!("; see {}", l.display()))
                .unwrap_or_default();
            if let Some(pid) = self.pid().filter(|&p| crate::procs::is_gone(p)) {
                environment(format!(
                    "the {} server (pid {pid}) died during the run{log}",
                    self.name
                ))
            } else {
                environment(format!(
                    "the {} server stopped answering: {err}{log}",
                    self.name
                ))
            }
        })
    }
}

/// How long a starting server has to print its ready line: it opens its database pool
/// and applies migrations first, which a Postgres on a small CPU budget makes slow.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// The address a starting server prints on its first line, or why there is none.
async fn read_ready_line(stdout: std::process::ChildStdout) -> Result<SocketAddr, String> {
    let reader = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        line
    });
    let line = tokio::time::timeout(READY_WITHIN, reader)
        .await
        .map_err(|_| format!("no ready line within {} s", READY_WITHIN.as_secs()))?
        .map_err(|e| format!("reading its output failed: {e}"))?;
    if line.is_empty() {
        return Err("it exited before it was ready".into());
    }
    parse_ready_line(&line).ok_or_else(|| format!("its first line is not a ready line: {line:?}"))
}

/// Stops every server at once; each takes as long as it needs, not the sum of them.
pub async fn stop_all(servers: &mut [ServerProcess]) {
    futures_util::future::join_all(servers.iter_mut().map(ServerProcess::stop)).await;
}

/// Reads a Prometheus endpoint (http only) and the process figures in it.
pub async fn scrape(
    client: &Client<HttpConnector, Empty<Bytes>>,
    url: &str,
) -> anyhow::Result<ProcessFigures> {
    let mut req = hyper::Request::get(url);
    if let Some(token) = crate::token::operator_token() {
        req = req.header(crate::token::OPERATOR_HEADER, token);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        client.request(req.body(Empty::new())?),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer within 5 s"))??;
    if !resp.status().is_success() {
        anyhow::bail!("it answered {}", resp.status());
    }
    let body = resp.into_body().collect().await?.to_bytes();
    crate::metrics::prom::process_figures(&String::from_utf8_lossy(&body))
}

/// Checks, before a run, that `url` is a Prometheus endpoint with the process figures.
pub async fn probe_metrics(url: &str) -> anyhow::Result<()> {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let f = scrape(&client, url).await?;
    if f.cpu_seconds.is_none() {
        anyhow::bail!(
            "it has no process_cpu_seconds_total (a Prometheus client library's default process metrics export it)"
        );
    }
    Ok(())
}
