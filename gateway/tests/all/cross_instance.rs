//! Chat across three gateways sharing one real Redis (users of one tenant, logged in).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{
    TestGateway, ack, assert_quiet, cluster_info, cluster_sockets, connect_user, error_of, join,
    next_named,
};
use serde_json::json;
use test_support::RedisServer;

async fn cluster_of_three(redis: &RedisServer) -> Vec<TestGateway> {
    crate::support::cluster(3, &redis.url(), |_| {}).await
}

#[tokio::test]
async fn a_member_on_one_instance_receives_a_message_sent_from_another() {
    let redis = RedisServer::start().await;
    let [a, b, c] = <[_; 3]>::try_from(cluster_of_three(&redis).await)
        .ok()
        .unwrap();
    let mut alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    let mut carol = connect_user(c.url(), "carol").await;
    let mut dave = connect_user(b.url(), "dave").await;
    for member in [&alice, &bob, &carol] {
        join(member, "lobby").await;
    }
    join(&dave, "elsewhere").await;

    let reply = ack(
        &carol,
        "message",
        json!({"room": "lobby", "text": "from C"}),
    )
    .await;

    let expected = json!({
        "room": "lobby", "id": reply["id"], "key": reply["key"], "from": "carol", "user": "carol",
        "text": "from C", "ts": reply["ts"],
    });
    for member in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(next_named(member, "message").await.data, expected);
    }
    assert_quiet(&mut dave).await;
}

#[tokio::test]
async fn one_senders_messages_arrive_in_order_on_other_instances() {
    let redis = RedisServer::start().await;
    let [a, b, _c] = <[_; 3]>::try_from(cluster_of_three(&redis).await)
        .ok()
        .unwrap();
    let sender = connect_user(a.url(), "alice").await;
    let mut receiver = connect_user(b.url(), "bob").await;
    join(&sender, "ordered").await;
    join(&receiver, "ordered").await;

    // Fired without waiting for acks, as a chatty client does.
    let sends: Vec<_> = (0..50)
        .map(|i| {
            sender.emit_with_ack(
                "message",
                json!({"room": "ordered", "text": i.to_string()}),
                crate::support::TIMEOUT,
            )
        })
        .collect();
    for reply in futures_util::future::join_all(sends).await {
        assert!(reply.unwrap()["id"].is_string());
    }

    for i in 0..50 {
        let message = next_named(&mut receiver, "message").await;
        assert_eq!(message.data["text"], i.to_string());
    }
}

#[tokio::test]
async fn typing_reaches_the_other_members_on_other_instances_but_not_the_sender() {
    let redis = RedisServer::start().await;
    let [a, _b, c] = <[_; 3]>::try_from(cluster_of_three(&redis).await)
        .ok()
        .unwrap();
    let mut typist = connect_user(a.url(), "alice").await;
    let mut reader = connect_user(c.url(), "bob").await;
    join(&typist, "lobby").await;
    join(&reader, "lobby").await;

    typist
        .emit("typing", json!({"room": "lobby"}))
        .await
        .unwrap();

    let typing = next_named(&mut reader, "typing").await;
    assert_eq!(typing.data, json!({"room": "lobby", "from": "alice"}));
    assert_quiet(&mut typist).await;
}

#[tokio::test]
async fn membership_is_per_socket_not_per_user() {
    let redis = RedisServer::start().await;
    let [a, b, _c] = <[_; 3]>::try_from(cluster_of_three(&redis).await)
        .ok()
        .unwrap();
    let member = connect_user(a.url(), "alice").await;
    let outsider = connect_user(b.url(), "alice").await;
    join(&member, "private").await;

    let reply = ack(
        &outsider,
        "message",
        json!({"room": "private", "text": "let me in"}),
    )
    .await;

    assert_eq!(error_of(&reply), "not a member of this room");
}

#[tokio::test]
async fn every_instance_reports_the_whole_cluster() {
    let redis = RedisServer::start().await;
    let gateways = cluster_of_three(&redis).await;
    let _clients = [
        connect_user(gateways[0].url(), "alice").await,
        connect_user(gateways[1].url(), "bob").await,
        connect_user(gateways[1].url(), "carol").await,
    ];
    for gateway in &gateways {
        let info = cluster_info(gateway.url()).await;
        assert_eq!(info["servers"], 3);
        assert_eq!(cluster_sockets(gateway.url()).await, 3);
    }
}

#[tokio::test]
async fn members_lists_every_user_in_the_room_on_every_instance_once() {
    let redis = RedisServer::start().await;
    let [a, b, c] = <[_; 3]>::try_from(cluster_of_three(&redis).await)
        .ok()
        .unwrap();
    let alice = connect_user(a.url(), "alice").await;
    let alice_again = connect_user(c.url(), "alice").await;
    let bob = connect_user(b.url(), "bob").await;
    let carol = connect_user(c.url(), "carol").await;
    for member in [&alice, &alice_again, &bob] {
        join(member, "lobby").await;
    }
    join(&carol, "elsewhere").await;

    let reply = ack(&bob, "members", json!({"room": "lobby"})).await;
    assert_eq!(
        reply,
        json!({"members": [{"user": "alice", "name": "alice"}, {"user": "bob", "name": "bob"}]})
    );

    // A room one has not joined is not for listing.
    let refused = ack(&carol, "members", json!({"room": "lobby"})).await;
    assert_eq!(error_of(&refused), "not a member of this room");
}
