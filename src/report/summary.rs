//! `summary.json`: stable key names (the contract in docs/results.md). Unknown is `null`,
//! never a made-up 0.

use std::time::SystemTime;

use crate::config::Choice;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::config::{kebab, Fanout, Mode};
use crate::result::{InstanceResult, ModeResult, RunResult};
use crate::scenario::{FaultAction, Headers, Plan};

/// Bumped when a key changes meaning or disappears; `compare` refuses to mix versions.
pub const SCHEMA_VERSION: u64 = 1;

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

fn per_min(count: u64, secs: f64) -> Option<f64> {
    (secs > 0.0).then(|| round(count as f64 * 60.0 / secs, 1))
}

/// A cluster's masters one by one (null for one Redis): how the messages and the work
/// spread over the shards.
fn redis_nodes(nodes: &[crate::metrics::redis_info::RedisReading], secs: f64) -> Value {
    if nodes.is_empty() {
        return Value::Null;
    }
    let total: u64 = nodes.iter().map(|n| n.publishes).sum();
    Value::Array(
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                json!({
                    "node": i,
                    "publishes_total": n.publishes,
                    "publishes_share": if total > 0 { json!(round(n.publishes as f64 / total as f64, 3)) } else { Value::Null },
                    "commands_per_s": per_s(n.commands, secs),
                    "cpu_cores": cores(Some(n.cpu_s), secs),
                })
            })
            .collect(),
    )
}

fn per_s(count: u64, secs: f64) -> Option<f64> {
    (secs > 0.0).then(|| round(count as f64 / secs, 1))
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn cores(cpu_s: Option<f64>, secs: f64) -> Option<f64> {
    cpu_s.filter(|_| secs > 0.0).map(|c| round(c / secs, 3))
}

pub(crate) fn latency(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({ "mean": null, "p50": null, "p90": null, "p99": null, "p999": null, "max": null, "count": 0 });
    }
    json!({
        "mean": round(h.mean() / 1000.0, 3),
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "count": h.len(),
    })
}

/// What the polling model predicts for this plan; shown beside the measurement.
/// `header_bytes_per_poll` (measured on one probe poll before the load) is the model's one
/// input from the run: the header overhead is that many bytes times N/T.
///
/// Long polling held up to W: a user's request ends at its next event or at W, whichever
/// comes first, so a user sends λ/(1−e^(−λW)) requests a second, a share e^(−λW) of them
/// come back empty (held to the end), and latency is one round trip, which the model does
/// not predict (null).
pub fn poll_prediction(plan: &Plan, header_bytes_per_poll: Option<u64>) -> Value {
    let lambda = plan.events_per_s / plan.users as f64;
    if let Some(w) = plan.poll_long {
        let w = w.as_secs_f64();
        let empty = (-lambda * w).exp();
        let rate = plan.users as f64 * lambda / (1.0 - empty);
        return json!({
            "requests_per_min": round(rate * 60.0, 1),
            "latency_mean_ms": null,
            "latency_max_ms": null,
            "empty_ratio": round(empty, 6),
            "header_bytes_per_poll": header_bytes_per_poll,
            "header_bytes_per_s": header_bytes_per_poll.map(|b| round(b as f64 * rate, 1)),
        });
    }
    let t = plan.poll_interval.as_secs_f64();
    let rate = plan.users as f64 / t;
    json!({
        "requests_per_min": round(rate * 60.0, 1),
        "db_queries_per_min": round(poll_db_queries_per_s(plan) * 60.0, 1),
        "latency_mean_ms": round(t * 1000.0 / 2.0, 3),
        "latency_max_ms": round(t * 1000.0, 3),
        "empty_ratio": round((-lambda * t).exp(), 6),
        "header_bytes_per_poll": header_bytes_per_poll,
        "header_bytes_per_s": header_bytes_per_poll.map(|b| round(b as f64 * rate, 1)),
    })
}

