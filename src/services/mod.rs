//! Postgres and Redis for a run: the URLs the user gave, or ephemeral instances started from
//! the local binaries on free loopback ports and torn down when [`Services`] is dropped.

mod cgroup;
pub mod cluster;
mod private;
mod redis_server;

use std::net::{IpAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::error::environment;
use crate::procs::{die_with_parent, OwnedChild};
pub use cgroup::CpuBudget;
use private::{ephemeral_dir, random_secret, write_private};
pub use redis_server::EphemeralRedis;

/// The two services a run needs, and the processes we own when we started them.
pub struct Services {
    pub database_url: String,
    pub redis_url: String,
    pub postgres: Option<EphemeralPostgres>,
    /// The ephemeral Redis; of an ephemeral cluster, its first master (the one faults act
    /// on), `redis_url` naming it.
    pub redis: Option<EphemeralRedis>,
    /// An ephemeral cluster's other masters.
    pub cluster: Vec<EphemeralRedis>,
}

impl Services {
    /// Stops the processes we started without blocking a runtime thread: each gets its
    /// signal and its grace, waited for asynchronously (Postgres lifted from its CPU
    /// budget first); what is left to remove (data directories, the cgroup) goes on a
    /// blocking thread. Dropping them instead waits on the dropping thread.
    pub async fn shutdown(mut self) {
        if let Some(pg) = &mut self.postgres {
            if let Some(b) = &pg.budget {
                b.lift();
            }
            pg.child.stop_in_place().await;
        }
        for r in self.redis.iter_mut().chain(self.cluster.iter_mut()) {
            r.child.stop_in_place().await;
        }
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }

    /// As [`Services::start_with`], with an ephemeral Redis Cluster of `masters` masters
    /// (for `push.fanout = "sharded"`) instead of one Redis.
    pub async fn start_cluster(
        database_url: Option<String>,
        db_cpu_limit: Option<f64>,
        masters: usize,
    ) -> anyhow::Result<Self> {
        let cluster = cluster::EphemeralCluster::start(masters).await?;
        let mut s = Self::start_with(database_url, Some(cluster.url.clone()), db_cpu_limit).await?;
        let mut nodes = cluster.nodes.into_iter();
        s.redis = nodes.next();
        s.cluster = nodes.collect();
        Ok(s)
    }

    /// URLs when given (checked within a few seconds), otherwise ephemeral instances.
    pub async fn start(
        database_url: Option<String>,
        redis_url: Option<String>,
    ) -> anyhow::Result<Self> {
        Self::start_with(database_url, redis_url, None).await
    }

    /// As [`Services::start`], the ephemeral Postgres held to `db_cpu_limit` cores (a
    /// scenario's `db.cpu_limit`) when one is set.
    pub async fn start_with(
        database_url: Option<String>,
        redis_url: Option<String>,
        db_cpu_limit: Option<f64>,
    ) -> anyhow::Result<Self> {
        Self::start_on(database_url, redis_url, db_cpu_limit, LOOPBACK).await
    }

    /// As [`Services::start`], the ephemeral instances listening on `host` too (besides
    /// loopback), each with its password per run, their URLs naming `host`: for swarm
    /// shards on other hosts of a test network (`serve --share-services`).
    pub async fn start_on(
        database_url: Option<String>,
        redis_url: Option<String>,
        db_cpu_limit: Option<f64>,
        host: IpAddr,
    ) -> anyhow::Result<Self> {
        let (database_url, postgres) = match database_url {
            Some(url) => {
                check_postgres(&url).await?;
                (url, None)
            }
            None => {
                let pg = EphemeralPostgres::start_on(db_cpu_limit, host).await?;
                (pg.url.clone(), Some(pg))
            }
        };
        let (redis_url, redis) = match redis_url {
            Some(url) => {
                check_redis(&url).await?;
                (url, None)
            }
            None => {
                let r = EphemeralRedis::start_on(host).await?;
                (r.url.clone(), Some(r))
            }
        };
        Ok(Services {
            database_url,
            redis_url,
            postgres,
            redis,
            cluster: Vec::new(),
        })
    }

    /// Services someone else runs, each checked when given (its URL is empty otherwise).
    /// Nothing is started.
    pub async fn given(
        database_url: Option<String>,
        redis_url: Option<String>,
    ) -> anyhow::Result<Self> {
        if let Some(url) = &database_url {
            check_postgres(url).await?;
        }
        if let Some(url) = &redis_url {
            check_redis(url).await?;
        }
        Ok(Services {
            database_url: database_url.unwrap_or_default(),
            redis_url: redis_url.unwrap_or_default(),
            postgres: None,
            redis: None,
            cluster: Vec::new(),
        })
    }

    /// Writes both URLs, passwords included, as `DATABASE_URL=...` and `REDIS_URL=...`
    /// lines to a file only this user can read, in the private folder of an ephemeral
    /// service, for `pollpush swarm` (`set -a; . FILE`). None when nothing is ephemeral.
    pub fn save_urls(&self) -> anyhow::Result<Option<PathBuf>> {
        let dir = match (&self.redis, &self.postgres) {
            (Some(r), _) => r._dir.path(),
            (None, Some(p)) => p._dir.path(),
            (None, None) => return Ok(None),
        };
        let path = dir.join("urls.env");
        let _ = std::fs::remove_file(&path);
        write_private(
            &path,
            &format!(
                "DATABASE_URL={}\nREDIS_URL={}\n",
                self.database_url, self.redis_url
            ),
        )?;
        Ok(Some(path))
    }

    pub fn postgres_pid(&self) -> Option<u32> {
        self.postgres.as_ref().map(|p| p.child.pid())
    }

    /// The ephemeral Postgres's CPU budget, when the scenario set one.
    pub fn db_budget(&self) -> Option<&CpuBudget> {
        self.postgres.as_ref()?.budget.as_ref()
    }

    pub fn redis_pid(&self) -> Option<u32> {
        // A cluster is several processes: its CPU comes from each master's INFO instead.
        self.redis
            .as_ref()
            .filter(|_| self.cluster.is_empty())
            .map(|r| r.child.pid())
    }
}

const NO_SERVICE_HELP: &str = "install it (Debian: apt-get install postgresql redis-server) so pollpush can start an ephemeral one, \
or point to a running one with --database-url/DATABASE_URL and --redis-url/REDIS_URL (docker-compose.yml in the repository starts both)";

/// Hides the password of a URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn check_postgres(url: &str) -> anyhow::Result<()> {
    let res = tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(url)).await;
    match res {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(environment(format!(
            "cannot connect to PostgreSQL at {}: {e}; check the URL (postgres://user:pass@host:port/db) or unset DATABASE_URL to start an ephemeral one",
            redact(url)
        ))),
        Err(_) => Err(environment(format!(
            "PostgreSQL at {} did not answer within 5 s; check the host and port, or unset DATABASE_URL to start an ephemeral one",
            redact(url)
        ))),
    }
}

