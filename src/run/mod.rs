//! The run engine: the services, the server processes, then per mode a ramp, a measurement
//! window with the workload, a drain, and the reconciled figures, as a
//! [`crate::result::RunResult`]. It waits by itself and tells an [`Observer`] where it is;
//! it never prints or formats for humans.
//!
//! - [`setup`]: what a run is given, and what it refuses before starting; [`limits`]: what
//!   this machine can give it;
//! - [`resources`]: what every mode shares (services, tokens, counters, ingest);
//! - [`mode`]: one mode, phase by phase; [`faults`] beside its window;
//! - [`shards`]: a run's users split over several swarm processes, merged exactly;
//! - [`servers`], [`snapshot`], [`sampler`], [`usage`], [`machine`]: processes and readings.

pub mod clock;
pub mod demo;
mod faults;
mod limits;
mod load;
mod machine;
mod mode;
mod observe;
mod resources;
mod sampler;
mod servers;
mod setup;
mod shards;
mod snapshot;
mod usage;

use std::time::SystemTime;

pub use limits::instances_needed;
pub use observe::{Observer, Phase, Silent, Tick};
pub use resources::HISTORY_PER_USER;
pub use servers::probe_metrics;
pub use setup::{check_request, Remote, RunOptions, ShardSpec};
pub use shards::{Part, SHARD_EVENT_STRIDE};

use crate::result::RunResult;
use crate::scenario::Plan;

/// Runs every mode of `plan` and returns the measured figures.
pub async fn execute(plan: Plan, opts: &RunOptions) -> anyhow::Result<RunResult> {
    let started_at = SystemTime::now();
    crate::procs::raise_nofile_limit();
    check_request(
        &plan,
        opts.remote.as_ref(),
        opts.database_url.is_some(),
        opts.redis_url.is_some(),
    )?;
    let mut res = resources::Resources::prepare(&plan, opts).await?;
    let mut modes = Vec::new();
    let mut first_event = opts.shard.as_ref().and_then(|s| s.first_event).unwrap_or(1);
    for &mode in &plan.modes {
        let result = mode::run_mode(mode, &plan, opts, &mut res, first_event).await?;
        first_event += result.workload.emitted + 1;
        modes.push(result);
    }
    let (machine, db_source) = (res.machine.clone(), res.counter.source.as_str().to_string());
    res.close().await;
    Ok(RunResult {
        plan,
        started_at,
        machine,
        db_source,
        shard: opts.shard.as_ref().map(|s| s.info.clone()),
        modes,
    })
}
