//! The typed summary: what `summary.json` holds (the contract in docs/results.md), built
//! once from a run's result (`report::summary::build`) and read back typed by `compare`,
//! `combine` and the repeats' merge. Every figure declares, beside its field, its unit,
//! which way is worse, its merge rule and its owner ([`figure`]); [`catalogue`] lists them.
//!
//! Unknown is `None` (`null`), never a made-up 0. Parts a mode does not have are absent
//! (push has no `predicted` unless its fanout is none). Reading an older summary, missing
//! keys take their default.

pub mod capacity;
pub mod figure;
pub mod mode;
mod names;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::config::PollAuth;
pub use crate::result::Machine;
use figure::{part, Better, Figure, Figures, Gate, Merge, Owner, Unit};
pub use mode::ModeSummary;

/// Bumped when a key changes meaning or disappears; `compare` refuses to mix versions.
/// Keys added keep the version (readers of older summaries take defaults for them).
pub const SCHEMA_VERSION: u64 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub schema_version: u64,
    pub pollpush_version: String,
    pub scenario: String,
    pub description: String,
    pub started_at: String,
    pub plan: PlanEcho,
    pub machine: Machine,
    pub method: Method,
    pub modes: Modes,
    pub ratios: Ratios,
    /// A shard's own folder: which part of which run it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The scenario's checks and the automatic ones, evaluated against this summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<CheckResult>>,
    /// Repeats of one plan: how they were merged, and each one's figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub combined: Option<Combined>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<Vec<Repeat>>,
    /// `merge`: the shards this run was merged from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
    /// A sweep: every run's figures. The summary's own `modes` and `ratios` are then the
    /// last run's, so that a tool reading `modes` finds a run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sweep {
    /// The scenario key swept (`users.count`), or `alternative` for `[[alternatives]]`.
    pub param: String,
    /// Its values, as the scenario gave them (numbers, words, durations as text).
    pub values: Vec<serde_json::Value>,
    /// A second key swept for each value, drawn as one line per value.
    pub series: Option<String>,
    pub series_values: Vec<serde_json::Value>,
    pub runs: Vec<SweepRun>,
}

/// One run of a sweep: its setting and its figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SweepRun {
    pub value: serde_json::Value,
    /// What the alternative is, from the scenario's `[[alternatives]]`.
    pub about: Option<String>,
    pub series_value: serde_json::Value,
    pub label: String,
    /// Its own result folder, relative to the sweep's.
    pub dir: String,
    pub modes: Modes,
    pub ratios: Ratios,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Merged {
    pub run_id: String,
    pub shards: u64,
    pub from: Vec<String>,
    /// By mode, then shard: seconds from shard 0's window to that shard's.
    pub window_gap_s: serde_json::Map<String, serde_json::Value>,
    /// Each shard's clock against the servers'.
    pub clocks: serde_json::Value,
}

/// One check of the scenario's `[checks]` (or an automatic one), as evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub metric: String,
    pub condition: String,
    /// The measured figure; None when it could not be measured (which fails the check).
    pub value: Option<f64>,
    pub passed: bool,
}

/// The plan the run carried out, as the reports quote it. A setting an older version did
/// not record is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanEcho {
    pub users: Option<u64>,
    pub duration_s: Option<f64>,
    pub poll_interval_s: Option<f64>,
    pub poll_long_wait_s: Option<f64>,
    pub poll_auth: Option<PollAuth>,
    pub poll_backend: Option<String>,
    pub poll_conditional: Option<bool>,
    pub poll_http: Option<String>,
    pub events_per_s: Option<f64>,
    pub payload_bytes: Option<u64>,
    pub swarm_headers: Option<String>,
    pub swarm_cookie_bytes: Option<u64>,
    pub push_transport: Option<String>,
    pub push_instances: Option<u64>,
    pub push_fanout: Option<String>,
    pub push_catch_up: Option<bool>,
    pub push_reconnect: Option<String>,
    pub push_send_queue: Option<u64>,
    pub push_slow_policy: Option<String>,
    pub push_slow_clients: Option<u64>,
    pub push_slow_events_per_s: Option<f64>,
    pub swarm_processes: Option<u64>,
    pub db_cpu_limit: Option<f64>,
    pub redis_masters: Option<u64>,
}

/// How each figure was measured, in words.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Method {
    pub db_queries: String,
    pub swarm: String,
    pub bandwidth: String,
    pub headers: String,
    pub latency: String,
    pub polling: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Modes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll: Option<ModeSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<ModeSummary>,
}

