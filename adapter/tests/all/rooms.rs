//! Per-room subscriptions: an instance hears a room's broadcasts only while it holds the
//! room, a join is in place before it returns, and emptied rooms are let go after a delay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::{
    Instance, TIMEOUT, assert_quiet, client, fast_config, recv, start, start_with,
};
use redis_adapter::RedisConfig;
use serde_json::json;
use test_support::{RedisServer, eventually_async};

const DELAY: Duration = Duration::from_millis(300);

/// Two instances with a short unsubscribe delay and reconcile interval.
async fn pair(redis: &RedisServer, prefix: &str) -> (Instance, Instance) {
    let mut config = fast_config(prefix);
    config.unsubscribe_delay = DELAY;
    config.reconcile_interval = Duration::from_millis(200);
    let a = start(&redis.url(), config.clone()).await;
    let b = start(&redis.url(), config).await;
    let both = test_support::eventually(TIMEOUT, || {
        [&a, &b]
            .iter()
            .all(|i| i.state.server_count("/") == Some(2))
    })
    .await;
    assert!(both, "instances did not see each other");
    (a, b)
}

/// How many connections subscribe to `channel`.
async fn subscribers(redis: &RedisServer, channel: &str) -> i64 {
    let mut conn = redis.connection().await;
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await
        .unwrap();
    count
}

async fn subscribers_become(redis: &RedisServer, channel: &str, expected: i64) -> bool {
    eventually_async(TIMEOUT, || async {
        subscribers(redis, channel).await == expected
    })
    .await
}

#[tokio::test]
async fn only_instances_holding_a_room_hear_it() {
    let redis = RedisServer::start().await;
    let (a, b) = pair(&redis, "hold").await;
    let mut member = client(&b, &["chat"]).await;
    assert_eq!(subscribers(&redis, "hold#/#r#chat#").await, 1);

    for i in 0..50 {
        a.io.to("chat").emit("msg", &i).await.unwrap();
    }
    for i in 0..50 {
        assert_eq!(recv(&mut member).await.data, json!(i));
    }
    // `a` holds no member of the room: it never subscribed, so received nothing of it.
    assert_eq!(a.state.stats().room_subscriptions, 0);
    assert_eq!(b.state.stats().room_subscriptions, 1);
    for instance in [&a, &b] {
        assert_eq!(instance.state.stats().room_messages_discarded, 0);
    }
}

#[tokio::test]
async fn a_join_is_in_place_when_it_returns() {
    let redis = RedisServer::start().await;
    let (a, b) = pair(&redis, "joined").await;
    let mut member = client(&b, &[]).await;
    let sid = b.io.sockets()[0].id;
    // Every round a new room: a broadcast sent right after the join returns must arrive.
    for round in 0..20 {
        let room = format!("room-{round}");
        b.state.join("/", sid, room.clone()).await.unwrap();
        a.io.to(room).emit("msg", &round).await.unwrap();
        assert_eq!(recv(&mut member).await.data, json!(round));
    }
}

#[tokio::test]
async fn the_last_member_leaving_unsubscribes_after_the_delay_and_rejoining_costs_nothing() {
    let redis = RedisServer::start().await;
    let (a, b) = pair(&redis, "leave").await;
    let mut member = client(&b, &["chat"]).await;
    let sid = b.io.sockets()[0].id;
    let channel = "leave#/#r#chat#";

    // Leave and come back within the delay: the subscription never moved.
    b.state.leave("/", sid, "chat").unwrap();
    b.state.join("/", sid, "chat").await.unwrap();
    tokio::time::sleep(DELAY * 2).await;
    assert_eq!(subscribers(&redis, channel).await, 1);
    a.io.to("chat").emit("msg", "still here").await.unwrap();
    assert_eq!(recv(&mut member).await.data, json!("still here"));

    // Leave for good: still subscribed for a moment, then let go.
    b.state.leave("/", sid, "chat").unwrap();
    assert_eq!(subscribers(&redis, channel).await, 1);
    assert!(subscribers_become(&redis, channel, 0).await);
    assert_eq!(b.state.stats().room_subscriptions, 0);
    a.io.to("chat").emit("msg", "gone").await.unwrap();
    assert_quiet(&mut member).await;
}

