//! Turns a finished [`RunResult`] into the result folder: `summary.json` (the contract that
//! CI and `compare` read), `scenario.toml`, `latency-<mode>.hgrm`, plots and `report.md`.
//! The table and report read the summary, so every figure they show is one it holds.

pub mod capacity;
pub mod checks;
mod combine;
pub(crate) mod compare;
mod fair;
pub(crate) mod html;
pub(crate) mod markdown;
mod merge;
pub mod model;
pub(crate) mod plot;
mod predicted;
pub(crate) mod summary;
pub(crate) mod sweep;
pub mod table;

use std::path::Path;

use hdrhistogram::Histogram;
use serde_json::Value;

use crate::config::Mode;
use crate::error::input;
use crate::metrics::hgrm;
use crate::result::{RunResult, ShardInfo};
use crate::summary::Summary;

pub use combine::combine;
pub use merge::merge;

pub use crate::summary::figure::median;

/// The summary of one run, or of several repeats of one plan: each figure merged by the
/// rule its declaration gives (the median; the worst repeat's for losses and errors), each
/// repeat's own figures kept under `repeats`.
pub fn combined_summary(results: &[RunResult]) -> Summary {
    let mut each: Vec<Summary> = results.iter().map(summary::build).collect();
    if each.len() == 1 {
        return each.pop().expect("one");
    }
    let mut merged = Summary::merge_repeats(&each);
    // Latency from every repeat's histogram added up, exactly as the .hgrm, .hlog and the
    // CDF show it; so p50 <= p99 <= max always hold, as they would not for medians taken
    // figure by figure from different repeats.
    for (mode, h) in merged_latency(results) {
        set_latency(&mut merged, mode.as_str(), summary::latency(&h));
    }
    merged
}

/// Sets a mode's latency figures (read from a histogram) and the ratios made of them.
fn set_latency(s: &mut Summary, mode: &str, latency: crate::summary::mode::Latency) {
    let m = match mode {
        "poll" => &mut s.modes.poll,
        _ => &mut s.modes.push,
    };
    if let Some(m) = m {
        m.latency_ms = latency;
    }
    // The latency ratios follow the latencies; the others stay the repeats' medians.
    let from_latency = crate::summary::Ratios::of(&s.modes);
    s.ratios.latency_p50 = from_latency.latency_p50;
    s.ratios.latency_p99 = from_latency.latency_p99;
}

/// Each mode's latency histogram over all repeats. The sum grows to whatever range a
/// repeat brings (a histogram read back from another build's .hlog may reach further
/// than ours), so no repeat's values are ever left out of it.
fn merged_latency(results: &[RunResult]) -> Vec<(Mode, Histogram<u64>)> {
    let mut out: Vec<(Mode, Histogram<u64>)> = Vec::new();
    for m in results.iter().flat_map(|r| &r.modes) {
        match out.iter_mut().find(|(mode, _)| *mode == m.mode) {
            Some((_, h)) => h
                .add(&m.outcome.latency)
                .expect("an auto-resizing histogram takes any other histogram"),
            None => {
                let mut h = m.outcome.latency.clone();
                h.auto(true);
                out.push((m.mode, h));
            }
        }
    }
    out
}

/// One row per second per mode (and per repeat): the samples taken through each window.
pub fn timeseries_csv(results: &[RunResult]) -> String {
    let names: Vec<&str> = crate::result::Sample::default()
        .csv_fields()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut out = format!("repeat,mode,{}\n", names.join(","));
    for (i, r) in results.iter().enumerate() {
        for m in &r.modes {
            for s in &m.samples {
                let fields = s.csv_fields();
                let values: Vec<String> = fields.into_iter().map(|(_, v)| v).collect();
                out.push_str(&format!("{},{},{}\n", i + 1, m.mode, values.join(",")));
            }
        }
    }
    out
}

