//! The CI gate for a user's own service (`examples/ci/gate.sh`), run as a CI runner runs it,
//! against the Socket.IO fixture standing in for that service: unchanged, it passes; a
//! build that delays each message 20 ms, or drops notifications, fails (exit 1); a build
//! that does not start is bad input (exit 2). And `combine`, which the gate uses, adds the
//! runs' histograms exactly. Needs node and npm, like the Socket.IO test (CI installs
//! them; their absence there fails the test).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{socketio_fixture, summary, HEAVY};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the gate against the Socket.IO fixture with the base and PR knobs given; its exit
/// code, and its stdout (the comparison) with its stderr.
fn gate(
    out: &Path,
    redis: &str,
    key: &str,
    (base, pr): (&str, &str),
    repeats: u32,
    compare_args: &str,
) -> (i32, String) {
    let fixture = root().join("tests/fixtures/socketio");
    let cmd = |extra: &str| {
        format!(
            "cd '{}' && PORT=0 {extra} exec node server.js",
            fixture.display()
        )
    };
    let args = [
        "scenarios/socketio.toml",
        "--redis-url",
        redis,
        "--set",
        "users.count=300",
    ];
    let env = [
        ("BASE_CMD", cmd(base)),
        ("PR_CMD", cmd(pr)),
        ("REPEATS", repeats.to_string()),
        ("REDIS_URL", redis.to_string()),
        ("COMPARE_ARGS", compare_args.to_string()),
    ];
    run_gate(out, key, &args, &env)
}

