//! What leaves the gateway per notification: a WebSocket text frame (tungstenite's
//! encoding, unmasked as a server sends it) or a server-sent event (axum's). Run with
//! `cargo bench --bench frames`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};

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

criterion_group!(benches, frame);
criterion_main!(benches);
