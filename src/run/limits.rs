//! What this machine can give a run (open files per process, ephemeral ports, memory), and
//! the refusal, before anything starts, of a run that would need more, with the arithmetic.

use crate::config::Mode;
use crate::error::input;
use crate::procs::{file_budget, users_per_process};
use crate::scenario::{Plan, MAX_INSTANCES};

/// The gateway instances a run of its own servers needs so that none holds more than its
/// file budget (one per [`users_per_process`] users, as many as the plan has at least);
/// None when the plan's are enough, or it has no push mode.
pub fn instances_needed(plan: &Plan) -> Option<u64> {
    let have = plan.push.instances as u64;
    let need = plan
        .users
        .div_ceil(users_per_process())
        .clamp(have, MAX_INSTANCES);
    (plan.modes.contains(&Mode::Push) && plan.users.div_ceil(have) > file_budget() && need > have)
        .then_some(need)
}

/// Refuses, before anything starts, a run this machine cannot hold, with the arithmetic:
/// more sockets in one process than it may open, a poll API or gateway instance with more
/// connections than that, more memory than is free, or what a sharded run does not do.
/// `own`: the run starts its own servers (`run`), whose connections it can count too.
pub fn check_resources(plan: &Plan, own: bool) -> anyhow::Result<()> {
    let users = plan.users;
    let k = plan.shard_count();
    let per_shard = users.div_ceil(k);
    let budget = file_budget();
    if per_shard > budget {
        return Err(input(format!(
            "swarm.shards = {k} gives one swarm process {per_shard} users; a process may hold {budget} sockets here (the open-files limit, less room for its other files): set swarm.shards to {} or more, or remove the key",
            users.div_ceil(budget)
        )));
    }
    if own && plan.modes.contains(&Mode::Poll) && users > budget {
        return Err(input(format!(
            "mode poll with {users} users: the poll API is one process and every poller keeps a connection to it, {users} sockets; a process may hold {budget} here: use at most {budget} users with mode poll, or run push alone (--modes push)"
        )));
    }
    let instances = plan.push.instances as u64;
    if own && plan.modes.contains(&Mode::Push) && users.div_ceil(instances) > budget {
        let need = users.div_ceil(budget);
        let fix = match need <= MAX_INSTANCES {
            true => format!("set push.instances to {need} or more"),
            false => format!(
                "a run may start {MAX_INSTANCES} instances, {} users on one machine: use fewer users",
                MAX_INSTANCES * budget
            ),
        };
        return Err(input(format!(
            "mode push with {users} users over push.instances = {instances}: {} connections per gateway instance; a process may hold {budget} here: {fix}",
            users.div_ceil(instances)
        )));
    }
    if let Some(range) = local_port_range() {
        // Each connection takes an ephemeral port per destination (address and port), and
        // push clients spread over the instances (those given to `swarm` too). The whole
        // run's connections count: its shards share this machine's ports.
        let per_destination = match plan.modes.contains(&Mode::Push) {
            true => users.div_ceil(instances),
            false => users,
        };
        if per_destination > range {
            return Err(input(format!(
                "{per_destination} connections to one server address would need as many ephemeral ports; this machine has {range} (net.ipv4.ip_local_port_range): spread them over more gateway instances (push.instances)"
            )));
        }
    }
    if k > 1 {
        if let Some(f) = plan.faults.first() {
            return Err(input(format!(
                "the fault {} acts on one run's clients and services; a run split over {k} swarm processes (swarm.shards, or more than {} users) takes no faults yet: remove [[faults]], or use fewer users",
                f.action.name(),
                users_per_process()
            )));
        }
        // Shard 0 has users 1..=N/K, and the slow ones are the first users.
        let first = users / k;
        if plan.push.slow_clients > first {
            return Err(input(format!(
                "push.slow_clients = {} is more than the first swarm process's {} users (of {users} over {k} processes): use at most that many",
                plan.push.slow_clients,
                first
            )));
        }
    }
    check_memory(plan, own)
}

/// What one simulated client costs the swarm, and one connection a gateway, measured on
/// this machine with 10,000 WebSocket clients (the performance issue's figures, rounded
/// up): the memory check's estimate, not a measurement of the run.
const SWARM_BYTES_PER_CLIENT: u64 = 24 * 1024;
const GATEWAY_BYTES_PER_CONNECTION: u64 = 12 * 1024;

fn check_memory(plan: &Plan, own: bool) -> anyhow::Result<()> {
    let Some(available) = mem_available_bytes() else {
        return Ok(());
    };
    let per_user = SWARM_BYTES_PER_CLIENT
        + match own && plan.modes.contains(&Mode::Push) {
            true => GATEWAY_BYTES_PER_CONNECTION,
            false => 0,
        };
    let need = plan.users * per_user;
    if need > available / 10 * 8 {
        return Err(input(format!(
            "{} users at about {} KB each (swarm and gateway) need about {} MB; this machine has {} MB available, and a run may take 80 % of it: use fewer users",
            plan.users,
            per_user / 1024,
            need >> 20,
            available >> 20
        )));
    }
    Ok(())
}

fn mem_available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn local_port_range() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|p| p.parse::<u64>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    Some(hi.saturating_sub(lo) + 1)
}
