//! Hot paths of push: the gateway looking up a user among 10,000 and queueing a frame, one
//! user's N connections, encoding what goes on the wire, and a client parsing a
//! notification (pollpush's JSON, a Socket.IO event). Run with `cargo bench --bench fanout`.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pollpush::backend::push::{Frame, Registry};
use pollpush::backend::Stats;
use pollpush::config::Fanout;
use pollpush::config::PushConfig;
use pollpush::config::Transport;
use pollpush::scenario::Target;

fn dispatch(c: &mut Criterion) {
    // No Redis side: registration answers at once.
    let config = PushConfig {
        fanout: Fanout::None,
        ..PushConfig::default()
    };
    let registry = Registry::new(config, Arc::new(Stats::default()));
    // Keep the receivers alive and drained so queues never fill.
    let mut queues: Vec<_> = (1..=10_000).map(|u| registry.register(u)).collect();
    let frame = Frame {
        id: 1,
        text: Utf8Bytes::from(
        r#"{"id":1,"user_id":4242,"payload":{"event":1,"emit_us":1700000000000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#.to_string(),
        ),
    };
    c.bench_function("registry dispatch to 1 of 10,000 users", |b| {
        b.iter(|| {
            let n = registry.dispatch(black_box(4242), &frame);
            let _ = queues[4241].queue.try_recv();
            n
        })
    });
    c.bench_function("registry dispatch to a user not held (discard)", |b| {
        b.iter(|| registry.dispatch(black_box(99_999), &frame))
    });
    queues.clear();
}

/// The fields a client needs, as a fixed struct: the way to read pollpush's own format
/// only, kept as the yardstick for reading any format through JSON pointers.
#[derive(serde::Deserialize)]
struct Typed {
    #[allow(dead_code)]
    id: i64,
    payload: Stamp,
}

#[derive(serde::Deserialize)]
struct Stamp {
    event: u64,
    #[allow(dead_code)]
    emit_us: u64,
}

fn parse(c: &mut Criterion) {
    let text = r#"{"id":123456,"user_id":4242,"payload":{"event":987654,"emit_us":1700000000000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#;
    let fields = Target::pollpush(Transport::Ws).fields;
    c.bench_function(
        "client reads a notification (JSON pointers, any format)",
        |b| {
            b.iter(|| {
                let v: serde_json::Value = serde_json::from_str(black_box(text)).unwrap();
                fields.read(&v).unwrap().event
            })
        },
    );
    c.bench_function(
        "client parses a notification (typed, pollpush's format)",
        |b| {
            b.iter(|| {
                serde_json::from_str::<Typed>(black_box(text))
                    .unwrap()
                    .payload
                    .event
            })
        },
    );
}

fn socketio(c: &mut Criterion) {
    // As socket.io writes an event to a client (the fixture's `notification`).
    let text = r#"42["notification",{"id":123456,"payload":{"event":987654,"emit_us":1700000000000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}]"#;
    let fields = Target::pollpush(Transport::Ws).fields;
    c.bench_function(
        "client reads a Socket.IO event (packet, then JSON pointers)",
        |b| {
            b.iter(|| match pollpush::swarm::socketio::parse(black_box(text)) {
                pollpush::swarm::socketio::Packet::Event { data, .. } => {
                    fields.read(&data).unwrap().event
                }
                _ => unreachable!("an event"),
            })
        },
    );
}

/// One user holding N connections (tabs, devices): the registry queues the frame on each.
fn fan_out(c: &mut Criterion) {
    let config = PushConfig {
        fanout: Fanout::None,
        ..PushConfig::default()
    };
    let registry = Registry::new(config, Arc::new(Stats::default()));
    let frame = Frame {
        id: 1,
        text: Utf8Bytes::from(NOTIFICATION.to_string()),
    };
    let mut group = c.benchmark_group("registry fan-out to one user's N connections");
    for n in [1usize, 10, 100] {
        let user = 7_000 + n as i64;
        let mut queues: Vec<_> = (0..n).map(|_| registry.register(user)).collect();
        group.bench_function(format!("N = {n}"), |b| {
            b.iter(|| {
                let sent = registry.dispatch(black_box(user), &frame);
                for q in queues.iter_mut() {
                    let _ = q.queue.try_recv();
                }
                sent
            })
        });
    }
    group.finish();
}

/// What leaves the gateway per notification: a WebSocket text frame (tungstenite's
/// encoding, unmasked as a server sends it) or a server-sent event (axum's).
fn frame(c: &mut Criterion) {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
    let payload = bytes::Bytes::from(NOTIFICATION);
    let mut out = Vec::with_capacity(512);
    c.bench_function("encode a WebSocket text frame", |b| {
        b.iter(|| {
            out.clear();
            WsFrame::message(black_box(payload.clone()), OpCode::Data(Data::Text), true)
                .format(&mut out)
                .unwrap();
            out.len()
        })
    });
    c.bench_function("encode a server-sent event", |b| {
        b.iter(|| {
            axum::response::sse::Event::default()
                .id(black_box("123456"))
                .data(black_box(NOTIFICATION))
        })
    });
}

const NOTIFICATION: &str = r#"{"id":123456,"user_id":4242,"payload":{"event":987654,"emit_us":1700000000000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#;

criterion_group!(benches, dispatch, fan_out, frame, parse, socketio);
criterion_main!(benches);
