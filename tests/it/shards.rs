//! A run split over several swarm processes agrees with the same run in one process; the
//! shards' folders merge back to the run's figures exactly; `merge` refuses shards of
//! different runs or a missing shard.

use std::path::Path;

use crate::common::{run_binary, HEAVY};

const SCENARIO: &str =
    "name = \"it-shards\"\nduration = \"6s\"\nwarmup = \"1s\"\nmodes = [\"poll\", \"push\"]\n\
[users]\ncount = 1200\n[poll]\ninterval = \"2s\"\n[workload]\nevents_per_s = 40\n";

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn f(v: &serde_json::Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(|x| x.as_f64())
        .unwrap_or_else(|| panic!("{path} in {v}"))
}

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
    let _heavy = HEAVY.lock().await;
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
        assert!(f(s, "/modes/push/latency_ms/p99") < 50.0, "{what}");
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
