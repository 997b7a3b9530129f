//! The command line: clap derive types whose `///` docs are the `--help` text, and dispatch.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Choice, Fanout, PollAuth, PollBackend, Role, SlowPolicy};
use crate::error::input;

mod serve_args;
pub use serve_args::ServeArgs;

/// Prove with real servers and real numbers why periodic HTTP polling fails at scale, and
/// what Redis pub/sub push buys.
#[derive(Debug, Parser)]
#[command(name = "pollpush", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: start Postgres, Redis and the servers, drive them with a swarm of
    /// simulated users in each mode, print a side-by-side table and write a result folder.
    Run(RunArgs),
    /// Run one system under test as a server process (`run` starts these by itself).
    Serve(ServeArgs),
    /// Drive servers started elsewhere (`pollpush serve`, or any system a scenario's
    /// `[target]` table describes: a Socket.IO server, your own API) with a scenario's swarm
    /// and workload: the same measurements, table and result folder as `run`, with the
    /// server-side figures that cannot be read from here left null. With --database-url
    /// the swarm creates its users' sessions there and reads Postgres's own counters;
    /// without it, database figures are null.
    Swarm(Box<SwarmArgs>),
    /// Compare two runs of one scenario figure by figure; exit 1 on a regression, 2 on bad
    /// input. `--list RESULT` prints the figures a check or threshold can name instead.
    Compare(CompareArgs),
    /// Combine single runs of one scenario, measured apart (e.g. alternating two builds in
    /// one CI job), into one result folder with repeats, as `run --repeat K` writes it:
    /// latency from every run's histogram added up, losses and errors the worst run's,
    /// every other figure the median. Exit 1 if the combined result fails the scenario's
    /// checks.
    Combine(CombineArgs),
    /// Merge the folders that the shards of one run wrote (`swarm --shard I/K`, e.g. on
    /// several hosts) into one result folder, as if one swarm had held every user: counts
    /// and each second's client rates summed, latency histograms added exactly, the servers'
    /// side from shard 0. Refuses (exit 2) folders of different runs or scenarios, a
    /// missing or repeated shard.
    Merge(MergeArgs),
    /// Find the largest load each mode holds on this machine: raise the users step by
    /// step (the scenario's per-user event rate kept) until a service level objective
    /// breaks, then bisect; name the component that saturated first. Objectives (the
    /// scenario's [capacity] table): poll: polls leave on schedule (lateness p99 under 10 %
    /// of the interval), no errors, every notification within the interval plus 0.5 s;
    /// push: p99 <= 50 ms, nothing lost, every client connected. Writes a table, a plot and
    /// summary.json (under `capacity`), each step's result folder under steps/.
    Capacity(CapacityArgs),
    /// A live run for a room: polling and push side by side at once, each on its own
    /// Postgres, Redis and servers, behind a page (printed, and opened where there is a
    /// desktop) whose charts update once a second: Postgres's own query count, requests,
    /// bytes, CPU of each component, and each delivered notification as a dot at its
    /// latency. Its controls change the users, poll interval, notification rate, gateway
    /// instances and fan-out while it runs; its buttons kill Redis or a gateway, drop the
    /// push clients, or notify everyone now. Ctrl-C (or --duration) ends it and writes the
    /// seconds it showed to the result folder (timeseries.csv, frames.json).
    Demo(DemoArgs),
    /// Fit each mode's costs per unit of work from measured runs (best: a sweep over users
    /// at two event rates, `pollpush run scenarios/model.toml`): Postgres CPU per poll and
    /// per insert, server CPU per poll, per connection and per delivered notification,
    /// Redis CPU per publish, bytes per poll and per notification, memory per connection.
    /// Checks the fit against the runs at the most users (fitted without them), then
    /// projects both modes from 1,000 to 10,000,000 users: cores of each component,
    /// bandwidth, memory and, with --price, a monthly cost; and how the poll/push ratios move
    /// with users, poll interval and event rate. Every projected figure is a prediction.
    /// Writes model.md, model.json and two plots. Refuses (exit 2) runs of different
    /// systems or machines, and too few runs to fit.
    Model(ModelArgs),
    /// Re-render the plots, report.md and report.html of a result folder from its saved data
    /// (summary.json, scenario.toml, latency-<mode>.hgrm, timeseries.csv).
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct SwarmArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// The poll API (`serve --role poll` or `all`), e.g. http://10.0.0.5:8080; needed
    /// when the scenario runs mode poll. Wins over the scenario's target.poll.url.
    #[arg(long, value_name = "URL")]
    pub poll_url: Option<String>,

    /// A push gateway instance (`serve --role push` or `all`); repeat it, or separate
    /// with commas, for several: clients are balanced over them round-robin. Needed when
    /// the scenario runs mode push. Wins over the scenario's target.push.urls.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub push_url: Vec<String>,

    /// Where events go in poll mode (`serve --role ingest` or `all`); default: the poll
    /// URL. In push mode events go through the gateway instances. With
    /// `[target.emit] via = "http"`, the API that takes events. Wins over target.emit.url.
    #[arg(long, value_name = "URL")]
    pub ingest_url: Option<String>,

    /// The process id of the poll server, when it runs on this machine: its CPU and
    /// memory are then measured like those of a server `run` starts (otherwise null).
    #[arg(long, value_name = "PID")]
    pub poll_pid: Option<u32>,

    /// The process ids of the push instances on this machine, in the order of
    /// --push-url (repeat it, or separate with commas): their CPU (and its part in the
    /// kernel) and memory are then measured (otherwise null).
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    pub push_pid: Vec<u32>,

    /// The Prometheus endpoint of the poll server (e.g. http://10.0.0.5:8080/metrics),
    /// read at both edges of the window for its own process_cpu_seconds_total and
    /// process_resident_memory_bytes: its CPU and memory are then measured when it runs
    /// elsewhere. Not with --poll-pid.
    #[arg(long, value_name = "URL", conflicts_with = "poll_pid")]
    pub poll_metrics: Option<String>,

    /// The Prometheus endpoints of the push instances, in the order of --push-url (repeat
    /// it, or separate with commas), read like --poll-metrics. Not with --push-pid.
    #[arg(
        long,
        value_name = "URL",
        value_delimiter = ',',
        conflicts_with = "push_pid"
    )]
    pub push_metrics: Vec<String>,

    /// The gateway replicas behind a balancer, as one DNS name that resolves to each of them
    /// (a Compose service run with --scale, a Kubernetes headless Service), e.g.
    /// gateway:8081. The clients still connect through --push-url (the balancer); each
    /// replica's own /stats and /metrics are read at its address, so the servers' figures
    /// (and their CPU and memory) are every replica's, and push.instances is their number.
    #[arg(
        long,
        value_name = "HOST:PORT",
        requires = "push_url",
        conflicts_with_all = ["push_pid", "push_metrics"]
    )]
    pub push_replicas: Option<String>,

    /// Run shard I of K (0-based) of one run: this swarm takes users
    /// I*N/K+1..=(I+1)*N/K of the scenario's N and their share of the events, and writes
    /// shard.json beside its result for `pollpush merge`. Shard 0 measures the servers (give
    /// it --database-url and the pids); start every shard with the same --run-id and
    /// --start-at.
    #[arg(long, value_name = "I/K", value_parser = parse_shard, requires = "run_id")]
    pub shard: Option<(u64, u64)>,

    /// The run's id, the same for all its shards (any word): merge refuses shards whose ids
    /// differ.
    #[arg(long, value_name = "ID", requires = "shard")]
    pub run_id: Option<String>,

    /// When the shard's clients start, in milliseconds since the Unix epoch, the same for
    /// every shard (e.g. `$(( $(date +%s%3N) + 5000 ))`); default: at once.
    #[arg(long, value_name = "MS", requires = "shard")]
    pub start_at: Option<u64>,

    /// Notifications up to this id existed before the run: the newest id of the seeded
    /// history, for a shard that cannot read it from the database (`run` sets it for its
    /// own shards; docs/commands.md, "Large runs").
    #[arg(long, value_name = "ID", requires = "shard")]
    pub after: Option<i64>,

    /// The mode's first event number before the shard's offset (set by `run`).
    #[arg(long, value_name = "N", requires = "shard", hide = true)]
    pub first_event: Option<u64>,
}

