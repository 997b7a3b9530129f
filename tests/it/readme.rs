//! The README's figures against the committed results they were quoted from: a figure
//! changed in README.md, or a result re-run without the README following, fails here. The
//! headline table is rendered by the same code as `pollpush run` prints it; every other
//! quoted figure is formatted from its result's summary as the README writes it, and the
//! sentence must be found with it (line breaks read as spaces).

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md with every run of white space one space, so a wrapped sentence matches.
fn readme() -> String {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn result(rel: &str) -> Value {
    let path = root().join(rel);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The number at a JSON pointer of a result; panics naming it.
fn at(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} is not a number in the result"))
}

/// The entry of a JSON list whose `key` is `want` (numbers compared by value, so 10000
/// finds 10000.0); panics naming what is missing.
fn entry<'a>(list: &'a Value, key: &str, want: Value) -> &'a Value {
    let same = |v: &Value| match (v.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => *v == want,
    };
    list.as_array()
        .and_then(|l| l.iter().find(|e| same(&e[key])))
        .unwrap_or_else(|| panic!("no entry with {key} = {want} in the result"))
}

/// `x` with `decimals` decimals (a half rounded away from zero, as people round) and
/// thousands grouped by commas, as the README writes.
fn n(x: f64, decimals: usize) -> String {
    let scale = 10f64.powi(decimals as i32);
    let text = format!("{:.*}", decimals, (x.abs() * scale).round() / scale);
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if x < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    match frac {
        "" => format!("{sign}{grouped}"),
        f => format!("{sign}{grouped}.{f}"),
    }
}

/// Asserts that README.md says `quote` (white space as one space), naming the result.
fn says(readme: &str, quote: &str, from: &str) {
    let quote = quote.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        readme.contains(&quote),
        "README.md does not say {quote:?}, which is what {from} measured: change the README \
         to the result, or re-run the command beside it and commit its result"
    );
}

#[test]
fn numbers_are_written_as_the_readme_writes_them() {
    assert_eq!(n(241_295.4, 0), "241,295");
    assert_eq!(n(2556.14, 1), "2,556.1");
    assert_eq!(n(0.2494, 3), "0.249");
    assert_eq!(n(999.6, 0), "1,000");
    assert_eq!(n(12.0, 0), "12");
    assert_eq!(n(1524.5, 0), "1,525");
}

/// The README's first table keeps some of the rows `pollpush run` prints for the
/// reference run (the whole table is in results/reference/report.md): each row it keeps
/// is that run's row, character for character, in the table's order.
#[test]
fn the_headline_table_is_the_reference_runs_own() {
    let summary = pollpush::summary::Summary::from_value(result("results/reference/summary.json"))
        .expect("results/reference/summary.json reads as a summary");
    let table = pollpush::report::table::render(&summary);
    let rendered: Vec<&str> = table.lines().map(str::trim_end).collect();
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = text
        .split("```\n")
        .nth(1)
        .expect("README.md opens with the headline table in a code block");
    let mut from = 0;
    let mut rows = 0;
    for line in block.lines().map(str::trim_end) {
        let found = rendered[from..].iter().position(|r| *r == line);
        let Some(i) = found else {
            panic!(
                "README.md's headline row {line:?} is not results/reference's (or is out of \
                 order); that run renders as:\n{table}"
            );
        };
        from += i + 1;
        rows += 1;
    }
    assert!(rows > 10, "{rows} rows in README.md's headline table");
}

#[test]
fn the_fair_table_is_results_fair() {
    let readme = readme();
    let fair = result("results/fair/summary.json");
    let rows = [
        ("plain polling", "plain"),
        ("cached (Redis latest id)", "cached"),
        ("conditional (ETag, 304)", "conditional"),
        ("conditional + cached", "conditional-cached"),
        ("HTTP/2 (h2c)", "http2"),
        ("long polling (held 25 s)", "long-poll"),
        ("SSE push", "sse"),
        ("WebSocket push", "websocket"),
    ];
    for (label, name) in rows {
        let run = entry(&fair["sweep"]["runs"], "value", name.into());
        let m = run["modes"].as_object().unwrap().values().next().unwrap();
        let periodic = !matches!(name, "long-poll" | "sse" | "websocket");
        let queries = match periodic {
            true => format!(
                "{} ({})",
                n(at(m, "/db/queries_per_min"), 0),
                n(at(m, "/predicted/db_queries_per_min"), 0)
            ),
            false => n(at(m, "/db/queries_per_min"), 0),
        };
        let d = if periodic { 0 } else { 1 };
        let header = match m.pointer("/bandwidth/header_bytes_per_poll") {
            Some(Value::Number(h)) => n(h.as_f64().unwrap(), 0),
            _ => "-".to_string(),
        };
        // CPU of the system under test, as the fair report ranks by it: the servers,
        // Postgres and Redis (the load generator, the swarm, apart).
        let system =
            at(m, "/cpu/server_cores") + at(m, "/cpu/db_cores") + at(m, "/cpu/redis_cores");
        let row = format!(
            "| {label} | {queries} | {} / {} | {} | {header} | {} |",
            n(at(m, "/latency_ms/p50"), d),
            n(at(m, "/latency_ms/p99"), d),
            n(at(m, "/bandwidth/bytes_per_user_per_min"), 0),
            n(system, 3),
        );
        says(&readme, &row, "results/fair");
    }
}

