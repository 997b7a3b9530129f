//! `pollpush compare BASELINE CURRENT`: every figure of two summaries side by side, the
//! change, and a verdict per figure against direction-aware thresholds.
//!
//! Defaults, by kind of figure ([`default_rule`]): lost, duplicated and misrouted events
//! and errors must not rise at all; the poll/push ratios of queries and bytes (measured
//! side by side in one run, so machine noise cancels) may drop 10 %; database, bandwidth
//! and request rates may move 10 %; latency means and medians 30 % and at least 1 ms,
//! p90 and p99 40 % and at least 3 ms; CPU 50 % and at least 0.05 cores (0.1 for the
//! total); memory 25 % and at least 10 MB.
//! Totals, counters and predictions are shown without a verdict. `--max-regression` and
//! the `[compare]` table of the current run's scenario override them. When both sides
//! carry repeats (`run --repeat K`), medians are compared without the floors, and a
//! change within the noise the repeats measured is reported as noise instead of a
//! regression.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::error::input;
use crate::summary::{Summary, SCHEMA_VERSION};

/// Which way is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Lower,
    Higher,
}

/// The threshold of one figure: allowed change in percent, and an absolute floor below
/// which a change between two single runs is noise whatever its percentage. When both
/// sides carry repeats, their measured noise takes the floor's place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rule {
    pub better: Better,
    pub max_pct: f64,
    pub floor: f64,
}

/// The default rule of a figure, by the direction and gate its declaration in the typed
/// summary gives ([`crate::summary::mode`]); None for figures shown without a verdict and
/// for keys no declaration names.
///
/// The numbers come from runs of `scenarios/ci.toml` in a row on a shared 2-core machine
/// (docs/ci.md): query and bandwidth rates, request rates and
/// deliveries varied by under 1 %; CPU by up to 17 %; push latencies, a few ms, by up to
/// 70 % from one single run to the next (p99 1.3 to 2.7 ms on a quiet machine, 1.8 to
/// 8.4 ms beside a build), which is why latencies of single runs have an absolute floor,
/// and the tails beyond p99 and the latency ratios carry no verdict.
pub fn default_rule(metric: &str) -> Option<Rule> {
    use crate::summary::figure::{Better as Way, Gate};
    let figure = crate::summary::declaration(metric)?;
    let better = match figure.better {
        Way::Lower => Better::Lower,
        Way::Higher => Better::Higher,
        Way::Neither => return None,
    };
    let (max_pct, floor) = match figure.gate {
        Gate::None => return None,
        Gate::MustNotRise => (0.0, 0.0),
        Gate::Delivered => (5.0, 0.0),
        Gate::LatencyCentral => (30.0, 1.0),
        Gate::LatencyTail => (40.0, 3.0),
        Gate::Rate | Gate::SideBySide => (10.0, 0.0),
        Gate::Cpu => (50.0, 0.05),
        // The total adds up the components' noise: one run after a build measured push's
        // total 0.105 -> 0.169 cores with every component up by 0.01 to 0.025.
        Gate::CpuTotal => (50.0, 0.1),
        Gate::Memory => (25.0, 10.0),
    };
    Some(Rule {
        better,
        max_pct,
        floor,
    })
}

/// Matches a figure name against a pattern where `*` stands for any run of characters.
pub fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(pos) = rest.find(part) else {
                return false;
            };
            rest = &rest[pos + part.len()..];
        }
    }
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Improved,
    Regression,
    /// Over the threshold, but within the noise the repeats measured.
    Noise,
    /// No rule: shown for information.
    Info,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    pub change_pct: Option<f64>,
    pub max_regression_pct: Option<f64>,
    pub better: Option<Better>,
    /// Noise of the median of the repeats (two robust standard deviations, % of the
    /// median), the larger of the two sides; None without repeats.
    pub noise_pct: Option<f64>,
    pub verdict: Verdict,
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub scenario: String,
    pub baseline: String,
    pub current: String,
    pub repeats: (usize, usize),
    pub rows: Vec<Row>,
    pub regressions: Vec<String>,
}

/// Loads a summary from a result folder or a summary.json file.
pub fn load(path: &Path) -> anyhow::Result<Value> {
    let file: PathBuf = if path.is_dir() {
        path.join("summary.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        input(format!(
            "cannot read {}: {e}; give a result folder or its summary.json",
            file.display()
        ))
    })?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| input(format!("{} is not valid JSON: {e}", file.display())))?;
    match v["schema_version"].as_u64() {
        Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(input(format!(
                "{} has summary schema version {other}; this pollpush reads version {SCHEMA_VERSION}: re-run it with this version",
                file.display()
            )))
        }
        None => {
            return Err(input(format!(
                "{} is not a pollpush summary (no schema_version); give the summary.json of a run",
                file.display()
            )))
        }
    }
    if !v["modes"].is_object() {
        return Err(input(format!(
            "{} has no `modes`: not a pollpush summary",
            file.display()
        )));
    }
    Ok(v)
}

