//! The model as text: the prices per unit of work, the check against held-out runs, the
//! projection to 10^7 users, how the ratios move, and what the model assumes.

use std::fmt::Write;

use serde_json::{json as j, Value};

use super::fit::{COLLINEAR, CONSTANT, NEGATIVE};
use super::{ModeModel, Model, Projection, COSTS, UNITS};
use crate::report::table::{align, group};

/// A number with three significant digits, grouped when large.
pub fn sig(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        group(v.round() as i64)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        let digits = (-a.log10()).floor() as usize + 3;
        format!("{v:.digits$}")
    }
}

/// The price of one unit in words a reader can use: CPU in µs per unit, bytes per unit,
/// memory in KB per connection.
fn price(cost: &str, unit: usize, v: f64) -> String {
    match (cost, unit) {
        (c, 3) if c.ends_with("_cores") => format!("{} µs/s each", sig(v * 1e6)),
        (c, _) if c.ends_with("_cores") => format!("{} µs CPU", sig(v * 1e6)),
        ("bytes_per_s", 3) => format!("{} B/s each", sig(v)),
        ("bytes_per_s", _) => format!("{} B", sig(v)),
        ("server_rss_mb", _) => format!("{} KB", sig(v * 1024.0)),
        _ => sig(v),
    }
}

fn fixed(cost: &str, v: f64) -> String {
    match cost {
        c if c.ends_with("_cores") => format!("{} cores", sig(v)),
        "server_rss_mb" => format!("{} MB", sig(v)),
        _ => sig(v),
    }
}

fn price_rows(m: &ModeModel) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "cost".to_string(),
        "fixed".into(),
        format!("per {}", UNITS[0]),
        format!("per {}", UNITS[1]),
        format!("per {}", UNITS[2]),
        format!("per {}", UNITS[3]),
        "fit error".into(),
    ]];
    for (ci, c) in COSTS.iter().enumerate() {
        let Some(f) = &m.fits[ci] else { continue };
        let mut row = vec![c.label.to_string(), fixed(c.key, f.intercept)];
        for u in 0..UNITS.len() {
            let bound = m.bounded.contains(&(ci, u));
            row.push(match f.coef(u) {
                Some(v) if bound => format!("<= {}", price(c.key, u, v)),
                Some(v) => price(c.key, u, v),
                None => match f.dropped.iter().find(|(d, _)| *d == u) {
                    Some((_, why)) if *why == CONSTANT => "not separable".into(),
                    Some((_, why)) if *why == COLLINEAR => "in step".into(),
                    Some((_, why)) if *why == NEGATIVE => "~0".into(),
                    _ => "".into(),
                },
            });
        }
        row.push(format!("{:.1} %", f.rel_rmse * 100.0));
        rows.push(row);
    }
    rows
}

fn table(rows: &[Vec<String>], md: bool) -> String {
    if md {
        let mut out = String::new();
        for (i, r) in rows.iter().enumerate() {
            let _ = writeln!(out, "| {} |", r.join(" | "));
            if i == 0 {
                let _ = writeln!(out, "|{}", "---|".repeat(r.len()));
            }
        }
        out
    } else {
        let left: Vec<bool> = (0..rows[0].len()).map(|i| i == 0).collect();
        align(rows, &left).join("\n") + "\n"
    }
}

fn check_rows(model: &Model) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "mode".to_string(),
        "held-out run".into(),
        "cost".into(),
        "predicted".into(),
        "measured".into(),
        "error".into(),
        "within 15 % (CPU: or 0.01 cores)".into(),
    ]];
    for m in &model.modes {
        let Some(check) = &m.check else { continue };
        for (ci, label, pred, meas) in &check.rows {
            let err = if *meas != 0.0 {
                format!("{:+.1} %", (pred - meas) / meas * 100.0)
            } else {
                "-".into()
            };
            rows.push(vec![
                m.mode.clone(),
                label.clone(),
                COSTS[*ci].label.to_string(),
                sig(*pred),
                sig(*meas),
                err,
                if super::within(COSTS[*ci].key, *pred, *meas) {
                    "yes".into()
                } else {
                    "NO".into()
                },
            ]);
        }
    }
    rows
}

