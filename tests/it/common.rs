//! Shared helpers: ephemeral services, an in-process server on port 0, HTTP and WebSocket
//! clients.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pollpush::backend::db;
use pollpush::backend::serve::{serve, ServerConfig};
use pollpush::config::PollAuth;
use pollpush::config::PushConfig;
use pollpush::services::Services;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A tool a test needs is missing. Under CI (`CI` set, as `.ci/run` runs, which installs
/// every tool first) or with `require_var` set, that is a failure. On a developer's
/// machine the test is skipped, and says so on the terminal itself: the test harness
/// captures `eprintln!` of a passing test, so the line is written past the capture.
pub fn tool_missing(what: &str, install: &str, require_var: &str) {
    let required = std::env::var_os("CI").is_some() || std::env::var_os(require_var).is_some();
    assert!(
        !required,
        "{what} is missing and this run requires it (CI or {require_var} is set): {install}"
    );
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: {what} is missing ({install}); the part of this test that needs it did not run"
    );
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub tokens: Vec<String>,
    pub pool: sqlx::PgPool,
    _stop: oneshot::Sender<()>,
    // Dropped after the server stops: Postgres and Redis outlive it.
    pub services: Services,
}

/// Ephemeral services, `users` seeded users, and one server with every role on port 0.
pub async fn server(users: u64) -> TestServer {
    server_with(users, PushConfig::default()).await
}

/// Like [`server`], with a given push configuration.
pub async fn server_with(users: u64, push: PushConfig) -> TestServer {
    let services = Services::start(None, None)
        .await
        .expect("ephemeral Postgres and Redis start");
    let pool = db::connect(&services.database_url, 4).await.expect("pool");
    let tokens = db::seed_users(&pool, users, &pollpush::token::Signer::random())
        .await
        .expect("seed");
    let (addr, stop) = instance(&services, &pool, push, true).await;
    TestServer {
        addr,
        tokens,
        pool,
        _stop: stop,
        services,
    }
}

/// One more server on the same services: every role when `all`, else a gateway instance
/// (push and ingest, as `serve --role push`). Dropping the sender stops it.
pub async fn instance(
    services: &Services,
    pool: &sqlx::PgPool,
    push: PushConfig,
    all: bool,
) -> (SocketAddr, oneshot::Sender<()>) {
    instance_with(
        services,
        pool,
        ServerConfig {
            poll: all,
            ingest: true,
            push: true,
            poll_auth: PollAuth::Db,
            push_config: push,
            poll_delay: Duration::ZERO,
            signer: None,
            header_timeout: Duration::from_secs(60),
            long_poll: false,
            operator: None,
            poll_backend: pollpush::config::PollBackend::Db,
            conditional: false,
            http2: false,
            // As `serve` runs: the poll's statements over pipelining connections.
            pipeline: Some(std::sync::Arc::new(
                pollpush::backend::pipeline::Pipeline::new(&services.database_url, 2)
                    .expect("the ephemeral database's URL"),
            )),
        },
    )
    .await
}

/// A server with a given configuration on the same services.
pub async fn instance_with(
    services: &Services,
    pool: &sqlx::PgPool,
    config: ServerConfig,
) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let redis_url = services.redis_url.clone();
    let server_pool = pool.clone();
    tokio::spawn(async move {
        serve(listener, server_pool, &redis_url, config, ready_tx, async {
            let _ = stop_rx.await;
        })
        .await
        .expect("server runs");
    });
    let addr = tokio::time::timeout(Duration::from_secs(15), ready_rx)
        .await
        .expect("server ready in time")
        .expect("server ready");
    (addr, stop_tx)
}

/// Sends one request, with a bearer token and a JSON body when given, and returns the
/// response once its headers are in.
async fn send(
    method: &str,
    url: String,
    token: Option<&str>,
    body: Option<&str>,
) -> hyper::Response<hyper::body::Incoming> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .expect("answer in time")
        .expect("request")
}

/// One HTTP request; returns its status as soon as the headers are in (the body, which for
/// an event stream never ends, is not read).
pub async fn http_status(
    method: &str,
    url: String,
    token: Option<&str>,
    body: Option<&str>,
) -> u16 {
    send(method, url, token, body).await.status().as_u16()
}

