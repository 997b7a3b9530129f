//! `report.md`: what was run, what it shows, the table, the plot and the method, all
//! generated from the summary.

use std::fmt::Write;

use super::checks::CheckResult;
use super::table::{group, rows};
use crate::summary::mode::{Fault, FaultDetail, Instance, ModeSummary};
use crate::summary::Summary;

fn story(s: &Summary) -> String {
    let mut out = String::new();
    let users = s.plan.users.unwrap_or(0);
    let t = s.plan.poll_interval_s.unwrap_or(0.0);
    let long = s.plan.poll_long_wait_s;
    if let Some(poll) = &s.modes.poll {
        if let (Some(req), Some(q)) = (poll.http.requests_per_min, poll.db.queries_per_min) {
            let how = match long {
                Some(w) => format!("long polling (each request held up to {w} s)"),
                None => format!("polling every {t} s"),
            };
            let _ = write!(
                out,
                "{} users {how} sent **{} HTTP requests a minute**, and Postgres counted **{} queries a minute** for them",
                group(users as i64),
                group(req as i64),
                group(q as i64)
            );
            if let Some(e) = poll.http.empty_ratio {
                let _ = write!(out, "; {:.1} % of the polls came back empty", e * 100.0);
            }
            out.push_str(". ");
        }
        if let (Some(mean), Some(max)) = (poll.latency_ms.mean, poll.latency_ms.max) {
            if long.is_some() {
                let _ = write!(
                    out,
                    "A notification waited {mean:.1} ms on average and up to {max:.0} ms. "
                );
            } else {
                let _ = write!(
                    out,
                    "A notification waited {:.0} ms on average (the model says T/2 = {:.0} ms) and up to {:.0} ms. ",
                    mean,
                    t * 500.0,
                    max
                );
            }
        }
    }
    if let Some(push) = &s.modes.push {
        if let (Some(p50), Some(p99)) = (push.latency_ms.p50, push.latency_ms.p99) {
            let transport = match s.plan.push_transport.as_deref() {
                Some("sse") => "server-sent events",
                Some("socketio") => "Socket.IO",
                _ => "WebSocket",
            };
            let _ = write!(
                out,
                "With push over {transport}, the same notifications arrived in {p50:.1} ms (median), {p99:.1} ms at p99"
            );
            if let Some(q) = push.db.queries_per_min {
                let _ = write!(
                    out,
                    ", while Postgres saw {} queries a minute: the writes",
                    group(q as i64)
                );
            }
            out.push_str(". ");
        }
    }
    if let (Some(db), Some(bw)) = (s.ratios.db_queries, s.ratios.bandwidth) {
        let _ = write!(
            out,
            "Polling cost the database {db:.0}x the queries and the network {bw:.0}x the bytes of push"
        );
        match s.ratios.cpu_system {
            Some(cpu) => {
                let _ = write!(
                    out,
                    ", and the system under test (servers, Postgres, Redis) {cpu:.1}x the CPU."
                );
            }
            None => out.push('.'),
        }
    }
    out
}

