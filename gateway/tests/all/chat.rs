//! The chat protocol on one standalone gateway: rooms, messages, typing, validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{
    TIMEOUT, TestGateway, ack, assert_quiet, connect, connect_as, error_of, join, next_named,
    now_ms, standalone,
};
use futures_util::future::join_all;
use serde_json::{Value, json};

#[tokio::test]
async fn welcome_names_the_instance_and_the_socket() {
    let gateway = TestGateway::start(standalone()).await;
    let mut client = socketio_client::SocketClient::connect(gateway.url())
        .await
        .unwrap();
    let welcome = next_named(&mut client, "welcome").await;
    assert_eq!(
        welcome.data,
        json!({"instance": gateway.instance(), "sid": client.sid()})
    );
}

#[tokio::test]
async fn a_message_reaches_every_member_including_the_sender_and_no_one_else() {
    let gateway = TestGateway::start(standalone()).await;
    let mut alice = connect_as(gateway.url(), Some("alice")).await;
    let mut bob = connect(gateway.url()).await;
    let mut carol = connect(gateway.url()).await;
    join(&alice, "lobby").await;
    join(&bob, "lobby").await;
    join(&carol, "elsewhere").await;

    let before = now_ms();
    let reply = ack(
        &alice,
        "message",
        json!({"room": "lobby", "text": "hi\nall"}),
    )
    .await;
    let id = reply["id"].as_str().expect("ack has an id").to_owned();
    let ts = reply["ts"].as_u64().expect("ack has a ts");
    assert!(ts >= before && ts <= now_ms() + 1, "ts {ts} is now");

    // Standalone, every socket is its own user: the socket id.
    let expected = json!({
        "room": "lobby", "id": id, "key": reply["key"], "from": "alice", "user": alice.sid(),
        "text": "hi\nall", "ts": ts,
    });
    assert_eq!(next_named(&mut alice, "message").await.data, expected);
    assert_eq!(next_named(&mut bob, "message").await.data, expected);
    assert_quiet(&mut carol).await;

    // Without a handshake name, `from` is the socket id.
    ack(&bob, "message", json!({"room": "lobby", "text": "yo"})).await;
    let received = next_named(&mut alice, "message").await;
    assert_eq!(received.data["from"], bob.sid());
    assert_ne!(received.data["id"], json!(id), "ids are unique");
}

#[tokio::test]
async fn a_non_member_gets_an_error_and_stays_connected() {
    let gateway = TestGateway::start(standalone()).await;
    let mut member = connect(gateway.url()).await;
    let outsider = connect(gateway.url()).await;
    join(&member, "lobby").await;

    let reply = ack(&outsider, "message", json!({"room": "lobby", "text": "hi"})).await;
    assert_eq!(reply, json!({"error": "not a member of this room"}));
    let reply = ack(&outsider, "typing", json!({"room": "lobby"})).await;
    assert_eq!(reply, json!({"error": "not a member of this room"}));
    assert_quiet(&mut member).await;

    join(&outsider, "lobby").await;
    ack(
        &outsider,
        "message",
        json!({"room": "lobby", "text": "now in"}),
    )
    .await;
    assert_eq!(
        next_named(&mut member, "message").await.data["text"],
        "now in"
    );
}

#[tokio::test]
async fn leave_stops_delivery_and_is_idempotent() {
    let gateway = TestGateway::start(standalone()).await;
    let mut alice = connect(gateway.url()).await;
    let mut bob = connect(gateway.url()).await;
    join(&alice, "lobby").await;
    join(&alice, "lobby").await; // joining twice is fine
    join(&bob, "lobby").await;

    for _ in 0..2 {
        let reply = ack(&bob, "leave", json!({"room": "lobby"})).await;
        assert_eq!(reply, json!({"ok": true}));
    }
    ack(
        &alice,
        "message",
        json!({"room": "lobby", "text": "anyone?"}),
    )
    .await;
    next_named(&mut alice, "message").await;
    assert_quiet(&mut bob).await;

    let reply = ack(&bob, "message", json!({"room": "lobby", "text": "gone"})).await;
    assert_eq!(error_of(&reply), "not a member of this room");
}

#[tokio::test]
async fn typing_reaches_the_other_members_but_not_the_sender() {
    let gateway = TestGateway::start(standalone()).await;
    let mut alice = connect_as(gateway.url(), Some("alice")).await;
    let mut bob = connect(gateway.url()).await;
    let mut carol = connect(gateway.url()).await;
    join(&alice, "lobby").await;
    join(&bob, "lobby").await;

    let reply = ack(&alice, "typing", json!({"room": "lobby"})).await;
    assert_eq!(reply, json!({"ok": true}));
    let notice = next_named(&mut bob, "typing").await;
    assert_eq!(notice.data, json!({"room": "lobby", "from": "alice"}));
    assert_quiet(&mut alice).await;
    assert_quiet(&mut carol).await;

    // Without an ack it is delivered all the same.
    alice
        .emit("typing", json!({"room": "lobby"}))
        .await
        .unwrap();
    next_named(&mut bob, "typing").await;
}

