//! One system under test serving a bound listener until a shutdown future resolves: the
//! state, the router, the Redis side and an accept loop with a header timeout.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{app, push, AppState};
use crate::config::PushConfig;
use crate::config::{Fanout, PollAuth, PollBackend};
use crate::error::{environment, input};

/// What a server needs, already built: the roles, a pool, Redis, and how polls authenticate.
#[derive(Debug)]
pub struct ServerConfig {
    pub poll: bool,
    pub ingest: bool,
    pub push: bool,
    pub poll_auth: PollAuth,
    pub push_config: PushConfig,
    /// Test-only added delay per poll; see [`AppState::poll_delay`].
    pub poll_delay: Duration,
    /// The token key, for `--poll-auth none`.
    pub signer: Option<crate::token::Signer>,
    /// See [`accept_loop`]; `serve --header-timeout`.
    pub header_timeout: Duration,
    /// Hold polls that ask to wait (`serve --long-poll`).
    pub long_poll: bool,
    /// The operator token that ingest, `/stats` and `/metrics` want; None: open.
    pub operator: Option<String>,
    /// `--poll-backend`: redis-cache keeps each user's latest id in Redis.
    pub poll_backend: PollBackend,
    /// `--conditional`: ETags and 304s.
    pub conditional: bool,
    /// `--http2`: h2c beside HTTP/1.1.
    pub http2: bool,
    /// The poll's statements over pipelining connections; None: through the pool.
    pub pipeline: Option<std::sync::Arc<super::pipeline::Pipeline>>,
}

impl ServerConfig {
    /// The configuration of a `serve` process, with the key it verifies tokens with and the
    /// test-only poll delay.
    pub fn new(
        config: &crate::config::ServeConfig,
        signer: Option<crate::token::Signer>,
        poll_delay: Duration,
    ) -> Self {
        let (poll, ingest, push) = config.role.apis();
        ServerConfig {
            poll,
            ingest,
            push,
            poll_auth: config.poll_auth,
            push_config: config.push,
            poll_delay,
            signer,
            header_timeout: config.header_timeout,
            long_poll: config.long_poll,
            operator: crate::token::operator_token().map(String::from),
            poll_backend: config.poll_backend,
            conditional: config.conditional,
            http2: config.http2,
            pipeline: None,
        }
    }
}

/// Settings that cannot go together, refused before anything connects.
fn check_config(config: &ServerConfig) -> anyhow::Result<()> {
    let uses_redis = config.push_config.fanout != Fanout::None;
    let cached = config.poll_backend == PollBackend::RedisCache;
    if cached && !uses_redis {
        return Err(input(
            "--poll-backend redis-cache: ingest raises each user's latest id in Redis as it publishes, and --fanout none publishes nothing; use --fanout broadcast or per-user",
        ));
    }
    if config.push_config.fanout == Fanout::Sharded && (cached || config.long_poll) {
        return Err(input(
            "--fanout sharded publishes with SPUBLISH on a Redis Cluster; --poll-backend redis-cache and --long-poll need one Redis: use --fanout broadcast or per-user with them",
        ));
    }
    if config.poll && config.long_poll && !uses_redis {
        return Err(input(
            "--long-poll wakes held polls through Redis: use --fanout broadcast or per-user",
        ));
    }
    Ok(())
}

/// The gateway's Redis subscriber, started and subscribed (within 10 s).
async fn subscribe(
    upstream: push::fanout::Upstream,
    state: &AppState,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (tx, rx) = oneshot::channel();
    let ops = state.registry.subscription_requests();
    let task = tokio::spawn(push::fanout::subscriber(upstream, state.clone(), ops, tx));
    tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .map_err(|_| environment("the push gateway could not subscribe to Redis within 10 s"))??;
    Ok(task)
}