/// Runs examples/ci/gate.sh with `args` (the scenario first, relative to the repository)
/// and `env`; windows of 4 s.
fn run_gate(out: &Path, key: &str, args: &[&str], env: &[(&str, String)]) -> (i32, String) {
    let run = Command::new("bash")
        .arg(root().join("examples/ci/gate.sh"))
        .arg(root().join(args[0]))
        .args(&args[1..])
        .args(["--set", "duration=4s", "--set", "warmup=1s"])
        .current_dir(root())
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("OUT", out)
        .env("POLLPUSH", env!("CARGO_BIN_EXE_pollpush"))
        .env("POLLPUSH_TOKEN_KEY", key)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let text = format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    (run.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn the_gate_passes_an_unchanged_service_and_fails_a_slower_or_lossy_one() {
    let _heavy = HEAVY.lock().await;
    if socketio_fixture().is_none() {
        return;
    }
    let services = pollpush::services::Services::start(None, None)
        .await
        .unwrap();
    let redis = services.redis_url.clone();
    let key = pollpush::token::Signer::random().key_hex();
    let dir = tempfile::tempdir().unwrap();

    // 1. The same build on both sides, two runs each, alternating: no regression.
    let out = dir.path().join("same");
    let (code, text) = tokio::task::spawn_blocking({
        let (out, redis, key) = (out.clone(), redis.clone(), key.clone());
        // The mechanics are under test here, not the default limits' false-alarm rate
        // (measured apart: results/gate-sensitivity): a debug-built swarm beside other
        // tests moves latency and CPU by more than those limits allow once in a while,
        // so they get room.
        move || {
            let loose = "--max-regression *.latency_ms.*=500 --max-regression *.cpu.*=500";
            gate(&out, &redis, &key, ("", ""), 2, loose)
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("**PASS**"), "{text}");
    // Each side's runs were combined exactly: the histogram's count is the runs' sum, and
    // each run's figures are kept as a repeat.
    for side in ["base", "pr"] {
        let combined = summary(&out.join(format!("{side}-combined")));
        let count = |s: &serde_json::Value| s["modes"]["push"]["latency_ms"]["count"].as_u64();
        let runs: u64 = (1..=2)
            .map(|i| count(&summary(&out.join(side).join(i.to_string()))).unwrap())
            .sum();
        assert!(runs > 500, "{runs}");
        assert_eq!(count(&combined), Some(runs), "{side}");
        assert_eq!(combined["repeats"].as_array().map(Vec::len), Some(2));
        // The service's CPU and memory, read from its own /metrics, are measured and gated.
        let push = &combined["modes"]["push"];
        assert!(
            push["cpu"]["server_cores"].as_f64().unwrap() > 0.0,
            "{}",
            push["cpu"]
        );
        assert!(push["memory"]["server_rss_mb"].as_f64().unwrap() > 10.0);
    }
    assert!(text.contains("push.cpu.server_cores"), "{text}");
    assert!(text.contains("push.memory.server_rss_mb"), "{text}");

    // 2. A build that delays every message by 20 ms: a latency regression.
    let out = dir.path().join("slow");
    let (code, text) = tokio::task::spawn_blocking({
        let (out, redis, key) = (out.clone(), redis.clone(), key.clone());
        move || gate(&out, &redis, &key, ("", "DELAY_MS=20"), 1, "")
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("**FAIL**"), "{text}");
    assert!(
        text.contains("| `push.latency_ms.p50` |") && text.contains("**REGRESSION**"),
        "{text}"
    );

    // 3. A build that drops one notification in 50: fails whatever its latency.
    let out = dir.path().join("lossy");
    let (code, text) = tokio::task::spawn_blocking({
        let (out, redis, key) = (out.clone(), redis.clone(), key.clone());
        move || gate(&out, &redis, &key, ("", "DROP_EVERY=50"), 1, "")
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("failed the scenario's checks"), "{text}");
    let lost = summary(&out.join("pr/1"))["modes"]["push"]["events"]["lost"]
        .as_u64()
        .unwrap();
    assert!(lost > 0, "{text}");

    // 4. A build that does not start: bad input, not a regression.
    let out = dir.path().join("down");
    let (code, text) = tokio::task::spawn_blocking({
        let (out, redis, key) = (out.clone(), redis.clone(), key.clone());
        move || gate(&out, &redis, &key, ("", "PORT=notaport"), 1, "")
    })
    .await
    .unwrap();
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("the pr service exited before it was ready"),
        "{text}"
    );

    // 5. pollpush's own servers as the service (`serve --role all`, both modes of ci.toml),
    //    measured from /proc by pid: the same build on both sides passes, CPU included.
    let out = dir.path().join("serve");
    let serve = format!(
        "exec '{}' serve --role all --port 0",
        env!("CARGO_BIN_EXE_pollpush")
    );
    let env = [
        ("BASE_CMD", serve.clone()),
        ("PR_CMD", serve),
        ("ROLE", "all".to_string()),
        ("MEASURE", "pid".to_string()),
        ("REPEATS", "1".to_string()),
        ("DATABASE_URL", services.database_url.clone()),
        ("REDIS_URL", redis.clone()),
        // The mechanics are under test here (pid measurement, both modes), not the
        // limits' false-alarm rate (measured apart: results/gate-sensitivity). A debug
        // build of the poll API beside other tests is noisy in time: between single runs
        // of the same build its response p99 moved from 14.5 to 27.2 ms, then from 7.6 to
        // 71.9 ms with the mean 2.2 against 6.2 ms (CI), and push latency's mean from 3.1
        // to 4.5 ms; when the saturated server fell behind, fewer of its queries landed
        // inside the window (111,063 against 124,145 statements a minute). So the load is
        // half of ci.toml's (500 users: the debug server well below saturation), and
        // response times, latency tails and Postgres's per-minute count get room. Counts,
        // bytes, losses and CPU keep their default limits.
        (
            "COMPARE_ARGS",
            "--max-regression *.response_ms.*=1000 --max-regression *.latency_ms.*=500 \
             --max-regression poll.db.queries_per_min=30"
                .to_string(),
        ),
    ];
    let (code, text) = tokio::task::spawn_blocking({
        let (out, key) = (out.clone(), key.clone());
        move || {
            run_gate(
                &out,
                &key,
                &["scenarios/ci.toml", "--set", "users.count=500"],
                &env,
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{text}");
    let s = summary(&out.join("pr/1"));
    for mode in ["poll", "push"] {
        let cpu = &s["modes"][mode]["cpu"]["server_cores"];
        assert!(cpu.as_f64().is_some_and(|c| c > 0.0), "{mode}: {cpu}");
    }
}

#[test]
fn combine_refuses_runs_that_do_not_belong_together() {
    let pollpush = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_pollpush"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let reference = root().join("results/reference");
    let baseline = root().join("results/baseline");
    let (r, b) = (reference.to_str().unwrap(), baseline.to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    let o = out.to_str().unwrap();
    // One run is not a combination.
    let (code, err) = pollpush(&["combine", r, "--out", o]);
    assert_eq!(code, Some(2), "{err}");
    // Two scenarios.
    let (code, err) = pollpush(&["combine", r, b, "--out", o]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("repeats") || err.contains("different scenarios"),
        "{err}"
    );
    // A folder that is not a result.
    let (code, err) = pollpush(&["combine", r, "/no/such/run", "--out", o]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/no/such/run"), "{err}");
    assert!(!out.exists(), "nothing written on bad input");
}
