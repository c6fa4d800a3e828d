//! The adapter on a real Redis Cluster (3 masters, 1 replica each) with sharded Pub/Sub: the
//! whole cross-instance suite, then a master killed, hung or restarted in place while clients
//! chat, and a planned failover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::{Instance, client, fast_config, start_cluster, start_cluster_by, start_with};
use redis_adapter::{Link, RedisConfig};
use test_support::RedisCluster;

#[tokio::test]
async fn the_cross_instance_suite_passes_on_a_cluster() {
    let cluster = RedisCluster::start(3, 1).await;
    let url = cluster.cluster_url();
    crate::suite::room_broadcast_reaches_members_on_every_instance(&url).await;
    crate::suite::namespace_broadcast_and_several_rooms_reach_each_socket_once(&url).await;
    crate::suite::except_excludes_sockets_on_other_instances(&url).await;
    crate::suite::local_flag_stays_on_this_instance_and_volatile_crosses(&url).await;
    crate::suite::acks_from_sockets_on_all_instances_are_collected(&url).await;
    crate::suite::fetch_sockets_and_rooms_see_every_instance(&url).await;
    crate::suite::remote_disconnect_closes_a_socket_on_another_instance(&url).await;
    crate::suite::remote_join_and_leave_take_effect_on_another_instance(&url).await;
    crate::suite::server_count_counts_every_instance(&url).await;
}

#[tokio::test]
async fn room_channels_are_spread_over_the_shards() {
    let cluster = RedisCluster::start(3, 1).await;
    let [a, _b] = <[_; 2]>::try_from(start_cluster(&cluster.cluster_url(), "spread", 2).await)
        .ok()
        .unwrap();
    let rooms: Vec<String> = (0..30).map(|i| format!("room-{i}")).collect();
    let _member = client(&a, &rooms.iter().map(String::as_str).collect::<Vec<_>>()).await;

    let mut masters = std::collections::HashSet::new();
    for room in &rooms {
        let slot = cluster.slot_of(&format!("spread#/#r#{room}#")).await;
        masters.insert(cluster.master_for_slot(slot).await);
    }
    assert_eq!(masters.len(), 3, "30 rooms should land on all three shards");
    assert_eq!(a.state.stats().room_subscriptions, 30);
}

#[tokio::test]
async fn delivery_resumes_by_itself_after_a_master_fails_over() {
    resumes_after("failover", RedisConfig::default(), Disruption::Failover).await;
}

/// A master that hangs (or is cut off) is failed over while the connections to it stay open
/// and silent: nothing but the topology tells the subscribers to move. The topology is first
/// asked one probe interval after the connection is made; with an interval longer than a
/// failover, that first answer already names the new master, and it must count as a change
/// from the topology the subscriptions were made on (it did not: a room's subscription stayed
/// on the old master for good, 3 runs in about 130 of the failover test below).
#[tokio::test]
async fn a_master_hung_before_the_first_topology_check_is_moved_away_from_too() {
    let redis = RedisConfig {
        probe_interval: Duration::from_secs(6),
        ..RedisConfig::default()
    };
    resumes_after("hung", redis, Disruption::Freeze).await;
}

/// A master that crashes and is back within the node timeout is the same node serving the
/// same slots: no failover, no topology change; the subscriptions it held are gone with its
/// process and must be made again.
#[tokio::test]
async fn delivery_resumes_by_itself_after_a_master_restarts_in_place() {
    resumes_after("restart", RedisConfig::default(), Disruption::Restart).await;
}

/// What happens to the master serving the room's channel.
enum Disruption {
    /// Killed; its replica takes over.
    Failover,
    /// Stopped (SIGSTOP), its connections left open; its replica takes over.
    Freeze,
    /// Killed and started again at once on the same ports.
    Restart,
}