/// A figure of the polling model beside its measurement: label, predicted, measured, and
/// the likeliest reason should they differ by more than 10 %.
type ModelRow = (&'static str, Option<f64>, Option<f64>, Option<String>);

/// Polling's model beside the measurement, with the deviation; over 10 % is flagged with
/// the likeliest reason the figures give.
fn model_table(s: &Summary) -> String {
    let Some(poll) = &s.modes.poll else {
        return String::new();
    };
    let Some(p) = &poll.predicted else {
        return String::new();
    };
    let response = poll.http.response_ms.mean;
    let late = poll.http.schedule_lateness_ms.p99;
    let (requests, empty, header) = if s.plan.poll_long_wait_s.is_some() {
        (
            "requests/min, λN/(1-e^(-λW))",
            "empty polls (held to W), e^(-λW)",
            "header bytes/s, bytes per poll × rate",
        )
    } else {
        (
            "requests/min, N/T",
            "empty polls, e^(-λT)",
            "header bytes/s, bytes per poll × N/T",
        )
    };
    let behind = |what: &str| {
        late.filter(|l| *l > 100.0)
            .map(|l| format!("{what} (p99 {l:.0} ms late)"))
    };
    let rows: [ModelRow; 5] = [
        (requests, p.requests_per_min, poll.http.requests_per_min, behind("the swarm ran behind its schedule")),
        ("mean latency (ms), T/2", p.latency_mean_ms, poll.latency_ms.mean, response.map(|r| format!("the model leaves out each poll's own round trip (measured mean {r:.1} ms) and the ingest path"))),
        ("max latency (ms), T", p.latency_max_ms, poll.latency_ms.max, response.map(|r| format!("a poll's round trip adds to T (mean {r:.1} ms)"))),
        (empty, p.empty_ratio, poll.http.empty_ratio, Some("few events in the window make the share noisy".to_string())),
        (header, p.header_bytes_per_s, poll.bandwidth.header_bytes_per_s, behind("fewer polls went out than scheduled")),
    ];
    let mut out = String::from("### Model vs measurement (polling)\n\n| figure | predicted | measured | deviation | |\n|---|---:|---:|---:|---|\n");
    for (label, pv, mv, why) in rows {
        let (Some(pv), Some(mv)) = (pv, mv) else {
            continue;
        };
        let dev = if pv != 0.0 {
            (mv - pv) / pv * 100.0
        } else {
            0.0
        };
        let note = if dev.abs() > 10.0 {
            format!(
                "**over 10 %**{}",
                why.map(|w| format!(": {w}")).unwrap_or_default()
            )
        } else {
            String::new()
        };
        let fmt = |x: f64| {
            if x.abs() >= 1000.0 {
                group(x.round() as i64)
            } else if x < 1.0 {
                format!("{:.2} %", x * 100.0)
            } else {
                format!("{x:.1}")
            }
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {dev:+.1} % | {note} |",
            fmt(pv),
            fmt(mv)
        );
    }
    out.push('\n');
    out
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".to_string(), |x| format!("{:.1} %", x * 100.0))
}

/// A figure with `decimals`, or `-` when unknown.
fn fixed(x: Option<f64>, decimals: usize) -> String {
    x.map_or("-".into(), |x| format!("{x:.decimals$}"))
}

/// A count, grouped; `-` when unknown.
fn count(x: Option<impl Into<i64>>) -> String {
    x.map_or("-".into(), |x| group(x.into()))
}

/// A per-second peak in the 10 s after a fault, grouped; "-" when unread.
fn peak(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| group(x.round() as i64))
}

fn down_s(f: &Fault) -> Option<f64> {
    match f.detail {
        FaultDetail::Down { down_s } => Some(down_s),
        FaultDetail::Gateway { down_s, .. } => down_s,
        _ => None,
    }
}

/// What each fault did to the pollers: errors, and how long after the service was back
/// polls still failed.
fn poll_faults(poll: &ModeSummary) -> String {
    let faults = &poll.faults;
    if faults.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "### Faults (polling)\n\n| at (s) | action | failed polls | still failing after the service was back (s) | peak DB queries/s | lost | duplicated |\n|---:|---|---:|---:|---:|---:|---:|\n",
    );
    out.insert_str(0, &not_fired(faults));
    for f in faults {
        let _ = writeln!(
            out,
            "| {} | {}{} | {} | {} | {} | {} | {} |",
            f.at_s,
            f.action,
            down_s(f).map_or(String::new(), |d| format!(" ({d} s down)")),
            f.poll_errors,
            fixed(f.poll_recovered_s, 2),
            peak(f.db_queries_peak_per_s),
            f.lost,
            f.duplicated,
        );
    }
    let _ = writeln!(
        out,
        "\nA poller keeps the last id it saw, so a poll that fails loses nothing: the next one that succeeds fetches what it missed. Events ingest could not store were refused, and the workload counts them apart ({} refused), not as lost.\n",
        poll.events.send_failed
    );
    out
}

