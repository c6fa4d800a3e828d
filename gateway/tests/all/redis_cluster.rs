//! Gateways on a real Redis Cluster (3 masters, 1 replica each): logins, sessions, chat and
//! direct messages across instances, the official Redis emitter's room and namespace emits
//! (a plain `PUBLISH`, which a cluster forwards to every node), then the master of a chat
//! room's shard killed, or restarted in place, while the room chats: its members miss nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use crate::support::{ack, connect_user, join, next_named};
use serde_json::json;
use socketio_client::SocketClient;
use test_support::RedisCluster;

#[tokio::test]
async fn chat_and_direct_messages_cross_instances_on_a_cluster() {
    let cluster = RedisCluster::start(3, 1).await;
    let [a, b] = <[_; 2]>::try_from(
        crate::support::cluster(2, &cluster.cluster_url(), |config| {
            config.emitter_key = Some("socket.io".to_owned());
        })
        .await,
    )
    .ok()
    .unwrap();
    let mut alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    for room in ["lobby", "news", "random"] {
        join(&alice, room).await;
        join(&bob, room).await;
    }

    for room in ["lobby", "news", "random"] {
        let reply = ack(&alice, "message", json!({"room": room, "text": room})).await;
        assert!(reply["id"].is_string(), "{reply}");
        assert_eq!(next_named(&mut bob, "message").await.data["text"], room);
        assert_eq!(next_named(&mut alice, "message").await.data["text"], room);
    }
    let reply = ack(&bob, "dm", json!({"to": "alice", "text": "psst"})).await;
    assert!(reply["id"].is_string(), "{reply}");
    assert_eq!(next_named(&mut alice, "dm").await.data["text"], "psst");

    let members = ack(&alice, "members", json!({"room": "lobby"})).await;
    let mut names: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|member| member["user"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"], "{members}");

    // The streams live in the tenant's slot, with its rate counters (one script a message).
    let first = ack(&bob, "history", json!({"room": "lobby"})).await;
    assert_eq!(first["messages"][0]["text"], "lobby", "{first}");
    let since = first["messages"][0]["id"].clone();
    for text in ["one", "two", "three"] {
        let reply = ack(&alice, "message", json!({"room": "lobby", "text": text})).await;
        assert!(reply["id"].is_string(), "{reply}");
    }
    let mut carol = connect_user(b.url(), "carol").await;
    let rejoined = ack(&carol, "join", json!({"room": "lobby", "since": since})).await;
    assert_eq!(
        rejoined,
        json!({"ok": true, "recovered": true, "replayed": 3})
    );
    for text in ["one", "two", "three"] {
        assert_eq!(next_named(&mut carol, "message").await.data["text"], text);
    }
    let conversation = ack(&alice, "history", json!({"with": "bob"})).await;
    assert_eq!(
        conversation["messages"][0]["text"], "psst",
        "{conversation}"
    );

    // The emitter publishes on one node; the instances hear it through plain subscriptions.
    let mut dave = connect_user(a.url(), "dave").await;
    join(&dave, "lobby").await;
    let node = &cluster.seed_nodes()[0];
    emit_once(node, Some("t:acme:r:lobby"), "news", json!({"n": 1})).await;
    emit_once(node, None, "news", json!({"n": 2})).await;
    for client in [&mut dave, &mut carol] {
        assert_eq!(next_named(client, "news").await.data, json!({"n": 1}));
        assert_eq!(next_named(client, "news").await.data, json!({"n": 2}));
    }
}

/// One emit of `event` with `data` to `room` (the namespace when `None`) through the official
/// emitter (`tests/node/emit.mjs`) connected to the Redis node `node`.
async fn emit_once(node: &str, room: Option<&str>, event: &str, data: serde_json::Value) {
    let mut command = tokio::process::Command::new("node");
    command
        .arg("emit.mjs")
        .args(["--redis-url", node, "--event", event])
        .arg(format!("--data={data}"))
        .current_dir(crate::support::node_client_dir());
    if let Some(room) = room {
        command.args(["--room", room]);
    }
    let output = command.output().await.unwrap_or_else(|err| {
        panic!("cannot run node ({err}): install the Debian package `nodejs`")
    });
    assert!(
        output.status.success(),
        "emit.mjs failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The master of a room's channel killed while the room chats: every line accepted reaches the
/// member on the other instance once. Without the mend, the one or two published to the new
/// master before his instance's subscriptions moved were lost for him (2 runs of 2).
#[tokio::test]
async fn chat_resumes_by_itself_after_the_rooms_master_fails_over() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let [a, b] =
        <[_; 2]>::try_from(crate::support::cluster(2, &cluster.cluster_url(), |_| {}).await)
            .ok()
            .unwrap();
    let alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    join(&alice, "lobby").await;
    join(&bob, "lobby").await;
    let slot = cluster.slot_of("socket.io#/#r#t:acme:r:lobby#").await;
    let old_master = cluster.master_for_slot(slot).await;

    // Alice chats every 50 ms for 6 s through the kill and the failover; a line is accepted
    // (stored, or spooled) or refused with an error (the cluster unavailable).
    let sender = tokio::spawn(async move {
        let started = Instant::now();
        let mut accepted = BTreeSet::new();
        let mut n = 0;
        while started.elapsed() < Duration::from_secs(6) {
            let text = format!("line-{n}");
            n += 1;
            let reply = ack(&alice, "message", json!({"room": "lobby", "text": text})).await;
            assert!(
                reply["id"].is_string() || reply["pending"] == true || reply["error"].is_string(),
                "{reply}"
            );
            if reply["error"].is_null() {
                accepted.insert(reply["key"].as_str().unwrap().to_owned());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (accepted, n)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = Instant::now();
    cluster.kill_node(old_master);
    cluster.wait_for_failover(slot, old_master).await;
    let failed_over = killed_at.elapsed();
    let (accepted, sent) = sender.await.unwrap();

    // Every accepted line reaches Bob once: those his instance missed while its
    // subscriptions moved too (mended from the room's stream), and the spooled ones.
    let (got, complete) = keys_received(&mut bob, &accepted, killed_at).await;
    let missed: Vec<_> = accepted.iter().filter(|key| !got.contains(key)).collect();
    assert!(missed.is_empty(), "Bob missed {missed:?} of {accepted:?}");
    let unique: BTreeSet<_> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a line twice: {got:?}");
    println!(
        "failover took {failed_over:?}; {} of {sent} lines accepted, Bob had them all once \
         {complete:?} after the kill",
        accepted.len(),
        complete = complete.unwrap_or_default()
    );
}

/// A master restarted in place forgets its subscribers: an instance misses what the others
/// publish to its rooms on that shard until it has subscribed again. Once it has, it sends its
/// members what they missed, from the rooms' streams: a member that never re-joins ends with
/// every line sent meanwhile, once each.
#[tokio::test]
async fn members_get_the_lines_sent_while_their_rooms_master_restarted() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let [a, b] = <[_; 2]>::try_from(
        crate::support::cluster(2, &cluster.cluster_url(), |config| {
            // A re-subscription that fails waits 1.5-3 s: the lines are sent meanwhile.
            config.redis.redis_reconnect_min = Duration::from_secs(3);
        })
        .await,
    )
    .ok()
    .unwrap();
    // A room whose channel is on another shard than the tenant's streams (which a restart
    // would empty, and whose lines would then be spooled, and published once it is back).
    let streams = cluster
        .master_for_slot(cluster.slot_of("{acme}").await)
        .await;
    let mut room = None;
    for n in 0..20 {
        let name = format!("lobby-{n}");
        let slot = cluster
            .slot_of(&format!("socket.io#/#r#t:acme:r:{name}#"))
            .await;
        let master = cluster.master_for_slot(slot).await;
        if master != streams {
            room = Some((name, master));
            break;
        }
    }
    let (room, master) = room.expect("one of 20 rooms has its channel on another shard");
    let alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    join(&alice, &room).await;
    join(&bob, &room).await;
    cluster.restart_node(master).await;
    let restarted = Instant::now();

    // Every line is accepted: stored (an id) or spooled (pending, stored once Redis takes it).
    let mut sent = BTreeSet::new();
    for n in 0..20 {
        let reply = ack(
            &alice,
            "message",
            json!({"room": room, "text": format!("gap-{n}")}),
        )
        .await;
        assert!(
            reply["id"].is_string() || reply["pending"] == true,
            "{reply}"
        );
        sent.insert(reply["key"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Bob has each of them once, without joining again; nothing more comes after.
    let (got, complete) = keys_received(&mut bob, &sent, restarted).await;
    let unique: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(unique, sent, "bob got {} lines: {got:?}", got.len());
    assert_eq!(got.len(), sent.len(), "a line twice: {got:?}");
    println!(
        "bob had all {} lines {:?} after the restart",
        sent.len(),
        complete.unwrap_or_default()
    );
}

/// The keys of the `message` events `client` receives until it has each of `expected` (for at
/// most 15 s), then until it is quiet for 1 s (to catch a line twice); and how long after
/// `since` it had them all.
async fn keys_received(
    client: &mut SocketClient,
    expected: &BTreeSet<String>,
    since: Instant,
) -> (Vec<String>, Option<Duration>) {
    let mut got = Vec::new();
    let mut complete = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let Ok(event) = client.next_event(Duration::from_secs(1)).await else {
            if complete.is_some() {
                break;
            }
            continue;
        };
        if event.name == "message" {
            got.push(event.data["key"].as_str().unwrap().to_owned());
            if complete.is_none() && expected.iter().all(|key| got.contains(key)) {
                complete = Some(since.elapsed());
            }
        }
    }
    (got, complete)
}