impl Modes {
    /// The modes that ran, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &ModeSummary)> {
        [("poll", &self.poll), ("push", &self.push)]
            .into_iter()
            .filter_map(|(name, m)| Some((name, m.as_ref()?)))
    }
}

/// A poll/push ratio, measured side by side in one run: higher means push saves more.
const SIDE_BY_SIDE: Figure = Figure::new(
    Unit::Ratio,
    Better::Higher,
    Merge::Median,
    Owner::System,
    Gate::SideBySide,
);

part! {
    /// Poll's figure over push's, computed here and nowhere else.
    pub struct Ratios {
        db_queries: Option<f64> = SIDE_BY_SIDE,
        bandwidth: Option<f64> = SIDE_BY_SIDE,
        latency_p50: Option<f64> = SIDE_BY_SIDE.gated(Gate::None),
        latency_p99: Option<f64> = SIDE_BY_SIDE.gated(Gate::None),
        /// CPU of the system under test (servers, ingest, Postgres, Redis); the swarm's
        /// is the load generator's and left out.
        #[serde(skip_serializing_if = "Option::is_none")]
        cpu_system: Option<f64> = SIDE_BY_SIDE.gated(Gate::None),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Shard {
    pub run_id: String,
    pub index: u64,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Combined {
    pub latency_ms: String,
    pub worst_of_repeats: Vec<String>,
    pub other_figures: String,
    /// `combine`: the folders it combined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<String>>,
}

/// One repeat's own figures, kept beside their merge (`compare` reads their spread).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Repeat {
    pub started_at: String,
    pub modes: Modes,
    pub ratios: Ratios,
}

impl PlanEcho {
    /// The settings both plans record and set differently, as `key: a -> b`. A setting
    /// only one side records comes from another version of pollpush, whose default is
    /// the older behaviour: not a difference.
    pub fn differences(&self, other: &PlanEcho) -> Vec<String> {
        let (a, b) = (to_map(self), to_map(other));
        b.iter()
            .filter_map(|(k, v)| {
                let was = a.get(k).filter(|x| !x.is_null())?;
                (!v.is_null() && was != v).then(|| format!("{k}: {was} -> {v}"))
            })
            .collect()
    }
}

impl PlanEcho {
    /// The first setting, other than those named in `except`, that two plans record
    /// differently (one recording it and the other not counts): key, this, other.
    pub fn first_difference(
        &self,
        other: &PlanEcho,
        except: &[&str],
    ) -> Option<(String, serde_json::Value, serde_json::Value)> {
        let (a, b) = (to_map(self), to_map(other));
        let null = serde_json::Value::Null;
        a.keys()
            .chain(b.keys())
            .filter(|k| !except.contains(&k.as_str()))
            .find(|k| a.get(*k) != b.get(*k))
            .map(|k| {
                let get = |m: &serde_json::Map<String, serde_json::Value>| {
                    m.get(k).unwrap_or(&null).clone()
                };
                (k.clone(), get(&a), get(&b))
            })
    }
}

fn to_map(plan: &PlanEcho) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(plan) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

impl Machine {
    /// How two machines differ (cores, memory, OS, Postgres and Redis versions): a
    /// comparison across machines measures the machines, not the change. The kernel is
    /// left out: the same machine type reports another build after a host update, and
    /// that moves no figure here.
    pub fn differences(&self, other: &Machine) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |key: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{key}: {a} -> {b}"));
            }
        };
        let opt = |x: &Option<String>| x.clone().unwrap_or_else(|| "unknown".into());
        differ("cores", self.cores.to_string(), other.cores.to_string());
        differ("os", self.os.clone(), other.os.clone());
        differ(
            "postgres_version",
            opt(&self.postgres_version),
            opt(&other.postgres_version),
        );
        differ(
            "redis_version",
            opt(&self.redis_version),
            opt(&other.redis_version),
        );
        // Total memory reads a little differently across boots of one machine type.
        match (self.memory_mb, other.memory_mb) {
            (Some(x), Some(y)) if (x as f64 - y as f64).abs() > 0.02 * x.max(y) as f64 => {
                out.push(format!("memory_mb: {x} -> {y}"));
            }
            (Some(_), Some(_)) | (None, None) => {}
            (x, y) => out.push(format!("memory_mb: {x:?} -> {y:?}")),
        }
        out
    }
}

/// A summary that does not read: the key, and what is wrong with its value.
#[derive(Debug)]
pub struct ReadError(serde_path_to_error::Error<serde_json::Error>);

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at `{}`: {}", self.0.path(), self.0.inner())
    }
}

impl std::error::Error for ReadError {}

