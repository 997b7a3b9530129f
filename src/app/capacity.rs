//! The `capacity` command: for each mode, runs the scenario at more and more users (the
//! scenario's per-user event rate kept, so each user sees the same traffic) until a step
//! breaks a service level objective, then bisects between the last load held and the
//! first that broke. Each step is a whole run with its own result folder under `steps/`;
//! the report layer judges it ([`crate::report::capacity`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::cli::CapacityArgs;
use super::progress::Progress;
use super::run::{folder_timestamp, prepare_out_dir};
use crate::config::Mode;
use crate::error::{environment, input};
use crate::report::capacity::{judge, verdict, write_views};
use crate::run::{check_request, execute, Observer, RunOptions};
use crate::scenario::{self, Plan};
use crate::summary::capacity::{
    Capacity, CapacityDocument, CapacityModes, ModeSearch, Objectives, PollObjectives,
    PushObjectives, SearchSettings, Step,
};

/// What every step shares.
struct Search<'a> {
    scenario: Option<&'a Path>,
    /// The flags' overrides, except --users.
    overrides: Vec<String>,
    /// Events per second per user, from the scenario as written.
    rate_per_user: f64,
    /// The scenario gives `workload.events_per_user_per_min`.
    per_user: bool,
    base: Plan,
    out: PathBuf,
    opts: RunOptions,
    progress: Arc<Progress>,
    cores: f64,
    db_given: bool,
    redis_given: bool,
}

/// The scenario a search starts from, refused when it is not one system run by pollpush.
fn base_plan(scenario: Option<&Path>, overrides: &[String]) -> anyhow::Result<Plan> {
    let base = scenario::load(scenario, overrides)?;
    if base
        .sweep
        .as_ref()
        .is_some_and(|s| s.alternatives.is_some())
    {
        return Err(input(
            "capacity searches one system; [[alternatives]] are several: search each with its keys, e.g. `pollpush capacity scenarios/capacity.toml --modes poll --set poll.backend=redis-cache`",
        ));
    }
    if base.sweep.is_some() {
        return Err(input(
            "capacity raises the users itself: remove the scenario's [sweep] table",
        ));
    }
    if base.target.is_some() {
        return Err(input(
            "capacity runs pollpush's own servers, as `run` does; the scenario's [target] table is for `swarm`: remove it",
        ));
    }
    Ok(base)
}

pub async fn command(args: CapacityArgs) -> anyhow::Result<()> {
    let args = args.run;
    if args.repeat > 1 {
        return Err(input(
            "capacity runs each step once; --repeat applies to `run` (repeat the search instead)",
        ));
    }
    let mut overrides = args.overrides();
    overrides.retain(|o| !o.starts_with("users.count="));
    let base = base_plan(args.scenario.as_deref(), &overrides)?;
    // --users, validated as the scenario's key is.
    let start = match &args.users {
        Some(_) => scenario::load(args.scenario.as_deref(), &args.overrides())?.users,
        None => base.capacity.start,
    };
    if start > base.capacity.max {
        return Err(input(format!(
            "--users {start} is above capacity.max ({}); start below it, or raise capacity.max",
            base.capacity.max
        )));
    }
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!(
            "capacity-{}-{}",
            base.name,
            folder_timestamp(SystemTime::now())
        ))
    });
    prepare_out_dir(&out)?;
    let progress = Arc::new(Progress::new(args.quiet));
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    progress.note(&format!(
        "pollpush capacity: scenario {} · modes {} · from {start} users, ×{} a step, up to {} · results in {}",
        base.name,
        base.modes.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
        base.capacity.factor,
        base.capacity.max,
        out.display()
    ));
    let search = Search {
        scenario: args.scenario.as_deref(),
        overrides,
        rate_per_user: base.events_per_s / base.users as f64,
        per_user: base.events_per_user_per_min.is_some(),
        opts: RunOptions {
            remote: None,
            database_url: args.database_url.clone(),
            redis_url: args.redis_url.clone(),
            server_exe: std::env::current_exe()?,
            log_dir: None,
            observer: progress.clone(),
            shard: None,
        },
        out: out.clone(),
        progress,
        cores,
        db_given: args.database_url.is_some(),
        redis_given: args.redis_url.is_some(),
        base,
    };
    let mut modes = CapacityModes::default();
    for &mode in &search.base.modes {
        let found = Some(search.mode(mode, start).await?);
        match mode {
            Mode::Poll => modes.poll = found,
            Mode::Push => modes.push = found,
        }
    }
    let summary = search.document(start, modes);
    let fail = |what: &str, e: std::io::Error| {
        environment(format!("cannot write {what} in {}: {e}", out.display()))
    };
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&serde_json::to_value(&summary)?)? + "\n",
    )
    .map_err(|e| fail("summary.json", e))?;
    std::fs::write(out.join("scenario.toml"), search.base.to_toml())
        .map_err(|e| fail("scenario.toml", e))?;
    let table = write_views(&search.base, &summary.capacity, &out)?;
    println!("{table}");
    println!("results: {}", out.display());
    Ok(())
}

