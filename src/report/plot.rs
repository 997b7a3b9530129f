//! Plots with plotters, as PNG and SVG, drawn with the bundled DejaVu Sans so that no
//! system font library is needed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::summary::mode::{Bandwidth, Cpu};
use crate::summary::{ModeSummary, Summary};
use hdrhistogram::Histogram;

use crate::config::Mode;
use crate::result::RunResult;
use crate::scenario::Plan;

/// Draws one chart into `<name>.png` and `<name>.svg` with the same drawing code.
macro_rules! png_and_svg {
    ($out:expr, $name:expr, $draw:expr) => {{
        let png = $out.join(format!("{}.png", $name));
        $draw(BitMapBackend::new(&png, (1200, 700)).into_drawing_area())?;
        let svg = $out.join(format!("{}.svg", $name));
        $draw(SVGBackend::new(&svg, (1200, 700)).into_drawing_area())?;
    }};
}

static FONT: Once = Once::new();

/// Registers the bundled font as "sans-serif" (once per process).
pub fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_err() {
            tracing::warn!("the bundled font could not be loaded; plots will have no text");
        }
    });
}

fn color(mode: Mode) -> RGBColor {
    match mode {
        Mode::Poll => RGBColor(214, 39, 40),
        Mode::Push => RGBColor(31, 119, 180),
    }
}

/// Points of one line per mode.
pub type Series = Vec<(Mode, Vec<(f64, f64)>)>;

/// The CDF points (latency ms, % delivered within) of each mode's histogram.
pub fn cdf_points(latency: &[(Mode, Histogram<u64>)]) -> Series {
    latency
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(mode, h)| {
            // The histogram's own percentile steps (exact at the tail), plus 400 points
            // evenly spread on the log axis from the smallest value to the largest, so the
            // curve is smooth where the percentile steps leave long gaps (a poll's 5 ms to
            // 600 ms was one straight segment).
            let mut pts: Vec<(f64, f64)> = h
                .iter_quantiles(20)
                .map(|v| (v.value_iterated_to() as f64, v.quantile()))
                .collect();
            let (lo, hi) = (h.min().max(1) as f64, h.max().max(1) as f64);
            const STEPS: usize = 400;
            for i in 0..=STEPS {
                let v = lo * (hi / lo).powf(i as f64 / STEPS as f64);
                pts.push((v, h.quantile_below(v as u64)));
            }
            pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let pts = pts
                .into_iter()
                .map(|(us, q)| ((us / 1000.0).max(0.01), q * 100.0))
                .collect();
            (*mode, pts)
        })
        .collect()
}

/// Latency CDF of every mode on one log-x chart: `latency-cdf.png` and `.svg`.
pub fn latency_cdf(plan: &Plan, series: &Series, out: &Path) -> anyhow::Result<()> {
    register_font();
    if series.is_empty() {
        return Ok(());
    }
    let title = match plan.poll_long {
        Some(w) => format!(
            "Notification latency: {} users, long polls held up to {} s",
            super::table::group(plan.users as i64),
            w.as_secs_f64()
        ),
        None => format!(
            "Notification latency: {} users, poll every {} s",
            super::table::group(plan.users as i64),
            plan.poll_interval.as_secs_f64()
        ),
    };
    png_and_svg!(out, "latency-cdf", |root| draw_cdf(root, &title, series));
    Ok(())
}

/// Draws the legend where asked and writes the chart out.
fn legend_and_present<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    root: &DrawingArea<DB, Shift>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 24))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

pub fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting failed: {e:?}")
}

/// Postgres's queries per second through each mode's window, from the samples of a run.
pub fn db_series(result: &RunResult) -> Series {
    result
        .modes
        .iter()
        .map(|m| {
            let pts = m
                .samples
                .iter()
                .filter_map(|s| Some((s.t_s, s.db_queries_per_s?)))
                .collect::<Vec<_>>();
            (m.mode, pts)
        })
        .filter(|(_, p)| !p.is_empty())
        .collect()
}

