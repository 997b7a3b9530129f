//! `pollpush combine RUN... --out DIR`: single runs of one scenario, measured apart (a CI
//! job alternating the base build and the PR's), made into one result folder with
//! repeats, exactly as `run --repeat K` would have written it: latency from every run's
//! histogram added up (read losslessly from `latency-<mode>.hlog`), losses and errors the
//! worst run's, every other figure the median, each run's figures kept under `repeats`.

use std::path::{Path, PathBuf};

use super::compare::{machine_differences, read, same_plan};
use super::{checks, hgrm_files, set_latency, summary};
use crate::error::input;
use crate::metrics::hgrm;
use crate::summary::Summary;

/// Combines the result folders `runs` into `out`; returns the summary it wrote.
/// The summaries of `runs`: single runs of one plan on one machine.
fn read_runs(runs: &[PathBuf]) -> anyhow::Result<Vec<Summary>> {
    if runs.len() < 2 {
        return Err(input(
            "combine needs two or more result folders (the runs to combine); one is already a result",
        ));
    }
    let mut each = Vec::new();
    for dir in runs {
        if !dir.is_dir() {
            return Err(input(format!(
                "{} is not a result folder; give the folders `pollpush run` or `swarm` wrote (--out)",
                dir.display()
            )));
        }
        let s = read(dir)?;
        if s.sweep.is_some() {
            return Err(input(format!(
                "{} is a sweep; combine the folders of single runs",
                dir.display()
            )));
        }
        if let Some(k) = &s.repeats {
            return Err(input(format!(
                "{} already combines {} repeats; combine the single runs themselves",
                dir.display(),
                k.len()
            )));
        }
        each.push(s);
    }
    let first = &each[0];
    for (dir, s) in runs.iter().zip(&each).skip(1) {
        same_plan(first, s).map_err(|e| input(format!("{}: {e}", dir.display())))?;
        let machines = machine_differences(first, s);
        if !machines.is_empty() {
            return Err(input(format!(
                "{} was measured on another machine than {} ({}); combine runs of one machine",
                dir.display(),
                runs[0].display(),
                machines.join("; ")
            )));
        }
    }
    Ok(each)
}

pub fn combine(runs: &[PathBuf], out: &Path) -> anyhow::Result<Summary> {
    let each = read_runs(runs)?;
    let mut merged = Summary::merge_repeats(&each);

    // Latency: every run's histogram, added up exactly.
    let modes: Vec<&str> = merged.modes.iter().map(|(name, _)| name).collect();
    let mut logs = Vec::new();
    for mode in &modes {
        let mut intervals = Vec::new();
        for dir in runs {
            let path = dir.join(format!("latency-{mode}.hlog"));
            let text = std::fs::read_to_string(&path).map_err(|e| {
                input(format!(
                    "cannot read {}: {e}; combine needs each run's lossless histograms, written by this version of pollpush",
                    path.display()
                ))
            })?;
            intervals.extend(
                hgrm::intervals(&text).map_err(|e| input(format!("{}: {e:#}", path.display())))?,
            );
        }
        let mut total = crate::metrics::latency_histogram();
        for (_, _, h) in &intervals {
            total
                .add(h)
                .map_err(|e| input(format!("a histogram of mode {mode} does not fit: {e:?}")))?;
        }
        set_latency(&mut merged, mode, summary::latency(&total));
        logs.push((mode.to_string(), intervals, total));
    }
    if let Some(c) = &mut merged.combined {
        c.from = Some(runs.iter().map(|d| d.display().to_string()).collect());
    }

    let plan = crate::scenario::load(Some(&runs[0].join("scenario.toml")), &[])?;
    if !plan.checks.is_empty() {
        merged.checks = Some(checks::evaluate(&plan, &merged));
    }
    let fail = |what: &str, e: std::io::Error| {
        input(format!("cannot write {what} in {}: {e}", out.display()))
    };
    std::fs::create_dir_all(out).map_err(|e| fail("the folder", e))?;
    let text = serde_json::to_string_pretty(&merged.to_value())?;
    std::fs::write(out.join("summary.json"), text + "\n").map_err(|e| fail("summary.json", e))?;
    std::fs::copy(runs[0].join("scenario.toml"), out.join("scenario.toml"))
        .map_err(|e| fail("scenario.toml", e))?;
    for (mode, intervals, total) in &logs {
        let list: Vec<hgrm::Interval<'_>> = intervals
            .iter()
            .map(|(start, length, h)| hgrm::Interval {
                start: *start,
                length: *length,
                histogram: h,
            })
            .collect();
        hgrm_files(out, mode, total, &list)?;
    }
    std::fs::write(out.join("timeseries.csv"), timeseries(runs)?)
        .map_err(|e| fail("timeseries.csv", e))?;
    super::rerender(out)?;
    Ok(merged)
}

/// The runs' per-second samples in one table, each run numbered as a repeat.
fn timeseries(runs: &[PathBuf]) -> anyhow::Result<String> {
    let mut out = String::new();
    for (i, dir) in runs.iter().enumerate() {
        let path = dir.join("timeseries.csv");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| input(format!("cannot read {}: {e}", path.display())))?;
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        if out.is_empty() {
            out.push_str(header);
            out.push('\n');
        } else if !out.starts_with(&format!("{header}\n")) {
            return Err(input(format!(
                "{} has other columns than {}; combine runs of one pollpush version",
                path.display(),
                runs[0].join("timeseries.csv").display()
            )));
        }
        for line in lines {
            // The first column is the repeat; the run's place in the list replaces it.
            let rest = line.split_once(',').map_or("", |(_, r)| r);
            out.push_str(&format!("{},{rest}\n", i + 1));
        }
    }
    Ok(out)
}
