//! The `run` and `swarm` commands: load the scenario, check the request, run it (repeats,
//! sweep points), write the result folder, print the table and the checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::cli::{CombineArgs, MergeArgs, RunArgs, SwarmArgs};
use super::progress::Progress;
use crate::error::{environment, input};
use crate::report::checks::{failures, CheckResult};
use crate::result::RunResult;
use crate::run::{execute, Observer, Remote, RunOptions, ShardSpec};
use crate::scenario::{self, Plan};

/// The `run` command: load, execute, write the result folder, print the table.
pub async fn run_command(args: RunArgs) -> anyhow::Result<()> {
    command_with(args, None, &[], None).await
}

/// The servers' own figures the flags point at: a live process per pid, a Prometheus
/// endpoint per metrics URL, no more of either than there are push instances (`push`).
async fn check_server_flags(
    args: &SwarmArgs,
    push: usize,
    push_metrics: &[String],
) -> anyhow::Result<()> {
    if args.push_pid.len() > push {
        return Err(input(format!(
            "--push-pid: {} process ids for {} push instances; give one per --push-url, in the same order",
            args.push_pid.len(),
            push
        )));
    }
    for (flag, pid) in args
        .poll_pid
        .iter()
        .map(|p| ("--poll-pid", p))
        .chain(args.push_pid.iter().map(|p| ("--push-pid", p)))
    {
        if crate::procs::cpu_seconds(*pid).is_none() {
            return Err(input(format!(
                "{flag} {pid}: no such process on this machine (or its /proc/{pid}/stat cannot be read); give the pid of the server process, e.g. from `pgrep -f server.js`"
            )));
        }
    }
    if push_metrics.len() > push {
        return Err(input(format!(
            "--push-metrics: {} URLs for {} push instances; give one per --push-url, in the same order",
            push_metrics.len(),
            push
        )));
    }
    for (flag, url) in args
        .poll_metrics
        .iter()
        .map(|u| ("--poll-metrics", u))
        .chain(push_metrics.iter().map(|u| ("--push-metrics", u)))
    {
        if !url.starts_with("http://") {
            return Err(input(format!(
                "{flag} {url}: give an http:// URL of a Prometheus endpoint, e.g. http://127.0.0.1:3000/metrics"
            )));
        }
        crate::run::probe_metrics(url)
            .await
            .map_err(|e| environment(format!("{flag} {url}: {e:#}")))?;
    }
    Ok(())
}

/// The `swarm` command: `run` against servers started elsewhere. The scenario's `[target]`
/// may give the URLs; flags win.
pub async fn swarm_command(args: SwarmArgs) -> anyhow::Result<()> {
    let api = scenario::load(args.run.scenario.as_deref(), &args.run.overrides())?.api();
    let poll = match (&args.poll_url, &api.poll_url) {
        (Some(u), _) => Some(resolve("--poll-url", u).await?),
        (None, Some(u)) => Some(resolve("target.poll.url", u).await?),
        (None, None) => None,
    };
    let mut push = Vec::new();
    for u in &args.push_url {
        push.push(resolve("--push-url", u).await?);
    }
    if push.is_empty() {
        for u in &api.push_urls {
            push.push(resolve("target.push.urls", u).await?);
        }
    }
    // A balancer's replicas: the clients go through --push-url, the servers' own figures
    // come from each replica.
    let mut push_metrics = args.push_metrics.clone();
    let push_clients = match &args.push_replicas {
        Some(name) => {
            let balancer = std::mem::take(&mut push);
            push = replicas(name).await?;
            push_metrics = push
                .iter()
                .map(|(_, a)| format!("http://{a}/metrics"))
                .collect();
            Some(balancer.iter().map(|(_, a)| *a).collect::<Vec<_>>())
        }
        None => None,
    };
    let ingest = match (&args.ingest_url, api.emit.url()) {
        (Some(u), _) => Some(resolve("--ingest-url", u).await?),
        (None, Some(u)) => Some(resolve("target.emit.url", u).await?),
        (None, None) => None,
    };
    // The clients spread over the instances given: the plan says how many there are.
    let extra = if push.is_empty() {
        Vec::new()
    } else {
        vec![format!("push.instances={}", push.len())]
    };
    let mut given: Vec<(String, std::net::SocketAddr)> =
        poll.iter().chain(&push).chain(&ingest).cloned().collect();
    if let Some(balancer) = &push_clients {
        given.extend(balancer.iter().map(|a| (format!("--push-url {a}"), *a)));
    }
    check_server_flags(&args, push.len(), &push_metrics).await?;
    let remote = Remote {
        poll: poll.map(|p| p.1),
        push: push.into_iter().map(|p| p.1).collect(),
        push_clients,
        ingest: ingest.map(|p| p.1),
        given,
        poll_pid: args.poll_pid,
        push_pids: args.push_pid,
        poll_metrics: args.poll_metrics,
        push_metrics,
    };
    let shard = match (args.shard, args.run_id) {
        (Some((index, count)), Some(run_id)) => Some(shard_spec(
            index,
            count,
            run_id,
            args.start_at,
            args.after,
            args.first_event,
            &args.run,
        )?),
        _ => None,
    };
    let shard = match shard {
        Some(spec) => Some(with_clock(spec, &remote, args.run.quiet).await),
        None => None,
    };
    command_with(args.run, Some(remote), &extra, shard).await
}

