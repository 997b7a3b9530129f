//! Turns a finished [`RunResult`] into the result folder: `summary.json` (the contract that
//! CI and `compare` read), `scenario.toml`, `latency-<mode>.hgrm`, plots and `report.md`.
//! The table and report read the summary, so every figure they show is one it holds.

pub mod markdown;
pub mod plot;
pub mod summary;
pub mod table;

use std::path::Path;

use crate::error::input;
use crate::metrics::hgrm;
use crate::run::RunResult;

/// Writes the result folder; returns the summary it wrote.
pub fn write(result: &RunResult, out: &Path) -> anyhow::Result<serde_json::Value> {
    let fail = |what: &str, e: std::io::Error| {
        input(format!("cannot write {what} in {}: {e}", out.display()))
    };
    std::fs::create_dir_all(out).map_err(|e| fail("the folder", e))?;
    let summary = summary::build(result);
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(out.join("summary.json"), text + "\n").map_err(|e| fail("summary.json", e))?;
    std::fs::write(out.join("scenario.toml"), result.plan.to_toml())
        .map_err(|e| fail("scenario.toml", e))?;
    for m in &result.modes {
        let name = format!("latency-{}.hgrm", m.mode);
        std::fs::write(out.join(&name), hgrm::render(&m.outcome.latency))
            .map_err(|e| fail(&name, e))?;
    }
    plot::latency_cdf(result, out)?;
    std::fs::write(out.join("report.md"), markdown::render(&summary))
        .map_err(|e| fail("report.md", e))?;
    Ok(summary)
}