fn notes(model: &Model, mode: &str, p: &Projection) -> String {
    let mut n = Vec::new();
    if p.users > model.max_users {
        n.push(format!("extrapolated x{}", sig(p.users / model.max_users)));
    }
    if p.get("db_cores").is_some_and(|c| c > model.max_db_cores) {
        n.push(format!(
            "beyond one Postgres ({} cores)",
            sig(model.max_db_cores)
        ));
    }
    if mode == "push" && p.users > 16_000.0 && model.fanout == "broadcast" {
        n.push("per-user channels assumed".into());
    }
    n.join("; ")
}

fn projection_rows(model: &Model, m: &ModeModel, scales: &[f64]) -> Vec<Vec<String>> {
    let mut head = vec![
        "users".to_string(),
        "Postgres cores".into(),
        "server cores (with ingest)".into(),
        "of which ingest".into(),
        "Redis cores".into(),
        "all cores".into(),
        "Mbit/s".into(),
        "TB/month".into(),
        "server memory (GB)".into(),
    ];
    if model.prices.is_some() {
        head.push("monthly cost".into());
    }
    head.push("notes".into());
    let mut rows = vec![head];
    for u in scales {
        let p = m.project(*u, model.interval_s, model.events_per_user_per_s);
        let s = |v: Option<f64>| v.map_or("-".into(), sig);
        let bytes = p.get("bytes_per_s");
        let mut row = vec![
            group(*u as i64),
            s(p.get("db_cores")),
            s(p.get("server_cores")),
            s(p.get("ingest_cores")),
            s(p.get("redis_cores")),
            s(p.system_cores()),
            s(bytes.map(|b| b * 8.0 / 1e6)),
            s(bytes.map(|b| b * 730.0 * 3600.0 / 1e12)),
            s(p.get("server_rss_mb").map(|m| m / 1024.0)),
        ];
        if let Some(prices) = &model.prices {
            row.push(p.monthly(prices).map_or("-".into(), sig));
        }
        row.push(notes(model, &m.mode, &p));
        rows.push(row);
    }
    rows
}

/// poll / push at one point: all cores, Postgres cores, bandwidth.
pub fn ratios(model: &Model, users: f64, interval_s: f64, rate: f64) -> Option<[f64; 3]> {
    let poll = model.mode("poll")?.project(users, interval_s, rate);
    let push = model.mode("push")?.project(users, interval_s, rate);
    let r = |a: Option<f64>, b: Option<f64>| Some(a? / b?.max(1e-12));
    Some([
        r(poll.system_cores(), push.system_cores())?,
        r(poll.get("db_cores"), push.get("db_cores"))?,
        r(poll.get("bytes_per_s"), push.get("bytes_per_s"))?,
    ])
}

pub const INTERVALS: [f64; 6] = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0];
pub const RATES_PER_MIN: [f64; 6] = [0.012, 0.06, 0.12, 0.6, 1.2, 6.0];

fn ratio_rows(model: &Model) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "varied".to_string(),
        "value".into(),
        "all cores, poll/push".into(),
        "Postgres cores, poll/push".into(),
        "bandwidth, poll/push".into(),
    ]];
    let (u0, t0, r0) = (
        model.max_users,
        model.interval_s,
        model.events_per_user_per_s,
    );
    let mut push = |what: &str, value: String, r: Option<[f64; 3]>| {
        if let Some(r) = r {
            rows.push(vec![
                what.to_string(),
                value,
                format!("{}x", sig(r[0])),
                format!("{}x", sig(r[1])),
                format!("{}x", sig(r[2])),
            ]);
        }
    };
    for u in [1e3, 1e4, 1e5, 1e6, 1e7] {
        push("users", group(u as i64), ratios(model, u, t0, r0));
    }
    for t in INTERVALS {
        push("poll interval", format!("{t} s"), ratios(model, u0, t, r0));
    }
    for r in RATES_PER_MIN {
        push(
            "events per user per minute",
            sig(r),
            ratios(model, u0, t0, r / 60.0),
        );
    }
    rows
}

