//! The model's plots: each mode's cores and bandwidth from 10^3 to 10^7 users, measured
//! points marked and the extrapolated range shaded (model-projection.png); the poll/push
//! ratios against users, poll interval and event rate (model-ratios.png). Every chart names
//! its calibration and machine.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::render::{ratios, sig, INTERVALS, RATES_PER_MIN};
use super::{Model, COSTS};
use crate::report::plot::{plot_err, register_font};

/// A mode's projected line: its name, colour and points.
type Line = (String, RGBColor, Vec<(f64, f64)>);
/// One knob's panel: its name, the values it takes, the ratios at each.
type Panel<'a> = (&'a str, Vec<f64>, Box<dyn Fn(f64) -> Option<[f64; 3]> + 'a>);

const POLL: RGBColor = RGBColor(214, 39, 40);
const PUSH: RGBColor = RGBColor(31, 119, 180);

fn mode_color(mode: &str) -> RGBColor {
    if mode == "poll" {
        POLL
    } else {
        PUSH
    }
}

/// Draws both plots; returns their file names.
pub fn draw(model: &Model, out: &Path) -> anyhow::Result<Vec<String>> {
    register_font();
    let proj = out.join("model-projection.png");
    projection(
        BitMapBackend::new(&proj, (1400, 760)).into_drawing_area(),
        model,
    )?;
    let mut names = vec!["model-projection.png".to_string()];
    if model.mode("poll").is_some() && model.mode("push").is_some() {
        let rat = out.join("model-ratios.png");
        ratio_plot(
            BitMapBackend::new(&rat, (1500, 600)).into_drawing_area(),
            model,
        )?;
        names.push("model-ratios.png".into());
    }
    Ok(names)
}

fn caption(model: &Model) -> String {
    format!(
        "calibrated on {} ({} runs) · {}",
        model.scenario,
        model.modes.iter().map(|m| m.points.len()).sum::<usize>(),
        model.machine
    )
}

/// A white chart with `title` above and the calibration named below; the area between,
/// `height` pixels tall, for the panels.
fn framed<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    height: u32,
    model: &Model,
) -> anyhow::Result<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    let root = root.titled(title, ("sans-serif", 26)).map_err(plot_err)?;
    let (body, foot) = root.split_vertically(height);
    foot.draw(&Text::new(
        caption(model),
        (20, 10),
        ("sans-serif", 18).into_font().color(&RGBColor(80, 80, 80)),
    ))
    .map_err(plot_err)?;
    Ok(body)
}

/// The series' legend in the upper left corner of a panel.
fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>, size: u32) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", size))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

/// (what, cost key, scale to the axis' measure, axis label)
const PANELS: [(&str, &str, f64, &str); 2] = [
    (
        "CPU cores (servers, ingest, Postgres, Redis)",
        "cores",
        1.0,
        "cores",
    ),
    ("bandwidth", "bytes_per_s", 8.0 / 1e6, "Mbit/s"),
];

/// A run's measured figure for a panel (`cores`: the system under test, as
/// `cpu.system_cores`, whose servers' figure holds ingest's), in the panel's unit.
fn measured(p: &super::Point, key: &str, k: f64) -> Option<f64> {
    let cost = |name: &str| {
        COSTS
            .iter()
            .position(|x| x.key == name)
            .and_then(|i| p.costs[i])
    };
    match key {
        "cores" => ["server_cores", "db_cores", "redis_cores"]
            .iter()
            .map(|c| cost(c))
            .sum::<Option<f64>>(),
        _ => cost(key).map(|v| v * k),
    }
}

/// A log axis from half the smallest positive value to twice the largest.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, 0f64), |(a, b), v| (a.min(v), b.max(v)));
    if hi > 0.0 {
        (lo / 2.0, hi * 2.0)
    } else {
        (1e-3, 1.0)
    }
}