/// The push gateway's own story: its instances and fan-out, what pure WebSockets lose,
/// reconnects, faults and slow clients.
fn push_sections(s: &Summary, push: &ModeSummary) -> String {
    let mut out = String::new();
    let Some(instances) = push.instances.as_deref().filter(|i| !i.is_empty()) else {
        return out;
    };
    out.push_str(&instances_section(s, push, instances));
    if !push.faults.is_empty() {
        out.push_str(&faults_section(s, push));
    }
    if let Some(r) = push.reconnects.as_ref().filter(|r| r.count > 0) {
        let _ = writeln!(
            out,
            "Clients reconnected {} times (reconnect `{}`); time without a connection: p50 {} ms, max {} ms.\n",
            group(r.count as i64),
            s.plan.push_reconnect.as_deref().unwrap_or("?"),
            fixed(r.downtime_ms.p50, 0),
            fixed(r.downtime_ms.max, 0),
        );
    }
    if let Some(c) = push.slow_clients.as_ref().filter(|c| c.clients > 0) {
        let _ = writeln!(
            out,
            "### Slow clients

{} clients stopped reading while {} events/s were aimed at them (send queue {} frames, policy `{}`). The gateway cut off {} connection(s) and dropped {} frames; these events are counted apart ({} sent, {} delivered), and the figures above are for everyone else.\n",
            c.clients,
            fixed(s.plan.push_slow_events_per_s, 0),
            count(s.plan.push_send_queue.map(|x| x as i64)),
            s.plan.push_slow_policy.as_deref().unwrap_or("?"),
            count(c.disconnected.map(|x| x as i64)),
            count(c.dropped_frames.map(|x| x as i64)),
            c.events_sent,
            c.events_delivered,
        );
    }
    out
}

/// The gateway instances: what each received, routed, delivered and cost.
fn instances_section(s: &Summary, push: &ModeSummary, instances: &[Instance]) -> String {
    let mut out = String::new();
    let fanout = s.plan.push_fanout.as_deref().unwrap_or("broadcast");
    let _ = writeln!(
        out,
        "### Gateway instances (fan-out `{fanout}`)
"
    );
    let _ = writeln!(
        out,
        "{}
",
        match fanout {
            "broadcast" => "Every instance subscribes to one shared Redis channel, so each receives every notification and discards those for users it does not hold: with n instances, each discards about (n-1)/n of what it receives, and the work grows with instances × events.",
            "per-user" => "Each instance subscribes to `user:<id>` for the users it holds, so it receives only their notifications and discards almost nothing; the price is one SUBSCRIBE per connecting user and one UNSUBSCRIBE per leaving one.",
            _ => "No Redis: an instance delivers a notification only if it came in through that same instance. Clients are spread round-robin and each event goes in through a random instance, so with n instances about 1 in n events finds its user; the rest are lost.",
        }
    );
    let _ = writeln!(out, "| instance | connections | received from Redis /s | routed | delivered | discarded | CPU (cores) | RSS (MB) |
|---:|---:|---:|---:|---:|---:|---:|---:|");
    let n = |x: Option<u64>| group(x.unwrap_or(0) as i64);
    for i in instances {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            i.index,
            group(i.connections.unwrap_or(0)),
            fixed(i.received_per_s, 1),
            n(i.routed),
            n(i.delivered),
            pct(i.discarded_ratio),
            fixed(i.cpu_cores, 3),
            fixed(i.rss_mb, 1),
        );
    }
    out.push('\n');
    if fanout == "none" {
        let _ = writeln!(
            out,
            "**Lost with pure WebSockets: {} of the events** (predicted 1 - 1/{} = {}).\n",
            pct(push.events.lost_ratio),
            instances.len(),
            pct(push.predicted.as_ref().and_then(|p| p.lost_ratio)),
        );
    }
    out
}

