//! Redis's own counters, from `INFO stats cpu commandstats`: commands processed, messages
//! published (PUBLISH and SPUBLISH), bytes in and out, pub/sub channels and CPU; of a
//! Redis Cluster, every master's, summed and one by one. Our readings are taken out of the
//! figures: each `INFO` is a command Redis counts, with a request and a reply on the wire,
//! and we know exactly how many we sent and how long they were.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redis::aio::MultiplexedConnection;

/// A reading of Redis's counters, with our own readings taken out.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RedisReading {
    pub commands: u64,
    /// PUBLISH and SPUBLISH commands (messages published).
    #[serde(default)]
    pub publishes: u64,
    pub net_in_bytes: u64,
    pub net_out_bytes: u64,
    /// Channels with at least one subscriber (a gauge).
    pub pubsub_channels: u64,
    /// used_cpu_user + used_cpu_sys, seconds.
    pub cpu_s: f64,
}

impl RedisReading {
    /// The counters from `earlier` to this reading, the gauge as it stands now. None when a
    /// counter went backwards (Redis restarted between the two): unknown, not 0.
    pub fn since(&self, earlier: &RedisReading) -> Option<RedisReading> {
        let cpu_s = self.cpu_s - earlier.cpu_s;
        Some(RedisReading {
            commands: self.commands.checked_sub(earlier.commands)?,
            publishes: self.publishes.checked_sub(earlier.publishes)?,
            net_in_bytes: self.net_in_bytes.checked_sub(earlier.net_in_bytes)?,
            net_out_bytes: self.net_out_bytes.checked_sub(earlier.net_out_bytes)?,
            pubsub_channels: self.pubsub_channels,
            cpu_s: (cpu_s >= 0.0).then_some(cpu_s)?,
        })
    }

    /// The sum of several nodes' readings (a cluster's masters).
    pub fn sum(readings: &[RedisReading]) -> RedisReading {
        readings
            .iter()
            .fold(RedisReading::default(), |a, r| RedisReading {
                commands: a.commands + r.commands,
                publishes: a.publishes + r.publishes,
                net_in_bytes: a.net_in_bytes + r.net_in_bytes,
                net_out_bytes: a.net_out_bytes + r.net_out_bytes,
                pubsub_channels: a.pubsub_channels + r.pubsub_channels,
                cpu_s: a.cpu_s + r.cpu_s,
            })
    }
}

/// `INFO stats cpu commandstats` as it goes on the wire (RESP array of four bulk strings).
const REQUEST_BYTES: u64 =
    "*4\r\n$4\r\nINFO\r\n$5\r\nstats\r\n$3\r\ncpu\r\n$12\r\ncommandstats\r\n".len() as u64;

/// Clones share one tally of readings per node, so the sampler's readings and the run's
/// own are all taken out.
#[derive(Clone)]
pub struct RedisCounter {
    nodes: Vec<Node>,
}

#[derive(Clone)]
struct Node {
    conn: MultiplexedConnection,
    tally: Arc<Tally>,
}

#[derive(Default)]
struct Tally {
    readings: AtomicU64,
    /// Bytes of the replies to our readings so far.
    reply_bytes: AtomicU64,
}

impl RedisCounter {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_all(&[url.to_string()]).await
    }

    /// Every node of a cluster (its masters), each read at each reading.
    pub async fn connect_all(urls: &[String]) -> anyhow::Result<Self> {
        let mut nodes = Vec::new();
        for url in urls {
            let client = redis::Client::open(url.as_str())?;
            let conn = client.get_multiplexed_async_connection().await?;
            nodes.push(Node {
                conn,
                tally: Arc::default(),
            });
        }
        Ok(RedisCounter { nodes })
    }

    /// Every node's counters summed.
    pub async fn read(&mut self) -> anyhow::Result<RedisReading> {
        Ok(RedisReading::sum(&self.read_each().await?))
    }

    /// Each node's counters, in the order the nodes were given.
    pub async fn read_each(&mut self) -> anyhow::Result<Vec<RedisReading>> {
        let mut out = Vec::with_capacity(self.nodes.len());
        for node in &mut self.nodes {
            out.push(node.read().await?);
        }
        Ok(out)
    }
}

