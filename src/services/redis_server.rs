//! The ephemeral Redis: a throwaway server a run starts, restarts and kills for its faults.

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::private::{ephemeral_dir, random_secret, write_private};
use super::{find_binary, free_port, listen_addresses, LOOPBACK, NO_SERVICE_HELP};
use crate::error::environment;
use crate::procs::{die_with_parent, OwnedChild};

/// A throwaway Redis: no persistence, loopback only.
pub struct EphemeralRedis {
    pub url: String,
    pub port: u16,
    pub child: OwnedChild,
    /// A node of a Redis Cluster (`cluster-enabled yes`, its identity in nodes.conf): the
    /// port of its cluster bus.
    bus: Option<u16>,
    pub(super) _dir: tempfile::TempDir,
}

impl EphemeralRedis {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(LOOPBACK).await
    }

    /// Listening on `host` too when it is not loopback, its URL naming `host`.
    pub async fn start_on(host: IpAddr) -> anyhow::Result<Self> {
        Self::start_node(host, &random_secret(), false).await
    }

    /// A Redis with `password`; with `cluster`, a cluster node not yet in a cluster. A port
    /// picked free may be taken before Redis binds it (by another process's outgoing
    /// connection): a start that fails for it is tried again on new ports.
    pub(crate) async fn start_node(
        host: IpAddr,
        password: &str,
        cluster: bool,
    ) -> anyhow::Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(host, password, cluster).await {
                Err(e) if attempt < 4 && format!("{e:#}").contains("Address already in use") => {
                    tracing::debug!(attempt, "a Redis port was taken before Redis bound it");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn start_once(host: IpAddr, password: &str, cluster: bool) -> anyhow::Result<Self> {
        let dir = ephemeral_dir("redis", "Redis", false)?;
        let port = free_port()?;
        // A password per run, in a config file only we can read: on redis-server's command
        // line any local user would see it. Cluster nodes use it with each other too.
        write_private(
            &dir.path().join("redis.conf"),
            &format!("requirepass {password}\nmasterauth {password}\n"),
        )?;
        let url = format!(
            "redis://:{password}@{}/",
            std::net::SocketAddr::new(host, port)
        );
        // The bus port is chosen too: port + 10000, Redis's default, may be taken or past
        // 65535.
        let bus = if cluster { Some(free_port()?) } else { None };
        let child = Self::spawn(port, dir.path(), &url, bus).await?;
        Ok(EphemeralRedis {
            url,
            port,
            child,
            bus,
            _dir: dir,
        })
    }

    /// Kills Redis (SIGKILL: every connection drops, every subscription is gone), waits
    /// `down`, and starts a fresh one on the same port.
    pub async fn restart(&mut self, down: Duration) -> anyhow::Result<()> {
        self.child.stop_in_place().await;
        tokio::time::sleep(down).await;
        self.child = Self::spawn(self.port, self._dir.path(), &self.url, self.bus).await?;
        Ok(())
    }

    /// Kills Redis (SIGKILL), to be started again by [`EphemeralRedis::revive`].
    pub async fn kill(&mut self) {
        self.child.stop_in_place().await;
    }

    /// Starts Redis again on its port after [`EphemeralRedis::kill`].
    pub async fn revive(&mut self) -> anyhow::Result<()> {
        self.child = Self::spawn(self.port, self._dir.path(), &self.url, self.bus).await?;
        Ok(())
    }

    /// Stops Redis in its tracks (SIGSTOP) for `down`, then lets it go on (SIGCONT):
    /// connections stay open and nothing is lost, but nothing moves either.
    pub async fn pause(&mut self, down: Duration) -> anyhow::Result<()> {
        let pid = self.child.pid() as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid, with no memory passed.
        if unsafe { libc::kill(pid, libc::SIGSTOP) } != 0 {
            return Err(anyhow::anyhow!(
                "cannot stop Redis: {}",
                std::io::Error::last_os_error()
            ));
        }
        tokio::time::sleep(down).await;
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        Ok(())
    }

    /// Starts redis-server on `port` and waits until it answers PING.
    async fn spawn(
        port: u16,
        dir: &Path,
        url: &str,
        bus: Option<u16>,
    ) -> anyhow::Result<OwnedChild> {
        let Some(bin) = find_binary("redis-server", &[]) else {
            return Err(environment(format!(
                "Redis: no REDIS_URL given and no redis-server found on PATH; {NO_SERVICE_HELP}"
            )));
        };
        let log = dir.join("redis.log");
        let mut cmd = Command::new(&bin);
        cmd.arg(dir.join("redis.conf"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .args(listen_addresses(url))
            .args(["--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--daemonize", "no"]);
        if let Some(bus) = bus {
            // Its identity and the cluster's layout survive a restart in nodes.conf.
            cmd.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--cluster-node-timeout", "2000"])
            .arg("--cluster-port")
            .arg(bus.to_string());
        }
        cmd.arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| environment(format!("cannot start {}: {e}", bin.display())))?;
        let mut child = OwnedChild::new("redis", child, libc::SIGKILL, Duration::from_secs(1));
        let client = redis::Client::open(url)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.exited() {
                return Err(environment(format!(
                    "ephemeral Redis exited ({status}) during start-up:\n{}",
                    crate::procs::log_tail(&log, 10)
                )));
            }
            let ping = tokio::time::timeout(Duration::from_secs(1), async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            })
            .await;
            if matches!(ping, Ok(Ok(_))) {
                return Ok(child);
            }
            if Instant::now() > deadline {
                return Err(environment(format!(
                    "ephemeral Redis did not answer within 15 s:\n{}",
                    crate::procs::log_tail(&log, 10)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
