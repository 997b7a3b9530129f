//! Sharded pub/sub on a real Redis Cluster: three masters started on loopback
//! (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster create`). A
//! sharded run delivers everything and its messages spread over the masters; a killed
//! master is survived with catch-up; a Redis that is not a cluster is refused.

use crate::common::{run_binary, summary};

const SHARDED: &str = "name = \"it-sharded\"\nduration = \"6s\"\nwarmup = \"1s\"\n\
modes = [\"push\"]\n[users]\ncount = 400\n[push]\ninstances = 2\nfanout = \"sharded\"\n\
[workload]\nevents_per_s = 100\n";

const FAULTED: &str = "name = \"it-sharded-fault\"\nduration = \"12s\"\nwarmup = \"1s\"\n\
modes = [\"push\"]\n[users]\ncount = 400\n[push]\ninstances = 2\nfanout = \"sharded\"\n\
catch_up = true\nreconnect = \"jitter\"\nreconnect_base = \"300ms\"\nreconnect_max = \"3s\"\n\
[workload]\nevents_per_s = 100\n[[faults]]\nat = \"3s\"\naction = \"kill-redis\"\ndown = \"2s\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_fanout_spreads_over_the_masters_and_survives_a_killed_one() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("sharded.toml");
    std::fs::write(&plain, SHARDED).unwrap();
    let out = dir.path().join("sharded");
    let (code, _, err) = run_binary(&plain, &out).await;
    assert_eq!(code, Some(0), "{err}");
    let s = summary(&out);
    assert_eq!(s["plan"]["redis_masters"], 3, "{}", s["plan"]);
    let m = &s["modes"]["push"];
    let e = &m["events"];
    let sent = e["sent"].as_u64().unwrap();
    assert!(sent > 300, "{e}");
    assert_eq!(e["lost"], 0, "{e}");
    assert_eq!(e["misrouted"], 0, "{e}");
    assert_eq!(e["delivered"], e["sent"], "{e}");
    // Every event is one SPUBLISH, taken by the master that owns its channel: each of the
    // three took a share (uniform users: a third each, give or take).
    let nodes = m["redis"]["nodes"].as_array().expect("redis.nodes");
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    let publishes: u64 = nodes
        .iter()
        .map(|n| n["publishes_total"].as_u64().unwrap())
        .sum();
    assert_eq!(publishes, sent, "{nodes:?}");
    for n in nodes {
        let share = n["publishes_share"].as_f64().unwrap();
        assert!((0.2..0.47).contains(&share), "{nodes:?}");
    }
    // Each gateway receives only its own users' messages: about half each, not all.
    for i in m["instances"].as_array().unwrap() {
        let got = i["received_total"].as_u64().unwrap();
        assert!(got < sent * 3 / 4 && got > sent / 4, "{i}");
    }

    // A master killed for 2 s: the gateways close their sockets, clients come back and
    // catch up from Postgres; ingest publishes what waited. Nothing lost, nothing twice.
    let faulted = dir.path().join("faulted.toml");
    std::fs::write(&faulted, FAULTED).unwrap();
    let out = dir.path().join("faulted");
    let (code, _, err) = run_binary(&faulted, &out).await;
    assert_eq!(code, Some(0), "{err}");
    let s = summary(&out);
    let m = &s["modes"]["push"];
    let e = &m["events"];
    assert_eq!(e["lost"], 0, "{e}");
    assert_eq!(e["duplicated"], 0, "{e}");
    assert!(e["sent"].as_u64().unwrap() > 600, "{e}");
    let f = &m["faults"][0];
    assert_eq!(f["fired"], true, "{f}");
    assert!(f["clients_back"].as_u64().unwrap() > 0, "{f}");
}

/// `serve --fanout sharded` on a Redis that is not a cluster is refused before it serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_is_not_a_cluster_is_refused_for_sharded_fanout() {
    let redis = pollpush::services::EphemeralRedis::start().await.unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pollpush"))
        .args(["serve", "--role", "push", "--fanout", "sharded"])
        .env("REDIS_URL", &redis.url)
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a cluster node"), "{err}");
}
