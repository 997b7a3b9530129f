//! Collects what clients and the workload report, away from them, and reconciles it at the
//! end: which events reached their user, how late, which were lost or duplicated, and
//! whether any reached someone else.

use std::collections::{HashMap, HashSet};

use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::events::{Emitted, PollOutcome, Report, MAX_RECORDS};
use super::latency_histogram;

#[derive(Debug, Clone, Copy)]
struct PollRecord {
    body_bytes: u64,
    scheduled: Instant,
    lateness_us: u64,
    response_us: Option<u64>,
    outcome: PollOutcome,
}

/// Everything the aggregator saw, ready to be cut to a window.
#[derive(Debug, Default)]
pub struct Collected {
    sent: HashMap<u64, u64>,
    /// Events whose send failed, by event, with their user.
    failed: HashMap<u64, u64>,
    /// (event, user, latency µs) in arrival order.
    deliveries: Vec<(u64, u64, u64)>,
    polls: Vec<PollRecord>,
    pub connect_errors: u64,
    /// Messages that did not carry a notification's fields, and the first of them.
    unreadable: u64,
    unreadable_sample: Option<String>,
    /// (user, when connected again, downtime µs).
    reconnects: Vec<(u64, Instant, u64)>,
    /// (user, when its open connection ended).
    disconnects: Vec<(u64, Instant)>,
    /// Records past [`MAX_RECORDS`], not kept.
    overflow: u64,
}

/// What one fault did to the clients it took down.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultOutcome {
    pub clients_dropped: u64,
    /// Clients connected again after the fault.
    pub clients_back: u64,
    /// From the fault until the last of them was back; None if some never came back.
    pub reconnect_s: Option<f64>,
    /// Events for those clients that never reached them, or reached them twice.
    pub lost: u64,
    pub duplicated: u64,
    /// Polls sent after the fault that failed.
    pub poll_errors: u64,
    /// From the service being back until the last failed poll was sent: how long pollers
    /// took to recover (0 when none failed after it was back); None without a `back` time.
    pub poll_recovered_s: Option<f64>,
    /// The highest rate at which push clients connected again after the fault, per
    /// second, over 100 ms: the size of the reconnect storm.
    pub reconnects_peak_per_s: u64,
}

/// How many of the first lost events an [`Outcome`] names.
const LOST_FIRST: usize = 20;

/// The reconciled figures of one mode. Serialized (histograms losslessly) in a shard's
/// `shard.json`, for `merge`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub sent: u64,
    pub send_failed: u64,
    /// Events whose send was reported failed that reached their own user anyway (stored
    /// before the failure, delivered later, e.g. by catch-up). Neither sent nor misrouted.
    pub send_failed_delivered: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Deliveries to a user the event was not for. Must be 0, always.
    pub misrouted: u64,
    /// The first lost events (event number, user), lowest first: where to start looking.
    pub lost_first: Vec<(u64, u64)>,
    /// Latency of the first delivery of each event to its user, µs.
    #[serde(with = "super::hgrm::base64_v2")]
    pub latency: Histogram<u64>,
    pub polls: u64,
    pub polls_empty: u64,
    pub polls_error: u64,
    /// Response body bytes of the window's polls.
    pub poll_body_bytes: u64,
    /// How late polls went out against their schedule, µs.
    #[serde(with = "super::hgrm::base64_v2")]
    pub poll_lateness: Histogram<u64>,
    /// Round trip of each successful poll, request sent to body read, µs.
    #[serde(with = "super::hgrm::base64_v2")]
    pub poll_response: Histogram<u64>,
    pub connect_errors: u64,
    /// Messages from the target that did not carry a notification's event number and emit
    /// time where the scenario says (a wrong `[target.notification]`, or another format).
    pub unreadable: u64,
    /// The first such message (up to 200 bytes), for the warning.
    pub unreadable_sample: Option<String>,
    /// Push clients that connected again after losing their connection.
    pub reconnects: u64,
    /// Time from losing a connection to having one again, µs.
    #[serde(with = "super::hgrm::base64_v2")]
    pub reconnect_downtime: Histogram<u64>,
    /// Events aimed at slow clients (which stop reading): counted apart, since losing them
    /// is the point.
    pub slow_sent: u64,
    pub slow_delivered: u64,
    /// Reports the aggregator could not keep (its queue was full, or a list at
    /// [`MAX_RECORDS`]): when not 0, the figures above are incomplete. The collector counts
    /// its own; the run adds those its queue refused.
    pub reports_dropped: u64,
}

