//! What crosses between a `pollpush serve` process and the run that reads it: the line a
//! server prints when it is ready, and the counters it serves at `GET /stats`, with the
//! arithmetic that turns two readings into a window's figures.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// What a server prints on stdout, followed by its address, once it accepts connections.
pub const READY_PREFIX: &str = "pollpush: listening on http://";

/// The one line a ready server prints.
pub fn ready_line(addr: SocketAddr) -> String {
    format!("{READY_PREFIX}{addr}")
}

/// The address in a ready line; None for any other line.
pub fn parse_ready_line(line: &str) -> Option<SocketAddr> {
    line.trim().strip_prefix(READY_PREFIX)?.parse().ok()
}

/// Declares [`StatsSnapshot`] with its counters listed once, and the arithmetic over them,
/// so that no counter can be left out of a difference or a sum.
macro_rules! stats_snapshot {
    ($( $(#[$doc:meta])* $counter:ident ),* $(,)?) => {
        /// A server process's own counters (`GET /stats`): the backend's view; the database's
        /// own count is read from Postgres by the run.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub struct StatsSnapshot {
            $( $(#[$doc])* pub $counter: u64, )*
            /// Push connections open now (WebSocket and SSE): a gauge, not a counter.
            pub connections: i64,
        }

        impl StatsSnapshot {
            /// The counters from `earlier` to this reading, the gauge as it stands now. None
            /// when a counter went backwards (the process restarted unseen): the window's
            /// figures are then unknown, never a made-up 0.
            pub fn since(&self, earlier: &StatsSnapshot) -> Option<StatsSnapshot> {
                Some(StatsSnapshot {
                    $( $counter: self.$counter.checked_sub(earlier.$counter)?, )*
                    connections: self.connections,
                })
            }

            /// Two processes' (or two lives of one process's) counters together.
            pub fn plus(&self, other: &StatsSnapshot) -> StatsSnapshot {
                StatsSnapshot {
                    $( $counter: self.$counter + other.$counter, )*
                    connections: self.connections + other.connections,
                }
            }
        }
    };
}

stats_snapshot! {
    poll_requests,
    poll_empty,
    poll_errors,
    unauthorized,
    /// SQL statements this process sent to Postgres.
    db_queries,
    ingested,
    publish_errors,
    /// Failed publishes sent later, once Redis answered.
    republished,
    /// Failed publishes dropped because the queue was full.
    publish_dropped,
    ws_accepted,
    sse_accepted,
    /// Messages received from Redis.
    redis_received,
    /// Second copies from Redis (a retried publish Redis had run after all), dropped.
    redis_duplicates,
    /// Messages routed to this instance's sockets: from Redis, or (fanout none) its ingest.
    routed,
    /// Frames queued to a socket of the target user.
    delivered,
    /// Routed messages for users with no socket on this instance.
    discarded,
    /// Connections closed because their send queue was full (slow consumers).
    slow_disconnects,
    /// Frames dropped for a full queue under `slow_policy = drop`.
    dropped_frames,
    /// Notifications sent from Postgres to (re)connecting clients that gave a last id.
    catch_up_frames,
    /// SUBSCRIBE and UNSUBSCRIBE commands sent to Redis.
    subscribe_commands,
    /// Times the Redis subscription was lost.
    redis_resets,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_counter(v: u64) -> StatsSnapshot {
        let mut json = serde_json::to_value(StatsSnapshot::default()).unwrap();
        for (_, x) in json.as_object_mut().unwrap().iter_mut() {
            *x = v.into();
        }
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn arithmetic_covers_every_counter() {
        let (a, b) = (every_counter(10), every_counter(25));
        let d = b.since(&a).unwrap();
        assert_eq!(
            d,
            StatsSnapshot {
                connections: 25,
                ..every_counter(15)
            }
        );
        assert_eq!(a.plus(&b), every_counter(35));
    }

    #[test]
    fn a_counter_that_went_backwards_is_unknown() {
        let a = StatsSnapshot {
            delivered: 9,
            ..Default::default()
        };
        let b = StatsSnapshot {
            delivered: 3,
            poll_requests: 50,
            ..Default::default()
        };
        assert_eq!(b.since(&a), None);
        // The gauge may fall freely.
        let c = StatsSnapshot {
            connections: 1,
            ..a
        };
        assert_eq!(
            c.since(&StatsSnapshot {
                connections: 7,
                ..a
            })
            .unwrap()
            .connections,
            1
        );
    }

    #[test]
    fn the_ready_line_round_trips() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            parse_ready_line(&format!("{}\n", ready_line(addr))),
            Some(addr)
        );
        assert_eq!(parse_ready_line("listening on http://127.0.0.1:1"), None);
    }
}
