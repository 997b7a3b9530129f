//! A sweep's own result folder: each point ran into `runs/<param>=<value>/` with the usual
//! layout; the top folder gets a `summary.json` holding every run under `sweep.runs`, the
//! figures against the swept parameter as plots (one curve per mode, and per series value),
//! and a `report.md` that tables them.

use std::fmt::Write;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

use super::checks::CheckResult;
use super::plot::{plot_err, register_font};
use super::table::{align, group, show_num, Fmt};
use crate::error::input;
use crate::scenario::{Plan, SweepPoint};
use crate::summary::{ModeSummary, Summary, Sweep, SweepRun};

/// The summary of a sweep: the last run's figures at the top (so that tools reading
/// `modes` find a run), every run under `sweep.runs`, and every run's checks.
pub fn build(plan: &Plan, runs: &[(&SweepPoint, Summary)]) -> Summary {
    let sweep = plan.sweep.as_ref().expect("a sweep plan");
    let mut top = runs.last().map(|(_, s)| s.clone()).unwrap_or_default();
    top.scenario = plan.name.clone();
    top.description = plan.description.clone();
    if let Some(first) = runs.first() {
        top.started_at = first.1.started_at.clone();
    }
    let about = |i: usize| {
        sweep
            .alternatives
            .as_ref()
            .and_then(|a| a.get(i))
            .and_then(|a| a.about.clone())
    };
    let entries: Vec<SweepRun> = runs
        .iter()
        .enumerate()
        .map(|(i, (p, s))| SweepRun {
            value: toml_to_json(&p.value),
            about: about(i),
            series_value: p.series_value.as_ref().map_or(Value::Null, toml_to_json),
            label: p.label.clone(),
            dir: format!("runs/{}", p.label),
            modes: s.modes.clone(),
            ratios: s.ratios.clone(),
        })
        .collect();
    top.sweep = Some(Sweep {
        param: sweep.param.clone(),
        values: sweep.values.iter().map(toml_to_json).collect(),
        series: sweep.series.clone(),
        series_values: sweep.series_values.iter().map(toml_to_json).collect(),
        runs: entries,
    });
    let checks: Vec<CheckResult> = runs
        .iter()
        .flat_map(|(p, s)| {
            s.checks.iter().flatten().map(|c| CheckResult {
                metric: format!("[{}] {}", p.label, c.metric),
                ..c.clone()
            })
        })
        .collect();
    top.checks = (!checks.is_empty()).then_some(checks);
    top
}

fn toml_to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Writes the sweep's top folder; returns its summary.
pub fn write(plan: &Plan, runs: &[(&SweepPoint, Summary)], out: &Path) -> anyhow::Result<Summary> {
    let fail = |what: &str, e: std::io::Error| {
        input(format!("cannot write {what} in {}: {e}", out.display()))
    };
    let summary = build(plan, runs);
    let text = serde_json::to_string_pretty(&summary.to_value())?;
    std::fs::write(out.join("summary.json"), text + "\n").map_err(|e| fail("summary.json", e))?;
    std::fs::write(out.join("scenario.toml"), plan.to_toml())
        .map_err(|e| fail("scenario.toml", e))?;
    rerender(&summary, out)?;
    Ok(summary)
}

/// Re-renders a sweep's top folder (plots, report.md) from its summary.
pub fn rerender(summary: &Summary, out: &Path) -> anyhow::Result<()> {
    if super::fair::is_alternatives(summary) {
        let plot = super::fair::plot(summary, out)?;
        let fair = super::fair::markdown(summary, plot.as_deref());
        return super::html::write_reports(out, &markdown(summary, &[], out, Some(&fair)));
    }
    let plots = plots(summary, out)?;
    super::html::write_reports(out, &markdown(summary, &plots, out, None))
}