/// Writes the result folder for one run or for the repeats of one plan; evaluates the
/// plan's checks into the summary; returns the summary it wrote.
pub fn write(results: &[RunResult], out: &Path) -> anyhow::Result<Summary> {
    let plan = &results
        .first()
        .ok_or_else(|| anyhow::anyhow!("no run to report"))?
        .plan;
    let fail = |what: &str, e: std::io::Error| {
        input(format!("cannot write {what} in {}: {e}", out.display()))
    };
    std::fs::create_dir_all(out).map_err(|e| fail("the folder", e))?;
    let mut typed = combined_summary(results);
    if !plan.checks.is_empty() {
        typed.checks = Some(checks::evaluate(plan, &typed));
    }
    let text = serde_json::to_string_pretty(&typed.to_value())?;
    std::fs::write(out.join("summary.json"), text + "\n").map_err(|e| fail("summary.json", e))?;
    std::fs::write(out.join("scenario.toml"), plan.to_toml())
        .map_err(|e| fail("scenario.toml", e))?;
    let latency = merged_latency(results);
    for (mode, h) in &latency {
        let intervals: Vec<hgrm::Interval<'_>> = results
            .iter()
            .flat_map(|r| &r.modes)
            .filter(|m| m.mode == *mode)
            .map(|m| hgrm::Interval {
                start: m.window_start,
                length: std::time::Duration::from_secs_f64(m.window_s.max(0.0)),
                histogram: &m.outcome.latency,
            })
            .collect();
        hgrm_files(out, mode.as_str(), h, &intervals)?;
    }
    plot::latency_cdf(plan, &plot::cdf_points(&latency), out)?;
    std::fs::write(out.join("timeseries.csv"), timeseries_csv(results))
        .map_err(|e| fail("timeseries.csv", e))?;
    let last = results.last().expect("checked above");
    plot::db_queries_over_time(plan, &plot::db_series(last), out)?;
    plot::cpu_by_component(plan, &typed, out)?;
    plot::bandwidth(plan, &typed, out)?;
    html::write_reports(out, &markdown::render(&typed))?;
    if let [r] = results {
        if let Some(shard) = &r.shard {
            write_shard(r, shard, out)?;
        }
    }
    Ok(typed)
}

/// A shard's raw figures, `shard.json`, for the run that started it or `merge`.
fn write_shard(r: &RunResult, shard: &ShardInfo, out: &Path) -> anyhow::Result<()> {
    crate::result::write_shard_json(
        &out.join("shard.json"),
        shard,
        r.plan.to_toml(),
        r.started_at,
        &r.machine,
        &r.db_source,
        &r.modes,
    )
}