/// `I/K` with I < K.
fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("{text:?}: give I/K, shard I (from 0) of K, e.g. 0/4");
    let (i, k) = text.split_once('/').ok_or_else(bad)?;
    let (i, k): (u64, u64) = (
        i.trim().parse().map_err(|_| bad())?,
        k.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || i >= k {
        return Err(format!("{text:?}: I must be below K (shards 0 to K-1)"));
    }
    Ok((i, k))
}

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// The scenario, its options and --set as for `run`; --users sets the first step
    /// (capacity.start), --modes which modes are searched.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The folders of every shard of one run (each has shard.json).
    #[arg(required = true, num_args = 1..)]
    pub shards: Vec<PathBuf>,

    /// The result folder to write.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Leave the table out: print only where the result went, the checks and errors.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CombineArgs {
    /// Result folders of single runs of one scenario on one machine (two or more).
    #[arg(required = true, num_args = 2..)]
    pub runs: Vec<PathBuf>,

    /// The result folder to write.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Leave the table out (the result folder's report.md has it): print only where the
    /// result went, the checks and errors.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Scenario whose systems the demo runs (payload, headers, transport, reconnects);
    /// its users, interval and rate are the knobs below. Default: the built-in seed case.
    pub scenario: Option<PathBuf>,

    /// Override a scenario key, as `run --set` does. Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Users in each lane at the start.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub users: u64,

    /// The most users the page may ask for (each lane seeds them at the start; both
    /// lanes' clients share this process's sockets).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub max_users: u64,

    /// Poll interval at the start.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub interval: String,

    /// Notifications per user per minute, kept per user when the users change (0.12 is the
    /// seed case: 20 a second for 10,000 users).
    #[arg(long, value_name = "N", default_value_t = 0.12)]
    pub rate: f64,

    /// Push gateway instances at the start.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub instances: usize,

    /// Push fan-out at the start: broadcast or per-user.
    #[arg(long, value_name = "FANOUT", default_value = "broadcast")]
    pub fanout: String,

    /// Address the page listens on. Beyond loopback only with --public.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: String,

    /// Let --bind be an address others can reach (a room's laptops watching the page):
    /// anyone who reaches it can change the run and kill its services.
    #[arg(long)]
    pub public: bool,

    /// Port of the page; 0 picks a free one (printed).
    #[arg(long, value_name = "P", default_value_t = 0)]
    pub port: u16,

    /// Stop after this long (default: at Ctrl-C).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Result folder for the seconds shown. Default: results/demo-<UTC timestamp>/
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Do not open the page in a browser, only print its address.
    #[arg(long)]
    pub no_open: bool,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Result folders of one system on one machine: a sweep's top folder, or single runs
    /// at different loads. They may differ in users, event rate and poll interval only.
    #[arg(required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,

    /// Where to write model.md, model.json and the plots [default: <first RUN>/model].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Project polling at this interval [default: the interval of the calibration runs].
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,

    /// Project this many notifications per user per minute [default: the per-user rate of
    /// the calibration runs at the most users].
    #[arg(long, value_name = "N")]
    pub events_per_user_per_min: Option<f64>,

    /// Prices for a monthly cost, all three: core-hour (a core around the clock), gb-month
    /// (servers' memory), tb-egress (bytes to and from the clients), e.g.
    /// `--price core-hour=0.04,gb-month=3,tb-egress=90`.
    #[arg(long, value_name = "NAME=VALUE", value_delimiter = ',')]
    pub price: Vec<String>,

    /// The most cores one Postgres server is taken to have: projections past it are marked
    /// as needing more than one database.
    #[arg(long, value_name = "CORES", default_value_t = 64.0)]
    pub max_db_cores: f64,
}