fn assumptions(model: &Model) -> Vec<String> {
    let mut a = vec![
        "Costs are linear in the work: a fixed part plus a price per poll, per insert, per delivered notification and per connection, fitted by least squares (no price below zero, each run weighed by its size) on the calibration runs. Nothing here was measured at the projected scales.".to_string(),
        "Each price is what a unit cost at the calibration's rates. At higher rates a unit costs less CPU (more work per wake-up: the poll API's CPU per poll fell from 140 µs to 85 µs between 200 and 2,000 polls/s), so the projection errs high, most for push, whose notifications were priced at tens a second.".into(),
        format!(
            "Every projected user polls every {} s (poll) or holds one connection (push) and gets {} notifications a minute; every notification is stored once and delivered once.",
            sig(model.interval_s),
            sig(model.events_per_user_per_s * 60.0)
        ),
        format!(
            "One Postgres: its CPU is projected as if one server could grow without limit. Past {} cores (--max-db-cores) no single Postgres holds it: the rows say so, and polling would need read replicas, a sharded database or a cache (the sceptic's table, scenarios/fair.toml), each with costs this model does not have.",
            sig(model.max_db_cores)
        ),
        "Memory is the servers' resident memory; the fixed part is counted once, as if one process held every connection. Postgres, Redis and the clients are left out of memory and of the monthly cost's memory line.".into(),
        "Bandwidth is what the clients sent and received (HTTP headers and bodies, WebSocket frames and pings): the egress a provider bills, and its ingress too.".into(),
    ];
    if model.fanout == "broadcast" {
        a.push("The push runs were calibrated with broadcast fan-out on one gateway instance: every gateway receives every message. Past one instance's connections (16,000 in `run`) the projection assumes per-user channels, where a message reaches only its user's gateway; with broadcast the gateways' inbound work would grow with users x instances.".into());
    }
    for m in &model.modes {
        for (ci, u) in &m.bounded {
            a.push(format!(
                "{}: the {} rate was the same in every calibration run, so its price cannot be told from the fixed part; it is charged the whole fixed part (an upper bound, marked <=) so that projecting more of it does not come for free. Runs at two event rates (scenarios/model.toml) separate them.",
                m.mode,
                UNITS[*u]
            ));
            let _ = ci;
        }
    }
    a.push(format!(
        "Beyond {} users (the largest calibration run) every figure is extrapolated; the plot shades that range. Limits that are not linear are not in the model: sockets per process and per port range, a full machine, Postgres's lock and connection limits, the network's own ceiling.",
        group(model.max_users as i64)
    ));
    a
}

/// The report: model.md.
pub fn markdown(model: &Model, plots: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Cost model: {}\n", model.scenario);
    let _ = writeln!(
        out,
        "Calibrated on {} ({} runs) on this machine: {}. Every figure below a prediction of this model unless it says measured.\n",
        model
            .sources
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(", "),
        model.modes.iter().map(|m| m.points.len()).sum::<usize>(),
        model.machine
    );
    let _ = writeln!(out, "## Price per unit of work (fitted on every run)\n");
    for m in &model.modes {
        let _ = writeln!(out, "**{}** ({} runs)\n", m.mode, m.points.len());
        out += &table(&price_rows(m), true);
        out += "\n";
    }
    let _ = writeln!(out, "## Checked against runs it was not fitted on\n");
    let checked: Vec<String> = model
        .modes
        .iter()
        .filter_map(|m| {
            let c = m.check.as_ref()?;
            Some(format!(
                "{}: fitted on the {} runs with fewer users, asked for the {} at {} users",
                m.mode,
                c.fitted_on,
                c.held_out.len(),
                group(c.held_out[0].users as i64)
            ))
        })
        .collect();
    if checked.is_empty() {
        out += "No check: a mode needs runs at three or more user counts to leave the largest out.\n\n";
    } else {
        let _ = writeln!(out, "{}.\n", checked.join("; "));
        out += &table(&check_rows(model), true);
        out += "\n";
    }
    let _ = writeln!(
        out,
        "## Projection to 10,000,000 users (predictions)\n\nPoll every {} s, {} notifications per user per minute.\n",
        sig(model.interval_s),
        sig(model.events_per_user_per_s * 60.0)
    );
    if let Some(p) = &model.prices {
        let _ = writeln!(
            out,
            "Monthly cost at {} per core-hour, {} per GB-month of memory and {} per TB of traffic (730 hours).\n",
            p.core_hour, p.gb_month, p.tb_egress
        );
    }
    for m in &model.modes {
        let _ = writeln!(out, "**{}**\n", m.mode);
        out += &table(&projection_rows(model, m, &Model::scales()), true);
        out += "\n";
    }
    for p in plots {
        let _ = writeln!(out, "![{p}]({p})\n");
    }
    let _ = writeln!(
        out,
        "## How the ratios move (predictions)\n\nOne knob at a time from {} users, poll every {} s, {} notifications per user per minute. A ratio quoted without its workload describes none.\n",
        group(model.max_users as i64),
        sig(model.interval_s),
        sig(model.events_per_user_per_s * 60.0)
    );
    out += &table(&ratio_rows(model), true);
    let _ = writeln!(out, "\n## Assumptions, and where the model stops\n");
    for a in assumptions(model) {
        let _ = writeln!(out, "- {a}");
    }
    out
}