/// Two instances on a cluster, a member of room `chat` on the second and the first sending to
/// it every 20 ms; the master serving the room's channel is disrupted. Delivery resumes on its
/// own: two messages in a row sent after the cluster is whole again reach the member, within
/// the probe interval and 8 s of that.
async fn resumes_after(prefix: &str, redis: RedisConfig, disruption: Disruption) {
    // The adapter's log, shown when the test fails.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("redis_adapter=debug")
        .try_init();
    let mut cluster = RedisCluster::start(3, 1).await;
    let url = cluster.cluster_url();
    let instances =
        start_cluster_by(2, || start_with(&url, fast_config(prefix), redis.clone())).await;
    let [a, b] = <[_; 2]>::try_from(instances).ok().unwrap();
    let mut member = client(&b, &["chat"]).await;
    let slot = cluster.slot_of(&format!("{prefix}#/#r#chat#")).await;
    let old_master = cluster.master_for_slot(slot).await;
    // A room served by another master, whose member keeps what it gets.
    let mut calm = None;
    for n in 0..20 {
        let room = format!("calm-{n}");
        let room_slot = cluster.slot_of(&format!("{prefix}#/#r#{room}#")).await;
        if cluster.master_for_slot(room_slot).await != old_master {
            calm = Some(room);
            break;
        }
    }
    let calm = calm.expect("one of 20 rooms lives on another shard");
    let mut calm_member = client(&b, &[calm.as_str()]).await;
    let calm_seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keeping = calm_seen.clone();
    let calm_reader = tokio::spawn(async move {
        while let Ok(event) = calm_member.next_event(Duration::from_secs(30)).await {
            keeping.lock().unwrap().push(event.data.as_u64().unwrap());
        }
    });

    // The sender chats every 20 ms, for at most 30 s, whatever happens to Redis; `next` is
    // the number of the message it sends next.
    let io = a.io.clone();
    let next = Arc::new(AtomicU64::new(0));
    let sending = next.clone();
    let calm_room = calm.clone();
    let sender = tokio::spawn(async move {
        for seq in 0..1500u64 {
            sending.store(seq, Ordering::Relaxed);
            let _fails_during_the_failover = io.to("chat").emit("msg", &seq).await;
            let _calm_room_too = io.to(calm_room.clone()).emit("msg", &seq).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let before = member.next_event(Duration::from_secs(3)).await.unwrap();
    assert_eq!(before.name, "msg");
    let links = record_links(&b);

    let killed_at = Instant::now();
    let sent_at_kill = next.load(Ordering::Relaxed);
    match disruption {
        Disruption::Failover => cluster.kill_node(old_master),
        Disruption::Freeze => cluster.freeze_node(old_master),
        Disruption::Restart => cluster.restart_node(old_master).await,
    }
    if !matches!(disruption, Disruption::Restart) {
        let new_master = cluster.wait_for_failover(slot, old_master).await;
        assert_ne!(new_master, old_master);
    }
    let whole_again = killed_at.elapsed();

    // Two messages in a row sent after the cluster was whole reach the member; what it got
    // before (and still holds unread) does not count.
    let first_after = next.load(Ordering::Relaxed) + 1;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last_seen = None;
    let resumed = loop {
        let Ok(event) = member.next_event(deadline - Instant::now()).await else {
            break None;
        };
        let seq = event.data.as_u64().unwrap();
        if seq > first_after && last_seen.is_some_and(|last| seq == last + 1) {
            break Some(killed_at.elapsed());
        }
        last_seen = Some(seq);
    };
    sender.abort();
    calm_reader.abort();
    // The other shard's room went on meanwhile: it got messages sent while the disrupted
    // master was away (a rebuild of the whole connection would have refused them all).
    let calm_during = calm_seen
        .lock()
        .unwrap()
        .iter()
        .filter(|seq| (sent_at_kill + 1..first_after).contains(seq))
        .count();
    let window = first_after.saturating_sub(sent_at_kill + 1);
    println!("room {calm} on another shard got {calm_during} of the {window} sent meanwhile");
    if window >= 25 {
        assert!(
            calm_during > 0,
            "room {calm} on another shard got none of the {window} messages sent meanwhile"
        );
    }
    let resumed = resumed.unwrap_or_else(|| {
        panic!(
            "delivery did not resume ({whole_again:?} from the kill to a whole cluster); \
             last message seen {last_seen:?}\nsender {:?}\nmember's instance {:?}",
            a.state.stats(),
            b.state.stats()
        )
    });
    println!(
        "the cluster was whole {whole_again:?} after the kill; delivery resumed {resumed:?} \
         after it ({} reconnects); slot {slot} served by {} (was {old_master})",
        b.state.stats().reconnects,
        cluster.master_for_slot(slot).await
    );
    // The subscriptions move at the latest at the first look at the topology after the
    // cluster is whole again, and a rebuild takes seconds when a seed node hangs.
    assert!(resumed < whole_again + redis.probe_interval + Duration::from_secs(8));

    // The member's instance said its subscriptions had a gap, and a new generation once they
    // held again (for whatever a cache or membership missed meanwhile).
    let links = links.lock().unwrap().clone();
    assert!(links.iter().any(|link| !link.subscribed), "{links:?}");
    let last = links.last().unwrap();
    assert!(last.subscribed && last.generation >= 1, "{links:?}");
    if matches!(disruption, Disruption::Restart) {
        // Redis kept taking publishes: nothing was refused.
        assert!(links.iter().all(|link| link.connected), "{links:?}");
    }
}

/// Every state `instance`'s link goes through from now on.
fn record_links(instance: &Instance) -> Arc<std::sync::Mutex<Vec<Link>>> {
    let mut link = instance.state.redis().link();
    let seen = Arc::new(std::sync::Mutex::new(vec![*link.borrow_and_update()]));
    let keeping = seen.clone();
    tokio::spawn(async move {
        while link.changed().await.is_ok() {
            let state = *link.borrow_and_update();
            keeping.lock().unwrap().push(state);
        }
    });
    seen
}

/// A planned failover (`CLUSTER FAILOVER`) changes the topology once, and each instance
/// rebuilds its connection once: the probe that went out before the rebuild and was lost with
/// the old connection is not taken for a deaf subscriber (it was, in 5 runs of 6: a second
/// rebuild about 2 s later), and publishes are not refused while the connection is rebuilt.
#[tokio::test]
async fn a_planned_failover_is_not_taken_for_a_deaf_subscriber() {
    let cluster = RedisCluster::start(3, 1).await;
    let instances = start_cluster(&cluster.cluster_url(), "planned", 2).await;
    let links: Vec<_> = instances.iter().map(record_links).collect();
    let slot = cluster.slot_of("planned").await;
    let master = cluster.master_for_slot(slot).await;
    cluster.planned_failover(slot, master).await;
    // The topology is asked every 2 s, and a probe given up on after 2 s more.
    tokio::time::sleep(Duration::from_secs(7)).await;
    for instance in &instances {
        let stats = instance.state.stats();
        assert!(stats.reconnects >= 1, "the connection moved: {stats:?}");
        assert_eq!(stats.stale_subscriber, 0, "no probe rebuild: {stats:?}");
    }
    // Each rebuild is one gap in the subscriptions, during which Redis kept taking publishes
    // through the old connection (they were refused while it ran, before).
    for links in links {
        let links = links.lock().unwrap().clone();
        assert!(links.iter().all(|link| link.connected), "{links:?}");
        let gaps = links
            .windows(2)
            .filter(|pair| pair[0].subscribed && !pair[1].subscribed);
        assert_eq!(gaps.count(), 1, "{links:?}");
        assert!(links.last().unwrap().subscribed, "{links:?}");
    }
}
