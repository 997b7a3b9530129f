//! The CI gate for a user's own service (`examples/ci/gate.sh`), run as a CI runner runs it,
//! against the Socket.IO fixture standing in for that service: unchanged, it passes; a
//! build that delays each message 20 ms, or drops notifications, fails (exit 1); a build
//! that does not start is bad input (exit 2). And `combine`, which the gate uses, adds the
//! runs' histograms exactly. Needs node and npm, like the Socket.IO test (CI installs
//! them; their absence there fails the test).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{socketio_fixture, summary};

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

/// Runs examples/ci/gate.sh with `args` (the scenario first: relative to the repository,
/// or absolute)
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

/// What the gate tests share: Redis for the fixture, a token key, a folder.
struct Bench {
    services: pollpush::services::Services,
    key: String,
    dir: tempfile::TempDir,
}

/// None where node or npm is missing (a failure under CI, said on the terminal elsewhere).
async fn bench() -> Option<Bench> {
    socketio_fixture()?;
    let services = pollpush::services::Services::start(None, None)
        .await
        .unwrap();
    Some(Bench {
        services,
        key: pollpush::token::Signer::random().key_hex(),
        dir: tempfile::tempdir().unwrap(),
    })
}

impl Bench {
    /// The gate with the base and PR knobs given, off the runtime; its folder is `name`.
    async fn gate(
        &self,
        name: &str,
        knobs: (&'static str, &'static str),
        repeats: u32,
        compare_args: &'static str,
    ) -> (PathBuf, i32, String) {
        let out = self.dir.path().join(name);
        let (redis, key) = (self.services.redis_url.clone(), self.key.clone());
        let o = out.clone();
        let (code, text) = tokio::task::spawn_blocking(move || {
            gate(&o, &redis, &key, knobs, repeats, compare_args)
        })
        .await
        .unwrap();
        (out, code, text)
    }
}

/// The gate's mechanics, with what timing and chance move held to an order of magnitude:
/// what is under test is that it measures, combines and judges, not the default limits'
/// false-alarm rate on a shared machine (measured apart: results/gate-sensitivity).
/// Beside parallel tests a debug-built swarm's latency and CPU move by more than those
/// limits allow (a push p99 of 1.8 to 8.4 ms beside a build), never tenfold. And the
/// notifications in a 4 s window at 100 a second are a Poisson count, about 400 with a
/// spread of 5 % (423 against 372 seen for one build): 30 % is six of those.
const ORDER_OF_MAGNITUDE: &str = "--max-regression *.latency_ms.*=900 \
    --max-regression *.cpu.*=900 --max-regression *.delivered=30";

#[tokio::test]
async fn the_gate_passes_an_unchanged_service_and_adds_its_runs_exactly() {
    let Some(bench) = bench().await else {
        return;
    };
    // The same build on both sides, two runs each, alternating: no regression.
    let (out, code, text) = bench.gate("same", ("", ""), 2, ORDER_OF_MAGNITUDE).await;
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
}

#[tokio::test]
async fn the_gate_fails_a_slower_or_lossy_service_and_calls_one_that_does_not_start_bad_input() {
    let Some(bench) = bench().await else {
        return;
    };
    // 1. A build that delays every message by 20 ms: a latency regression under the
    //    default limits, on the p50's own row (1 to 3 ms becomes 21 to 23: far past 30 %
    //    and the 1 ms floor, whatever else the machine is doing).
    let (_, code, text) = bench.gate("slow", ("", "DELAY_MS=20"), 1, "").await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("**FAIL**"), "{text}");
    let p50_row = text
        .lines()
        .find(|l| l.starts_with("| `push.latency_ms.p50` |"))
        .unwrap_or_else(|| panic!("no p50 row: {text}"));
    assert!(p50_row.contains("**REGRESSION**"), "{p50_row}");

    // 2. A build that drops one notification in 50: fails whatever its latency.
    let (out, code, text) = bench.gate("lossy", ("", "DROP_EVERY=50"), 1, "").await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("failed the scenario's checks"), "{text}");
    let lost = summary(&out.join("pr/1"))["modes"]["push"]["events"]["lost"]
        .as_u64()
        .unwrap();
    assert!(lost > 0, "{text}");

    // 3. A build that does not start: bad input, not a regression.
    let (_, code, text) = bench.gate("down", ("", "PORT=notaport"), 1, "").await;
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("the pr service exited before it was ready"),
        "{text}"
    );
}

#[tokio::test]
async fn the_gate_measures_pollpush_own_servers_by_pid_in_both_modes() {
    let Some(bench) = bench().await else {
        return;
    };
    // pollpush's own servers as the service (`serve --role all`, both modes of ci.toml),
    // measured from /proc by pid: the same build on both sides passes, CPU included.
    let out = bench.dir.path().join("serve");
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
        ("DATABASE_URL", bench.services.database_url.clone()),
        ("REDIS_URL", bench.services.redis_url.clone()),
        // The mechanics are under test (pid measurement, both modes), so what a debug
        // build's timing moves is held to an order of magnitude or to half. Between
        // single runs of the same debug build the poll response p99 moved 14.5 -> 27.2
        // and 7.6 -> 71.9 ms (CI), push latency's mean 3.1 -> 4.5 ms, and a saturated
        // server that fell behind left some queries outside the window (111,063 against
        // 124,145 statements a minute). So the load is half of ci.toml's (500 users: the
        // debug server below saturation, and the poll/push ratios still over ci.toml's
        // checks, which 200 users are not: 4.5 against > 10), and counts, bytes and
        // losses keep their default limits.
        (
            "COMPARE_ARGS",
            format!(
                "{ORDER_OF_MAGNITUDE} --max-regression *.response_ms.*=900 \
                 --max-regression *.queries_per_min=50 --max-regression *.requests_per_min=50"
            ),
        ),
    ];
    // ci.toml's own check of push's p99 (under 25 ms, for a release build on a quiet
    // runner, as .ci/run gives it) held to an order of magnitude here: beside parallel
    // tests this debug build's p99 read 29 and 36 ms in one run.
    let text = std::fs::read_to_string(root().join("scenarios/ci.toml")).unwrap();
    let tail = "\"push.latency_ms.p99\" = \"< 25\"";
    assert!(text.contains(tail), "ci.toml's p99 check moved: {tail}");
    let scenario = bench.dir.path().join("ci.toml");
    std::fs::write(
        &scenario,
        text.replace(tail, "\"push.latency_ms.p99\" = \"< 250\""),
    )
    .unwrap();
    let (code, text) = tokio::task::spawn_blocking({
        let (out, key) = (out.clone(), bench.key.clone());
        move || {
            let scenario = scenario.to_str().unwrap();
            run_gate(&out, &key, &[scenario, "--set", "users.count=500"], &env)
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
