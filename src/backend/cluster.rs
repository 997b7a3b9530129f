//! Redis Cluster for `--fanout sharded`: SPUBLISH and SSUBSCRIBE on per-user channels, so
//! that each message goes to the one shard (master) that owns its channel's slot rather
//! than over the whole cluster bus. redis-rs's async cluster connection routes each
//! command by slot, follows the cluster's topology, and resubscribes sharded channels by
//! itself after a reconnect; subscriptions need RESP3, whose push messages arrive on a
//! channel of ours.

use std::time::Duration;

use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::PushInfo;
use tokio::sync::mpsc;

use crate::error::input;

/// Sharded pub/sub came with Redis 7.0.
const MIN_MAJOR: u32 = 7;

/// Checks that `url` names a node of a Redis Cluster that has sharded pub/sub, with a
/// message that says what is wrong otherwise.
pub async fn check(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "Redis at {} did not answer within 5 s",
            crate::services::redact(url)
        )
    })??;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .arg("cluster")
        .query_async(&mut conn)
        .await?;
    judge(&info, &crate::services::redact(url))
}

/// What `INFO server cluster` of the node at `url` says about sharded pub/sub.
fn judge(info: &str, url: &str) -> anyhow::Result<()> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
    };
    let version = field("redis_version").unwrap_or_default();
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < MIN_MAJOR {
        return Err(input(format!(
            "--fanout sharded: Redis {version} at {url} has no sharded pub/sub (SPUBLISH, SSUBSCRIBE came with 7.0); use Redis 7 or later, or --fanout per-user"
        )));
    }
    if field("cluster_enabled").as_deref() != Some("1") {
        return Err(input(format!(
            "--fanout sharded: the Redis at {url} is not a cluster node (cluster_enabled:0); give the URL of a node of a Redis Cluster (`redis-server --cluster-enabled yes`, joined with `redis-cli --cluster create`), or use --fanout per-user"
        )));
    }
    Ok(())
}

/// A connection to the cluster `url` is a node of (the others are found from it). With
/// `pushes`, RESP3 and its push messages (sharded subscriptions) go to that channel.
pub async fn connect(
    url: &str,
    pushes: Option<mpsc::UnboundedSender<PushInfo>>,
) -> anyhow::Result<ClusterConnection> {
    let mut builder = ClusterClientBuilder::new(vec![url])
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2));
    if let Some(tx) = pushes {
        builder = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(tx);
    }
    let client = builder.build()?;
    let conn = tokio::time::timeout(Duration::from_secs(10), client.get_async_connection())
        .await
        .map_err(|_| anyhow::anyhow!("the Redis Cluster did not answer within 10 s"))??;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::judge;

    #[test]
    fn a_plain_or_old_redis_is_refused_with_what_is_wrong() {
        let ok = "# Server\r\nredis_version:7.0.15\r\n# Cluster\r\ncluster_enabled:1\r\n";
        assert!(judge(ok, "r").is_ok());
        let plain = ok.replace("cluster_enabled:1", "cluster_enabled:0");
        let e = judge(&plain, "r").unwrap_err().to_string();
        assert!(e.contains("not a cluster node"), "{e}");
        let old = ok.replace("7.0.15", "6.2.14");
        let e = judge(&old, "r").unwrap_err().to_string();
        assert!(e.contains("Redis 6.2.14") && e.contains("7.0"), "{e}");
    }
}
