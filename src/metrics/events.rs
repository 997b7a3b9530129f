//! What the swarm's clients and the workload tell the aggregator, over channels: the
//! engine's raw observations, before any arithmetic.

use tokio::time::Instant;

/// What a client saw, sent to the aggregator.
#[derive(Debug, Clone)]
pub enum Report {
    /// A notification parsed by the client of `user`.
    Delivered {
        event: u64,
        user: u64,
        latency_us: u64,
    },
    /// One poll: when it was due, how late it went out, how long the server took to
    /// answer (request sent to body read; None when it failed), and how it ended.
    Poll {
        scheduled: Instant,
        lateness_us: u64,
        response_us: Option<u64>,
        outcome: PollOutcome,
        /// Bytes of the response body (0 when it failed): the rest of the poll's bytes on
        /// the wire are request line, headers and status line.
        body_bytes: u64,
    },
    /// A connection attempt failed.
    ConnectError,
    /// A message that does not carry the event's number and emit time where the target
    /// says (its first 200 bytes).
    Unreadable { sample: String },
    /// A push client's open connection ended (dropped by the server or the network, or
    /// taken offline by a fault), not by the end of the run.
    Disconnected { user: u64, at: Instant },
    /// A push client is connected again, `downtime_us` after it lost its connection.
    Reconnected {
        user: u64,
        at: Instant,
        downtime_us: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    Empty,
    NonEmpty,
    Error,
}

/// What the workload tells the aggregator.
#[derive(Debug, Clone)]
pub enum Emitted {
    /// Stored by the ingest API (and published): it must reach `user`.
    Sent { event: u64, user: u64 },
    /// The ingest API refused, failed or did not answer: not counted as sent. It may have
    /// stored the event before failing (a gateway killed mid-request), so the event may
    /// still reach its user.
    Failed { event: u64, user: u64 },
}
