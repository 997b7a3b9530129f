//! The side-by-side table printed at the end of a run, read from the summary.

use crate::summary::{ModeSummary, Summary};

/// One row: label, the figure of `modes.<mode>` it shows, how to show it, and whether
/// poll/push is a ratio worth showing (not for counts that merely differ by the draw of the
/// workload).
type Row = (&'static str, fn(&ModeSummary) -> Option<f64>, Fmt, bool);

const ROWS: &[Row] = &[
    ("users", |m| Some(m.users as f64), Fmt::Int, false),
    ("window (s)", |m| Some(m.duration_s), Fmt::F1, false),
    (
        "HTTP requests/min",
        |m| m.http.requests_per_min,
        Fmt::Int,
        false,
    ),
    (
        "  predicted N/T",
        |m| m.predicted.as_ref().and_then(|p| p.requests_per_min),
        Fmt::Int,
        false,
    ),
    (
        "poll response p50 (ms)",
        |m| m.http.response_ms.p50,
        Fmt::F1,
        false,
    ),
    (
        "poll response p99 (ms)",
        |m| m.http.response_ms.p99,
        Fmt::F1,
        false,
    ),
    ("empty polls", |m| m.http.empty_ratio, Fmt::Pct, false),
    (
        "  predicted e^(-λT)",
        |m| m.predicted.as_ref().and_then(|p| p.empty_ratio),
        Fmt::Pct,
        false,
    ),
    (
        "DB queries/min (Postgres)",
        |m| m.db.queries_per_min,
        Fmt::Int,
        true,
    ),
    (
        "  predicted",
        |m| m.predicted.as_ref().and_then(|p| p.db_queries_per_min),
        Fmt::Int,
        false,
    ),
    (
        "DB queries/min (servers)",
        |m| m.db.backend_queries_per_min,
        Fmt::Int,
        true,
    ),
    (
        "DB tuples read/s",
        |m| m.db.tuples_read_per_s,
        Fmt::Int,
        true,
    ),
    ("DB buffer reads/s", |m| m.db.blocks_per_s, Fmt::Int, true),
    (
        "Redis commands/s",
        |m| m.redis.commands_per_s,
        Fmt::Int,
        true,
    ),
    (
        "Redis bytes out/s",
        |m| m.redis.net_out_bytes_per_s,
        Fmt::Int,
        true,
    ),
    ("latency mean (ms)", |m| m.latency_ms.mean, Fmt::F1, true),
    (
        "  predicted T/2",
        |m| m.predicted.as_ref().and_then(|p| p.latency_mean_ms),
        Fmt::F1,
        false,
    ),
    ("latency p50 (ms)", |m| m.latency_ms.p50, Fmt::F1, true),
    ("latency p99 (ms)", |m| m.latency_ms.p99, Fmt::F1, true),
    ("latency max (ms)", |m| m.latency_ms.max, Fmt::F1, true),
    (
        "  predicted max T",
        |m| m.predicted.as_ref().and_then(|p| p.latency_max_ms),
        Fmt::F1,
        false,
    ),
    (
        "events sent",
        |m| Some(m.events.sent as f64),
        Fmt::Int,
        false,
    ),
    (
        "events delivered",
        |m| Some(m.events.delivered as f64),
        Fmt::Int,
        false,
    ),
    (
        "events refused by ingest",
        |m| Some(m.events.send_failed as f64),
        Fmt::Int,
        false,
    ),
    (
        "events lost",
        |m| Some(m.events.lost as f64),
        Fmt::Int,
        false,
    ),
    (
        "events duplicated",
        |m| Some(m.events.duplicated as f64),
        Fmt::Int,
        false,
    ),
    ("  share lost", |m| m.events.lost_ratio, Fmt::Pct, false),
    (
        "reconnects",
        |m| m.reconnects.as_ref().map(|r| r.count as f64),
        Fmt::Int,
        false,
    ),
    (
        "bandwidth (bytes/s)",
        |m| m.bandwidth.bytes_per_s,
        Fmt::Int,
        true,
    ),
    (
        "bytes/user/min",
        |m| m.bandwidth.bytes_per_user_per_min,
        Fmt::Int,
        true,
    ),
    (
        "bytes/delivered notification",
        |m| m.bandwidth.bytes_per_delivered,
        Fmt::Int,
        true,
    ),
    (
        "header bytes/s (not bodies)",
        |m| m.bandwidth.header_bytes_per_s,
        Fmt::Int,
        false,
    ),
    (
        "  predicted bytes/poll × N/T",
        |m| m.predicted.as_ref().and_then(|p| p.header_bytes_per_s),
        Fmt::Int,
        false,
    ),
    ("CPU servers (cores)", |m| m.cpu.server_cores, Fmt::F3, true),
    ("CPU Postgres (cores)", |m| m.cpu.db_cores, Fmt::F3, true),
    (
        "  share of its budget",
        |m| m.cpu.db_budget_share,
        Fmt::Pct,
        false,
    ),
    ("CPU Redis (cores)", |m| m.cpu.redis_cores, Fmt::F3, true),
    // The system under test (servers, ingest, Postgres, Redis), then the load generator,
    // then both: the one definition every report uses.
    ("CPU system (cores)", |m| m.cpu.system_cores, Fmt::F3, true),
    ("CPU swarm (cores)", |m| m.cpu.swarm_cores, Fmt::F3, true),
    ("CPU all (cores)", |m| m.cpu.total_cores, Fmt::F3, true),
    ("server RSS (MB)", |m| m.memory.server_rss_mb, Fmt::F1, true),
    ("Postgres PSS (MB)", |m| m.memory.db_pss_mb, Fmt::F1, true),
    ("Redis RSS (MB)", |m| m.memory.redis_rss_mb, Fmt::F1, true),
    ("swarm RSS (MB)", |m| m.memory.swarm_rss_mb, Fmt::F1, true),
];

#[derive(Clone, Copy)]
pub enum Fmt {
    Int,
    F1,
    F3,
    Pct,
}

/// A figure as the tables show it; `-` where it is unknown.
pub fn show_num(x: Option<f64>, f: Fmt) -> String {
    let Some(x) = x else {
        return "-".into();
    };
    match f {
        Fmt::Int => group(x.round() as i64),
        Fmt::F1 => format!("{x:.1}"),
        Fmt::F3 => format!("{x:.3}"),
        Fmt::Pct => format!("{:.2} %", x * 100.0),
    }
}

/// 120000 -> "120,000".
pub fn group(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Rows as (label, poll, push, poll/push ratio) strings.
pub fn rows(summary: &Summary) -> Vec<[String; 4]> {
    let (poll, push) = (summary.modes.poll.as_ref(), summary.modes.push.as_ref());
    // Long polling has its own model: the labels name its formulas, not the periodic ones.
    let long = summary.plan.poll_long_wait_s.is_some();
    let relabel = |label: &str| -> String {
        match (long, label) {
            (true, "  predicted N/T") => "  predicted λN/(1-e^(-λW))".into(),
            (true, "  predicted e^(-λT)") => "  predicted e^(-λW)".into(),
            (true, "  predicted bytes/poll × N/T") => "  predicted bytes/poll × rate".into(),
            _ => label.to_string(),
        }
    };
    ROWS.iter()
        .filter_map(|(label, figure, f, show_ratio)| {
            let (a, b) = (poll.and_then(figure), push.and_then(figure));
            if a.is_none() && b.is_none() {
                return None;
            }
            let ratio = match (a, b) {
                (Some(a), Some(b)) if *show_ratio && b > 0.0 => match a / b {
                    // Below 0.1, one decimal would read 0.0x: say it the other way round.
                    r if r > 0.0 && r < 0.1 => format!("1/{:.0}", b / a),
                    r => format!("{r:.1}x"),
                },
                _ => String::new(),
            };
            Some([relabel(label), show_num(a, *f), show_num(b, *f), ratio])
        })
        .collect()
}

/// Lines of a text table, each column padded to its widest cell: `left[i]` aligns column i
/// to the left, the others to the right. Trailing spaces are trimmed.
pub fn align(rows: &[Vec<String>], left: &[bool]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let pad = " ".repeat(width[i] - c.chars().count());
                    if left.get(i).copied().unwrap_or(false) {
                        format!("{c}{pad}")
                    } else {
                        format!("{pad}{c}")
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

/// The plain-text table for the terminal.
pub fn render(summary: &Summary) -> String {
    let head = ["", "poll", "push", "poll/push"].map(String::from).to_vec();
    let all: Vec<Vec<String>> = std::iter::once(head)
        .chain(rows(summary).into_iter().map(Vec::from))
        .collect();
    let mut lines = align(&all, &[true]);
    let rule = "-".repeat(lines.iter().map(|l| l.chars().count()).max().unwrap_or(0));
    lines.insert(1, rule);
    lines.join("\n")
}

/// The five headline figures, for a projector: what the database does, how many polls
/// were for nothing, how late a notification is, the bytes and the CPU.
pub const BRIEF: [&str; 5] = [
    "DB queries/min (Postgres)",
    "empty polls",
    "latency p50 (ms)",
    "bandwidth (bytes/s)",
    "CPU system (cores)",
];

/// The table cut to [`BRIEF`]'s rows (`run --brief`), with the run's users and interval
/// above it so that the ratio is never read without its workload.
pub fn brief(summary: &Summary) -> String {
    let head = ["", "poll", "push", "poll/push"].map(String::from).to_vec();
    let all: Vec<Vec<String>> = std::iter::once(head)
        .chain(
            rows(summary)
                .into_iter()
                .filter(|r| BRIEF.contains(&r[0].as_str()))
                .map(Vec::from),
        )
        .collect();
    let plan = &summary.plan;
    let mut lines = vec![format!(
        "{} users, poll every {} s, {} notifications/s",
        group(plan.users.unwrap_or(0) as i64),
        plan.poll_interval_s.map_or("?".into(), |x| x.to_string()),
        plan.events_per_s.map_or("?".into(), |x| x.to_string())
    )];
    lines.extend(align(&all, &[true]));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(120000), "120,000");
        assert_eq!(group(-1234567), "-1,234,567");
    }

    #[test]
    fn missing_figures_show_as_dash_and_ratios_need_both() {
        let s: Summary = serde_json::from_value(serde_json::json!({"modes": {
            "poll": {"users": 10, "http": {"requests_per_min": 120.0}, "db": {"queries_per_min": 250.0}, "latency_ms": {"p99": 4900.0}},
            "push": {"users": 10, "http": {"requests_per_min": 0.0}, "db": {"queries_per_min": 10.0}, "latency_ms": {"p99": null}}}}))
        .unwrap();
        let r = rows(&s);
        let find = |label: &str| r.iter().find(|r| r[0] == label).unwrap().clone();
        assert_eq!(
            find("HTTP requests/min"),
            ["HTTP requests/min", "120", "0", ""]
        );
        assert_eq!(find("DB queries/min (Postgres)")[3], "25.0x");
        assert_eq!(
            find("latency p99 (ms)"),
            ["latency p99 (ms)", "4900.0", "-", ""]
        );
        assert!(
            !r.iter().any(|r| r[0] == "bytes/user/min"),
            "rows with no figure at all are left out"
        );
        assert!(render(&s).contains("poll/push"));
    }

    #[test]
    fn brief_keeps_the_five_headline_figures_and_the_workload() {
        let s = Summary::parse(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/results/reference/summary.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let b = brief(&s);
        let lines: Vec<&str> = b.lines().collect();
        assert_eq!(lines.len(), 1 + 1 + BRIEF.len(), "{b}");
        assert!(lines[0].starts_with("10,000 users, poll every 5"), "{b}");
        for label in BRIEF {
            assert!(b.contains(label), "{label}: {b}");
        }
        assert!(b.contains("200.1x"), "{b}");
    }
}
