//! The systems under test against real Postgres and Redis: routing, isolation, auth, and
//! 4xx for malformed requests.

use std::time::Duration;

use crate::common::{http, http_status, next_text, server, ws};

fn notify_body(user: u64, event: u64) -> String {
    format!(
        "{{\"user_id\":{user},\"payload\":{{\"event\":{event},\"emit_us\":{}}}}}",
        pollpush::now_us()
    )
}

#[tokio::test]
async fn a_notification_reaches_its_user_by_poll_and_websocket_and_no_one_else() {
    let s = server(3).await;
    let mut ws1 = ws(s.addr, &s.tokens[0]).await.expect("user 1 connects");
    let mut ws2 = ws(s.addr, &s.tokens[1]).await.expect("user 2 connects");
    // Give the gateway a moment to register both sockets.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (status, body) = http(
        "POST",
        format!("http://{}/notifications", s.addr),
        None,
        Some(&notify_body(1, 7)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id: i64 = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap();

    let frame = next_text(&mut ws1, Duration::from_secs(3))
        .await
        .expect("user 1 gets it over WebSocket");
    let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(v["id"], id);
    assert_eq!(v["payload"]["event"], 7);
    assert_eq!(
        next_text(&mut ws2, Duration::from_millis(500)).await,
        None,
        "user 2 must not get user 1's notification"
    );

    let poll = |token: &str| {
        let (url, token) = (
            format!("http://{}/notifications?after=0", s.addr),
            token.to_string(),
        );
        async move { http("GET", url, Some(&token), None).await }
    };
    let (status, body) = poll(&s.tokens[0]).await;
    assert_eq!(status, 200);
    let items: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id);
    assert_eq!(items[0]["payload"]["event"], 7);
    for other in [1, 2] {
        let (status, body) = poll(&s.tokens[other]).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "[]"),
            "user {} sees nothing",
            other + 1
        );
    }
    // After the last id seen, the owner's next poll is empty.
    let (status, body) = http(
        "GET",
        format!("http://{}/notifications?after={id}", s.addr),
        Some(&s.tokens[0]),
        None,
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    // A client cannot name another user: the user comes from the token only.
    let (status, _) = http(
        "GET",
        format!("http://{}/notifications?after=0&user_id=1", s.addr),
        Some(&s.tokens[1]),
        None,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn bad_or_missing_tokens_get_401_on_poll_and_websocket() {
    let s = server(1).await;
    let url = format!("http://{}/notifications?after=0", s.addr);
    assert_eq!(http("GET", url.clone(), None, None).await.0, 401);
    assert_eq!(
        http("GET", url.clone(), Some("1.not-a-real-token"), None)
            .await
            .0,
        401
    );
    // The user id prefix alone is not enough with auth = db.
    let forged = format!("1.{}", "0".repeat(64));
    assert_eq!(http("GET", url, Some(&forged), None).await.0, 401);
    match ws(s.addr, "1.not-a-real-token").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected a 401 handshake, got {:?}", other.map(|_| ())),
    }
    let (status, body) = http("GET", format!("http://{}/stats", s.addr), None, None).await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["unauthorized"], 4, "{stats}");
}

