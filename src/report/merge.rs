//! `pollpush merge SHARD... --out DIR`: the folders the shards of one run wrote (`swarm
//! --shard I/K`, each with its raw figures in `shard.json`) made into one result folder, as
//! if one swarm had held every user. Counts and each second's client rates are summed,
//! latency histograms added exactly (never percentiles averaged), the servers' side taken
//! from shard 0, which measured it for the whole run.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::input;
use crate::result::{RunResult, ShardFile};

/// Merges the shard folders `dirs` into `out`; returns the summary it wrote.
pub fn merge(dirs: &[PathBuf], out: &Path) -> anyhow::Result<Value> {
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
    let mut shards = shards.into_iter();
    let (lead_dir, lead) = shards.next().expect("at least one folder");
    let plan = crate::scenario::load(Some(&lead_dir.join("scenario.toml")), &[])?;
    let mut modes = lead.modes;
    let mut gaps = serde_json::Map::new();
    for (dir, s) in shards {
        for m in &mut modes {
            let other = s.modes.iter().find(|o| o.mode == m.mode).ok_or_else(|| {
                input(format!(
                    "{}: the shard has no mode {}",
                    dir.display(),
                    m.mode
                ))
            })?;
            let gap = m.window_gap(other);
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
    summary["merged"] = json!({
        "run_id": id,
        "shards": count,
        "from": dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
        // Seconds between shard 0's window and each other shard's, by mode/shard: the
        // merged rates mix windows this far apart.
        "window_gap_s": Value::Object(gaps),
    });
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(out.join("summary.json"), text + "\n").map_err(|e| {
        input(format!(
            "cannot write summary.json in {}: {e}",
            out.display()
        ))
    })?;
    Ok(summary)
}