async fn check_redis(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url).map_err(|e| {
        environment(format!(
            "REDIS_URL {} is not a Redis URL: {e}; use redis://host:port",
            redact(url)
        ))
    })?;
    let res = tokio::time::timeout(Duration::from_secs(5), async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    })
    .await;
    match res {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(environment(format!(
            "cannot connect to Redis at {}: {e}; check the URL or unset REDIS_URL to start an ephemeral one",
            redact(url)
        ))),
        Err(_) => Err(environment(format!(
            "Redis at {} did not answer within 5 s; check the host and port, or unset REDIS_URL to start an ephemeral one",
            redact(url)
        ))),
    }
}

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// The addresses an ephemeral service listens on: loopback, and its URL's host when that
/// is another address.
fn listen_addresses(url: &str) -> Vec<String> {
    let host = url
        .rsplit_once('@')
        .map_or(url, |(_, rest)| rest)
        .rsplit_once(':')
        .map_or("", |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let mut all = vec!["127.0.0.1".to_string()];
    if !host.is_empty() && host != "127.0.0.1" {
        all.push(host.to_string());
    }
    all
}

/// A free TCP port on 127.0.0.1 (the OS picks; we release it for the server to bind).
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| environment(format!("cannot bind a loopback port: {e}")))?;
    Ok(l.local_addr()?.port())
}