/// One HTTP request; returns status and body.
pub async fn http(
    method: &str,
    url: String,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let resp = send(method, url, token, body).await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens a WebSocket to the gateway with a bearer token.
pub async fn ws(
    addr: SocketAddr,
    token: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    ws_from(addr, token, None).await
}

/// A WebSocket with a bearer token and, to catch up, `?last_id=`.
pub async fn ws_from(
    addr: SocketAddr,
    token: &str,
    last_id: Option<i64>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = match last_id {
        Some(id) => format!("ws://{addr}/ws?last_id={id}"),
        None => format!("ws://{addr}/ws"),
    };
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(req, stream)
        .await
        .map(|(ws, _)| ws)
}

/// The next text frame within `wait`, if any (pings are skipped).
pub async fn next_text(ws: &mut Ws, wait: Duration) -> Option<String> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// What `run` needs to start servers from the test binary's `pollpush`, silently, with
/// ephemeral services.
pub fn run_options() -> pollpush::run::RunOptions {
    pollpush::run::RunOptions {
        database_url: None,
        redis_url: None,
        remote: None,
        server_exe: env!("CARGO_BIN_EXE_pollpush").into(),
        log_dir: None,
        observer: std::sync::Arc::new(pollpush::run::Silent),
        shard: None,
    }
}

/// `pollpush run SCENARIO --quiet --out OUT` with ephemeral services: (exit code, stdout,
/// stderr).
pub async fn run_binary(
    scenario: &std::path::Path,
    out: &std::path::Path,
) -> (Option<i32>, String, String) {
    let result = tokio::process::Command::new(env!("CARGO_BIN_EXE_pollpush"))
        .arg("run")
        .arg(scenario)
        .arg("--quiet")
        .arg("--out")
        .arg(out)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .output()
        .await
        .unwrap();
    (
        result.status.code(),
        String::from_utf8_lossy(&result.stdout).into_owned(),
        String::from_utf8_lossy(&result.stderr).into_owned(),
    )
}

/// A child process killed when dropped.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the child's stdout until a line containing `marker`; returns what follows it.
pub fn url_after(child: &mut std::process::Child, marker: &str) -> String {
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.split(marker).nth(1) {
            return rest.trim().to_string();
        }
        line.clear();
    }
    panic!("no {marker:?} line");
}

/// `pollpush serve --role ROLE --port 0` on `services`, as its own process: the process
/// (killed when dropped) and its URL.
pub fn serve_process(role: &str, services: &Services) -> (Killed, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pollpush"))
        .args(["serve", "--role", role, "--port", "0", "--database-url"])
        .arg(&services.database_url)
        .arg("--redis-url")
        .arg(&services.redis_url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = url_after(&mut child, "pollpush: listening on ");
    (Killed(child), url)
}

/// The Socket.IO fixture (`tests/fixtures/socketio/`) with its npm packages installed;
/// None, said on the terminal, where node or npm is missing (under CI, or with
/// POLLPUSH_REQUIRE_NODE, their absence fails the test instead).
pub fn socketio_fixture() -> Option<std::path::PathBuf> {
    use std::process::{Command, Stdio};
    let ok = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(ok("node") && ok("npm")) {
        tool_missing(
            "node and npm (for the Socket.IO fixture)",
            "apt-get install nodejs npm",
            "POLLPUSH_REQUIRE_NODE",
        );
        return None;
    }
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/socketio");
    // Several tests use the fixture at once (threads here, processes under nextest), and
    // `npm ci` empties node_modules first: one installs, under a lock on a file, and only
    // when the installed tree is not the lock file's (npm records it in
    // node_modules/.package-lock.json).
    let lock = std::fs::File::create(fixture.join(".install-lock")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function owns; released when `lock` is dropped.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let installed = modified(&fixture.join("node_modules/.package-lock.json"));
    if installed.is_none() || installed < modified(&fixture.join("package-lock.json")) {
        let npm = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&fixture)
            .status()
            .unwrap();
        assert!(npm.success(), "npm ci in {}", fixture.display());
    }
    drop(lock);
    Some(fixture)
}

/// A result folder's summary.json.
pub fn summary(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// The number at a JSON pointer (`/modes/poll/latency_ms/mean`); panics naming it when it
/// is missing or not a number.
pub fn number(v: &serde_json::Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(|x| x.as_f64())
        .unwrap_or_else(|| panic!("{pointer} in {v}"))
}

/// The value at a dotted path of a summary (`modes.poll.http.requests_per_min`, list
/// entries by index); null where there is none.
pub fn lookup<'a>(v: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    path.split('.')
        .fold(v, |v, k| match (v, k.parse::<usize>()) {
            (serde_json::Value::Array(a), Ok(i)) => a.get(i).unwrap_or(&serde_json::Value::Null),
            _ => &v[k],
        })
}

/// The number at a dotted path of a summary; panics naming the path.
pub fn number_at(v: &serde_json::Value, path: &str) -> f64 {
    let x = lookup(v, path);
    x.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {x}"))
}
