//! A push user: one connection to its gateway instance (WebSocket, SSE or Socket.IO),
//! authenticated as the target says, reading notifications until stopped. One client loop
//! serves every protocol; each protocol is a small `Channel` (how to read its next
//! notification) and an opener (handshake and auth). When the
//! connection drops it reconnects after a backoff (none, fixed, or exponential with full
//! jitter), and with catch-up it sends the last id it has seen so the gateway fills the gap
//! from Postgres. A slow client connects and then never reads; a fault can take a client
//! offline for a while.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::channel::{Channel, Msg, SocketIoChannel, SseStream, WsChannel, WsStream};
use super::{connect_to, Report, Shared};
use crate::config::{Reconnect, Transport};
use crate::scenario::target::{Auth, Vars};
use crate::scenario::PushPlan;

/// Offline orders for clients, set by a `disconnect-clients` fault: a client whose entry
/// lies in the future drops its connection and stays away until then.
pub struct ClientFaults {
    offline_until_us: Vec<AtomicU64>,
    changed: watch::Sender<u64>,
}

impl ClientFaults {
    pub fn new(users: u64) -> Self {
        ClientFaults {
            offline_until_us: (0..users).map(|_| AtomicU64::new(0)).collect(),
            changed: watch::Sender::new(0),
        }
    }

    /// Takes `users` offline until `until_us` (µs since the epoch).
    pub fn take_offline(&self, users: &[u64], until_us: u64) {
        for &u in users {
            if let Some(slot) = self.offline_until_us.get(u as usize - 1) {
                slot.store(until_us, Ordering::Relaxed);
            }
        }
        self.changed.send_modify(|g| *g += 1);
    }

    fn offline_until(&self, user: u64) -> Option<u64> {
        let until = self
            .offline_until_us
            .get(user as usize - 1)?
            .load(Ordering::Relaxed);
        (until > crate::now_us()).then_some(until)
    }
}

/// Why a session ended.
enum End {
    Stopped,
    Dropped(anyhow::Error),
    /// The connection could not be opened.
    Unreachable(anyhow::Error),
    /// Taken offline by a fault until this time (µs since the epoch).
    Offline(u64),
}

/// The largest message a push client reads: notifications are small (a slow client's
/// test payloads are at most 64 KiB); tungstenite's default is 64 MiB.
const MAX_MESSAGE: usize = 1 << 20;

pub struct PushClient {
    pub user: u64,
    pub token: String,
    /// The gateway instance this client was balanced to.
    pub instance: SocketAddr,
    /// Every instance, in the balancer's order: when its instance cannot be reached, the
    /// client tries the next one, as a load balancer would send it elsewhere.
    pub instances: Arc<Vec<SocketAddr>>,
    /// When to open the connection (ramps are spread out).
    pub connect_at: Instant,
    pub transport: Transport,
    pub catch_up: bool,
    pub reconnect: Reconnect,
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
    /// Connects, then never reads.
    pub slow: bool,
    /// The last notification id the client already knows (its page loaded up to there):
    /// where catch-up starts if it has received nothing yet.
    pub after: i64,
}

impl PushClient {
    pub fn new(
        user: u64,
        token: String,
        instances: Arc<Vec<SocketAddr>>,
        connect_at: Instant,
        after: i64,
        plan: &PushPlan,
    ) -> Self {
        // Round-robin, like a load balancer.
        let instance = instances[(user as usize - 1) % instances.len()];
        PushClient {
            user,
            token,
            instance,
            instances,
            connect_at,
            transport: plan.transport,
            catch_up: plan.catch_up,
            reconnect: plan.reconnect,
            reconnect_base: plan.reconnect_base,
            reconnect_max: plan.reconnect_max,
            slow: user <= plan.slow_clients,
            after,
        }
    }

    /// Moves to another instance; the clients of one instance spread over all the others.
    fn next_instance(&mut self) {
        let n = self.instances.len();
        if let Some(pos) = self.instances.iter().position(|a| *a == self.instance) {
            let step = 1 + (self.user as usize / n) % (n - 1).max(1);
            self.instance = self.instances[(pos + step) % n];
        }
    }

