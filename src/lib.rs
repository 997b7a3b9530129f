//! pollpush: measure periodic HTTP polling against Redis pub/sub push, on real servers.
//!
//! The map, from the bottom up:
//! - [`services`]: Postgres and Redis, from URLs or started ephemerally from local binaries.
//! - [`procs`]: child processes (die with us), `/proc` CPU and memory readings, rlimits.
//! - [`backend`]: the systems under test: the polling REST API, the ingest API and the
//!   WebSocket push gateway; [`backend::serve`] runs them as a process.
//! - [`swarm`]: simulated users (pollers, WebSocket clients) over byte-counting sockets.
//! - [`workload`]: the event generator that calls the ingest API.
//! - [`metrics`]: latency histograms, delivery bookkeeping, database counters.
//! - [`run`]: one scenario run: services, servers, swarm, window, drain, a [`run::RunResult`].
//! - [`summary`]: the typed summary.json, each figure declared with its unit, direction,
//!   merge rule and owner.
//! - [`report`]: turns a finished result into summary.json, tables, plots and report.md.
//! - [`scenario`] and [`cli`]: what the user asked for, validated before anything starts.

pub mod app;
pub mod backend;
pub mod config;
pub mod error;
pub mod metrics;
pub mod procs;
pub mod report;
pub(crate) mod result;
pub mod run;
pub mod scenario;
pub mod services;
pub mod summary;
pub mod swarm;
pub mod token;
pub mod wire;
pub(crate) mod workload;

pub use error::UserError;

/// Microseconds since the Unix epoch: the clock every latency in pollpush is measured on.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