/// The statements Postgres runs a second in a periodic poll run, by the model: ingest's
/// INSERTs (λN), and per poll a session lookup (auth db) and the SELECT; with the poll
/// cache, a SELECT only for the polls that find something new, N/T·(1−e^(−λT)) a second,
/// and no lookups (sessions stay cached for 5 minutes; the first poll of each user fills
/// the cache before the window).
pub fn poll_db_queries_per_s(plan: &Plan) -> f64 {
    let n = plan.users as f64;
    let t = plan.poll_interval.as_secs_f64();
    let lambda = plan.events_per_s / n;
    let inserts = plan.events_per_s;
    match plan.poll_backend {
        crate::config::PollBackend::Db => {
            let per_poll = match plan.poll_auth {
                crate::config::PollAuth::Db => 2.0,
                crate::config::PollAuth::None => 1.0,
            };
            inserts + n / t * per_poll
        }
        crate::config::PollBackend::RedisCache => inserts + n / t * (1.0 - (-lambda * t).exp()),
    }
}

/// A server driven by `swarm` without pollpush's `/stats` (a Socket.IO server): every
/// figure made of servers' own counters is unknown, so null, never 0.
fn unknown_server_counters(v: &mut Value) {
    // Only keys that exist: indexing a missing one would add it.
    let null_all = |o: Option<&mut Value>, keep: &[&str]| {
        for (k, x) in o.and_then(Value::as_object_mut).into_iter().flatten() {
            if !keep.contains(&k.as_str()) {
                *x = Value::Null;
            }
        }
    };
    null_all(v.get_mut("server"), &[]);
    null_all(v.get_mut("gateway"), &["instances"]);
    for i in v
        .get_mut("instances")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        null_all(
            Some(i),
            &["index", "cpu_cores", "cpu_system_cores", "rss_mb"],
        );
    }
    if let Some(db) = v.get_mut("db").and_then(Value::as_object_mut) {
        for k in ["backend_queries_total", "backend_queries_per_min"] {
            db.insert(k.into(), Value::Null);
        }
    }
    null_all(
        v.get_mut("slow_clients"),
        &["clients", "events_sent", "events_delivered"],
    );
}

