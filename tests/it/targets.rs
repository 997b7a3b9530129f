//! `pollpush swarm` against targets that do not behave: one that is not there, one that
//! refuses every client at the handshake, one whose messages are not in the format the
//! scenario describes, and one that never delivers. Each gets a clear error or a reported
//! failure within a bounded time, never a hang.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::serve_process;

/// `pollpush swarm SCENARIO ARGS... --quiet --out OUT`: (exit code, stderr, summary.json
/// if written, seconds taken).
async fn swarm(
    scenario: &str,
    args: &[&str],
    dir: &Path,
) -> (Option<i32>, String, Option<serde_json::Value>, f64) {
    let file = dir.join("s.toml");
    std::fs::write(&file, scenario).unwrap();
    let out = dir.join("out");
    let t = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_pollpush"))
            .arg("swarm")
            .arg(&file)
            .args(args)
            .arg("--quiet")
            .arg("--out")
            .arg(&out)
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .output(),
    )
    .await
    .expect("swarm hung for 2 minutes")
    .unwrap();
    let summary = std::fs::read_to_string(out.join("summary.json"))
        .ok()
        .map(|s| serde_json::from_str(&s).unwrap());
    (
        result.status.code(),
        String::from_utf8_lossy(&result.stderr).into_owned(),
        summary,
        t.elapsed().as_secs_f64(),
    )
}

const PUSH: &str = "name = \"it-target\"\nduration = \"2s\"\nwarmup = \"1s\"\ndrain = \"1s\"\n\
                    modes = [\"push\"]\n[users]\ncount = 50\n[workload]\nevents_per_s = 50\n";

#[tokio::test]
async fn a_target_that_is_not_there_is_an_error_at_once() {
    let port = pollpush::services::free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let (code, err, summary, secs) = swarm(PUSH, &["--push-url", &url], dir.path()).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("--push-url {url}: cannot connect"))
            && err.contains("is the target running?"),
        "{err}"
    );
    assert!(summary.is_none());
    assert!(secs < 10.0, "{secs} s");
}