/// Writes a mode's `latency-<mode>.hgrm` (the distribution of `total`, for people) and
/// `latency-<mode>.hlog` (lossless, one interval per repeat: `report` and `combine` read it).
fn hgrm_files(
    out: &Path,
    mode: &str,
    total: &Histogram<u64>,
    intervals: &[hgrm::Interval<'_>],
) -> anyhow::Result<()> {
    let fail = |name: &str, e: std::io::Error| {
        input(format!("cannot write {name} in {}: {e}", out.display()))
    };
    let name = format!("latency-{mode}.hgrm");
    std::fs::write(out.join(&name), hgrm::render(total)).map_err(|e| fail(&name, e))?;
    let name = format!("latency-{mode}.hlog");
    std::fs::write(out.join(&name), hgrm::to_hlog(intervals, mode)?).map_err(|e| fail(&name, e))
}

/// The `report` command: re-renders the plots and `report.md` of a result folder from what
/// it saved (`summary.json`, `scenario.toml`, `latency-<mode>.hgrm`, `timeseries.csv`), so a
/// change to the report reaches old runs without running them again.
pub fn rerender(dir: &Path) -> anyhow::Result<()> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| {
            input(format!(
                "cannot read {}: {e}; give a result folder written by `pollpush run`",
                dir.join(name).display()
            ))
        })
    };
    let text = read("summary.json")?;
    let summary: Value = serde_json::from_str(&text).map_err(|e| {
        input(format!(
            "{} is not a summary: {e}",
            dir.join("summary.json").display()
        ))
    })?;
    let plan = crate::scenario::load(Some(&dir.join("scenario.toml")), &[])?;
    if summary.get("capacity").is_some() {
        let doc: crate::summary::capacity::CapacityDocument =
            serde_path_to_error::deserialize(summary).map_err(|e| {
                input(format!(
                    "{}: the capacity search does not read at `{}`: {}",
                    dir.join("summary.json").display(),
                    e.path(),
                    e.inner()
                ))
            })?;
        return capacity::write_views(&plan, &doc.capacity, dir).map(|_| ());
    }
    let summary = Summary::parse(&text).map_err(|e| {
        input(format!(
            "{} does not read as a pollpush summary: {e}",
            dir.join("summary.json").display()
        ))
    })?;
    if summary.sweep.is_some() {
        return sweep::rerender(&summary, dir);
    }
    // The lossless histograms where the run saved them (since the .hlog files exist), so
    // the CDF is drawn exactly as the run drew it; else the .hgrm percentiles.
    let mut exact = Vec::new();
    for &mode in &plan.modes {
        let path = dir.join(format!("latency-{mode}.hlog"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            let h =
                hgrm::from_hlog(&text).map_err(|e| input(format!("{}: {e:#}", path.display())))?;
            exact.push((mode, h));
        }
    }
    let mut cdf = plot::Series::new();
    for &mode in &plan.modes {
        if exact.iter().any(|(m, _)| *m == mode) {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(dir.join(format!("latency-{mode}.hgrm"))) {
            let pts = hgrm::parse(&text);
            if !pts.is_empty() {
                cdf.push((
                    mode,
                    pts.into_iter()
                        .map(|(ms, q)| (ms.max(0.01), q * 100.0))
                        .collect(),
                ));
            }
        }
    }
    cdf.extend(plot::cdf_points(&exact));
    plot::latency_cdf(&plan, &cdf, dir)?;
    if let Ok(csv) = std::fs::read_to_string(dir.join("timeseries.csv")) {
        plot::db_queries_over_time(&plan, &db_series_from_csv(&csv), dir)?;
    }
    plot::cpu_by_component(&plan, &summary, dir)?;
    plot::bandwidth(&plan, &summary, dir)?;
    html::write_reports(dir, &markdown::render(&summary))
}

/// Postgres's queries per second of each mode from `timeseries.csv`, last repeat.
pub fn db_series_from_csv(csv: &str) -> plot::Series {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(rep), Some(mode), Some(t), Some(q)) = (
        col("repeat"),
        col("mode"),
        col("t_s"),
        col("db_queries_per_s"),
    ) else {
        return Vec::new();
    };
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let last = rows
        .iter()
        .filter_map(|r| r.get(rep)?.parse::<u32>().ok())
        .max();
    let mut series = plot::Series::new();
    for r in &rows {
        if r.get(rep).and_then(|x| x.parse::<u32>().ok()) != last {
            continue;
        }
        let m = match r.get(mode).copied() {
            Some("poll") => Mode::Poll,
            Some("push") => Mode::Push,
            _ => continue,
        };
        let (Some(x), Some(y)) = (
            r.get(t).and_then(|x| x.parse::<f64>().ok()),
            r.get(q).and_then(|x| x.parse::<f64>().ok()),
        ) else {
            continue;
        };
        match series.iter_mut().find(|(mm, _)| *mm == m) {
            Some((_, pts)) => pts.push((x, y)),
            None => series.push((m, vec![(x, y)])),
        }
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_combine_latency_exactly_and_losses_by_the_worst_repeat() {
        let plan = crate::scenario::parse(
            &crate::scenario::Source {
                label: "r",
                text: "name = \"r\"\nmodes = [\"push\"]\n",
            },
            &[],
        )
        .unwrap();
        let run = |values_ms: std::ops::RangeInclusive<u64>, sent: u64, lost: u64| {
            let mut r = RunResult::template(&plan);
            let o = &mut r.modes[0].outcome;
            for v in values_ms {
                o.latency.record(v * 1000).unwrap();
            }
            (o.sent, o.delivered, o.lost) = (sent, sent - lost, lost);
            r
        };
        // One fast repeat, one slow, one in between; the slow one lost the most.
        let results = [
            run(1..=100, 100, 0),
            run(901..=1000, 100, 5),
            run(401..=500, 50, 1),
        ];
        let s = combined_summary(&results);
        let push = s.modes.push.as_ref().unwrap();
        let lat = &push.latency_ms;
        let all = merged_latency(&results);
        assert_eq!(lat.count, 300);
        assert_eq!(lat.p99, summary::latency(&all[0].1).p99);
        assert!(lat.p50 <= lat.p99 && lat.p99 <= lat.max);
        // lost and its share come from the same, worst repeat: 5 of 100, not 5 of a median.
        assert_eq!(push.events.lost, 5);
        assert_eq!(push.events.lost_ratio, Some(0.05));
        assert_eq!(
            s.combined.unwrap().latency_ms,
            "every repeat's histogram added up"
        );
    }

    #[test]
    fn time_series_read_back_from_csv_keep_the_last_repeat() {
        let csv = "repeat,mode,t_s,requests_per_s,deliveries_per_s,db_queries_per_s\n1,poll,1,5,0,100\n2,poll,1,5,0,200\n2,poll,2,5,0,210\n2,push,1,0,3,\n2,push,2,0,3,4\n";
        let s = db_series_from_csv(csv);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], (Mode::Poll, vec![(1.0, 200.0), (2.0, 210.0)]));
        assert_eq!(
            s[1],
            (Mode::Push, vec![(2.0, 4.0)]),
            "an empty reading is skipped"
        );
        assert!(db_series_from_csv("").is_empty());
    }

    #[test]
    fn a_summary_of_repeats_is_a_summary_compare_reads() {
        let text = "name = \"r\"\n";
        let plan =
            crate::scenario::parse(&crate::scenario::Source { label: "r", text }, &[]).unwrap();
        let runs = [RunResult::template(&plan), RunResult::template(&plan)];
        let s = combined_summary(&runs);
        assert_eq!(s.repeats.as_ref().unwrap().len(), 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        std::fs::write(&path, serde_json::to_string(&s).unwrap()).unwrap();
        let loaded = compare::read(&path).unwrap();
        assert!(compare::compare(&loaded, &loaded, &[])
            .unwrap()
            .regressions
            .is_empty());
    }

    #[test]
    fn repeats_merge_to_medians_but_losses_to_the_worst() {
        let text = "name = \"r\"\nmodes = [\"push\"]\n";
        let plan =
            crate::scenario::parse(&crate::scenario::Source { label: "r", text }, &[]).unwrap();
        let each: Vec<Summary> = [(2.0, 0, 10), (9.0, 3, 10), (3.0, 0, 10)]
            .into_iter()
            .map(|(cores, lost, users)| {
                let mut s = summary::build(&RunResult::template(&plan));
                let push = s.modes.push.as_mut().unwrap();
                (push.cpu.server_cores, push.events.lost, push.users) = (Some(cores), lost, users);
                s
            })
            .collect();
        let m = Summary::merge_repeats(&each);
        let push = m.modes.push.unwrap();
        assert_eq!(push.cpu.server_cores, Some(3.0));
        assert_eq!(push.events.lost, 3);
        assert_eq!(push.users, 10, "equal numbers stay exactly as they are");
        assert_eq!(m.scenario, "r");
        assert!(m
            .combined
            .unwrap()
            .worst_of_repeats
            .contains(&"push.events.lost".to_string()));
    }
}