fn projection<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, model: &Model) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let body = framed(
        &root,
        "Projected cost by users: lines predicted, dots measured (each run at its own event rate)",
        700,
        model,
    )?;
    let scales = Model::scales();
    let (x0, x1) = (scales[0], *scales.last().expect("scales"));
    for (area, (title, key, k, unit)) in body.split_evenly((1, 2)).iter().zip(PANELS) {
        let value = |p: &super::Projection| {
            if key == "cores" {
                p.system_cores()
            } else {
                p.get(key)
            }
            .map(|v| v * k)
        };
        let mut lines: Vec<Line> = Vec::new();
        let mut dots: Vec<(RGBColor, (f64, f64))> = Vec::new();
        for m in &model.modes {
            let pts: Vec<(f64, f64)> = scales
                .iter()
                .filter_map(|u| {
                    let p = m.project(*u, model.interval_s, model.events_per_user_per_s);
                    Some((*u, value(&p)?))
                })
                .collect();
            lines.push((m.mode.clone(), mode_color(&m.mode), pts));
            for p in &m.points {
                if let Some(v) = measured(p, key, k) {
                    dots.push((mode_color(&m.mode), (p.users, v)));
                }
            }
        }
        let all = lines
            .iter()
            .flat_map(|l| l.2.iter().map(|p| p.1))
            .chain(dots.iter().map(|d| d.1 .1))
            .filter(|v| *v > 0.0);
        let (lo, hi) = log_range(all);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(55)
            .y_label_area_size(90)
            .build_cartesian_2d((x0..x1).log_scale(), (lo..hi).log_scale())
            .map_err(plot_err)?;
        // The extrapolated range, shaded: nothing there was measured.
        chart
            .draw_series([Rectangle::new(
                [(model.max_users.max(x0), lo), (x1, hi)],
                RGBColor(120, 120, 120).mix(0.12).filled(),
            )])
            .map_err(plot_err)?
            .label("extrapolated (no run here)")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 8), (x + 30, y + 8)],
                    RGBColor(120, 120, 120).mix(0.25).filled(),
                )
            });
        chart
            .configure_mesh()
            .x_desc("users")
            .y_desc(unit)
            .label_style(("sans-serif", 18))
            .axis_desc_style(("sans-serif", 20))
            .light_line_style(RGBColor(235, 235, 235))
            .x_label_formatter(&|x| sig(*x))
            .y_label_formatter(&|y| sig(*y))
            .draw()
            .map_err(plot_err)?;
        for (mode, c, pts) in lines {
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(3)))
                .map_err(plot_err)?
                .label(format!("{mode} (predicted)"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 30, y)], c.stroke_width(3))
                });
        }
        chart
            .draw_series(
                dots.iter()
                    .filter(|d| d.1 .1 > 0.0)
                    .map(|(c, p)| Circle::new(*p, 6, c.filled())),
            )
            .map_err(plot_err)?;
        legend(&mut chart, 18)?;
    }
    body.present().map_err(plot_err)?;
    Ok(())
}

fn ratio_plot<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, model: &Model) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let body = framed(
        &root,
        "Poll / push, one knob at a time (predictions)",
        540,
        model,
    )?;
    let (u0, t0, r0) = (
        model.max_users,
        model.interval_s,
        model.events_per_user_per_s,
    );
    let users: Vec<f64> = Model::scales();
    let rates: Vec<f64> = RATES_PER_MIN.to_vec();
    let panels: [Panel; 3] = [
        ("users", users, Box::new(|u| ratios(model, u, t0, r0))),
        (
            "poll interval (s)",
            INTERVALS.to_vec(),
            Box::new(|t| ratios(model, u0, t, r0)),
        ),
        (
            "notifications per user per minute",
            rates,
            Box::new(|r| ratios(model, u0, t0, r / 60.0)),
        ),
    ];
    const LINES: [(&str, RGBColor); 3] = [
        ("all cores", RGBColor(40, 40, 40)),
        ("Postgres cores", RGBColor(214, 39, 40)),
        ("bandwidth", RGBColor(44, 160, 44)),
    ];
    for (area, (name, xs, f)) in body.split_evenly((1, 3)).iter().zip(panels) {
        let pts: Vec<(f64, [f64; 3])> = xs.iter().filter_map(|x| Some((*x, f(*x)?))).collect();
        let vals = pts.iter().flat_map(|p| p.1).filter(|v| *v > 0.0);
        let (lo, hi) = vals.fold((f64::MAX, 0f64), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if hi > 0.0 {
            ((lo / 2.0).min(0.5), hi * 2.0)
        } else {
            (0.1, 10.0)
        };
        let (x0, x1) = (xs[0], *xs.last().expect("xs"));
        let mut chart = ChartBuilder::on(area)
            .caption(format!("against {name}"), ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), (lo..hi).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(name)
            .y_desc("poll / push")
            .x_labels(6)
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .light_line_style(RGBColor(235, 235, 235))
            .x_label_formatter(&|x| sig(*x))
            .y_label_formatter(&|y| format!("{}x", sig(*y)))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(DashedLineSeries::new(
                [(x0, 1.0), (x1, 1.0)],
                6,
                6,
                RGBColor(120, 120, 120).stroke_width(1),
            ))
            .map_err(plot_err)?;
        for (i, (label, c)) in LINES.iter().enumerate() {
            let c = *c;
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|(x, r)| (*x, r[i].max(lo))),
                    c.stroke_width(3),
                ))
                .map_err(plot_err)?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 30, y)], c.stroke_width(3))
                });
        }
        legend(&mut chart, 16)?;
    }
    body.present().map_err(plot_err)?;
    Ok(())
}
