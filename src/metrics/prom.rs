//! A process's CPU and memory as it reports them itself, in the Prometheus text format: the
//! standard process metrics every Prometheus client library exports
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`). `swarm` reads them from
//! a service it cannot see in `/proc` (`--push-metrics`, `--poll-metrics`).

/// CPU seconds used so far and resident memory in MiB, where the text has them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessFigures {
    pub cpu_seconds: Option<f64>,
    pub rss_mb: Option<f64>,
}

/// Reads the process metrics out of a Prometheus text exposition; an error when the text
/// is not one.
pub fn process_figures(text: &str) -> anyhow::Result<ProcessFigures> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines)
        .map_err(|e| anyhow::anyhow!("not the Prometheus text format: {e}"))?;
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .and_then(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => Some(v),
                _ => None,
            })
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    Ok(ProcessFigures {
        cpu_seconds: value("process_cpu_seconds_total"),
        rss_mb: value("process_resident_memory_bytes").map(|b| b / (1024.0 * 1024.0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_process_metrics_are_read_and_others_ignored() {
        // As prom-client (Node.js) writes them.
        let text =
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
# TYPE process_cpu_seconds_total counter\n\
process_cpu_seconds_total 12.5\n\
# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
# TYPE process_resident_memory_bytes gauge\n\
process_resident_memory_bytes 104857600\n\
nodejs_heap_size_total_bytes{space=\"new\"} 3000\n";
        let f = process_figures(text).unwrap();
        assert_eq!(f.cpu_seconds, Some(12.5));
        assert_eq!(f.rss_mb, Some(100.0));
        // Without them, unknown: never 0.
        let f = process_figures("# TYPE x counter\nx 1\n").unwrap();
        assert_eq!(f, ProcessFigures::default());
    }
}