/// Reads the summary of a run or a sweep, typed, from a result folder or a summary.json.
pub fn read(path: &Path) -> anyhow::Result<Summary> {
    let v = load(path)?;
    if v.get("capacity").is_some() {
        return Err(input(format!(
            "{} is a capacity search; compare the runs of its steps, or two runs or sweeps",
            path.display()
        )));
    }
    Summary::from_value(v).map_err(|e| {
        input(format!(
            "{} does not read as a pollpush summary: {e}",
            path.display()
        ))
    })
}

/// Per-figure values of each repeat, when the summary carries two or more.
fn repeat_values(s: &Summary) -> Option<BTreeMap<String, Vec<f64>>> {
    let reps = s.repeats.as_ref().filter(|r| r.len() >= 2)?;
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for rep in reps {
        for (k, v) in rep.figures() {
            if let Some(v) = v {
                out.entry(k).or_default().push(v);
            }
        }
    }
    Some(out)
}

/// The noise of a median of repeats, in % of it: two robust standard deviations
/// (1.4826 × the median absolute deviation), so that one wild repeat out of three widens
/// it without deciding it. Two medians of three repeats each differ by about one such
/// deviation when nothing changed.
fn noise_pct(values: &[f64]) -> Option<f64> {
    let med = super::median(values)?;
    let dev: Vec<f64> = values.iter().map(|v| (v - med).abs()).collect();
    let mad = super::median(&dev)?;
    (med.abs() > 0.0).then(|| 2.0 * 1.4826 * mad / med.abs() * 100.0)
}

/// How the machines of two summaries differ: a comparison across machines measures the
/// machines, not the change.
pub fn machine_differences(baseline: &Summary, current: &Summary) -> Vec<String> {
    baseline.machine.differences(&current.machine)
}

/// The rule that applies to figure `name`: the last override that matches it, else its
/// default.
fn rule_for(name: &str, overrides: &[(String, f64)]) -> Option<Rule> {
    let rule = default_rule(name);
    match overrides.iter().rev().find(|(p, _)| matches(p, name)) {
        // An explicit threshold is the user's call: no noise floor under it.
        Some((_, pct)) => Some(Rule {
            better: rule.map(|r| r.better).unwrap_or(Better::Lower),
            max_pct: *pct,
            floor: 0.0,
        }),
        None => rule,
    }
}

/// One figure a check or threshold can name, as `compare --list` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub metric: String,
    /// Its value in the result listed; None where it is null (not measured).
    pub value: Option<f64>,
    /// Which direction is worse; None for figures shown without a verdict.
    pub better: Option<Better>,
    /// The allowed change in %, in the worse direction.
    pub max_regression_pct: Option<f64>,
    /// The absolute change under which two single runs are not judged (the figure's unit).
    pub floor: Option<f64>,
    /// The figure's declaration in the typed summary (unit, how repeats merge it, whose it
    /// is); None for a key this version does not declare (an older summary's).
    pub declared: Option<crate::summary::figure::Figure>,
}

/// Every figure of `summary` with the rule `compare` would apply to it.
pub fn list(summary: &Summary, overrides: &[(String, f64)]) -> Vec<Listed> {
    summary
        .figures()
        .into_iter()
        .map(|(metric, value)| {
            let rule = rule_for(&metric, overrides);
            Listed {
                value,
                better: rule.map(|r| r.better),
                max_regression_pct: rule.map(|r| r.max_pct),
                floor: rule.map(|r| r.floor),
                declared: crate::summary::declaration(&metric),
                metric,
            }
        })
        .collect()
}

/// Compares two summaries. `overrides` are (pattern, percent) and win over the defaults.
pub fn compare(
    baseline: &Summary,
    current: &Summary,
    overrides: &[(String, f64)],
) -> anyhow::Result<Comparison> {
    let cs = same_plan(baseline, current)?;
    let (bf, cf) = (baseline.figures(), current.figures());
    for (pattern, _) in overrides {
        if !bf.keys().chain(cf.keys()).any(|k| matches(pattern, k)) {
            return Err(input(format!(
                "--max-regression {pattern}: no figure of these summaries has that name (names look like push.latency_ms.p99, ratios.db_queries, *.latency_ms.p99)"
            )));
        }
    }
    let (br, cr) = (repeat_values(baseline), repeat_values(current));
    let mut rows = Vec::new();
    let names: std::collections::BTreeSet<&String> = bf.keys().chain(cf.keys()).collect();
    for name in names {
        let b = bf.get(name).copied().flatten();
        let c = cf.get(name).copied().flatten();
        let rule = rule_for(name, overrides);
        let change_pct = match (b, c) {
            (Some(b), Some(c)) if b != 0.0 => Some((c - b) / b.abs() * 100.0),
            (Some(b), Some(c)) if b == c => Some(0.0),
            _ => None,
        };
        let noise = [&br, &cr]
            .iter()
            .filter_map(|r| r.as_ref()?.get(name.as_str()).and_then(|v| noise_pct(v)))
            .fold(None, |acc: Option<f64>, s| {
                Some(acc.map_or(s, |a| a.max(s)))
            });
        let both_repeat = br.is_some() && cr.is_some();
        let verdict = verdict(rule, b, c, both_repeat, noise);
        rows.push(Row {
            metric: name.clone(),
            baseline: b,
            current: c,
            change_pct,
            max_regression_pct: rule.map(|r| r.max_pct),
            better: rule.map(|r| r.better),
            noise_pct: noise,
            verdict,
        });
    }
    let regressions = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Regression)
        .map(|r| r.metric.clone())
        .collect();
    let count = |s: &Summary| s.repeats.as_ref().map_or(1, |r| r.len().max(1));
    Ok(Comparison {
        scenario: cs.to_string(),
        baseline: baseline.started_at.clone(),
        current: current.started_at.clone(),
        repeats: (count(baseline), count(current)),
        rows,
        regressions,
    })
}

