//! `summary.json`: stable key names (the contract in docs/results.md). Unknown is `null`,
//! never a made-up 0.

use std::time::SystemTime;

use crate::config::Choice;
use hdrhistogram::Histogram;

use super::predicted;
use crate::config::{kebab, Fanout, Mode};
use crate::result::{InstanceResult, ModeResult, RunResult};
use crate::scenario::{FaultAction, Headers, Plan};
use crate::summary::figure::round;
use crate::summary::mode::{
    Bandwidth, Connect, Cpu, Db, Downtime, Events, Fault, FaultDetail, Gateway, Http, Instance,
    InstanceSlot, Latency, Lateness, Memory, ModeSummary, Predicted, Reconnects, Redis, RedisNode,
    Response, Server, SlowClients, Statement, Window, WorkloadFigures,
};
use crate::summary::{Method, Modes, PlanEcho, Ratios, Shard, Summary};

use crate::summary::SCHEMA_VERSION;

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

fn per_min(count: u64, secs: f64) -> Option<f64> {
    (secs > 0.0).then(|| round(count as f64 * 60.0 / secs, 1))
}

fn per_s(count: u64, secs: f64) -> Option<f64> {
    (secs > 0.0).then(|| round(count as f64 / secs, 1))
}

fn cores(cpu_s: Option<f64>, secs: f64) -> Option<f64> {
    cpu_s.filter(|_| secs > 0.0).map(|c| round(c / secs, 3))
}

pub(crate) fn latency(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        mean: Some(round(h.mean() / 1000.0, 3)),
        p50: Some(ms(h.value_at_quantile(0.50))),
        p90: Some(ms(h.value_at_quantile(0.90))),
        p99: Some(ms(h.value_at_quantile(0.99))),
        p999: Some(ms(h.value_at_quantile(0.999))),
        max: Some(ms(h.max())),
        count: h.len(),
    }
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| round(part as f64 / whole as f64, 6))
}

fn quantile_ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| ms(h.value_at_quantile(q)))
}

fn mean(xs: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let xs: Vec<f64> = xs.flatten().collect();
    (!xs.is_empty()).then(|| round(xs.iter().sum::<f64>() / xs.len() as f64, 6))
}

/// `modes.<mode>`: one mode's figures over its window.
fn mode(m: &ModeResult, plan: &Plan) -> ModeSummary {
    let o = &m.outcome;
    let secs = m.window_s;
    let mut v = ModeSummary {
        users: m.users,
        duration_s: round(secs, 3),
        window: Window {
            start: rfc3339(m.window_start),
            end: rfc3339(m.window_end),
        },
        connections: m.connections,
        // Push: the clients' first connections, spread evenly over the ramp; the rate the
        // gateways took them at, and whether they kept up (all in by the ramp's end).
        connect: (m.mode == Mode::Push).then(|| Connect {
            ramp_s: m.ramp_s,
            all_connected_s: m.all_connected_s.map(|s| round(s, 3)),
            per_s: m
                .all_connected_s
                .filter(|&s| s > 0.0)
                .map(|s| round(m.users as f64 / s, 1)),
        }),
        client_panics: m.client_panics,
        reports_dropped: o.reports_dropped,
        events: Events {
            sent: o.sent,
            delivered: o.delivered,
            lost: o.lost,
            duplicated: o.duplicated,
            misrouted: o.misrouted,
            send_failed: o.send_failed,
            send_failed_delivered: o.send_failed_delivered,
            lost_first: o.lost_first.clone(),
            unreadable: o.unreadable,
            lost_ratio: share(o.lost, o.sent),
        },
        latency_ms: latency(&o.latency),
        db: db(m, secs),
        http: http(m, secs),
        bandwidth: bandwidth(m, secs),
        cpu: cpu(m, plan, secs),
        memory: Memory {
            server_rss_mb: m.memory.server_rss_mb.map(|x| round(x, 1)),
            ingest_rss_mb: m.memory.ingest_rss_mb.map(|x| round(x, 1)),
            db_pss_mb: m.memory.db_pss_mb.map(|x| round(x, 1)),
            redis_rss_mb: m.memory.redis_rss_mb.map(|x| round(x, 1)),
            swarm_rss_mb: m.memory.swarm_rss_mb.map(|x| round(x, 1)),
        },
        redis: redis(m, secs),
        server: server(m),
        workload: WorkloadFigures {
            events_per_s_target: plan.events_per_s,
            emitted: m.workload.emitted,
            max_lateness_ms: ms(m.workload.max_lateness_us),
            emitted_per_s: (m.workload.span_s > 0.0)
                .then(|| round(m.workload.emitted as f64 / m.workload.span_s, 1)),
            late_ratio: share(m.workload.late, m.workload.emitted),
            in_flight_peak: m.workload.in_flight_peak,
        },
        predicted: None,
        gateway: None,
        instances: None,
        reconnects: None,
        slow_clients: None,
        faults: m.faults.iter().map(fault).collect(),
    };
    match m.mode {
        Mode::Poll => v.predicted = Some(predicted::poll(plan, m.probe_header_bytes)),
        Mode::Push => push_parts(&mut v, m, plan),
    }
    if !m.server_counters {
        unknown_server_counters(&mut v);
    }
    v
}

