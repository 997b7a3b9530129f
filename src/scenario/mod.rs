//! Scenario files in two stages: [`RawScenario`] mirrors the TOML exactly (unknown keys are
//! errors), then [`Plan`] is the validated, typed thing a run executes. Every error names
//! where the value came from: `file:line` for the file, `--set KEY` for an override.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use crate::error::input;

mod ctx;
mod faults;
mod overrides;
mod plan;
mod raw;
mod sweep;
pub mod target;
#[cfg(test)]
mod tests;
mod validate;

pub use ctx::{line_of_path, Source};
pub use overrides::parse_override;
pub use plan::*;
pub use raw::{RawAlternative, RawScenario};
pub use sweep::ALTERNATIVE;
pub use target::{RawTarget, Target};

use ctx::Ctx;
use overrides::set_path;
use raw::RawScenario as Raw;

/// The built-in default scenario, the same text as `scenarios/seed.toml`.
pub const SEED_TOML: &str = include_str!("../../scenarios/seed.toml");

/// Loads a scenario file (or the built-in seed) and applies `key=value` overrides.
pub fn load(path: Option<&Path>, overrides: &[String]) -> anyhow::Result<Plan> {
    let (label, text) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                input(format!(
                    "cannot read scenario file {}: {e} (give the path of a TOML scenario, e.g. scenarios/seed.toml)",
                    p.display()
                ))
            })?;
            (p.display().to_string(), text)
        }
        None => (
            "scenarios/seed.toml (built in)".to_string(),
            SEED_TOML.to_string(),
        ),
    };
    parse(
        &Source {
            label: &label,
            text: &text,
        },
        overrides,
    )
}

/// Parses scenario text, applies overrides, validates.
pub fn parse(src: &Source<'_>, overrides: &[String]) -> anyhow::Result<Plan> {
    // First the file alone, so that its errors carry its own line numbers.
    let mut raw: Raw = toml::from_str(src.text).map_err(|e| {
        input(format!(
            "scenario {}: {}",
            src.label,
            e.to_string().trim_end()
        ))
    })?;
    let mut overridden = BTreeSet::new();
    if !overrides.is_empty() {
        let mut table: toml::Table =
            toml::from_str(src.text).map_err(|e| input(format!("scenario {}: {e}", src.label)))?;
        for ov in overrides {
            let (key, value) = parse_override(ov)?;
            set_path(&mut table, &key, value)?;
            overridden.insert(key);
        }
        raw = Raw::deserialize(toml::Value::Table(table)).map_err(|e| {
            input(format!(
                "--set {}: {} (check the key names against scenarios/seed.toml)",
                overridden.iter().cloned().collect::<Vec<_>>().join(", "),
                e.to_string().trim_end()
            ))
        })?;
    }
    let ctx = Ctx { src, overridden };
    let sweep = raw.sweep.clone();
    let users_sweep = raw.users.sweep.clone();
    let alternatives = raw.alternatives.clone();
    let mut plan = validate::validate(raw, &ctx)?;
    // Where a bad point is reported: the shorthand or the table that asked for the sweep.
    let sweep_key = match users_sweep {
        Some(_) => "users.sweep",
        None => "sweep.values",
    };
    if let Some(alts) = alternatives {
        if sweep.is_some() || users_sweep.is_some() {
            return Err(ctx.err(
                "alternatives",
                "a scenario runs either a sweep or [[alternatives]]: remove one",
            ));
        }
        let point = |ov: &[String]| parse_point(src, ov);
        plan.sweep = Some(sweep::alternatives(alts, overrides, &ctx, point)?);
        return Ok(plan);
    }
    if let Some(sweep) = sweep::sweep_of(sweep, users_sweep, &ctx)? {
        let point = |ov: &[String]| parse_point(src, ov);
        plan.sweep = Some(sweep::with_points(
            sweep, sweep_key, overrides, &ctx, point,
        )?);
    }
    Ok(plan)
}

/// One point of a sweep: the scenario with the point's values set and the sweep left out.
fn parse_point(src: &Source<'_>, overrides: &[String]) -> anyhow::Result<Plan> {
    let mut table: toml::Table =
        toml::from_str(src.text).map_err(|e| input(format!("scenario {}: {e}", src.label)))?;
    table.remove("sweep");
    table.remove("alternatives");
    if let Some(users) = table.get_mut("users").and_then(|u| u.as_table_mut()) {
        users.remove("sweep");
    }
    let text = toml::to_string(&table)?;
    let is_sweep = |ov: &String| {
        let key = ov.split('=').next().unwrap_or("").trim();
        key == "sweep"
            || key.starts_with("sweep.")
            || key == "users.sweep"
            || key.starts_with("alternatives")
    };
    let overrides: Vec<String> = overrides.iter().filter(|o| !is_sweep(o)).cloned().collect();
    let mut plan = parse(
        &Source {
            label: src.label,
            text: &text,
        },
        &overrides,
    )?;
    plan.sweep = None;
    Ok(plan)
}
