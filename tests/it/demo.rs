//! `pollpush demo`: the page in a real browser (headless Chromium over the DevTools
//! protocol), its controls changing the run, its refusals, and the result folder it leaves.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::common::Killed;

/// Starts the demo; returns it (killed when dropped), the page's URL and its stdout lines.
fn start_demo(out: &std::path::Path) -> (Killed, String, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pollpush"))
        .args([
            "demo",
            "--users",
            "200",
            "--max-users",
            "1000",
            "--interval",
            "1s",
            "--rate",
            "6",
            "--no-open",
            "--duration",
            "150s",
            "--out",
        ])
        .arg(out)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    // Drained for as long as the demo runs: a closed pipe would end its printing.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the demo prints its address within 2 minutes");
        if let Some(url) = line.strip_prefix("pollpush demo: open ") {
            return (child, url.trim().to_string(), rx);
        }
    }
}

async fn post(url: &str, body: &str) -> (u16, Value) {
    let (status, body) = crate::common::http("POST", url.to_string(), None, Some(body)).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// A minimal DevTools client: commands with ids, events kept.
struct Cdp {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
    session: Option<String>,
    events: Vec<Value>,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let mut msg = json!({ "id": self.next, "method": method, "params": params });
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).await.unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("the browser answers")
                .expect("the browser is connected")
                .unwrap();
            let Message::Text(text) = m else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == json!(self.next) {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    /// Evaluates `expr` in the page; its value.
    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expr, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Waits up to `secs` for `expr` to be true in the page.
    async fn until(&mut self, expr: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.eval(expr).await == json!(true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        false
    }
}

/// Postgres queries a second of the poll lane, averaged over the page's last 3 seconds.
const POLL_DB: &str = "(() => { const h = demo.history.poll.slice(-3); return h.reduce((a, f) => a + (f.sample.db_queries_per_s || 0), 0) / Math.max(h.length, 1); })()";

#[tokio::test]
async fn the_demo_page_updates_live_and_its_controls_change_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let (mut demo, url, lines) = start_demo(&out);

    // The API refuses what the run cannot take, with the reason, and goes on.
    let (status, v) = post(&format!("{url}knobs"), r#"{"users": 100000, "interval_s": 1, "events_per_user_per_min": 6, "instances": 1, "fanout": "broadcast"}"#).await;
    assert_eq!(status, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("users"), "{v}");
    let (status, v) = post(&format!("{url}knobs"), r#"{"users": -3}"#).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = post(&format!("{url}knobs"), r#"{"users": 200, "interval_s": 1, "events_per_user_per_min": -1, "instances": 1, "fanout": "broadcast"}"#).await;
    assert_eq!(status, 422, "{v}");
    let (status, _) = post(&format!("{url}action/reboot-everything"), "").await;
    assert_eq!(status, 404);

    let Some(browser) = crate::cli::chromium() else {
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let mut chrome = Command::new(browser)
        .args(crate::cli::CHROMIUM_FLAGS)
        .args(["--remote-debugging-port=0", "--window-size=1500,1400"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = chrome.stderr.take().unwrap();
    let mut ws_url = None;
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("DevTools listening on ") {
            ws_url = Some(u.trim().to_string());
            break;
        }
    }
    let _chrome = Killed(chrome);
    let (ws, _) = tokio_tungstenite::connect_async(ws_url.expect("Chromium's DevTools address"))
        .await
        .unwrap();
    let mut cdp = Cdp {
        ws,
        next: 0,
        session: None,
        events: Vec::new(),
    };
    let target = cdp
        .call("Target.createTarget", json!({ "url": "about:blank" }))
        .await;
    let attached = cdp
        .call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        )
        .await;
    cdp.session = Some(attached["sessionId"].as_str().unwrap().to_string());
    cdp.call("Network.enable", json!({})).await;
    cdp.call("Page.enable", json!({})).await;
    cdp.call("Page.navigate", json!({ "url": url })).await;

    // Both panes update once a second.
    assert!(
        cdp.until("window.demo !== undefined && demo.frames >= 4", 40)
            .await,
        "no frames reached the page"
    );
    let started = cdp.eval("demo.frames").await.as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = cdp.eval("demo.frames").await.as_u64().unwrap();
    assert!(later >= started + 2, "frames {started} -> {later} in 3 s");
    assert_eq!(
        cdp.eval(
            "demo.last.poll.sample.requests_per_s > 100 && demo.last.push.sample.connections > 150"
        )
        .await,
        json!(true),
        "{}",
        cdp.eval("JSON.stringify(demo.last)").await
    );
    // 200 users polling every second: about 400 Postgres queries a second (2 a poll).
    assert!(cdp.until(&format!("{POLL_DB} > 300"), 15).await);
    let before = cdp.eval(POLL_DB).await.as_f64().unwrap();

    // A refused control: the page says why, and the run goes on.
    cdp.eval("document.getElementById('users').value = 100000; document.getElementById('apply').click(); true").await;
    assert!(
        cdp.until("demo.errors.some(e => e.includes('users'))", 10)
            .await
    );
    let frames = cdp.eval("demo.frames").await.as_u64().unwrap();
    assert!(cdp.until(&format!("demo.frames > {frames} + 1"), 10).await);

    // Double the users from the page: Postgres's own count follows within seconds.
    cdp.eval("document.getElementById('users').value = 400; document.getElementById('apply').click(); true").await;
    assert!(
        cdp.until("demo.applied >= 1", 10).await,
        "{:?}",
        cdp.eval("demo.errors").await
    );
    assert!(
        cdp.until(&format!("{POLL_DB} > {}", before * 1.6), 20)
            .await,
        "poll lane's DB queries/s stayed near {before}: {}",
        cdp.eval(POLL_DB).await
    );

    // Kill Redis: the gateways reconnect, and the page says so.
    cdp.eval("document.querySelector('[data-action=kill-redis]').click(); true")
        .await;
    assert!(
        cdp.until("demo.last.push.redis_resets >= 1", 20).await,
        "{}",
        cdp.eval("JSON.stringify(demo.last.push)").await
    );
    assert!(
        cdp.until(
            "document.getElementById('message').textContent.includes('Redis')",
            5
        )
        .await
    );

    let shot = cdp
        .call("Page.captureScreenshot", json!({ "format": "png" }))
        .await;
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    let saved = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-page.png");
    std::fs::write(&saved, &png).unwrap();
    assert!(
        png.len() > 20_000,
        "a screenshot of charts: {}",
        saved.display()
    );

    // The page asked nothing of the network but the demo itself.
    let origin = url.trim_end_matches('/');
    for e in cdp
        .events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
    {
        let u = e["params"]["request"]["url"].as_str().unwrap_or("");
        assert!(
            u.starts_with(origin) || u.starts_with("data:"),
            "the page loaded {u}"
        );
    }

    // Ctrl-C ends it, and the seconds shown are in the result folder.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(demo.0.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(60);
    while demo.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = demo
        .0
        .try_wait()
        .unwrap()
        .expect("the demo stops at Ctrl-C");
    assert!(status.success(), "{status:?}");
    let said: Vec<String> = lines.try_iter().collect();
    assert!(said.iter().any(|l| l.contains("seconds shown")), "{said:?}");
    let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    assert!(csv.starts_with("mode,demo_t_s,users,"), "{csv}");
    assert!(csv.lines().filter(|l| l.starts_with("poll,")).count() >= 10);
    assert!(csv
        .lines()
        .any(|l| l.starts_with("poll,") && l.contains(",400,")));
}
