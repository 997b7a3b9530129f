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
    /// Why it did not happen as the scenario says (None: it did).
    pub failed: Option<String>,
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
        let mut failed = None;
        let taken = match fault.action {
            FaultAction::KillGateway { instance, down } => {
                let i = instance
                    .unwrap_or_else(|| rng.gen_range(0..servers.len()))
                    .min(servers.len() - 1);
                fault.action = FaultAction::KillGateway {
                    instance: Some(i),
                    down,
                };
                let (taken, result) = kill_gateway(plan, servers, i, down).await;
                failed = result.err();
                taken
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
                failed = fault_service(services, action).await.err();
                None
            }
        };
        // A service fault's action returns once the service is back.
        let back = taken.is_none().then(Instant::now);
        if let Some(why) = &failed {
            tracing::error!(
                "fault {} did not happen as planned: {why}",
                fault.action.name()
            );
        }
        fired.push(Fired {
            fault,
            at,
            back,
            clients: taken,
            failed,
        });
    }
    fired
}

/// Kills gateway `i` (and starts it again after `down`); returns its clients, as the
/// round-robin balanced them (slow ones aside), and what went wrong, if anything.
async fn kill_gateway(
    plan: &Plan,
    servers: &mut [ServerProcess],
    i: usize,
    down: Option<std::time::Duration>,
) -> (Option<HashSet<u64>>, Result<(), String>) {
    let n = servers.len();
    let taken = (plan.push.slow_clients + 1..=plan.users)
        .filter(|u| (u - 1) as usize % n == i)
        .collect();
    if !servers[i].kill().await {
        return (None, Err(format!("push-{i} is not a process of this run")));
    }
    if let Some(down) = down {
        tokio::time::sleep(down).await;
        if let Err(e) = servers[i].restart().await {
            return (
                Some(taken),
                Err(format!("push-{i} could not be started again: {e:#}")),
            );
        }
    }
    (Some(taken), Ok(()))
}

/// Restarts, kills or pauses a service the run started (`check_request` refused these
/// faults unless the service is ours); returns once it is back, or why it did not happen.
async fn fault_service(services: &mut Services, action: FaultAction) -> Result<(), String> {
    let not_ours = |what: &str| format!("there is no {what} started by this run to act on");
    let done = match action {
        FaultAction::RestartPostgres { down } => match services.postgres.as_mut() {
            Some(pg) => pg.restart(down).await,
            None => return Err(not_ours("Postgres")),
        },
        FaultAction::PauseRedis { down } => match services.redis.as_mut() {
            Some(r) => r.pause(down).await,
            None => return Err(not_ours("Redis")),
        },
        FaultAction::KillRedis { down, .. } => match services.redis.as_mut() {
            Some(r) => r.restart(down).await,
            None => return Err(not_ours("Redis")),
        },
        FaultAction::KillGateway { .. } | FaultAction::DisconnectClients { .. } => Ok(()),
    };
    done.map_err(|e| format!("{e:#}"))
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
