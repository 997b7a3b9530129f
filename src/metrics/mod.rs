//! Measurement: the [`aggregator`] that turns client reports into counts and histograms,
//! [`hgrm`] output, and [`db`] counters read from Postgres itself.

pub(crate) mod aggregator;
pub mod db;
pub(crate) mod events;
pub mod hgrm;
pub mod prom;
pub mod redis_info;

use hdrhistogram::Histogram;

/// A latency histogram in µs from 1 µs to 1 hour, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}