/// What `model` prints: the prices, the check and the projection at each decade.
pub fn text(model: &Model) -> String {
    let mut out = format!("cost model of {} on {}\n", model.scenario, model.machine);
    for m in &model.modes {
        let _ = writeln!(out, "\n{}: price per unit of work", m.mode);
        out += &table(&price_rows(m), false);
    }
    let rows = check_rows(model);
    if rows.len() > 1 {
        out += "\nchecked against the runs at the most users (left out of this fit):\n";
        out += &table(&rows, false);
    }
    for m in &model.modes {
        let _ = writeln!(
            out,
            "\n{}: projected (poll every {} s, {} notifications/user/min)",
            m.mode,
            sig(model.interval_s),
            sig(model.events_per_user_per_s * 60.0)
        );
        out += &table(
            &projection_rows(model, m, &[1e3, 1e4, 1e5, 1e6, 1e7]),
            false,
        );
    }
    out
}

/// model.json: the prices, the check and the projection.
pub fn json(model: &Model) -> Value {
    let modes: Vec<Value> = model
        .modes
        .iter()
        .map(|m| {
            let fits: serde_json::Map<String, Value> = COSTS
                .iter()
                .zip(&m.fits)
                .filter_map(|(c, f)| {
                    let f = f.as_ref()?;
                    let per: serde_json::Map<String, Value> = f
                        .coefs
                        .iter()
                        .map(|(u, v)| (UNITS[*u].replace(' ', "_"), j!(v)))
                        .collect();
                    Some((
                        c.key.to_string(),
                        j!({"fixed": f.intercept, "per": per, "rel_rmse": f.rel_rmse,
                            "measure": c.measure}),
                    ))
                })
                .collect();
            let check = m.check.as_ref().map(|c| {
                c.rows
                    .iter()
                    .map(|(ci, label, p, v)| {
                        j!({"run": label, "cost": COSTS[*ci].key, "predicted": p, "measured": v,
                            "error": if *v != 0.0 { Some((p - v) / v) } else { None },
                            "within": super::within(COSTS[*ci].key, *p, *v)})
                    })
                    .collect::<Vec<_>>()
            });
            let projection: Vec<Value> = Model::scales()
                .iter()
                .map(|u| {
                    let p = m.project(*u, model.interval_s, model.events_per_user_per_s);
                    let mut o: serde_json::Map<String, Value> = COSTS
                        .iter()
                        .zip(&p.costs)
                        .map(|(c, v)| (c.key.to_string(), j!(v)))
                        .collect();
                    o.insert("users".into(), j!(u));
                    o.insert("system_cores".into(), j!(p.system_cores()));
                    o.insert("extrapolated".into(), j!(*u > model.max_users));
                    if let Some(prices) = &model.prices {
                        o.insert("monthly_cost".into(), j!(p.monthly(prices)));
                    }
                    Value::Object(o)
                })
                .collect();
            j!({"mode": m.mode, "runs": m.points.len(), "fits": fits, "check": check,
                "projection": projection})
        })
        .collect();
    j!({
        "scenario": model.scenario,
        "machine": model.machine,
        "sources": model.sources.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "interval_s": model.interval_s,
        "events_per_user_per_min": model.events_per_user_per_s * 60.0,
        "max_users_measured": model.max_users,
        "max_db_cores": model.max_db_cores,
        "modes": modes,
        "assumptions": assumptions(model),
    })
}
