//! A CPU budget for a process tree through the cgroup cpu controller (v2 `cpu.max`, or v1
//! `cpu.cfs_quota_us`), which root can use here: the ephemeral Postgres of a scenario with
//! `db.cpu_limit`, so that a laptop's database behaves like a small managed one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::environment;

/// The scheduler period of the budget, µs; the quota is the cores times it.
const PERIOD_US: u64 = 100_000;

/// A cgroup of our own with a CPU quota; removed when dropped (after its processes are
/// gone).
#[derive(Debug)]
pub struct CpuBudget {
    dir: PathBuf,
    pub cores: f64,
    /// cgroup v2 (`cpu.max`), else v1 (`cpu.cfs_quota_us`).
    v2: bool,
}

impl CpuBudget {
    /// A new cgroup allowed `cores` CPUs (0.5: half of one core over every period).
    pub fn create(cores: f64) -> anyhow::Result<CpuBudget> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let (root, v2) = controller().ok_or_else(|| {
            environment(
                "db.cpu_limit: no cgroup cpu controller can be written here (looked for /sys/fs/cgroup/cpu/cpu.cfs_quota_us, cgroup v1, and for `cpu` in /sys/fs/cgroup/cgroup.controllers, v2); it needs Linux with cgroups and root: remove db.cpu_limit elsewhere",
            )
        })?;
        sweep_dead(&root);
        let dir = root.join(format!(
            "pollpush-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let fail = |what: &Path, e: std::io::Error| {
            environment(format!(
                "db.cpu_limit: cannot write {}: {e} (the cgroup cpu controller needs root)",
                what.display()
            ))
        };
        std::fs::create_dir(&dir).map_err(|e| fail(&dir, e))?;
        let budget = CpuBudget { dir, cores, v2 };
        let quota = ((cores * PERIOD_US as f64).round() as u64).max(1000);
        let writes = match v2 {
            true => vec![("cpu.max", format!("{quota} {PERIOD_US}"))],
            false => vec![
                ("cpu.cfs_period_us", PERIOD_US.to_string()),
                ("cpu.cfs_quota_us", quota.to_string()),
            ],
        };
        for (file, value) in writes {
            let path = budget.dir.join(file);
            std::fs::write(&path, value).map_err(|e| fail(&path, e))?;
        }
        Ok(budget)
    }

    /// Moves `root` and its children into the budget; what they fork later stays in it.
    pub fn add_tree(&self, root: u32) -> anyhow::Result<()> {
        let procs = self.dir.join("cgroup.procs");
        for pid in std::iter::once(root).chain(crate::procs::children(root)) {
            // A backend that exited meanwhile is no error.
            if let Err(e) = std::fs::write(&procs, pid.to_string()) {
                if !crate::procs::is_gone(pid) {
                    return Err(environment(format!(
                        "db.cpu_limit: cannot move process {pid} into {}: {e}",
                        procs.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Lifts the quota, so that what runs in the cgroup can stop at full speed: a Postgres
    /// held to a twentieth of a core takes seconds to shut down, past its grace.
    pub fn lift(&self) {
        let (file, value) = match self.v2 {
            true => ("cpu.max", format!("max {PERIOD_US}")),
            false => ("cpu.cfs_quota_us", "-1".to_string()),
        };
        let _ = std::fs::write(self.dir.join(file), value);
    }

    /// Periods in which the budget ran out, as the controller counts them (`nr_throttled`).
    pub fn throttled_periods(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        let line = text.lines().find(|l| l.starts_with("nr_throttled "))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for CpuBudget {
    /// Removes the cgroup. One that still holds a process cannot be removed: Postgres's
    /// last backends may still be exiting when the postmaster has gone, so this waits for
    /// them (up to 2 s), then ends any that remain (they are this run's Postgres processes,
    /// in a cgroup of our own) and waits 1 s more.
    fn drop(&mut self) {
        self.lift();
        let start = Instant::now();
        let mut killed = false;
        loop {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(_) if start.elapsed() > Duration::from_secs(3) => return,
                Err(_) => {}
            }
            if !killed && start.elapsed() > Duration::from_secs(2) {
                killed = true;
                let procs = std::fs::read_to_string(self.dir.join("cgroup.procs"));
                for pid in procs.iter().flat_map(|t| t.lines()) {
                    if let Ok(pid) = pid.trim().parse::<i32>() {
                        // SAFETY: kill(2) with no memory passed, on a process in our cgroup.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Removes the empty cgroups that runs which died (their pid is gone) left under `root`.
fn sweep_dead(root: &Path) {
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("pollpush-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(crate::procs::is_gone) {
            // Fails, and is left, while a process is still in it.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// Where a cgroup with a CPU quota can be made: (folder, whether it is cgroup v2).
fn controller() -> Option<(PathBuf, bool)> {
    let v1 = Path::new("/sys/fs/cgroup/cpu");
    if v1.join("cpu.cfs_quota_us").is_file() {
        return Some((v1.to_path_buf(), false));
    }
    let v2 = Path::new("/sys/fs/cgroup");
    let controllers = std::fs::read_to_string(v2.join("cgroup.controllers")).ok()?;
    if !controllers.split_whitespace().any(|c| c == "cpu") {
        return None;
    }
    // Children get the cpu controller only when the parent hands it down.
    let _ = std::fs::write(v2.join("cgroup.subtree_control"), "+cpu");
    Some((v2.to_path_buf(), true))
}
