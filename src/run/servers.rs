//! Server processes of a run: `pollpush serve --role ...` children that print their
//! address on stdout, serve `/stats`, and die with the run.

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::RunOptions;
use crate::backend::StatsSnapshot;
use crate::error::environment;
use crate::procs::{die_with_parent, OwnedChild};
use crate::scenario::{kebab, Plan, PollAuth};
use crate::services::Services;

pub struct ServerProcess {
    pub addr: SocketAddr,
    /// `poll-0`, `push-2`, ...
    name: String,
    log: Option<std::path::PathBuf>,
    /// None for a server we drive but did not start (`pollpush swarm`).
    child: Option<OwnedChild>,
    client: Client<HttpConnector, Empty<Bytes>>,
    /// Counters of this instance's earlier processes (killed by a fault), so that its
    /// figures cover the whole window; its connection gauge is 0.
    carried: StatsSnapshot,
    /// Killed by a fault and not started again.
    dead: bool,
}

const READY_PREFIX: &str = "pollpush: listening on http://";

impl ServerProcess {
    /// Starts `pollpush serve --role <role>` as instance `index` and waits (up to 30 s) for
    /// its address.
    pub async fn start(
        opts: &RunOptions,
        role: &str,
        index: usize,
        services: &Services,
        plan: &Plan,
    ) -> anyhow::Result<Self> {
        Self::start_on(opts, role, index, services, plan, 0).await
    }

    /// A server at `addr` that someone else runs: its `/stats` are read, but it has no
    /// process of ours to measure or kill.
    pub fn remote(role: &str, index: usize, addr: SocketAddr) -> Self {
        ServerProcess {
            addr,
            name: format!("{role}-{index}"),
            log: None,
            child: None,
            client: Client::builder(TokioExecutor::new()).build_http(),
            carried: StatsSnapshot::default(),
            dead: false,
        }
    }

    /// Kills the process (SIGKILL: its sockets just go), keeping the counters it had.
    pub async fn kill(&mut self) {
        if self.child.is_none() {
            return;
        }
        let last = tokio::time::timeout(Duration::from_millis(500), self.stats()).await;
        if let Ok(Ok(last)) = last {
            self.carried = crate::run::snapshot::add_stats(
                &self.carried,
                &StatsSnapshot {
                    connections: 0,
                    ..last
                },
            );
        }
        if let Some(child) = self.child.as_mut() {
            child.stop_async(libc::SIGKILL).await;
        }
        self.dead = true;
    }

    /// Starts this instance again on its port, after [`ServerProcess::kill`].
    pub async fn restart(
        &mut self,
        opts: &RunOptions,
        index: usize,
        services: &Services,
        plan: &Plan,
    ) -> anyhow::Result<()> {
        let role = self.name.split('-').next().unwrap_or("push").to_string();
        let mut fresh =
            Self::start_on(opts, &role, index, services, plan, self.addr.port()).await?;
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
            Ok(now) => Ok(Some(crate::run::snapshot::add_stats(&self.carried, &now))),
            Err(_) if self.child.is_none() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn start_on(
        opts: &RunOptions,
        role: &str,
        index: usize,
        services: &Services,
        plan: &Plan,
        port: u16,
    ) -> anyhow::Result<Self> {
        let name = format!("{role}-{index}");
        let mut cmd = Command::new(&opts.server_exe);
        let pool_size = match role {
            "poll" => "16",
            "push" => "8",
            _ => "4",
        };
        cmd.args(["serve", "--role", role, "--pool-size", pool_size])
            .arg("--port")
            .arg(port.to_string())
            .arg("--instance-id")
            .arg(&name)
            .arg("--fanout")
            .arg(kebab(&plan.push.fanout))
            .arg("--send-queue")
            .arg(plan.push.send_queue.to_string())
            .arg("--slow-policy")
            .arg(kebab(&plan.push.slow_policy))
            .arg("--ping-interval")
            .arg(crate::scenario::fmt_duration(plan.push.ping_interval))
            .arg("--poll-auth")
            .arg(match plan.poll_auth {
                PollAuth::Db => "db",
                PollAuth::None => "none",
            })
            .args(plan.poll_long.map(|_| "--long-poll"))
            .arg("--database-url")
            .arg(&services.database_url)
            .arg("--redis-url")
            .arg(&services.redis_url)
            .env(
                crate::backend::token::KEY_ENV,
                super::token_signer().key_hex(),
            )
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        match &opts.log_dir {
            Some(dir) => {
                // Appended to: a restarted instance keeps its first life's log.
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(format!("server-{name}.log")))?;
                cmd.stderr(Stdio::from(file));
            }
            None => {
                cmd.stderr(Stdio::null());
            }
        }
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| {
            environment(format!(
                "cannot start {} serve: {e}",
                opts.server_exe.display()
            ))
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let child = OwnedChild::new(
            format!("server-{name}"),
            child,
            libc::SIGTERM,
            Duration::from_secs(3),
        );
        let reader = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let mut reader = std::io::BufReader::new(stdout);
            let _ = reader.read_line(&mut line);
            line
        });
        let line = match tokio::time::timeout(Duration::from_secs(30), reader).await {
            Ok(Ok(line)) => line,
            _ => String::new(),
        };
        let addr = line
            .trim()
            .strip_prefix(READY_PREFIX)
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .ok_or_else(|| {
                let log = opts
                    .log_dir
                    .as_ref()
                    .map(|d| format!("; see {}", d.join(format!("server-{name}.log")).display()))
                    .unwrap_or_default();
                environment(format!("the {name} server did not start{log}"))
            })?;
        Ok(ServerProcess {
            addr,
            log: opts
                .log_dir
                .as_ref()
                .map(|d| d.join(format!("server-{name}.log"))),
            name,
            child: Some(child),
            client: Client::builder(TokioExecutor::new()).build_http(),
            carried: StatsSnapshot::default(),
            dead: false,
        })
    }

    /// The process's pid; None for a remote server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid())
    }

    /// The server's own counters.
    pub async fn stats(&self) -> anyhow::Result<StatsSnapshot> {
        let fetch = async {
            let uri: hyper::Uri = format!("http://{}/stats", self.addr).parse()?;
            let resp = tokio::time::timeout(Duration::from_secs(5), self.client.get(uri)).await??;
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok(serde_json::from_slice(&body)?)
        };
        fetch.await.map_err(|err| {
            let log = self
                .log
                .as_ref()
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