fn mode(m: &ModeResult, plan: &Plan) -> Value {
    let o = &m.outcome;
    let secs = m.window_s;
    let bytes = m.bytes_in + m.bytes_out;
    let empty_ratio = match m.mode {
        Mode::Poll if o.polls > 0 => json!(round(o.polls_empty as f64 / o.polls as f64, 6)),
        _ => Value::Null,
    };
    let server_cpu = m.cpu.servers_and_ingest();
    let statements: Vec<Value> = m
        .db_statements
        .iter()
        .map(|d| {
            json!({
                "query": d.query,
                "calls": d.calls,
                "total_ms": round(d.total_ms, 3),
                "mean_ms": round(d.total_ms / d.calls.max(1) as f64, 4),
            })
        })
        .collect();
    let mut v = json!({
        "users": m.users,
        "duration_s": round(secs, 3),
        "window": { "start": rfc3339(m.window_start), "end": rfc3339(m.window_end) },
        "connections": m.connections,
        // Push: the clients' first connections, spread evenly over the ramp; the rate the
        // gateways took them at, and whether they kept up (all in by the ramp's end).
        "connect": match m.mode {
            Mode::Push => json!({
                "ramp_s": m.ramp_s,
                "all_connected_s": m.all_connected_s.map(|s| round(s, 3)),
                "per_s": m.all_connected_s.filter(|&s| s > 0.0).map(|s| round(m.users as f64 / s, 1)),
            }),
            Mode::Poll => Value::Null,
        },
        "client_panics": m.client_panics,
        "reports_dropped": o.reports_dropped,
        "events": {
            "sent": o.sent,
            "delivered": o.delivered,
            "lost": o.lost,
            "duplicated": o.duplicated,
            "misrouted": o.misrouted,
            "send_failed": o.send_failed,
            "send_failed_delivered": o.send_failed_delivered,
            // [event, user] pairs: where to start looking; not figures.
            "lost_first": o.lost_first,
            "unreadable": o.unreadable,
        },
        "latency_ms": latency(&o.latency),
        "db": {
            "queries_total": m.db_queries,
            "queries_per_min": per_min(m.db_queries, secs),
            "backend_queries_total": m.backend_queries,
            "backend_queries_per_min": per_min(m.backend_queries, secs),
            "cpu_cores": cores(m.cpu.db, secs),
            "statements": statements,
            "commits": m.db_activity.map(|a| a.commits),
            "tuples_returned": m.db_activity.map(|a| a.tuples_returned),
            "tuples_fetched": m.db_activity.map(|a| a.tuples_fetched),
            "tuples_read_per_s": m.db_activity.map(|a| per_s(a.tuples_returned + a.tuples_fetched, secs)),
            "blocks_hit": m.db_activity.map(|a| a.blocks_hit),
            "blocks_read": m.db_activity.map(|a| a.blocks_read),
            "blocks_per_s": m.db_activity.map(|a| per_s(a.blocks_hit + a.blocks_read, secs)),
        },
        "http": {
            "requests_total": o.polls,
            "requests_per_min": per_min(o.polls, secs),
            "empty_ratio": empty_ratio,
            "errors": o.polls_error,
            "connect_errors": o.connect_errors,
            "response_ms": if o.poll_response.is_empty() {
                json!({ "mean": null, "p50": null, "p99": null, "max": null })
            } else {
                json!({
                    "mean": round(o.poll_response.mean() / 1000.0, 3),
                    "p50": ms(o.poll_response.value_at_quantile(0.50)),
                    "p99": ms(o.poll_response.value_at_quantile(0.99)),
                    "max": ms(o.poll_response.max()),
                })
            },
            "schedule_lateness_ms": {
                "p99": if o.poll_lateness.is_empty() { Value::Null } else { json!(ms(o.poll_lateness.value_at_quantile(0.99))) },
                "max": if o.poll_lateness.is_empty() { Value::Null } else { json!(ms(o.poll_lateness.max())) },
            },
        },
        "bandwidth": {
            "bytes_total": bytes,
            "bytes_in": m.bytes_in,
            "bytes_out": m.bytes_out,
            "bytes_per_s": if secs > 0.0 { json!(round(bytes as f64 / secs, 1)) } else { Value::Null },
            "bytes_per_user_per_min": if secs > 0.0 { json!(round(bytes as f64 / m.users as f64 * 60.0 / secs, 1)) } else { Value::Null },
            "bytes_per_delivered": if o.delivered > 0 { json!(round(bytes as f64 / o.delivered as f64, 1)) } else { Value::Null },
        },
        "cpu": {
            "server_cores": cores(server_cpu, secs),
            "ingest_cores": cores(m.cpu.ingest, secs),
            "db_cores": cores(m.cpu.db, secs),
            // With db.cpu_limit: the share of its budget Postgres used (1.0: all of it).
            "db_budget_cores": plan.db_cpu_limit,
            "db_budget_share": plan
                .db_cpu_limit
                .and_then(|limit| Some(round(cores(m.cpu.db, secs)? / limit, 3))),
            // Redis's own count stands in where /proc cannot see it (a remote Redis).
            "redis_cores": cores(m.cpu.redis.or(m.redis.map(|r| r.cpu_s)), secs),
            "swarm_cores": cores(m.cpu.swarm, secs),
            "total_cores": cores(
                [server_cpu, m.cpu.db, m.cpu.redis.or(m.redis.map(|r| r.cpu_s)), m.cpu.swarm]
                    .into_iter()
                    .sum(),
                secs
            ),
        },
        "memory": {
            "server_rss_mb": m.memory.server_rss_mb.map(|x| round(x, 1)),
            "ingest_rss_mb": m.memory.ingest_rss_mb.map(|x| round(x, 1)),
            "db_pss_mb": m.memory.db_pss_mb.map(|x| round(x, 1)),
            "redis_rss_mb": m.memory.redis_rss_mb.map(|x| round(x, 1)),
            "swarm_rss_mb": m.memory.swarm_rss_mb.map(|x| round(x, 1)),
        },
        "redis": match m.redis {
            Some(r) => json!({
                "commands_total": r.commands,
                "commands_per_s": per_s(r.commands, secs),
                "publishes_total": r.publishes,
                "nodes": redis_nodes(&m.redis_nodes, secs),
                "net_in_bytes_per_s": per_s(r.net_in_bytes, secs),
                "net_out_bytes_per_s": per_s(r.net_out_bytes, secs),
                "pubsub_channels": r.pubsub_channels,
                "cpu_cores": cores(Some(r.cpu_s), secs),
            }),
            None => json!({
                "commands_total": null, "commands_per_s": null, "publishes_total": null,
                "nodes": null, "net_in_bytes_per_s": null,
                "net_out_bytes_per_s": null, "pubsub_channels": null, "cpu_cores": null,
            }),
        },
        "server": {
            "poll_requests": m.server.poll_requests,
            "connections": m.server.connections,
            "redis_received": m.server.redis_received,
            "redis_duplicates": m.server.redis_duplicates,
            "routed": m.server.routed,
            "delivered": m.server.delivered,
            "discarded": m.server.discarded,
            "discarded_ratio": share(m.server.discarded, m.server.routed),
            "slow_disconnects": m.server.slow_disconnects,
            "dropped_frames": m.server.dropped_frames,
            "catch_up_frames": m.server.catch_up_frames,
            "subscribe_commands": m.server.subscribe_commands,
            "redis_resets": m.server.redis_resets,
            "publish_errors": m.server.publish_errors,
            "republished": m.server.republished,
            "publish_dropped": m.server.publish_dropped,
        },
        "workload": {
            "events_per_s_target": plan.events_per_s,
            "emitted": m.workload.emitted,
            "max_lateness_ms": ms(m.workload.max_lateness_us),
            "emitted_per_s": (m.workload.span_s > 0.0)
                .then(|| round(m.workload.emitted as f64 / m.workload.span_s, 1)),
            "late_ratio": share(m.workload.late, m.workload.emitted),
            "in_flight_peak": m.workload.in_flight_peak,
        },
    });
    if m.mode == Mode::Poll {
        v["predicted"] = poll_prediction(plan, m.probe_header_bytes);
        // Everything on the wire that is not a response body: request lines and headers,
        // status lines and headers.
        let overhead = bytes.saturating_sub(o.poll_body_bytes) as f64;
        let per = |x: f64, n: f64| {
            if n > 0.0 {
                json!(round(x / n, 1))
            } else {
                Value::Null
            }
        };
        v["bandwidth"]["body_bytes_per_s"] = per(o.poll_body_bytes as f64, secs);
        v["bandwidth"]["header_bytes_per_s"] = per(overhead, secs);
        v["bandwidth"]["header_bytes_per_poll"] = per(overhead, o.polls as f64);
    }
    if m.mode == Mode::Push {
        // What went into Redis (or, with fanout none, into an instance): every instance's
        // ingest together.
        let published: u64 = m.instances.iter().map(|i| i.stats.ingested).sum();
        let list: Vec<Value> = m
            .instances
            .iter()
            .map(|i| instance(i, secs, published))
            .collect();
        let mean_of = |key: &str| {
            let xs: Vec<f64> = list.iter().filter_map(|i| i[key].as_f64()).collect();
            (!xs.is_empty()).then(|| round(xs.iter().sum::<f64>() / xs.len() as f64, 6))
        };
        v["gateway"] = json!({
            "instances": m.instances.len(),
            "published": published,
            "received_share_mean": mean_of("received_share"),
            "discarded_ratio_mean": mean_of("discarded_ratio"),
        });
        v["instances"] = Value::Array(list);
        v["reconnects"] = json!({
            "count": o.reconnects,
            "downtime_ms": {
                "p50": quantile_ms(&o.reconnect_downtime, 0.5),
                "p99": quantile_ms(&o.reconnect_downtime, 0.99),
                "max": quantile_ms(&o.reconnect_downtime, 1.0),
            },
        });
        v["slow_clients"] = json!({
            "clients": plan.push.slow_clients,
            "events_sent": o.slow_sent,
            "events_delivered": o.slow_delivered,
            "disconnected": m.server.slow_disconnects,
            "dropped_frames": m.server.dropped_frames,
        });
        // Pure WebSockets: an event reaches its user only when the instance it went in
        // through holds the user, which with n instances happens 1 time in n.
        if plan.push.fanout == Fanout::None {
            v["predicted"] = json!({
                "lost_ratio": round(1.0 - 1.0 / plan.push.instances as f64, 6),
            });
        }
    }
    v["events"]["lost_ratio"] = share(o.lost, o.sent);
    v["faults"] = m
        .faults
        .iter()
        .map(|f| {
            let mut entry = json!({
                "at_s": round(f.at_s, 3),
                "action": f.fault.action.name(),
                "fired": f.failed.is_none(),
                "not_fired_because": f.failed,
                "clients_dropped": f.outcome.clients_dropped,
                "clients_back": f.outcome.clients_back,
                "reconnect_s": f.outcome.reconnect_s.map(|x| round(x, 3)),
                "lost": f.outcome.lost,
                "duplicated": f.outcome.duplicated,
                "poll_errors": f.outcome.poll_errors,
                "poll_recovered_s": f.outcome.poll_recovered_s.map(|x| round(x, 3)),
                "reconnects_peak_per_s": f.outcome.reconnects_peak_per_s,
                "db_queries_peak_per_s": f.db_queries_peak_per_s.map(|x| x.round()),
                "server_cores_peak": f.server_cores_peak.map(|x| round(x, 3)),
            });
            match f.fault.action {
                FaultAction::DisconnectClients { offline, .. } => {
                    entry["offline_s"] = json!(offline.as_secs_f64());
                }
                FaultAction::KillRedis { down, .. }
                | FaultAction::PauseRedis { down }
                | FaultAction::RestartPostgres { down } => {
                    entry["down_s"] = json!(down.as_secs_f64());
                }
                FaultAction::KillGateway { instance, down } => {
                    entry["instance"] = json!(instance);
                    entry["down_s"] = json!(down.map(|d| d.as_secs_f64()));
                }
            }
            entry
        })
        .collect();
    if !m.db_known {
        // Only keys that exist: indexing a missing one would add it.
        for (k, x) in v
            .get_mut("db")
            .and_then(Value::as_object_mut)
            .into_iter()
            .flatten()
        {
            if k != "statements" {
                *x = Value::Null;
            }
        }
    }
    if !m.server_counters {
        unknown_server_counters(&mut v);
    }
    v
}