fn db(m: &ModeResult, secs: f64) -> Db {
    let statements = m
        .db_statements
        .iter()
        .map(|d| Statement {
            query: d.query.clone(),
            calls: d.calls,
            total_ms: round(d.total_ms, 3),
            mean_ms: round(d.total_ms / d.calls.max(1) as f64, 4),
        })
        .collect();
    if !m.db_known {
        // Postgres's own counts could not be read: every figure unknown.
        return Db {
            statements,
            ..Db::default()
        };
    }
    let a = m.db_activity;
    Db {
        queries_total: Some(m.db_queries),
        queries_per_min: per_min(m.db_queries, secs),
        backend_queries_total: Some(m.backend_queries),
        backend_queries_per_min: per_min(m.backend_queries, secs),
        cpu_cores: cores(m.cpu.db, secs),
        statements,
        commits: a.map(|a| a.commits),
        tuples_returned: a.map(|a| a.tuples_returned),
        tuples_fetched: a.map(|a| a.tuples_fetched),
        tuples_read_per_s: a.and_then(|a| per_s(a.tuples_returned + a.tuples_fetched, secs)),
        blocks_hit: a.map(|a| a.blocks_hit),
        blocks_read: a.map(|a| a.blocks_read),
        blocks_per_s: a.and_then(|a| per_s(a.blocks_hit + a.blocks_read, secs)),
    }
}

fn http(m: &ModeResult, secs: f64) -> Http {
    let o = &m.outcome;
    let r = &o.poll_response;
    Http {
        requests_total: o.polls,
        requests_per_min: per_min(o.polls, secs),
        empty_ratio: (m.mode == Mode::Poll)
            .then(|| share(o.polls_empty, o.polls))
            .flatten(),
        errors: o.polls_error,
        connect_errors: o.connect_errors,
        response_ms: Response {
            mean: (!r.is_empty()).then(|| round(r.mean() / 1000.0, 3)),
            p50: quantile_ms(r, 0.50),
            p99: quantile_ms(r, 0.99),
            max: (!r.is_empty()).then(|| ms(r.max())),
        },
        schedule_lateness_ms: Lateness {
            p99: quantile_ms(&o.poll_lateness, 0.99),
            max: (!o.poll_lateness.is_empty()).then(|| ms(o.poll_lateness.max())),
        },
    }
}

fn bandwidth(m: &ModeResult, secs: f64) -> Bandwidth {
    let o = &m.outcome;
    let bytes = m.bytes_in + m.bytes_out;
    let per = |x: f64, n: f64| (n > 0.0).then(|| round(x / n, 1));
    let mut b = Bandwidth {
        bytes_total: bytes,
        bytes_in: m.bytes_in,
        bytes_out: m.bytes_out,
        bytes_per_s: per(bytes as f64, secs),
        bytes_per_user_per_min: per(bytes as f64 * 60.0, m.users as f64 * secs),
        bytes_per_delivered: per(bytes as f64, o.delivered as f64),
        ..Bandwidth::default()
    };
    if m.mode == Mode::Poll {
        // Everything on the wire that is not a response body: request lines and headers,
        // status lines and headers.
        let overhead = bytes.saturating_sub(o.poll_body_bytes) as f64;
        b.body_bytes_per_s = per(o.poll_body_bytes as f64, secs);
        b.header_bytes_per_s = per(overhead, secs);
        b.header_bytes_per_poll = per(overhead, o.polls as f64);
    }
    b
}

