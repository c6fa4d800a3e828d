//! What one client may cost, on a real Redis: websocket messages bounded by `--max-payload`
//! (a larger one closes that connection only), a per-socket budget on every event refused
//! in process (no Redis script call), rooms per socket, sockets per user and per session, a
//! bound on each socket's waiting events, and engine.io sessions that never join closed after
//! the connect timeout and capped per address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::support::{
    RawSocket, TIMEOUT, ack, cluster, connect_token, error_of, join, login, refusal,
};
use gateway::Rate;
use serde_json::{Value, json};
use test_support::{RedisServer, eventually_async};

/// The calls of Lua scripts Redis has run so far (`EVAL` and `EVALSHA`, `INFO commandstats`).
async fn script_calls(redis: &RedisServer) -> u64 {
    let mut conn = redis.connection().await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
        .filter_map(|line| {
            line.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// The room channels Redis holds subscriptions for whose room name starts with `prefix`.
async fn room_channels(redis: &RedisServer, prefix: &str) -> usize {
    let mut conn = redis.connection().await;
    let channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg(format!("*#r#t:acme:r:{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    channels.len()
}

#[tokio::test]
async fn a_websocket_message_over_max_payload_closes_that_connection_only() {
    let redis = RedisServer::start().await;
    let gateway = cluster(1, &redis.url(), |_| {}).await.remove(0);
    let token = login(gateway.url(), "alice").await;
    let auth = json!({"token": token});
    let mut big = RawSocket::connect(gateway.url(), &[], Some(&auth))
        .await
        .unwrap();
    let mut other = RawSocket::connect(gateway.url(), &[], Some(&auth))
        .await
        .unwrap();
    assert_eq!(
        other.emit_with_ack("join", &json!({"room": "big"})).await,
        json!({"ok": true})
    );

    // 2 MiB in one message (and one frame): 20 times the default --max-payload.
    let text = "x".repeat(2 << 20);
    let packet = serde_json::to_string(&("message", json!({"room": "big", "text": text}))).unwrap();
    big.send_raw(format!("42{packet}")).await;

    assert!(
        big.closed_within(TIMEOUT).await,
        "the 2 MiB sender is still connected"
    );
    let sent = other
        .emit_with_ack("message", &json!({"room": "big", "text": "still here"}))
        .await;
    assert!(sent["id"].is_string(), "the other socket goes on: {sent}");
}

#[tokio::test]
async fn one_socket_joining_1000_rooms_is_refused_past_the_cap_before_redis() {
    let redis = RedisServer::start().await;
    let gateway = cluster(1, &redis.url(), |config| config.max_rooms_per_socket = 20)
        .await
        .remove(0);
    let token = login(gateway.url(), "alice").await;
    let client = connect_token(gateway.url(), &token).await;

    let started = Instant::now();
    let mut joined = 0;
    for i in 0..1000 {
        let reply = ack(&client, "join", json!({"room": format!("cap-{i}")})).await;
        if reply == json!({"ok": true}) {
            joined += 1;
        } else {
            assert_eq!(error_of(&reply), "too_many_rooms: at most 20 per socket");
        }
    }
    let took = started.elapsed();
    println!("1000 joins (20 accepted) answered in {took:?}");

    assert_eq!(joined, 20);
    assert!(took < Duration::from_secs(10), "joins took {took:?}");
    assert_eq!(room_channels(&redis, "cap-").await, 20);
    // Rejoining a room it is in is still fine, and leaving makes room for another.
    join(&client, "cap-0").await;
    assert_eq!(
        ack(&client, "leave", json!({"room": "cap-0"})).await,
        json!({"ok": true})
    );
    join(&client, "cap-999").await;
}

#[tokio::test]
async fn a_burst_beyond_the_socket_budget_is_refused_with_no_redis_script_call() {
    let redis = RedisServer::start().await;
    let gateway = cluster(1, &redis.url(), |config| {
        config.socket_event_rate = Rate::new(10, Duration::from_secs(60));
    })
    .await
    .remove(0);
    let token = login(gateway.url(), "alice").await;
    let client = connect_token(gateway.url(), &token).await;
    join(&client, "budget").await;
    for i in 0..9 {
        let sent = ack(
            &client,
            "message",
            json!({"room": "budget", "text": format!("{i}")}),
        )
        .await;
        assert!(sent["id"].is_string(), "within the budget: {sent}");
    }

    let before = script_calls(&redis).await;
    assert!(
        before >= 9,
        "each accepted message ran its rate-limit script"
    );
    let events = [
        ("message", json!({"room": "budget", "text": "over"})),
        ("join", json!({"room": "other"})),
        ("leave", json!({"room": "budget"})),
        ("typing", json!({"room": "budget"})),
        ("dm", json!({"to": "bob", "text": "over"})),
        ("members", json!({"room": "budget"})),
        ("no-such-event", json!({})),
    ];
    for round in 0..3 {
        for (event, data) in &events {
            let reply = ack(&client, event, data.clone()).await;
            assert_eq!(
                reply["error"], "rate_limited",
                "{event} (round {round}): {reply}"
            );
            let wait = reply["retry_after_ms"].as_u64().unwrap();
            assert!(wait > 0 && wait <= 6_000, "retry_after_ms {wait}");
        }
    }
    assert_eq!(
        script_calls(&redis).await,
        before,
        "a refused event ran a script"
    );
    assert_eq!(room_channels(&redis, "other").await, 0);
}

#[tokio::test]
async fn events_beyond_the_socket_queue_are_refused_at_once() {
    let redis = RedisServer::start().await;
    let gateway = cluster(1, &redis.url(), |config| config.socket_event_queue = 4)
        .await
        .remove(0);
    let token = login(gateway.url(), "alice").await;
    let client = connect_token(gateway.url(), &token).await;
    join(&client, "queue").await;

    // Redis stops answering for a while: each message's rate-limit check waits (250 ms), and
    // the socket's events pile up.
    redis.pause(Duration::from_millis(1500), "ALL").await;
    let started = Instant::now();
    let replies = futures_util::future::join_all((0..20).map(|i| {
        client.emit_with_ack(
            "message",
            json!({"room": "queue", "text": format!("{i}")}),
            TIMEOUT,
        )
    }))
    .await;
    let replies: Vec<Value> = replies.into_iter().map(Result::unwrap).collect();
    let full = replies
        .iter()
        .filter(|r| r["error"] == "queue_full")
        .count();
    println!(
        "{full} of 20 refused queue_full; all answered after {:?}",
        started.elapsed()
    );
    assert_eq!(full, 16, "{replies:?}");

    // Once the events drain the socket is served again.
    let served = eventually_async(TIMEOUT, || async {
        ack(
            &client,
            "message",
            json!({"room": "queue", "text": "after"}),
        )
        .await["id"]
            .is_string()
    })
    .await;
    assert!(served);
}

#[tokio::test]
async fn sockets_per_session_and_per_user_are_capped_and_given_back_on_disconnect() {
    let redis = RedisServer::start().await;
    let gateway = cluster(1, &redis.url(), |config| {
        config.max_sockets_per_session = 2;
        config.max_sockets_per_user = 3;
    })
    .await
    .remove(0);
    let first = login(gateway.url(), "alice").await;
    let a1 = connect_token(gateway.url(), &first).await;
    let _a2 = connect_token(gateway.url(), &first).await;
    assert_eq!(
        refusal(gateway.url(), Some(json!({"token": first}))).await,
        "too_many_sockets: per session"
    );
    let second = login(gateway.url(), "alice").await;
    let _b1 = connect_token(gateway.url(), &second).await;
    assert_eq!(
        refusal(gateway.url(), Some(json!({"token": second}))).await,
        "too_many_sockets: per user"
    );
    // Another user is not affected.
    let bob = login(gateway.url(), "bob").await;
    let _bob = connect_token(gateway.url(), &bob).await;

    a1.close().await;
    let back = eventually_async(TIMEOUT, || async {
        crate::support::try_connect(gateway.url(), Some(json!({"token": second})))
            .await
            .is_ok()
    })
    .await;
    assert!(back, "a disconnected socket gave its seat back");
}

#[tokio::test]
async fn a_session_that_never_connects_is_closed_after_the_connect_timeout() {
    let redis = RedisServer::start().await;
    let gateway = cluster(1, &redis.url(), |config| {
        config.connect_timeout = Duration::from_millis(300);
    })
    .await
    .remove(0);
    let mut silent = RawSocket::open(gateway.url(), &[]).await;
    let started = Instant::now();
    assert!(
        silent.closed_within(Duration::from_secs(3)).await,
        "still open"
    );
    let took = started.elapsed();
    println!("a session without CONNECT closed after {took:?}");
    assert!(
        took >= Duration::from_millis(250),
        "closed too early: {took:?}"
    );

    // A refused CONNECT does not keep the session either.
    let mut refused = RawSocket::open(gateway.url(), &[]).await;
    assert!(refused.send_raw("40{\"token\":\"nope\"}".to_owned()).await);
    assert!(
        refused.closed_within(Duration::from_secs(3)).await,
        "still open"
    );
}

#[tokio::test]
async fn engine_io_opens_are_capped_per_address_within_the_connect_timeout() {
    let redis = RedisServer::start().await;
    let gateway = cluster(1, &redis.url(), |config| {
        config.max_opens_per_address = 3;
        config.connect_timeout = Duration::from_millis(500);
    })
    .await
    .remove(0);
    let open = || async {
        reqwest::get(format!(
            "{}/socket.io/?EIO=4&transport=polling",
            gateway.url()
        ))
        .await
        .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(open().await.status(), 200);
    }
    let refused = open().await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited", "{body}");
    // Other requests are not counted: a login and a connected socket still work.
    let token = login(gateway.url(), "alice").await;
    let stats = crate::support::stats(gateway.url()).await;
    assert_eq!(stats["engineio_opens_refused"], 1, "{stats}");
    // The window is the connect timeout: after it the address may open again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _alice = connect_token(gateway.url(), &token).await;
}
