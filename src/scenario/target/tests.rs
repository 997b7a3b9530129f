use super::*;

fn vars() -> Vars<'static> {
    Vars {
        user: 7,
        token: "7.abc",
        after: 42,
        event: 9,
        emit_us: 1000,
        payload: "{\"event\":9,\"emit_us\":1000}",
    }
}

#[test]
fn templates_render_placeholders_and_keep_json_braces() {
    let t = Template::parse("/inbox?since={after}&u={user}", POLL_VARS).unwrap();
    assert_eq!(t.render(&vars()), "/inbox?since=42&u=7");
    let t = Template::parse(
        "{\"id\":{event},\"user_id\":{user},\"payload\":{payload}}",
        EMIT_VARS,
    )
    .unwrap();
    let out = t.render(&vars());
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["payload"]["event"], 9);
    assert_eq!(v["user_id"], 7);
    let t = Template::parse("{\"token\":\"{token}\"}", CLIENT_VARS).unwrap();
    assert_eq!(t.render(&vars()), "{\"token\":\"7.abc\"}");
    let t = Template::parse("a{{b}}c", CLIENT_VARS).unwrap();
    assert_eq!(t.render(&vars()), "a{b}c");
}

#[test]
fn templates_refuse_unknown_or_misplaced_placeholders() {
    let e = Template::parse("/x?since={after}", CLIENT_VARS).unwrap_err();
    assert!(e.contains("{after} is not a placeholder here"), "{e}");
    assert!(e.contains("{user}, {token}"), "{e}");
    assert!(Template::parse("/x?a={usr}", POLL_VARS).is_err());
    assert!(Template::parse("oops}", POLL_VARS).is_err());
    assert!(Template::parse("{\"a\":1", EMIT_VARS).is_err());
}

#[test]
fn fields_read_numbers_and_strings_or_nothing() {
    let f = Target::pollpush(Transport::Ws).fields;
    let v: Value =
        serde_json::from_str(r#"{"id":5,"payload":{"event":3,"emit_us":"77"}}"#).unwrap();
    assert_eq!(
        f.read(&v),
        Some(Stamp {
            id: Some(5),
            event: 3,
            emit_us: 77
        })
    );
    let v: Value = serde_json::from_str(r#"{"msg":"hello"}"#).unwrap();
    assert_eq!(f.read(&v), None);
}

#[test]
fn pollpush_defaults() {
    let t = Target::pollpush(Transport::SocketIo);
    assert!(!t.described);
    assert_eq!(t.emit, Emit::Pollpush { url: None });
    assert_eq!(t.event.as_deref(), Some("notification"));
    assert!(matches!(t.push_auth, Auth::SocketIo(_)));
    assert!(matches!(t.poll_auth, Auth::Header { .. }));
    assert_eq!(t.push_path(Transport::SocketIo), "/socket.io/");
    assert_eq!(
        Target::pollpush(Transport::Ws).push_path(Transport::Ws),
        "/ws"
    );
}