/// Adds `item` to `list` while it holds fewer than `limit`; counts it in `overflow` after.
fn keep<T>(list: &mut Vec<T>, overflow: &mut u64, item: T, limit: usize) {
    if list.len() < limit {
        list.push(item);
    } else {
        *overflow += 1;
    }
}

/// Reads both channels until every sender is gone. Each list keeps at most
/// [`MAX_RECORDS`]; what comes past it is counted in `overflow`.
pub async fn collect(
    mut reports: mpsc::Receiver<Report>,
    mut emitted: mpsc::Receiver<Emitted>,
) -> Collected {
    let mut c = Collected::default();
    let (mut reports_open, mut emitted_open) = (true, true);
    while reports_open || emitted_open {
        tokio::select! {
            r = reports.recv(), if reports_open => match r {
                Some(Report::Delivered { event, user, latency_us }) => {
                    keep(&mut c.deliveries, &mut c.overflow, (event, user, latency_us), MAX_RECORDS)
                }
                Some(Report::Poll { scheduled, lateness_us, response_us, outcome, body_bytes }) => {
                    let poll = PollRecord { scheduled, lateness_us, response_us, outcome, body_bytes };
                    keep(&mut c.polls, &mut c.overflow, poll, MAX_RECORDS)
                }
                Some(Report::ConnectError) => c.connect_errors += 1,
                Some(Report::Unreadable { sample }) => {
                    c.unreadable += 1;
                    c.unreadable_sample.get_or_insert(sample);
                }
                Some(Report::Reconnected { user, at, downtime_us }) => {
                    keep(&mut c.reconnects, &mut c.overflow, (user, at, downtime_us), MAX_RECORDS)
                }
                Some(Report::Disconnected { user, at }) => {
                    keep(&mut c.disconnects, &mut c.overflow, (user, at), MAX_RECORDS)
                }
                None => reports_open = false,
            },
            e = emitted.recv(), if emitted_open => match e {
                Some(Emitted::Sent { event, user }) => { c.sent.insert(event, user); }
                Some(Emitted::Failed { event, user }) => { c.failed.insert(event, user); }
                None => emitted_open = false,
            },
        }
    }
    c
}

impl Outcome {
    /// Nothing sent, nothing measured.
    pub fn empty() -> Outcome {
        let now = Instant::now();
        Collected::default().outcome(now, now, 0)
    }

    /// Adds what another shard of the same run measured (its own users, its own events):
    /// counts summed, histograms added, never percentiles averaged.
    pub fn absorb(&mut self, o: &Outcome) -> anyhow::Result<()> {
        for (h, other) in [
            (&mut self.latency, &o.latency),
            (&mut self.poll_lateness, &o.poll_lateness),
            (&mut self.poll_response, &o.poll_response),
            (&mut self.reconnect_downtime, &o.reconnect_downtime),
        ] {
            h.add(other)
                .map_err(|e| anyhow::anyhow!("a shard's histogram does not fit: {e:?}"))?;
        }
        for (a, b) in [
            (&mut self.sent, o.sent),
            (&mut self.send_failed, o.send_failed),
            (&mut self.send_failed_delivered, o.send_failed_delivered),
            (&mut self.delivered, o.delivered),
            (&mut self.lost, o.lost),
            (&mut self.duplicated, o.duplicated),
            (&mut self.misrouted, o.misrouted),
            (&mut self.polls, o.polls),
            (&mut self.polls_empty, o.polls_empty),
            (&mut self.polls_error, o.polls_error),
            (&mut self.poll_body_bytes, o.poll_body_bytes),
            (&mut self.connect_errors, o.connect_errors),
            (&mut self.unreadable, o.unreadable),
            (&mut self.reconnects, o.reconnects),
            (&mut self.slow_sent, o.slow_sent),
            (&mut self.slow_delivered, o.slow_delivered),
            (&mut self.reports_dropped, o.reports_dropped),
        ] {
            *a += b;
        }
        self.lost_first.extend_from_slice(&o.lost_first);
        self.lost_first.sort_unstable();
        self.lost_first.truncate(LOST_FIRST);
        if self.unreadable_sample.is_none() {
            self.unreadable_sample.clone_from(&o.unreadable_sample);
        }
        Ok(())
    }
}

