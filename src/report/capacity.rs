//! `pollpush capacity`: each step judged against the service level objectives, the
//! component that saturated named, the largest load each mode held, and the table, the
//! plot and `summary.json` (under `capacity`) that say so. The search itself is the app's.

use std::path::Path;

use super::plot::{plot_err, register_font};
use crate::config::Mode;
use crate::scenario::Plan;
use crate::summary::capacity::{Capacity, ModeSearch, Step, StepCpu};
use crate::summary::mode::Cpu;
use crate::summary::Summary;
use plotters::prelude::*;

/// The CPU components a step names, and their cores; the servers with their ingest.
fn parts(cpu: &Cpu) -> [(&'static str, Option<f64>); 4] {
    [
        (
            "the servers",
            cpu.server_cores.zip(cpu.ingest_cores).map(|(a, b)| a + b),
        ),
        ("Postgres", cpu.db_cores),
        ("Redis", cpu.redis_cores),
        ("the swarm", cpu.swarm_cores),
    ]
}

/// The objectives a step broke, in words.
fn broken(mode: Mode, users: u64, m: &crate::summary::ModeSummary, plan: &Plan) -> Vec<String> {
    let c = &plan.capacity;
    let interval_ms = plan.poll_interval.as_secs_f64() * 1000.0;
    let mut broken = Vec::new();
    let lost = m.events.lost;
    if lost > 0 {
        broken.push(format!("{lost} notifications lost"));
    }
    if m.events.sent == 0 {
        broken.push("no notification was sent".to_string());
    }
    let connect_errors = m.http.connect_errors;
    match mode {
        Mode::Poll => {
            let errors = m.http.errors;
            if errors + connect_errors > 0 {
                broken.push(format!(
                    "{errors} failed polls, {connect_errors} failed connections"
                ));
            }
            let limit = c.poll_lateness_share * interval_ms;
            match m.http.schedule_lateness_ms.p99 {
                Some(l) if l > limit => broken.push(format!(
                    "polls left late: lateness p99 {l:.0} ms > {limit:.0} ms"
                )),
                None => broken.push("no poll was measured".into()),
                _ => {}
            }
            let limit = interval_ms + c.poll_grace.as_secs_f64() * 1000.0;
            if let Some(max) = m.latency_ms.max.filter(|&x| x > limit) {
                broken.push(format!(
                    "a notification took {max:.0} ms > the interval plus grace, {limit:.0} ms"
                ));
            }
        }
        Mode::Push => {
            match m.latency_ms.p99 {
                Some(p) if p > c.push_p99_ms => {
                    broken.push(format!("latency p99 {p:.1} ms > {} ms", c.push_p99_ms))
                }
                None => broken.push("no notification was delivered".into()),
                _ => {}
            }
            if m.connections < users as i64 {
                broken.push(format!("{} of {users} clients connected", m.connections));
            }
        }
    }
    broken
}

/// One step of the search judged: its figures, which objectives broke, and what limited it.
/// `summary` is the step's own summary; `cores`, this machine's.
pub fn judge(mode: Mode, users: u64, summary: &Summary, plan: &Plan, cores: f64) -> Step {
    let empty = Default::default();
    let m = match mode {
        Mode::Poll => summary.modes.poll.as_ref(),
        Mode::Push => summary.modes.push.as_ref(),
    }
    .unwrap_or(&empty);
    let broken = broken(mode, users, m, plan);
    let connect_errors = m.http.connect_errors;
    let parts = parts(&m.cpu);
    let total: f64 = parts.iter().filter_map(|p| p.1).sum();
    let busiest = parts
        .iter()
        .filter_map(|&(l, v)| Some((l, v?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let late = broken.iter().any(|b| b.starts_with("polls left late"));
    let limit = match busiest {
        _ if broken.is_empty() => None,
        _ if connect_errors > 0 || broken.iter().any(|b| b.contains("clients connected")) => {
            Some("connections: clients could not connect".to_string())
        }
        Some(("the swarm", v)) => Some(format!(
            "the swarm ({v:.2} of {cores} cores, the busiest component): the load generator, not the system"
        )),
        Some((label, v)) if total >= 0.9 * cores => Some(format!(
            "{label} ({v:.2} cores, the busiest), on a machine with every core busy ({total:.2} of {cores})"
        )),
        _ if late => Some(format!(
            "the swarm's schedule (polls left late with {total:.2} of {cores} cores busy)"
        )),
        Some((label, v)) => Some(format!(
            "no component saturated ({label} the busiest, {v:.2} cores; {total:.2} of {cores} in all)"
        )),
        None => Some("unknown (no CPU figure)".into()),
    };
    Step {
        users,
        held: broken.is_empty(),
        broken,
        swarm_limited: limit.as_deref().is_some_and(|l| l.starts_with("the swarm")),
        limit,
        events_per_s: summary.plan.events_per_s,
        push_instances: summary.plan.push_instances,
        latency_ms: m.latency_ms.clone(),
        lateness_p99_ms: m.http.schedule_lateness_ms.p99,
        lost: Some(m.events.lost),
        connections: Some(m.connections),
        requests_per_min: m.http.requests_per_min,
        db_queries_per_min: m.db.queries_per_min,
        cpu_cores: StepCpu {
            servers: parts[0].1,
            postgres: parts[1].1,
            redis: parts[2].1,
            swarm: parts[3].1,
        },
        cpu_total_cores: Some((total * 1000.0).round() / 1000.0),
    }
}

/// One mode's search: the largest load held, the first that broke, and why.
pub fn verdict(mode: Mode, steps: &[Step], stopped: Option<&str>, max: u64) -> ModeSearch {
    let held = steps.iter().filter(|s| s.held).map(|s| s.users).max();
    let broke = steps.iter().filter(|s| !s.held).min_by_key(|s| s.users);
    let sentence = match (held, broke, stopped) {
        (h, Some(b), _) => format!(
            "{mode}: held {} users; broke at {}: {}; limited by {}",
            h.map_or("no".into(), |h| h.to_string()),
            b.users,
            b.broken.join(", "),
            b.limit.as_deref().unwrap_or("unknown")
        ),
        (Some(h), None, Some(why)) => {
            format!("{mode}: held {h} users, every step tried; no break found: {why}")
        }
        (Some(h), None, None) => format!(
            "{mode}: held {h} users, the search's maximum ({max}); no break found within it"
        ),
        (None, None, why) => format!("{mode}: no step ran ({})", why.unwrap_or("nothing tried")),
    };
    ModeSearch {
        held_users: held,
        broke_at_users: broke.map(|b| b.users),
        limit: broke.and_then(|b| b.limit.clone()),
        swarm_limited: broke.is_some_and(|b| b.swarm_limited),
        stopped: stopped.map(str::to_string),
        verdict: sentence,
        steps: steps.to_vec(),
    }
}

/// The steps as a table, then each mode's verdict.
pub fn render(capacity: &Capacity) -> String {
    let mut rows = vec![[
        "mode",
        "users",
        "held",
        "p99 ms",
        "late p99 ms",
        "lost",
        "servers",
        "Postgres",
        "Redis",
        "swarm",
        "all cores",
    ]
    .map(String::from)
    .to_vec()];
    let show = |v: Option<f64>| match v {
        Some(x) if x.fract() == 0.0 => format!("{x}"),
        Some(x) => format!("{x:.2}"),
        None => "-".into(),
    };
    let mut verdicts = Vec::new();
    for (mode, m) in capacity.modes.iter() {
        for s in &m.steps {
            let cpu = &s.cpu_cores;
            rows.push(vec![
                mode.to_string(),
                super::table::group(s.users as i64),
                if s.held { "yes" } else { "NO" }.into(),
                show(s.latency_ms.p99),
                show(s.lateness_p99_ms),
                show(s.lost.map(|x| x as f64)),
                show(cpu.servers),
                show(cpu.postgres),
                show(cpu.redis),
                show(cpu.swarm),
                show(s.cpu_total_cores),
            ]);
        }
        verdicts.push(m.verdict.clone());
    }
    let left: Vec<bool> = (0..11).map(|i| i == 0).collect();
    let mut out = super::table::align(&rows, &left).join("\n");
    out.push_str("\n\n");
    out.push_str(&verdicts.join("\n"));
    out
}

/// `capacity.md` (the table and verdicts) and the plot, from the `capacity` key of the
/// search's summary; returns the table.
pub fn write_views(plan: &Plan, capacity: &Capacity, out: &Path) -> anyhow::Result<String> {
    let cores = if capacity.machine_cores > 0.0 {
        capacity.machine_cores
    } else {
        1.0
    };
    let table = render(capacity);
    std::fs::write(
        out.join("capacity.md"),
        format!(
            "# Capacity of {} on this machine ({cores} cores)\n\n```\n{table}\n```\n\n![CPU against users](capacity.png)\n",
            plan.name
        ),
    )
    .map_err(|e| crate::error::input(format!("cannot write capacity.md in {}: {e}", out.display())))?;
    plot(plan, capacity, cores, out)?;
    Ok(table)
}

/// `capacity.png` and `.svg`: the CPU of every component of the system under test and of
/// Postgres alone against users, one colour per mode, the first broken step marked.
pub fn plot(plan: &Plan, capacity: &Capacity, cores: f64, out: &Path) -> anyhow::Result<()> {
    register_font();
    let mut lines = Vec::new();
    for (mode, search) in [
        (Mode::Poll, &capacity.modes.poll),
        (Mode::Push, &capacity.modes.push),
    ] {
        let Some(search) = search else {
            continue;
        };
        let mut pts: Vec<(f64, f64, f64, bool)> = search
            .steps
            .iter()
            .map(|s| {
                let c = &s.cpu_cores;
                (
                    s.users as f64,
                    c.system(),
                    c.postgres.unwrap_or(0.0),
                    s.held,
                )
            })
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        lines.push((mode, pts));
    }
    let x_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0, f64::max)
        * 1.05;
    let y_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(cores, f64::max)
        * 1.1;
    let title = format!(
        "CPU of the system under test against users (poll every {} s)",
        plan.poll_interval.as_secs_f64()
    );
    let png = out.join("capacity.png");
    draw(
        BitMapBackend::new(&png, (1200, 700)).into_drawing_area(),
        &title,
        &lines,
        (x_max, y_max),
        cores,
    )?;
    let svg = out.join("capacity.svg");
    draw(
        SVGBackend::new(&svg, (1200, 700)).into_drawing_area(),
        &title,
        &lines,
        (x_max, y_max),
        cores,
    )
}

type Lines = Vec<(Mode, Vec<(f64, f64, f64, bool)>)>;

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    lines: &Lines,
    (x_max, y_max): (f64, f64),
    cores: f64,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 28))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("simulated users")
        .y_desc("CPU cores")
        .label_style(("sans-serif", 20))
        .axis_desc_style(("sans-serif", 22))
        .light_line_style(RGBColor(235, 235, 235))
        .x_label_formatter(&|x| super::table::group(x.round() as i64))
        .draw()
        .map_err(plot_err)?;
    let grey = RGBColor(90, 90, 90);
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, cores), (x_max, cores)],
            8,
            6,
            grey.stroke_width(2),
        ))
        .map_err(plot_err)?
        .label(format!("this machine: {cores} cores"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], grey.stroke_width(2)));
    for (mode, pts) in lines {
        let c = match mode {
            Mode::Poll => RGBColor(214, 39, 40),
            Mode::Push => RGBColor(31, 119, 180),
        };
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|p| (p.0, p.1)),
                c.stroke_width(4),
            ))
            .map_err(plot_err)?
            .label(format!("{mode}: servers + Postgres + Redis"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], c.stroke_width(4)));
        chart
            .draw_series(DashedLineSeries::new(
                pts.iter().map(|p| (p.0, p.2)),
                10,
                6,
                c.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(format!("{mode}: Postgres alone"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|p| Circle::new((p.0, p.1), 6, c.filled())))
            .map_err(plot_err)?;
        if let Some(b) = pts.iter().find(|p| !p.3) {
            chart
                .draw_series([Cross::new((b.0, b.1), 14, BLACK.stroke_width(4))])
                .map_err(plot_err)?;
            chart
                .draw_series([Text::new(
                    format!(" {mode} broke"),
                    (b.0, b.1),
                    ("sans-serif", 20).into_font().color(&BLACK),
                )])
                .map_err(plot_err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 20))
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn plan() -> Plan {
        crate::scenario::load(None, &["poll.interval=\"1s\"".into()]).unwrap()
    }

    fn step(mode: &str, body: Value) -> Summary {
        Summary::from_value(
            json!({ "plan": { "events_per_s": 4.0, "push_instances": 1 }, "modes": { mode: body } }),
        )
        .unwrap()
    }

    fn cpu(server: f64, db: f64, redis: f64, swarm: f64) -> Value {
        json!({ "server_cores": server, "ingest_cores": 0.0, "db_cores": db, "redis_cores": redis, "swarm_cores": swarm })
    }

    #[test]
    fn a_step_that_meets_every_objective_holds_and_names_no_limit() {
        let s = step(
            "push",
            json!({ "events": { "sent": 10, "lost": 0 }, "latency_ms": { "p99": 3.0 },
                    "connections": 1000, "cpu": cpu(0.1, 0.01, 0.01, 0.1) }),
        );
        let j = judge(Mode::Push, 1000, &s, &plan(), 2.0);
        assert!(j.held, "{j:?}");
        assert_eq!(j.limit, None);
    }

    #[test]
    fn each_broken_objective_is_named_with_what_saturated() {
        // Push: p99 over 50 ms on a machine with every core busy, the servers the busiest.
        let s = step(
            "push",
            json!({ "events": { "sent": 10, "lost": 0 }, "latency_ms": { "p99": 80.0 },
                    "connections": 1000, "cpu": cpu(1.1, 0.2, 0.1, 0.5) }),
        );
        let j = judge(Mode::Push, 1000, &s, &plan(), 2.0);
        assert!(!j.held);
        assert!(j.broken[0].contains("p99 80.0 ms > 50 ms"), "{j:?}");
        assert!(
            j.limit
                .as_deref()
                .unwrap()
                .starts_with("the servers (1.10 cores"),
            "{j:?}"
        );
        assert!(!j.swarm_limited);
        // Poll: polls left late with the swarm the busiest: the load generator's limit.
        let s = step(
            "poll",
            json!({ "events": { "sent": 10, "lost": 0 }, "latency_ms": { "max": 900.0 },
                    "http": { "errors": 0, "connect_errors": 0, "schedule_lateness_ms": { "p99": 250.0 } },
                    "cpu": cpu(0.6, 0.4, 0.0, 0.9) }),
        );
        let j = judge(Mode::Poll, 4000, &s, &plan(), 2.0);
        assert!(
            j.broken[0].contains("lateness p99 250 ms > 100 ms"),
            "{j:?}"
        );
        assert!(j.swarm_limited, "{j:?}");
        // Missing clients are a connection limit, whatever the CPU.
        let s = step(
            "push",
            json!({ "events": { "sent": 10, "lost": 0 }, "latency_ms": { "p99": 3.0 },
                    "connections": 900, "cpu": cpu(0.1, 0.0, 0.0, 0.1) }),
        );
        let j = judge(Mode::Push, 1000, &s, &plan(), 2.0);
        assert!(
            j.limit.as_deref().unwrap().starts_with("connections"),
            "{j:?}"
        );
        let v = verdict(Mode::Push, &[j], None, 1000);
        assert!(v.verdict.contains("held no users; broke at 1000"), "{v:?}");
    }
}