fn find_binary(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Debian and Ubuntu keep the server binaries under /usr/lib/postgresql/<version>/bin.
fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, p)| p).collect()
}

/// The uid and gid to run Postgres as: ourselves, or the `postgres` user when we are root.
fn postgres_identity() -> anyhow::Result<Option<(u32, u32)>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::ffi::CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy out at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(environment(
            "Postgres refuses to run as root and there is no `postgres` user to run it as; \
             create one (useradd --system postgres) or pass --database-url/DATABASE_URL",
        ));
    }
    // SAFETY: pw is non-null and points to a valid passwd struct.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some((uid, gid)))
}

fn chown(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| {
        environment(format!(
            "cannot hand {} to the postgres user: {e}",
            path.display()
        ))
    })
}

/// A throwaway Postgres: initdb into a temp dir, fsync off, pg_stat_statements preloaded.
pub struct EphemeralPostgres {
    pub url: String,
    pub port: u16,
    pub child: OwnedChild,
    /// `db.cpu_limit`: the cgroup its processes run in. Declared after `child`: removed
    /// once they are gone.
    pub budget: Option<CpuBudget>,
    /// Whether pg_stat_statements is preloaded (it is when the module is installed).
    pub stat_statements: bool,
    postgres: PathBuf,
    identity: Option<(u32, u32)>,
    // Declared after `child` so the directory is removed only once the server has stopped.
    _dir: tempfile::TempDir,
}

impl Drop for EphemeralPostgres {
    /// Runs before the fields are dropped: a Postgres held to a small CPU budget would
    /// take longer than its grace to shut down.
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.lift();
        }
    }
}

impl EphemeralPostgres {
    pub async fn start(cpu_limit: Option<f64>) -> anyhow::Result<Self> {
        Self::start_on(cpu_limit, LOOPBACK).await
    }