impl Collected {
    /// How many times each sent event reached its user; deliveries to anyone else counted
    /// apart.
    fn reached(&self) -> (HashMap<u64, u32>, u64) {
        let mut seen: HashMap<u64, u32> = HashMap::new();
        let mut misrouted = 0;
        for &(event, user, _) in &self.deliveries {
            match self.sent.get(&event) {
                Some(&target) if target == user => *seen.entry(event).or_insert(0) += 1,
                _ if self.failed.get(&event) == Some(&user) => {}
                _ => misrouted += 1,
            }
        }
        (seen, misrouted)
    }

    /// What a fault at `at` aimed at `users` did to them: the clients it took down are
    /// those (of `users`) whose open connection ended after it, as the clients saw it, not
    /// as the scenario planned it. With `None` (a fault on a shared service, which hits
    /// whoever it hits) any client's counts, and lost and duplicated count every event of
    /// the window.
    pub fn fault(
        &self,
        users: Option<&HashSet<u64>>,
        at: Instant,
        service_back: Option<Instant>,
    ) -> FaultOutcome {
        let hit = |user: &u64| users.is_none_or(|u| u.contains(user));
        let dropped: HashSet<u64> = self
            .disconnects
            .iter()
            .filter(|&&(user, when)| when >= at && hit(&user))
            .map(|&(user, _)| user)
            .collect();
        let mut back: HashMap<u64, Instant> = HashMap::new();
        for &(user, when, _) in &self.reconnects {
            if when >= at && dropped.contains(&user) {
                back.entry(user).or_insert(when);
            }
        }
        let (seen, _) = self.reached();
        let (mut lost, mut duplicated) = (0, 0);
        for (event, user) in &self.sent {
            if hit(user) {
                match seen.get(event) {
                    None => lost += 1,
                    Some(&n) => duplicated += (n - 1) as u64,
                }
            }
        }
        let sent_at =
            |p: &PollRecord| p.scheduled + std::time::Duration::from_micros(p.lateness_us);
        let failed: Vec<Instant> = self
            .polls
            .iter()
            .filter(|p| p.outcome == PollOutcome::Error && sent_at(p) >= at)
            .map(sent_at)
            .collect();
        let mut per_tenth: HashMap<u64, u64> = HashMap::new();
        for &(_, when, _) in &self.reconnects {
            if when >= at {
                let tenth = when.duration_since(at).as_millis() as u64 / 100;
                *per_tenth.entry(tenth).or_default() += 1;
            }
        }
        FaultOutcome {
            reconnects_peak_per_s: per_tenth.values().copied().max().unwrap_or(0) * 10,
            poll_errors: failed.len() as u64,
            poll_recovered_s: service_back.map(|b| {
                failed
                    .iter()
                    .map(|t| t.saturating_duration_since(b).as_secs_f64())
                    .fold(0.0, f64::max)
            }),
            clients_dropped: dropped.len() as u64,
            clients_back: back.len() as u64,
            reconnect_s: (back.len() == dropped.len()).then(|| {
                back.values()
                    .map(|w| w.duration_since(at).as_secs_f64())
                    .fold(0.0, f64::max)
            }),
            lost,
            duplicated,
        }
    }

