//! What every mode of a run shares, made once before the first mode: the services, the
//! users' tokens and their history in Postgres, the readers of Postgres's and Redis's own
//! counters, the ingest API, and the connection `[target.emit] via = "redis"` publishes on.

use std::sync::Arc;
use std::time::Duration;

use super::machine::read_machine;
use super::servers::{Launch, ServerProcess};
use super::setup::RunOptions;
use crate::backend::db;
use crate::config::Role;
use crate::error::{environment, input};
use crate::metrics::db::DbCounter;
use crate::metrics::redis_info::RedisCounter;
use crate::result::Machine;
use crate::scenario::target::Emit;
use crate::scenario::Plan;
use crate::services::Services;
use crate::token::Signer;

/// Older notifications each user has before a run starts (never delivered: clients start
/// after the newest id).
pub const HISTORY_PER_USER: u32 = 5;

pub struct Resources {
    pub services: Services,
    /// None when `swarm` has no database to read: tokens are only signed, and every
    /// database figure is unknown.
    pub pool: Option<sqlx::PgPool>,
    /// Each user's session token, user `i + 1` at index `i`.
    pub tokens: Arc<Vec<String>>,
    pub counter: DbCounter,
    pub redis: Option<RedisCounter>,
    /// How the servers of this run are started (and restarted by faults).
    pub launch: Arc<Launch>,
    pub ingest: ServerProcess,
    pub emit_redis: Option<redis::aio::MultiplexedConnection>,
    pub machine: Machine,
}

impl Resources {
    pub async fn prepare(plan: &Plan, opts: &RunOptions) -> anyhow::Result<Self> {
        let remote = opts.remote.as_ref();
        opts.observer.note(match remote {
            Some(_) => "connecting to the services given",
            None => "starting Postgres and Redis",
        });
        let services = match remote {
            // Another deployment's services: read, never started or faulted.
            Some(_) => Services::given(opts.database_url.clone(), opts.redis_url.clone()).await?,
            // A Redis Cluster on loopback (`redis.masters`; sharded pub/sub needs one).
            None if plan.redis_masters > 1 && opts.redis_url.is_none() => {
                Services::start_cluster(
                    opts.database_url.clone(),
                    plan.db_cpu_limit,
                    plan.redis_masters as usize,
                )
                .await?
            }
            None => {
                Services::start_with(
                    opts.database_url.clone(),
                    opts.redis_url.clone(),
                    plan.db_cpu_limit,
                )
                .await?
            }
        };
        let pool = match services.database_url.as_str() {
            "" => None,
            url => Some(
                db::connect(url, 2)
                    .await
                    .map_err(|e| environment(format!("cannot prepare the database: {e:#}")))?,
            ),
        };
        // A shard other than the first finds its users seeded by whoever split the run.
        let seeds = opts.shard.as_ref().is_none_or(|s| s.info.index == 0);
        let tokens = Arc::new(seed(plan, pool.as_ref().filter(|_| seeds)).await?);
        let counter = match &pool {
            Some(pool) => DbCounter::new(pool.clone()).await,
            None => DbCounter::absent(),
        };
        let redis = match services.redis_url.as_str() {
            "" => None,
            // A cluster's masters each, the first one's URL first.
            url => RedisCounter::connect_all(
                &std::iter::once(url.to_string())
                    .chain(services.cluster.iter().map(|n| n.url.clone()))
                    .collect::<Vec<_>>(),
            )
            .await
            .map_err(|e| {
                opts.observer
                    .warn(&format!("cannot read Redis INFO: {e:#}"))
            })
            .ok(),
        };
        let machine = read_machine(pool.as_ref(), &services).await;
        let emit_redis = emit_redis(plan, &services).await?;
        let launch = Arc::new(Launch {
            exe: opts.server_exe.clone(),
            log_dir: opts.log_dir.clone(),
            database_url: services.database_url.clone(),
            redis_url: services.redis_url.clone(),
        });
        let ingest = match remote {
            Some(r) => ServerProcess::remote(
                "ingest",
                0,
                r.ingest
                    .or(r.poll)
                    .or(r.push.first().copied())
                    .ok_or_else(|| input("no ingest URL"))?,
                None,
                None,
            ),
            None => ServerProcess::start(&launch, Role::Ingest, 0, plan).await?,
        };
        Ok(Resources {
            services,
            pool,
            tokens,
            counter,
            redis,
            launch,
            ingest,
            emit_redis,
            machine,
        })
    }

    /// Stops the ingest API, closes the pool, then stops the services, without blocking a
    /// runtime thread.
    pub async fn close(mut self) {
        self.ingest.stop().await;
        if let Some(pool) = self.pool.take() {
            pool.close().await;
        }
        self.emit_redis = None;
        self.services.shutdown().await;
    }
}

/// The users' tokens, with their sessions and history stored when there is a database.
async fn seed(plan: &Plan, pool: Option<&sqlx::PgPool>) -> anyhow::Result<Vec<String>> {
    let signer = Signer::process();
    let Some(pool) = pool else {
        return Ok((1..=plan.users as i64).map(|u| signer.token(u)).collect());
    };
    let tokens = db::seed_users(pool, plan.users, signer).await?;
    db::seed_history(pool, plan.users, HISTORY_PER_USER, plan.payload_bytes)
        .await
        .map_err(|e| environment(format!("cannot seed the notifications' history: {e}")))?;
    Ok(tokens)
}

/// `[target.emit] via = "redis"`: one multiplexed connection publishes every event.
async fn emit_redis(
    plan: &Plan,
    services: &Services,
) -> anyhow::Result<Option<redis::aio::MultiplexedConnection>> {
    let Emit::Redis { url, .. } = plan.api().emit else {
        return Ok(None);
    };
    // --redis-url wins over the scenario's URL, as flags do.
    let url = (!services.redis_url.is_empty())
        .then(|| services.redis_url.clone())
        .or(url)
        .ok_or_else(|| {
            input("target.emit.via = \"redis\": give the Redis the target listens on, with target.emit.url or --redis-url")
        })?;
    let conn = async {
        let client = redis::Client::open(url.as_str())?;
        // The workload times its publishes itself: no cut at redis-rs's default 500 ms.
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        tokio::time::timeout(
            Duration::from_secs(5),
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| anyhow::anyhow!("no answer within 5 s"))?
        .map_err(anyhow::Error::from)
    };
    let conn = conn.await.map_err(|e| {
        environment(format!(
            "cannot connect to the Redis of target.emit ({}): {e:#}",
            crate::services::redact(&url)
        ))
    })?;
    Ok(Some(conn))
}