#[tokio::test]
async fn invalid_room_names_are_refused_and_the_connection_stays_up() {
    let gateway = TestGateway::start(standalone()).await;
    let client = connect(gateway.url()).await;
    let too_long = "r".repeat(65);
    for room in [
        "", " ", "a b", " lobby", "café", "日本", "room/1", "#x", "a\n", &too_long,
    ] {
        for event in ["join", "leave", "typing"] {
            let reply = ack(&client, event, json!({ "room": room })).await;
            assert!(
                error_of(&reply).starts_with("invalid room: "),
                "{event} {room:?} -> {reply}"
            );
        }
        let reply = ack(&client, "message", json!({"room": room, "text": "hi"})).await;
        assert!(
            error_of(&reply).starts_with("invalid room: "),
            "{room:?} -> {reply}"
        );
    }
    join(&client, &"r".repeat(64)).await;
    join(&client, "Team_1.dev:ops-eu").await;
}

#[tokio::test]
async fn invalid_texts_are_refused_and_the_connection_stays_up() {
    let gateway = TestGateway::start(standalone()).await;
    let mut client = connect(gateway.url()).await;
    join(&client, "lobby").await;
    let too_long = "x".repeat(2001);
    for text in [
        "",
        &too_long,
        "bell\u{7}",
        "nul\0",
        "cr\r",
        "esc\u{1b}[2J",
        "c1\u{9b}",
    ] {
        let reply = ack(&client, "message", json!({"room": "lobby", "text": text})).await;
        assert!(
            error_of(&reply).starts_with("invalid text: "),
            "{text:?} -> {reply}"
        );
    }
    assert_quiet(&mut client).await;

    let longest = "é".repeat(2000);
    for text in [longest.as_str(), "tab\tand\nnewline", "🎉"] {
        let reply = ack(&client, "message", json!({"room": "lobby", "text": text})).await;
        assert!(reply["id"].is_string(), "{text:?} -> {reply}");
        assert_eq!(next_named(&mut client, "message").await.data["text"], text);
    }
}

#[tokio::test]
async fn malformed_payloads_get_an_error_ack_and_the_connection_stays_up() {
    let gateway = TestGateway::start(standalone()).await;
    let client = connect(gateway.url()).await;
    join(&client, "lobby").await;
    let shapes: [Value; 8] = [
        Value::Null,
        json!("lobby"),
        json!(42),
        json!(true),
        json!(["lobby"]),
        json!({}),
        json!({"room": 7}),
        json!({"rooms": "lobby"}),
    ];
    for payload in &shapes {
        for event in ["join", "leave", "typing", "message"] {
            let reply = ack(&client, event, payload.clone()).await;
            assert!(
                error_of(&reply).starts_with("invalid payload: "),
                "{event} {payload} -> {reply}"
            );
        }
    }
    for payload in [
        json!({"room": "lobby"}),
        json!({"room": "lobby", "text": 5}),
        json!({"room": "lobby", "text": null}),
    ] {
        let reply = ack(&client, "message", payload.clone()).await;
        assert!(
            error_of(&reply).starts_with("invalid payload: "),
            "{payload} -> {reply}"
        );
    }
    join(&client, "still-here").await;
}

#[tokio::test]
async fn an_invalid_display_name_refuses_the_connection() {
    let gateway = TestGateway::start(standalone()).await;
    for name in [
        json!(""),
        json!("x".repeat(33)),
        json!("bad\u{7}"),
        json!(12),
    ] {
        let options = socketio_client::ConnectOptions::new(gateway.url())
            .timeout(TIMEOUT)
            .auth(json!({ "name": name }));
        match socketio_client::SocketClient::connect_with(options).await {
            Err(socketio_client::ClientError::ConnectRefused(reason)) => {
                assert!(reason.starts_with("invalid name: "), "{name} -> {reason}");
            }
            other => panic!("{name} was not refused: {other:?}"),
        }
    }
    // The longest valid name, and auth without a name, are accepted.
    connect_as(gateway.url(), Some(&"ü".repeat(32))).await;
    let options = socketio_client::ConnectOptions::new(gateway.url()).auth(json!({"token": "x"}));
    socketio_client::SocketClient::connect_with(options)
        .await
        .unwrap();
}

// Multi-threaded: the gateway runs each event in a task of its own, and only there can they
// run out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sent_without_waiting_are_handled_in_order() {
    let gateway = TestGateway::start(standalone()).await;
    let mut sender = connect(gateway.url()).await;
    let mut reader = connect(gateway.url()).await;
    join(&reader, "lobby").await;

    // join then 50 messages back to back, no ack awaited in between. `join_all` polls the
    // futures in order, so the frames leave in that order.
    let mut acks = vec![sender.emit_with_ack("join", json!({"room": "lobby"}), TIMEOUT)];
    for i in 0..50 {
        let text = format!("m{i}");
        acks.push(sender.emit_with_ack("message", json!({"room": "lobby", "text": text}), TIMEOUT));
    }
    let replies: Vec<Value> = join_all(acks)
        .await
        .into_iter()
        .map(|reply| reply.unwrap())
        .collect();
    assert_eq!(replies[0], json!({"ok": true}));
    assert!(
        replies[1..].iter().all(|r| r["id"].is_string()),
        "{replies:?}"
    );

    for i in 0..50 {
        assert_eq!(
            next_named(&mut reader, "message").await.data["text"],
            format!("m{i}")
        );
        assert_eq!(
            next_named(&mut sender, "message").await.data["text"],
            format!("m{i}")
        );
    }
}