impl ModelArgs {
    pub fn options(&self) -> anyhow::Result<crate::report::model::Options> {
        let interval_s = self
            .interval
            .as_deref()
            .map(|t| duration_flag("--interval", t, "100ms", "5s").map(|d| d.as_secs_f64()))
            .transpose()?;
        if let Some(r) = self.events_per_user_per_min {
            if !(r.is_finite() && r >= 0.0) {
                return Err(input(format!(
                    "--events-per-user-per-min {r}: write a rate >= 0, e.g. 0.12 (the seed case: 20 events/s for 10,000 users)"
                )));
            }
        }
        if !(self.max_db_cores.is_finite() && self.max_db_cores > 0.0) {
            return Err(input(format!(
                "--max-db-cores {}: write a number of cores > 0, e.g. 64",
                self.max_db_cores
            )));
        }
        Ok(crate::report::model::Options {
            interval_s,
            events_per_user_per_min: self.events_per_user_per_min,
            max_db_cores: self.max_db_cores,
            prices: crate::report::model::parse_prices(&self.price)?,
        })
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A result folder written by `pollpush run` (a sweep's top folder too).
    pub dir: PathBuf,
}

/// Output format of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned table for terminals and logs
    Text,
    /// A table for a pull request comment or $GITHUB_STEP_SUMMARY
    Markdown,
    /// Every row, machine readable
    Json,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The reference run: a result folder or its summary.json.
    pub baseline: PathBuf,

    /// The run to judge: a result folder or its summary.json. Thresholds in the `[compare]`
    /// table of its scenario.toml apply.
    #[arg(required_unless_present = "list")]
    pub current: Option<PathBuf>,

    /// Print every figure of the one result given (the first argument) that a `[checks]`
    /// entry, `--max-regression` or a `[compare]` table can name: its value, which
    /// direction is worse, and the default limit `compare` applies (or none: shown
    /// without a verdict). With --format json, an array of objects (docs/ci.md).
    #[arg(long, conflicts_with = "current")]
    pub list: bool,

    /// Allowed regression of a figure in percent, e.g. push.latency_ms.p99=50 or
    /// '*.latency_ms.p99=50' (`*` matches anything). Repeatable; wins over the defaults
    /// and the scenario's [compare] table, and drops the default's absolute noise floor.
    #[arg(long, value_name = "METRIC=PCT")]
    pub max_regression: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// Compare runs measured on different machines (cores, memory, OS, Postgres or Redis
    /// version) with a warning, instead of refusing (exit 2).
    #[arg(long)]
    pub allow_other_machine: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML). Without one, the built-in copy of scenarios/seed.toml runs:
    /// the blog post's case, 10,000 users polling every 5 s against push.
    pub scenario: Option<PathBuf>,

