//! Plots with plotters, as PNG and SVG, drawn with the bundled DejaVu Sans so that no
//! system font library is needed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use hdrhistogram::Histogram;

use crate::scenario::{Mode, Plan};

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

type Series = Vec<(Mode, Vec<(f64, f64)>)>;

/// Latency CDF of every mode on one log-x chart: `latency-cdf.png` and `.svg`.
pub fn latency_cdf(
    plan: &Plan,
    latency: &[(Mode, Histogram<u64>)],
    out: &Path,
) -> anyhow::Result<()> {
    register_font();
    let series: Series = latency
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(mode, h)| {
            let pts = h
                .iter_quantiles(20)
                .map(|v| {
                    (
                        (v.value_iterated_to() as f64 / 1000.0).max(0.01),
                        v.quantile_iterated_to() * 100.0,
                    )
                })
                .collect();
            (*mode, pts)
        })
        .collect();
    if series.is_empty() {
        return Ok(());
    }
    let title = format!(
        "Notification latency: {} users, poll every {} s",
        super::table::group(plan.users as i64),
        plan.poll_interval.as_secs_f64()
    );
    let png = out.join("latency-cdf.png");
    draw_cdf(
        BitMapBackend::new(&png, (1200, 700)).into_drawing_area(),
        &title,
        &series,
    )?;
    let svg = out.join("latency-cdf.svg");
    draw_cdf(
        SVGBackend::new(&svg, (1200, 700)).into_drawing_area(),
        &title,
        &series,
    )?;
    Ok(())
}

fn draw_cdf<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    series: &Series,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("plotting failed: {e:?}");
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
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 24))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