impl Search<'_> {
    /// The search's summary: its objectives and settings, and what each mode found.
    fn document(&self, start: u64, modes: CapacityModes) -> CapacityDocument {
        let search = self;
        let c = &search.base.capacity;
        CapacityDocument {
            schema_version: crate::summary::SCHEMA_VERSION,
            pollpush_version: env!("CARGO_PKG_VERSION").to_string(),
            capacity: Capacity {
                scenario: search.base.name.clone(),
                machine_cores: search.cores,
                poll_interval_s: search.base.poll_interval.as_secs_f64(),
                events_per_user_per_s: search.rate_per_user,
                objectives: Objectives {
                    poll: PollObjectives {
                        lateness_p99_below_share_of_interval: c.poll_lateness_share,
                        latency_max_below_interval_plus_s: c.poll_grace.as_secs_f64(),
                        errors: 0,
                        lost: 0,
                    },
                    push: PushObjectives {
                        latency_p99_ms_at_most: c.push_p99_ms,
                        lost: 0,
                        every_client_connected: true,
                    },
                },
                search: SearchSettings {
                    start,
                    max: c.max,
                    factor: c.factor,
                    refine: c.refine,
                },
                modes,
            },
        }
    }

    /// One mode: grow until a step breaks or cannot be tried, then bisect.
    async fn mode(&self, mode: Mode, start: u64) -> anyhow::Result<ModeSearch> {
        let c = &self.base.capacity;
        let mut steps = Vec::new();
        let mut stopped = None;
        let (mut held, mut broke) = (None::<u64>, None::<u64>);
        let mut users = start;
        loop {
            match self.step(mode, users).await? {
                Err(why) => {
                    stopped = Some(why);
                    break;
                }
                Ok(step) => {
                    let ok = step.held;
                    steps.push(step);
                    if !ok {
                        broke = Some(users);
                        break;
                    }
                    held = Some(users);
                    if users >= c.max {
                        break;
                    }
                    users = ((users as f64 * c.factor).ceil() as u64).min(c.max);
                }
            }
        }
        if let (Some(mut good), Some(mut bad)) = (held, broke) {
            for _ in 0..c.refine {
                // Within 5 %: closer than the noise between two runs.
                if bad - good <= (good / 20).max(1) {
                    break;
                }
                let mid = good + (bad - good) / 2;
                let Ok(step) = self.step(mode, mid).await? else {
                    break;
                };
                match step.held {
                    true => good = mid,
                    false => bad = mid,
                }
                steps.push(step);
            }
        }
        steps.sort_by_key(|s| s.users);
        let v = verdict(mode, &steps, stopped.as_deref(), c.max);
        self.progress.note(&v.verdict);
        Ok(v)
    }

    /// One step: the scenario at `users`, this mode alone. Err: it cannot be tried here
    /// (the machine cannot hold it), said with the arithmetic.
    async fn step(&self, mode: Mode, users: u64) -> anyhow::Result<Result<Step, String>> {
        let mut overrides = self.overrides.clone();
        let rate = (self.rate_per_user * users as f64 * 1000.0)
            .round()
            .max(1.0)
            / 1000.0;
        overrides.push(format!("users.count={users}"));
        overrides.push(format!("modes=[\"{mode}\"]"));
        // A scenario that keeps each user's rate needs no help; one that gives all users'
        // rate gets it scaled to these users.
        if !self.per_user {
            overrides.push(format!("workload.events_per_s={rate}"));
        }
        let load = |overrides: &[String]| {
            scenario::load(self.scenario, overrides)
                .map_err(|e| format!("{users} users cannot be described: {e:#}"))
        };
        let mut plan = match load(&overrides) {
            Ok(plan) => plan,
            Err(why) => return Ok(Err(why)),
        };
        // Gateway instances enough for their file budget, as `run` adds them.
        if let Some(n) = crate::run::instances_needed(&plan) {
            overrides.push(format!("push.instances={n}"));
            plan = match load(&overrides) {
                Ok(plan) => plan,
                Err(why) => return Ok(Err(why)),
            };
        }
        if let Err(e) = check_request(&plan, None, self.db_given, self.redis_given) {
            return Ok(Err(format!(
                "{users} users cannot be tried on this machine: {e:#}"
            )));
        }
        let dir = self.out.join("steps").join(format!("{mode}-{users}"));
        prepare_out_dir(&dir)?;
        let opts = RunOptions {
            log_dir: Some(dir.join("logs")),
            ..self.opts.clone()
        };
        opts.observer.note(&format!(
            "capacity {mode}: {users} users, {rate} events/s{}",
            match mode {
                Mode::Push => format!(", {} gateway instance(s)", plan.push.instances),
                Mode::Poll => String::new(),
            }
        ));
        let result = tokio::select! {
            res = execute(plan.clone(), &opts) => res,
            _ = crate::procs::shutdown_signal() => {
                return Err(environment("interrupted; servers and services were stopped"));
            }
        };
        let step = match result {
            Ok(result) => {
                let summary = crate::report::write(&[result], &dir)?;
                judge(mode, users, &summary, &plan, self.cores)
            }
            // A run that failed outright (no client could connect, a server that died)
            // broke the step; bad input never reaches here (checked above).
            Err(e) => Step {
                users,
                held: false,
                broken: vec![format!("the run failed: {e:#}")],
                limit: Some(format!("a failed run (see {})", dir.join("logs").display())),
                ..Step::default()
            },
        };
        Ok(Ok(step))
    }
}
