//! The Redis Cluster harness itself: a 3-master/1-replica cluster comes up, the master of a
//! key's slot is SIGKILLed, its replica takes over and serves the key, with the data written
//! (and replicated) before the crash.
//!
//! Fails, never skips, when `redis-server` or `redis-cli` is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use test_support::RedisCluster;

/// A plain (non-cluster) connection to the node on `port`.
async fn node_connection(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|err| panic!("connecting to cluster node {port}: {err}"))
}

#[tokio::test]
async fn a_killed_master_fails_over_to_its_replica() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start(3, 1).await;
    eprintln!("cluster healthy after {:?}", started.elapsed());

    let url = cluster.cluster_url();
    let hosts = url
        .strip_prefix("redis+cluster://")
        .unwrap_or_else(|| panic!("unexpected cluster url {url}"));
    assert_eq!(hosts.split(',').count(), 6, "{url}");
    assert_eq!(cluster.seed_nodes().len(), 6);

    // Values of the Redis Cluster specification.
    assert_eq!(cluster.slot_of("foo").await, 12182);
    assert_eq!(cluster.slot_of("{bar}.baz").await, 5061);
    let slot = cluster.slot_of("room-a").await;
    let old_master = cluster.master_for_slot(slot).await;
    let mut conn = node_connection(old_master).await;
    let () = redis::cmd("SET")
        .arg("room-a")
        .arg("before")
        .query_async(&mut conn)
        .await
        .unwrap();
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(2000)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(acked, 1, "the replica did not acknowledge the write");
    drop(conn);

    cluster.kill_node(old_master);
    let killed = Instant::now();
    let new_master = cluster.wait_for_failover(slot, old_master).await;
    eprintln!("failover took {:?}", killed.elapsed());
    assert_ne!(new_master, old_master);
    assert_eq!(cluster.master_for_slot(slot).await, new_master);
    assert_eq!(cluster.seed_nodes().len(), 5);
    assert!(
        !cluster.cluster_url().contains(&format!(":{old_master}")),
        "the dead node is still in {}",
        cluster.cluster_url()
    );

    let mut conn = node_connection(new_master).await;
    let before: String = redis::cmd("GET")
        .arg("room-a")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(before, "before", "the replicated write was lost");
    let () = redis::cmd("SET")
        .arg("room-a")
        .arg("after")
        .query_async(&mut conn)
        .await
        .unwrap();
    let after: String = redis::cmd("GET")
        .arg("room-a")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(after, "after");
    eprintln!("whole test {:?}", started.elapsed());
}
