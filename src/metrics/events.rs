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

/// How many reports may wait for the aggregator. Clients never wait for room: a client
/// that waited would stop reading its socket and change what it measures. A report that
/// finds the queue full is counted ([`Reports::dropped_count`]), and the run says its figures
/// are incomplete. About 48 MB when full; the aggregator only moves each report into a
/// list, so it fills only when the machine starves the aggregator's task.
pub const REPORT_QUEUE: usize = 1 << 20;

/// How many deliveries, polls, reconnects or disconnects the aggregator keeps (each list
/// apart), so that a target sending without end (a flood of duplicates) cannot take the
/// machine's memory: about 0.5 GB of deliveries or 1 GB of polls at the bound. Records
/// past it are counted as dropped, like a full queue.
pub const MAX_RECORDS: usize = 20_000_000;

/// The clients' end of the report queue: bounded, never blocking, and counting what it
/// could not take.
#[derive(Debug, Clone)]
pub struct Reports {
    tx: tokio::sync::mpsc::Sender<Report>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Reports {
    /// A queue of `capacity` reports, and its receiving end for the aggregator.
    pub fn channel(capacity: usize) -> (Reports, tokio::sync::mpsc::Receiver<Report>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        let dropped = Default::default();
        (Reports { tx, dropped }, rx)
    }

    /// Queues `report`, or counts it as dropped when the queue is full. After the
    /// aggregator has gone (the run is over) a report is of no use and is ignored.
    pub fn send(&self, report: Report) {
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) = self.tx.try_send(report) {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// How many reports found the queue full, to read after every sender is gone (holding a
    /// `Reports` would keep the aggregator waiting for more).
    pub fn dropped_count(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.dropped.clone()
    }
}