#[test]
fn the_capacity_table_and_the_large_runs_are_their_results() {
    let readme = readme();
    let cap = result("results/capacity/summary.json");
    let poll = &cap["capacity"]["modes"]["poll"];
    let push = &cap["capacity"]["modes"]["push"];
    let step = |mode: &Value, users: f64| entry(&mode["steps"], "users", users.into()).clone();
    let held = at(poll, "/held_users");
    let broke = at(poll, "/broke_at_users");
    let (h, b) = (step(poll, held), step(poll, broke));
    says(
        &readme,
        &format!(
            "| poll (every 1 s) | {} users ({} polls/s, schedule lateness p99 {} ms) | {} | polls left late: lateness p99 {} ms",
            n(held, 0),
            n(at(&h, "/requests_per_min") / 60.0, 0),
            n(at(&h, "/lateness_p99_ms"), 1),
            n(broke, 0),
            n(at(&b, "/lateness_p99_ms"), 0),
        ),
        "results/capacity",
    );
    says(
        &readme,
        &format!(
            "with every core busy ({} of 2); Postgres {} |",
            n(at(&b, "/cpu_total_cores"), 2),
            n(at(&b, "/cpu_cores/Postgres"), 2),
        ),
        "results/capacity",
    );
    let top = at(push, "/held_users");
    let p = step(push, top);
    let system =
        at(&p, "/cpu_cores/servers") + at(&p, "/cpu_cores/Postgres") + at(&p, "/cpu_cores/Redis");
    says(
        &readme,
        &format!(
            "| push (WebSocket) | {} users, the search's maximum: p99 {} ms, {} of {} lost | none found | | servers + Postgres + Redis {} cores at {} |",
            n(top, 0),
            n(at(&p, "/latency_ms/p99"), 1),
            n(at(&p, "/lost"), 0),
            n(at(&p, "/latency_ms/count"), 0),
            n(system, 2),
            n(top, 0),
        ),
        "results/capacity",
    );

    let small = result("results/small-db/summary.json");
    let (sp, sq) = (&small["modes"]["poll"], &small["modes"]["push"]);
    says(
        &readme,
        &format!(
            "kept Postgres at **{} % of its budget** ({} cores; {} queries/min)",
            n(100.0 * at(sp, "/cpu/db_budget_share"), 1),
            n(at(sp, "/cpu/db_cores"), 3),
            n(at(sp, "/db/queries_per_min"), 0),
        ),
        "results/small-db",
    );
    says(
        &readme,
        &format!(
            "to {} / {} ms; push used **{} %** of it ({} queries/min)",
            n(at(sp, "/http/response_ms/p50"), 1),
            n(at(sp, "/http/response_ms/p99"), 0),
            n(100.0 * at(sq, "/cpu/db_budget_share"), 1),
            n(at(sq, "/db/queries_per_min"), 0),
        ),
        "results/small-db",
    );

    let big = result("results/push-100k/summary.json");
    let m = &big["modes"]["push"];
    says(
        &readme,
        &format!(
            "{} of {} notifications delivered once, p50 {} ms, p99 {} ms; gateways {} cores and {} MiB RSS together",
            n(at(m, "/events/delivered"), 0),
            n(at(m, "/events/sent"), 0),
            n(at(m, "/latency_ms/p50"), 1),
            n(at(m, "/latency_ms/p99"), 1),
            n(at(m, "/cpu/server_cores"), 2),
            n(at(m, "/memory/server_rss_mb"), 0),
        ),
        "results/push-100k",
    );
    says(
        &readme,
        &format!(
            "100,000 WebSocket clients held on these 2 cores with p99 {} ms",
            n(at(m, "/latency_ms/p99"), 1),
        ),
        "results/push-100k",
    );
    says(
        &readme,
        &format!(
            "swarm {} cores and {} MiB",
            n(at(m, "/cpu/swarm_cores"), 2),
            n(at(m, "/memory/swarm_rss_mb"), 0),
        ),
        "results/push-100k",
    );
    assert_eq!(at(m, "/events/lost"), 0.0, "the README says none was lost");
}

