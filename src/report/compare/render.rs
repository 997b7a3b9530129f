//! `compare`'s output: the comparison as text, markdown or JSON, and `--list`.

use serde::Serialize;
use serde_json::json;

use super::{Better, Comparison, Listed, Row, Verdict};

/// `compare --list` as an aligned table, or as a markdown one.
pub fn render_list(rows: &[Listed], markdown: bool) -> String {
    let mut table = vec![vec![
        "figure".to_string(),
        "value".into(),
        "worse when".into(),
        "limit".into(),
        "floor".into(),
        "unit".into(),
        "repeats merged by".into(),
        "owner".into(),
    ]];
    for r in rows {
        let (worse, limit) = match (r.better, r.max_regression_pct) {
            (Some(Better::Lower), Some(p)) => ("higher", format!("+{p} %")),
            (Some(Better::Higher), Some(p)) => ("lower", format!("-{p} %")),
            _ => ("", "no verdict".to_string()),
        };
        let floor = match r.floor {
            Some(f) if f > 0.0 => num(Some(f)),
            _ => String::new(),
        };
        let word = |x: Option<String>| x.unwrap_or_default();
        let d = r.declared;
        table.push(vec![
            r.metric.clone(),
            num(r.value),
            worse.to_string(),
            limit,
            floor,
            word(d.map(|d| name_of(&d.unit))),
            word(d.map(|d| name_of(&d.merge).replace('_', " "))),
            word(d.map(|d| name_of(&d.owner).replace('_', " "))),
        ]);
    }
    let gated = rows.iter().filter(|r| r.better.is_some()).count();
    let mut out = if markdown {
        let mut lines = vec![
            "| figure | value | worse when | limit | floor | unit | repeats merged by | owner |"
                .to_string(),
            "|---|---:|---|---:|---:|---|---|---|".to_string(),
        ];
        for row in &table[1..] {
            lines.push(format!("| `{}` | {} |", row[0], row[1..].join(" | ")));
        }
        lines.push(String::new());
        lines
    } else {
        crate::report::table::align(&table, &[true, false, true, false, false, true, true, true])
    };
    out.push(format!(
        "{} figures, {gated} gated by default; a [checks] entry can name any of them (\"push.events.lost\" = \"== 0\"), --max-regression or [compare] any of them or a pattern ('*.latency_ms.p99=30'). The floor applies between single runs only.",
        rows.len()
    ));
    out.join("\n")
}

/// A declaration's word as summary.json and `--format json` spell it.
fn name_of(x: &impl Serialize) -> String {
    serde_json::to_value(x)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 1000.0 => crate::report::table::group(x.round() as i64),
        Some(x) if x == x.trunc() => format!("{x:.0}"),
        Some(x) => format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
    }
}

fn cells(r: &Row) -> [String; 6] {
    let change = match r.change_pct {
        Some(p) => format!("{p:+.1} %"),
        None => "-".into(),
    };
    let limit = match (r.better, r.max_regression_pct) {
        (Some(Better::Lower), Some(p)) => format!("+{p:.0} %"),
        (Some(Better::Higher), Some(p)) => format!("-{p:.0} %"),
        _ => String::new(),
    };
    let verdict = match r.verdict {
        Verdict::Ok => "ok".to_string(),
        Verdict::Improved => "improved".to_string(),
        Verdict::Regression => "REGRESSION".to_string(),
        Verdict::Noise => format!("noise (±{:.0} %)", r.noise_pct.unwrap_or(0.0)),
        Verdict::Info => String::new(),
    };
    [
        r.metric.clone(),
        num(r.baseline),
        num(r.current),
        change,
        limit,
        verdict,
    ]
}

/// Rows with a figure on at least one side (push has no poll response time, for one).
fn shown(r: &Row) -> bool {
    r.baseline.is_some() || r.current.is_some()
}

const HEAD: [&str; 6] = [
    "figure", "baseline", "current", "change", "limit", "verdict",
];

fn headline(c: &Comparison) -> String {
    if c.regressions.is_empty() {
        let gated = c
            .rows
            .iter()
            .filter(|r| r.better.is_some() && shown(r))
            .count();
        format!("no regression in {gated} gated figures")
    } else {
        format!(
            "{} regression(s): {}",
            c.regressions.len(),
            c.regressions.join(", ")
        )
    }
}

pub fn render_text(c: &Comparison) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(HEAD.map(String::from).to_vec())
        .chain(
            c.rows
                .iter()
                .filter(|r| shown(r))
                .map(|r| cells(r).to_vec()),
        )
        .collect();
    let mut out = vec![format!(
        "pollpush compare: scenario {} (baseline {}, current {})",
        c.scenario, c.baseline, c.current
    )];
    out.extend(crate::report::table::align(
        &rows,
        &[true, false, false, false, false, true],
    ));
    out.push(headline(c));
    out.join("\n")
}

pub fn render_markdown(c: &Comparison) -> String {
    let mut out = format!(
        "### pollpush compare: `{}`\n\n**{}** {}\n\n| figure | baseline | current | change | limit | verdict |\n|---|---:|---:|---:|---:|---|\n",
        c.scenario,
        if c.regressions.is_empty() { "PASS" } else { "FAIL" },
        headline(c)
    );
    // Gated figures first, regressions at the very top: what a reviewer needs to see.
    let mut rows: Vec<&Row> = c
        .rows
        .iter()
        .filter(|r| r.better.is_some() && shown(r))
        .collect();
    rows.sort_by_key(|r| r.verdict != Verdict::Regression);
    for r in rows {
        let [m, b, cur, ch, lim, v] = cells(r);
        let v = if r.verdict == Verdict::Regression {
            format!("**{v}**")
        } else {
            v
        };
        out.push_str(&format!("| `{m}` | {b} | {cur} | {ch} | {lim} | {v} |\n"));
    }
    out.push_str(&format!(
        "\nBaseline {} · current {} · repeats {} / {}. Ungated figures: `--format json`.\n",
        c.baseline, c.current, c.repeats.0, c.repeats.1
    ));
    out
}

pub fn render_json(c: &Comparison) -> String {
    serde_json::to_string_pretty(&json!(c)).unwrap_or_default()
}