/// CPU by part. The system under test is the servers, ingest, Postgres and Redis; the
/// total adds the swarm, the load generator.
fn cpu(m: &ModeResult, plan: &Plan, secs: f64) -> Cpu {
    let server = m.cpu.servers_and_ingest();
    // Redis's own count stands in where /proc cannot see it (a remote Redis).
    let redis = m.cpu.redis.or(m.redis.map(|r| r.cpu_s));
    let system: Option<f64> = [server, m.cpu.db, redis].into_iter().sum();
    Cpu {
        server_cores: cores(server, secs),
        ingest_cores: cores(m.cpu.ingest, secs),
        db_cores: cores(m.cpu.db, secs),
        // With db.cpu_limit: the share of its budget Postgres used (1.0: all of it).
        db_budget_cores: plan.db_cpu_limit,
        db_budget_share: plan
            .db_cpu_limit
            .and_then(|limit| Some(round(cores(m.cpu.db, secs)? / limit, 3))),
        redis_cores: cores(redis, secs),
        swarm_cores: cores(m.cpu.swarm, secs),
        system_cores: cores(system, secs),
        total_cores: cores([system, m.cpu.swarm].into_iter().sum(), secs),
    }
}

fn redis(m: &ModeResult, secs: f64) -> Redis {
    let Some(r) = m.redis else {
        return Redis::default();
    };
    let total: u64 = m.redis_nodes.iter().map(|n| n.publishes).sum();
    // A cluster's masters one by one (null for one Redis): how the messages and the work
    // spread over the shards.
    let nodes = (!m.redis_nodes.is_empty()).then(|| {
        m.redis_nodes
            .iter()
            .enumerate()
            .map(|(i, n)| RedisNode {
                node: i,
                publishes_total: n.publishes,
                publishes_share: share(n.publishes, total).map(|x| round(x, 3)),
                commands_per_s: per_s(n.commands, secs),
                cpu_cores: cores(Some(n.cpu_s), secs),
            })
            .collect()
    });
    Redis {
        commands_total: Some(r.commands),
        commands_per_s: per_s(r.commands, secs),
        publishes_total: Some(r.publishes),
        nodes,
        net_in_bytes_per_s: per_s(r.net_in_bytes, secs),
        net_out_bytes_per_s: per_s(r.net_out_bytes, secs),
        pubsub_channels: Some(r.pubsub_channels),
        cpu_cores: cores(Some(r.cpu_s), secs),
    }
}

fn server(m: &ModeResult) -> Server {
    let s = &m.server;
    Server {
        poll_requests: Some(s.poll_requests),
        connections: Some(s.connections),
        redis_received: Some(s.redis_received),
        redis_duplicates: Some(s.redis_duplicates),
        routed: Some(s.routed),
        delivered: Some(s.delivered),
        discarded: Some(s.discarded),
        discarded_ratio: share(s.discarded, s.routed),
        slow_disconnects: Some(s.slow_disconnects),
        dropped_frames: Some(s.dropped_frames),
        catch_up_frames: Some(s.catch_up_frames),
        subscribe_commands: Some(s.subscribe_commands),
        redis_resets: Some(s.redis_resets),
        publish_errors: Some(s.publish_errors),
        republished: Some(s.republished),
        publish_dropped: Some(s.publish_dropped),
    }
}