    /// The wait before reconnect attempt `attempt` (0 for the first after a drop).
    pub fn backoff(&self, attempt: u32) -> Duration {
        match self.reconnect {
            Reconnect::None => Duration::ZERO,
            Reconnect::Fixed => self.reconnect_base,
            Reconnect::Jitter => {
                let cap = self
                    .reconnect_base
                    .saturating_mul(1u32 << attempt.min(16))
                    .min(self.reconnect_max);
                cap.mul_f64(rand::thread_rng().gen::<f64>())
            }
        }
    }

    pub async fn run(mut self, shared: Shared) {
        tokio::select! {
            _ = tokio::time::sleep_until(self.connect_at) => {}
            _ = shared.stop.cancelled() => return,
        }
        let mut last_id: Option<i64> = Some(self.after);
        let mut dropped_at: Option<Instant> = None;
        let mut attempt = 0u32;
        while !shared.stop.is_cancelled() {
            let resume = if self.catch_up { last_id } else { None };
            tracing::trace!(user = self.user, ?resume, "push connecting");
            let end = self
                .session(&shared, resume, &mut last_id, &mut dropped_at)
                .await;
            let wait = match end {
                End::Stopped => break,
                End::Offline(until_us) => {
                    attempt = 0;
                    Duration::from_micros(until_us.saturating_sub(crate::now_us()))
                }
                End::Dropped(err) => {
                    tracing::debug!(user = self.user, cause = %err, "push connection dropped");
                    let w = self.backoff(attempt);
                    attempt = attempt.saturating_add(1);
                    w
                }
                End::Unreachable(err) => {
                    tracing::debug!(user = self.user, cause = %err, "gateway unreachable");
                    self.next_instance();
                    let w = self.backoff(attempt);
                    attempt = attempt.saturating_add(1);
                    w
                }
            };
            if dropped_at.is_none() {
                dropped_at = Some(Instant::now());
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shared.stop.cancelled() => break,
            }
        }
    }

    /// One connection: until stopped, dropped, or taken offline.
    async fn session(
        &self,
        shared: &Shared,
        resume: Option<i64>,
        last_id: &mut Option<i64>,
        dropped_at: &mut Option<Instant>,
    ) -> End {
        let faults = shared.faults.changed.subscribe();
        if let Some(until) = shared.faults.offline_until(self.user) {
            return End::Offline(until);
        }
        // Each protocol opens its own kind of connection; one loop reads them all. The
        // openers' futures (handshakes, request building) are boxed: held only while
        // opening, instead of sizing every client's task for them while it reads.
        match self.transport {
            Transport::Ws => {
                let opened = Box::pin(self.open_ws(shared, resume)).await.map(WsChannel);
                self.read(shared, opened, faults, last_id, dropped_at).await
            }
            Transport::Sse => {
                let opened = Box::pin(self.open_sse(shared, resume)).await;
                self.read(shared, opened, faults, last_id, dropped_at).await
            }
            Transport::SocketIo => {
                let opened = Box::pin(self.open_socketio(shared))
                    .await
                    .map(SocketIoChannel);
                self.read(shared, opened, faults, last_id, dropped_at).await
            }
        }
    }

    /// The client loop, the same for every protocol: reads notifications from `opened`
    /// until stopped, dropped, or taken offline.
    async fn read<C: Channel>(
        &self,
        shared: &Shared,
        opened: anyhow::Result<C>,
        mut faults: watch::Receiver<u64>,
        last_id: &mut Option<i64>,
        dropped_at: &mut Option<Instant>,
    ) -> End {
        let mut conn = match opened {
            Ok(c) => c,
            Err(e) => {
                shared.connect_failed(&e);
                return End::Unreachable(e);
            }
        };
        shared.live.connections.fetch_add(1, Ordering::Relaxed);
        if let Some(at) = dropped_at.take() {
            let now = Instant::now();
            shared.reports.send(Report::Reconnected {
                user: self.user,
                at: now,
                downtime_us: now.duration_since(at).as_micros() as u64,
            });
        }
        let end = loop {
            tokio::select! {
                item = conn.next(shared), if !self.slow => match item {
                    Ok(Some(msg)) => {
                        let id = match msg {
                            Msg::Text(text) => shared.read_text(self.user, &text),
                            Msg::Json(v) => shared.read(self.user, &v),
                        };
                        if let Some(id) = id {
                            *last_id = Some(last_id.map_or(id, |l| l.max(id)));
                        }
                    }
                    Ok(None) => break End::Dropped(anyhow::anyhow!("closed by the server")),
                    Err(e) => break End::Dropped(e),
                },
                _ = faults.changed() => {
                    if let Some(until) = shared.faults.offline_until(self.user) {
                        // A network drop: no goodbye, the socket just goes.
                        break End::Offline(until);
                    }
                }
                _ = shared.stop.cancelled() => {
                    conn.close().await;
                    break End::Stopped;
                }
            }
        };
        shared.live.connections.fetch_sub(1, Ordering::Relaxed);
        if !matches!(end, End::Stopped) {
            shared.reports.send(Report::Disconnected {
                user: self.user,
                at: Instant::now(),
            });
        }
        end
    }