#[tokio::test]
async fn malformed_requests_get_4xx_and_the_server_keeps_serving() {
    let s = server(1).await;
    let base = format!("http://{}", s.addr);
    let t = Some(s.tokens[0].as_str());
    let big = format!(
        "{{\"user_id\":1,\"payload\":\"{}\"}}",
        "x".repeat(100 * 1024)
    );
    let unknown_user = notify_body(999, 1);
    // (method, path, bearer token, body, expected status)
    let cases = [
        ("GET", "/notifications?after=abc", t, None, 400),
        ("POST", "/notifications", None, Some("{not json"), 400),
        ("POST", "/notifications", None, Some("{\"user_id\":1}"), 422),
        ("POST", "/notifications", None, Some(&unknown_user), 404),
        ("POST", "/notifications", None, Some(&big), 413),
    ];
    for (method, path, token, body, want) in cases {
        let (status, answer) = http(method, format!("{base}{path}"), token, body).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
    }
    // Still serving.
    assert_eq!(
        http("GET", format!("{base}/notifications?after=0"), t, None)
            .await
            .0,
        200
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing malformed was stored");
}

/// Generated requests (seeded, so a failure replays): random methods, paths, query strings,
/// tokens and bodies, then random WebSocket frames from an authenticated client. Every
/// answer is a 2xx or a 4xx, never a 5xx; the server keeps serving, and a user's
/// notification still reaches that user alone.
#[tokio::test]
async fn generated_requests_and_frames_never_get_a_5xx_and_break_nothing() {
    use futures_util::SinkExt;
    use rand::{Rng, SeedableRng};
    use tokio_tungstenite::tungstenite::Message;

    let s = server(3).await;
    let base = format!("http://{}", s.addr);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let safe: Vec<char> = "abcxyzABC0129-_.~=&".chars().collect();
    let word = |rng: &mut rand::rngs::StdRng, max: usize| -> String {
        let n = rng.gen_range(0..=max);
        (0..n)
            .map(|_| match rng.gen_range(0..10) {
                0 => format!("%{:02X}", rng.gen::<u8>()),
                _ => safe[rng.gen_range(0..safe.len())].to_string(),
            })
            .collect()
    };
    for i in 0..400 {
        let method = ["GET", "POST", "PUT", "DELETE", "PATCH"][rng.gen_range(0..5)];
        let path = [
            "/notifications",
            "/ws",
            "/sse",
            "/stats",
            "/",
            "/notifications/1",
        ][rng.gen_range(0..6)];
        let query = match rng.gen_range(0..4) {
            0 => String::new(),
            1 => format!("?after={}", word(&mut rng, 24)),
            2 => format!("?last_id={}", word(&mut rng, 24)),
            _ => format!("?{}", word(&mut rng, 64)),
        };
        let garbage = word(&mut rng, 200);
        let long = "t".repeat(8000);
        let token = match rng.gen_range(0..4) {
            0 => None,
            1 => Some(s.tokens[rng.gen_range(0..3)].as_str()),
            2 => Some(garbage.as_str()),
            _ => Some(long.as_str()),
        };
        let body = match rng.gen_range(0..5) {
            0 => None,
            1 => Some(notify_body(rng.gen_range(0..5), i)),
            2 => Some(format!(
                "{{\"user_id\":{},\"payload\":{}}}",
                word(&mut rng, 8),
                word(&mut rng, 20)
            )),
            3 => Some(format!("[{}]", word(&mut rng, 50))),
            _ => Some(word(&mut rng, 300)),
        };
        let status = http_status(
            method,
            format!("{base}{path}{query}"),
            token,
            body.as_deref(),
        )
        .await;
        assert!(
            (200..500).contains(&status),
            "{method} {path}{query} -> {status}"
        );
    }

    // Random frames from an authenticated client: the gateway ignores them or closes that
    // socket, and nothing else.
    let mut noisy = ws(s.addr, &s.tokens[0]).await.unwrap();
    for _ in 0..200 {
        let n = rng.gen_range(0..4096);
        let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
        let frame = if rng.gen_bool(0.5) {
            Message::Binary(bytes.into())
        } else {
            Message::Text(String::from_utf8_lossy(&bytes).into_owned().into())
        };
        if noisy.send(frame).await.is_err() {
            break;
        }
    }
    let mut one = ws(s.addr, &s.tokens[0]).await.unwrap();
    let mut two = ws(s.addr, &s.tokens[1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = http(
        "POST",
        format!("{base}/notifications"),
        None,
        Some(&notify_body(1, 777)),
    )
    .await;
    assert_eq!(status, 201);
    let got = next_text(&mut one, Duration::from_secs(5))
        .await
        .expect("user 1 is served");
    assert!(got.contains("\"event\":777"), "{got}");
    assert_eq!(
        next_text(&mut two, Duration::from_millis(500)).await,
        None,
        "user 2 gets nothing"
    );
    let (status, _) = http(
        "GET",
        format!("{base}/notifications?after=0"),
        Some(&s.tokens[2]),
        None,
    )
    .await;
    assert_eq!(status, 200, "polls still served");
}
