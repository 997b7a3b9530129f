//! A run's users split over several swarm processes (shards), so that no process holds more
//! sockets than it may open. Each shard has its own users (a contiguous range), its own
//! share of the events (aimed at those users only, numbered apart), and writes its raw
//! figures to `shard.json`; the first shard is this process, which also measures the
//! servers and services once for the whole run. The others are `pollpush swarm --shard
//! I/K` children, started together on one clock, and their figures are added to the first
//! shard's exactly ([`crate::result::ModeResult::absorb_shard`]).

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tokio::process::{Child, Command};

use super::observe::Observer;
use super::resources::Resources;
use super::servers::ServerProcess;
use super::setup::{RunOptions, ShardSpec};
use crate::config::Mode;
use crate::error::environment;
use crate::result::{ModeResult, ShardFile, ShardInfo};
use crate::scenario::target::Emit;
use crate::scenario::Plan;

/// Event numbers of shard I start I times this far apart, so that shards never share one.
pub const SHARD_EVENT_STRIDE: u64 = 10_000_000_000;

/// How long after the last shard was started the clients begin, in every shard: time
/// for a child to start, connect and sign its tokens.
pub const START_LEAD: Duration = Duration::from_secs(3);

/// This process's share of one mode: which users, which events, from when.
#[derive(Debug, Clone)]
pub struct Part {
    pub index: u64,
    pub count: u64,
    pub start_at: Option<SystemTime>,
    pub after: Option<i64>,
}

impl Part {
    /// The whole run in one process.
    pub fn whole() -> Part {
        Part {
            index: 0,
            count: 1,
            start_at: None,
            after: None,
        }
    }

    pub fn of(spec: &ShardSpec) -> Part {
        Part {
            index: spec.info.index,
            count: spec.info.count,
            start_at: spec.start_at,
            after: spec.after,
        }
    }

    /// Users `lo..=hi` of `total` (numbered from 1): the shards' ranges cover them once.
    pub fn users(&self, total: u64) -> RangeInclusive<u64> {
        let lo = total * self.index / self.count;
        let hi = total * (self.index + 1) / self.count;
        lo + 1..=hi
    }

    /// The events a second aimed at this part's users: the plan's rate, in proportion.
    pub fn events_per_s(&self, plan: &Plan) -> f64 {
        let users = self.users(plan.users);
        plan.events_per_s * (users.end() + 1 - users.start()) as f64 / plan.users as f64
    }

    /// Where this part's event numbers start.
    pub fn first_event(&self, mode_first: u64) -> u64 {
        mode_first + self.index * SHARD_EVENT_STRIDE
    }

    /// The instant the clients start, on this process's clock.
    pub fn base(&self) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        match self.start_at {
            Some(at) => now + at.duration_since(SystemTime::now()).unwrap_or_default(),
            None => now + Duration::from_millis(100),
        }
    }
}

/// The other shards of one mode, running as child processes.
pub struct Children {
    count: u64,
    run_id: String,
    /// Where the shards write: `<mode>-<index>/` each, this process's as `<mode>-0/`.
    root: PathBuf,
    /// The run keeps no folder (no log folder given): `root` is removed when done.
    temporary: bool,
    children: Vec<(u64, Child, PathBuf, PathBuf)>,
}

/// A new run id: different in every run, the same in all its shards.
pub fn run_id() -> String {
    use rand::Rng;
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

/// Starts shards 1..K of `mode` as `pollpush swarm --shard I/K` against this run's servers,
/// writing under `root`; they start their clients at `part.start_at`, as this process does.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    mode: Mode,
    plan: &Plan,
    opts: &RunOptions,
    res: &Resources,
    servers: &[ServerProcess],
    part: &Part,
    first_event: u64,
    root: &Path,
) -> anyhow::Result<Children> {
    let fail = |what: &str, e: std::io::Error| {
        environment(format!("cannot {what} in {}: {e}", root.display()))
    };
    std::fs::create_dir_all(root).map_err(|e| fail("create the shards' folder", e))?;
    // Each shard runs this mode alone: its scenario says so, the same text in all of them.
    let scenario = root.join(format!("{mode}.toml"));
    std::fs::write(&scenario, one_mode(plan, mode)).map_err(|e| fail("write the scenario", e))?;
    let id = run_id();
    let start_ms = part
        .start_at
        .unwrap_or_else(SystemTime::now)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let http = |a: std::net::SocketAddr| format!("http://{a}");
    let mut children = Vec::new();
    for index in 1..part.count {
        let out = root.join(format!("{mode}-{index}"));
        let log = root.join(format!("{mode}-{index}.log"));
        let mut cmd = Command::new(&opts.server_exe);
        cmd.arg("swarm")
            .arg(&scenario)
            .arg("--quiet")
            .arg("--out")
            .arg(&out)
            .arg("--ingest-url")
            .arg(http(res.ingest.addr));
        match mode {
            Mode::Poll => cmd.arg("--poll-url").arg(http(servers[0].addr)),
            Mode::Push => cmd.arg("--push-url").arg(
                servers
                    .iter()
                    .map(|s| http(s.addr))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        };
        if matches!(plan.api().emit, Emit::Redis { .. }) && !res.services.redis_url.is_empty() {
            cmd.arg("--redis-url").arg(&res.services.redis_url);
        }
        cmd.arg("--shard")
            .arg(format!("{index}/{}", part.count))
            .args(["--run-id", &id])
            .args(["--start-at", &start_ms.to_string()])
            .args(["--after", &part.after.unwrap_or(0).to_string()])
            .args(["--first-event", &first_event.to_string()])
            // The users were seeded here: a shard reads no database and seeds nothing.
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env(
                crate::token::KEY_ENV,
                crate::token::Signer::process().key_hex(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| fail("create a shard's log", e))?)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| environment(format!("cannot start swarm shard {index}: {e}")))?;
        children.push((index, child, out, log));
    }
    Ok(Children {
        count: part.count,
        run_id: id,
        root: root.to_path_buf(),
        temporary: opts.log_dir.is_none(),
        children,
    })
}

