//! What the polling model predicts for a plan (docs/measurement.md), written into the
//! summary beside the measurement, never instead of it.

use crate::scenario::Plan;
use crate::summary::figure::round;
use crate::summary::mode::Predicted;

/// What the polling model predicts for this plan; shown beside the measurement.
/// `header_bytes_per_poll` (measured on one probe poll before the load) is the model's one
/// input from the run: the header overhead is that many bytes times N/T.
///
/// Long polling held up to W: a user's request ends at its next event or at W, whichever
/// comes first, so a user sends λ/(1−e^(−λW)) requests a second, a share e^(−λW) of them
/// come back empty (held to the end), and latency is one round trip, which the model does
/// not predict (null).
pub fn poll(plan: &Plan, header_bytes_per_poll: Option<u64>) -> Predicted {
    let lambda = plan.events_per_s / plan.users as f64;
    let header = |rate: f64| header_bytes_per_poll.map(|b| round(b as f64 * rate, 1));
    if let Some(w) = plan.poll_long {
        let w = w.as_secs_f64();
        let empty = (-lambda * w).exp();
        let rate = plan.users as f64 * lambda / (1.0 - empty);
        return Predicted {
            requests_per_min: Some(round(rate * 60.0, 1)),
            empty_ratio: Some(round(empty, 6)),
            header_bytes_per_poll,
            header_bytes_per_s: header(rate),
            ..Predicted::default()
        };
    }
    let t = plan.poll_interval.as_secs_f64();
    let rate = plan.users as f64 / t;
    Predicted {
        requests_per_min: Some(round(rate * 60.0, 1)),
        db_queries_per_min: Some(round(poll_db_queries_per_s(plan) * 60.0, 1)),
        latency_mean_ms: Some(round(t * 1000.0 / 2.0, 3)),
        latency_max_ms: Some(round(t * 1000.0, 3)),
        empty_ratio: Some(round((-lambda * t).exp(), 6)),
        header_bytes_per_poll,
        header_bytes_per_s: header(rate),
        lost_ratio: None,
    }
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
