//! Tenant isolation across two gateways: `message`, `typing`, `dm` and `join`, including with
//! room names crafted to look like another tenant's internal rooms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{
    TestGateway, ack, assert_quiet, cluster, connect_user, error_of, join, next_named, standalone,
};
use serde_json::{Value, json};
use socketio_client::SocketClient;
use test_support::RedisServer;

async fn two_instances(redis: &RedisServer) -> [TestGateway; 2] {
    <[_; 2]>::try_from(cluster(2, &redis.url(), |_| {}).await)
        .ok()
        .unwrap()
}

async fn say(client: &SocketClient, room: &str, text: &str) -> Value {
    let reply = ack(client, "message", json!({"room": room, "text": text})).await;
    assert!(reply["id"].is_string(), "message refused: {reply}");
    reply
}

#[tokio::test]
async fn messages_and_typing_never_cross_tenants() {
    let redis = RedisServer::start().await;
    let [a, b] = two_instances(&redis).await;
    let mut alice = connect_user(a.url(), "alice").await; // acme
    let mut bob = connect_user(b.url(), "bob").await; // acme
    let mut grace = connect_user(b.url(), "grace").await; // globex
    let mut heidi = connect_user(a.url(), "heidi").await; // globex
    for client in [&alice, &bob, &grace, &heidi] {
        join(client, "general").await;
    }

    say(&alice, "general", "acme only").await;
    for member in [&mut alice, &mut bob] {
        let message = next_named(member, "message").await;
        assert_eq!(message.data["text"], "acme only");
        assert_eq!(message.data["room"], "general");
    }
    say(&grace, "general", "globex only").await;
    for member in [&mut grace, &mut heidi] {
        assert_eq!(
            next_named(member, "message").await.data["text"],
            "globex only"
        );
    }
    for outsider in [&mut alice, &mut bob, &mut grace, &mut heidi] {
        assert_quiet(outsider).await;
    }

    bob.emit("typing", json!({"room": "general"}))
        .await
        .unwrap();
    heidi
        .emit("typing", json!({"room": "general"}))
        .await
        .unwrap();
    assert_eq!(
        next_named(&mut alice, "typing").await.data,
        json!({"room": "general", "from": "bob"})
    );
    assert_eq!(
        next_named(&mut grace, "typing").await.data,
        json!({"room": "general", "from": "heidi"})
    );
    for client in [&mut alice, &mut bob, &mut grace, &mut heidi] {
        assert_quiet(client).await;
    }
}

#[tokio::test]
async fn crafted_room_names_stay_rooms_of_their_own_tenant() {
    let redis = RedisServer::start().await;
    let [a, b] = two_instances(&redis).await;
    let mut alice = connect_user(a.url(), "alice").await; // acme
    let mut bob = connect_user(b.url(), "bob").await; // acme
    let mut grace = connect_user(b.url(), "grace").await; // globex
    join(&grace, "general").await;

    // Spelled like the internal name of globex's `general`, and other private rooms.
    for crafted in [
        "t:globex:r:general",
        "globex:r:general",
        "t:acme:u:bob",
        "t:globex:u:grace",
        "a:b",
    ] {
        join(&alice, crafted).await;
    }
    say(&grace, "general", "for globex").await;
    next_named(&mut grace, "message").await;
    assert_quiet(&mut alice).await;

    say(&alice, "t:globex:r:general", "still acme").await;
    let echoed = next_named(&mut alice, "message").await;
    assert_eq!(echoed.data["room"], "t:globex:r:general");
    assert_quiet(&mut grace).await;

    // A private room's name joined as a chat room does not receive that user's DMs.
    let carol = connect_user(a.url(), "carol").await;
    let sent = ack(&carol, "dm", json!({"to": "bob", "text": "psst"})).await;
    assert!(sent["id"].is_string(), "{sent}");
    assert_eq!(next_named(&mut bob, "dm").await.data["text"], "psst");
    assert_quiet(&mut alice).await;

    // `a:b` is just a room of acme, shared by acme's members.
    join(&bob, "a:b").await;
    say(&bob, "a:b", "colons are fine").await;
    assert_eq!(next_named(&mut alice, "message").await.data["room"], "a:b");
    next_named(&mut bob, "message").await;

    // Another tenant's room is not reached by addressing it either.
    let reply = ack(&alice, "message", json!({"room": "general", "text": "hi"})).await;
    assert_eq!(error_of(&reply), "not a member of this room");
    let reply = ack(&alice, "typing", json!({"room": "general"})).await;
    assert_eq!(error_of(&reply), "not a member of this room");
    assert_quiet(&mut grace).await;
}