/// Push's own parts: the gateways one by one, reconnects, slow clients, and with fanout
/// none the loss the model predicts.
fn push_parts(v: &mut ModeSummary, m: &ModeResult, plan: &Plan) {
    let o = &m.outcome;
    let secs = m.window_s;
    // What went into Redis (or, with fanout none, into an instance): every instance's
    // ingest together.
    let published: u64 = m.instances.iter().map(|i| i.stats.ingested).sum();
    let list: Vec<Instance> = m
        .instances
        .iter()
        .map(|i| instance(i, secs, published))
        .collect();
    v.gateway = Some(Gateway {
        instances: m.instances.len(),
        published: Some(published),
        received_share_mean: mean(list.iter().map(|i| i.received_share)),
        discarded_ratio_mean: mean(list.iter().map(|i| i.discarded_ratio)),
    });
    v.instances = Some(list);
    v.reconnects = Some(Reconnects {
        count: o.reconnects,
        downtime_ms: Downtime {
            p50: quantile_ms(&o.reconnect_downtime, 0.5),
            p99: quantile_ms(&o.reconnect_downtime, 0.99),
            max: quantile_ms(&o.reconnect_downtime, 1.0),
        },
    });
    v.slow_clients = Some(SlowClients {
        clients: plan.push.slow_clients,
        events_sent: o.slow_sent,
        events_delivered: o.slow_delivered,
        disconnected: Some(m.server.slow_disconnects),
        dropped_frames: Some(m.server.dropped_frames),
    });
    // Pure WebSockets: an event reaches its user only when the instance it went in
    // through holds the user, which with n instances happens 1 time in n.
    if plan.push.fanout == Fanout::None {
        v.predicted = Some(Predicted {
            lost_ratio: Some(round(1.0 - 1.0 / plan.push.instances as f64, 6)),
            ..Predicted::default()
        });
    }
}

/// A server driven by `swarm` without pollpush's `/stats` (a Socket.IO server): every
/// figure made of servers' own counters is unknown, so null, never 0.
fn unknown_server_counters(v: &mut ModeSummary) {
    v.server = Server::default();
    if let Some(g) = &mut v.gateway {
        *g = Gateway {
            instances: g.instances,
            ..Gateway::default()
        };
    }
    for i in v.instances.iter_mut().flatten() {
        *i = Instance {
            index: i.index,
            cpu_cores: i.cpu_cores,
            cpu_system_cores: i.cpu_system_cores,
            rss_mb: i.rss_mb,
            ..Instance::default()
        };
    }
    v.db.backend_queries_total = None;
    v.db.backend_queries_per_min = None;
    if let Some(s) = &mut v.slow_clients {
        s.disconnected = None;
        s.dropped_frames = None;
    }
}

fn fault(f: &crate::result::FaultResult) -> Fault {
    let secs = |d: std::time::Duration| d.as_secs_f64();
    Fault {
        at_s: round(f.at_s, 3),
        action: f.fault.action.name().to_string(),
        fired: f.failed.is_none(),
        not_fired_because: f.failed.clone(),
        clients_dropped: f.outcome.clients_dropped,
        clients_back: f.outcome.clients_back,
        reconnect_s: f.outcome.reconnect_s.map(|x| round(x, 3)),
        lost: f.outcome.lost,
        duplicated: f.outcome.duplicated,
        poll_errors: f.outcome.poll_errors,
        poll_recovered_s: f.outcome.poll_recovered_s.map(|x| round(x, 3)),
        reconnects_peak_per_s: f.outcome.reconnects_peak_per_s,
        db_queries_peak_per_s: f.db_queries_peak_per_s.map(|x| x.round()),
        server_cores_peak: f.server_cores_peak.map(|x| round(x, 3)),
        detail: match f.fault.action {
            FaultAction::DisconnectClients { offline, .. } => FaultDetail::Offline {
                offline_s: secs(offline),
            },
            FaultAction::KillRedis { down, .. }
            | FaultAction::PauseRedis { down }
            | FaultAction::RestartPostgres { down } => FaultDetail::Down { down_s: secs(down) },
            FaultAction::KillGateway { instance, down } => FaultDetail::Gateway {
                instance: InstanceSlot(instance),
                down_s: down.map(secs),
            },
        },
    }
}

/// One gateway instance: `modes.push.instances[i]` (docs/results.md).
fn instance(i: &InstanceResult, secs: f64, published: u64) -> Instance {
    let s = &i.stats;
    Instance {
        index: i.index,
        connections: Some(i.connections),
        received_total: Some(s.redis_received),
        received_per_s: (secs > 0.0).then(|| round(s.redis_received as f64 / secs, 2)),
        received_share: share(s.redis_received, published),
        routed: Some(s.routed),
        delivered: Some(s.delivered),
        discarded: Some(s.discarded),
        discarded_ratio: share(s.discarded, s.routed),
        ingested: Some(s.ingested),
        slow_disconnects: Some(s.slow_disconnects),
        catch_up_frames: Some(s.catch_up_frames),
        subscribe_commands: Some(s.subscribe_commands),
        cpu_cores: cores(i.cpu_s, secs),
        cpu_system_cores: cores(i.cpu_system_s, secs),
        rss_mb: i.rss_mb.map(|x| round(x, 1)),
    }
}

