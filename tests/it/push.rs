//! The push gateway at production grade, against real Redis and Postgres: several
//! instances and their fan-out, catch-up at the seam, SSE, first-frame auth, slow
//! consumers, and a Redis restart.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pollpush::config::PushConfig;
use pollpush::config::{Fanout, SlowPolicy};
use pollpush::wire::StatsSnapshot;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{http, instance, next_text, server_with, ws_from, Ws};

fn body(user: u64, event: u64) -> String {
    format!(
        "{{\"user_id\":{user},\"payload\":{{\"event\":{event},\"emit_us\":{}}}}}",
        pollpush::now_us()
    )
}

/// Posts a notification through `addr`; returns its id.
async fn post(addr: std::net::SocketAddr, user: u64, event: u64) -> i64 {
    let (status, text) = http(
        "POST",
        format!("http://{addr}/notifications"),
        None,
        Some(&body(user, event)),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn stats(addr: std::net::SocketAddr) -> StatsSnapshot {
    let (_, text) = http("GET", format!("http://{addr}/stats"), None, None).await;
    serde_json::from_str(&text).unwrap()
}

/// The server's counters once `ready` holds for them, or after 5 s, whatever they are then:
/// the caller asserts. A close travels through TCP and a task or two, so its effect is
/// awaited rather than slept for.
async fn stats_once(
    addr: std::net::SocketAddr,
    ready: impl Fn(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let s = stats(addr).await;
        if ready(&s) || std::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The notification ids that arrive within `wait` after the last one.
async fn ids(ws: &mut Ws, wait: Duration) -> Vec<i64> {
    let mut out = Vec::new();
    while let Some(t) = next_text(ws, wait).await {
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        out.push(v["id"].as_i64().unwrap());
    }
    out
}

fn config(fanout: Fanout) -> PushConfig {
    PushConfig {
        fanout,
        ..PushConfig::default()
    }
}

#[tokio::test]
async fn broadcast_sends_every_message_to_every_instance_and_per_user_only_to_the_holder() {
    for fanout in [Fanout::Broadcast, Fanout::PerUser] {
        let s = server_with(4, config(fanout)).await;
        let (b, _stop_b) = instance(&s.services, &s.pool, config(fanout), false).await;
        // User 1 on instance A, user 2 on instance B.
        let mut ws1 = ws_from(s.addr, &s.tokens[0], None).await.unwrap();
        let mut ws2 = ws_from(b, &s.tokens[1], None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Each event goes in through the instance that does not hold its user.
        let id1 = post(b, 1, 1).await;
        let id2 = post(s.addr, 2, 2).await;
        assert_eq!(
            ids(&mut ws1, Duration::from_secs(2)).await,
            vec![id1],
            "{fanout:?}"
        );
        assert_eq!(
            ids(&mut ws2, Duration::from_secs(1)).await,
            vec![id2],
            "{fanout:?}"
        );
        let (sa, sb) = (stats(s.addr).await, stats(b).await);
        match fanout {
            Fanout::Broadcast => {
                // Both instances heard both messages and each threw one away.
                assert_eq!((sa.redis_received, sa.discarded), (2, 1), "{sa:?}");
                assert_eq!((sb.redis_received, sb.discarded), (2, 1), "{sb:?}");
            }
            _ => {
                // Each heard only its own user's message.
                assert_eq!((sa.redis_received, sa.discarded), (1, 0), "{sa:?}");
                assert_eq!((sb.redis_received, sb.discarded), (1, 0), "{sb:?}");
                assert!(sa.subscribe_commands >= 1 && sb.subscribe_commands >= 1);
            }
        }
    }
}

#[tokio::test]
async fn per_user_unsubscribes_when_the_last_socket_of_a_user_goes() {
    let s = server_with(2, config(Fanout::PerUser)).await;
    let mut ws1 = ws_from(s.addr, &s.tokens[0], None).await.unwrap();
    let ws1b = ws_from(s.addr, &s.tokens[0], None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Two sockets of one user: one subscription.
    assert_eq!(stats(s.addr).await.subscribe_commands, 1);
    drop(ws1b);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = post(s.addr, 1, 1).await;
    assert_eq!(ids(&mut ws1, Duration::from_secs(2)).await, vec![id]);
    drop(ws1);
    // The last socket left: unsubscribed, so the next message is not even received.
    let before = stats_once(s.addr, |st| st.subscribe_commands >= 2).await;
    assert_eq!(before.subscribe_commands, 2, "{before:?}");
    post(s.addr, 1, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stats(s.addr).await.redis_received, before.redis_received);
}

#[tokio::test]
async fn fanout_none_delivers_only_what_came_in_through_the_holding_instance() {
    let s = server_with(2, config(Fanout::None)).await;
    let (b, _stop_b) = instance(&s.services, &s.pool, config(Fanout::None), false).await;
    let mut ws1 = ws_from(s.addr, &s.tokens[0], None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    post(b, 1, 1).await;
    let id = post(s.addr, 1, 2).await;
    assert_eq!(ids(&mut ws1, Duration::from_secs(1)).await, vec![id]);
    let sb = stats(b).await;
    assert_eq!((sb.redis_received, sb.routed, sb.discarded), (0, 1, 1));
}

#[tokio::test]
async fn catch_up_fills_the_gap_exactly_once_while_events_keep_coming() {
    let s = server_with(2, PushConfig::default()).await;
    let mut ws1 = ws_from(s.addr, &s.tokens[0], None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first = post(s.addr, 1, 0).await;
    assert_eq!(ids(&mut ws1, Duration::from_secs(1)).await, vec![first]);
    drop(ws1);
    // Missed while away.
    let mut expected = Vec::new();
    for e in 1..=20 {
        expected.push(post(s.addr, 1, e).await);
    }
    // More keep coming while the client reconnects: the seam.
    let addr = s.addr;
    let writer = tokio::spawn(async move {
        let mut ids = Vec::new();
        for e in 21..=60 {
            ids.push(post(addr, 1, e).await);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ids
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut ws1 = ws_from(s.addr, &s.tokens[0], Some(first)).await.unwrap();
    expected.extend(writer.await.unwrap());
    let got = ids(&mut ws1, Duration::from_secs(2)).await;
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len(), "a duplicate at the seam: {got:?}");
    assert_eq!(sorted, expected, "a gap at the seam");
    // Without a last id there is no catch-up: only what comes next.
    drop(ws1);
    let routed = stats(s.addr).await.routed;
    post(s.addr, 1, 99).await;
    // Publishing returns before the gateway has routed it: wait, so that it was routed
    // while no socket of user 1 was there.
    stats_once(s.addr, |st| st.routed > routed).await;
    let mut ws1 = ws_from(s.addr, &s.tokens[0], None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = post(s.addr, 1, 100).await;
    assert_eq!(ids(&mut ws1, Duration::from_secs(1)).await, vec![next]);
}

/// Reads server-sent events from `GET /sse` until `wait` passes without one: (id, data).
async fn sse(
    addr: std::net::SocketAddr,
    token: &str,
    last_event_id: Option<&str>,
    wait: Duration,
    after_open: impl std::future::Future<Output = ()>,
) -> (u16, Vec<(String, String)>) {
    use eventsource_stream::Eventsource;
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::get("/sse")
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let resp = sender
        .send_request(
            req.body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status().as_u16();
    if status != 200 {
        return (status, Vec::new());
    }
    after_open.await;
    let mut events = resp.into_body().into_data_stream().eventsource();
    let mut out = Vec::new();
    while let Ok(Some(Ok(e))) = tokio::time::timeout(wait, events.next()).await {
        out.push((e.id, e.data));
    }
    (status, out)
}

#[tokio::test]
async fn sse_streams_with_ids_and_resumes_from_last_event_id() {
    let s = server_with(2, PushConfig::default()).await;
    let addr = s.addr;
    let (status, got) = sse(
        addr,
        &s.tokens[0],
        None,
        Duration::from_secs(1),
        async move {
            post(addr, 1, 1).await;
            post(addr, 2, 2).await;
        },
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got.len(), 1, "only user 1's notification: {got:?}");
    let first: i64 = got[0].0.parse().unwrap();
    let v: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(
        (v["id"].as_i64(), v["user_id"].as_i64()),
        (Some(first), Some(1))
    );
    let missed = post(addr, 1, 3).await;
    let (_, got) = sse(
        addr,
        &s.tokens[0],
        Some(&first.to_string()),
        Duration::from_secs(1),
        async {},
    )
    .await;
    assert_eq!(
        got.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
        vec![missed.to_string()]
    );
    // A bad Last-Event-ID or token is a 4xx, not a stream.
    let (status, _) = sse(addr, &s.tokens[0], Some("abc"), Duration::ZERO, async {}).await;
    assert_eq!(status, 400);
    let (status, _) = sse(addr, "1.nope", None, Duration::ZERO, async {}).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn browsers_can_authenticate_with_a_first_frame() {
    let s = server_with(2, PushConfig::default()).await;
    let connect = || async {
        let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", s.addr), stream)
            .await
            .unwrap();
        ws
    };
    let mut ws = connect().await;
    ws.send(Message::text(format!("{{\"token\":\"{}\"}}", s.tokens[1])))
        .await
        .unwrap();
    // The session opens once the frame is read and the token checked.
    stats_once(s.addr, |st| st.connections == 1).await;
    post(s.addr, 1, 1).await;
    let id = post(s.addr, 2, 2).await;
    assert_eq!(ids(&mut ws, Duration::from_secs(1)).await, vec![id]);
    // A wrong token, or garbage, is closed with 1008 (policy violation).
    for first in [
        "{\"token\":\"2.0000\"}".to_string(),
        "hello".to_string(),
        "{\"user_id\":1}".to_string(),
    ] {
        let mut ws = connect().await;
        ws.send(Message::text(first.clone())).await.unwrap();
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(f))))) => break Some(u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                _ => break None,
            }
        };
        assert_eq!(code, Some(1008), "first frame {first}");
    }
    assert!(stats(s.addr).await.unauthorized >= 3);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_the_others_are_not_held_up() {
    let push = PushConfig {
        send_queue: 8,
        slow_policy: SlowPolicy::Disconnect,
        ..PushConfig::default()
    };
    let s = server_with(2, push).await;
    // User 1 never reads, through a tiny receive buffer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.addr).await.unwrap();
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/ws", s.addr),
    )
    .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", s.tokens[0]).parse().unwrap(),
    );
    let (_stalled, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    let mut reader = ws_from(s.addr, &s.tokens[1], None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 16 KiB notifications for the stalled user until its queue overflows.
    let big = format!(
        "{{\"user_id\":1,\"payload\":{{\"event\":1,\"emit_us\":1,\"pad\":\"{}\"}}}}",
        "x".repeat(16 * 1024)
    );
    let url = format!("http://{}/notifications", s.addr);
    for _ in 0..200 {
        let (status, _) = http("POST", url.clone(), None, Some(&big)).await;
        assert_eq!(status, 201);
        if stats(s.addr).await.slow_disconnects > 0 {
            break;
        }
    }
    assert_eq!(stats(s.addr).await.slow_disconnects, 1);
    // The other user's notification still arrives at once.
    let started = std::time::Instant::now();
    let id = post(s.addr, 2, 2).await;
    assert_eq!(ids(&mut reader, Duration::from_millis(500)).await, vec![id]);
    assert!(started.elapsed() < Duration::from_secs(2));
    // And the stalled connection is gone from the gateway.
    assert_eq!(
        stats_once(s.addr, |st| st.connections <= 1)
            .await
            .connections,
        1
    );
}

#[tokio::test]
async fn after_a_redis_restart_the_gateway_resubscribes_and_catch_up_recovers_the_gap() {
    for fanout in [Fanout::Broadcast, Fanout::PerUser] {
        let mut s = server_with(2, config(fanout)).await;
        let mut ws1 = ws_from(s.addr, &s.tokens[0], None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let first = post(s.addr, 1, 1).await;
        assert_eq!(ids(&mut ws1, Duration::from_secs(1)).await, vec![first]);

        let redis = s.services.redis.as_mut().expect("ephemeral Redis");
        redis.restart(Duration::from_millis(300)).await.unwrap();
        // The gateway closes its sockets so that clients catch up: 1013, try again.
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws1.next()).await {
                Ok(Some(Ok(Message::Close(f)))) => break f.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                _ => break None,
            }
        };
        assert_eq!(closed, Some(1013), "{fanout:?}");
        // Stored while the client was away (published to the new Redis, heard by nobody).
        let missed = post(s.addr, 1, 2).await;
        let mut ws1 = loop {
            // The gateway answers 503 until it is subscribed again.
            match ws_from(s.addr, &s.tokens[0], Some(first)).await {
                Ok(ws) => break ws,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let live = post(s.addr, 1, 3).await;
        assert_eq!(
            ids(&mut ws1, Duration::from_secs(2)).await,
            vec![missed, live],
            "{fanout:?}"
        );
        assert!(stats(s.addr).await.redis_resets >= 1);
    }
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed_after_two_intervals() {
    let push = PushConfig {
        ping_interval: Duration::from_millis(200),
        ..PushConfig::default()
    };
    let s = server_with(1, push).await;
    // Never read: tungstenite answers pings only while reading.
    let _silent = ws_from(s.addr, &s.tokens[0], None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats(s.addr).await.connections, 1);
    // Silent for two intervals (400 ms): closed.
    let started = std::time::Instant::now();
    assert_eq!(
        stats_once(s.addr, |st| st.connections == 0)
            .await
            .connections,
        0
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed too early"
    );
    // A client that reads (and so answers) stays.
    let mut alive = ws_from(s.addr, &s.tokens[0], None).await.unwrap();
    let _ = ids(&mut alive, Duration::from_millis(1200)).await;
    assert_eq!(stats(s.addr).await.connections, 1);
}

#[tokio::test]
async fn tokens_never_appear_in_the_server_log() {
    let services = pollpush::services::Services::start(None, None)
        .await
        .unwrap();
    let pool = pollpush::backend::db::connect(&services.database_url, 2)
        .await
        .unwrap();
    let tokens = pollpush::backend::db::seed_users(&pool, 2, &pollpush::token::Signer::random())
        .await
        .unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pollpush"))
        .args(["serve", "--role", "all", "--port", "0"])
        .args(["--database-url", &services.database_url])
        .args(["--redis-url", &services.redis_url])
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("pollpush: listening on http://")
        .unwrap()
        .parse()
        .unwrap();
    let wrong = format!("{}x", tokens[1]);
    for t in [&tokens[0], &wrong] {
        let _ = http("GET", format!("http://{addr}/notifications"), Some(t), None).await;
        let _ = ws_from(addr, t, None).await;
    }
    let mut ws = {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
            .await
            .unwrap()
            .0
    };
    ws.send(Message::text(format!("{{\"token\":\"{wrong}\"}}")))
        .await
        .unwrap();
    let _ = ws.next().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(text.len() > 100, "the server logged at trace level: {text}");
    for t in [&tokens[0], &wrong] {
        let secret = t.split_once('.').unwrap().1;
        if let Some(at) = text.find(secret) {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            panic!(
                "a token leaked into the log: {}",
                &text[line_start..line_end]
            );
        }
    }
}
