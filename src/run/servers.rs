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
    child: OwnedChild,
    client: Client<HttpConnector, Empty<Bytes>>,
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
        let name = format!("{role}-{index}");
        let mut cmd = Command::new(&opts.server_exe);
        let pool_size = match role {
            "poll" => "16",
            "push" => "8",
            _ => "4",
        };
        cmd.args([
            "serve",
            "--role",
            role,
            "--port",
            "0",
            "--pool-size",
            pool_size,
        ])
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
        .arg("--database-url")
        .arg(&services.database_url)
        .arg("--redis-url")
        .arg(&services.redis_url)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
        match &opts.log_dir {
            Some(dir) => {
                let file = std::fs::File::create(dir.join(format!("server-{name}.log")))?;
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
            child,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
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
            if crate::procs::is_gone(self.pid()) {
                environment(format!(
                    "the {} server (pid {}) died during the run{log}",
                    self.name,
                    self.pid()
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
