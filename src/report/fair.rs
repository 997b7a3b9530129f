//! The sceptic's table: a run of `[[alternatives]]` (scenarios/fair.toml) ranked side by
//! side, each alternative measured in its own run on the same workload: database queries,
//! latency, bytes, CPU of each component and in all, memory, with the model's prediction
//! beside the figures that have one; a plot of the trade-off; and, from this run's
//! per-request and per-connection costs, where a poll stays within a budget and where only
//! push does (labelled as predictions, never shown instead of a measurement).

use std::fmt::Write;
use std::path::Path;

use super::plot::{plot_err, register_font};
use super::table::{align, group, show_num as num, Fmt};
use crate::summary::{ModeSummary, Summary};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One alternative's run: its name, what it is, its mode and its figures.
struct Alt<'a> {
    name: String,
    about: String,
    mode: &'static str,
    m: &'a ModeSummary,
}

impl Alt<'_> {
    /// Servers (poll API or gateways, and ingest), Postgres and Redis: what serving costs.
    fn system_cores(&self) -> Option<f64> {
        self.m.cpu.system_cores
    }

    fn requests_per_s(&self) -> Option<f64> {
        self.m
            .http
            .requests_per_min
            .map(|r| r / 60.0)
            .filter(|r| *r > 0.0)
    }

    fn predicted(
        &self,
        f: impl Fn(&crate::summary::mode::Predicted) -> Option<f64>,
    ) -> Option<f64> {
        self.m.predicted.as_ref().and_then(f)
    }

    fn poll(&self) -> bool {
        self.mode == "poll"
    }
}

/// Whether a sweep summary is a run of `[[alternatives]]`.
pub fn is_alternatives(summary: &Summary) -> bool {
    summary
        .sweep
        .as_ref()
        .is_some_and(|s| s.param == crate::scenario::ALTERNATIVE)
}

fn alternatives(summary: &Summary) -> Vec<Alt<'_>> {
    let mut alts: Vec<Alt> = summary
        .sweep
        .iter()
        .flat_map(|s| &s.runs)
        .filter_map(|run| {
            let (mode, m) = run.modes.iter().next()?;
            Some(Alt {
                name: run.value.as_str().unwrap_or("?").to_string(),
                about: run.about.clone().unwrap_or_default(),
                mode,
                m,
            })
        })
        .collect();
    // Cheapest to serve first; unknown costs last.
    alts.sort_by(|a, b| {
        let key = |x: &Alt| x.system_cores().unwrap_or(f64::MAX);
        key(a).total_cmp(&key(b))
    });
    alts
}

