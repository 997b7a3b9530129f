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
async fn a_server_without_long_poll_refuses_to_hold_a_poll() {
    let s = server(1).await;
    let base = format!("http://{}/notifications?after=0", s.addr);
    let (status, body) = http(
        "GET",
        format!("{base}&wait_ms=1000"),
        Some(&s.tokens[0]),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("--long-poll"), "{body}");
    // wait_ms=0 is an ordinary poll.
    let (status, _) = http("GET", format!("{base}&wait_ms=0"), Some(&s.tokens[0]), None).await;
    assert_eq!(status, 200);
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
async fn fuzz_generated_requests_and_frames_never_get_a_5xx_and_break_nothing() {
    use futures_util::SinkExt;
    use rand::{Rng, SeedableRng};
    use tokio_tungstenite::tungstenite::Message;

    let s = server(3).await;
    let base = format!("http://{}", s.addr);
    // A longer fuzz run: POLLPUSH_FUZZ_CASES (requests; frames are half as many) and
    // POLLPUSH_FUZZ_SEED, both printed so that a failure can be replayed.
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (cases, seed) = (
        env("POLLPUSH_FUZZ_CASES", 400),
        env("POLLPUSH_FUZZ_SEED", 0x5eed),
    );
    eprintln!("fuzzing the server with {cases} requests, seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
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
    for i in 0..cases {
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
    for _ in 0..cases / 2 {
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

/// What a test client saw: (the user it authenticated as, notification id, payload).
type Seen = (u64, i64, serde_json::Value);

/// Reads a WebSocket until it closes, reporting every notification.
fn read_ws(
    user: u64,
    mut socket: crate::common::Ws,
    out: tokio::sync::mpsc::UnboundedSender<Seen>,
) {
    tokio::spawn(async move {
        while let Some(text) = next_text(&mut socket, Duration::from_secs(30)).await {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let _ = out.send((user, v["id"].as_i64().unwrap(), v["payload"].clone()));
        }
    });
}

/// Opens `GET /sse` with a bearer token and reports every event until it ends.
async fn read_sse(
    addr: std::net::SocketAddr,
    user: u64,
    token: &str,
    out: tokio::sync::mpsc::UnboundedSender<Seen>,
) -> u16 {
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let req = hyper::Request::get(format!("http://{addr}/sse"))
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    if status == 200 {
        tokio::spawn(async move {
            let mut events = resp.into_body().into_data_stream().eventsource();
            while let Some(Ok(ev)) = events.next().await {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&ev.data) {
                    let _ = out.send((user, v["id"].as_i64().unwrap(), v["payload"].clone()));
                }
            }
        });
    }
    status
}

/// Isolation, as a property over generated cases: users hold 0 to 2 WebSocket clients and
/// 0 or 1 SSE client each, notifications go to random users, and every client receives
/// exactly its own user's notifications, each once; a poll under each token returns
/// exactly that user's. Tokens forged from another user's (its prefix changed) are refused
/// on all three.
#[tokio::test]
async fn no_client_ever_receives_another_users_notification() {
    use rand::{Rng, SeedableRng};
    const USERS: u64 = 30;
    let s = server(USERS).await;
    let base = format!("http://{}", s.addr);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x150_1a7e);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Seen>();
    // clients[u] = how many push clients user u has.
    let mut clients = vec![0u32; USERS as usize + 1];
    for user in 1..=USERS {
        let token = &s.tokens[user as usize - 1];
        for _ in 0..rng.gen_range(0..=2) {
            read_ws(user, ws(s.addr, token).await.unwrap(), tx.clone());
            clients[user as usize] += 1;
        }
        if rng.gen_bool(0.5) {
            assert_eq!(read_sse(s.addr, user, token, tx.clone()).await, 200);
            clients[user as usize] += 1;
        }
    }
    drop(tx);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 200 notifications to random users; the payload names its user too.
    let mut owner = std::collections::HashMap::new();
    for event in 0..200u64 {
        let user = rng.gen_range(1..=USERS);
        let body =
            format!("{{\"user_id\":{user},\"payload\":{{\"event\":{event},\"for\":{user}}}}}");
        let (status, answer) =
            http("POST", format!("{base}/notifications"), None, Some(&body)).await;
        assert_eq!(status, 201, "{answer}");
        let id = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["id"]
            .as_i64()
            .unwrap();
        owner.insert(id, user);
    }
    let expected: u64 = owner.values().map(|&u| clients[u as usize] as u64).sum();
    let mut seen: std::collections::HashMap<(u64, i64), u32> = Default::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (seen.values().sum::<u32>() as u64) < expected {
        let Ok(Some((user, id, payload))) = tokio::time::timeout_at(deadline, rx.recv()).await
        else {
            break;
        };
        assert_eq!(
            owner.get(&id),
            Some(&user),
            "notification {id} reached user {user}"
        );
        assert_eq!(payload["for"], user, "payload of {id} at user {user}");
        *seen.entry((user, id)).or_default() += 1;
    }
    // Complete: each of a user's clients got each of its notifications (so the property
    // above was tested on every delivery, not on none). Each client counts once per id.
    for (&id, &user) in &owner {
        assert_eq!(
            seen.get(&(user, id)).copied().unwrap_or(0),
            clients[user as usize],
            "notification {id} for user {user}"
        );
    }
    // Nothing more arrives late: one more notification per user is a fence, since each
    // connection delivers in order, anything of the first 200 still on its way would reach
    // a client before that client's fence. No fixed wait decides it.
    let mut fences = std::collections::HashMap::new();
    for user in 1..=USERS {
        if clients[user as usize] == 0 {
            continue;
        }
        let body = format!("{{\"user_id\":{user},\"payload\":{{\"fence\":true,\"for\":{user}}}}}");
        let (status, answer) =
            http("POST", format!("{base}/notifications"), None, Some(&body)).await;
        assert_eq!(status, 201, "{answer}");
        fences.insert(user, clients[user as usize]);
        // A fence is one of its user's notifications too, for the polls below.
        let id = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["id"]
            .as_i64()
            .unwrap();
        owner.insert(id, user);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fences.values().any(|&n| n > 0) {
        let (user, id, payload) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("every client gets its fence")
            .expect("the readers run");
        assert_eq!(
            payload["fence"], true,
            "notification {id} reached user {user} once more"
        );
        assert_eq!(
            payload["for"], user,
            "a fence for another user at user {user}"
        );
        *fences.get_mut(&user).unwrap() -= 1;
    }

    // Polling: each token sees exactly its own user's notifications.
    for user in 1..=USERS {
        let (status, body) = http(
            "GET",
            format!("{base}/notifications?after=0"),
            Some(&s.tokens[user as usize - 1]),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let items: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        let mut got: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
        let mut want: Vec<i64> = owner
            .iter()
            .filter(|(_, &u)| u == user)
            .map(|(&id, _)| id)
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "user {user}'s poll");
    }

    // A token of user 2 relabelled as user 1 is refused everywhere.
    let forged = s.tokens[1].replacen("2.", "1.", 1);
    assert!(forged.starts_with("1."));
    let (status, _) = http(
        "GET",
        format!("{base}/notifications?after=0"),
        Some(&forged),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert!(ws(s.addr, &forged).await.is_err());
    let (dummy, _) = tokio::sync::mpsc::unbounded_channel();
    assert_eq!(read_sse(s.addr, 1, &forged, dummy).await, 401);
}

/// `--poll-auth none`: no session lookup, but the token's signature is verified with the
/// run's key, so a user still cannot be anyone else.
#[tokio::test]
async fn signed_tokens_poll_without_a_lookup_and_cannot_be_forged() {
    use pollpush::token::Signer;
    let s = server(2).await;
    let signer = Signer::random();
    let config = pollpush::backend::serve::ServerConfig {
        poll: true,
        ingest: true,
        push: false,
        poll_auth: pollpush::config::PollAuth::None,
        push_config: Default::default(),
        poll_delay: Duration::ZERO,
        signer: Some(signer.clone()),
        header_timeout: Duration::from_secs(60),
        long_poll: false,
        operator: None,
        poll_backend: pollpush::config::PollBackend::Db,
        conditional: false,
        http2: false,
        pipeline: None,
    };
    let (addr, _stop) = crate::common::instance_with(&s.services, &s.pool, config).await;
    let base = format!("http://{addr}");
    let (status, _) = http(
        "POST",
        format!("{base}/notifications"),
        None,
        Some(&notify_body(2, 1)),
    )
    .await;
    assert_eq!(status, 201);
    let poll = |token: String| {
        let url = format!("{base}/notifications?after=0");
        async move { http("GET", url, Some(&token), None).await }
    };
    let (status, body) = poll(signer.token(2)).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&body)
            .unwrap()
            .len(),
        1
    );
    let (status, body) = poll(signer.token(1)).await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    // User 2's signature under user 1's id, another key's token, an unsigned one: refused.
    let forged = signer.token(2).replacen("2.", "1.", 1);
    for bad in [
        forged,
        Signer::random().token(2),
        "2.abc".into(),
        "2".into(),
    ] {
        assert_eq!(poll(bad.clone()).await.0, 401, "{bad}");
    }
}

/// Slow-loris: clients that dribble a request head and never finish it are disconnected
/// once the header timeout passes, and everyone else is served meanwhile.
#[tokio::test]
async fn slow_loris_clients_are_cut_off_and_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = server(1).await;
    let config = pollpush::backend::serve::ServerConfig {
        poll: true,
        ingest: true,
        push: true,
        poll_auth: pollpush::config::PollAuth::Db,
        push_config: Default::default(),
        poll_delay: Duration::ZERO,
        signer: None,
        header_timeout: Duration::from_secs(2),
        long_poll: false,
        operator: None,
        poll_backend: pollpush::config::PollBackend::Db,
        conditional: false,
        http2: false,
        pipeline: None,
    };
    let (addr, _stop) = crate::common::instance_with(&s.services, &s.pool, config).await;
    let started = tokio::time::Instant::now();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /notifications?after=0 HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(c);
    }
    // Keep dribbling one header byte at a time; meanwhile a real poll is answered at once.
    for round in 0..3 {
        for c in &mut slow {
            let _ = c.write_all(b"X").await;
        }
        let t = tokio::time::Instant::now();
        let (status, _) = http(
            "GET",
            format!("http://{addr}/notifications?after=0"),
            Some(&s.tokens[0]),
            None,
        )
        .await;
        assert_eq!(status, 200, "round {round}");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "served promptly beside 50 slow clients"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // Every slow client is disconnected soon after the 2 s header timeout.
    for (i, c) in slow.iter_mut().enumerate() {
        let mut buf = [0u8; 256];
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match c.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue, // a 408, if the server sends one, then the close
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "slow client {i} still connected after {:?}",
            started.elapsed()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(8));
}

/// A WebSocket message over the gateway's 64 KiB limit closes that socket alone.
#[tokio::test]
async fn an_oversized_websocket_message_closes_that_socket_only() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let s = server(2).await;
    let mut big = ws(s.addr, &s.tokens[0]).await.unwrap();
    let mut other = ws(s.addr, &s.tokens[1]).await.unwrap();
    let _ = big.send(Message::Text("x".repeat(200 * 1024).into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match big.next().await {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .expect("the oversized socket is closed");
    // 1009: message too big, when the close frame gets through before the socket drops.
    assert!(matches!(ended, None | Some(1009)), "{ended:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = http(
        "POST",
        format!("http://{}/notifications", s.addr),
        None,
        Some(&notify_body(2, 9)),
    )
    .await;
    assert_eq!(status, 201);
    let frame = next_text(&mut other, Duration::from_secs(3)).await;
    assert!(
        frame.is_some_and(|f| f.contains("\"event\":9")),
        "the other client is still served"
    );
}

/// `/metrics` parses as Prometheus text format and agrees with `/stats`.
#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_agree_with_stats() {
    let s = server(2).await;
    let base = format!("http://{}", s.addr);
    let _socket = ws(s.addr, &s.tokens[0]).await.unwrap();
    for _ in 0..3 {
        http(
            "GET",
            format!("{base}/notifications?after=0"),
            Some(&s.tokens[1]),
            None,
        )
        .await;
    }
    http(
        "GET",
        format!("{base}/notifications?after=0"),
        Some("nobody"),
        None,
    )
    .await;
    http(
        "POST",
        format!("{base}/notifications"),
        None,
        Some(&notify_body(1, 1)),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, text) = http("GET", format!("{base}/metrics"), None, None).await;
    assert_eq!(status, 200);
    let (_, stats) = http("GET", format!("{base}/stats"), None, None).await;
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|x| x.metric == name)
            .map(|x| match x.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
    };
    for (field, v) in stats.as_object().unwrap() {
        let name = if field == "connections" {
            "pollpush_connections".to_string()
        } else {
            format!("pollpush_{field}_total")
        };
        assert_eq!(value(&name), v.as_f64().unwrap(), "{name}");
    }
    assert_eq!(value("pollpush_poll_requests_total"), 4.0);
    assert_eq!(value("pollpush_unauthorized_total"), 1.0);
    assert_eq!(value("pollpush_connections"), 1.0);
    assert_eq!(value("pollpush_send_queue_frames"), 0.0);
    assert!(scrape.docs.contains_key("pollpush_db_queries_total"));
}

/// With an operator token, ingest, /stats and /metrics answer only requests that carry it
/// (a server bound beyond loopback must have one); user-facing polls and /healthz are
/// unchanged.
#[tokio::test]
async fn an_operator_token_guards_ingest_stats_and_metrics() {
    let s = server(2).await;
    let config = pollpush::backend::serve::ServerConfig {
        poll: true,
        ingest: true,
        push: false,
        poll_auth: pollpush::config::PollAuth::Db,
        push_config: Default::default(),
        poll_delay: Duration::ZERO,
        signer: None,
        header_timeout: Duration::from_secs(60),
        long_poll: false,
        operator: Some("op-s3cret".into()),
        poll_backend: pollpush::config::PollBackend::Db,
        conditional: false,
        http2: false,
        pipeline: None,
    };
    let (addr, _stop) = crate::common::instance_with(&s.services, &s.pool, config).await;
    let base = format!("http://{addr}");
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let call = |method: &str, path: &str, operator: Option<&str>, body: Option<String>| {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("content-type", "application/json");
        if let Some(t) = operator {
            req = req.header(pollpush::token::OPERATOR_HEADER, t);
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.unwrap_or_default(),
            )))
            .unwrap();
        let client = client.clone();
        async move { client.request(req).await.unwrap().status().as_u16() }
    };
    for (method, path, body) in [
        ("POST", "/notifications", Some(notify_body(2, 1))),
        ("GET", "/stats", None),
        ("GET", "/metrics", None),
    ] {
        assert_eq!(
            call(method, path, None, body.clone()).await,
            401,
            "{path} without"
        );
        assert_eq!(
            call(method, path, Some("guess"), body.clone()).await,
            401,
            "{path} wrong"
        );
        let ok = call(method, path, Some("op-s3cret"), body).await;
        assert!((200..300).contains(&ok), "{path} with the token: {ok}");
    }
    // Users poll with their own session token, as ever.
    let (status, body) = http(
        "GET",
        format!("{base}/notifications?after=0"),
        Some(&s.tokens[1]),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A readiness probe needs no token and reads as an empty poll.
    let (status, body) = http("GET", format!("{base}/healthz"), None, None).await;
    assert_eq!((status, body.as_str()), (200, "[]"));
}
