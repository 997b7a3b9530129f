//! A push user: one WebSocket to the gateway, authenticated by its bearer token at the
//! handshake, reading notifications until stopped; reconnects after a drop.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::{connect, Notification, Report, Shared};

pub struct WsClient {
    pub user: u64,
    pub token: String,
    /// When to open the connection (ramps are spread out).
    pub connect_at: Instant,
}

impl WsClient {
    pub async fn run(self, shared: Shared) {
        tokio::select! {
            _ = tokio::time::sleep_until(self.connect_at) => {}
            _ = shared.stop.cancelled() => return,
        }
        let url = format!("ws://{}/ws", shared.target);
        while !shared.stop.is_cancelled() {
            match self.session(&shared, &url).await {
                Ok(()) => break,
                Err(err) => {
                    tracing::debug!(user = self.user, cause = %err, "websocket dropped; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shared.stop.cancelled() => break,
                    }
                }
            }
        }
    }

    /// One connection, until stopped (Ok) or dropped (Err).
    async fn session(&self, shared: &Shared, url: &str) -> anyhow::Result<()> {
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {}", self.token).parse()?);
        let stream = match connect(shared).await {
            Ok(s) => s,
            Err(e) => {
                let _ = shared.reports.send(Report::ConnectError);
                return Err(e.into());
            }
        };
        // Small buffers, like a real client holding one socket; the defaults are 128 KiB.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(4096);
        let (mut ws, _) = match tokio_tungstenite::client_async_with_config(
            request,
            stream,
            Some(config),
        )
        .await
        {
            Ok(ok) => ok,
            Err(e) => {
                let _ = shared.reports.send(Report::ConnectError);
                return Err(e.into());
            }
        };
        shared.live.connections.fetch_add(1, Ordering::Relaxed);
        let result = loop {
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(n) = serde_json::from_str::<Notification>(&text) {
                            shared.delivered(self.user, &n);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => break Err(anyhow::anyhow!("closed by server")),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Err(e.into()),
                },
                _ = shared.stop.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    break Ok(());
                }
            }
        };
        shared.live.connections.fetch_sub(1, Ordering::Relaxed);
        result
    }
}