    /// Result folder. Default: results/<scenario>-<UTC timestamp>/
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Measurement window per mode, e.g. 30s or 2m (shorthand for --set duration=...).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Number of simulated users (shorthand for --set users.count=N).
    #[arg(long, value_name = "N")]
    pub users: Option<String>,

    /// Modes to run, comma separated: poll, push (shorthand for --set modes=[...]).
    #[arg(long, value_name = "MODES")]
    pub modes: Option<String>,

    /// Override any scenario key; the value is read as a TOML value and validated exactly
    /// like the file, e.g. --set poll.interval="2s" --set workload.events_per_s=50.
    /// Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Use this PostgreSQL instead of starting an ephemeral one (swarm: the deployment's
    /// database, read for its counters; optional).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Use this Redis instead of starting an ephemeral one (swarm: the deployment's Redis,
    /// read for its INFO, and where `[target.emit] via = "redis"` publishes; optional).
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_name = "URL")]
    pub redis_url: Option<String>,

    /// Print only the final table and errors (for CI logs).
    #[arg(long)]
    pub quiet: bool,

    /// Print the five headline figures (database queries, empty polls, latency p50,
    /// bandwidth, CPU) instead of the whole table: it fits a projector. The result folder
    /// has everything.
    #[arg(long)]
    pub brief: bool,

    /// Run the scenario K times. The summary's latency comes from every repeat's histogram
    /// added up; lost events and errors from the worst repeat; every other figure is the
    /// median of the repeats. It keeps each repeat's figures, which `compare` uses to tell
    /// a regression from noise.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
}