/// The faults of the push window and what each did.
fn faults_section(s: &Summary, push: &ModeSummary) -> String {
    let faults = &push.faults;
    let mut out = String::new();
    out.push_str(&not_fired(faults));
    let catch_up = s.plan.push_catch_up == Some(true);
    let _ = writeln!(
        out,
        "### Faults
"
    );
    let _ = writeln!(
        out,
        "Catch-up is **{}**: {}\n",
        if catch_up { "on" } else { "off" },
        if catch_up {
            "a reconnecting client sends the last id it saw, and the gateway subscribes first, then reads what it missed from Postgres, then streams, skipping anything it already sent."
        } else {
            "Redis pub/sub is at-most-once, so whatever was published while a client was away is lost to it."
        }
    );
    let _ = writeln!(
        out,
        "| at (s) | action | clients dropped | back | all back after (s) | peak reconnects/s | peak DB queries/s | lost | duplicated |
|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for f in faults {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f.at_s,
            fault_action(f),
            f.clients_dropped,
            f.clients_back,
            f.reconnect_s.map_or("never".into(), |x| format!("{x:.2}")),
            peak(Some(f.reconnects_peak_per_s as f64)),
            peak(f.db_queries_peak_per_s),
            f.lost,
            f.duplicated,
        );
    }
    if faults.iter().any(|f| f.action == "kill-gateway") {
        let _ = writeln!(
            out,
            "\nA killed gateway instance's clients are those it held. They found it unreachable and went to the other instances, as a load balancer would send them, with the backoff of `push.reconnect`; events sent through it went to another instance. Its counters stop at the kill (or add up over both lives when it was started again), and its CPU is left out of the servers' total."
        );
    }
    if faults.iter().any(|f| f.action.contains("redis")) {
        let _ = writeln!(
            out,
            "\nA Redis fault hits whoever it hits: its clients dropped are those that reconnected after it, and its lost and duplicated count every event of the window. Ingest kept storing in Postgres while Redis was away; {} publishes failed.",
            count(push.server.publish_errors.map(|x| x as i64))
        );
    }
    out.push('\n');
    out
}

/// A warning for each fault that did not happen as the scenario says.
fn not_fired(faults: &[Fault]) -> String {
    let mut out = String::new();
    for f in faults.iter().filter(|f| !f.fired) {
        let _ = writeln!(
            out,
            "**The fault {} at {} s did not happen as planned: {}.** Its figures do not show what the scenario meant to test.\n",
            f.action,
            f.at_s,
            f.not_fired_because.as_deref().unwrap_or("unknown")
        );
    }
    out
}

/// A fault as the table names it: the action and how long it lasted.
fn fault_action(f: &Fault) -> String {
    match &f.detail {
        FaultDetail::Gateway { instance, down_s } => format!(
            "kill-gateway (push-{}, {})",
            instance.0.map_or("?".into(), |i| i.to_string()),
            down_s.map_or("not restarted".into(), |d| format!("restarted after {d} s"))
        ),
        FaultDetail::Down { down_s } => format!("{} ({down_s} s down)", f.action),
        FaultDetail::Offline { offline_s } => format!("{} ({offline_s} s offline)", f.action),
        FaultDetail::None {} => f.action.clone(),
    }
}

