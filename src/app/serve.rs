//! The `serve` command: one system under test as a process. It binds, then prints one line
//! on stdout ([`crate::wire::ready_line`]), which is how `run` learns the port.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::backend::db;
use crate::backend::pipeline::Pipeline;
use crate::backend::serve::{serve, ServerConfig};
use crate::config::{PollAuth, ServeConfig};
use crate::error::{environment, input};
use crate::services::redact;
use crate::token::{Signer, KEY_ENV};

/// Runs one server until Ctrl-C or SIGTERM. `database_url` and `redis_url` None: ephemeral
/// services are started for it, listening on `share` too when given.
pub async fn command(
    config: ServeConfig,
    database_url: Option<String>,
    redis_url: Option<String>,
    share: Option<std::net::IpAddr>,
) -> anyhow::Result<()> {
    crate::procs::raise_nofile_limit();
    let (poll, _, _) = config.role.apis();
    let signer = Signer::from_env()?;
    if poll && config.poll_auth == PollAuth::None && signer.is_none() {
        return Err(input(format!(
            "--poll-auth none verifies signed tokens: set {KEY_ENV} to the 64-hex-digit key the tokens were signed with"
        )));
    }
    if !config.bind.is_loopback() && crate::token::operator_token().is_none() {
        return Err(input(format!(
            "--bind {}: beyond loopback, POST /notifications, /stats and /metrics would be open to the network; set {} to a secret (pollpush run and swarm send it from the same variable)",
            config.bind,
            crate::token::OPERATOR_ENV
        )));
    }
    if share.is_some_and(|a| a.is_loopback() || a.is_unspecified()) {
        return Err(input(format!(
            "--share-services with --bind {}: the services would be reachable from no other host than with loopback alone; give --bind the address the other hosts reach (e.g. 10.0.0.5)",
            config.bind
        )));
    }
    let mut server = ServerConfig::new(&config, signer, test_poll_delay()?);
    // Arguments are checked first: bad input is refused before anything starts.
    let host = share.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    let services = crate::services::Services::start_on(database_url, redis_url, None, host).await?;
    if let Some(file) = services.save_urls()? {
        // On stderr: stdout carries the one line `run` reads. The passwords stay in a file
        // only this user can read.
        eprintln!(
            "pollpush: ephemeral services for this server: {} and {}; their URLs with passwords are in {} (for `pollpush swarm`: set -a; . {}); they stop with it",
            redact(&services.database_url),
            redact(&services.redis_url),
            file.display(),
            file.display()
        );
    }
    let pool = db::connect(&services.database_url, config.pool_size)
        .await
        .map_err(|e| environment(format!("cannot open the database pool: {e:#}")))?;
    server.pipeline = pipeline(&services.database_url, config.pool_size);
    let listener = TcpListener::bind((config.bind, config.port))
        .await
        .map_err(|e| environment(format!("cannot bind {}:{}: {e}", config.bind, config.port)))?;
    let (ready_tx, ready_rx) = oneshot::channel();
    let instance = config.instance_id.clone();
    let announce = async move {
        if let Ok(addr) = ready_rx.await {
            // The one line on stdout: `run` reads it to find us.
            println!("{}", crate::wire::ready_line(addr));
            tracing::info!(%addr, instance, "serving");
        }
    };
    let (served, ()) = tokio::join!(
        serve(
            listener,
            pool,
            &services.redis_url,
            server,
            ready_tx,
            crate::procs::shutdown_signal(),
        ),
        announce
    );
    served
}

/// The poll's pipelining connections: one per core, at most `pool_size`. None (the pool
/// then serves polls, with a warning) when tokio-postgres cannot read the URL.
fn pipeline(url: &str, pool_size: u32) -> Option<std::sync::Arc<Pipeline>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match Pipeline::new(url, cores.min(pool_size as usize)) {
        Ok(p) => Some(std::sync::Arc::new(p)),
        Err(err) => {
            tracing::warn!(cause = %err, "polls go through the pool: the database URL is not one the pipeline can use");
            None
        }
    }
}

/// The test-only knob `POLLPUSH_TEST_POLL_DELAY_MS`: milliseconds added to every poll.
fn test_poll_delay() -> anyhow::Result<Duration> {
    match std::env::var("POLLPUSH_TEST_POLL_DELAY_MS") {
        Err(_) => Ok(Duration::ZERO),
        Ok(v) => {
            let ms: u64 = v.trim().parse().map_err(|_| {
                input(format!(
                    "POLLPUSH_TEST_POLL_DELAY_MS={v:?} is not a number of milliseconds"
                ))
            })?;
            tracing::warn!(ms, "test knob: every poll is delayed");
            Ok(Duration::from_millis(ms))
        }
    }
}
