//! A polling user: every `interval`, from its own phase, `GET /notifications?after=ID` (or
//! the `[target]`'s poll path) over one keep-alive HTTP/1.1 connection, or one HTTP/2
//! connection (h2c) whose HPACK table remembers its headers (reopened if it breaks), like
//! a browser tab would. A long poller asks again as soon as an answer comes. A conditional
//! poller keeps the ETag of the last answer to its current URL, as a browser's cache does,
//! and sends it as If-None-Match; a 304 is an empty poll.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderValue, ETAG, IF_NONE_MATCH};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;

use super::{connect, Live, Meter, PollOutcome, Report, Shared};
use crate::scenario::target::{Auth, Vars};

/// The largest poll answer a poller reads (a page of notifications is a few KiB).
const MAX_BODY: usize = 4 << 20;

pub struct Poller {
    pub user: u64,
    pub token: String,
    pub interval: Duration,
    /// When the first poll is due; then every `interval` after it.
    pub first: Instant,
    /// Last notification id already seen.
    pub after: i64,
    /// Long polling: the server may hold each request this long, and the next goes out as
    /// soon as one is answered (`interval` is then unused). None: periodic polling.
    pub wait: Option<Duration>,
    /// Send If-None-Match with the ETag of the last answer to the same URL.
    pub conditional: bool,
    /// HTTP/2 over cleartext (prior knowledge) instead of HTTP/1.1.
    pub h2: bool,
    /// The URL of the last answer that carried an ETag, and that ETag.
    pub cached: Option<(String, HeaderValue)>,
}

enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    async fn send(
        &mut self,
        req: Request<Empty<Bytes>>,
    ) -> hyper::Result<hyper::Response<hyper::body::Incoming>> {
        match self {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }
}

type Conn = Option<(Sender, tokio::task::JoinHandle<()>)>;

/// Drops the connection, if any, and its driver task.
fn close(conn: &mut Conn, shared: &Shared) {
    if let Some((_, task)) = conn.take() {
        task.abort();
        shared
            .live
            .connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Poller {
    pub async fn run(mut self, shared: Shared) {
        let host = shared.server.to_string();
        let long = self.wait.is_some();
        let mut conn: Conn = None;
        let mut due = self.first;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = shared.stop.cancelled() => break,
            }
            let mut scheduled = due;
            due += self.interval;
            let sent = Instant::now();
            let lateness_us = sent.saturating_duration_since(scheduled).as_micros() as u64;
            let (outcome, response_us, body_bytes) =
                match self.poll_once(&shared, &mut conn, &host).await {
                    Ok((n, body_bytes)) => {
                        let kind = if n == 0 {
                            PollOutcome::Empty
                        } else {
                            PollOutcome::NonEmpty
                        };
                        (kind, Some(sent.elapsed().as_micros() as u64), body_bytes)
                    }
                    Err(_) => {
                        close(&mut conn, &shared);
                        (PollOutcome::Error, None, 0)
                    }
                };
            shared
                .live
                .requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if long {
                // The next request goes out at once; after a failure, a second later, so
                // that a target that is down is not hammered.
                due = match outcome {
                    PollOutcome::Error => Instant::now() + Duration::from_secs(1),
                    _ => Instant::now(),
                };
                // A long poll belongs to the window in which it was answered: counted by
                // when they were sent, requests held across the window's end would be
                // missed, and the rate would read low.
                scheduled = Instant::now();
            }
            shared.reports.send(Report::Poll {
                scheduled,
                lateness_us,
                response_us,
                outcome,
                body_bytes,
            });
        }
        close(&mut conn, &shared);
    }

    /// One request; returns how many notifications it carried and its body's size.
    async fn poll_once(
        &mut self,
        shared: &Shared,
        conn: &mut Conn,
        host: &str,
    ) -> anyhow::Result<(usize, u64)> {
        if conn.as_ref().is_none_or(|(s, _)| s.is_closed()) {
            close(conn, shared);
            *conn = Some(open(shared, self.h2).await?);
        }
        let (sender, _) = conn.as_mut().expect("connected above");
        let api = &shared.api;
        let vars = Vars {
            user: self.user,
            token: &self.token,
            after: self.after,
            ..Vars::default()
        };
        let mut path = api.poll_path.render(&vars);
        // pollpush's own API takes the wait as a parameter; a `[target]` puts whatever its
        // API wants in its poll path.
        if let (Some(w), false) = (self.wait, api.described) {
            let sep = if path.contains('?') { '&' } else { '?' };
            path = format!("{path}{sep}wait_ms={}", w.as_millis());
        }
        // HTTP/2 names the host in :authority, which hyper takes from an absolute URI.
        let mut req = Request::get("/");
        if !self.h2 {
            req = req.header(hyper::header::HOST, host);
        }
        match &api.poll_auth {
            Auth::Header { name, value } => req = req.header(name.as_str(), value.render(&vars)),
            Auth::Query { name, value } => {
                let sep = if path.contains('?') { '&' } else { '?' };
                path = format!("{path}{sep}{name}={}", value.render(&vars));
            }
            _ => {}
        }
        for (k, v) in shared.headers.iter() {
            req = req.header(k, v);
        }
        if let Some((url, tag)) = self.cached.as_ref().filter(|_| self.conditional) {
            if *url == path {
                req = req.header(IF_NONE_MATCH, tag.clone());
            }
        }
        let uri = match self.h2 {
            true => format!("http://{host}{path}"),
            false => path.clone(),
        };
        let req = req.uri(uri).body(Empty::<Bytes>::new())?;
        // A long poll is held by the server until something arrives or its own timeout.
        let limit = self.wait.unwrap_or_default() + Duration::from_secs(30);
        let resp = tokio::time::timeout(limit, async {
            let resp = sender.send(req).await?;
            let status = resp.status();
            let tag = resp.headers().get(ETAG).cloned();
            // A poll's answer is read whole, up to MAX_BODY: a larger one is an error (the
            // poll counts as failed), never a client holding whatever a server sends.
            let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("the poll's answer: {e}"))?
                .to_bytes();
            anyhow::Ok((status, tag, body))
        })
        .await??;
        let (status, tag, body) = resp;
        if status == StatusCode::NOT_MODIFIED && self.conditional {
            // Nothing new: the cached answer stands.
            return Ok((0, body.len() as u64));
        }
        if !status.is_success() {
            anyhow::bail!("HTTP {status}");
        }
        if self.conditional {
            self.cached = tag.map(|t| (path, t));
        }
        let doc: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                shared.unreadable(&String::from_utf8_lossy(&body));
                anyhow::bail!("the poll's answer is not JSON: {e}");
            }
        };
        let Some(items) = doc.pointer(&api.poll_items).and_then(|v| v.as_array()) else {
            shared.unreadable(&doc.to_string());
            anyhow::bail!("the poll's answer has no array at {:?}", api.poll_items);
        };
        for n in items {
            if let Some(id) = shared.read(self.user, n) {
                self.after = self.after.max(id);
            }
        }
        Ok((items.len(), body.len() as u64))
    }
}