/// The `[checks]` results as a table under `heading`.
pub fn checks_table(checks: &[CheckResult], heading: &str, first_column: &str) -> String {
    let mut out =
        format!("{heading}\n\n| {first_column} | wanted | measured | |\n|---|---|---:|---|\n");
    for c in checks {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            c.metric,
            c.condition,
            c.value
                .map_or("not measured".to_string(), |v| v.to_string()),
            if c.passed { "pass" } else { "**FAIL**" }
        );
    }
    out
}

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# pollpush: {}\n",
        if s.scenario.is_empty() {
            "run"
        } else {
            &s.scenario
        }
    );
    out.push_str(&what_ran(s));
    let _ = writeln!(out, "{}\n", story(s));
    let m = &s.machine;
    let _ = writeln!(
        out,
        "Run {} on {} cores, {} MB, {} (kernel {}); PostgreSQL {}, Redis {}{}.\n",
        s.started_at,
        m.cores,
        m.memory_mb.map_or("?".into(), |x| x.to_string()),
        m.os,
        m.kernel,
        m.postgres_version.as_deref().unwrap_or("unknown"),
        m.redis_version.as_deref().unwrap_or("unknown"),
        if m.ephemeral_services {
            ", both ephemeral instances started for this run on the same machine"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "## Figures\n");
    if s.plan.poll_long_wait_s.is_some() {
        let _ = writeln!(out, "Lines marked _predicted_ come from the long-polling model (each request ends at its user's next event or after W: rate λN/(1-e^(-λW)), empty share e^(-λW)); every other line was measured in this run.\n");
    } else {
        let _ = writeln!(out, "Lines marked _predicted_ come from the polling model (rate N/T, mean wait T/2, empty share e^(-λT)); every other line was measured in this run.\n");
    }
    let _ = writeln!(out, "| | poll | push | poll/push |\n|---|---:|---:|---:|");
    for r in rows(s) {
        let label = match r[0].strip_prefix("  ") {
            Some(l) => format!("&nbsp;&nbsp;_{l}_"),
            None => r[0].clone(),
        };
        let _ = writeln!(out, "| {label} | {} | {} | {} |", r[1], r[2], r[3]);
    }
    if let Some(checks) = s.checks.as_deref().filter(|c| !c.is_empty()) {
        out.push_str(&checks_table(checks, "\n### Checks", "figure"));
    }
    if let Some(n) = s.repeats.as_ref().map(Vec::len) {
        let _ = writeln!(out, "\nThese figures combine {n} repeats: latency from every repeat's histogram added up (as the CDF and `.hgrm` show it); lost, duplicated, misrouted, errors and the lost share from the worst repeat; every other figure is the median of the repeats. `summary.json` keeps each repeat's own figures.");
    }
    let _ = writeln!(out);
    out.push_str(&model_table(s));
    if let Some(poll) = &s.modes.poll {
        out.push_str(&poll_faults(poll));
    }
    if let Some(push) = &s.modes.push {
        out.push_str(&push_sections(s, push));
    }
    let _ = writeln!(out, "![Latency CDF](latency-cdf.png)\n");
    let _ = writeln!(out, "![Database queries per second](db-queries.png)\n");
    let _ = writeln!(
        out,
        "![Bandwidth per user and per notification](bandwidth.png)\n"
    );
    let _ = writeln!(out, "![CPU by component](cpu.png)\n");
    out.push_str(&poll_statements(s));
    out.push_str(&method(s));
    out
}

/// What ran, from the plan as it ran (overrides included), then the scenario file's own
/// description, labelled as such: a `--users 500` run of a 10,000-user scenario says 500.
pub(crate) fn what_ran(s: &Summary) -> String {
    let p = &s.plan;
    let mut parts = Vec::new();
    if let Some(n) = p.users {
        parts.push(format!("{} users", group(n as i64)));
    }
    if let Some(w) = p.poll_long_wait_s {
        parts.push(format!("long polls held up to {w} s"));
    } else if let Some(t) = p.poll_interval_s {
        parts.push(format!("polling every {t} s"));
    }
    let mut how = Vec::new();
    if p.poll_backend.as_deref() == Some("redis-cache") {
        how.push("through the Redis latest-id cache");
    }
    if p.poll_conditional == Some(true) {
        how.push("conditional (ETag, 304)");
    }
    if p.poll_http.as_deref() == Some("h2") {
        how.push("over HTTP/2 (h2c)");
    }
    if !how.is_empty() {
        parts.push(format!("polls {}", how.join(", ")));
    }
    if let (Some(tr), Some(n), Some(f)) = (&p.push_transport, p.push_instances, &p.push_fanout) {
        parts.push(format!(
            "push over {tr} to {n} gateway instance{} ({f} fan-out)",
            if n == 1 { "" } else { "s" }
        ));
    }
    if let Some(e) = p.events_per_s {
        parts.push(format!("{e} notifications/s"));
    }
    if let Some(d) = p.duration_s {
        parts.push(format!("{d} s windows"));
    }
    let mut out = String::new();
    if !parts.is_empty() {
        let _ = writeln!(out, "What ran: {}.\n", parts.join(", "));
    }
    if !s.description.is_empty() {
        let _ = writeln!(
            out,
            "_The scenario file describes itself as: {}_\n",
            s.description
        );
    }
    out
}

