//! A throwaway Redis Cluster: `masters` nodes of `redis-server --cluster-enabled yes` on
//! loopback, one password for clients and for the nodes among themselves, joined with
//! `redis-cli --cluster create` (no replicas: each master owns a third of the slots).
//! Its URL is the first node's; a cluster client finds the others from it.

use std::time::{Duration, Instant};

use super::{find_binary, EphemeralRedis, LOOPBACK};
use crate::error::environment;

pub struct EphemeralCluster {
    pub url: String,
    pub nodes: Vec<EphemeralRedis>,
}

impl EphemeralCluster {
    pub async fn start(masters: usize) -> anyhow::Result<Self> {
        let Some(cli) = find_binary("redis-cli", &[]) else {
            return Err(environment(
                "a Redis Cluster is joined with redis-cli, which is not on PATH (Debian: apt-get install redis-tools)",
            ));
        };
        let password = super::private::random_secret();
        let mut nodes = Vec::new();
        for _ in 0..masters {
            nodes.push(EphemeralRedis::start_node(LOOPBACK, &password, true).await?);
        }
        let mut create = std::process::Command::new(&cli);
        create.arg("--cluster").arg("create");
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        // The password in the environment, not on the command line.
        create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .env("REDISCLI_AUTH", &password)
            .stdin(std::process::Stdio::null());
        let out = tokio::task::spawn_blocking(move || create.output())
            .await?
            .map_err(|e| environment(format!("cannot run redis-cli: {e}")))?;
        if !out.status.success() {
            return Err(environment(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .chain(String::from_utf8_lossy(&out.stderr).lines())
                    .filter(|l| l.contains("ERR") || l.contains("rror"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        let cluster = EphemeralCluster {
            url: nodes[0].url.clone(),
            nodes,
        };
        cluster.wait_ok(Duration::from_secs(20)).await?;
        Ok(cluster)
    }

    /// Waits until every node says `cluster_state:ok`.
    async fn wait_ok(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let mut all = true;
            for n in &self.nodes {
                all &= matches!(cluster_state(&n.url).await.as_deref(), Some("ok"));
            }
            if all {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(environment(format!(
                    "the ephemeral Redis Cluster did not reach cluster_state:ok within {within:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `cluster_state` from the node's CLUSTER INFO; None when it does not answer.
async fn cluster_state(url: &str) -> Option<String> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(1),
        client.get_multiplexed_async_connection(),
    )
    .await
    .ok()?
    .ok()?;
    let text: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut conn)
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("cluster_state:"))
        .map(|v| v.trim().to_string())
}