/// A new keep-alive connection to the poll API, HTTP/1.1 or HTTP/2 (h2c), counted open.
async fn open(shared: &Shared, h2: bool) -> anyhow::Result<(Sender, tokio::task::JoinHandle<()>)> {
    let stream = match connect(shared).await {
        Ok(s) => s,
        Err(e) => {
            shared.connect_failed(&e);
            return Err(e.into());
        }
    };
    let (sender, task) = match h2 {
        false => {
            let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            (Sender::H1(sender), task)
        }
        true => {
            let (sender, connection) =
                http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            (Sender::H2(sender), task)
        }
    };
    shared
        .live
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok((sender, task))
}

/// Two empty polls of `user` on a connection of its own, before any load: the bytes the
/// second put on the wire besides the response body (request line or HTTP/2 frames and
/// headers, status line and headers). The first pays for what a connection pays once (an
/// HTTP/2 preface and settings, the first copy of each header in HPACK's table). The
/// header-overhead model multiplies this by the poll rate.
pub async fn probe(
    shared: &Shared,
    user: u64,
    token: &str,
    after: i64,
    h2: bool,
) -> anyhow::Result<u64> {
    let meter = Arc::new(Meter::default());
    let (reports, _ignored) = crate::metrics::events::Reports::channel(64);
    let own = Shared {
        meter: meter.clone(),
        live: Arc::new(Live::default()),
        reports,
        ..shared.clone()
    };
    let mut poller = Poller {
        user,
        token: token.to_string(),
        interval: Duration::from_secs(1),
        first: Instant::now(),
        after,
        wait: None,
        conditional: false,
        h2,
        cached: None,
    };
    let mut conn: Conn = None;
    let host = shared.server.to_string();
    let first = poller.poll_once(&own, &mut conn, &host).await;
    let (i0, o0) = meter.read();
    let second = match first {
        Ok(_) => poller.poll_once(&own, &mut conn, &host).await,
        Err(e) => Err(e),
    };
    close(&mut conn, &own);
    let (_, body) = second?;
    let (i, o) = meter.read();
    Ok((i + o).saturating_sub(i0 + o0).saturating_sub(body))
}