/// The statements Postgres ran for polling, most called first.
fn poll_statements(s: &Summary) -> String {
    let mut out = String::new();
    let statements = s.modes.poll.as_ref().map(|p| &p.db.statements);
    if let Some(st) = statements.filter(|a| !a.is_empty()) {
        let _ = writeln!(
            out,
            "### What Postgres ran for polling (calls in the window)\n"
        );
        let _ = writeln!(out, "| calls | statement |\n|---:|---|");
        for x in st.iter().take(8) {
            let q = x.query.replace('|', "\\|").replace('\n', " ");
            let _ = writeln!(out, "| {} | `{q}` |", group(x.calls as i64));
        }
        out.push('\n');
    }
    out
}

/// How each figure was measured, in this run's words.
fn method(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Method\n");
    let _ = writeln!(
        out,
        "- **Window**: each mode ramps up first (pollers get uniform random phases over one interval; WebSocket clients connect over the warm-up), then a window of {} s is measured. For polling, events start one poll interval before the window, so every poll in it sees a steady stream; for push, events start with the window, once every socket is open. After the window, a drain period (at least one poll interval) lets late deliveries arrive.",
        s.plan.duration_s.map_or("?".into(), |d| d.to_string())
    );
    let _ = writeln!(
        out,
        "- **Latency**: {}. Each event counts once, at its first delivery to its own user.",
        s.method.latency
    );
    let _ = writeln!(
        out,
        "- **DB queries**: counted by PostgreSQL itself ({}), as the difference between the start and end of the window, leaving out pollpush's own monitoring statements; the servers' own count is shown beside it.",
        s.method.db_queries
    );
    let _ = writeln!(
        out,
        "- **Bandwidth**: {}. Request headers: {}. _Header bytes_ are everything on a poll's connection that is not a response body (request line and headers, status line and headers); the model multiplies the header bytes of one probe poll, measured before the load, by N/T.",
        s.method.bandwidth,
        if s.method.headers.is_empty() {
            "not recorded"
        } else {
            &s.method.headers
        }
    );
    let _ = writeln!(out, "- **CPU**: user + system seconds from `/proc` over the window, divided by its length: the server processes (poll API or push gateway, plus ingest), every Postgres process, Redis, and the swarm (which also runs the workload). _CPU system_ is the system under test (the servers, ingest, Postgres and Redis); the swarm is the load generator, shown apart; _CPU all_ adds them. `-` means it could not be read (e.g. a remote database).");
    let _ = writeln!(out, "- **Completeness**: every event has a unique id and a target user; after the drain, delivered, lost (never arrived) and duplicated (arrived more than once) are counted per mode. Deliveries to any other user are counted as misrouted.");
    let _ = writeln!(out, "\nRaw data: `summary.json`, `timeseries.csv` (one row per second per mode, sampled through the window), `latency-<mode>.hgrm` (HdrHistogram percentile distributions, ms), `scenario.toml` (the scenario as run).");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deviations_over_ten_percent_are_flagged_with_a_reason() {
        let s: Summary = serde_json::from_value(json!({"modes": {"poll": {
            "predicted": {"requests_per_min": 120000.0, "latency_mean_ms": 2500.0, "latency_max_ms": 5000.0, "empty_ratio": 0.99},
            "http": {"requests_per_min": 100000.0, "empty_ratio": 0.991, "response_ms": {"mean": 3.0}, "schedule_lateness_ms": {"p99": 800.0}},
            "latency_ms": {"mean": 2510.0, "max": 5004.0}
        }}}))
        .unwrap();
        let t = model_table(&s);
        let line = |label: &str| t.lines().find(|l| l.contains(label)).unwrap().to_string();
        assert!(
            line("requests/min").contains("-16.7 %")
                && line("requests/min").contains("**over 10 %**: the swarm ran behind"),
            "{t}"
        );
        assert!(
            line("mean latency").contains("+0.4 %") && !line("mean latency").contains("over"),
            "{t}"
        );
        assert!(line("empty polls").contains("99.00 %"), "{t}");
    }
}