/// A shard measures its clock against the servers' (the ingest API, else the poll API,
/// else the first gateway) and reads `--start-at` on their clock, so shards on hosts whose
/// clocks differ still start together. A server without `GET /clock` (not pollpush's)
/// leaves the offset unmeasured and `--start-at` on this host's clock.
async fn with_clock(mut spec: ShardSpec, remote: &Remote, quiet: bool) -> ShardSpec {
    let Some(addr) = remote
        .ingest
        .or(remote.poll)
        .or(remote.push.first().copied())
    else {
        return spec;
    };
    match crate::run::clock::measure(addr).await {
        Ok(clock) => {
            let off = Duration::from_micros(clock.offset_us.unsigned_abs());
            spec.start_at = spec.start_at.map(|at| {
                // Server time T is this host's T - offset.
                if clock.offset_us >= 0 {
                    at - off
                } else {
                    at + off
                }
            });
            if !quiet {
                eprintln!(
                    "clock: {:+.3} ms from the servers' ({addr}), within {:.3} ms",
                    clock.offset_us as f64 / 1000.0,
                    clock.uncertainty_us as f64 / 1000.0
                );
            }
            spec.info.clock = Some(clock);
        }
        Err(e) => eprintln!(
            "warning: the clock offset to {addr} was not measured ({e:#}); --start-at is read on this host's clock"
        ),
    }
    spec
}

/// What `swarm --shard I/K` was told; refused when the scenario disagrees.
fn shard_spec(
    index: u64,
    count: u64,
    run_id: String,
    start_at: Option<u64>,
    after: Option<i64>,
    first_event: Option<u64>,
    run: &RunArgs,
) -> anyhow::Result<ShardSpec> {
    if run.repeat > 1 {
        return Err(input(
            "--shard with --repeat: a shard is one part of one run; repeat the whole sharded run instead",
        ));
    }
    let plan = scenario::load(run.scenario.as_deref(), &run.overrides())?;
    if plan.sweep.is_some() {
        return Err(input("--shard: the scenario is a sweep; shard single runs"));
    }
    if count > plan.users {
        return Err(input(format!(
            "--shard {index}/{count}: more shards than the scenario's {} users",
            plan.users
        )));
    }
    Ok(ShardSpec {
        info: crate::result::ShardInfo {
            run_id,
            index,
            count,
            clock: None,
        },
        start_at: start_at.map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
        after,
        first_event,
    })
}

/// Every address a `--push-replicas` name resolves to, in a stable order.
async fn replicas(name: &str) -> anyhow::Result<Vec<(String, std::net::SocketAddr)>> {
    let what = "--push-replicas";
    let found = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host(name.to_string()),
    )
    .await;
    let mut addrs: Vec<std::net::SocketAddr> = match found {
        Ok(Ok(addrs)) => addrs.collect(),
        _ => {
            return Err(input(format!(
                "{what} {name}: not a HOST:PORT that resolves; give the replicas' DNS name and port, e.g. gateway:8081"
            )))
        }
    };
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(input(format!(
            "{what} {name}: the name resolves to no address"
        )));
    }
    Ok(addrs
        .into_iter()
        .map(|a| (format!("{what} {name} ({a})"), a))
        .collect())
}

/// An `http://host:port` URL given by `what` (a flag or a scenario key), resolved.
async fn resolve(what: &str, url: &str) -> anyhow::Result<(String, std::net::SocketAddr)> {
    let hostport = ["http://", "ws://"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
        .unwrap_or(url)
        .trim_end_matches('/');
    let found = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host(hostport.to_string()),
    )
    .await;
    let addr = match found {
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| input(format!("{what} {url}: the name resolves to no address")))?,
        _ => {
            return Err(input(format!(
            "{what} {url}: not an http://host:port URL that resolves; e.g. http://127.0.0.1:8080"
        )))
        }
    };
    Ok((format!("{what} {url}"), addr))
}

