//! A run split over several swarm processes agrees with the same run in one process; the
//! shards' folders merge back to the run's figures exactly; `merge` refuses shards of
//! different runs or a missing shard.

use std::path::Path;

use crate::common::{number as f, run_binary, summary};

const SCENARIO: &str =
    "name = \"it-shards\"\nduration = \"6s\"\nwarmup = \"1s\"\nmodes = [\"poll\", \"push\"]\n\
[users]\ncount = 1200\n[poll]\ninterval = \"2s\"\n[workload]\nevents_per_s = 40\n";

fn merge(args: &[&Path], out: &Path) -> (Option<i32>, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_pollpush"))
        .arg("merge")
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_run_agrees_with_one_process_and_its_shards_merge_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (one, four) = (dir.path().join("one"), dir.path().join("four"));
    let plain = dir.path().join("one.toml");
    std::fs::write(&plain, SCENARIO).unwrap();
    let sharded = dir.path().join("four.toml");
    std::fs::write(&sharded, format!("{SCENARIO}[swarm]\nshards = 4\n")).unwrap();
    let (code, _, err) = run_binary(&plain, &one).await;
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run_binary(&sharded, &four).await;
    assert_eq!(code, Some(0), "{err}");
    let (a, b) = (summary(&one), summary(&four));
    assert_eq!(b["plan"]["swarm_processes"], 4, "{}", b["plan"]);
    assert_eq!(a["plan"]["swarm_processes"], 1, "{}", a["plan"]);

    for (s, what) in [(&a, "one process"), (&b, "four shards")] {
        for mode in ["poll", "push"] {
            let m = &s["modes"][mode];
            assert_eq!(m["users"], 1200, "{what} {mode}");
            let e = &m["events"];
            assert!(f(e, "/sent") > 100.0, "{what} {mode}: {e}");
            assert_eq!(e["lost"], 0, "{what} {mode}: {e}");
            assert_eq!(e["misrouted"], 0, "{what} {mode}: {e}");
            assert_eq!(e["duplicated"], 0, "{what} {mode}: {e}");
            // Every first delivery is one value in the latency histogram.
            assert_eq!(m["latency_ms"]["count"], e["delivered"], "{what} {mode}");
        }
        // Polling's latency is about half the interval, push's a few ms.
        let mean = f(s, "/modes/poll/latency_ms/mean");
        assert!((700.0..1300.0).contains(&mean), "{what}: poll mean {mean}");
        assert!(f(s, "/modes/push/latency_ms/p50") < 100.0, "{what}");
        assert_eq!(s["modes"]["push"]["connections"], 1200, "{what}");
    }
    // The polling rate is set by the schedule, the database's queries by the polls: the
    // same in both, within 2 % and 5 % (events are random, and so are their inserts).
    let near = |path: &str, tolerance: f64| {
        let (x, y) = (f(&a, path), f(&b, path));
        assert!(
            (x - y).abs() <= tolerance * x,
            "{path}: {x} in one process, {y} in four shards"
        );
    };
    near("/modes/poll/http/requests_per_min", 0.02);
    near("/modes/poll/db/queries_per_min", 0.05);

    // The shards' own folders, added up again by `merge`, give the run's figures exactly.
    let shards = four.join("shards");
    for mode in ["poll", "push"] {
        let dirs: Vec<_> = (0..4).map(|i| shards.join(format!("{mode}-{i}"))).collect();
        let refs: Vec<&Path> = dirs.iter().map(|d| d.as_path()).collect();
        let delivered: u64 = dirs
            .iter()
            .map(|d| {
                let s: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(d.join("shard.json")).unwrap())
                        .unwrap();
                s["modes"][0]["outcome"]["delivered"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(
            delivered,
            b["modes"][mode]["events"]["delivered"].as_u64().unwrap(),
            "{mode}"
        );
        let out = dir.path().join(format!("merged-{mode}"));
        let (code, err) = merge(&refs, &out);
        assert_eq!(code, Some(0), "{err}");
        let m = summary(&out);
        assert_eq!(
            m["modes"][mode]["latency_ms"],
            b["modes"][mode]["latency_ms"]
        );
        assert_eq!(m["modes"][mode]["events"], b["modes"][mode]["events"]);
        assert_eq!(m["merged"]["shards"], 4);
    }

    // Shards of two runs (each mode's shards are a run of their own), a missing shard and
    // a repeated one are refused.
    let out = dir.path().join("refused");
    let (code, err) = merge(&[&shards.join("poll-1"), &shards.join("push-2")], &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("merge the shards of one run"), "{err}");
    let (code, err) = merge(&[&shards.join("push-1"), &shards.join("push-2")], &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("shard(s) 0, 3 are missing"), "{err}");
    let (code, err) = merge(&[&shards.join("push-1"), &shards.join("push-1")], &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("both shard 1"), "{err}");
    assert!(!out.exists());
}

/// `pollpush capacity`: a mode that breaks its objective at the first step is said to
/// hold no users and names why; a mode that holds every step up to the maximum says it
/// found no break; the folder has the table, the plot and every step's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_names_the_largest_load_held_or_says_it_found_no_break() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("cap.toml");
    std::fs::write(
        &scenario,
        "name = \"it-capacity\"\nduration = \"2s\"\nwarmup = \"1s\"\nmodes = [\"poll\", \"push\"]\n\
         [users]\ncount = 100\n[poll]\ninterval = \"1s\"\n[workload]\nevents_per_s = 20\n\
         [capacity]\nstart = 50\nmax = 100\nfactor = 2.0\nrefine = 1\n\
         push_p99_ms = 0.001\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_pollpush"))
        .arg("capacity")
        .arg(&scenario)
        .arg("--quiet")
        .arg("--out")
        .arg(&out)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let s = summary(&out);
    let c = &s["capacity"];
    // Poll held 50 and 100 users: the search's maximum, no break.
    let poll = &c["modes"]["poll"];
    assert_eq!(poll["held_users"], 100, "{poll}");
    assert_eq!(poll["broke_at_users"], serde_json::Value::Null, "{poll}");
    assert!(
        poll["verdict"].as_str().unwrap().contains("no break found"),
        "{poll}"
    );
    // Push cannot meet a p99 of 1 µs: it broke at the first step, and says why.
    let push = &c["modes"]["push"];
    assert_eq!(push["held_users"], serde_json::Value::Null, "{push}");
    assert_eq!(push["broke_at_users"], 50, "{push}");
    let why = push["steps"][0]["broken"][0].as_str().unwrap();
    assert!(why.contains("> 0.001 ms"), "{why}");
    assert!(
        stdout.contains("push: held no users; broke at 50"),
        "{stdout}"
    );
    for f in [
        "capacity.md",
        "capacity.png",
        "capacity.svg",
        "scenario.toml",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    for step in ["poll-50", "poll-100", "push-50"] {
        assert!(
            out.join("steps").join(step).join("summary.json").is_file(),
            "{step}"
        );
    }
    // Each step kept the scenario's per-user event rate: 0.2 a second.
    let step = summary(&out.join("steps").join("poll-50"));
    assert_eq!(step["plan"]["events_per_s"], 10.0, "{}", step["plan"]);
}

/// `db.cpu_limit`: the ephemeral Postgres runs in a cgroup with that CPU quota, its CPU
/// stays within it while polling asks for more, the table shows the share used, and the
/// cgroup is gone after the run. (How much of the budget a run uses depends on how many
/// polls the rest of the machine gets through; the release seed case used all of it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_cpu_budget_holds_postgres_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("budget.toml");
    std::fs::write(
        &scenario,
        "name = \"it-budget\"\nduration = \"5s\"\nwarmup = \"1s\"\nmodes = [\"poll\"]\n\
         [users]\ncount = 3000\n[poll]\ninterval = \"1s\"\n[workload]\nevents_per_s = 20\n\
         [db]\ncpu_limit = 0.05\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let ours = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir("/sys/fs/cgroup/cpu")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("pollpush-"))
            .map(|e| e.path())
            .collect()
    };
    // Only what this run leaves counts: another run on the machine may hold its own.
    let before = ours();
    let (code, stdout, err) = run_binary(&scenario, &out).await;
    assert_eq!(code, Some(0), "{err}");
    let s = summary(&out);
    assert_eq!(s["plan"]["db_cpu_limit"], 0.05);
    let cpu = &s["modes"]["poll"]["cpu"];
    // 3,000 polls a second want several times a twentieth of a core of Postgres (0.34
    // cores for 2,000 a second in the seed case): without the budget this would fail.
    let db = f(cpu, "/db_cores");
    assert!(
        db <= 0.05 * 1.2,
        "Postgres used {db} cores with a budget of 0.05"
    );
    let share = f(cpu, "/db_budget_share");
    assert!(share > 0.0 && share <= 1.2, "{cpu}");
    assert!(stdout.contains("share of its budget"), "{stdout}");
    let left: Vec<_> = ours().into_iter().filter(|p| !before.contains(p)).collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}
