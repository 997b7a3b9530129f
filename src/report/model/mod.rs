//! `pollpush model`: from measured runs, each mode's costs per unit of work (Postgres CPU
//! per poll and per insert, server CPU per request, per connection and per delivered
//! notification, Redis CPU per publish, bytes per poll and per notification, memory per
//! connection), checked against a run it was not fitted on, then projected from 10^3 to
//! 10^7 users. Every projected figure is a prediction and says so; the calibration runs and
//! their machine are named beside it.

mod fit;
mod plot;
mod render;

use std::path::{Path, PathBuf};

use crate::summary::{Machine, ModeSummary, Modes, Summary};

use crate::error::input;
pub use fit::Fit;
pub use render::{json, markdown, text};

/// The units of work a cost is priced by.
pub const UNITS: [&str; 4] = ["poll", "insert", "delivered notification", "connection"];
const POLLS: usize = 0;
const INSERTS: usize = 1;
const DELIVERED: usize = 2;
const CONNECTIONS: usize = 3;

/// A cost the model fits: its key, its label, the figure of a mode's summary it is, its unit
/// of measure, whether it has a fixed part, and the units that drive it in each mode.
pub struct Cost {
    pub key: &'static str,
    pub label: &'static str,
    figure: fn(&ModeSummary) -> Option<f64>,
    pub measure: &'static str,
    intercept: bool,
    poll: &'static [usize],
    push: &'static [usize],
}

pub const COSTS: &[Cost] = &[
    Cost {
        key: "db_cores",
        label: "Postgres CPU",
        figure: |m| m.cpu.db_cores,
        measure: "cores",
        intercept: true,
        poll: &[POLLS, INSERTS],
        push: &[INSERTS],
    },
    Cost {
        key: "server_cores",
        label: "server CPU (poll API / gateways, with ingest)",
        figure: |m| m.cpu.server_cores,
        measure: "cores",
        intercept: true,
        poll: &[POLLS],
        push: &[CONNECTIONS, DELIVERED],
    },
    Cost {
        key: "ingest_cores",
        label: "ingest CPU (of the server CPU)",
        figure: |m| m.cpu.ingest_cores,
        measure: "cores",
        intercept: true,
        poll: &[INSERTS],
        push: &[INSERTS],
    },
    Cost {
        key: "redis_cores",
        label: "Redis CPU",
        figure: |m| m.cpu.redis_cores,
        measure: "cores",
        intercept: true,
        poll: &[INSERTS],
        push: &[INSERTS],
    },
    Cost {
        key: "bytes_per_s",
        label: "bandwidth",
        figure: |m| m.bandwidth.bytes_per_s,
        measure: "bytes/s",
        intercept: false,
        poll: &[POLLS, DELIVERED],
        push: &[CONNECTIONS, DELIVERED],
    },
    Cost {
        key: "server_rss_mb",
        label: "server memory",
        figure: |m| m.memory.server_rss_mb,
        measure: "MB",
        intercept: true,
        poll: &[CONNECTIONS],
        push: &[CONNECTIONS],
    },
];

/// Sweep parameters that change the work, not the system: a sweep over anything else
/// (instances, fan-out, a backend) measures several systems and cannot be fitted as one.
const WORK_PARAMS: &[&str] = &["users.count", "workload.events_per_s", "poll.interval"];

/// One measured mode of one run: its units of work and its costs.
#[derive(Debug, Clone)]
pub struct Point {
    pub mode: String,
    pub label: String,
    pub users: f64,
    pub units: [f64; 4],
    pub costs: Vec<Option<f64>>,
    /// The events per user per second the run asked for (its draw may differ a little).
    pub asked_rate: Option<f64>,
}

