//! Faults during a window: each fires at its time, acts on a gateway, a service or the
//! clients, and records when it fired, when its service was back and whom it took down.

use std::collections::HashSet;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::servers::ServerProcess;
use crate::config::Mode;
use crate::result::Sample;
use crate::scenario::{Fault, FaultAction, Plan};
use crate::services::Services;
use crate::swarm::push::ClientFaults;

/// One fault that fired.
pub struct Fired {
    /// As it fired (a random gateway resolved to the one picked).
    pub fault: Fault,
    pub at: Instant,
    /// When its service was back (service faults only).
    pub back: Option<Instant>,
    /// The clients it took down; None for a service fault, which hits whoever it hits.
    pub clients: Option<HashSet<u64>>,
}

/// Fires each fault of `mode` at its time after `window_start`. Slow clients are never
/// picked (they do not read anyway).
pub async fn inject_faults(
    plan: &Plan,
    mode: Mode,
    services: &mut Services,
    servers: &mut [ServerProcess],
    window_start: Instant,
    clients: &Arc<ClientFaults>,
) -> Vec<Fired> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed.wrapping_add(0xfa17));
    let mut fired = Vec::new();
    for fault in plan.faults.iter().filter(|f| f.action.applies_to(mode)) {
        tokio::time::sleep_until(window_start + fault.at).await;
        let at = Instant::now();
        let mut fault = fault.clone();
        let taken = match fault.action {
            FaultAction::KillGateway { instance, down } => {
                let i = instance
                    .unwrap_or_else(|| rng.gen_range(0..servers.len()))
                    .min(servers.len() - 1);
                fault.action = FaultAction::KillGateway {
                    instance: Some(i),
                    down,
                };
                kill_gateway(plan, servers, i, down).await
            }
            FaultAction::DisconnectClients {
                clients: n,
                offline,
            } => {
                let pool: Vec<u64> = (plan.push.slow_clients + 1..=plan.users).collect();
                let picked: HashSet<u64> =
                    rand::seq::index::sample(&mut rng, pool.len(), (n as usize).min(pool.len()))
                        .into_iter()
                        .map(|u| pool[u])
                        .collect();
                let list: Vec<u64> = picked.iter().copied().collect();
                clients.take_offline(&list, crate::now_us() + offline.as_micros() as u64);
                Some(picked)
            }
            action => {
                fault_service(services, action).await;
                None
            }
        };
        // A service fault's action returns once the service is back.
        let back = taken.is_none().then(Instant::now);
        fired.push(Fired {
            fault,
            at,
            back,
            clients: taken,
        });
    }
    fired
}

/// Kills gateway `i` (and starts it again after `down`); returns its clients, as the
/// round-robin balanced them (slow ones aside).
async fn kill_gateway(
    plan: &Plan,
    servers: &mut [ServerProcess],
    i: usize,
    down: Option<std::time::Duration>,
) -> Option<HashSet<u64>> {
    let n = servers.len();
    let taken = (plan.push.slow_clients + 1..=plan.users)
        .filter(|u| (u - 1) as usize % n == i)
        .collect();
    servers[i].kill().await;
    if let Some(down) = down {
        tokio::time::sleep(down).await;
        if let Err(e) = servers[i].restart().await {
            tracing::error!("fault kill-gateway could not start push-{i} again: {e:#}");
        }
    }
    Some(taken)
}

/// Restarts, kills or pauses a service the run started (`check_request` refused these
/// faults unless the service is ours); returns once it is back.
async fn fault_service(services: &mut Services, action: FaultAction) {
    let done = match action {
        FaultAction::RestartPostgres { down } => match services.postgres.as_mut() {
            Some(pg) => pg.restart(down).await,
            None => Ok(()),
        },
        FaultAction::PauseRedis { down } => match services.redis.as_mut() {
            Some(r) => r.pause(down).await,
            None => Ok(()),
        },
        FaultAction::KillRedis { down, .. } => match services.redis.as_mut() {
            Some(r) => r.restart(down).await,
            None => Ok(()),
        },
        FaultAction::KillGateway { .. } | FaultAction::DisconnectClients { .. } => Ok(()),
    };
    if let Err(e) = done {
        tracing::error!("fault {} went wrong: {e:#}", action.name());
    }
}

/// The highest value of a per-second column over the samples that end in (from, from + 10 s].
pub fn peak_after(
    samples: &[Sample],
    from_s: f64,
    col: impl Fn(&Sample) -> Option<f64>,
) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.t_s > from_s && s.t_s <= from_s + 10.0)
        .filter_map(col)
        .reduce(f64::max)
}
