//! `pollpush merge SHARD... --out DIR`: the folders the shards of one run wrote (`swarm
//! --shard I/K`, each with its raw figures in `shard.json`) made into one result folder, as
//! if one swarm had held every user. Counts and each second's client rates are summed,
//! latency histograms added exactly (never percentiles averaged), the servers' side taken
//! from shard 0, which measured it for the whole run.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::input;
use crate::result::{ClockOffset, ModeResult, RunResult, ShardFile};

/// Merges the shard folders `dirs` into `out`; returns the summary it wrote.
/// The shards in `dirs`, in index order: one run's, each once, none missing.
fn read_shards(dirs: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, ShardFile)>> {
    let mut shards = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(input(format!(
                "{} is not a folder; give the folders the shards wrote (swarm --shard I/K --out DIR)",
                dir.display()
            )));
        }
        shards.push((dir.clone(), ShardFile::read(dir)?));
    }
    let (first_dir, first) = &shards[0];
    let (id, count) = (first.shard.run_id.clone(), first.shard.count);
    for (dir, s) in &shards[1..] {
        if s.shard.run_id != id {
            return Err(input(format!(
                "{} is a shard of run {}, {} of run {}: merge the shards of one run",
                dir.display(),
                s.shard.run_id,
                first_dir.display(),
                id
            )));
        }
        if s.shard.count != count || s.scenario != first.scenario {
            return Err(input(format!(
                "{} and {} share the run id {id} but not the run (shard count {} and {count}, or the scenario differs): start every shard with one scenario and one --shard I/K count",
                dir.display(),
                first_dir.display(),
                s.shard.count
            )));
        }
    }
    shards.sort_by_key(|(_, s)| s.shard.index);
    for pair in shards.windows(2) {
        if pair[0].1.shard.index == pair[1].1.shard.index {
            return Err(input(format!(
                "{} and {} are both shard {} of run {id}: give each shard once",
                pair[0].0.display(),
                pair[1].0.display(),
                pair[0].1.shard.index
            )));
        }
    }
    let have: Vec<u64> = shards.iter().map(|(_, s)| s.shard.index).collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !have.contains(i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(input(format!(
            "run {id} has {count} shards; shard(s) {} are missing: a merge of part of the users would undercount every figure",
            missing.join(", ")
        )));
    }
    Ok(shards)
}

pub fn merge(dirs: &[PathBuf], out: &Path) -> anyhow::Result<crate::summary::Summary> {
    let shards = read_shards(dirs)?;
    let (id, count) = (shards[0].1.shard.run_id.clone(), shards[0].1.shard.count);
    let mut shards = shards.into_iter();
    let (lead_dir, lead) = shards.next().expect("at least one folder");
    let plan = crate::scenario::load(Some(&lead_dir.join("scenario.toml")), &[])?;
    let mut modes = lead.modes;
    let mut gaps = serde_json::Map::new();
    let mut clocks = vec![lead.shard.clock.clone()];
    for (dir, s) in shards {
        clocks.push(s.shard.clock.clone());
        for m in &mut modes {
            let other = s.modes.iter().find(|o| o.mode == m.mode).ok_or_else(|| {
                input(format!(
                    "{}: the shard has no mode {}",
                    dir.display(),
                    m.mode
                ))
            })?;
            let gap = signed_gap(m, other, lead.shard.clock.as_ref(), s.shard.clock.as_ref());
            let key = format!("{}/{}", m.mode, s.shard.index);
            gaps.insert(key, json!((gap * 1000.0).round() / 1000.0));
            m.absorb_shard(other)
                .map_err(|e| input(format!("{}: {e:#}", dir.display())))?;
        }
    }
    let result = RunResult {
        plan,
        started_at: lead.started_at,
        machine: lead.machine,
        db_source: lead.db_source,
        shard: None,
        modes,
    };
    let mut summary = super::write(&[result], out)?;
    summary.merged = Some(crate::summary::Merged {
        run_id: id.to_string(),
        shards: count,
        from: dirs.iter().map(|d| d.display().to_string()).collect(),
        // Seconds from shard 0's window to each other shard's (negative: it opened
        // earlier), by mode/shard, on the servers' clock where both shards measured their
        // offset to it: the merged rates mix windows this far apart.
        window_gap_s: gaps.clone(),
        clocks: clocks_json(&clocks, &gaps),
    });
    let mut report = super::markdown::render(&summary);
    report.push_str(&clocks_section(&clocks, &gaps));
    super::html::write_reports(out, &report)?;
    let text = serde_json::to_string_pretty(&summary.to_value())?;
    std::fs::write(out.join("summary.json"), text + "\n").map_err(|e| {
        input(format!(
            "cannot write summary.json in {}: {e}",
            out.display()
        ))
    })?;
    Ok(summary)
}

/// Seconds from `lead`'s window to `other`'s, corrected by the shards' clock offsets when
/// both were measured.
fn signed_gap(
    lead: &ModeResult,
    other: &ModeResult,
    lead_clock: Option<&ClockOffset>,
    other_clock: Option<&ClockOffset>,
) -> f64 {
    let raw = match other.window_start.duration_since(lead.window_start) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    match (lead_clock, other_clock) {
        (Some(a), Some(b)) => raw + (b.offset_us - a.offset_us) as f64 / 1e6,
        _ => raw,
    }
}

/// Shards whose clock is this far off the servers' are named (ms).
const OFFSET_NOTED_MS: f64 = 100.0;
/// Offsets less certain than this are flagged (ms).
const UNCERTAINTY_FLAGGED_MS: f64 = 50.0;
/// Windows further apart than this are flagged (s).
const GAP_FLAGGED_S: f64 = 1.0;

