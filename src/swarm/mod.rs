//! The simulated users. Each is one task: a [`poller`] on a fixed schedule, or a [`push`]
//! client (WebSocket or SSE) holding one connection. They never print; they send [`Report`]s to an aggregator
//! and bump a few live counters for the progress display.

mod channel;
pub(crate) mod headers;
pub(crate) mod metered;
pub(crate) mod poller;
pub(crate) mod push;
pub mod socketio;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::scenario::target::Stamp;
use crate::scenario::Target;

/// A notification in pollpush's own format: `{"id", "payload": {"event", "emit_us"}}`.
#[derive(serde::Deserialize)]
struct Typed {
    id: i64,
    payload: TypedStamp,
}

#[derive(serde::Deserialize)]
struct TypedStamp {
    event: u64,
    emit_us: u64,
}

pub use metered::{Meter, MeteredStream};

pub use crate::metrics::events::{PollOutcome, Report};

/// Live counters for the progress display (the report uses [`Report`]s, not these).
#[derive(Debug, Default)]
pub struct Live {
    pub requests: AtomicU64,
    pub deliveries: AtomicU64,
    pub connections: AtomicI64,
    pub connect_errors: AtomicU64,
    /// Why the first failed connection failed, to say so if none succeeds.
    pub first_connect_error: std::sync::Mutex<Option<String>>,
}

/// Everything a client needs besides its own user and token.
#[derive(Clone)]
pub struct Shared {
    /// The first server of the mode: the Host header of requests and probes.
    pub server: SocketAddr,
    pub meter: Arc<Meter>,
    pub live: Arc<Live>,
    pub reports: crate::metrics::events::Reports,
    pub stop: CancellationToken,
    pub faults: Arc<push::ClientFaults>,
    /// Headers added to every request, per `swarm.headers`.
    pub headers: Arc<Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>>,
    /// How the system under test is spoken to: paths, auth, where a notification's
    /// fields are.
    pub api: Arc<Target>,
}

impl Shared {
    /// Reads one notification for `user`: reports its delivery, or reports it unreadable.
    /// Returns its id, if it has one.
    fn read(&self, user: u64, v: &serde_json::Value) -> Option<i64> {
        let now = crate::now_us();
        let Some(stamp) = self.api.fields.read(v) else {
            self.unreadable(&v.to_string());
            return None;
        };
        self.deliver(user, stamp, now)
    }

    fn deliver(&self, user: u64, stamp: Stamp, now: u64) -> Option<i64> {
        self.live
            .deliveries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.reports.send(Report::Delivered {
            event: stamp.event,
            user,
            latency_us: now.saturating_sub(stamp.emit_us),
        });
        stamp.id
    }

    /// Reads a message's text: JSON, or unreadable.
    fn read_text(&self, user: u64, text: &str) -> Option<i64> {
        // pollpush's own format parses straight into its fields, about 5x faster than a
        // JSON tree read through pointers (benches/fanout.rs); anything else takes the tree.
        if self.api.fields.is_pollpush() {
            if let Ok(n) = serde_json::from_str::<Typed>(text) {
                let stamp = Stamp {
                    id: Some(n.id),
                    event: n.payload.event,
                    emit_us: n.payload.emit_us,
                };
                return self.deliver(user, stamp, crate::now_us());
            }
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => self.read(user, &v),
            Err(_) => {
                self.unreadable(text);
                None
            }
        }
    }

    /// A connection could not be opened (or was refused at its handshake).
    fn connect_failed(&self, err: &dyn std::fmt::Display) {
        use std::sync::atomic::Ordering;
        if self.live.connect_errors.fetch_add(1, Ordering::Relaxed) == 0 {
            if let Ok(mut first) = self.live.first_connect_error.lock() {
                first.get_or_insert_with(|| format!("{err:#}"));
            }
        }
        self.reports.send(Report::ConnectError);
    }

    fn unreadable(&self, text: &str) {
        let mut end = text.len().min(200);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.reports.send(Report::Unreadable {
            sample: text[..end].to_string(),
        });
    }
}

/// Opens a loopback TCP connection to the shared target with Nagle off, wrapped to count
/// bytes.
pub async fn connect(shared: &Shared) -> std::io::Result<MeteredStream> {
    connect_to(shared.server, shared, false).await
}

/// Opens a TCP connection to `addr`, wrapped to count bytes. A `small` receive buffer (4 KiB)
/// makes a client that does not read push back on the server within a few frames, as a
/// stalled phone would.
pub async fn connect_to(
    addr: SocketAddr,
    shared: &Shared,
    small: bool,
) -> std::io::Result<MeteredStream> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if small {
        socket.set_recv_buffer_size(4096)?;
    }
    let stream = tokio::time::timeout(Duration::from_secs(10), socket.connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(MeteredStream::new(stream, shared.meter.clone()))
}

/// A running swarm: its tasks, and the token that stops them.
pub struct Swarm {
    tasks: JoinSet<()>,
    stop: CancellationToken,
}

impl Swarm {
    pub fn new(stop: CancellationToken) -> Self {
        Swarm {
            tasks: JoinSet::new(),
            stop,
        }
    }

    pub fn spawn(&mut self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(fut);
    }

    /// Collects the clients that have ended (a cancelled batch, say) while the rest run;
    /// returns how many of them had panicked.
    pub fn reap(&mut self) -> u64 {
        let mut panicked = 0;
        while let Some(done) = self.tasks.try_join_next() {
            if done.is_err_and(|e| e.is_panic()) {
                panicked += 1;
            }
        }
        panicked
    }

    /// Stops every client and waits for them (aborting stragglers after `grace`).
    /// Stops every client (aborting those still running after `grace`); returns how many
    /// had panicked, so that a client that died is reported, never silently counted lost.
    pub async fn stop(mut self, grace: Duration) -> u64 {
        self.stop.cancel();
        let mut panicked = 0;
        let all = async {
            while let Some(done) = self.tasks.join_next().await {
                if done.is_err_and(|e| e.is_panic()) {
                    panicked += 1;
                }
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            self.tasks.abort_all();
            while let Some(done) = self.tasks.join_next().await {
                if done.is_err_and(|e| e.is_panic()) {
                    panicked += 1;
                }
            }
        }
        panicked
    }
}
