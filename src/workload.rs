//! The event generator: Poisson arrivals at `events_per_s`, each aimed at a uniformly drawn
//! user, stamped with a unique id and its emit time (µs since the epoch), and sent the way
//! "something happened" would: through pollpush's ingest API, or as the `[target.emit]`
//! table says (an HTTP request or a Redis PUBLISH built from templates).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::scenario::target::{Template, Vars};

pub use crate::metrics::events::Emitted;

/// Where events go in.
#[derive(Clone)]
pub enum Emitter {
    /// pollpush's ingest API or gateway instances: `POST /notifications` to one picked at
    /// random (the next one when it refuses the connection).
    Pollpush(Vec<std::net::SocketAddr>),
    /// A request to another system's API; any 2xx answer means it took the event.
    Http {
        addr: std::net::SocketAddr,
        method: hyper::Method,
        path: Template,
        body: Template,
    },
    /// A PUBLISH to the Redis another system listens on.
    Redis {
        conn: redis::aio::MultiplexedConnection,
        channel: Template,
        message: Template,
    },
}

pub struct Workload {
    /// Where events go in.
    pub emitter: Emitter,
    /// Targets are drawn uniformly from these users.
    pub users: std::ops::RangeInclusive<u64>,
    pub events_per_s: f64,
    pub payload_bytes: usize,
    pub seed: u64,
    /// First event id; ids are unique across the modes of a run.
    pub first_event: u64,
    /// Events in flight at most ([`MAX_IN_FLIGHT`] in a run).
    pub max_in_flight: usize,
}

/// Events in flight at most (sent, not yet answered). At the bound the generator waits for
/// an answer, which shows as lateness: the system under test is not taking events as fast
/// as the scenario asks.
pub const MAX_IN_FLIGHT: usize = 10_000;

/// An event this late (behind its schedule) counts as late: the generator, or the system
/// taking the events, did not keep up.
pub const LATE_US: u64 = 10_000;

/// How the workload's own schedule went.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct WorkloadStats {
    pub emitted: u64,
    /// Worst delay between an event's scheduled and actual emit time, µs.
    pub max_lateness_us: u64,
    /// Events emitted more than [`LATE_US`] behind their schedule.
    pub late: u64,
    /// From the workload's start to the moment its last event went out, s: emitted / span
    /// is the rate it really emitted at.
    pub span_s: f64,
    /// The most events in flight at once.
    pub in_flight_peak: u64,
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
        out: mpsc::Sender<Emitted>,
    ) -> WorkloadStats {
        tokio::time::sleep_until(start).await;
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http();
        let emitter = std::sync::Arc::new(self.emitter.clone());
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
            while inflight.len() >= self.max_in_flight.max(1) {
                inflight.join_next().await;
            }
            let lateness = Instant::now().saturating_duration_since(due).as_micros() as u64;
            stats.max_lateness_us = stats.max_lateness_us.max(lateness);
            stats.late += u64::from(lateness > LATE_US);
            // Real time, not the schedule's: a generator that fell behind took longer.
            stats.span_s = Instant::now()
                .saturating_duration_since(start)
                .as_secs_f64();
            let user = rng.gen_range(self.users.clone());
            let first: usize = rng.gen();
            let client = client.clone();
            let out = out.clone();
            let emitter = emitter.clone();
            let this_event = event;
            let payload_bytes = self.payload_bytes;
            inflight.spawn(async move {
                let emit_us = crate::now_us();
                let payload = payload(this_event, emit_us, payload_bytes);
                let ok = emit(
                    &emitter, &client, first, user, this_event, emit_us, &payload,
                )
                .await;
                let _ = out
                    .send(if ok {
                        Emitted::Sent {
                            event: this_event,
                            user,
                        }
                    } else {
                        Emitted::Failed {
                            event: this_event,
                            user,
                        }
                    })
                    .await;
            });
            stats.emitted += 1;
            stats.in_flight_peak = stats.in_flight_peak.max(inflight.len() as u64);
            event += 1;
            // Reap finished requests so the set stays small on long runs.
            while inflight.try_join_next().is_some() {}
        }
        while inflight.join_next().await.is_some() {}
        stats
    }
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// Sends one event to each of `users` at once ("notify everyone now"), ids from
/// `first_event` on, at most `in_flight` waiting for an answer; returns how many the
/// system took.
pub async fn emit_each(
    emitter: &Emitter,
    users: std::ops::RangeInclusive<u64>,
    first_event: u64,
    payload_bytes: usize,
    in_flight: usize,
) -> u64 {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let emitter = std::sync::Arc::new(emitter.clone());
    let mut set = JoinSet::new();
    let mut took = 0;
    for (k, user) in users.enumerate() {
        while set.len() >= in_flight.max(1) {
            took += u64::from(set.join_next().await.is_some_and(|r| r.unwrap_or(false)));
        }
        let (emitter, client) = (emitter.clone(), client.clone());
        let event = first_event + k as u64;
        set.spawn(async move {
            let emit_us = crate::now_us();
            let payload = payload(event, emit_us, payload_bytes);
            emit(&emitter, &client, k, user, event, emit_us, &payload).await
        });
    }
    while let Some(r) = set.join_next().await {
        took += u64::from(r.unwrap_or(false));
    }
    took
}

