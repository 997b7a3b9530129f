//! `pollpush serve`: one system under test as a process. Binds, then prints one line on
//! stdout, `pollpush: listening on http://ADDR`, which is how `run` learns the port.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{app, db, push, AppState, PushConfig};
use crate::cli::{Role, ServeArgs};
use crate::error::{environment, input};
use crate::scenario::{Fanout, PollAuth};

/// What a server needs, already built: the roles, a pool, Redis, and how polls authenticate.
pub struct ServerConfig {
    pub poll: bool,
    pub ingest: bool,
    pub push: bool,
    pub poll_auth: PollAuth,
    pub push_config: PushConfig,
    /// Test-only added delay per poll; see [`AppState::poll_delay`].
    pub poll_delay: Duration,
    /// The token key, for `--poll-auth none`.
    pub signer: Option<super::token::Signer>,
    /// See [`accept_loop`]; `serve --header-timeout`.
    pub header_timeout: Duration,
    /// Hold polls that ask to wait (`serve --long-poll`).
    pub long_poll: bool,
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
    let mut state = AppState::new(pool, config.poll_auth, config.push_config);
    state.poll_delay = config.poll_delay;
    state.signer = config.signer;
    let client = redis::Client::open(redis_url)?;
    let uses_redis = config.push_config.fanout != Fanout::None;
    if config.ingest && uses_redis {
        state.redis = Some(std::sync::Arc::new(
            super::publisher::Publisher::connect(client.clone()).await?,
        ));
    }
    let mut long_poll_subscriber = None;
    if config.poll && config.long_poll {
        if !uses_redis {
            return Err(input(
                "--long-poll wakes held polls through Redis: use --fanout broadcast or per-user",
            ));
        }
        let waiters = std::sync::Arc::new(super::longpoll::Waiters::default());
        state.waiters = Some(waiters.clone());
        long_poll_subscriber = Some(tokio::spawn(super::longpoll::subscriber(
            client.clone(),
            state.clone(),
            waiters,
        )));
    }
    let mut subscriber = None;
    if config.push && uses_redis {
        let (tx, rx) = oneshot::channel();
        let ops = state.registry.subscription_requests();
        subscriber = Some(tokio::spawn(push::fanout::subscriber(
            client,
            state.clone(),
            ops,
            tx,
        )));
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .map_err(|_| {
                environment("the push gateway could not subscribe to Redis within 10 s")
            })??;
    }
    let router = app(state, config.poll, config.ingest, config.push);
    let addr = listener.local_addr()?;
    let _ = ready.send(addr);
    accept_loop(listener, router, config.header_timeout, shutdown).await;
    for s in [subscriber, long_poll_subscriber].into_iter().flatten() {
        s.abort();
    }
    Ok(())
}

/// Serves HTTP/1.1 (with upgrades, for WebSockets) on `listener` until `shutdown`, then
/// lets open connections finish for at most 2 s: open WebSockets would otherwise hold
/// shutdown forever. A client that has not sent a whole request head within
/// `header_timeout` (idle keep-alive time included) is disconnected, so slow-loris
/// clients cannot hold sockets forever: `axum::serve` installs no timer, which leaves
/// hyper's own header timeout inert; this loop installs one.
async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of descriptors, most likely: wait for some to close.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
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

/// A duration flag of at least `min`; a clear error otherwise.
fn duration_flag(flag: &str, text: &str, min: &str, example: &str) -> anyhow::Result<Duration> {
    let least = humantime::parse_duration(min).expect("a valid minimum");
    humantime::parse_duration(text)
        .ok()
        .filter(|d| *d >= least)
        .ok_or_else(|| {
            input(format!(
                "{flag} {text:?}: write a duration of at least {min}, e.g. {example}"
            ))
        })
}

/// The `serve` command.
pub async fn command(args: ServeArgs) -> anyhow::Result<()> {
    crate::procs::raise_nofile_limit();
    let (poll, ingest, push) = match args.role {
        Role::Poll => (true, false, false),
        Role::Ingest => (false, true, false),
        // A gateway instance also takes notifications in: with fanout none that is the
        // only way it hears of them, and `run` sends each event through a random instance.
        Role::Push => (false, true, true),
        Role::All => (true, true, true),
    };
    let ping_interval = duration_flag("--ping-interval", &args.ping_interval, "100ms", "20s")?;
    let header_timeout = duration_flag("--header-timeout", &args.header_timeout, "1s", "60s")?;
    if args.send_queue == 0 {
        return Err(input("--send-queue must be at least 1 frame"));
    }
    let push_config = PushConfig {
        fanout: args.fanout,
        send_queue: args.send_queue,
        slow_policy: args.slow_policy,
        ping_interval,
    };
    let poll_auth = args.poll_auth;
    let signer = match std::env::var(super::token::KEY_ENV) {
        Ok(hex) => Some(super::token::Signer::from_hex(&hex).ok_or_else(|| {
            input(format!(
                "{} must be 64 hex digits (a 32-byte key)",
                super::token::KEY_ENV
            ))
        })?),
        Err(_) => None,
    };
    if poll && poll_auth == PollAuth::None && signer.is_none() {
        return Err(input(format!(
            "--poll-auth none verifies signed tokens: set {} to the 64-hex-digit key the tokens were signed with",
            super::token::KEY_ENV
        )));
    }
    // Arguments are checked first: bad input is refused before anything starts.
    let services =
        crate::services::Services::start(args.database_url.clone(), args.redis_url.clone()).await?;
    if services.postgres.is_some() || services.redis.is_some() {
        // On stderr: stdout carries the one line `run` reads.
        eprintln!(
            "pollpush: ephemeral services for this server: --database-url {} --redis-url {} (for `pollpush swarm`); they stop with it",
            services.database_url, services.redis_url
        );
    }
    let pool = db::connect(&services.database_url, args.pool_size)
        .await
        .map_err(|e| environment(format!("cannot open the database pool: {e:#}")))?;
    let listener = TcpListener::bind((args.bind, args.port))
        .await
        .map_err(|e| environment(format!("cannot bind {}:{}: {e}", args.bind, args.port)))?;
    let (ready_tx, ready_rx) = oneshot::channel();
    let instance = args.instance_id.clone();
    let announce = tokio::spawn(async move {
        if let Ok(addr) = ready_rx.await {
            // The one line on stdout: `run` reads it to find us.
            println!("pollpush: listening on http://{addr}");
            tracing::info!(%addr, instance, "serving");
        }
    });
    serve(
        listener,
        pool,
        &services.redis_url,
        ServerConfig {
            poll,
            ingest,
            push,
            poll_auth,
            push_config,
            poll_delay: test_poll_delay()?,
            signer,
            header_timeout,
            long_poll: args.long_poll,
        },
        ready_tx,
        shutdown_signal(),
    )
    .await?;
    let _ = announce.await;
    Ok(())
}

/// The test-only knob `POLLPUSH_TEST_POLL_DELAY_MS`: milliseconds added to every poll.
fn test_poll_delay() -> anyhow::Result<Duration> {
    match std::env::var("POLLPUSH_TEST_POLL_DELAY_MS") {
        Err(_) => Ok(Duration::ZERO),
        Ok(v) => {
            let ms: u64 = v.trim().parse().map_err(|_| {
                crate::error::input(format!(
                    "POLLPUSH_TEST_POLL_DELAY_MS={v:?} is not a number of milliseconds"
                ))
            })?;
            tracing::warn!(ms, "test knob: every poll is delayed");
            Ok(Duration::from_millis(ms))
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