/// The gateway instances `run` added to hold the users: (from, to).
type Raised = Option<(usize, u64)>;

/// The plan `run` or `swarm` was asked for, checked before anything starts.
fn checked_plan(
    args: &RunArgs,
    remote: Option<&Remote>,
    extra: &[String],
) -> anyhow::Result<(Plan, Raised)> {
    let overrides: Vec<String> = args
        .overrides()
        .into_iter()
        .chain(extra.iter().cloned())
        .collect();
    let mut plan = scenario::load(args.scenario.as_deref(), &overrides)?;
    if remote.is_some()
        && plan
            .sweep
            .as_ref()
            .is_some_and(|s| s.alternatives.is_some())
    {
        return Err(input(
            "[[alternatives]] change how pollpush's own servers run (the poll cache, ETags, HTTP/2), which swarm cannot do to servers it was given: run them with `pollpush run`",
        ));
    }
    // `run` adds gateway instances as an operator would, when one could not hold its
    // share of the connections; `swarm` drives the instances it was given.
    let mut raised = None;
    if let (None, Some(n)) = (remote, crate::run::instances_needed(&plan)) {
        raised = Some((plan.push.instances, n));
        let mut more = overrides.clone();
        more.push(format!("push.instances={n}"));
        plan = scenario::load(args.scenario.as_deref(), &more)?;
    }
    crate::run::check_request(
        &plan,
        remote,
        args.database_url.is_some(),
        args.redis_url.is_some(),
    )?;
    // A check on a figure that does not exist is a scenario error, caught before anything
    // starts.
    crate::report::checks::validate(&plan)?;
    Ok((plan, raised))
}

async fn command_with(
    args: RunArgs,
    remote: Option<Remote>,
    extra: &[String],
    shard: Option<ShardSpec>,
) -> anyhow::Result<()> {
    let (plan, raised) = checked_plan(&args, remote.as_ref(), extra)?;
    if let Some(r) = &remote {
        r.probe().await?;
    }
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!(
            "{}-{}",
            plan.name,
            folder_timestamp(SystemTime::now())
        ))
    });
    // Made only now, so that bad input leaves nothing behind.
    prepare_out_dir(&out)?;
    let progress = Arc::new(Progress::new(args.quiet));
    if let Some(msg) = rate_note(&plan) {
        progress.warn(&msg);
    }
    if let Some((from, to)) = raised {
        progress.note(&format!(
            "push: {} users need {to} gateway instances (at most {} connections each): push.instances raised from {from}",
            plan.users,
            crate::procs::users_per_process()
        ));
    }
    progress.note(&format!(
        "pollpush: scenario {} · {} users · modes {} · results in {}",
        plan.name,
        plan.users,
        plan.modes
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(","),
        out.display()
    ));
    let mut opts = RunOptions {
        remote,
        database_url: args.database_url.clone(),
        redis_url: args.redis_url.clone(),
        server_exe: std::env::current_exe()?,
        log_dir: Some(out.join("logs")),
        observer: progress.clone(),
        shard,
    };
    let checks = match &plan.sweep {
        None => {
            let results = repeats(&plan, args.repeat, &opts, &progress).await?;
            let summary = crate::report::write(&results, &out)?;
            if args.brief {
                println!("{}", crate::report::table::brief(&summary));
            } else {
                println!("{}", crate::report::table::render(&summary));
            }
            summary.checks.unwrap_or_default()
        }
        Some(sweep) => {
            let mut runs = Vec::new();
            for (i, point) in sweep.points.iter().enumerate() {
                let of = sweep.points.len();
                progress.note(&format!("sweep {} of {of}: {}", i + 1, point.label));
                // Each point keeps its own server logs, next to its results.
                let dir = out.join("runs").join(&point.label);
                prepare_out_dir(&dir)?;
                opts.log_dir = Some(dir.join("logs"));
                let results = repeats(&point.plan, args.repeat, &opts, &progress).await?;
                let summary = crate::report::write(&results, &dir)?;
                runs.push((point, summary));
            }
            let summary = crate::report::sweep::write(&plan, &runs, &out)?;
            println!("{}", crate::report::sweep::render_table(&summary));
            summary.checks.unwrap_or_default()
        }
    };
    println!("results: {}", out.display());
    judge(&checks)
}

/// The seed case's notifications per user per minute (20 a second for 10,000 users).
const SEED_RATE_PER_USER_PER_MIN: f64 = 0.12;

