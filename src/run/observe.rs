//! How the engine tells whoever watches it where it is: a step begins, a phase begins, a
//! second of a phase passed (with live rates), something looks wrong. The engine does its
//! own waiting; an [`Observer`] only shows, so a run measures the same with or without one.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Mode;
use crate::swarm::Live;

/// The phases of one mode's run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Clients connect (push) or spread their first polls over one interval (poll).
    Ramp,
    /// The measurement window.
    Window,
    /// After the window: the last deliveries arrive, then clients stop.
    Drain,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Ramp => "ramp",
            Phase::Window => "window",
            Phase::Drain => "drain",
        }
    }
}

/// One second of a phase, as the swarm saw it.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    pub elapsed: Duration,
    pub requests_per_s: u64,
    pub deliveries_per_s: u64,
    pub connections: i64,
}

/// Told of each step of a run. Every method has a quiet default.
pub trait Observer: Send + Sync {
    /// A step begins ("starting Postgres and Redis").
    fn note(&self, _msg: &str) {}
    /// Something the user should know even in a quiet run.
    fn warn(&self, msg: &str) {
        tracing::warn!("{msg}");
    }
    fn phase_started(&self, _mode: Mode, _phase: Phase, _length: Duration) {}
    fn phase_tick(&self, _mode: Mode, _phase: Phase, _tick: &Tick) {}
    fn phase_ended(&self, _mode: Mode, _phase: Phase) {}
}

/// Shows nothing; warnings go to the log. For tests and embedding.
pub struct Silent;

impl Observer for Silent {}

/// Waits until `end`, telling `observer` of the phase and, once a second, of the swarm's
/// live rates.
pub async fn wait_phase(
    observer: &dyn Observer,
    mode: Mode,
    phase: Phase,
    end: Instant,
    live: &Live,
) {
    let start = Instant::now();
    observer.phase_started(mode, phase, end.saturating_duration_since(start));
    let (mut last_req, mut last_del) = (
        live.requests.load(Ordering::Relaxed),
        live.deliveries.load(Ordering::Relaxed),
    );
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            _ = tick.tick() => {
                let (req, del) = (
                    live.requests.load(Ordering::Relaxed),
                    live.deliveries.load(Ordering::Relaxed),
                );
                observer.phase_tick(mode, phase, &Tick {
                    elapsed: start.elapsed(),
                    requests_per_s: req.saturating_sub(last_req),
                    deliveries_per_s: del.saturating_sub(last_del),
                    connections: live.connections.load(Ordering::Relaxed),
                });
                (last_req, last_del) = (req, del);
            }
        }
    }
    observer.phase_ended(mode, phase);
}