fn share(part: u64, whole: u64) -> Value {
    if whole == 0 {
        Value::Null
    } else {
        json!(round(part as f64 / whole as f64, 6))
    }
}

fn quantile_ms(h: &Histogram<u64>, q: f64) -> Value {
    if h.is_empty() {
        Value::Null
    } else {
        json!(ms(h.value_at_quantile(q)))
    }
}

/// One gateway instance: `modes.push.instances[i]` (docs/results.md).
fn instance(i: &InstanceResult, secs: f64, published: u64) -> Value {
    let s = &i.stats;
    json!({
        "received_share": share(s.redis_received, published),
        "index": i.index,
        "connections": i.connections,
        "received_total": s.redis_received,
        "received_per_s": if secs > 0.0 { json!(round(s.redis_received as f64 / secs, 2)) } else { Value::Null },
        "routed": s.routed,
        "delivered": s.delivered,
        "discarded": s.discarded,
        "discarded_ratio": share(s.discarded, s.routed),
        "ingested": s.ingested,
        "slow_disconnects": s.slow_disconnects,
        "catch_up_frames": s.catch_up_frames,
        "subscribe_commands": s.subscribe_commands,
        "cpu_cores": cores(i.cpu_s, secs),
        "cpu_system_cores": cores(i.cpu_system_s, secs),
        "rss_mb": i.rss_mb.map(|x| round(x, 1)),
    })
}