    /// Reconciles deliveries against sent events; counts polls scheduled in [start, end).
    /// Events for users 1..=`slow_users` (clients that stop reading) are counted apart.
    pub fn outcome(&self, start: Instant, end: Instant, slow_users: u64) -> Outcome {
        let mut latency = latency_histogram();
        let mut seen: HashMap<u64, u32> = HashMap::new();
        let mut misrouted = 0;
        let (mut slow_sent, mut slow_delivered) = (0, 0);
        let mut slow_seen = HashSet::new();
        let mut failed_delivered = HashSet::new();
        for &(event, user, latency_us) in &self.deliveries {
            match self.sent.get(&event) {
                Some(&target) if target == user && user <= slow_users => {
                    slow_seen.insert(event);
                }
                Some(&target) if target == user => {
                    let n = seen.entry(event).or_insert(0);
                    if *n == 0 {
                        latency.saturating_record(latency_us.max(1));
                    }
                    *n += 1;
                }
                // A send that failed after the event was stored: it reached its own user.
                _ if self.failed.get(&event) == Some(&user) => {
                    failed_delivered.insert(event);
                }
                // Delivered to the wrong user, or an event nobody sent: both are wrong.
                _ => misrouted += 1,
            }
        }
        let mut lost_first: Vec<(u64, u64)> = self
            .sent
            .iter()
            .filter(|(e, &u)| u > slow_users && !seen.contains_key(e))
            .map(|(&e, &u)| (e, u))
            .collect();
        lost_first.sort_unstable();
        lost_first.truncate(LOST_FIRST);
        let delivered = seen.len() as u64;
        let duplicated = seen.values().map(|&n| (n - 1) as u64).sum();
        let mut poll_lateness = latency_histogram();
        let mut poll_response = latency_histogram();
        let (mut polls, mut empty, mut errors, mut body_bytes) = (0, 0, 0, 0);
        for p in &self.polls {
            if p.scheduled < start || p.scheduled >= end {
                continue;
            }
            polls += 1;
            body_bytes += p.body_bytes;
            poll_lateness.saturating_record(p.lateness_us.max(1));
            if let Some(r) = p.response_us {
                poll_response.saturating_record(r.max(1));
            }
            match p.outcome {
                PollOutcome::Empty => empty += 1,
                PollOutcome::Error => errors += 1,
                PollOutcome::NonEmpty => {}
            }
        }
        for &user in self.sent.values() {
            if user <= slow_users {
                slow_sent += 1;
            }
        }
        slow_delivered += slow_seen.len() as u64;
        let sent = self.sent.len() as u64 - slow_sent;
        let mut reconnect_downtime = latency_histogram();
        for &(_, _, d) in &self.reconnects {
            reconnect_downtime.saturating_record(d.max(1));
        }
        Outcome {
            sent,
            send_failed: self.failed.len() as u64,
            send_failed_delivered: failed_delivered.len() as u64,
            delivered,
            lost: sent - delivered,
            duplicated,
            misrouted,
            lost_first,
            latency,
            polls,
            polls_empty: empty,
            polls_error: errors,
            poll_body_bytes: body_bytes,
            poll_lateness,
            poll_response,
            connect_errors: self.connect_errors,
            unreadable: self.unreadable,
            unreadable_sample: self.unreadable_sample.clone(),
            reconnects: self.reconnects.len() as u64,
            reconnect_downtime,
            slow_sent,
            slow_delivered,
            reports_dropped: self.overflow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::events::Reports;
    use std::time::Duration;

    #[test]
    fn a_fault_counts_its_storm_its_failed_polls_and_the_recovery() {
        let at = Instant::now();
        let ms = |m: u64| at + Duration::from_millis(m);
        let mut c = Collected::default();
        // 35 clients lose their connection just after the fault (one lost it before); 30
        // are back within 100 ms, 5 more spread over a second.
        c.disconnects.push((99, at - Duration::from_millis(5)));
        c.reconnects.push((99, at - Duration::from_millis(1), 1));
        for u in 0..35 {
            c.disconnects.push((u, ms(1 + u)));
        }
        for u in 0..30 {
            c.reconnects.push((u, ms(250 + u), 1));
        }
        for u in 30..35 {
            c.reconnects.push((u, ms(400 + 200 * u), 1));
        }
        // Polls fail until 1.5 s after the fault; the service was back at 1 s.
        for (m, outcome) in [
            (0, PollOutcome::Error),
            (1200, PollOutcome::Error),
            (1500, PollOutcome::Error),
            (1600, PollOutcome::Empty),
        ] {
            c.polls.push(PollRecord {
                body_bytes: 0,
                scheduled: ms(m),
                lateness_us: 0,
                response_us: None,
                outcome,
            });
        }
        let f = c.fault(None, at, Some(ms(1000)));
        assert_eq!(f.reconnects_peak_per_s, 300);
        assert_eq!((f.clients_dropped, f.clients_back), (35, 35));
        assert_eq!(f.poll_errors, 3);
        assert!((f.poll_recovered_s.unwrap() - 0.5).abs() < 1e-3);
        // A client fault (no service to come back) has no recovery time.
        assert_eq!(c.fault(None, at, None).poll_recovered_s, None);
        // A fault aimed at clients counts those whose connection really ended: of three
        // aimed at, one (user 50) never lost its connection, so it was not taken down.
        let aimed: HashSet<u64> = [3, 4, 50].into_iter().collect();
        let f = c.fault(Some(&aimed), at, None);
        assert_eq!((f.clients_dropped, f.clients_back), (2, 2));
    }

    #[tokio::test]
    async fn a_full_queue_and_a_full_list_are_counted_never_waited_for() {
        let (tx, mut rx) = Reports::channel(2);
        let dropped = tx.dropped_count();
        for event in 0..5 {
            tx.send(Report::Delivered {
                event,
                user: 1,
                latency_us: 1,
            });
        }
        assert_eq!(dropped.load(std::sync::atomic::Ordering::Relaxed), 3);
        assert!(rx.recv().await.is_some() && rx.recv().await.is_some());
        // Once the aggregator has gone, a report is ignored, not counted as dropped.
        drop(rx);
        tx.send(Report::ConnectError);
        assert_eq!(dropped.load(std::sync::atomic::Ordering::Relaxed), 3);
        let (mut list, mut overflow) = (Vec::new(), 0);
        for i in 0..5 {
            keep(&mut list, &mut overflow, i, 3);
        }
        assert_eq!((list, overflow), (vec![0, 1, 2], 2));
    }

    #[tokio::test]
    async fn reconciles_lost_duplicated_and_misrouted() {
        let (rtx, rrx) = Reports::channel(64);
        let (etx, erx) = mpsc::channel(64);
        let t0 = Instant::now();
        // Event 1 to user 10 arrives twice, event 2 to user 20 never, event 3 reaches user 31
        // instead of 30. A delivery may arrive before the workload reports the event as sent.
        rtx.send(Report::Delivered {
            event: 1,
            user: 10,
            latency_us: 500,
        });
        etx.send(Emitted::Sent { event: 1, user: 10 })
            .await
            .unwrap();
        etx.send(Emitted::Sent { event: 2, user: 20 })
            .await
            .unwrap();
        etx.send(Emitted::Sent { event: 3, user: 30 })
            .await
            .unwrap();
        // Event 4's send failed, yet it was stored and reached its own user: not misrouted.
        etx.send(Emitted::Failed { event: 4, user: 40 })
            .await
            .unwrap();
        rtx.send(Report::Delivered {
            event: 4,
            user: 40,
            latency_us: 100,
        });
        rtx.send(Report::Delivered {
            event: 1,
            user: 10,
            latency_us: 900,
        });
        rtx.send(Report::Delivered {
            event: 3,
            user: 31,
            latency_us: 100,
        });
        for (i, outcome) in [
            PollOutcome::Empty,
            PollOutcome::NonEmpty,
            PollOutcome::Error,
            PollOutcome::Empty,
        ]
        .into_iter()
        .enumerate()
        {
            rtx.send(Report::Poll {
                scheduled: t0 + Duration::from_secs(i as u64),
                lateness_us: 10,
                response_us: (outcome != PollOutcome::Error).then_some(2_000),
                outcome,
                body_bytes: 2,
            });
        }
        drop((rtx, etx));
        let o = collect(rrx, erx)
            .await
            .outcome(t0, t0 + Duration::from_millis(2500), 0);
        assert_eq!(
            (
                o.sent,
                o.send_failed,
                o.delivered,
                o.lost,
                o.duplicated,
                o.misrouted
            ),
            (3, 1, 1, 2, 1, 1)
        );
        assert_eq!(o.send_failed_delivered, 1);
        assert_eq!(o.latency.len(), 1);
        assert_eq!(o.latency.max(), 500);
        // Only the polls scheduled inside the window count.
        assert_eq!((o.polls, o.polls_empty, o.polls_error), (3, 1, 1));
        assert_eq!(
            o.poll_response.len(),
            2,
            "failed polls have no response time"
        );
    }
}
