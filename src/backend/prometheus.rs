//! `GET /metrics`: the process's counters in Prometheus text format, rendered by
//! `metrics-exporter-prometheus` from a recorder of this server's own (not the global one,
//! so that several servers can live in one process, as in the tests). Values are read from
//! [`Stats`] at scrape time, so `/metrics` and `/stats` always agree.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use super::StatsSnapshot;

pub struct Exporter {
    recorder: PrometheusRecorder,
}

impl Default for Exporter {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, describe);
        Exporter { recorder }
    }
}

/// A counter: its name, its help text, and how to read it from a snapshot.
type Counter = (&'static str, &'static str, fn(&StatsSnapshot) -> u64);

/// Every `Stats` field but the connection gauge, once.
const COUNTERS: &[Counter] = &[
    (
        "pollpush_poll_requests_total",
        "Polls answered (GET /notifications)",
        |s| s.poll_requests,
    ),
    (
        "pollpush_poll_empty_total",
        "Polls answered with no notification",
        |s| s.poll_empty,
    ),
    (
        "pollpush_poll_errors_total",
        "Polls that failed (database unavailable, bad request)",
        |s| s.poll_errors,
    ),
    (
        "pollpush_unauthorized_total",
        "Requests refused for a missing or bad token",
        |s| s.unauthorized,
    ),
    (
        "pollpush_db_queries_total",
        "SQL statements this process sent to Postgres",
        |s| s.db_queries,
    ),
    (
        "pollpush_ingested_total",
        "Notifications stored by POST /notifications",
        |s| s.ingested,
    ),
    (
        "pollpush_publish_errors_total",
        "Redis publishes that failed or timed out at first",
        |s| s.publish_errors,
    ),
    (
        "pollpush_republished_total",
        "Failed publishes sent once Redis answered again",
        |s| s.republished,
    ),
    (
        "pollpush_publish_dropped_total",
        "Failed publishes dropped because the queue for Redis was full",
        |s| s.publish_dropped,
    ),
    (
        "pollpush_redis_duplicates_total",
        "Second copies of a notification from Redis, dropped",
        |s| s.redis_duplicates,
    ),
    (
        "pollpush_ws_accepted_total",
        "WebSocket connections accepted",
        |s| s.ws_accepted,
    ),
    ("pollpush_sse_accepted_total", "SSE streams accepted", |s| {
        s.sse_accepted
    }),
    (
        "pollpush_redis_received_total",
        "Messages received from Redis",
        |s| s.redis_received,
    ),
    (
        "pollpush_routed_total",
        "Messages routed to this instance's sockets",
        |s| s.routed,
    ),
    (
        "pollpush_delivered_total",
        "Frames queued to a socket of the target user",
        |s| s.delivered,
    ),
    (
        "pollpush_discarded_total",
        "Routed messages for users with no socket here",
        |s| s.discarded,
    ),
    (
        "pollpush_slow_disconnects_total",
        "Connections closed because their send queue was full",
        |s| s.slow_disconnects,
    ),
    (
        "pollpush_dropped_frames_total",
        "Frames dropped for a full send queue (slow_policy drop)",
        |s| s.dropped_frames,
    ),
    (
        "pollpush_catch_up_frames_total",
        "Notifications sent from Postgres to reconnecting clients",
        |s| s.catch_up_frames,
    ),
    (
        "pollpush_subscribe_commands_total",
        "SUBSCRIBE and UNSUBSCRIBE commands sent to Redis",
        |s| s.subscribe_commands,
    ),
    (
        "pollpush_redis_resets_total",
        "Times the Redis subscription was lost",
        |s| s.redis_resets,
    ),
];

fn describe() {
    for &(name, help, _) in COUNTERS {
        metrics::describe_counter!(name, help);
    }
    metrics::describe_gauge!(
        "pollpush_connections",
        "Push connections open (WebSocket and SSE)"
    );
    metrics::describe_gauge!(
        "pollpush_send_queue_frames",
        "Frames waiting in the send queues of all push connections"
    );
    metrics::describe_gauge!(
        "pollpush_send_queue_frames_max",
        "Frames waiting in the fullest send queue"
    );
}

impl Exporter {
    /// The text of one scrape: `stats` as counters, the connection gauge, the send
    /// queues' depth (total, fullest), and the standard process metrics every Prometheus
    /// client library exports (CPU seconds and resident memory, from /proc), by which
    /// `swarm --push-metrics`/`--push-replicas` measure a server on another host.
    pub fn render(&self, stats: &StatsSnapshot, queued: (u64, u64)) -> String {
        metrics::with_local_recorder(&self.recorder, || {
            for &(name, _, get) in COUNTERS {
                metrics::counter!(name).absolute(get(stats));
            }
            metrics::gauge!("pollpush_connections").set(stats.connections as f64);
            metrics::gauge!("pollpush_send_queue_frames").set(queued.0 as f64);
            metrics::gauge!("pollpush_send_queue_frames_max").set(queued.1 as f64);
        });
        let mut text = self.recorder.handle().render();
        let me = std::process::id();
        if let Some(cpu) = crate::procs::cpu_seconds(me) {
            text.push_str(&format!(
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}\n"
            ));
        }
        if let Some(mb) = crate::procs::rss_mb(me) {
            let bytes = (mb * 1024.0 * 1024.0).round();
            text.push_str(&format!(
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {bytes}\n"
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stats_field_is_exported_once() {
        let fields = serde_json::to_value(StatsSnapshot::default()).unwrap();
        let n = fields.as_object().unwrap().len();
        // Every field but the connection gauge is a counter.
        assert_eq!(COUNTERS.len(), n - 1);
        let s = StatsSnapshot {
            poll_requests: 7,
            connections: 3,
            ..Default::default()
        };
        let text = Exporter::default().render(&s, (5, 2));
        assert!(text.contains("pollpush_poll_requests_total 7"), "{text}");
        assert!(text.contains("pollpush_connections 3"), "{text}");
        assert!(text.contains("pollpush_send_queue_frames 5"), "{text}");
        assert!(text.contains("# HELP pollpush_db_queries_total"), "{text}");
        // The standard process metrics, parsed as a scraper would.
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes"] {
            let s = scrape.samples.iter().find(|s| s.metric == name);
            let value = match s.map(|s| &s.value) {
                Some(prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v)) => *v,
                other => panic!("{name}: {other:?} in {text}"),
            };
            assert!(
                value > 0.0 || name == "process_cpu_seconds_total",
                "{name} {value}"
            );
        }
    }
}