fn ratio(a: &Value, b: &Value) -> Value {
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => json!(round(a / b, 2)),
        _ => Value::Null,
    }
}

pub fn build(r: &RunResult) -> Value {
    let mut modes = serde_json::Map::new();
    for m in &r.modes {
        modes.insert(m.mode.to_string(), mode(m, &r.plan));
    }
    let ratios = match (modes.get("poll"), modes.get("push")) {
        (Some(p), Some(q)) => json!({
            "db_queries": ratio(&p["db"]["queries_per_min"], &q["db"]["queries_per_min"]),
            "bandwidth": ratio(&p["bandwidth"]["bytes_per_s"], &q["bandwidth"]["bytes_per_s"]),
            "latency_p50": ratio(&p["latency_ms"]["p50"], &q["latency_ms"]["p50"]),
            "latency_p99": ratio(&p["latency_ms"]["p99"], &q["latency_ms"]["p99"]),
        }),
        _ => {
            json!({ "db_queries": null, "bandwidth": null, "latency_p50": null, "latency_p99": null })
        }
    };
    let m = &r.machine;
    let mut summary = json!({
        "schema_version": SCHEMA_VERSION,
        "pollpush_version": env!("CARGO_PKG_VERSION"),
        "scenario": r.plan.name,
        "description": r.plan.description,
        "started_at": rfc3339(r.started_at),
        "plan": {
            "users": r.plan.users,
            "duration_s": r.plan.duration.as_secs_f64(),
            "poll_interval_s": r.plan.poll_interval.as_secs_f64(),
            "poll_long_wait_s": r.plan.poll_long.map(|w| w.as_secs_f64()),
            "poll_auth": r.plan.poll_auth,
            "poll_backend": r.plan.poll_backend.name(),
            "poll_conditional": r.plan.poll_conditional,
            "poll_http": r.plan.poll_http.name(),
            "events_per_s": r.plan.events_per_s,
            "payload_bytes": r.plan.payload_bytes,
            "swarm_headers": r.plan.headers.name(),
            "swarm_cookie_bytes": match r.plan.headers {
                Headers::Browser { cookie_bytes } => json!(cookie_bytes),
                Headers::Minimal => Value::Null,
            },
            "push_transport": kebab(&r.plan.push.transport),
            "push_instances": r.plan.push.instances,
            "push_fanout": kebab(&r.plan.push.fanout),
            "push_catch_up": r.plan.push.catch_up,
            "push_reconnect": kebab(&r.plan.push.reconnect),
            "push_send_queue": r.plan.push.send_queue,
            "push_slow_policy": kebab(&r.plan.push.slow_policy),
            "push_slow_clients": r.plan.push.slow_clients,
            "push_slow_events_per_s": r.plan.push.slow_events_per_s,
            "swarm_processes": r.plan.shard_count(),
            "db_cpu_limit": r.plan.db_cpu_limit,
            "redis_masters": r.plan.redis_masters,
        },
        "machine": {
            "cores": m.cores,
            "memory_mb": m.memory_mb,
            "os": m.os,
            "kernel": m.kernel,
            "postgres_version": m.postgres_version,
            "redis_version": m.redis_version,
            "ephemeral_services": m.ephemeral_services,
        },
        "method": {
            "db_queries": r.db_source.as_str(),
            "swarm": match r.plan.shard_count() {
                1 => "one swarm process holds every client".to_string(),
                k => format!("the users split over {k} swarm processes, each with its users and its share of the events; their counts and latency histograms added exactly, the servers, Postgres and Redis measured once by the first"),
            },
            "bandwidth": "application bytes on the swarm's client sockets, both directions; TCP/IP headers excluded",
            "headers": match r.plan.headers {
                Headers::Minimal => "minimal: each request carries only Host and Authorization (and a WebSocket upgrade's own headers); a browser sends several hundred bytes more, which `swarm.headers = \"browser\"` simulates".to_string(),
                Headers::Browser { cookie_bytes } => format!("browser: User-Agent, Accept, Accept-Language, Accept-Encoding, Referer, sec-ch-ua and sec-fetch-* headers and a Cookie of {cookie_bytes} bytes on every request, as a web app in Chrome sends"),
            },
            "latency": "workload emit time (stamped in the payload) to the client parsing it, HdrHistogram µs, 3 significant digits",
            "polling": match r.plan.poll_long {
                None => "periodic: each user polls every poll.interval from a random phase; a poll counts in the window it was scheduled in".to_string(),
                Some(w) => format!("long polling: each user holds one request, answered when something arrives or after {} s, and asks again at once; a poll counts in the window in which it was answered", w.as_secs_f64()),
            },
        },
        "modes": Value::Object(modes),
        "ratios": ratios,
    });
    // A shard's own folder says which part of which run it holds.
    if let Some(s) = &r.shard {
        summary["shard"] = json!({ "run_id": s.run_id, "index": s.index, "count": s.count });
    }
    summary
}