    /// Listening on `host` too when it is not loopback (password authentication from any
    /// address), its URL naming `host`.
    pub async fn start_on(cpu_limit: Option<f64>, host: IpAddr) -> anyhow::Result<Self> {
        // The budget first: a machine that cannot give one refuses before initdb.
        let budget = cpu_limit.map(CpuBudget::create).transpose()?;
        let dirs = postgres_bin_dirs();
        let (Some(initdb), Some(postgres)) =
            (find_binary("initdb", &dirs), find_binary("postgres", &dirs))
        else {
            return Err(environment(format!(
                "PostgreSQL: no DATABASE_URL given and no initdb/postgres found on PATH or under /usr/lib/postgresql/*/bin; {NO_SERVICE_HELP}"
            )));
        };
        let identity = postgres_identity()?;
        let dir = ephemeral_dir("pg", "Postgres", identity.is_some())?;
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        if let Some((uid, gid)) = identity {
            chown(dir.path(), uid, gid)?;
        }
        // A password per run, so no other local user can connect while it lasts: initdb
        // reads it from a file only its owner can read, then the file goes.
        let password = random_secret();
        let pwfile = dir.path().join("pwfile");
        write_private(&pwfile, &password)?;
        if let Some((uid, gid)) = identity {
            chown(&pwfile, uid, gid)?;
        }
        let mut init = Command::new(&initdb);
        init.args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = identity {
            init.uid(uid).gid(gid);
        }
        let out = tokio::task::spawn_blocking(move || init.output())
            .await?
            .map_err(|e| environment(format!("cannot run {}: {e}", initdb.display())))?;
        let _ = std::fs::remove_file(&pwfile);
        if !out.status.success() {
            return Err(environment(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        // `postgres` on PATH is often a symlink: the modules sit beside the real binary.
        let real = std::fs::canonicalize(&postgres).unwrap_or_else(|_| postgres.clone());
        let lib_dir = real.parent().and_then(Path::parent).map(|p| p.join("lib"));
        let stat_statements = lib_dir
            .map(|d| d.join("pg_stat_statements.so").is_file())
            .unwrap_or(false);
        let port = free_port()?;
        std::fs::File::create(&log)?;
        if let Some((uid, gid)) = identity {
            chown(&log, uid, gid)?;
        }
        if !host.is_loopback() {
            // initdb allows loopback only; the per-run password guards every address.
            let mut hba = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("pg_hba.conf"))?;
            std::io::Write::write_all(&mut hba, b"host all all all scram-sha-256\n")?;
        }
        let at = std::net::SocketAddr::new(host, port);
        let url = format!("postgres://postgres:{password}@{at}/postgres");
        let pg = EphemeralPostgres {
            child: Self::spawn(&postgres, dir.path(), &url, stat_statements, identity).await?,
            budget,
            url,
            port,
            stat_statements,
            postgres,
            identity,
            _dir: dir,
        };
        if let Some(b) = &pg.budget {
            b.add_tree(pg.child.pid())?;
        }
        tracing::debug!(port, pid = pg.child.pid(), "ephemeral postgres ready");
        Ok(pg)
    }

    /// Shuts Postgres down cleanly (SIGINT, a fast shutdown: sessions are cut, every
    /// committed row is kept), waits `down`, and starts it again on the same data and port.
    pub async fn restart(&mut self, down: Duration) -> anyhow::Result<()> {
        self.child.stop_async(libc::SIGINT).await;
        tokio::time::sleep(down).await;
        self.child = Self::spawn(
            &self.postgres,
            self._dir.path(),
            &self.url,
            self.stat_statements,
            self.identity,
        )
        .await?;
        if let Some(b) = &self.budget {
            b.add_tree(self.child.pid())?;
        }
        Ok(())
    }

    /// Starts `postgres` on the data folder under `dir` and waits until it accepts
    /// connections.
    async fn spawn(
        postgres: &Path,
        dir: &Path,
        url: &str,
        stat_statements: bool,
        identity: Option<(u32, u32)>,
    ) -> anyhow::Result<OwnedChild> {
        let data = dir.join("data");
        let log = dir.join("postgres.log");
        let port = url
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next()?.parse::<u16>().ok())
            .ok_or_else(|| anyhow::anyhow!("no port in the ephemeral Postgres URL"))?;
        let log_file = std::fs::OpenOptions::new().append(true).open(&log)?;
        let mut cmd = Command::new(postgres);
        cmd.arg("-D").arg(&data).arg("-p").arg(port.to_string());
        cmd.arg("-c").arg(format!(
            "listen_addresses={}",
            listen_addresses(url).join(",")
        ));
        for setting in [
            "unix_socket_directories=",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=200",
            "shared_buffers=128MB",
            "log_min_messages=warning",
        ] {
            cmd.arg("-c").arg(setting);
        }
        if stat_statements {
            cmd.args(["-c", "shared_preload_libraries=pg_stat_statements"]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        if let Some((uid, gid)) = identity {
            cmd.uid(uid).gid(gid);
        }
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| environment(format!("cannot start {}: {e}", postgres.display())))?;
        // SIGQUIT is Postgres's immediate shutdown: at the end of a run nothing here needs
        // to survive.
        let mut child = OwnedChild::new("postgres", child, libc::SIGQUIT, Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.exited() {
                return Err(environment(format!(
                    "ephemeral Postgres exited ({status}) during start-up:\n{}",
                    crate::procs::log_tail(&log, 10)
                )));
            }
            if let Ok(Ok(conn)) =
                tokio::time::timeout(Duration::from_secs(2), sqlx::PgConnection::connect(url)).await
            {
                let _ = conn.close().await;
                break;
            }
            if Instant::now() > deadline {
                return Err(environment(format!(
                    "ephemeral Postgres did not accept connections within 30 s:\n{}",
                    crate::procs::log_tail(&log, 10)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(child)
    }
}

#[cfg(test)]
mod tests {
    use super::{listen_addresses, redact};

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
        assert_eq!(
            listen_addresses("redis://:pw@127.0.0.1:6379/"),
            ["127.0.0.1"]
        );
        assert_eq!(
            listen_addresses("postgres://postgres:pw@10.0.0.1:5432/postgres"),
            ["127.0.0.1", "10.0.0.1"]
        );
        assert_eq!(
            listen_addresses("redis://:p@[fd00::1]:6379/"),
            ["127.0.0.1", "fd00::1"]
        );
    }
}