/// Builds the state and router, starts the Redis side, and serves `listener` until
/// `shutdown` resolves (then at most 2 s more for open connections).
pub async fn serve(
    listener: TcpListener,
    pool: sqlx::PgPool,
    redis_url: &str,
    config: ServerConfig,
    ready: oneshot::Sender<std::net::SocketAddr>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    check_config(&config)?;
    let mut state = AppState::new(pool, config.poll_auth, config.push_config);
    state.poll_delay = config.poll_delay;
    state.signer = config.signer;
    state.operator = config.operator.map(std::sync::Arc::from);
    state.conditional = config.conditional;
    state.pipeline = config.pipeline;
    let client = redis::Client::open(redis_url)?;
    let uses_redis = config.push_config.fanout != Fanout::None;
    let cached = config.poll_backend == PollBackend::RedisCache;
    if config.poll && cached {
        state.cache = Some(std::sync::Arc::new(
            super::cache::PollCache::connect(client.clone()).await?,
        ));
    }
    let mut republisher = None;
    let sharded = config.push_config.fanout == Fanout::Sharded;
    if sharded {
        super::cluster::check(redis_url).await?;
    }
    if config.ingest && uses_redis {
        let publisher = std::sync::Arc::new(if sharded {
            super::publisher::Publisher::connect_sharded(redis_url).await?
        } else {
            super::publisher::Publisher::connect(client.clone(), cached).await?
        });
        state.redis = Some(publisher.clone());
        let stats = state.stats.clone();
        republisher = Some(tokio::spawn(async move {
            publisher
                .republish(|| super::bump(&stats.republished))
                .await
        }));
    }
    let mut long_poll_subscriber = None;
    if config.poll && config.long_poll {
        let waiters = std::sync::Arc::new(super::longpoll::Waiters::default());
        state.waiters = Some(waiters.clone());
        long_poll_subscriber = Some(tokio::spawn(super::longpoll::subscriber(
            client.clone(),
            state.clone(),
            waiters,
        )));
    }
    let subscriber = match config.push && uses_redis {
        true => {
            let upstream = if sharded {
                push::fanout::Upstream::Cluster(redis_url.to_string())
            } else {
                push::fanout::Upstream::One(client)
            };
            Some(subscribe(upstream, &state).await?)
        }
        false => None,
    };
    let router = app(state, config.poll, config.ingest, config.push);
    let addr = listener.local_addr()?;
    let _ = ready.send(addr);
    accept_loop(
        listener,
        router,
        config.header_timeout,
        config.http2,
        shutdown,
    )
    .await;
    for s in [subscriber, long_poll_subscriber, republisher]
        .into_iter()
        .flatten()
    {
        s.abort();
    }
    Ok(())
}

/// The first bytes of an HTTP/2 connection with prior knowledge (RFC 9113, 3.4); no
/// HTTP/1 method begins with them.
const H2_PREFACE: &[u8] = b"PRI";

/// Whether a new connection opens with the HTTP/2 preface, from its first bytes, peeked
/// (left for hyper to read); None when it closed, or sent fewer than 3 bytes within `wait`.
async fn opens_with_h2(stream: &tokio::net::TcpStream, wait: Duration) -> Option<bool> {
    let mut buf = [0u8; 3];
    let first = async {
        loop {
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) if n >= buf.len() => return Some(buf == H2_PREFACE),
                // Fewer bytes so far: peek answers at once while any wait, so look again
                // a little later.
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    tokio::time::timeout(wait, first).await.ok().flatten()
}

/// Serves HTTP/1.1 (with upgrades, for WebSockets) on `listener` until `shutdown`, and with
/// `http2` HTTP/2 over cleartext too (h2c with prior knowledge, told apart by its preface);
/// then lets open connections finish for at most 2 s: open WebSockets would otherwise hold
/// shutdown forever. A client that has not sent a whole request head within
/// `header_timeout` (idle keep-alive time included) is disconnected, so slow-loris
/// clients cannot hold sockets forever: `axum::serve` installs no timer, which leaves
/// hyper's own header timeout inert; this loop installs one. hyper-util's builder speaks
/// HTTP/2 to any connection that opens with its preface when it serves upgrades
/// (`http1_only` does nothing then), so without `http2` such a connection is closed here.
async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    http2: bool,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let http = std::sync::Arc::new(http);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    // Every write goes out at once: a frame is never held back for the
                    // client's ACK of the previous one (Nagle), which a client that only
                    // reads may delay by up to 40 ms.
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        stream
                    }
                    Err(e) => {
                        // Out of descriptors, most likely: wait for some to close.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                let (http, watcher) = (http.clone(), graceful.watcher());
                tokio::spawn(async move {
                    if !http2 && opens_with_h2(&stream, header_timeout).await != Some(false) {
                        tracing::debug!("closed: HTTP/2 without --http2, or nothing sent in time");
                        return;
                    }
                    let conn = http
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!("connection ended: {e}");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
}