/// Poll's figure over push's, to two decimals.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(figure::round(a / b, 2)),
        _ => None,
    }
}

impl Ratios {
    /// Poll's figures over push's, when both ran: the one place the ratios are computed.
    pub fn of(modes: &Modes) -> Ratios {
        let (Some(p), Some(q)) = (&modes.poll, &modes.push) else {
            return Ratios::default();
        };
        Ratios {
            db_queries: ratio(p.db.queries_per_min, q.db.queries_per_min),
            bandwidth: ratio(p.bandwidth.bytes_per_s, q.bandwidth.bytes_per_s),
            latency_p50: ratio(p.latency_ms.p50, q.latency_ms.p50),
            latency_p99: ratio(p.latency_ms.p99, q.latency_ms.p99),
            cpu_system: ratio(p.cpu.system_cores, q.cpu.system_cores),
        }
    }
}

/// Every figure a summary can hold, by the name checks and `compare` use
/// (`<mode>.<path>`, `ratios.<name>`, `*` for a list's index), with its declaration.
pub fn catalogue() -> &'static BTreeMap<String, Figure> {
    static CATALOGUE: OnceLock<BTreeMap<String, Figure>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let mut out = Vec::new();
        for mode in ["poll", "push"] {
            ModeSummary::describe(mode, None, &mut out);
        }
        Ratios::describe("ratios", None, &mut out);
        out.into_iter().collect()
    })
}

/// The declaration of a figure named as checks and `compare` name it
/// (`push.instances.1.received_share` finds `push.instances.*.received_share`).
pub fn declaration(name: &str) -> Option<Figure> {
    let pattern: Vec<&str> = name
        .split('.')
        .map(|part| {
            if part.parse::<usize>().is_ok() {
                "*"
            } else {
                part
            }
        })
        .collect();
    catalogue().get(&pattern.join(".")).copied()
}