/// Queries per second that Postgres counted, through each mode's window, on one chart:
/// `db-queries.png` and `.svg`.
pub fn db_queries_over_time(plan: &Plan, series: &Series, out: &Path) -> anyhow::Result<()> {
    register_font();
    if series.is_empty() {
        return Ok(());
    }
    let title = format!(
        "Database queries per second, counted by PostgreSQL ({} users)",
        super::table::group(plan.users as i64)
    );
    let x_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(x, _)| x))
        .fold(1.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold(1.0, f64::max)
        * 1.15;
    let faults: Vec<(f64, &str)> = plan
        .faults
        .iter()
        .map(|f| (f.at.as_secs_f64(), f.action.name()))
        .collect();
    png_and_svg!(out, "db-queries", |root| draw_lines(
        root, &title, series, x_max, y_max, &faults
    ));
    Ok(())
}

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    series: &Series,
    x_max: f64,
    y_max: f64,
    faults: &[(f64, &str)],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 30))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(100)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the measurement window")
        .y_desc("queries per second")
        .label_style(("sans-serif", 20))
        .axis_desc_style(("sans-serif", 22))
        .light_line_style(RGBColor(235, 235, 235))
        .y_label_formatter(&|y| axis_label(*y, y_max))
        .draw()
        .map_err(plot_err)?;
    for (mode, pts) in series {
        let c = color(*mode);
        let mean = pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(4)))
            .map_err(plot_err)?
            .label(format!(
                "{mode}: {} queries/s on average",
                super::table::group(mean.round() as i64)
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], c.stroke_width(4)));
    }
    // Faults: a dashed line at the time each fired, with its name.
    let grey = RGBColor(90, 90, 90);
    for &(at, name) in faults {
        chart
            .draw_series(DashedLineSeries::new(
                [(at, 0.0), (at, y_max)],
                8,
                6,
                grey.stroke_width(2),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series([Text::new(
                format!(" {name}"),
                (at, y_max * 0.97),
                ("sans-serif", 20).into_font().color(&grey),
            )])
            .map_err(plot_err)?;
    }
    legend_and_present(&mut chart, &root, SeriesLabelPosition::UpperRight)
}

/// The components whose CPU the chart shows: (label, key under `cpu`).
/// The parts of the system under test, then the load generator.
/// A labelled figure of a part of a mode's summary.
type Labelled<T> = (&'static str, fn(&T) -> Option<f64>);

const PARTS: [Labelled<Cpu>; 4] = [
    ("servers", |c| c.server_cores),
    ("Postgres", |c| c.db_cores),
    ("Redis", |c| c.redis_cores),
    ("swarm (clients, the load generator)", |c| c.swarm_cores),
];

/// A mode's figures, where it ran.
fn mode_of(summary: &Summary, mode: Mode) -> Option<&ModeSummary> {
    match mode {
        Mode::Poll => summary.modes.poll.as_ref(),
        Mode::Push => summary.modes.push.as_ref(),
    }
}

/// CPU cores used over the window by each component, a bar per mode: `cpu.png` and `.svg`.
pub fn cpu_by_component(plan: &Plan, summary: &Summary, out: &Path) -> anyhow::Result<()> {
    register_font();
    let bars: Vec<(Mode, Vec<Option<f64>>)> = plan
        .modes
        .iter()
        .map(|&m| {
            let cpu = mode_of(summary, m).map(|s| &s.cpu);
            (m, PARTS.iter().map(|(_, f)| cpu.and_then(f)).collect())
        })
        .collect();
    if bars.iter().all(|(_, v)| v.iter().all(Option::is_none)) {
        return Ok(());
    }
    let title = format!(
        "CPU by component over the window ({} users, {} cores in the machine)",
        super::table::group(plan.users as i64),
        summary.machine.cores
    );
    let y_max = bars
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.1f64, |a, &b| a.max(b))
        * 1.25;
    png_and_svg!(out, "cpu", |root| draw_bars(root, &title, &bars, y_max));
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    bars: &[(Mode, Vec<Option<f64>>)],
    y_max: f64,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 30))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..PARTS.len() as f64, 0f64..y_max)
        .map_err(plot_err)?;
    let names = |x: &f64| {
        let i = x.floor() as usize;
        let centred = (x - x.floor() - 0.5).abs() < 1e-6;
        match PARTS.get(i) {
            Some((name, _)) if centred => name.to_string(),
            _ => String::new(),
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(PARTS.len() * 2 + 1)
        .x_label_formatter(&names)
        .y_desc("CPU cores (1.0 = one core busy)")
        .label_style(("sans-serif", 22))
        .axis_desc_style(("sans-serif", 22))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_err)?;
    let width = 0.8 / bars.len().max(1) as f64;
    for (mi, (mode, values)) in bars.iter().enumerate() {
        let c = color(*mode);
        let x0 = |i: usize| i as f64 + 0.1 + mi as f64 * width;
        let rects: Vec<_> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                Some(Rectangle::new(
                    [(x0(i), 0.0), (x0(i) + width * 0.9, (*v)?)],
                    c.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(rects)
            .map_err(plot_err)?
            .label(mode.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 24, y + 8)], c.filled()));
        let labels: Vec<_> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let v = (*v)?;
                Some(Text::new(
                    format!("{v:.2}"),
                    (x0(i) + width * 0.15, v + y_max * 0.04),
                    ("sans-serif", 20),
                ))
            })
            .collect();
        chart.draw_series(labels).map_err(plot_err)?;
    }
    legend_and_present(&mut chart, &root, SeriesLabelPosition::UpperRight)
}

