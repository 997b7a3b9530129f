//! The protocols a push client reads, each a small [`Channel`]: how to read its next
//! notification and how to close it (WebSocket, Socket.IO over WebSocket, SSE).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{MeteredStream, Shared};

pub(crate) type WsStream = tokio_tungstenite::WebSocketStream<MeteredStream>;

type EventStream = std::pin::Pin<
    Box<
        dyn futures_util::Stream<
                Item = Result<
                    eventsource_stream::Event,
                    eventsource_stream::EventStreamError<hyper::Error>,
                >,
            > + Send,
    >,
>;

pub(crate) struct SseStream {
    pub(crate) events: EventStream,
    pub(crate) driver: tokio::task::JoinHandle<()>,
}

impl Drop for SseStream {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// One message that should carry a notification.
pub(crate) enum Msg {
    Text(String),
    /// Already parsed (a Socket.IO event's argument).
    Json(serde_json::Value),
}

/// What the client loop needs of a protocol's open connection.
pub(crate) trait Channel: Send {
    /// The next message that should carry a notification, answering the protocol's own
    /// traffic (pings) on the way; Ok(None) when the server ended the connection.
    async fn next(&mut self, shared: &Shared) -> anyhow::Result<Option<Msg>>;

    /// Says goodbye where the protocol has a way to.
    async fn close(&mut self) {}
}

/// Plain WebSocket: every text frame is a notification.
pub(crate) struct WsChannel(pub(crate) Box<WsStream>);

/// Socket.IO over WebSocket: the named events of the namespace are notifications.
pub(crate) struct SocketIoChannel(pub(crate) Box<WsStream>);

impl Channel for WsChannel {
    async fn next(&mut self, _: &Shared) -> anyhow::Result<Option<Msg>> {
        loop {
            match self.0.next().await {
                Some(Ok(Message::Text(text))) => return Ok(Some(Msg::Text(text.to_string()))),
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    async fn close(&mut self) {
        close_ws(&mut self.0).await;
    }
}

async fn close_ws(ws: &mut WsStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), WsStream::close(ws, None)).await;
}

impl Channel for SocketIoChannel {
    async fn next(&mut self, shared: &Shared) -> anyhow::Result<Option<Msg>> {
        use super::socketio::{self, Packet};
        let ws = &mut self.0;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => match socketio::parse(&text) {
                    Packet::Ping => ws.send(Message::Text(socketio::PONG.into())).await?,
                    Packet::Event {
                        namespace,
                        name,
                        data,
                    } if namespace == shared.api.namespace
                        && Some(&name) == shared.api.event.as_ref() =>
                    {
                        return Ok(Some(Msg::Json(data)))
                    }
                    Packet::Disconnect => return Ok(None),
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    async fn close(&mut self) {
        close_ws(&mut self.0).await;
    }
}

/// Server-sent events: each event (of the target's type, when it names one) is a
/// notification.
impl Channel for SseStream {
    async fn next(&mut self, shared: &Shared) -> anyhow::Result<Option<Msg>> {
        loop {
            match self.events.next().await {
                // With an event type given, other types (a heartbeat, say) are not
                // notifications.
                Some(Ok(event)) if shared.api.event.as_ref().is_some_and(|t| *t != event.event) => {
                }
                Some(Ok(event)) => return Ok(Some(Msg::Text(event.data))),
                Some(Err(e)) => return Err(anyhow::anyhow!("{e}")),
                None => return Ok(None),
            }
        }
    }
}