impl Summary {
    /// Reads a summary.json's text; an error names the key that does not fit
    /// (`modes.push.events.lost: invalid type: ...`).
    pub fn parse(text: &str) -> Result<Summary, ReadError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de)
            .map(Summary::upgraded)
            .map_err(ReadError)
    }

    /// Reads a summary already parsed as JSON.
    pub fn from_value(v: serde_json::Value) -> Result<Summary, ReadError> {
        serde_path_to_error::deserialize(v)
            .map(Summary::upgraded)
            .map_err(ReadError)
    }

    /// A summary written before a figure existed gets the figures its own can give: the
    /// system's CPU (servers with ingest, Postgres, Redis; summed from the rounded parts)
    /// and its poll/push ratio.
    fn upgraded(mut self) -> Summary {
        let fill = |modes: &mut Modes| {
            for m in [&mut modes.poll, &mut modes.push].into_iter().flatten() {
                let c = &mut m.cpu;
                if c.system_cores.is_none() {
                    c.system_cores = [c.server_cores, c.db_cores, c.redis_cores]
                        .into_iter()
                        .sum::<Option<f64>>()
                        .map(|x| figure::round(x, 3));
                }
            }
        };
        let fill_all = |modes: &mut Modes, ratios: &mut Ratios| {
            fill(modes);
            if ratios.cpu_system.is_none() {
                ratios.cpu_system = Ratios::of(modes).cpu_system;
            }
        };
        fill_all(&mut self.modes, &mut self.ratios);
        for r in self.repeats.iter_mut().flatten() {
            fill_all(&mut r.modes, &mut r.ratios);
        }
        for r in self.sweep.iter_mut().flat_map(|s| &mut s.runs) {
            fill_all(&mut r.modes, &mut r.ratios);
        }
        self
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a summary is plain data")
    }

    /// The summary that stands for several repeats of one plan: each figure merged by its
    /// own rule (latency medians here; the caller sets latency from the histograms added
    /// up), each repeat's figures kept under `repeats`.
    pub fn merge_repeats(each: &[Summary]) -> Summary {
        let first = &each[0];
        let modes = |pick: fn(&Modes) -> &Option<ModeSummary>| {
            let items: Vec<&Option<ModeSummary>> = each.iter().map(|s| pick(&s.modes)).collect();
            Option::<ModeSummary>::merge(&items, None)
        };
        let ratios: Vec<&Ratios> = each.iter().map(|s| &s.ratios).collect();
        let worst: Vec<String> = catalogue()
            .iter()
            .filter(|(_, f)| f.merge == Merge::Worst)
            .map(|(name, _)| name.clone())
            .collect();
        Summary {
            modes: Modes {
                poll: modes(|m| &m.poll),
                push: modes(|m| &m.push),
            },
            ratios: Ratios::merge(&ratios, None),
            checks: None,
            combined: Some(Combined {
                latency_ms: "every repeat's histogram added up".into(),
                worst_of_repeats: worst,
                other_figures: "the median of the repeats".into(),
                from: None,
            }),
            repeats: Some(
                each.iter()
                    .map(|s| Repeat {
                        started_at: s.started_at.clone(),
                        modes: s.modes.clone(),
                        ratios: s.ratios.clone(),
                    })
                    .collect(),
            ),
            ..first.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_declares_every_figure_once_with_its_rule() {
        let c = catalogue();
        let p99 = c["push.latency_ms.p99"];
        assert_eq!(
            (p99.unit, p99.better, p99.merge, p99.gate),
            (Unit::Ms, Better::Lower, Merge::Histogram, Gate::LatencyTail)
        );
        assert_eq!(c["poll.events.lost"].merge, Merge::Worst);
        assert_eq!(c["poll.cpu.swarm_cores"].owner, Owner::LoadGenerator);
        assert_eq!(c["push.cpu.system_cores"].owner, Owner::System);
        assert_eq!(c["ratios.db_queries"].better, Better::Higher);
        assert_eq!(
            declaration("push.instances.3.received_share").map(|f| f.unit),
            Some(Unit::Ratio)
        );
        assert_eq!(declaration("push.window.start"), None);
        assert_eq!(declaration("push.db.statements.0.calls"), None);
    }

    #[test]
    fn counts_read_from_older_medians_and_bad_types_say_where() {
        let s = Summary::parse(
            r#"{"modes": {"push": {"events": {"delivered": 602.5, "lost": 0}, "db": {"queries_total": 3.0}}}}"#,
        )
        .unwrap();
        let push = s.modes.push.unwrap();
        assert_eq!(push.events.delivered, 603);
        assert_eq!(push.db.queries_total, Some(3));
        let e = Summary::parse(r#"{"modes": {"push": {"events": {"lost": "none"}}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("modes.push.events.lost"), "{e}");
    }
}

#[cfg(test)]
mod reading {
    use super::*;
    use serde_json::Value;

    /// Every scalar of `v` by its path.
    fn leaves(v: &Value, path: String, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    leaves(x, format!("{path}.{k}"), out);
                }
            }
            Value::Array(xs) => {
                for (i, x) in xs.iter().enumerate() {
                    leaves(x, format!("{path}.{i}"), out);
                }
            }
            other => out.push((path, other.clone())),
        }
    }

    fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
        path.trim_start_matches('.')
            .split('.')
            .fold(v, |v, k| match (v, k.parse::<usize>()) {
                (Value::Array(xs), Ok(i)) => xs.get(i).unwrap_or(&Value::Null),
                _ => &v[k],
            })
    }

    /// Every key and value of `original` is in `again`.
    fn keeps_all(original: &Value, again: &Value, what: &str) {
        let mut all = Vec::new();
        leaves(original, String::new(), &mut all);
        for (key, value) in all {
            let back = at(again, &key);
            let same = match (value.as_f64(), back.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => *back == value,
            };
            assert!(same, "{what}: {key} was {value}, reads back {back}");
        }
    }

    /// The committed results, read typed and written again, keep every key and value they
    /// had: the typed summary is a superset of what earlier versions wrote. A sweep's runs
    /// are read as the modes and ratios they hold.
    #[test]
    fn committed_summaries_read_typed_and_write_back_every_figure() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        let (mut runs, mut sweep_runs) = (0, 0);
        for entry in std::fs::read_dir(&root).unwrap() {
            let path = entry.unwrap().path().join("summary.json");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let what = path.display().to_string();
            let original: Value = serde_json::from_str(&text).unwrap();
            if original.get("capacity").is_some() {
                continue;
            }
            if let Some(list) = original["sweep"]["runs"].as_array() {
                for (i, run) in list.iter().enumerate() {
                    let part = serde_json::json!({"modes": run["modes"], "ratios": run["ratios"]});
                    let typed: Repeat = serde_json::from_value(part.clone())
                        .unwrap_or_else(|e| panic!("{what}: sweep run {i}: {e}"));
                    let again = serde_json::to_value(&typed).unwrap();
                    keeps_all(&part, &again, &format!("{what}: sweep run {i}"));
                    sweep_runs += 1;
                }
                continue;
            }
            let typed = Summary::parse(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
            keeps_all(&original, &typed.to_value(), &what);
            runs += 1;
        }
        assert!(
            runs >= 4 && sweep_runs >= 10,
            "only {runs} runs and {sweep_runs} sweep runs read"
        );
    }
}
