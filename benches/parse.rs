//! The swarm's side of each notification: a client reading pollpush's JSON (through the
//! JSON pointers any `[target]` format goes by, beside a typed parse of pollpush's own
//! format as the yardstick) and a Socket.IO event. Run with `cargo bench --bench parse`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pollpush::config::Transport;
use pollpush::scenario::Target;

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

criterion_group!(benches, parse, socketio);
criterion_main!(benches);