/// The fitted costs of one mode, the check against the largest runs, and the scale it
/// was calibrated on.
pub struct ModeModel {
    pub mode: String,
    pub points: Vec<Point>,
    /// One fit per entry of [`COSTS`] (None when no run measured that cost).
    pub fits: Vec<Option<Fit>>,
    /// Units charged at an upper bound: the same in every run, so their price cannot be
    /// told from the fixed part; the whole fixed part is charged to them.
    pub bounded: Vec<(usize, usize)>,
    /// Fitted without the runs at the most users, then asked to predict them.
    pub check: Option<Check>,
}

/// How far a measured CPU figure can be from the truth by the counting alone: /proc counts
/// each process's CPU in 10 ms ticks, so over a 15 s window each process reads up to 0.0007
/// cores off, and Postgres alone is a dozen processes. A prediction this close is as good
/// as the measurement can tell.
pub const CPU_RESOLUTION_CORES: f64 = 0.01;

/// The largest error the check accepts: 15 %, or the measurement's resolution for CPU.
pub const CHECK_TOLERANCE: f64 = 0.15;

/// Whether a prediction of cost `key` passes the check against `measured`.
pub fn within(key: &str, predicted: f64, measured: f64) -> bool {
    let floor = if key.ends_with("_cores") {
        CPU_RESOLUTION_CORES
    } else {
        0.0
    };
    let diff = (predicted - measured).abs();
    diff <= floor || diff <= CHECK_TOLERANCE * measured.abs()
}

pub struct Check {
    pub held_out: Vec<Point>,
    pub fitted_on: usize,
    /// (cost index, predicted, measured) for each held-out run.
    pub rows: Vec<(usize, String, f64, f64)>,
}

/// Everything `model` read and fitted.
pub struct Model {
    pub sources: Vec<PathBuf>,
    pub scenario: String,
    pub machine: String,
    pub modes: Vec<ModeModel>,
    /// The projection's poll interval and per-user event rate.
    pub interval_s: f64,
    pub events_per_user_per_s: f64,
    /// Largest users measured.
    pub max_users: f64,
    pub fanout: String,
    pub max_db_cores: f64,
    pub prices: Option<Prices>,
}

#[derive(Debug, Clone, Copy)]
pub struct Prices {
    pub core_hour: f64,
    pub gb_month: f64,
    pub tb_egress: f64,
}

/// What the command line asks of the projection.
pub struct Options {
    pub interval_s: Option<f64>,
    pub events_per_user_per_min: Option<f64>,
    pub max_db_cores: f64,
    pub prices: Option<Prices>,
}