/// What the merged summary says of the shards' clocks: each shard's offset and its bound,
/// and the flags.
fn clocks_json(clocks: &[Option<ClockOffset>], gaps: &serde_json::Map<String, Value>) -> Value {
    let shards: Vec<Value> = clocks
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            Some(c) => json!({
                "shard": i,
                "reference": c.reference,
                "offset_ms": c.offset_us as f64 / 1000.0,
                "uncertainty_ms": c.uncertainty_us as f64 / 1000.0,
                "samples": c.samples,
            }),
            None => json!({ "shard": i, "offset_ms": null }),
        })
        .collect();
    json!({
        "shards": shards,
        "latency": "each shard stamps its own users' events and reads them back: latency is measured on one clock and no offset enters it",
        "flags": clock_flags(clocks, gaps),
    })
}

fn clock_flags(
    clocks: &[Option<ClockOffset>],
    gaps: &serde_json::Map<String, Value>,
) -> Vec<String> {
    let mut flags = Vec::new();
    let measured = clocks.iter().filter(|c| c.is_some()).count();
    for (i, c) in clocks.iter().enumerate() {
        match c {
            Some(c) => {
                let (off, unc) = (
                    c.offset_us as f64 / 1000.0,
                    c.uncertainty_us as f64 / 1000.0,
                );
                if off.abs() > OFFSET_NOTED_MS {
                    flags.push(format!(
                        "shard {i}'s clock is {off:+.1} ms off the servers': its --start-at was read on the servers' clock"
                    ));
                }
                if unc > UNCERTAINTY_FLAGGED_MS {
                    flags.push(format!(
                        "shard {i}'s offset is uncertain by ±{unc:.1} ms (a slow round trip to {}): its window's alignment is no better",
                        c.reference
                    ));
                }
            }
            None if measured > 0 && i > 0 => flags.push(format!(
                "shard {i}'s clock was not measured: its window gap is on its own clock"
            )),
            None => {}
        }
    }
    for (key, gap) in gaps {
        if let Some(g) = gap.as_f64().filter(|g| g.abs() > GAP_FLAGGED_S) {
            flags.push(format!(
                "{key}: the window opened {g:+.3} s from shard 0's: the merged per-second rates mix windows that far apart"
            ));
        }
    }
    flags
}

/// The report's section on the shards and their clocks.
fn clocks_section(clocks: &[Option<ClockOffset>], gaps: &serde_json::Map<String, Value>) -> String {
    let mut out = String::from(
        "\n## Shards and their clocks\n\nEach shard measured its clock against the servers' (`GET /clock`, the exchange with the shortest round trip of several) before it started, and read `--start-at` on the servers' clock. Latency is not affected: each shard stamps its own users' events and reads them back on one clock.\n\n| shard | offset to the servers' clock (ms) | ± (ms) | reference | window opened after shard 0's (s) |\n|---:|---:|---:|---|---|\n",
    );
    for (i, c) in clocks.iter().enumerate() {
        let opened: Vec<String> = gaps
            .iter()
            .filter(|(k, _)| k.rsplit('/').next() == Some(&i.to_string()))
            .map(|(k, g)| format!("{}: {}", k.split('/').next().unwrap_or(""), g))
            .collect();
        let opened = if i == 0 {
            "-".to_string()
        } else {
            opened.join(", ")
        };
        match c {
            Some(c) => out.push_str(&format!(
                "| {i} | {:+.3} | {:.3} | {} | {opened} |\n",
                c.offset_us as f64 / 1000.0,
                c.uncertainty_us as f64 / 1000.0,
                c.reference
            )),
            None => out.push_str(&format!("| {i} | not measured | | | {opened} |\n")),
        }
    }
    let flags = clock_flags(clocks, gaps);
    if !flags.is_empty() {
        out.push('\n');
        for f in flags {
            out.push_str(&format!("- **{f}**\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(off_us: i64, unc_us: u64) -> Option<ClockOffset> {
        Some(ClockOffset {
            reference: "10.0.0.1:8082".into(),
            offset_us: off_us,
            uncertainty_us: unc_us,
            samples: 16,
        })
    }

    #[test]
    fn far_clocks_loose_offsets_and_distant_windows_are_flagged() {
        let mut gaps = serde_json::Map::new();
        gaps.insert("push/1".into(), json!(0.004));
        gaps.insert("push/2".into(), json!(-2.5));
        let clocks = [
            clock(0, 80),
            clock(350_000, 120),
            clock(-1_000, 75_000),
            None,
        ];
        let flags = clock_flags(&clocks, &gaps);
        assert!(
            flags
                .iter()
                .any(|f| f.starts_with("shard 1's clock is +350.0 ms")),
            "{flags:?}"
        );
        assert!(
            flags
                .iter()
                .any(|f| f.starts_with("shard 2's offset is uncertain by ±75.0 ms")),
            "{flags:?}"
        );
        assert!(
            flags
                .iter()
                .any(|f| f.starts_with("shard 3's clock was not measured")),
            "{flags:?}"
        );
        assert!(
            flags
                .iter()
                .any(|f| f.starts_with("push/2: the window opened -2.500 s")),
            "{flags:?}"
        );
        assert_eq!(flags.len(), 4, "{flags:?}");
        let section = clocks_section(&clocks, &gaps);
        assert!(
            section.contains("| 1 | +350.000 | 0.120 | 10.0.0.1:8082 | push: 0.004 |"),
            "{section}"
        );
        assert!(clock_flags(&[clock(10, 80), clock(-20, 90)], &serde_json::Map::new()).is_empty());
    }
}