fn plan_echo(plan: &Plan) -> PlanEcho {
    PlanEcho {
        users: Some(plan.users),
        duration_s: Some(plan.duration.as_secs_f64()),
        poll_interval_s: Some(plan.poll_interval.as_secs_f64()),
        poll_long_wait_s: plan.poll_long.map(|w| w.as_secs_f64()),
        poll_auth: Some(plan.poll_auth),
        poll_backend: Some(plan.poll_backend.name().to_string()),
        poll_conditional: Some(plan.poll_conditional),
        poll_http: Some(plan.poll_http.name().to_string()),
        events_per_s: Some(plan.events_per_s),
        payload_bytes: Some(plan.payload_bytes as u64),
        swarm_headers: Some(plan.headers.name().to_string()),
        swarm_cookie_bytes: match plan.headers {
            Headers::Browser { cookie_bytes } => Some(cookie_bytes as u64),
            Headers::Minimal => None,
        },
        push_transport: Some(kebab(&plan.push.transport)),
        push_instances: Some(plan.push.instances as u64),
        push_fanout: Some(kebab(&plan.push.fanout)),
        push_catch_up: Some(plan.push.catch_up),
        push_reconnect: Some(kebab(&plan.push.reconnect)),
        push_send_queue: Some(plan.push.send_queue as u64),
        push_slow_policy: Some(kebab(&plan.push.slow_policy)),
        push_slow_clients: Some(plan.push.slow_clients),
        push_slow_events_per_s: Some(plan.push.slow_events_per_s),
        swarm_processes: Some(plan.shard_count()),
        db_cpu_limit: plan.db_cpu_limit,
        redis_masters: Some(plan.redis_masters as u64),
    }
}

fn method(r: &RunResult) -> Method {
    Method {
        db_queries: r.db_source.as_str().to_string(),
        swarm: match r.plan.shard_count() {
            1 => "one swarm process holds every client".to_string(),
            k => format!("the users split over {k} swarm processes, each with its users and its share of the events; their counts and latency histograms added exactly, the servers, Postgres and Redis measured once by the first"),
        },
        bandwidth: "application bytes on the swarm's client sockets, both directions; TCP/IP headers excluded".into(),
        headers: match r.plan.headers {
            Headers::Minimal => "minimal: each request carries only Host and Authorization (and a WebSocket upgrade's own headers); a browser sends several hundred bytes more, which `swarm.headers = \"browser\"` simulates".to_string(),
            Headers::Browser { cookie_bytes } => format!("browser: User-Agent, Accept, Accept-Language, Accept-Encoding, Referer, sec-ch-ua and sec-fetch-* headers and a Cookie of {cookie_bytes} bytes on every request, as a web app in Chrome sends"),
        },
        latency: "workload emit time (stamped in the payload) to the client parsing it, HdrHistogram µs, 3 significant digits".into(),
        polling: match r.plan.poll_long {
            None => "periodic: each user polls every poll.interval from a random phase; a poll counts in the window it was scheduled in".to_string(),
            Some(w) => format!("long polling: each user holds one request, answered when something arrives or after {} s, and asks again at once; a poll counts in the window in which it was answered", w.as_secs_f64()),
        },
    }
}

/// The summary of one run.
pub fn build(r: &RunResult) -> Summary {
    let mut modes = Modes::default();
    for m in &r.modes {
        let v = Some(mode(m, &r.plan));
        match m.mode {
            Mode::Poll => modes.poll = v,
            Mode::Push => modes.push = v,
        }
    }
    Summary {
        schema_version: SCHEMA_VERSION,
        pollpush_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: r.plan.name.clone(),
        description: r.plan.description.clone(),
        started_at: rfc3339(r.started_at),
        plan: plan_echo(&r.plan),
        machine: r.machine.clone(),
        method: method(r),
        ratios: Ratios::of(&modes),
        modes,
        shard: r.shard.as_ref().map(|s| Shard {
            run_id: s.run_id.clone(),
            index: s.index,
            count: s.count,
        }),
        checks: None,
        combined: None,
        repeats: None,
        merged: None,
        sweep: None,
    }
}
