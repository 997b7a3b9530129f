//! Child processes that cannot outlive us, and what `/proc` says about CPU and memory.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Makes `cmd` die with this process: the kernel sends it SIGKILL when the spawning thread
/// ends (so even `kill -9` of pollpush leaves no server behind), and it gets its own process
/// group so a Ctrl-C in the terminal reaches only us, and we tear down in order.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe; the closure touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A child process we own: on drop it gets `stop_signal`, a grace period, then SIGKILL.
#[derive(Debug)]
pub struct OwnedChild {
    pub name: String,
    child: Child,
    stop_signal: i32,
    grace: Duration,
}

impl OwnedChild {
    pub fn new(name: impl Into<String>, child: Child, stop_signal: i32, grace: Duration) -> Self {
        OwnedChild {
            name: name.into(),
            child,
            stop_signal,
            grace,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` when the process has already exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// [`OwnedChild::stop`] for async code: the same signal and grace, waited for without
    /// blocking a runtime thread (a fault fired inside a measurement window).
    pub async fn stop_in_place(&mut self) {
        self.stop_async(self.stop_signal).await
    }

    /// Like [`OwnedChild::stop`] with another signal, waiting without blocking a thread.
    pub async fn stop_async(&mut self, signal: i32) {
        if self.exited().is_some() {
            return;
        }
        // SAFETY: sending a signal to a pid we spawned and have not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process: the polite signal, up to `grace`, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        // SAFETY: sending a signal to a pid we spawned and have not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, self.stop_signal);
        }
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Files a process keeps for what is not a client's socket: its database and Redis
/// connections, logs, /proc readings.
const OTHER_FILES: u64 = 2_000;

/// Sockets one process of ours may hold on this machine: the open-files limit it can raise
/// itself to (RLIMIT_NOFILE's hard limit; 20,000 on the machine the README's figures come
/// from, so 18,000), less room for its other files. Read from the machine each time, never
/// carried as one machine's constant; Linux's own ceiling (fs.nr_open, 2^20 by default)
/// stands in for an unlimited one.
pub fn file_budget() -> u64 {
    let hard = nofile_limit().map_or(0, |lim| lim.rlim_max);
    hard.min(1 << 20).saturating_sub(OTHER_FILES)
}

/// This process's RLIMIT_NOFILE, soft and hard; None when it cannot be read.
fn nofile_limit() -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a plain libc call on a stack struct.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim)
}

/// Users one swarm process takes, and connections one gateway instance holds, when the
/// scenario does not say: eight ninths of [`file_budget`] (16,000 of 18,000), leaving
/// room for reconnects that overlap the sockets they replace.
pub fn users_per_process() -> u64 {
    (file_budget() / 9 * 8).max(1)
}

/// Raises the soft limit on open files to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> u64 {
    let Some(lim) = nofile_limit() else {
        return 0;
    };
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: a plain libc call on a stack struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            return want.rlim_cur;
        }
    }
    lim.rlim_cur
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The fields of `/proc/PID/stat` we use.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStat {
    pub ppid: u32,
    /// User + system CPU seconds of the process itself (all its threads).
    pub cpu_s: f64,
    /// Of which in the kernel (system time: its syscalls, and the network stack's work
    /// done on its behalf).
    pub system_s: f64,
    /// CPU seconds of its children that have exited and been reaped.
    pub reaped_children_cpu_s: f64,
}

pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok());
    let tck = clock_ticks();
    Some(ProcStat {
        ppid: f.get(1)?.parse().ok()?,
        cpu_s: (num(11)? + num(12)?) / tck,
        system_s: num(12)? / tck,
        reaped_children_cpu_s: (num(13)? + num(14)?) / tck,
    })
}

/// CPU seconds of a process tree rooted at `root` (one level of children, which is how
/// Postgres is built: a postmaster and its backends), including children already reaped.
pub fn tree_cpu_seconds(root: u32) -> Option<f64> {
    let top = proc_stat(root)?;
    let children: f64 = children(root)
        .filter_map(proc_stat)
        .map(|st| st.cpu_s)
        .sum();
    Some(top.cpu_s + top.reaped_children_cpu_s + children)
}

/// The processes whose parent is `root`.
pub fn children(root: u32) -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(move |&pid| proc_stat(pid).is_some_and(|st| st.ppid == root))
}

/// Proportional set size of a process tree rooted at `root` (one level of children), MiB:
/// shared memory (Postgres's shared buffers) is split among the processes that map it, so
/// the sum counts it once, where a sum of RSS would count it once per backend.
pub fn tree_pss_mb(root: u32) -> Option<f64> {
    let top = pss_mb(root)?;
    Some(top + children(root).filter_map(pss_mb).sum::<f64>())
}

/// The last `lines` lines of a log file, for an error message (empty when unreadable).
pub fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Proportional set size of one process, MiB.
pub fn pss_mb(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    kib_field(&text, "Pss:")
}

fn kib_field(text: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// True when the process no longer runs (gone, or a zombie waiting to be reaped).
pub fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text
            .rfind(')')
            .map(|i| text[i + 1..].trim_start().starts_with(['Z', 'X']))
            .unwrap_or(true),
        Err(_) => true,
    }
}

/// CPU seconds of one process (all threads).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    proc_stat(pid).map(|s| s.cpu_s)
}

/// Resident set size in MiB.
pub fn rss_mb(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&text, "VmRSS:")
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "1234 (my (odd) name) S 42 1234 1234 0 -1 4194560 100 0 0 0 250 50 10 5 20 0 1 0 100 0 0";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.ppid, 42);
        let tck = clock_ticks();
        assert!((st.cpu_s - 300.0 / tck).abs() < 1e-9);
        assert!((st.system_s - 50.0 / tck).abs() < 1e-9);
        assert!((st.reaped_children_cpu_s - 15.0 / tck).abs() < 1e-9);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(!is_gone(me));
        assert!(is_gone(u32::MAX - 1));
        assert!(cpu_seconds(me).is_some());
        assert!(rss_mb(me).unwrap() > 0.0);
        let pss = pss_mb(me).unwrap();
        assert!(pss > 0.0 && pss <= rss_mb(me).unwrap() * 2.0);
        // The tree holds at least this process. Read a moment later, beside tests that
        // allocate and free on other threads, its own share may have shrunk a little: an
        // order of magnitude is what two readings can be held to.
        assert!(tree_pss_mb(me).unwrap() >= 0.5 * pss);
    }
}