impl RunArgs {
    /// The shorthand flags and every `--set`, in order, as `key=value` overrides.
    pub fn overrides(&self) -> Vec<String> {
        let mut all = Vec::new();
        if let Some(d) = &self.duration {
            all.push(format!("duration={}", toml_string(d)));
        }
        if let Some(u) = &self.users {
            all.push(format!("users.count={u}"));
        }
        if let Some(m) = &self.modes {
            let list: Vec<String> = m.split(',').map(|s| toml_string(s.trim())).collect();
            all.push(format!("modes=[{}]", list.join(",")));
        }
        all.extend(self.set.iter().cloned());
        all
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A duration flag of at least `min`; a clear error otherwise.
pub(super) fn duration_flag(
    flag: &str,
    text: &str,
    min: &str,
    example: &str,
) -> anyhow::Result<std::time::Duration> {
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

/// The configuration's choices as clap values: their names and help come from
/// [`Choice::ALL`], so the command line and the scenario files take the same words.
macro_rules! value_enum {
    ($($t:ty),*) => {$(
        impl ValueEnum for $t {
            fn value_variants<'a>() -> &'a [Self] {
                static VARIANTS: std::sync::OnceLock<Vec<$t>> = std::sync::OnceLock::new();
                VARIANTS.get_or_init(|| <$t as Choice>::ALL.iter().map(|c| c.0).collect())
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                let (_, name, help) = <$t as Choice>::ALL.iter().find(|c| c.0 == *self)?;
                Some(PossibleValue::new(*name).help(*help))
            }
        }
    )*};
}

value_enum!(Role, PollAuth, PollBackend, Fanout, SlowPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PushConfig, ServeConfig};

    #[test]
    fn shorthands_become_overrides_in_order() {
        let cli = Cli::try_parse_from([
            "pollpush",
            "run",
            "--duration",
            "10s",
            "--users",
            "500",
            "--modes",
            "poll, push",
            "--set",
            "poll.interval=\"2s\"",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            args.overrides(),
            vec![
                "duration=\"10s\"",
                "users.count=500",
                "modes=[\"poll\",\"push\"]",
                "poll.interval=\"2s\""
            ]
        );
    }

    #[test]
    fn serve_role_is_required_and_checked() {
        assert!(Cli::try_parse_from(["pollpush", "serve"]).is_err());
        assert!(Cli::try_parse_from(["pollpush", "serve", "--role", "bogus"]).is_err());
        assert!(Cli::try_parse_from(["pollpush", "serve", "--role", "push"]).is_ok());
    }

    fn parse_serve(args: &[String]) -> ServeConfig {
        let argv = ["pollpush", "serve"]
            .into_iter()
            .map(String::from)
            .chain(args.iter().cloned());
        let Command::Serve(serve) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not serve")
        };
        serve.config().unwrap()
    }

    #[test]
    fn a_serve_config_survives_its_own_flags() {
        use crate::config::{Fanout, SlowPolicy};
        let defaults = ServeConfig::new(Role::Push);
        assert_eq!(parse_serve(&defaults.to_args()), defaults);
        assert_eq!(parse_serve(&["--role".into(), "push".into()]), defaults);
        let changed = ServeConfig {
            role: Role::All,
            bind: "0.0.0.0".parse().unwrap(),
            port: 8080,
            instance_id: "push-3".into(),
            poll_auth: PollAuth::None,
            pool_size: 3,
            push: PushConfig {
                fanout: Fanout::PerUser,
                send_queue: 7,
                slow_policy: SlowPolicy::Drop,
                ping_interval: std::time::Duration::from_millis(1500),
            },
            header_timeout: std::time::Duration::from_secs(90),
            long_poll: true,
            poll_backend: PollBackend::RedisCache,
            conditional: true,
            http2: true,
        };
        assert_eq!(parse_serve(&changed.to_args()), changed);
    }
}