/// A warning when a run compares both modes at a per-user event rate far from the seed
/// case's without asking for it per user: the ratios then describe another workload (at
/// 500 users and 20 events/s, the database ratio falls from about 200x to 10x).
fn rate_note(plan: &Plan) -> Option<String> {
    if plan.events_per_user_per_min.is_some()
        || !(plan.modes.contains(&crate::config::Mode::Poll)
            && plan.modes.contains(&crate::config::Mode::Push))
        || plan.target.is_some()
    {
        return None;
    }
    let per_user = plan.events_per_s / plan.users as f64 * 60.0;
    let factor = per_user / SEED_RATE_PER_USER_PER_MIN;
    (!(1.0 / 3.0..=3.0).contains(&factor)).then(|| {
        format!(
            "workload: {} events/s over {} users is {per_user:.3} notifications per user per minute, {} the seed case's {SEED_RATE_PER_USER_PER_MIN}: the poll/push ratios describe that workload, not the seed's. To keep the seed's per-user rate at any size: --set workload.events_per_user_per_min={SEED_RATE_PER_USER_PER_MIN} (scenarios/workshop.toml)",
            plan.events_per_s,
            plan.users,
            if factor > 1.0 { format!("{factor:.0}x") } else { format!("1/{:.0} of", 1.0 / factor) }
        )
    })
}

/// The `combine` command: single runs into one result with repeats; its table, its checks.
pub fn combine_command(args: CombineArgs) -> anyhow::Result<()> {
    let summary = crate::report::combine(&args.runs, &args.out)?;
    if !args.quiet {
        println!("{}", crate::report::table::render(&summary));
    }
    println!(
        "results: {} ({} runs combined)",
        args.out.display(),
        args.runs.len()
    );
    judge(&summary.checks.unwrap_or_default())
}

/// The `merge` command: the shards of one run into one result folder; its table, its checks.
pub fn merge_command(args: MergeArgs) -> anyhow::Result<()> {
    let summary = crate::report::merge(&args.shards, &args.out)?;
    if !args.quiet {
        println!("{}", crate::report::table::render(&summary));
    }
    println!(
        "results: {} ({} shards merged)",
        args.out.display(),
        args.shards.len()
    );
    judge(&summary.checks.unwrap_or_default())
}

/// Prints the scenario's checks; an error (exit 1) when one failed.
/// Prints the checks' verdict; an error (exit 1) when one failed.
fn judge(checks: &[CheckResult]) -> anyhow::Result<()> {
    let failed = failures(checks);
    if !checks.is_empty() {
        println!(
            "scenario checks: {} passed, {} failed",
            checks.len() - failed.len(),
            failed.len()
        );
    }
    if failed.is_empty() {
        return Ok(());
    }
    for f in &failed {
        println!("  FAILED {f}");
    }
    Err(crate::error::UserError::CheckFailed(failed.join("; ")).into())
}

/// Runs `plan` `k` times; Ctrl-C stops the servers and services and ends the run.
async fn repeats(
    plan: &Plan,
    k: u32,
    opts: &RunOptions,
    progress: &Progress,
) -> anyhow::Result<Vec<RunResult>> {
    let mut results = Vec::new();
    for i in 0..k {
        if k > 1 {
            progress.note(&format!("repeat {} of {k}", i + 1));
        }
        let result = tokio::select! {
            res = execute(plan.clone(), opts) => res?,
            _ = crate::procs::shutdown_signal() => {
                // Returning drops the run future: servers, Postgres and Redis are stopped
                // by their guards before the process exits.
                return Err(environment("interrupted; servers and services were stopped"));
            }
        };
        results.push(result);
    }
    Ok(results)
}

pub(super) fn folder_timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace([':', '-'], "")
}

pub(super) fn prepare_out_dir(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out.join("logs")).map_err(|e| {
        input(format!(
            "cannot create the result folder {}: {e}; pass a writable folder with --out",
            out.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_user_rate_far_from_the_seeds_is_said() {
        let seed = scenario::load(None, &[]).unwrap();
        assert_eq!(rate_note(&seed), None, "the seed case is the seed case");
        let small = scenario::load(None, &["users.count=500".into()]).unwrap();
        let note = rate_note(&small).expect("500 users at 20 events/s");
        assert!(note.contains("20x the seed case's 0.12"), "{note}");
        assert!(note.contains("events_per_user_per_min=0.12"), "{note}");
        let kept = scenario::load(
            Some(Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scenarios/workshop.toml"
            ))),
            &["users.count=500".into()],
        )
        .unwrap();
        assert_eq!(rate_note(&kept), None, "the rate is kept per user");
        let push_only =
            scenario::load(None, &["users.count=500".into(), "modes=[\"push\"]".into()]).unwrap();
        assert_eq!(rate_note(&push_only), None, "no ratio to mislead");
    }
}