/// Reads the summaries, checks that they describe one system on one machine, and fits.
pub fn build(dirs: &[PathBuf], opts: &Options) -> anyhow::Result<Model> {
    let mut summaries = Vec::new();
    for d in dirs {
        summaries.push((d.clone(), super::compare::read(d)?));
    }
    let (first_dir, first) = &summaries[0];
    for (dir, s) in &summaries[1..] {
        let diffs = super::compare::machine_differences(first, s);
        if !diffs.is_empty() {
            return Err(input(format!(
                "{} and {} were measured on different machines ({}): a model is calibrated on one machine; give runs of one machine",
                first_dir.display(),
                dir.display(),
                diffs.join("; ")
            )));
        }
        const WORK: &[&str] = &["users", "events_per_s", "poll_interval_s", "duration_s"];
        if let Some((key, a, b)) = first.plan.first_difference(&s.plan, WORK) {
            return Err(input(format!(
                "{} and {} ran different systems (plan.{key}: {a} vs {b}): give runs of one scenario, which may differ only in users, event rate and poll interval",
                first_dir.display(),
                dir.display(),
            )));
        }
    }
    let mut points = Vec::new();
    for (dir, s) in &summaries {
        points.extend(points_of(dir, s)?);
    }
    let mut modes = Vec::new();
    for mode in ["poll", "push"] {
        let pts: Vec<Point> = points.iter().filter(|p| p.mode == mode).cloned().collect();
        if pts.is_empty() {
            continue;
        }
        let users: Vec<f64> = distinct(pts.iter().map(|p| p.users));
        if pts.len() < 3 || users.len() < 2 {
            return Err(input(format!(
                "mode {mode}: {} run(s) at {} user count(s); the model needs at least 3 runs at 2 or more user counts to fit a fixed part and a price per unit (a sweep: `pollpush run scenarios/model.toml`)",
                pts.len(),
                users.len()
            )));
        }
        modes.push(fit_mode(mode, pts));
    }
    if modes.is_empty() {
        return Err(input(format!(
            "{}: no poll or push run to fit",
            first_dir.display()
        )));
    }
    let max_users = points.iter().map(|p| p.users).fold(0.0, f64::max);
    let top: Vec<&Point> = points.iter().filter(|p| p.users == max_users).collect();
    let measured_interval = top
        .iter()
        .filter(|p| p.mode == "poll" && p.units[POLLS] > 0.0)
        .map(|p| p.users / p.units[POLLS])
        .next()
        .or(first.plan.poll_interval_s)
        .unwrap_or(5.0);
    // The rate the largest runs asked for; with an event-rate series, the geometric mean
    // of its rates (10 and 40 events/s give 20: the seed case's rate per user).
    let rates: Vec<f64> = top
        .iter()
        .map(|p| p.asked_rate.unwrap_or(p.units[INSERTS] / p.users))
        .filter(|r| *r > 0.0)
        .collect();
    let rates = distinct(rates.into_iter());
    let measured_rate = if rates.is_empty() {
        0.0
    } else {
        (rates.iter().map(|r| r.ln()).sum::<f64>() / rates.len() as f64).exp()
    };
    Ok(Model {
        sources: dirs.to_vec(),
        scenario: first.scenario.clone(),
        machine: machine(&first.machine),
        modes,
        interval_s: opts.interval_s.unwrap_or(round_sig(measured_interval)),
        events_per_user_per_s: opts
            .events_per_user_per_min
            .map(|r| r / 60.0)
            .unwrap_or(measured_rate),
        max_users,
        fanout: first.plan.push_fanout.clone().unwrap_or_else(|| "?".into()),
        max_db_cores: opts.max_db_cores,
        prices: opts.prices,
    })
}

fn machine(m: &Machine) -> String {
    format!(
        "{} cores, {} GB, {}, Postgres {}, Redis {}",
        m.cores,
        m.memory_mb.map_or(0.0, |v| (v as f64 / 1024.0).round()),
        m.os,
        m.postgres_version
            .as_deref()
            .unwrap_or("?")
            .split(' ')
            .next()
            .unwrap_or("?"),
        m.redis_version.as_deref().unwrap_or("?")
    )
}

