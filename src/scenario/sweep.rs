//! Sweeps: the plan once per value of a key (times each value of a series key).

use super::ctx::Ctx;
use super::plan::{value_text, Plan, Sweep, SweepPoint};
use super::raw::{RawAlternative, RawSweep};
use crate::error::input;

/// Keys a sweep may not vary: they name the run or belong to the sweep.
const NOT_SWEPT: &[&str] = &[
    "name",
    "description",
    "sweep",
    "checks",
    "compare",
    "faults",
    "users.sweep",
];

/// The sweep a scenario asks for (`[sweep]`, or `users.sweep` as its shorthand), checked;
/// its points are filled in by the caller.
pub fn sweep_of(
    raw: Option<RawSweep>,
    users_sweep: Option<Vec<u64>>,
    ctx: &Ctx<'_>,
) -> anyhow::Result<Option<Sweep>> {
    let from_users = users_sweep.is_some();
    let raw = match (raw, users_sweep) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(ctx.err(
                "users.sweep",
                "a scenario has one sweep: use either users.sweep or [sweep]",
            ))
        }
        (None, Some(users)) => RawSweep {
            param: Some("users.count".into()),
            values: Some(
                users
                    .into_iter()
                    .map(|u| toml::Value::Integer(u as i64))
                    .collect(),
            ),
            series: None,
            series_values: None,
        },
        (Some(raw), None) => raw,
    };
    let param = raw.param.ok_or_else(|| {
        ctx.err(
            "sweep",
            "needs `param`, the key to vary, e.g. param = \"push.instances\"",
        )
    })?;
    let check_key = |key: &str, field: &str| {
        if key.is_empty()
            || NOT_SWEPT
                .iter()
                .any(|k| key == *k || key.starts_with(&format!("{k}.")))
        {
            Err(ctx.err(field, format!("{key:?} cannot be swept; sweep a setting such as users.count, poll.interval or push.instances")))
        } else {
            Ok(())
        }
    };
    let values_key = if from_users {
        "users.sweep"
    } else {
        "sweep.values"
    };
    check_key(&param, "sweep.param")?;
    let values = raw.values.unwrap_or_default();
    if values.is_empty() || values.len() > 20 {
        return Err(ctx.err(
            values_key,
            "give 1 to 20 values to run, e.g. values = [1, 2, 4]",
        ));
    }
    let (series, series_values) = match (raw.series, raw.series_values) {
        (None, None) => (None, Vec::new()),
        (Some(key), Some(vals)) if !vals.is_empty() && vals.len() <= 10 => {
            check_key(&key, "sweep.series")?;
            if key == param {
                return Err(ctx.err("sweep.series", "must be another key than sweep.param"));
            }
            (Some(key), vals)
        }
        (Some(_), _) => return Err(ctx.err("sweep.series_values", "give 1 to 10 values, one curve each, e.g. series_values = [\"broadcast\", \"per-user\"]")),
        (None, Some(_)) => return Err(ctx.err("sweep.series_values", "needs sweep.series, the key they set")),
    };
    Ok(Some(Sweep {
        param,
        values,
        series,
        series_values,
        points: Vec::new(),
        alternatives: None,
    }))
}

/// The param of a sweep over `[[alternatives]]`.
pub const ALTERNATIVE: &str = "alternative";

/// `[[alternatives]]`: one run per entry, its mode alone with its keys set; the points are
/// parsed by `parse_point` with the entry's settings added to `overrides`.
pub fn alternatives(
    raw: Vec<RawAlternative>,
    overrides: &[String],
    ctx: &Ctx<'_>,
    parse_point: impl Fn(&[String]) -> anyhow::Result<Plan>,
) -> anyhow::Result<Sweep> {
    if raw.is_empty() || raw.len() > 20 {
        return Err(ctx.err("alternatives", "give 1 to 20 [[alternatives]]"));
    }
    let mut names: Vec<String> = Vec::new();
    let mut points = Vec::new();
    for (i, alt) in raw.iter().enumerate() {
        let key = |k: &str| format!("alternatives.{i}.{k}");
        let name = alt.name.clone().unwrap_or_default();
        let slug = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if name.is_empty() || name.len() > 40 || !name.chars().all(slug) {
            return Err(ctx.err(
                &key("name"),
                format!("{name:?}: name each alternative with 1 to 40 lower-case letters, digits and dashes, e.g. \"cached-poll\" (it names its folder)"),
            ));
        }
        if names.contains(&name) {
            return Err(ctx.err(&key("name"), format!("{name:?} is named twice")));
        }
        names.push(name.clone());
        let mode = alt.mode.as_deref().unwrap_or("");
        if !["poll", "push"].contains(&mode) {
            return Err(ctx.err(
                &key("mode"),
                format!("{mode:?}: each alternative runs one mode, \"poll\" or \"push\""),
            ));
        }
        let mut ov = overrides.to_vec();
        ov.push(format!("modes=[\"{mode}\"]"));
        for (k, v) in alt.set.iter().flatten() {
            if k == "modes" || k == "alternatives" || k == "sweep" || k.starts_with("sweep.") {
                return Err(ctx.err(
                    &key("set"),
                    format!("{k:?} cannot be set by an alternative; set poll.*, push.*, swarm.* or workload.* keys"),
                ));
            }
            ov.push(format!("{k}={v}"));
        }
        let label = format!("{ALTERNATIVE}={name}");
        let plan = parse_point(&ov).map_err(|e| {
            input(format!(
                "{}: the alternative {name:?} is not a valid scenario: {}",
                ctx.at(&key("set")),
                e.to_string().trim_start_matches("bad input: ")
            ))
        })?;
        points.push(SweepPoint {
            value: toml::Value::String(name),
            series_value: None,
            label,
            plan,
        });
    }
    Ok(Sweep {
        param: ALTERNATIVE.into(),
        values: names.into_iter().map(toml::Value::String).collect(),
        series: None,
        series_values: Vec::new(),
        points,
        alternatives: Some(raw),
    })
}

/// The sweep with its points: the scenario parsed once per combination of values, by
/// `parse_point` with the point's values added to `overrides`.
pub fn with_points(
    sweep: Sweep,
    sweep_key: &str,
    overrides: &[String],
    ctx: &Ctx<'_>,
    parse_point: impl Fn(&[String]) -> anyhow::Result<Plan>,
) -> anyhow::Result<Sweep> {
    let mut points = Vec::new();
    let series: Vec<Option<&toml::Value>> = match &sweep.series {
        Some(_) => sweep.series_values.iter().map(Some).collect(),
        None => vec![None],
    };
    for sv in series {
        for value in &sweep.values {
            let mut sets = vec![(sweep.param.clone(), value.clone())];
            if let (Some(key), Some(v)) = (&sweep.series, sv) {
                sets.push((key.clone(), v.clone()));
            }
            let label = sets
                .iter()
                .map(|(k, v)| format!("{k}={}", value_text(v)))
                .collect::<Vec<_>>()
                .join(",");
            let mut ov = overrides.to_vec();
            ov.extend(sets.iter().map(|(k, v)| format!("{k}={v}")));
            let plan = parse_point(&ov).map_err(|e| {
                input(format!(
                    "{}: the run with {label} is not a valid scenario: {}",
                    ctx.at(sweep_key),
                    e.to_string().trim_start_matches("bad input: ")
                ))
            })?;
            points.push(SweepPoint {
                value: value.clone(),
                series_value: sv.cloned(),
                label,
                plan,
            });
        }
    }
    Ok(Sweep { points, ..sweep })
}