/// The ranking: one row per alternative, cheapest system first.
fn ranking(summary: &Summary) -> Vec<Vec<String>> {
    let head = [
        "#",
        "alternative",
        "mode",
        "DB queries/min",
        "  model",
        "p50 ms",
        "p99 ms",
        "  model mean",
        "bytes/user/min",
        "header B/poll",
        "  model",
        "CPU servers",
        "CPU Postgres",
        "CPU Redis",
        "CPU system",
        "CPU clients",
        "server MB",
        "lost",
    ];
    let mut rows = vec![head.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    for (i, a) in alternatives(summary).iter().enumerate() {
        rows.push(vec![
            (i + 1).to_string(),
            a.name.clone(),
            a.mode.to_string(),
            num(a.m.db.queries_per_min, Fmt::Int),
            num(a.predicted(|p| p.db_queries_per_min), Fmt::Int),
            num(a.m.latency_ms.p50, Fmt::F1),
            num(a.m.latency_ms.p99, Fmt::F1),
            num(a.predicted(|p| p.latency_mean_ms), Fmt::F1),
            num(a.m.bandwidth.bytes_per_user_per_min, Fmt::Int),
            num(a.m.bandwidth.header_bytes_per_poll, Fmt::F1),
            num(
                a.predicted(|p| p.header_bytes_per_poll.map(|b| b as f64)),
                Fmt::Int,
            ),
            num(a.m.cpu.server_cores, Fmt::F3),
            num(a.m.cpu.db_cores, Fmt::F3),
            num(a.m.cpu.redis_cores, Fmt::F3),
            num(a.system_cores(), Fmt::F3),
            num(a.m.cpu.swarm_cores, Fmt::F3),
            num(
                Some(
                    a.m.memory.server_rss_mb.unwrap_or(0.0)
                        + a.m.memory.ingest_rss_mb.unwrap_or(0.0),
                )
                .filter(|x| *x > 0.0),
                Fmt::F1,
            ),
            num(a.m.events.lost_ratio, Fmt::Pct),
        ]);
    }
    rows
}

/// The ranking as the terminal shows it.
pub fn render_table(summary: &Summary) -> String {
    let rows = ranking(summary);
    let left: Vec<bool> = rows[0]
        .iter()
        .map(|h| h == "alternative" || h == "mode")
        .collect();
    let mut lines = align(&rows, &left);
    let rule = "-".repeat(lines.iter().map(|l| l.chars().count()).max().unwrap_or(0));
    lines.insert(1, rule);
    lines.join("\n")
}

/// Users a component budget of `cores` serves at `rate` requests per user per second,
/// given a cost per request.
fn users_within(cores: f64, per_request: f64, per_user_rate: f64) -> Option<f64> {
    (per_request > 0.0 && per_user_rate > 0.0).then(|| cores / (per_request * per_user_rate))
}

/// The report's section on the ranking, the plot and when polling is good enough.
pub fn markdown(summary: &Summary, plot: Option<&str>) -> String {
    let mut out = String::new();
    let alts = alternatives(summary);
    let users = summary.plan.users.unwrap_or(0) as f64;
    let _ = writeln!(out, "## Every alternative, ranked\n");
    let _ = writeln!(
        out,
        "Each alternative ran on its own (fresh Postgres and Redis, the same users, events and seed), one after another on this machine; every figure was measured in its run. Ranked by _CPU system_: the cores the servers (poll API or gateways, and ingest), Postgres and Redis used together over the window. _model_ and _model mean_ are the polling model's predictions (docs/measurement.md; for header bytes, those of a probe poll sent before the load), shown beside the measurement, never instead of it. _CPU clients_ is the swarm (the browsers), not part of the system.\n"
    );
    let rows = ranking(summary);
    let _ = writeln!(out, "| {} |", rows[0].join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        rows[0]
            .iter()
            .map(|h| if h == "alternative" || h == "mode" {
                "---|"
            } else {
                "---:|"
            })
            .collect::<String>()
    );
    for r in &rows[1..] {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out.push('\n');
    for a in &alts {
        if !a.about.is_empty() {
            let _ = writeln!(out, "- **{}**: {}", a.name, a.about);
        }
    }
    out.push('\n');
    if let Some(file) = plot {
        let _ = writeln!(
            out,
            "![Database load and CPU against latency, one point per alternative]({file})\n"
        );
    }
    out.push_str(&good_enough(&alts, summary, users));
    out
}

/// When a poll is good enough, from this run's costs: predictions, labelled so.
fn good_enough(alts: &[Alt<'_>], summary: &Summary, users: f64) -> String {
    let mut out = String::new();
    let cores = summary.machine.cores as f64;
    let _ = writeln!(out, "## When is polling good enough?\n");
    let _ = writeln!(out, "_Predictions_ from this run's measured costs, scaled linearly: each polling alternative's system CPU and bytes per request, and each push alternative's server memory per connection (its CPU follows the notifications, not the users, so it is not scaled). Linear scaling holds until something saturates (a lock, a pool, a socket limit), which only a measurement finds: `pollpush capacity` searches for it. The rule of thumb (Van de Vyvere et al., 2020): a poll server must sustain at least users ÷ accepted staleness requests a second.\n");
    let intervals = [1.0, 5.0, 30.0];
    let _ = writeln!(
        out,
        "Most users whose polls the system serves within this machine's {cores} cores, by poll interval (the mean notification is T/2 late):\n"
    );
    let _ = writeln!(
        out,
        "| alternative | system CPU per request (µs) | DB queries per request | bytes per request | T = 1 s | T = 5 s | T = 30 s | cores for 100,000 users at T = 1 s |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for a in alts.iter().filter(|a| a.poll()) {
        let (Some(rps), Some(sys)) = (a.requests_per_s(), a.system_cores()) else {
            continue;
        };
        let per_req = sys / rps;
        let db = a.m.db.queries_per_min.map(|q| q / 60.0 / rps);
        let bytes = a.m.bandwidth.bytes_per_s.map(|b| b / rps);
        let long = a.predicted(|p| p.latency_mean_ms).is_none();
        let cells: Vec<String> = intervals
            .iter()
            .map(|t| match long {
                // A long poller asks again when answered: its rate is set by the events.
                true => "-".into(),
                false => num(users_within(cores, per_req, 1.0 / t), Fmt::Int),
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {:.1} | {} | {} | {} | {} |",
            a.name,
            per_req * 1e6,
            num(db, Fmt::F3),
            num(bytes, Fmt::Int),
            cells.join(" | "),
            match long {
                true => "-".into(),
                false => format!("{:.1}", per_req * 100_000.0),
            }
        );
    }
    out.push('\n');
    let big = 100_000.0;
    if users > 0.0 {
        for a in alts.iter().filter(|a| !a.poll()) {
            let (Some(sys), Some(mb), delivered) = (
                a.system_cores(),
                a.m.memory.server_rss_mb,
                a.m.events.delivered as f64 / a.m.duration_s.max(1e-9),
            ) else {
                continue;
            };
            if delivered <= 0.0 {
                continue;
            }
            let kb = mb * 1024.0 / users;
            let _ = writeln!(
                out,
                "- **{}** (push): {:.3} cores in all for {:.1} notifications/s to {} connected users, and {:.1} KB of server memory per connection (its RSS over its connections). Its CPU follows the notifications, not the users: an idle connection costs a timer and a ping, so this run's figure does not scale by users; `pollpush capacity` measures where it stops. Its memory does: {:.0} MB for {} connections (prediction).",
                a.name,
                sys,
                delivered,
                group(users as i64),
                kb,
                kb * big / 1024.0,
                group(big as i64),
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Read it this way: a cached or conditional poll is good enough where its interval is an acceptable staleness (T/2 on average, T at worst) and its row's column holds your users with room to spare; the database column says how much of that load still reaches Postgres. Where the staleness must be sub-second for many users, the request rate is users ÷ T whatever is cached, and only push keeps the cost per user flat.\n");
    let _ = writeln!(out, "Users in this run: {}.", group(users as i64));
    out
}

/// Draws the trade-off: DB queries/min and system CPU against latency p50, one labelled
/// point per alternative, as PNG and SVG. Returns the PNG's file name.
pub fn plot(summary: &Summary, out: &Path) -> anyhow::Result<Option<String>> {
    let alts = alternatives(summary);
    let points: Vec<Point> = alts
        .iter()
        .filter_map(|a| {
            Some((
                a.name.clone(),
                a.m.db.queries_per_min?.max(1.0),
                a.system_cores()?.max(1e-4),
                a.m.latency_ms.p50?.max(0.01),
            ))
        })
        .collect();
    if points.is_empty() {
        return Ok(None);
    }
    register_font();
    let name = "alternatives";
    let png = out.join(format!("{name}.png"));
    let svg = out.join(format!("{name}.svg"));
    draw(
        BitMapBackend::new(&png, (1400, 650)).into_drawing_area(),
        &points,
    )?;
    draw(
        SVGBackend::new(&svg, (1400, 650)).into_drawing_area(),
        &points,
    )?;
    Ok(Some(format!("{name}.png")))
}

/// An alternative on the plot: name, DB queries/min, system cores, latency p50 ms.
type Point = (String, f64, f64, f64);

/// A panel's x axis: its description and where a point sits on it.
type Axis = (&'static str, fn(&Point) -> f64);

const COLORS: [RGBColor; 8] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(148, 103, 189),
    RGBColor(188, 189, 34),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(23, 190, 207),
];

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, points: &[Point]) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    let root = root
        .titled(
            "Every alternative on one workload: what it costs, how late it is",
            ("sans-serif", 26),
        )
        .map_err(plot_err)?;
    let panels = root.split_evenly((1, 2));
    let xs: [Axis; 2] = [
        ("DB queries/min (Postgres's own count, log)", |p| p.1),
        ("CPU cores: servers + Postgres + Redis (log)", |p| p.2),
    ];
    let (y_lo, y_hi) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.3), b.max(p.3)));
    for (area, (x_desc, x_of)) in panels.iter().zip(xs) {
        let (x_lo, x_hi) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
            (a.min(x_of(p)), b.max(x_of(p)))
        });
        let mut chart = ChartBuilder::on(area)
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(
                ((x_lo / 2.0)..(x_hi * 2.0)).log_scale(),
                ((y_lo / 2.0)..(y_hi * 3.0)).log_scale(),
            )
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("notification latency p50 (ms, log)")
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .light_line_style(RGBColor(235, 235, 235))
            .x_label_formatter(&|x| super::plot::axis_label(*x, x_hi))
            .y_label_formatter(&|y| super::plot::axis_label(*y, y_hi))
            .draw()
            .map_err(plot_err)?;
        // Points that fall together get their labels stacked, one line each.
        let near = |a: &Point, b: &Point| {
            (x_of(a).log10() - x_of(b).log10()).abs() < 0.12
                && (a.3.log10() - b.3.log10()).abs() < 0.12
        };
        for (i, p) in points.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let at = (x_of(p), p.3);
            let line = points[..i].iter().filter(|q| near(p, q)).count() as i32;
            chart
                .draw_series(std::iter::once(Circle::new(at, 7, color.filled())))
                .map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at(at)
                        + Text::new(
                            p.0.clone(),
                            (10, -8 + 20 * line),
                            ("sans-serif", 17).into_font().color(&color),
                        ),
                ))
                .map_err(plot_err)?;
        }
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary() -> Summary {
        let poll = json!({
            "db": {"queries_per_min": 240000.0},
            "predicted": {"db_queries_per_min": 241200.0, "latency_mean_ms": 2500.0},
            "latency_ms": {"p50": 2400.0, "p99": 4900.0},
            "http": {"requests_per_min": 120000.0},
            "bandwidth": {"bytes_per_s": 500000.0, "bytes_per_user_per_min": 3000.0, "header_bytes_per_poll": 250.0},
            "cpu": {"server_cores": 0.3, "db_cores": 0.5, "redis_cores": 0.0, "swarm_cores": 0.2},
            "memory": {"server_rss_mb": 30.0},
            "events": {"lost_ratio": 0.0},
        });
        let push = json!({
            "db": {"queries_per_min": 1200.0},
            "latency_ms": {"p50": 1.0, "p99": 3.0},
            "bandwidth": {"bytes_per_user_per_min": 100.0},
            "cpu": {"server_cores": 0.02, "db_cores": 0.01, "redis_cores": 0.005, "swarm_cores": 0.05},
            "memory": {"server_rss_mb": 100.0},
            "events": {"lost_ratio": 0.0},
        });
        Summary::from_value(json!({
            "plan": {"users": 10000},
            "machine": {"cores": 2},
            "sweep": {"param": "alternative", "runs": [
                {"value": "plain", "about": "every poll asks Postgres", "modes": {"poll": poll}},
                {"value": "ws", "modes": {"push": push}},
            ]},
        }))
        .unwrap()
    }

    #[test]
    fn the_cheapest_system_ranks_first_with_the_model_beside() {
        let s = summary();
        assert!(is_alternatives(&s));
        let rows = ranking(&s);
        assert_eq!(rows[1][1], "ws");
        assert_eq!(rows[2][1], "plain");
        assert_eq!(rows[2][3], "240,000");
        assert_eq!(rows[2][4], "241,200");
        assert_eq!(rows[2][14], "0.800");
    }

    #[test]
    fn projections_scale_the_measured_cost_per_request() {
        let s = summary();
        let md = markdown(&s, None);
        // 0.8 cores for 2,000 requests/s: 400 µs each; 2 cores serve 5,000 requests/s, so
        // 5,000 users at T = 1 s and 25,000 at T = 5 s.
        assert!(
            md.contains("| plain | 400.0 | 2.000 | 250 | 5,000 | 25,000 | 150,000 | 40.0 |"),
            "{md}"
        );
        assert!(md.contains("every poll asks Postgres"));
    }
}