fn draw_cdf<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    series: &Series,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let err = plot_err::<DrawingAreaErrorKind<DB::ErrorType>>;
    root.fill(&WHITE).map_err(err)?;
    let xs = series.iter().flat_map(|(_, p)| p.iter().map(|&(x, _)| x));
    let (lo, hi) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (lo, hi) = (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil()).max(lo * 10.0),
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 30))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..100f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency from emit to client (ms, log scale)")
        .y_desc("notifications delivered within (%)")
        .label_style(("sans-serif", 20))
        .axis_desc_style(("sans-serif", 22))
        .light_line_style(RGBColor(235, 235, 235))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_label_formatter(&|x| {
            if *x >= 1.0 {
                format!("{x:.0}")
            } else {
                format!("{x}")
            }
        })
        .draw()
        .map_err(err)?;
    for (mode, pts) in series {
        let c = color(*mode);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(4)))
            .map_err(err)?
            .label(mode.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], c.stroke_width(4)));
    }
    legend_and_present(&mut chart, &root, SeriesLabelPosition::LowerRight)
}

/// A panel's title and a bar per mode (None where unmeasured).
type Panel<'a> = (&'a str, Vec<(Mode, Option<f64>)>);

/// The two bandwidth figures, one panel each, a bar per mode on a log scale (they differ
/// by decades): bytes per user per minute, and bytes per delivered notification.
/// `bandwidth.png` and `.svg`.
pub fn bandwidth(plan: &Plan, summary: &Summary, out: &Path) -> anyhow::Result<()> {
    register_font();
    let figures: [Labelled<Bandwidth>; 2] = [
        ("bytes per user per minute", |b| b.bytes_per_user_per_min),
        ("bytes per delivered notification", |b| {
            b.bytes_per_delivered
        }),
    ];
    let panels: Vec<Panel> = figures
        .iter()
        .map(|&(title, figure)| {
            let values = plan
                .modes
                .iter()
                .map(|&m| {
                    let v = mode_of(summary, m).and_then(|s| figure(&s.bandwidth));
                    (m, v.filter(|x| *x > 0.0))
                })
                .collect();
            (title, values)
        })
        .collect();
    if panels
        .iter()
        .all(|(_, v)| v.iter().all(|(_, x)| x.is_none()))
    {
        return Ok(());
    }
    let title = format!(
        "Bandwidth on the client sockets ({} users, headers: {})",
        super::table::group(plan.users as i64),
        plan.headers.name()
    );
    png_and_svg!(out, "bandwidth", |root| draw_bandwidth(
        root, &title, &panels
    ));
    Ok(())
}

