//! The systems under test against real Postgres and Redis: routing, isolation, auth, and
//! 4xx for malformed requests.

use std::time::Duration;

use crate::common::{http, next_text, server, ws};

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