/// Renders an emit's two templates (path and body, or channel and message) for one event.
/// The user's token is signed only when one of them inserts it.
fn render(
    a: &Template,
    b: &Template,
    user: u64,
    event: u64,
    emit_us: u64,
    payload: &str,
) -> (String, String) {
    use crate::scenario::target::Var;
    let token = if a.uses(Var::Token) || b.uses(Var::Token) {
        crate::token::Signer::process().token(user as i64)
    } else {
        String::new()
    };
    let vars = Vars {
        user,
        token: &token,
        event,
        emit_us,
        payload,
        ..Vars::default()
    };
    (a.render(&vars), b.render(&vars))
}

/// Sends one event; true when the receiving side took it.
async fn emit(
    emitter: &Emitter,
    client: &HttpClient,
    first: usize,
    user: u64,
    event: u64,
    emit_us: u64,
    payload: &str,
) -> bool {
    let limit = Duration::from_secs(10);
    match emitter {
        Emitter::Pollpush(addrs) => {
            let body = Bytes::from(format!("{{\"user_id\":{user},\"payload\":{payload}}}"));
            // An address that refuses the connection (a killed gateway instance) is
            // skipped for the next, as a load balancer would; any other failure is final.
            for k in 0..addrs.len() {
                let addr = addrs[(first + k) % addrs.len()];
                let mut req = hyper::Request::post(format!("http://{addr}/notifications"))
                    .header(hyper::header::CONTENT_TYPE, "application/json");
                if let Some(token) = crate::token::operator_token() {
                    req = req.header(crate::token::OPERATOR_HEADER, token);
                }
                let req = req
                    .body(Full::new(body.clone()))
                    .expect("a socket address makes a valid URI");
                match tokio::time::timeout(limit, client.request(req)).await {
                    Ok(Ok(resp)) => return resp.status() == hyper::StatusCode::CREATED,
                    Ok(Err(e)) if e.is_connect() => continue,
                    _ => return false,
                }
            }
            false
        }
        Emitter::Http {
            addr,
            method,
            path,
            body,
        } => {
            let (path, body) = render(path, body, user, event, emit_us, payload);
            let req = hyper::Request::builder()
                .method(method.clone())
                .uri(format!("http://{addr}{path}"))
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)));
            let Ok(req) = req else { return false };
            matches!(
                tokio::time::timeout(limit, client.request(req)).await,
                Ok(Ok(resp)) if resp.status().is_success()
            )
        }
        Emitter::Redis {
            conn,
            channel,
            message,
        } => {
            let (channel, message) = render(channel, message, user, event, emit_us, payload);
            let mut conn = conn.clone();
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(channel).arg(message);
            let publish = cmd.query_async::<i64>(&mut conn);
            matches!(tokio::time::timeout(limit, publish).await, Ok(Ok(_)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::target::Template;

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

    /// Emits 400 events/s for 1 s to a local server that answers each request after
    /// 100 ms, with at most `max_in_flight` waiting: what it measured of itself.
    async fn against_a_slow_server(max_in_flight: usize) -> (WorkloadStats, usize) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(|| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                "ok"
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let workload = Workload {
            emitter: Emitter::Http {
                addr,
                method: hyper::Method::POST,
                path: Template::parse("/", &[]).unwrap(),
                body: Template::parse("{}", &[]).unwrap(),
            },
            users: 1..=10,
            events_per_s: 400.0,
            payload_bytes: 64,
            seed: 1,
            first_event: 1,
            max_in_flight,
        };
        let (tx, mut rx) = mpsc::channel(1024);
        let start = Instant::now();
        let stats = workload
            .run(start, start + Duration::from_secs(1), tx)
            .await;
        let mut sent = 0;
        while let Some(e) = rx.recv().await {
            sent += usize::from(matches!(e, Emitted::Sent { .. }));
        }
        (stats, sent)
    }

    #[tokio::test]
    async fn a_generator_that_cannot_keep_up_measures_that_it_fell_behind() {
        // Room for every request: about 40 in flight, on schedule, at the asked rate.
        let (free, sent) = against_a_slow_server(MAX_IN_FLIGHT).await;
        assert_eq!(sent as u64, free.emitted);
        // Under 20 % late even when other tests share the cores (about 0 % when quiet).
        assert!(free.late * 5 < free.emitted, "{free:?}");
        assert!(
            (250.0..550.0).contains(&(free.emitted as f64 / free.span_s)),
            "{free:?}"
        );
        // Ten in flight at 100 ms each hold it to 100 events/s: late, and slower.
        let (held, _) = against_a_slow_server(10).await;
        assert_eq!(held.in_flight_peak, 10, "{held:?}");
        assert!(held.late * 2 > held.emitted, "most went out late: {held:?}");
        let rate = held.emitted as f64 / held.span_s;
        assert!(rate < 150.0, "{rate} events/s with 10 in flight: {held:?}");
    }
}
