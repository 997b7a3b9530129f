//! What drives a mode: one client task per user, spread over the ramp, and the emitter
//! that takes the workload's events to the system under test.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::resources::Resources;
use super::servers::ServerProcess;
use crate::config::{Mode, Transport};
use crate::error::input;
use crate::scenario::target::Emit;
use crate::scenario::{Plan, Target};
use crate::swarm::push::PushClient;
use crate::swarm::{poller::Poller, Shared, Swarm};
use crate::workload::Emitter;

/// One client task per user of `users` (this shard's), each starting at a uniformly random point of the ramp.
#[allow(clippy::too_many_arguments)]
pub fn spawn_clients(
    mode: Mode,
    plan: &Plan,
    swarm: &mut Swarm,
    shared: &Shared,
    tokens: &[String],
    users: std::ops::RangeInclusive<u64>,
    addrs: &Arc<Vec<std::net::SocketAddr>>,
    base: Instant,
    ramp: Duration,
    after: i64,
) {
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(plan.seed.wrapping_mul(31).wrapping_add(mode as u64));
    for user in users {
        let first = base + ramp.mul_f64(rng.gen::<f64>());
        let token = tokens[user as usize - 1].clone();
        swarm.spawn(client(
            mode,
            plan,
            user,
            token,
            addrs,
            first,
            after,
            shared.clone(),
        ));
    }
}

/// One simulated user of `mode` as the plan has it (long, conditional or HTTP/2 polls; the
/// push transport, fan-out and reconnect policy): `run`'s and the demo's clients alike.
#[allow(clippy::too_many_arguments)]
pub fn client(
    mode: Mode,
    plan: &Plan,
    user: u64,
    token: String,
    addrs: &Arc<Vec<std::net::SocketAddr>>,
    first: Instant,
    after: i64,
    shared: Shared,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    match mode {
        Mode::Poll => Either::Left(
            Poller {
                user,
                token,
                interval: plan.poll_interval,
                first,
                after,
                wait: plan.poll_long,
                conditional: plan.poll_conditional,
                h2: plan.poll_http == crate::config::PollHttp::H2,
                cached: None,
            }
            .run(shared),
        ),
        Mode::Push => Either::Right(
            PushClient::new(user, token, addrs.clone(), first, after, &plan.push).run(shared),
        ),
    }
}

/// Where events go. Polling: the ingest API. Push: each through a randomly chosen gateway
/// instance, so the sender is usually not the instance that holds the user. A
/// `[target.emit]` says otherwise.
pub fn emitter(
    mode: Mode,
    plan: &Plan,
    api: &Target,
    res: &Resources,
    servers: &[ServerProcess],
) -> anyhow::Result<Emitter> {
    Ok(match api.emit.clone() {
        Emit::Pollpush { .. } => Emitter::Pollpush(match mode {
            Mode::Poll => vec![res.ingest.addr],
            // A Socket.IO server takes no POSTs: events go to the ingest API, which
            // publishes to the Redis it listens on.
            Mode::Push if plan.push.transport == Transport::SocketIo => vec![res.ingest.addr],
            Mode::Push => servers.iter().map(|s| s.addr).collect(),
        }),
        Emit::Http {
            method, path, body, ..
        } => Emitter::Http {
            addr: res.ingest.addr,
            method: method
                .parse()
                .map_err(|_| input(format!("target.emit.method: {method:?}")))?,
            path,
            body,
        },
        Emit::Redis {
            channel, message, ..
        } => Emitter::Redis {
            conn: res
                .emit_redis
                .clone()
                .ok_or_else(|| input("target.emit.via = \"redis\" needs a Redis to publish to"))?,
            channel,
            message,
        },
    })
}