/// Every committed result the README links to exists, so a quoted figure can be traced.
#[test]
fn every_result_the_readme_links_to_is_committed() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut seen = 0;
    for part in text.split("](results/").skip(1) {
        let link = part.split(')').next().unwrap();
        let path = Path::new("results").join(link);
        assert!(
            root().join(&path).exists(),
            "{} is linked but absent",
            path.display()
        );
        seen += 1;
    }
    assert!(seen > 5, "{seen} links to results/");
}

/// The model's prices per unit of work and its projection, as the README quotes them from
/// `pollpush model results/model` (results/model/model/model.json).
#[test]
fn the_models_prices_and_projection_are_results_model() {
    let readme = readme();
    let model = result("results/model/model/model.json");
    let poll = entry(&model["modes"], "mode", "poll".into());
    let push = entry(&model["modes"], "mode", "push".into());
    // Core-seconds per unit, in µs; MB per connection, in KB.
    let us = |m: &Value, pointer: &str| n(at(m, pointer) * 1e6, 0);
    let from = "results/model";
    says(
        &readme,
        &format!(
            "a poll costs {} µs of Postgres CPU, {} µs of poll API CPU and {} bytes; an insert {} µs of Postgres CPU (poll side) to {} µs (push side,",
            us(poll, "/fits/db_cores/per/poll"),
            us(poll, "/fits/server_cores/per/poll"),
            n(at(poll, "/fits/bytes_per_s/per/poll"), 0),
            us(poll, "/fits/db_cores/per/insert"),
            us(push, "/fits/db_cores/per/insert"),
        ),
        from,
    );
    says(
        &readme,
        &format!(
            "a pushed notification {} µs of gateway CPU (its ingest POST, INSERT, PUBLISH and delivery) and {} bytes; a push connection {} µs of CPU a second, {} bytes a second of heartbeats and {} KB of memory; a keep-alive polling connection {} KB.",
            us(push, "/fits/server_cores/per/delivered_notification"),
            n(at(push, "/fits/bytes_per_s/per/delivered_notification"), 0),
            n(at(push, "/fits/server_cores/per/connection") * 1e6, 2),
            n(at(push, "/fits/bytes_per_s/per/connection"), 1),
            n(at(push, "/fits/server_rss_mb/per/connection") * 1024.0, 1),
            n(at(poll, "/fits/server_rss_mb/per/connection") * 1024.0, 1),
        ),
        from,
    );
    // Checked on the runs left out of the fit: the largest error over them, per cost.
    let worst_of = |m: &Value, cost: &str| -> f64 {
        m["check"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["cost"] == cost)
            .filter_map(|c| c["error"].as_f64())
            .fold(0.0f64, |w, e| w.max(e.abs()))
    };
    let worst = |m: &Value, cost: &str| n(100.0 * worst_of(m, cost), 1);
    says(
        &readme,
        &format!(
            "it predicted their Postgres CPU within {} % (poll) and {} % (push), their server CPU within {} % and {} %, their bandwidth within {} %.",
            worst(poll, "db_cores"),
            worst(push, "db_cores"),
            worst(poll, "server_cores"),
            worst(push, "server_cores"),
            n(
                100.0 * worst_of(poll, "bytes_per_s").max(worst_of(push, "bytes_per_s")),
                1
            ),
        ),
        from,
    );
    let at_users = |m: &Value, users: f64| entry(&m["projection"], "users", users.into()).clone();
    let (p6, q6) = (at_users(poll, 1e6), at_users(push, 1e6));
    let mbit = |p: &Value| at(p, "/bytes_per_s") * 8.0 / 1e6;
    says(
        &readme,
        &format!(
            "at 1,000,000 users polling needs {} cores",
            n(at(&p6, "/system_cores"), 0)
        ),
        from,
    );
    says(
        &readme,
        &format!("{} Mbit/s and 18 GB of server memory", n(mbit(&p6), 0)),
        from,
    );
    says(
        &readme,
        &format!(
            "push needs {} cores, {} Mbit/s",
            n(at(&q6, "/system_cores"), 1),
            n(mbit(&q6), 1)
        ),
        from,
    );
    // How the ratios move: the rows of model.md's table (all cores, then bandwidth).
    let md = std::fs::read_to_string(root().join("results/model/model/model.md")).unwrap();
    let ratio = |varied: &str, value: &str, column: usize| -> f64 {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {varied} | {value} |")))
            .unwrap_or_else(|| panic!("model.md has no row for {varied} = {value}"));
        let cell = row.split('|').nth(3 + column).unwrap().trim();
        cell.trim_end_matches('x').parse().unwrap()
    };
    says(
        &readme,
        &format!(
            "polling every second instead of 5 s makes it {}x in cores instead of {}x; every 60 s, {}x; at 6 notifications per user per minute instead of 0.12, push costs more cores than polling ({}x)",
            n(ratio("poll interval", "1 s", 0), 0),
            n(ratio("poll interval", "5 s", 0), 0),
            n(ratio("poll interval", "60 s", 0), 1),
            n(ratio("events per user per minute", "6.00", 0), 2),
        ),
        "results/model/model/model.md",
    );
    says(
        &readme,
        &format!(
            "Push still sends {}x fewer bytes.",
            n(ratio("events per user per minute", "6.00", 2), 0)
        ),
        "results/model/model/model.md",
    );
    let (p7, q7) = (at_users(poll, 1e7), at_users(push, 1e7));
    says(
        &readme,
        &format!(
            "At 10,000,000 users polling's Postgres would need {} cores, past what one server holds (the table says so); push's {}.",
            n(at(&p7, "/db_cores"), 0),
            n(at(&q7, "/db_cores"), 1)
        ),
        from,
    );
}