#[tokio::test]
async fn targets_that_refuse_garble_or_never_deliver_are_reported() {
    let services = pollpush::services::Services::start(None, None)
        .await
        .unwrap();
    let (_server, url) = serve_process("all", &services);
    let db = services.database_url.as_str();
    let redis = services.redis_url.as_str();

    // Refused at the handshake: without the database, the swarm's users have no sessions
    // there, so the gateway answers every upgrade with 401.
    let dir = tempfile::tempdir().unwrap();
    let (code, err, summary, secs) = swarm(PUSH, &["--push-url", &url], dir.path()).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("none of the 50 clients could connect") && err.contains("401"),
        "{err}"
    );
    assert!(summary.is_none());
    assert!(secs < 30.0, "{secs} s");

    // From here on the swarm has the database, so the gateway knows its users.
    let with_db = [
        "--push-url",
        &url,
        "--database-url",
        db,
        "--redis-url",
        redis,
    ];

    // Garbled: the notifications carry the event number elsewhere than the scenario says.
    let dir = tempfile::tempdir().unwrap();
    let garbled = format!("{PUSH}[target.notification]\nevent = \"/payload/nope\"\n");
    let (code, err, summary, _) = swarm(&garbled, &with_db, dir.path()).await;
    assert_eq!(code, Some(0), "{err}");
    let e = &summary.unwrap()["modes"]["push"]["events"];
    assert!(e["unreadable"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["delivered"], 0, "{e}");
    assert_eq!(e["lost"], e["sent"], "{e}");
    assert!(
        err.contains("carried no event number at \"/payload/nope\"") && err.contains("\"emit_us\""),
        "{err}"
    );

    // A poll whose answer has no array where the scenario says: errors, and reported.
    let dir = tempfile::tempdir().unwrap();
    let poll = "name = \"it-target\"\nduration = \"2s\"\nwarmup = \"0s\"\ndrain = \"1s\"\n\
                modes = [\"poll\"]\n[users]\ncount = 20\n[poll]\ninterval = \"500ms\"\n\
                [target.poll]\nitems = \"/items\"\n";
    let (code, err, summary, _) = swarm(
        poll,
        &[
            "--poll-url",
            &url,
            "--database-url",
            db,
            "--redis-url",
            redis,
        ],
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    let p = &summary.unwrap()["modes"]["poll"];
    assert!(p["http"]["errors"].as_u64().unwrap() > 20, "{}", p["http"]);
    assert!(
        p["events"]["unreadable"].as_u64().unwrap() > 20,
        "{}",
        p["events"]
    );

    // Never delivers: events published on a channel nobody listens on. Every one is lost,
    // the warning says so, and the scenario's check fails with exit code 1.
    let dir = tempfile::tempdir().unwrap();
    let silent = format!(
        "{PUSH}[target.emit]\nvia = \"redis\"\nchannel = \"nobody-listens\"\n\
         [checks]\n\"push.events.lost\" = \"== 0\"\n"
    );
    let (code, err, summary, secs) = swarm(&silent, &with_db, dir.path()).await;
    assert_eq!(code, Some(1), "{err}");
    let e = &summary.unwrap()["modes"]["push"]["events"];
    assert!(e["sent"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["delivered"], 0, "{e}");
    assert_eq!(e["lost"], e["sent"], "{e}");
    assert!(err.contains("reached a client"), "{err}");
    assert!(secs < 60.0, "{secs} s");
}

/// Every event of a push run arrived once, and nothing was unreadable.
fn all_delivered(summary: Option<serde_json::Value>) -> serde_json::Value {
    let push = summary.expect("a summary")["modes"]["push"].clone();
    let e = &push["events"];
    assert!(e["sent"].as_u64().unwrap() > 20, "{e}");
    assert_eq!(e["delivered"], e["sent"], "{e}");
    for k in [
        "lost",
        "duplicated",
        "misrouted",
        "unreadable",
        "send_failed",
    ] {
        assert_eq!(e[k], 0, "{k}: {e}");
    }
    push
}

#[tokio::test]
async fn a_target_table_speaks_other_auth_emit_and_event_conventions() {
    let services = pollpush::services::Services::start(None, None)
        .await
        .unwrap();
    let (_server, url) = serve_process("all", &services);
    let db = services.database_url.as_str();
    let redis = services.redis_url.as_str();
    let args = [
        "--push-url",
        &url,
        "--database-url",
        db,
        "--redis-url",
        redis,
    ];

    // WebSocket, the token in a first frame; events by an HTTP request built from a
    // template, to an API given by --ingest-url.
    let dir = tempfile::tempdir().unwrap();
    let ws = format!(
        "{PUSH}[target.push]\nauth = {{ via = \"first-frame\", value = '{{\"token\":\"{{token}}\"}}' }}\n\
         [target.emit]\nvia = \"http\"\nmethod = \"POST\"\npath = \"/notifications\"\n\
         body = '{{\"user_id\":{{user}},\"payload\":{{payload}}}}'\n"
    );
    let mut with_ingest = args.to_vec();
    with_ingest.extend(["--ingest-url", &url]);
    let (code, err, summary, _) = swarm(&ws, &with_ingest, dir.path()).await;
    assert_eq!(code, Some(0), "{err}");
    all_delivered(summary);

    // Server-sent events of type "message" only, the token in a header named by the
    // table; events published straight to Redis, where the gateway listens (they never
    // touch Postgres: the gateway routes what Redis brings).
    let dir = tempfile::tempdir().unwrap();
    let sse = format!(
        "{PUSH}[push]\ntransport = \"sse\"\n[target.push]\nevent = \"message\"\n\
         auth = {{ via = \"header\", name = \"Authorization\", value = \"Bearer {{token}}\" }}\n\
         [target.emit]\nvia = \"redis\"\nchannel = \"notifications\"\n\
         message = '{{\"id\":{{event}},\"user_id\":{{user}},\"payload\":{{payload}}}}'\n"
    );
    let (code, err, summary, _) = swarm(&sse, &args, dir.path()).await;
    assert_eq!(code, Some(0), "{err}");
    let push = all_delivered(summary);
    assert_eq!(push["connections"], 50, "{push}");
}