fn round_sig(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// The measured points of one summary: a single run's modes, or every run of a sweep.
fn points_of(dir: &Path, s: &Summary) -> anyhow::Result<Vec<Point>> {
    let Some(sweep) = &s.sweep else {
        return Ok(mode_points(&dir.display().to_string(), &s.modes));
    };
    for p in std::iter::once(&sweep.param).chain(&sweep.series) {
        if !WORK_PARAMS.contains(&p.as_str()) {
            return Err(input(format!(
                "{}: the sweep changes {p}, which changes the system, not its work; the model fits one system at several loads: sweep {} (scenarios/model.toml)",
                dir.display(),
                WORK_PARAMS.join(", ")
            )));
        }
    }
    Ok(sweep
        .runs
        .iter()
        .flat_map(|run| mode_points(&run.label, &run.modes))
        .collect())
}

fn mode_points(label: &str, modes: &Modes) -> Vec<Point> {
    modes
        .iter()
        .filter(|(_, m)| m.faults.is_empty())
        .filter_map(|(mode, m)| {
            let duration = Some(m.duration_s).filter(|d| *d > 0.0)?;
            let users = m.users as f64;
            // Inserts as Postgres counted them over the window; the swarm's event counts
            // also hold the drain after it. Deliveries: the same rate, times the share of
            // the events sent that arrived.
            let inserts =
                m.db.statements
                    .iter()
                    .filter(|s| s.query.starts_with("INSERT"))
                    .map(|s| s.calls as f64)
                    .reduce(|a, b| a + b)
                    .map(|calls| calls / duration)
                    .or(m.workload.emitted_per_s)
                    .unwrap_or(0.0);
            let (d, sent) = (m.events.delivered as f64, m.events.sent as f64);
            let delivered_share = if sent > 0.0 { (d / sent).min(1.0) } else { 1.0 };
            let units = [
                m.http.requests_per_min.unwrap_or(0.0) / 60.0,
                inserts,
                inserts * delivered_share,
                m.connections as f64,
            ];
            Some(Point {
                mode: mode.to_string(),
                label: label.to_string(),
                users,
                units,
                costs: COSTS.iter().map(|c| (c.figure)(m)).collect(),
                asked_rate: (m.workload.events_per_s_target > 0.0)
                    .then(|| m.workload.events_per_s_target / users),
            })
        })
        .collect()
}

/// Fits every cost of one mode on `points`; charges a unit that never moved at its upper
/// bound (the whole fixed part, which is what a projection that moves it must assume).
fn fit_costs(mode: &str, points: &[Point]) -> (Vec<Option<Fit>>, Vec<(usize, usize)>) {
    let mut bounded = Vec::new();
    let fits = COSTS
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            let drivers = if mode == "poll" { c.poll } else { c.push };
            let obs: Vec<(&Point, f64)> = points
                .iter()
                .filter_map(|p| Some((p, p.costs[ci]?)))
                .collect();
            let x: Vec<Vec<f64>> = obs
                .iter()
                .map(|(p, _)| {
                    let mut u = [0.0; 4];
                    for d in drivers {
                        u[*d] = p.units[*d];
                    }
                    u.to_vec()
                })
                .collect();
            let y: Vec<f64> = obs.iter().map(|(_, v)| *v).collect();
            let mut f = fit::fit(&x, &y, c.intercept)?;
            // Units outside this cost's drivers are zero everywhere: not worth naming.
            f.dropped.retain(|(u, _)| drivers.contains(u));
            let constant = f
                .dropped
                .iter()
                .find(|(_, why)| *why == fit::CONSTANT)
                .map(|(u, _)| *u);
            if let Some(u) = constant {
                let level = x.iter().map(|r| r[u]).sum::<f64>() / x.len().max(1) as f64;
                if level > 0.0 && f.intercept > 0.0 {
                    f.coefs.push((u, f.intercept / level));
                    f.intercept = 0.0;
                    bounded.push((ci, u));
                }
            }
            Some(f)
        })
        .collect();
    (fits, bounded)
}

fn fit_mode(mode: &str, points: Vec<Point>) -> ModeModel {
    let (fits, bounded) = fit_costs(mode, &points);
    let users = distinct(points.iter().map(|p| p.users));
    let top = *users.last().expect("points are not empty");
    let rest: Vec<Point> = points.iter().filter(|p| p.users < top).cloned().collect();
    let check = (distinct(rest.iter().map(|p| p.users)).len() >= 2 && rest.len() >= 2).then(|| {
        let (fits, _) = fit_costs(mode, &rest);
        let held_out: Vec<Point> = points.iter().filter(|p| p.users == top).cloned().collect();
        let mut rows = Vec::new();
        for p in &held_out {
            for (ci, f) in fits.iter().enumerate() {
                if let (Some(f), Some(m)) = (f, p.costs[ci]) {
                    rows.push((ci, p.label.clone(), f.predict(&p.units), m));
                }
            }
        }
        Check {
            held_out,
            fitted_on: rest.len(),
            rows,
        }
    });
    ModeModel {
        mode: mode.to_string(),
        points,
        fits,
        bounded,
        check,
    }
}

/// The work of `users` users polling every `interval_s` with `rate` events per user per
/// second: every event stored once and delivered once.
pub fn work(mode: &str, users: f64, interval_s: f64, rate: f64) -> [f64; 4] {
    let polls = if mode == "poll" {
        users / interval_s
    } else {
        0.0
    };
    [polls, rate * users, rate * users, users]
}

