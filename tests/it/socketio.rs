//! The swarm against a Socket.IO v4 server as the reference design builds it
//! (`tests/fixtures/socketio/`: Node.js, socket.io and redis from npm, a room per user fed
//! by Redis pub/sub). Needs node and npm; without them the test says so and passes, unless
//! POLLPUSH_REQUIRE_NODE=1 (set by `.ci/run` where node exists).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{serve_process, url_after, Killed, HEAVY};

fn node_available() -> bool {
    let ok = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    ok("node") && ok("npm")
}

#[tokio::test]
async fn the_swarm_drives_a_socketio_server_and_every_notification_arrives_once() {
    if !node_available() {
        assert!(
            std::env::var("POLLPUSH_REQUIRE_NODE").is_err(),
            "POLLPUSH_REQUIRE_NODE is set but node or npm is missing"
        );
        eprintln!("SKIPPED: node and npm are needed for the Socket.IO fixture (apt-get install nodejs npm)");
        return;
    }
    let _heavy = HEAVY.lock().await;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/socketio");
    let npm = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(&fixture)
        .status()
        .unwrap();
    assert!(npm.success(), "npm ci in {}", fixture.display());

    let services = pollpush::services::Services::start(None, None)
        .await
        .unwrap();
    let key = pollpush::backend::token::Signer::random().key_hex();
    let (_ingest, ingest_url) = serve_process("ingest", &services);
    let mut node = Command::new("node")
        .arg("server.js")
        .current_dir(&fixture)
        .env("REDIS_URL", &services.redis_url)
        .env("POLLPUSH_TOKEN_KEY", &key)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let node_url = url_after(&mut node, "listening on ");
    let _node = Killed(node);

    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"it-socketio\"\nduration = \"5s\"\nwarmup = \"1s\"\nmodes = [\"push\"]\n\
         [users]\ncount = 300\n[push]\ntransport = \"socketio\"\ncatch_up = false\n\
         [workload]\nevents_per_s = 100\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let (db, redis) = (services.database_url.clone(), services.redis_url.clone());
    let args: Vec<String> = vec![
        "swarm".into(),
        scenario.to_str().unwrap().into(),
        "--quiet".into(),
        "--out".into(),
        out.to_str().unwrap().into(),
        "--push-url".into(),
        node_url,
        "--ingest-url".into(),
        ingest_url,
        "--database-url".into(),
        db,
        "--redis-url".into(),
        redis,
    ];
    let run = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pollpush"))
            .args(&args)
            .env("POLLPUSH_TOKEN_KEY", key)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let push = &s["modes"]["push"];
    let e = &push["events"];
    assert!(e["sent"].as_u64().unwrap() > 300, "{e}");
    assert_eq!(e["delivered"], e["sent"], "{e}");
    for k in ["lost", "duplicated", "misrouted", "send_failed"] {
        assert_eq!(e[k], 0, "{k}: {e}");
    }
    let p50 = push["latency_ms"]["p50"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 100.0, "{}", push["latency_ms"]);
    // Every client connected; the server's own counters are unknown (no /stats), so null.
    assert_eq!(push["connections"], 300);
    assert!(push["server"]["delivered"].is_null(), "{}", push["server"]);
    assert!(push["instances"][0]["delivered"].is_null());
}