impl Node {
    async fn read(&mut self) -> anyhow::Result<RedisReading> {
        // Replies to earlier readings are already in Redis's output count; this reading's
        // own request is already in its input count, its reply not yet in the output.
        let earlier_replies = self.tally.reply_bytes.load(Ordering::Relaxed);
        let earlier = self.tally.readings.fetch_add(1, Ordering::Relaxed);
        let text: String = redis::cmd("INFO")
            .arg("stats")
            .arg("cpu")
            .arg("commandstats")
            .query_async(&mut self.conn)
            .await?;
        let len = text.len() as u64;
        // A bulk string: `$<len>\r\n<data>\r\n`.
        let wire = len + len.to_string().len() as u64 + 5;
        self.tally.reply_bytes.fetch_add(wire, Ordering::Relaxed);
        let raw = parse(&text)?;
        Ok(RedisReading {
            // INFO is counted once it has run: the earlier readings are in, this one not.
            commands: raw.commands.saturating_sub(earlier),
            net_in_bytes: raw
                .net_in_bytes
                .saturating_sub((earlier + 1) * REQUEST_BYTES),
            net_out_bytes: raw.net_out_bytes.saturating_sub(earlier_replies),
            ..raw
        })
    }
}

/// The fields we use from an INFO reply; an error naming the first one that is missing or
/// not a number (a reading that could not be taken is unknown, never 0).
pub fn parse(text: &str) -> anyhow::Result<RedisReading> {
    let fields: std::collections::HashMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.trim().split_once(':'))
        .collect();
    let get = |k: &str| {
        fields
            .get(k)
            .ok_or_else(|| anyhow::anyhow!("Redis INFO has no {k}"))
    };
    let int = |k: &str| -> anyhow::Result<u64> {
        get(k)?
            .parse()
            .map_err(|_| anyhow::anyhow!("Redis INFO {k} is not a number"))
    };
    let float = |k: &str| -> anyhow::Result<f64> {
        get(k)?
            .parse()
            .map_err(|_| anyhow::anyhow!("Redis INFO {k} is not a number"))
    };
    // `cmdstat_publish:calls=12,usec=...`: absent until the command first ran.
    let calls = |k: &str| -> u64 {
        fields
            .get(k)
            .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("calls=")))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Ok(RedisReading {
        commands: int("total_commands_processed")?,
        publishes: calls("cmdstat_publish") + calls("cmdstat_spublish"),
        net_in_bytes: int("total_net_input_bytes")?,
        net_out_bytes: int("total_net_output_bytes")?,
        // Sharded channels (Redis 7) are counted apart from the others.
        pubsub_channels: int("pubsub_channels")?
            + fields
                .get("pubsubshard_channels")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0),
        cpu_s: float("used_cpu_user")? + float("used_cpu_sys")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_read() {
        let text = "# Stats\r\ntotal_commands_processed:42\r\ntotal_net_input_bytes:1000\r\n\
                    total_net_output_bytes:2000\r\npubsub_channels:3\r\n\r\n# CPU\r\n\
                    used_cpu_sys:1.5\r\nused_cpu_user:2.25\r\nused_cpu_sys_children:9\r\n\
                    # Commandstats\r\ncmdstat_publish:calls=7,usec=70,usec_per_call=10.00\r\n\
                    cmdstat_spublish:calls=5,usec=50,usec_per_call=10.00\r\n";
        let r = parse(text).unwrap();
        assert_eq!(
            (
                r.commands,
                r.net_in_bytes,
                r.net_out_bytes,
                r.pubsub_channels
            ),
            (42, 1000, 2000, 3)
        );
        assert!((r.cpu_s - 3.75).abs() < 1e-9);
        assert_eq!(r.publishes, 12);
        let two = RedisReading::sum(&[r, r]);
        assert_eq!((two.commands, two.publishes), (84, 24));
        // A missing or garbled field makes the reading unknown, not a measured-looking 0.
        let missing = text.replace("pubsub_channels:3\r\n", "");
        assert!(parse(&missing)
            .unwrap_err()
            .to_string()
            .contains("pubsub_channels"));
        let garbled = text.replace("used_cpu_sys:1.5", "used_cpu_sys:n/a");
        assert!(parse(&garbled).is_err());
    }
}