/// A column of the sweep table: its header, the figure of a mode it shows, and how.
type Column = (&'static str, fn(&ModeSummary) -> Option<f64>, Fmt);

const COLUMNS: &[Column] = &[
    ("users", |m| Some(m.users as f64), Fmt::Int),
    ("p50 ms", |m| m.latency_ms.p50, Fmt::F1),
    ("p99 ms", |m| m.latency_ms.p99, Fmt::F1),
    ("DB q/min", |m| m.db.queries_per_min, Fmt::Int),
    ("bytes/s", |m| m.bandwidth.bytes_per_s, Fmt::Int),
    ("server CPU", |m| m.cpu.server_cores, Fmt::F3),
    ("system CPU", |m| m.cpu.system_cores, Fmt::F3),
    ("lost", |m| m.events.lost_ratio, Fmt::Pct),
    // The mean over gateway instances of the messages each received from Redis a second.
    ("recv/s per inst.", mean_received_per_s, Fmt::F1),
    (
        "discarded",
        |m| m.gateway.as_ref().and_then(|g| g.discarded_ratio_mean),
        Fmt::Pct,
    ),
];

/// Added when a run had faults: what the first fault did.
const FAULT_COLUMNS: &[Column] = &[
    ("all back s", |m| first_fault(m)?.reconnect_s, Fmt::F1),
    (
        "peak reconn./s",
        |m| Some(first_fault(m)?.reconnects_peak_per_s as f64),
        Fmt::Int,
    ),
    (
        "peak DB q/s",
        |m| first_fault(m)?.db_queries_peak_per_s,
        Fmt::Int,
    ),
    (
        "peak server CPU",
        |m| first_fault(m)?.server_cores_peak,
        Fmt::F3,
    ),
];

fn first_fault(m: &ModeSummary) -> Option<&crate::summary::mode::Fault> {
    m.faults.first()
}

fn mean_received_per_s(mode: &ModeSummary) -> Option<f64> {
    let xs: Vec<f64> = mode
        .instances
        .iter()
        .flatten()
        .filter_map(|i| i.received_per_s)
        .collect();
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

fn the_sweep(summary: &Summary) -> &Sweep {
    static NONE: std::sync::OnceLock<Sweep> = std::sync::OnceLock::new();
    summary
        .sweep
        .as_ref()
        .unwrap_or_else(|| NONE.get_or_init(Sweep::default))
}

/// Rows of the sweep table: one per run and mode.
fn table_rows(summary: &Summary) -> Vec<Vec<String>> {
    let sweep = the_sweep(summary);
    let mut head = vec![sweep.param.clone()];
    if let Some(s) = &sweep.series {
        head.push(s.clone());
    }
    head.push("mode".into());
    let faulty = sweep
        .runs
        .iter()
        .flat_map(|r| r.modes.iter())
        .any(|(_, m)| !m.faults.is_empty());
    let columns: Vec<&Column> = COLUMNS
        .iter()
        .chain(if faulty { FAULT_COLUMNS } else { &[] })
        .collect();
    head.extend(columns.iter().map(|c| c.0.to_string()));
    let mut rows = vec![head];
    for run in &sweep.runs {
        for (mode, m) in run.modes.iter() {
            let mut row = vec![show(&run.value)];
            if sweep.series.is_some() {
                row.push(show(&run.series_value));
            }
            row.push(mode.to_string());
            row.extend(columns.iter().map(|(_, figure, f)| show_num(figure(m), *f)));
            rows.push(row);
        }
    }
    rows
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The terminal table of a sweep.
pub fn render_table(summary: &Summary) -> String {
    if super::fair::is_alternatives(summary) {
        return super::fair::render_table(summary);
    }
    let rows = table_rows(summary);
    let left: Vec<bool> = rows[0].iter().map(|_| false).collect();
    let mut lines = align(&rows, &left);
    let rule = "-".repeat(lines.iter().map(|l| l.chars().count()).max().unwrap_or(0));
    lines.insert(1, rule);
    lines.join("\n")
}

/// The sweep's report; `fair`, for a run of `[[alternatives]]`, takes the table's place.
fn markdown(
    summary: &Summary,
    plots: &[(String, String)],
    out_dir: &Path,
    fair: Option<&str>,
) -> String {
    let sweep = the_sweep(summary);
    let mut out = String::new();
    let _ = writeln!(out, "# pollpush sweep: {}\n", summary.scenario);
    if !summary.description.is_empty() {
        let _ = writeln!(
            out,
            "_The scenario file describes itself as: {}_\n",
            summary.description
        );
    }
    let values: Vec<String> = sweep.values.iter().map(show).collect();
    let _ = write!(
        out,
        "The scenario ran once for each `{}` in {}",
        sweep.param,
        values.join(", ")
    );
    if let Some(series) = &sweep.series {
        let sv: Vec<String> = sweep.series_values.iter().map(show).collect();
        let _ = write!(out, ", and that for each `{series}` in {}", sv.join(", "));
    }
    let _ = writeln!(out, ". Every figure below was measured in its own run; each run's folder under `runs/` has its full report.\n");
    if let Some(fair) = fair {
        out.push_str(fair);
        out.push('\n');
    } else {
        out.push_str(&generic_table(summary));
    }
    for (file, caption) in plots {
        let _ = writeln!(out, "![{caption}]({file})\n");
    }
    if let Some(checks) = summary.checks.as_deref().filter(|c| !c.is_empty()) {
        out.push_str(&super::markdown::checks_table(
            checks,
            "## Checks",
            "run and figure",
        ));
        out.push('\n');
    }
    let _ = writeln!(out, "## Method\n");
    let _ = writeln!(out, "Each point is a complete run of the scenario with the swept value set: its own ephemeral Postgres and Redis, the ramp, the warm-up, a measured window and a drain. Every figure in the table and the plots was measured in that run, as its own `report.md` describes: latency from the workload's emit stamp to the client parsing the notification (HdrHistogram); DB queries counted by Postgres itself (pg_stat_statements), not by the servers; bandwidth as application bytes on the swarm's client sockets, TCP/IP headers excluded; CPU from `/proc` for each component.\n");
    let _ = writeln!(out, "## Runs\n");
    for run in &sweep.runs {
        let (dir, label) = (&run.dir, &run.label);
        // A link only where the run's folder is there: a folder copied without its runs
        // (as the repository keeps results/instances) has no dead links.
        if out_dir.join(dir).join("report.md").is_file() {
            let _ = writeln!(out, "- [`{label}`]({dir}/report.md)");
        } else {
            let _ = writeln!(out, "- `{label}` (its folder `{dir}` is not kept here)");
        }
    }
    out
}

/// The table of a sweep over a setting: one row per run and mode.
fn generic_table(summary: &Summary) -> String {
    let mut out = String::new();
    let rows = table_rows(summary);
    let _ = writeln!(out, "| {} |", rows[0].join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        rows[0].iter().map(|_| "---:|").collect::<String>()
    );
    for r in &rows[1..] {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out.push('\n');
    let _ = writeln!(out, "_recv/s per inst._ is the mean over gateway instances of the messages each received from Redis per second; _discarded_ the mean share of routed messages for users the instance did not hold.\n");
    out
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

struct Curve {
    label: String,
    points: Vec<(f64, f64)>,
}

/// The x position of each run: its value when every value is a number, else its index.
fn x_axis(summary: &Summary) -> (Vec<f64>, Option<Vec<String>>) {
    let values: Vec<&Value> = the_sweep(summary).values.iter().collect();
    if values.iter().all(|v| v.is_number()) {
        (values.iter().filter_map(|v| v.as_f64()).collect(), None)
    } else {
        (
            (0..values.len()).map(|i| i as f64).collect(),
            Some(values.iter().map(|v| show(v)).collect()),
        )
    }
}

/// One curve per (mode, series value) of a figure against the swept parameter.
fn curves(summary: &Summary, modes: &[&str], value: Figure) -> Vec<Curve> {
    let sweep = the_sweep(summary);
    let (xs, _) = x_axis(summary);
    let mut out: Vec<Curve> = Vec::new();
    for run in &sweep.runs {
        let Some(i) = sweep.values.iter().position(|v| *v == run.value) else {
            continue;
        };
        for (mode, m) in run.modes.iter().filter(|(name, _)| modes.contains(name)) {
            let Some(y) = value(m) else { continue };
            let label = match &run.series_value {
                Value::Null => mode.to_string(),
                sv if modes.len() > 1 => format!("{mode}, {}", show(sv)),
                sv => show(sv),
            };
            match out.iter_mut().find(|c| c.label == label) {
                Some(c) => c.points.push((xs[i], y)),
                None => out.push(Curve {
                    label,
                    points: vec![(xs[i], y)],
                }),
            }
        }
    }
    out
}

/// Draws the sweep plots; returns (file, caption) of each drawn.
/// A figure of one mode's summary, drawn against the swept value.
type Figure = fn(&ModeSummary) -> Option<f64>;

/// One sweep chart: its file name, caption (`{param}` stands for the swept key), whether it
/// is about the push gateway only, and its panels (y label, figure, in percent).
struct Chart {
    name: &'static str,
    caption: &'static str,
    push_only: bool,
    panels: &'static [(&'static str, Figure, bool)],
}

const CHARTS: &[Chart] = &[
    Chart {
        name: "sweep-latency",
        caption: "Latency p99 against {param}",
        push_only: false,
        panels: &[("latency p99 (ms)", |m| m.latency_ms.p99, false)],
    },
    Chart {
        name: "sweep-db-queries",
        caption: "Database queries per minute (PostgreSQL's count) against {param}",
        push_only: false,
        panels: &[("queries per minute", |m| m.db.queries_per_min, false)],
    },
    Chart {
        name: "sweep-bandwidth",
        caption: "Bandwidth on the client sockets against {param}",
        push_only: false,
        panels: &[
            (
                "bytes per user per minute",
                |m| m.bandwidth.bytes_per_user_per_min,
                false,
            ),
            (
                "bytes per delivered notification",
                |m| m.bandwidth.bytes_per_delivered,
                false,
            ),
        ],
    },
    Chart {
        name: "sweep-cpu",
        caption: "CPU against {param}",
        push_only: false,
        panels: &[
            ("server CPU (cores)", |m| m.cpu.server_cores, false),
            ("Postgres CPU (cores)", |m| m.cpu.db_cores, false),
        ],
    },
    Chart {
        name: "sweep-gateway",
        caption: "Gateway instances against {param}",
        push_only: true,
        panels: &[
            (
                "messages from Redis per instance per s",
                mean_received_per_s,
                false,
            ),
            (
                "share discarded (%)",
                |m| {
                    m.gateway
                        .as_ref()
                        .and_then(|g| g.discarded_ratio_mean)
                        .map(|x| x * 100.0)
                },
                true,
            ),
        ],
    },
];

/// Draws every chart that has something to show, as PNG and SVG; returns (file, caption).
fn plots(summary: &Summary, out: &Path) -> anyhow::Result<Vec<(String, String)>> {
    register_font();
    let param = the_sweep(summary).param.as_str();
    let all: Vec<&str> = summary.modes.iter().map(|(name, _)| name).collect();
    let (_, names) = x_axis(summary);
    let mut drawn = Vec::new();
    for chart in CHARTS {
        if chart.push_only && !all.contains(&"push") {
            continue;
        }
        let modes: &[&str] = if chart.push_only { &["push"] } else { &all };
        let panels: Vec<Panel> = chart
            .panels
            .iter()
            .map(|&(y_desc, figure, percent)| Panel {
                y_desc,
                curves: curves(summary, modes, figure),
                percent,
            })
            .collect();
        if panels.iter().all(|p| p.curves.is_empty()) {
            continue;
        }
        let caption = chart.caption.replace("{param}", param);
        let png = out.join(format!("{}.png", chart.name));
        let svg = out.join(format!("{}.svg", chart.name));
        let bitmap = BitMapBackend::new(&png, (1200, 700)).into_drawing_area();
        draw_panels(bitmap, &caption, param, &panels, names.as_deref())?;
        let vector = SVGBackend::new(&svg, (1200, 700)).into_drawing_area();
        draw_panels(vector, &caption, param, &panels, names.as_deref())?;
        drawn.push((format!("{}.png", chart.name), caption));
    }
    Ok(drawn)
}

/// One chart of a sweep plot.
struct Panel {
    y_desc: &'static str,
    curves: Vec<Curve>,
    /// A share in percent: the y axis runs to 100.
    percent: bool,
}

fn draw_panels<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    caption: &str,
    param: &str,
    panels: &[Panel],
    names: Option<&[String]>,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    let areas = root.split_evenly((1, panels.len()));
    for (i, (area, p)) in areas.iter().zip(panels).enumerate() {
        // With two panels the caption goes over the first; the second is named by its axis.
        let title = if i == 0 { caption } else { "" };
        panel(area, title, param, p, names)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    param: &str,
    p: &Panel,
    names: Option<&[String]>,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let (y_desc, curves, percent) = (p.y_desc, &p.curves, p.percent);
    let integers = curves
        .iter()
        .flat_map(|c| c.points.iter())
        .all(|pt| pt.0.fract() == 0.0);
    let xs = curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
    let (x_lo, x_hi) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (x_lo, x_hi) = if x_lo > x_hi {
        (0.0, 1.0)
    } else {
        let pad = ((x_hi - x_lo) * 0.05).max(0.5);
        (x_lo - pad, x_hi + pad)
    };
    let y_hi = if percent {
        105.0
    } else {
        curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1))
            .fold(1e-9, f64::max)
            * 1.2
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(x_lo..x_hi, 0f64..y_hi)
        .map_err(plot_err)?;
    let label_x = |x: &f64| match names {
        Some(n) if (x - x.round()).abs() < 1e-6 && x.round() >= 0.0 => {
            n.get(x.round() as usize).cloned().unwrap_or_default()
        }
        Some(_) => String::new(),
        None if x.fract() == 0.0 => group(*x as i64),
        // Integer sweeps (instances, users) get no fractional ticks.
        None if integers => String::new(),
        None => format!("{x:.1}"),
    };
    chart
        .configure_mesh()
        .x_desc(param)
        .y_desc(y_desc)
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .light_line_style(RGBColor(235, 235, 235))
        .x_label_formatter(&label_x)
        .y_label_formatter(&|y| super::plot::axis_label(*y, y_hi))
        .draw()
        .map_err(plot_err)?;
    for (i, c) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mut pts = c.points.clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(3)))
            .map_err(plot_err)?
            .label(c.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 30, y)], color.stroke_width(3))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 5, color.filled())))
            .map_err(plot_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 18))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}