    fn vars(&self) -> Vars<'_> {
        Vars {
            user: self.user,
            token: &self.token,
            ..Vars::default()
        }
    }

    /// The path and query of a push connection: the target's path, then `first` (the
    /// protocol's own parameters), the target's extra query, the token when auth goes by
    /// query parameter, and the resume point.
    fn path(&self, shared: &Shared, first: &str, resume: Option<(&str, i64)>) -> String {
        let api = &shared.api;
        let vars = self.vars();
        let mut params: Vec<String> = Vec::new();
        if !first.is_empty() {
            params.push(first.to_string());
        }
        if let Some(q) = &api.push_query {
            params.push(q.render(&vars));
        }
        if let Auth::Query { name, value } = &api.push_auth {
            params.push(format!("{name}={}", value.render(&vars)));
        }
        if let Some((name, id)) = resume {
            params.push(format!("{name}={id}"));
        }
        let path = api.push_path(self.transport);
        if params.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", params.join("&"))
        }
    }

    async fn open_ws(&self, shared: &Shared, resume: Option<i64>) -> anyhow::Result<Box<WsStream>> {
        let path = self.path(shared, "", resume.map(|id| ("last_id", id)));
        let mut ws = self.upgrade(shared, &path).await?;
        if let Auth::FirstFrame(t) = &shared.api.push_auth {
            ws.send(Message::Text(t.render(&self.vars()).into()))
                .await?;
        }
        Ok(ws)
    }

    /// A Socket.IO session: the Engine.IO handshake, then CONNECT on the target's
    /// namespace with the auth payload, until the server acknowledges it.
    async fn open_socketio(&self, shared: &Shared) -> anyhow::Result<Box<WsStream>> {
        use super::socketio::{self, Packet};
        let path = self.path(shared, socketio::QUERY, None);
        let mut ws = self.upgrade(shared, &path).await?;
        let auth: Option<serde_json::Value> = match &shared.api.push_auth {
            Auth::SocketIo(t) => Some(serde_json::from_str(&t.render(&self.vars()))?),
            _ => None,
        };
        let namespace = shared.api.namespace.as_str();
        let mut sent_connect = false;
        // A server that never finishes the handshake is an error, not a wait.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let next = tokio::time::timeout_at(deadline, ws.next());
            let Ok(next) = next.await else {
                anyhow::bail!("no Socket.IO handshake within 10 s");
            };
            let text = match next {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(_))) | None => anyhow::bail!("closed during the handshake"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            };
            match socketio::parse(&text) {
                Packet::Open(_) if !sent_connect => {
                    ws.send(Message::Text(
                        socketio::connect(namespace, auth.as_ref()).into(),
                    ))
                    .await?;
                    sent_connect = true;
                }
                Packet::Ping => ws.send(Message::Text(socketio::PONG.into())).await?,
                Packet::Connected { namespace: ns } if sent_connect && ns == namespace => {
                    return Ok(ws)
                }
                Packet::ConnectError { data, .. } => {
                    anyhow::bail!("the Socket.IO server refused the connection: {data}")
                }
                Packet::Disconnect => anyhow::bail!("disconnected during the handshake"),
                _ => {}
            }
        }
    }

    /// A WebSocket upgrade to `path` on the target, with the swarm's headers (and the
    /// token when auth goes by header).
    async fn upgrade(&self, shared: &Shared, path: &str) -> anyhow::Result<Box<WsStream>> {
        let mut request = format!("ws://{}{path}", self.instance).into_client_request()?;
        let headers = request.headers_mut();
        if let Auth::Header { name, value } = &shared.api.push_auth {
            headers.insert(
                hyper::header::HeaderName::from_bytes(name.as_bytes())?,
                value.render(&self.vars()).parse()?,
            );
        }
        for (k, v) in shared.headers.iter() {
            // A browser's WebSocket upgrade carries no Accept; the rest it sends.
            if k != hyper::header::ACCEPT {
                headers.insert(k, v.clone());
            }
        }
        let stream = connect_to(self.instance, shared, self.slow).await?;
        // Small buffers, like a real client holding one socket; the defaults are 128 KiB, and
        // tungstenite zero-fills the read buffer to its size before each read, so all of it
        // is resident: 1 KiB holds a notification (a larger one grows the buffer). A
        // message larger than MAX_MESSAGE ends the connection with an error (counted as a
        // drop, the client reconnects): no server can make a client hold more.
        let config = WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(4096)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        // A server that accepts the connection but never answers the upgrade is an error.
        let upgrade = tokio_tungstenite::client_async_with_config(request, stream, Some(config));
        let (ws, _) = tokio::time::timeout(Duration::from_secs(10), upgrade)
            .await
            .map_err(|_| anyhow::anyhow!("no answer to the WebSocket upgrade within 10 s"))??;
        Ok(Box::new(ws))
    }

    async fn open_sse(&self, shared: &Shared, resume: Option<i64>) -> anyhow::Result<SseStream> {
        let stream = connect_to(self.instance, shared, self.slow).await?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = hyper::Request::get(self.path(shared, "", None))
            .header(hyper::header::HOST, self.instance.to_string())
            .header(hyper::header::ACCEPT, "text/event-stream");
        if let Auth::Header { name, value } = &shared.api.push_auth {
            req = req.header(name.as_str(), value.render(&self.vars()));
        }
        for (k, v) in shared.headers.iter() {
            if k != hyper::header::ACCEPT {
                req = req.header(k, v);
            }
        }
        if let Some(id) = resume {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = sender
            .send_request(req.body(Empty::<Bytes>::new())?)
            .await?;
        if resp.status() != hyper::StatusCode::OK {
            driver.abort();
            anyhow::bail!("the gateway answered {}", resp.status());
        }
        let events = resp.into_body().into_data_stream().eventsource();
        Ok(SseStream {
            events: Box::pin(events),
            driver,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(reconnect: Reconnect) -> PushClient {
        let plan = PushPlan {
            reconnect,
            reconnect_base: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(1),
            ..PushPlan::default()
        };
        PushClient::new(
            1,
            String::new(),
            Arc::new(vec!["127.0.0.1:1".parse().unwrap()]),
            Instant::now(),
            0,
            &plan,
        )
    }

    #[test]
    fn backoff_policies() {
        assert_eq!(client(Reconnect::None).backoff(5), Duration::ZERO);
        assert_eq!(
            client(Reconnect::Fixed).backoff(5),
            Duration::from_millis(100)
        );
        let c = client(Reconnect::Jitter);
        // Full jitter: uniform in [0, min(max, base * 2^attempt)].
        for attempt in 0..20 {
            let cap =
                Duration::from_millis(100 * (1u64 << attempt.min(16))).min(Duration::from_secs(1));
            let waits: Vec<Duration> = (0..200).map(|_| c.backoff(attempt)).collect();
            assert!(waits.iter().all(|w| *w <= cap), "attempt {attempt}");
            // Spread over the range, not bunched at the cap.
            let below_half = waits.iter().filter(|w| **w < cap / 2).count();
            assert!(
                (50..150).contains(&below_half),
                "attempt {attempt}: {below_half}"
            );
        }
    }

    #[test]
    fn faults_take_clients_offline_until_their_time() {
        let f = ClientFaults::new(3);
        let until = crate::now_us() + 60_000_000;
        let rx = f.changed.subscribe();
        f.take_offline(&[2], until);
        assert!(rx.has_changed().unwrap());
        assert_eq!(f.offline_until(2), Some(until));
        assert_eq!(f.offline_until(1), None);
        f.take_offline(&[1], crate::now_us().saturating_sub(1));
        assert_eq!(
            f.offline_until(1),
            None,
            "a time in the past is not offline"
        );
    }
}