/// A sweep's run by its swept value and series value, typed.
fn sweep_run(
    summary: &pollpush::summary::Summary,
    value: u64,
    series: &str,
) -> pollpush::summary::ModeSummary {
    let sweep = summary.sweep.as_ref().expect("a sweep");
    let run = sweep
        .runs
        .iter()
        .find(|r| r.value.as_f64() == Some(value as f64) && r.series_value.as_str() == Some(series))
        .unwrap_or_else(|| panic!("no run at {value}, {series}"));
    run.modes.push.clone().expect("a push run")
}

/// The mean over instances of the messages each received from Redis a second, as the
/// sweep's report writes it (`{:.1}`, a tie to even).
fn mean_received(m: &pollpush::summary::ModeSummary) -> String {
    let xs: Vec<f64> = m
        .instances
        .iter()
        .flatten()
        .filter_map(|i| i.received_per_s)
        .collect();
    format!("{:.1}", xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The tables of instances and fan-out, and of the Redis Cluster, row by row from their
/// sweeps (results/instances, results/cluster).
#[test]
fn the_instances_and_cluster_tables_are_their_sweeps() {
    let readme = readme();
    let read = |rel: &str| {
        pollpush::summary::Summary::parse(&std::fs::read_to_string(root().join(rel)).unwrap())
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    let instances = read("results/instances/summary.json");
    for fanout in ["broadcast", "per-user"] {
        for n_inst in [1, 2, 4] {
            let m = sweep_run(&instances, n_inst, fanout);
            let delivered = 100.0 * m.events.delivered as f64 / m.events.sent as f64;
            let row = format!(
                "| {n_inst} | {fanout} | {} | {} % | {} % | {} |",
                mean_received(&m),
                n(
                    100.0 * m.gateway.as_ref().unwrap().discarded_ratio_mean.unwrap(),
                    1
                ),
                n(delivered, 0),
                n(m.latency_ms.p99.unwrap(), 1),
            );
            says(&readme, &row, "results/instances");
        }
    }
    let cluster = read("results/cluster/summary.json");
    for n_inst in [2, 4] {
        for fanout in ["broadcast", "per-user", "sharded"] {
            let m = sweep_run(&cluster, n_inst, fanout);
            let nodes: Vec<String> = m
                .redis
                .nodes
                .iter()
                .flatten()
                .map(|x| n(x.publishes_total as f64, 0))
                .collect();
            let row = format!(
                "| {n_inst} | {fanout} | {} | {} | {} | {} | {} |",
                nodes.join(" / "),
                mean_received(&m),
                n(m.redis.net_out_bytes_per_s.unwrap(), 0),
                n(m.latency_ms.p99.unwrap(), 1),
                m.events.lost,
            );
            says(&readme, &row, "results/cluster");
        }
    }
}