#[tokio::test]
async fn a_room_emptied_by_a_disconnect_is_let_go() {
    let redis = RedisServer::start().await;
    let (_a, b) = pair(&redis, "disc").await;
    let member = client(&b, &["chat"]).await;
    assert_eq!(subscribers(&redis, "disc#/#r#chat#").await, 1);
    drop(member);
    assert!(subscribers_become(&redis, "disc#/#r#chat#", 0).await);
}

#[tokio::test]
async fn a_room_joined_around_the_adapter_is_subscribed_by_reconcile() {
    let redis = RedisServer::start().await;
    let (a, b) = pair(&redis, "around").await;
    let mut member = client(&b, &[]).await;
    // socketioxide's own join: the adapter is not told.
    b.io.sockets()[0].join("late");
    assert!(subscribers_become(&redis, "around#/#r#late#", 1).await);
    a.io.to("late").emit("msg", "found").await.unwrap();
    assert_eq!(recv(&mut member).await.data, json!("found"));
}

#[tokio::test]
async fn after_a_reconnect_only_the_rooms_still_held_are_subscribed() {
    let mut redis = RedisServer::start().await;
    let (a, b) = pair(&redis, "again").await;
    let mut member = client(&b, &["kept", "emptied"]).await;
    let sid = b.io.sockets()[0].id;

    redis.kill();
    b.state.leave("/", sid, "emptied").unwrap();
    tokio::time::sleep(DELAY * 2).await;
    redis.restart().await;

    assert!(subscribers_become(&redis, "again#/#r#kept#", 1).await);
    assert_eq!(subscribers(&redis, "again#/#r#emptied#").await, 0);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery did not resume"
        );
        let _refused_until_reconnected = a.io.to("kept").emit("msg", "back").await;
        if member.next_event(Duration::from_millis(200)).await.is_ok() {
            break;
        }
    }
}

#[tokio::test]
async fn a_burst_of_awaited_emits_arrives_complete_and_in_order_in_few_pipelines() {
    let redis = RedisServer::start().await;
    let (a, b) = pair(&redis, "burst").await;
    let mut member = client(&b, &["chat"]).await;
    let before = a.state.stats();

    for i in 0..2000u32 {
        a.io.to("chat").emit("msg", &i).await.unwrap();
    }
    for i in 0..2000u32 {
        assert_eq!(recv(&mut member).await.data, json!(i));
    }
    let after = a.state.stats();
    let (published, pipelines) = (
        after.published - before.published,
        after.pipelines - before.pipelines,
    );
    assert!(published >= 2000);
    assert!(
        pipelines * 4 < published,
        "{published} publishes took {pipelines} pipelines"
    );
}

#[tokio::test]
async fn a_full_publish_queue_refuses_at_once_and_counts() {
    let redis = RedisServer::start().await;
    let tiny_queue = RedisConfig {
        publish_queue_capacity: 4,
        ..RedisConfig::default()
    };
    let a = start_with(&redis.url(), fast_config("full"), tiny_queue).await;
    let mut local = client(&a, &["chat"]).await;

    let mut refused = 0;
    for i in 0..500u32 {
        if a.io.to("chat").emit("msg", &i).await.is_err() {
            refused += 1;
        }
        // Let the local member's socket drain its buffer (socketioxide's default, 128
        // packets): this test is about the publish queue, not the receiving side's pacing.
        if i % 50 == 49 {
            tokio::task::yield_now().await;
        }
    }
    assert!(refused > 0, "a queue of 4 took 500 back-to-back publishes");
    assert_eq!(a.state.stats().publish_queue_full, refused);
    // Local members got every message regardless.
    for i in 0..500u32 {
        assert_eq!(recv(&mut local).await.data, json!(i));
    }
}