impl Children {
    /// Fails at once when a shard has already ended with an error (bad arguments, a
    /// server it cannot reach), rather than after the window.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        let k = self.count;
        for (index, child, _, log) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                if !status.success() && status.code() != Some(1) {
                    return Err(environment(format!(
                        "swarm shard {index} of {k} failed ({status}); its log ({}) ends:\n{}",
                        log.display(),
                        tail(log)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Waits for every shard, then adds its figures to `lead` (this process's, shard 0,
    /// first written beside theirs, so that `merge` can redo the sum from the folders).
    /// A shard that failed fails the run, named, with the end of its log.
    pub async fn finish(
        mut self,
        lead: &mut ModeResult,
        plan: &Plan,
        res: &Resources,
        observer: &dyn Observer,
    ) -> anyhow::Result<()> {
        let k = self.count;
        let own = self.root.join(format!("{}-0", lead.mode));
        std::fs::create_dir_all(&own)
            .map_err(|e| environment(format!("cannot create {}: {e}", own.display())))?;
        let scenario = one_mode(plan, lead.mode);
        std::fs::write(own.join("scenario.toml"), &scenario)
            .map_err(|e| environment(format!("cannot write in {}: {e}", own.display())))?;
        crate::result::write_shard_json(
            &own.join("shard.json"),
            &ShardInfo {
                run_id: self.run_id.clone(),
                index: 0,
                count: k,
                clock: None,
            },
            scenario,
            SystemTime::now(),
            &res.machine,
            res.counter.source.as_str(),
            std::slice::from_ref(lead),
        )?;
        for (index, mut child, out, log) in std::mem::take(&mut self.children) {
            let status = tokio::time::timeout(Duration::from_secs(120), child.wait()).await;
            let status = match status {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(environment(format!("swarm shard {index} of {k}: {e}"))),
                Err(_) => {
                    let _ = child.kill().await;
                    return Err(environment(format!(
                        "swarm shard {index} of {k} did not finish within 120 s of the first; its log ({}) ends:\n{}",
                        log.display(),
                        tail(&log)
                    )));
                }
            };
            // Exit 1 is a failed check: the shard's figures are there and count.
            if !status.success() && status.code() != Some(1) {
                return Err(environment(format!(
                    "swarm shard {index} of {k} failed ({status}); its log ({}) ends:\n{}",
                    log.display(),
                    tail(&log)
                )));
            }
            let file = ShardFile::read(&out)?;
            let Some(mode) = file.modes.into_iter().find(|m| m.mode == lead.mode) else {
                return Err(environment(format!(
                    "{}: shard {index} of {k} has no mode {}",
                    out.display(),
                    lead.mode
                )));
            };
            let apart = lead.window_gap(&mode);
            if apart > 1.0 {
                observer.warn(&format!(
                    "{}: shard {index}'s window opened {apart:.1} s apart from the first shard's (its clients took longer to connect): the merged rates mix two windows",
                    lead.mode
                ));
            }
            lead.absorb_shard(&mode)
                .map_err(|e| environment(format!("shard {index} of {k}: {e:#}")))?;
        }
        Ok(())
    }
}

impl Drop for Children {
    /// A run without a result folder leaves no shard folder behind, whether it finished,
    /// failed or was interrupted (the children themselves are killed as they drop).
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// The plan with `mode` alone, as TOML.
fn one_mode(plan: &Plan, mode: Mode) -> String {
    let mut one = plan.clone();
    one.modes = vec![mode];
    one.to_toml()
}

/// The last lines of a log, for an error message.
fn tail(path: &Path) -> String {
    match crate::procs::log_tail(path, 15) {
        t if t.trim().is_empty() => "(nothing)".into(),
        t => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shards_users_cover_every_user_once() {
        for (total, k) in [(10, 3), (100_000, 7), (5, 5), (16_001, 2)] {
            let mut next = 1;
            for index in 0..k {
                let p = Part {
                    index,
                    count: k,
                    start_at: None,
                    after: None,
                };
                let r = p.users(total);
                assert_eq!(*r.start(), next, "{total}/{k}");
                next = r.end() + 1;
            }
            assert_eq!(next, total + 1);
        }
    }
}