/// Reads `METRIC=PCT` overrides.
pub fn parse_override(s: &str) -> anyhow::Result<(String, f64)> {
    let (m, p) = s.split_once('=').ok_or_else(|| {
        input(format!(
            "--max-regression {s:?}: expected METRIC=PCT, e.g. push.latency_ms.p99=50"
        ))
    })?;
    let pct: f64 = p
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| input(format!("--max-regression {s:?}: {p:?} is not a percentage")))?;
    if !pct.is_finite() || pct < 0.0 {
        return Err(input(format!(
            "--max-regression {s:?}: use a percentage of 0 or more"
        )));
    }
    Ok((m.trim().to_string(), pct))
}

/// The regression thresholds that apply to `current` (a result folder or its
/// summary.json): its scenario's `[compare]` table, then `METRIC=PCT` overrides on top.
pub fn thresholds(current: &Path, overrides: &[String]) -> anyhow::Result<Vec<(String, f64)>> {
    let mut all = Vec::new();
    let scenario_file = if current.is_dir() {
        current.join("scenario.toml")
    } else {
        current.with_file_name("scenario.toml")
    };
    if scenario_file.is_file() {
        let plan = crate::scenario::load(Some(&scenario_file), &[])?;
        all.extend(plan.compare);
    }
    for o in overrides {
        all.push(parse_override(o)?);
    }
    Ok(all)
}

/// The scenario both summaries ran; an error when they ran different scenarios or
/// settings.
pub(crate) fn same_plan<'v>(baseline: &Summary, current: &'v Summary) -> anyhow::Result<&'v str> {
    let (bs, cs) = (&baseline.scenario, &current.scenario);
    if bs != cs {
        return Err(input(format!(
            "different scenarios: the baseline ran `{bs}`, the current run `{cs}`; compare runs of the same scenario"
        )));
    }
    let diff = baseline.plan.differences(&current.plan);
    if !diff.is_empty() {
        return Err(input(format!(
            "the two runs of `{cs}` used different settings ({}); compare runs of the same plan",
            diff.join(", ")
        )));
    }
    Ok(cs)
}

/// One figure's verdict under `rule`: worse by more than its threshold (and its noise
/// floor, or the repeats' measured noise) is a regression.
fn verdict(
    rule: Option<Rule>,
    b: Option<f64>,
    c: Option<f64>,
    both_repeat: bool,
    noise: Option<f64>,
) -> Verdict {
    match (rule, b, c) {
        (None, _, _) => Verdict::Info,
        (Some(_), None, None) => Verdict::Info,
        // Measured before, not measured now: that is worse.
        (Some(_), Some(_), None) => Verdict::Regression,
        (Some(_), None, Some(_)) => Verdict::Info,
        (Some(rule), Some(b), Some(c)) => {
            let worse_by = match rule.better {
                Better::Lower => c - b,
                Better::Higher => b - c,
            };
            let worse_pct = if b != 0.0 {
                worse_by / b.abs() * 100.0
            } else if worse_by > 0.0 {
                f64::INFINITY
            } else {
                0.0
            };
            // Two single runs cannot tell a change under the floor from noise; with
            // repeats on both sides, the repeats measure the noise instead.
            let floor = if both_repeat { 0.0 } else { rule.floor };
            if worse_by > floor && worse_pct > rule.max_pct {
                if both_repeat && noise.is_some_and(|n| worse_pct <= n) {
                    Verdict::Noise
                } else {
                    Verdict::Regression
                }
            } else if worse_by < -floor && -worse_pct > rule.max_pct.max(1.0) {
                Verdict::Improved
            } else {
                Verdict::Ok
            }
        }
    }
}

mod render;
pub use render::{render_json, render_list, render_markdown, render_text};

#[cfg(test)]
mod tests;