/// One projected mode at one scale: each cost, in its measure.
#[derive(Debug, Clone)]
pub struct Projection {
    pub users: f64,
    pub costs: Vec<Option<f64>>,
}

impl Projection {
    pub fn get(&self, key: &str) -> Option<f64> {
        let i = COSTS.iter().position(|c| c.key == key)?;
        self.costs[i]
    }

    /// The system under test: the servers (their `server_cores` hold ingest's too, as
    /// the summary's do), Postgres and Redis: what serving costs, as `cpu.system_cores`.
    pub fn system_cores(&self) -> Option<f64> {
        Some(
            self.get("server_cores")?
                + self.get("db_cores")?
                + self.get("redis_cores").unwrap_or(0.0),
        )
    }

    /// The monthly bill at these prices: every core around the clock, the servers'
    /// memory, the bytes sent and received.
    pub fn monthly(&self, p: &Prices) -> Option<f64> {
        let hours = 730.0;
        let tb = self.get("bytes_per_s")? * hours * 3600.0 / 1e12;
        Some(
            self.system_cores()? * hours * p.core_hour
                + self.get("server_rss_mb")? / 1024.0 * p.gb_month
                + tb * p.tb_egress,
        )
    }
}

impl ModeModel {
    pub fn project(&self, users: f64, interval_s: f64, rate: f64) -> Projection {
        let units = work(&self.mode, users, interval_s, rate);
        Projection {
            users,
            costs: self
                .fits
                .iter()
                .map(|f| f.as_ref().map(|f| f.predict(&units)))
                .collect(),
        }
    }
}

impl Model {
    pub fn mode(&self, name: &str) -> Option<&ModeModel> {
        self.modes.iter().find(|m| m.mode == name)
    }

    /// The scales projected: 10^3 to 10^7 users, three a decade.
    pub fn scales() -> Vec<f64> {
        (0..=12)
            .map(|i| {
                let decade = 10f64.powi(3 + i / 3);
                decade * [1.0, 2.0, 5.0][(i % 3) as usize]
            })
            .filter(|u| *u <= 1e7)
            .collect()
    }
}

/// Parses `--price core-hour=0.04,gb-month=3.5,tb-egress=90`.
pub fn parse_prices(items: &[String]) -> anyhow::Result<Option<Prices>> {
    if items.is_empty() {
        return Ok(None);
    }
    let (mut core, mut gb, mut tb) = (None, None, None);
    for item in items {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            input(format!(
                "--price {item:?}: write name=value, e.g. --price core-hour=0.04,gb-month=3,tb-egress=90"
            ))
        })?;
        let v: f64 = v
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                input(format!(
                    "--price {item:?}: {v:?} is not a price; write a number >= 0 (dollars, or any one currency)"
                ))
            })?;
        match k.trim() {
            "core-hour" => core = Some(v),
            "gb-month" => gb = Some(v),
            "tb-egress" => tb = Some(v),
            other => {
                return Err(input(format!(
                    "--price {other:?} is not a price the model knows: give core-hour, gb-month and tb-egress"
                )))
            }
        }
    }
    match (core, gb, tb) {
        (Some(core_hour), Some(gb_month), Some(tb_egress)) => Ok(Some(Prices {
            core_hour,
            gb_month,
            tb_egress,
        })),
        _ => Err(input(
            "--price needs all three: core-hour, gb-month and tb-egress (e.g. --price core-hour=0.04,gb-month=3,tb-egress=90)",
        )),
    }
}

/// Writes model.md, model.json and the plots into `out`.
pub fn write(model: &Model, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let plots = plot::draw(model, out)?;
    std::fs::write(out.join("model.md"), markdown(model, &plots))?;
    std::fs::write(
        out.join("model.json"),
        serde_json::to_string_pretty(&json(model))? + "\n",
    )?;
    Ok(())
}
