//! The event generator: Poisson arrivals at `events_per_s`, each aimed at a uniformly drawn
//! user, stamped with a unique id and its emit time (µs since the epoch), and sent through
//! the ingest API the way "something happened" would call it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What the workload tells the aggregator.
#[derive(Debug, Clone)]
pub enum Emitted {
    /// Stored by the ingest API (and published): it must reach `user`.
    Sent { event: u64, user: u64 },
    /// The ingest API refused or failed: not counted as sent.
    Failed { event: u64 },
}

pub struct Workload {
    /// Where events go in: each is sent through one of these, picked at random.
    pub ingress: Vec<std::net::SocketAddr>,
    /// Targets are drawn uniformly from these users.
    pub users: std::ops::RangeInclusive<u64>,
    pub events_per_s: f64,
    pub payload_bytes: usize,
    pub seed: u64,
    /// First event id; ids are unique across the modes of a run.
    pub first_event: u64,
}

/// How the workload's own schedule went.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkloadStats {
    pub emitted: u64,
    /// Worst delay between an event's scheduled and actual emit time, µs.
    pub max_lateness_us: u64,
}

/// The JSON payload of one event, padded with filler to `size` bytes where it can be.
pub fn payload(event: u64, emit_us: u64, size: usize) -> String {
    let head = format!("{{\"event\":{event},\"emit_us\":{emit_us},\"pad\":\"");
    let pad = size.saturating_sub(head.len() + 2);
    format!("{head}{}\"}}", "x".repeat(pad))
}

impl Workload {
    /// Emits events from `start` until `until`, then waits for in-flight requests.
    pub async fn run(
        self,
        start: Instant,
        until: Instant,
        out: mpsc::UnboundedSender<Emitted>,
    ) -> WorkloadStats {
        tokio::time::sleep_until(start).await;
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http();
        let urls: std::sync::Arc<Vec<hyper::Uri>> = self
            .ingress
            .iter()
            .map(|a| {
                format!("http://{a}/notifications")
                    .parse()
                    .expect("socket address makes a valid URI")
            })
            .collect::<Vec<_>>()
            .into();
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let mut stats = WorkloadStats::default();
        let mut inflight = JoinSet::new();
        let mut due = Instant::now();
        let mut event = self.first_event;
        loop {
            // Exponential gaps make a Poisson process: the events a poll finds are then
            // Poisson too, which is what the empty-poll prediction e^(-λT) assumes.
            let gap: f64 = -(1.0 - rng.gen::<f64>()).ln() / self.events_per_s;
            due += Duration::from_secs_f64(gap);
            if due >= until {
                break;
            }
            tokio::time::sleep_until(due).await;
            let lateness = Instant::now().saturating_duration_since(due).as_micros() as u64;
            stats.max_lateness_us = stats.max_lateness_us.max(lateness);
            let user = rng.gen_range(self.users.clone());
            let first = rng.gen_range(0..urls.len());
            let body = Bytes::from(format!(
                "{{\"user_id\":{user},\"payload\":{}}}",
                payload(event, crate::now_us(), self.payload_bytes)
            ));
            let client = client.clone();
            let out = out.clone();
            let urls = urls.clone();
            let this_event = event;
            inflight.spawn(async move {
                // An address that refuses the connection (a killed gateway instance) is
                // skipped for the next, as a load balancer would; any other failure is final.
                let mut ok = false;
                for k in 0..urls.len() {
                    let req = hyper::Request::post(urls[(first + k) % urls.len()].clone())
                        .header(hyper::header::CONTENT_TYPE, "application/json")
                        .body(Full::new(body.clone()))
                        .expect("static request parts are valid");
                    match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
                        Ok(Ok(resp)) => ok = resp.status() == hyper::StatusCode::CREATED,
                        Ok(Err(e)) if e.is_connect() => continue,
                        _ => {}
                    }
                    break;
                }
                let _ = out.send(if ok {
                    Emitted::Sent {
                        event: this_event,
                        user,
                    }
                } else {
                    Emitted::Failed { event: this_event }
                });
            });
            stats.emitted += 1;
            event += 1;
            // Reap finished requests so the set stays small on long runs.
            while inflight.try_join_next().is_some() {}
        }
        while inflight.join_next().await.is_some() {}
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_json_of_the_requested_size() {
        let p = payload(42, 1_700_000_000_000_000, 120);
        assert_eq!(p.len(), 120);
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v["event"], 42);
        // Too small to pad: still valid JSON, just longer than asked.
        let p = payload(1, 2, 10);
        serde_json::from_str::<serde_json::Value>(&p).unwrap();
    }
}