#[tokio::test]
async fn lookalike_room_names_are_refused() {
    let redis = RedisServer::start().await;
    let [a, _b] = two_instances(&redis).await;
    let alice = connect_user(a.url(), "alice").await;
    for lookalike in [
        "gеneral",         // Cyrillic е
        "ｇeneral",        // fullwidth g
        "general\u{200b}", // zero-width space
        "t|globex|r|general",
        "t:globex:r:général",
        "general\n",
    ] {
        let reply = ack(&alice, "join", json!({"room": lookalike})).await;
        assert!(
            error_of(&reply).starts_with("invalid room"),
            "{lookalike:?}: {reply}"
        );
    }
}

#[tokio::test]
async fn a_dm_reaches_every_socket_of_the_user_in_the_same_tenant_only() {
    let redis = RedisServer::start().await;
    let [a, b] = two_instances(&redis).await;
    let mut alice = connect_user(a.url(), "alice").await;
    let mut bob_on_a = connect_user(a.url(), "bob").await;
    let mut bob_on_b = connect_user(b.url(), "bob").await;
    let mut carol = connect_user(b.url(), "carol").await;
    let mut grace = connect_user(b.url(), "grace").await;

    let sent = ack(&alice, "dm", json!({"to": "bob", "text": "hello bob"})).await;

    let expected = json!({
        "id": sent["id"], "key": sent["key"], "from": "alice", "user": "alice", "text": "hello bob",
        "ts": sent["ts"],
    });
    assert!(sent["id"].is_string() && sent["ts"].is_u64(), "{sent}");
    assert_eq!(next_named(&mut bob_on_a, "dm").await.data, expected);
    assert_eq!(next_named(&mut bob_on_b, "dm").await.data, expected);

    // Another tenant's user is refused exactly like a user that does not exist.
    for to in ["grace", "nobody", "t:globex:u:grace", ""] {
        let reply = ack(&alice, "dm", json!({"to": to, "text": "hi"})).await;
        assert_eq!(error_of(&reply), "unknown user", "to {to:?}");
    }
    let reply = ack(&grace, "dm", json!({"to": "alice", "text": "hi"})).await;
    assert_eq!(error_of(&reply), "unknown user");
    let reply = ack(&alice, "dm", json!({"to": "bob"})).await;
    assert!(error_of(&reply).starts_with("invalid payload"), "{reply}");

    for client in [
        &mut alice,
        &mut bob_on_a,
        &mut bob_on_b,
        &mut carol,
        &mut grace,
    ] {
        assert_quiet(client).await;
    }
}

#[tokio::test]
async fn standalone_sockets_are_anonymous_users_of_the_dev_tenant() {
    let gateway = TestGateway::start(standalone()).await;
    let alice = crate::support::connect_as(gateway.url(), Some("alice")).await;
    let mut other = crate::support::connect(gateway.url()).await;

    let sent = ack(&alice, "dm", json!({"to": other.sid(), "text": "hi"})).await;

    assert!(sent["id"].is_string(), "{sent}");
    let dm = next_named(&mut other, "dm").await;
    assert_eq!(dm.data["from"], "alice");
    assert_eq!(dm.data["user"], alice.sid());
}
