//! Socket.IO v4 over WebSocket, the client side the swarm needs: the Engine.IO v4
//! handshake (`0{...}` open packet), connecting to a namespace with an auth payload
//! (`40/ns,{...}`), answering pings (`2` with `3`), and reading events (`42["name",data]`).
//! Written from the protocol's specification (socket.io-protocol v5, engine.io-protocol
//! v4); no maintained Rust client fit (rust_socketio is built on reqwest and its own
//! callback runtime, where the swarm needs one small loop over its own metered socket).

use serde_json::Value;

/// The query of an Engine.IO v4 connection over WebSocket (the path is the server's,
/// /socket.io/ by default).
pub const QUERY: &str = "EIO=4&transport=websocket";

/// One text frame from the server, as far as a client needs to tell them apart.
#[derive(Debug, PartialEq)]
pub enum Packet {
    /// Engine.IO open: the handshake (sid, ping interval and timeout).
    Open(Value),
    /// Engine.IO ping: answer with [`PONG`].
    Ping,
    /// Socket.IO CONNECT acknowledged on a namespace.
    Connected { namespace: String },
    /// Socket.IO CONNECT_ERROR: the server refused the namespace (bad auth, most often).
    ConnectError { namespace: String, data: Value },
    /// Socket.IO EVENT: its name and first argument.
    Event {
        namespace: String,
        name: String,
        data: Value,
    },
    /// Engine.IO close, or Socket.IO DISCONNECT.
    Disconnect,
    /// Anything else (pong, noop, acks, binary events): nothing for a reader to do.
    Other,
}

pub const PONG: &str = "3";

/// The CONNECT packet for `namespace` ("/" is the default), with an auth payload if any.
pub fn connect(namespace: &str, auth: Option<&Value>) -> String {
    let auth = auth.map(Value::to_string).unwrap_or_default();
    if namespace == "/" || namespace.is_empty() {
        format!("40{auth}")
    } else {
        format!("40{namespace},{auth}")
    }
}

/// Splits a Socket.IO packet's body into its namespace and the rest: a namespace starts
/// with '/' and ends at the first ','. An ack id (digits) before the payload is skipped.
fn namespace_and_payload(body: &str) -> (String, &str) {
    let (ns, rest) = match body.strip_prefix('/') {
        Some(_) => match body.find(',') {
            Some(i) => (body[..i].to_string(), &body[i + 1..]),
            None => (body.to_string(), ""),
        },
        None => ("/".to_string(), body),
    };
    (ns, rest.trim_start_matches(|c: char| c.is_ascii_digit()))
}

/// Reads one text frame. Any text at all is a packet (most often `Other`): a frame from the
/// network can never make the reader panic, whatever characters it holds.
pub fn parse(text: &str) -> Packet {
    let mut chars = text.chars();
    let engine = chars.next();
    let rest = chars.as_str();
    match engine {
        Some('0') => Packet::Open(serde_json::from_str(rest).unwrap_or(Value::Null)),
        Some('1') => Packet::Disconnect,
        Some('2') => Packet::Ping,
        Some('4') => {
            let mut body = rest.chars();
            let Some(kind) = body.next() else {
                return Packet::Other;
            };
            let (namespace, payload) = namespace_and_payload(body.as_str());
            match kind {
                '0' => Packet::Connected { namespace },
                '1' => Packet::Disconnect,
                '2' => match serde_json::from_str::<Value>(payload) {
                    Ok(Value::Array(mut args)) if !args.is_empty() => {
                        let name = args[0].as_str().unwrap_or("").to_string();
                        let data = if args.len() > 1 {
                            args.swap_remove(1)
                        } else {
                            Value::Null
                        };
                        Packet::Event {
                            namespace,
                            name,
                            data,
                        }
                    }
                    _ => Packet::Other,
                },
                '4' => Packet::ConnectError {
                    namespace,
                    data: serde_json::from_str(payload).unwrap_or(Value::Null),
                },
                _ => Packet::Other,
            }
        }
        _ => Packet::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn packets_of_a_session_parse() {
        assert!(matches!(
            parse(r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#),
            Packet::Open(v) if v["pingInterval"] == 25000
        ));
        assert_eq!(parse("2"), Packet::Ping);
        assert_eq!(parse("3"), Packet::Other);
        assert_eq!(
            parse(r#"40{"sid":"x"}"#),
            Packet::Connected {
                namespace: "/".into()
            }
        );
        assert_eq!(
            parse(r#"40/admin,{"sid":"x"}"#),
            Packet::Connected {
                namespace: "/admin".into()
            }
        );
        assert_eq!(
            parse(r#"44{"message":"unauthorized"}"#),
            Packet::ConnectError {
                namespace: "/".into(),
                data: json!({"message": "unauthorized"})
            }
        );
        assert_eq!(
            parse(r#"42["notification",{"id":7,"payload":{"event":1}}]"#),
            Packet::Event {
                namespace: "/".into(),
                name: "notification".into(),
                data: json!({"id": 7, "payload": {"event": 1}})
            }
        );
        // A namespace and an ack id before the payload.
        assert_eq!(
            parse(r#"42/chat,12["msg","hi"]"#),
            Packet::Event {
                namespace: "/chat".into(),
                name: "msg".into(),
                data: json!("hi")
            }
        );
        assert_eq!(parse("41"), Packet::Disconnect);
        assert_eq!(parse("1"), Packet::Disconnect);
        for junk in [
            "",
            "4",
            "42",
            "42{",
            "42[]",
            "9",
            "x",
            "4é",
            "0é",
            "42/é",
            "4\u{1F600}2",
        ] {
            assert!(!matches!(parse(junk), Packet::Event { .. }), "{junk:?}");
        }
    }

    #[test]
    fn connect_packets() {
        let auth = json!({"token": "1.ab"});
        assert_eq!(connect("/", Some(&auth)), r#"40{"token":"1.ab"}"#);
        assert_eq!(connect("/n", Some(&auth)), r#"40/n,{"token":"1.ab"}"#);
        assert_eq!(connect("/", None), "40");
        assert_eq!(connect("/n", None), "40/n,");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("POLLPUSH_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
        ))]
        /// Any frame at all parses without a panic, and one that is not an EVENT is never
        /// read as one.
        #[test]
        fn any_frame_parses_without_panic(
            head in proptest::sample::select(vec!["", "0", "2", "4", "40", "42", "44", "42/", "40/n,"]),
            tail in "\\PC{0,40}",
        ) {
            let frame = format!("{head}{tail}");
            let packet = parse(&frame);
            if let Packet::Event { namespace, .. } = packet {
                proptest::prop_assert!(frame.starts_with("42"));
                proptest::prop_assert!(namespace.starts_with('/'));
            }
        }
    }
}
