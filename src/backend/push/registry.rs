//! Which sockets of a gateway instance belong to which user: the registry a connection
//! joins and leaves and every routed frame reads, split over 64 locks by user.

use super::*;

/// Subscription requests that may wait for the Redis subscriber (each a few bytes).
const SUBSCRIPTION_QUEUE: usize = 100_000;

/// The send queue of one socket, the id that tells it apart from the user's others, and
/// the token that tells its writer to give up (a slow consumer's writer may be stuck in a
/// write the client never drains). The queue is flume's: it allocates its ring only as
/// frames wait, where tokio's mpsc allocates a block of 32 slots per channel up front
/// (about 1.3 KB per idle socket).
type Socket = (u64, flume::Sender<Frame>, CancellationToken);

/// Locks the registry is split over, by user: a connection arriving, one leaving and a
/// frame being routed take the lock of their user's shard only, so the cores of a
/// multi-thread gateway seldom wait for each other (Centrifuge splits its hub 64 ways for
/// the same reason).
const SHARDS: usize = 64;

type Users = HashMap<i64, Vec<Socket>>;

/// Which sockets of this instance belong to which user.
pub struct Registry {
    next_id: AtomicU64,
    /// Users by `user mod SHARDS`; every operation on one user takes one shard's lock.
    shards: Box<[Mutex<Users>]>,
    config: PushConfig,
    stats: Arc<Stats>,
    /// Requests to the Redis subscriber; None with `fanout = none` (no Redis).
    subs: Mutex<Option<mpsc::Sender<SubOp>>>,
}

impl Registry {
    pub fn new(config: PushConfig, stats: Arc<Stats>) -> Self {
        Registry {
            next_id: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            config,
            stats,
            subs: Mutex::new(None),
        }
    }

    /// Connects the registry to a Redis subscriber; returns the other end.
    pub fn subscription_requests(&self) -> mpsc::Receiver<SubOp> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
        *self.subs.lock() = Some(tx);
        rx
    }

    /// Hands a request to the subscriber. At the bound the request is dropped: a
    /// connection waiting for its acknowledgement is then refused (503, the client
    /// retries), and a dropped unsubscribe only leaves a channel subscribed, whose
    /// messages are discarded.
    fn request(&self, op: SubOp) {
        if let Some(tx) = self.subs.lock().as_ref() {
            if tx.try_send(op).is_err() {
                tracing::warn!("subscription requests are backed up; one was dropped");
            }
        }
    }

    /// The shard that holds `user`'s sockets.
    fn shard(&self, user: i64) -> &Mutex<Users> {
        &self.shards[user.rem_euclid(SHARDS as i64) as usize]
    }

    /// Frames waiting in the send queues: in all of them, and in the fullest.
    pub fn queued_frames(&self) -> (u64, u64) {
        self.shards.iter().fold((0, 0), |acc, shard| {
            shard
                .lock()
                .values()
                .flatten()
                .map(|(_, tx, _)| tx.len() as u64)
                .fold(acc, |(sum, max), q| (sum + q, max.max(q)))
        })
    }

    /// Adds a socket of `user`: its id, the receiving end of its send queue, and a signal
    /// that fires once this instance receives the user's messages (None: at once).
    pub fn register(&self, user: i64) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = flume::bounded(self.config.send_queue);
        let (ack_tx, ack_rx) = oneshot::channel();
        let kill = CancellationToken::new();
        let mut users = self.shard(user).lock();
        users.entry(user).or_default().push((id, tx, kill.clone()));
        // Under the user's lock, so that this user's requests reach the subscriber in
        // registry order (a Want never overtakes the Unwant of the socket before it).
        let ready = match self.config.fanout {
            Fanout::None => None,
            Fanout::Broadcast => {
                self.request(SubOp::Ready(ack_tx));
                Some(ack_rx)
            }
            Fanout::PerUser | Fanout::Sharded => {
                self.request(SubOp::Want(user, ack_tx));
                Some(ack_rx)
            }
        };
        Registration {
            id,
            queue: rx,
            ready,
            kill,
        }
    }

    pub fn unregister(&self, user: i64, id: u64) {
        let mut users = self.shard(user).lock();
        if let Some(conns) = users.get_mut(&user) {
            conns.retain(|(cid, _, _)| *cid != id);
            if conns.is_empty() {
                users.remove(&user);
                self.released(user);
            }
        }
    }

    fn released(&self, user: i64) {
        if self.config.fanout.per_user_channels() {
            self.request(SubOp::Unwant(user));
        }
    }

    /// Queues `frame` to every socket of `user` on this instance; returns how many got it.
    /// A full queue closes its socket (`slow_policy = disconnect`) or loses the frame
    /// (`drop`); either way the other sockets are not held up.
    pub fn dispatch(&self, user: i64, frame: &Frame) -> usize {
        let mut users = self.shard(user).lock();
        let Some(conns) = users.get_mut(&user) else {
            return 0;
        };
        let mut sent = 0;
        let policy = self.config.slow_policy;
        let stats = &self.stats;
        conns.retain(|(_, tx, kill)| match tx.try_send(frame.clone()) {
            Ok(()) => {
                sent += 1;
                true
            }
            Err(flume::TrySendError::Full(_)) => match policy {
                SlowPolicy::Disconnect => {
                    bump(&stats.slow_disconnects);
                    kill.cancel();
                    false
                }
                SlowPolicy::Drop => {
                    bump(&stats.dropped_frames);
                    true
                }
            },
            Err(flume::TrySendError::Disconnected(_)) => false,
        });
        if conns.is_empty() {
            users.remove(&user);
            self.released(user);
        }
        sent
    }

    /// Closes every socket: after the Redis subscription was lost this instance cannot
    /// know what it missed, so its clients reconnect and catch up from Postgres.
    pub fn close_all(&self) {
        for shard in self.shards.iter() {
            for (user, _) in shard.lock().drain() {
                self.released(user);
            }
        }
    }
}

/// A registered socket: its id, its send queue, a signal that fires once this instance
/// receives the user's messages (None: at once), and the token that cancels its writer.
pub struct Registration {
    pub id: u64,
    pub queue: flume::Receiver<Frame>,
    pub ready: Option<oneshot::Receiver<()>>,
    pub kill: CancellationToken,
}