fn draw_bandwidth<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    panels: &[Panel],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    let root = root.titled(title, ("sans-serif", 30)).map_err(plot_err)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, (panel, values)) in areas.iter().zip(panels) {
        let hi = values.iter().filter_map(|(_, v)| *v).fold(1.0f64, f64::max);
        let hi = 10f64.powf((hi * 1.5).log10().ceil());
        let names: Vec<&str> = values.iter().map(|(m, _)| m.as_str()).collect();
        let mut chart = ChartBuilder::on(area)
            .caption(*panel, ("sans-serif", 24))
            .margin(20)
            .x_label_area_size(45)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..values.len().max(1) as f64, (1f64..hi).log_scale())
            .map_err(plot_err)?;
        let label = |x: &f64| {
            let centred = (x - x.floor() - 0.5).abs() < 1e-6;
            match names.get(x.floor() as usize) {
                Some(n) if centred => n.to_string(),
                _ => String::new(),
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(values.len() * 2 + 1)
            .x_label_formatter(&label)
            .y_desc("bytes (log scale)")
            .y_label_formatter(&|y| super::table::group(y.round() as i64))
            .label_style(("sans-serif", 22))
            .axis_desc_style(("sans-serif", 22))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_err)?;
        for (i, (mode, v)) in values.iter().enumerate() {
            let Some(v) = *v else { continue };
            let c = color(*mode);
            let x = i as f64;
            chart
                .draw_series([Rectangle::new([(x + 0.2, 1.0), (x + 0.8, v)], c.filled())])
                .map_err(plot_err)?;
            chart
                .draw_series([Text::new(
                    super::table::group(v.round() as i64),
                    (x + 0.3, v * 1.9),
                    ("sans-serif", 22),
                )])
                .map_err(plot_err)?;
        }
    }
    root.present().map_err(plot_err)?;
    Ok(())
}
/// A tick label on an axis from 0 to `max`: as many decimals as the tick step needs (about
/// ten ticks), so that no two ticks read the same ("0.1, 0.1, 0.1" on a small range), and
/// thousands grouped.
pub(crate) fn axis_label(v: f64, max: f64) -> String {
    let step = (max / 10.0).max(f64::MIN_POSITIVE);
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    if decimals == 0 {
        super::table::group(v.round() as i64)
    } else {
        format!("{v:.decimals$}")
    }
}

#[cfg(test)]
mod tests {
    use super::axis_label;

    #[test]
    fn ten_ticks_never_read_the_same() {
        for max in [0.012, 0.25, 0.3, 0.8, 3.0, 42.0, 1500.0, 250_000.0] {
            let labels: Vec<String> = (0..=10)
                .map(|i| axis_label(i as f64 * max / 10.0, max))
                .collect();
            let distinct: std::collections::BTreeSet<&String> = labels.iter().collect();
            assert_eq!(distinct.len(), labels.len(), "{max}: {labels:?}");
        }
        assert_eq!(axis_label(12_000.0, 50_000.0), "12,000");
    }

    #[test]
    fn a_cdf_is_smooth_on_the_log_axis_and_never_goes_back() {
        // Polling's latencies: uniform from a few ms to 5 s.
        let mut h = crate::metrics::latency_histogram();
        for v in 0..5_000u64 {
            h.record(v * 1000 + 3_000).unwrap();
        }
        let series = super::cdf_points(&[(crate::config::Mode::Poll, h)]);
        let pts = &series[0].1;
        for w in pts.windows(2) {
            assert!(w[1].0 >= w[0].0 && w[1].1 >= w[0].1, "{w:?}");
            assert!(w[1].0.log10() - w[0].0.log10() < 0.02, "a gap: {w:?}");
        }
        assert_eq!(pts.last().unwrap().1, 100.0);
    }
}
