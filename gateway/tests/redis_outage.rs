//! Redis killed (SIGKILL) under three gateway processes, then restarted on the same port.
//!
//! Throughout: every instance stays up, chat between two clients of one instance never stops
//! (acked `cluster unavailable`, delivered locally), no socket is disconnected (the periodic
//! session check keeps sockets it cannot verify), `/readyz` says not ready. After the restart:
//! cross-instance delivery is back within 1 s of Redis accepting connections, `/readyz` is
//! ready again, `/metrics` counts the reconnects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use socketio_client::SocketClient;
use support::{
    ChildGateway, TIMEOUT, assert_disconnected, cluster_info, clustered_args, connect_user,
    healthz, join, metric, metrics, readyz, with_flag,
};
use test_support::{RedisServer, eventually_async};

/// The session check runs every second: several times during the outage.
const SESSION_CHECK: Duration = Duration::from_secs(1);
const OUTAGE: Duration = Duration::from_secs(2);

/// Three clustered gateway processes on `redis`, seeing each other.
async fn three_gateways(redis: &RedisServer) -> [ChildGateway; 3] {
    let args = with_flag(
        clustered_args(&redis.url()),
        "--session-check-interval",
        &format!("{}s", SESSION_CHECK.as_secs()),
    );
    let gateways = [
        ChildGateway::start(&args).await,
        ChildGateway::start(&args).await,
        ChildGateway::start(&args).await,
    ];
    let all = eventually_async(TIMEOUT, || async {
        for gateway in &gateways {
            if cluster_info(gateway.url()).await["servers"] != 3 {
                return false;
            }
        }
        true
    })
    .await;
    assert!(all, "the three instances did not find each other");
    gateways
}

/// Reads `client`'s events until a `message` with `text` arrives (within `within`).
async fn receives(client: &mut SocketClient, text: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_event(left).await {
            Ok(event) if event.name == "message" && event.data["text"] == text => return,
            Ok(_) => {}
            Err(err) => panic!("waiting for {text:?}: {err}"),
        }
    }
}

/// Sends `text` to `lobby`, returning the ack.
async fn say(client: &SocketClient, text: &str) -> Value {
    client
        .emit_with_ack("message", json!({"room": "lobby", "text": text}), TIMEOUT)
        .await
        .unwrap_or_else(|err| panic!("no ack for {text:?}: {err}"))
}

#[tokio::test]
async fn chat_survives_a_redis_restart_and_the_cluster_heals_within_a_second() {
    let mut redis = RedisServer::start().await;
    let [a, b, c] = three_gateways(&redis).await;
    let urls = [a.url(), b.url(), c.url()];
    let mut alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(a.url(), "bob").await;
    let mut carol = connect_user(b.url(), "carol").await;
    let mut dave = connect_user(c.url(), "dave").await;
    for client in [&alice, &bob, &carol, &dave] {
        join(client, "lobby").await;
    }
    assert!(say(&alice, "before").await["id"].is_string());
    for client in [&mut bob, &mut carol, &mut dave] {
        receives(client, "before", TIMEOUT).await;
    }
    for url in urls {
        assert_eq!(readyz(url).await.0, 200, "{url} ready before the outage");
    }

    // Redis persists what it holds (sessions included), then crashes.
    let mut conn = redis.connection().await;
    let _: () = redis::cmd("SAVE").query_async(&mut conn).await.unwrap();
    redis.kill();
    let killed = Instant::now();

    let mut n = 0;
    let mut unavailable = 0;
    let mut not_ready = [false; 3];
    while killed.elapsed() < OUTAGE {
        // Same-instance chat goes on: the ack says the cluster was not reached, the local
        // member received it all the same.
        let text = format!("during-{n}");
        let reply = say(&alice, &text).await;
        if reply["error"] == "cluster unavailable" {
            unavailable += 1;
        } else {
            assert!(reply["id"].is_string(), "{reply}");
        }
        receives(&mut bob, &text, Duration::from_secs(1)).await;
        for (i, url) in urls.iter().enumerate() {
            assert_eq!(
                healthz(url).await,
                Some(200),
                "{url} alive during the outage"
            );
            let (status, body) = readyz(url).await;
            if status == 503 {
                assert_eq!(body["ready"], false, "{body}");
                not_ready[i] = true;
            }
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(n >= 5, "only {n} messages during the outage");
    assert!(unavailable > 0, "no ack said the cluster was unavailable");
    assert_eq!(not_ready, [true; 3], "/readyz said ready during the outage");

    redis.restart().await;
    let restarted = Instant::now();

    // Cross-instance delivery is back once both adapters have reconnected: carol (B) keeps
    // talking until alice (A) hears her.
    let back = async {
        let mut i = 0;
        loop {
            let _ = say(&carol, &format!("back-{i}")).await;
            i += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let heard = async {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match alice.next_event(left).await {
                Ok(event)
                    if event.name == "message"
                        && event.data["text"]
                            .as_str()
                            .is_some_and(|t| t.starts_with("back-")) =>
                {
                    return restarted.elapsed();
                }
                Ok(_) => {}
                Err(err) => panic!("cross-instance delivery did not come back: {err}"),
            }
        }
    };
    let back_after = tokio::select! {
        after = heard => after,
        () = back => unreachable!(),
    };
    println!(
        "Redis outage ({OUTAGE:?}): {n} same-instance messages delivered during it \
         ({unavailable} acked `cluster unavailable`); cross-instance delivery back after \
         {back_after:?} after Redis accepted connections again"
    );
    assert!(back_after < Duration::from_secs(1), "{back_after:?}");

    // Ready again, reconnects counted, and nobody was disconnected: every client still chats
    // after a session check has run against the restarted Redis.
    for url in urls {
        let ready = eventually_async(TIMEOUT, || async { readyz(url).await.0 == 200 }).await;
        assert!(ready, "{url} not ready after the restart");
        let body = metrics(url).await;
        let reconnects = metric(&body, "redis_adapter_reconnects_total");
        assert!(
            reconnects.is_some_and(|n| n >= 1.0),
            "{url}: {reconnects:?}"
        );
        assert_eq!(metric(&body, "redis_up"), Some(1.0), "{url}");
        assert!(metric(&body, "redis_memory_used_bytes").is_some_and(|m| m > 0.0));
        let publishes = metric(&body, "redis_adapter_publish_duration_seconds_count");
        assert!(
            publishes.is_some_and(|n| n > 0.0),
            "{url}: no publish latency recorded"
        );
        assert_eq!(
            metric(&body, "gateway_sessions_expired_disconnects_total"),
            Some(0.0),
            "{url}"
        );
    }
    tokio::time::sleep(SESSION_CHECK + Duration::from_millis(500)).await;
    assert!(say(&dave, "after").await["id"].is_string());
    for client in [&mut alice, &mut bob, &mut carol] {
        receives(client, "after", TIMEOUT).await;
    }
}

#[tokio::test]
async fn a_redis_restarted_empty_ends_the_sessions_at_the_next_check() {
    let mut redis = RedisServer::start().await;
    let [a, b, _c] = three_gateways(&redis).await;
    let mut alice = connect_user(a.url(), "alice").await;
    let mut carol = connect_user(b.url(), "carol").await;

    redis.kill();
    tokio::time::sleep(SESSION_CHECK * 2).await;
    // Redis down: scrapes skip its memory rather than report a stale or NaN value.
    let body = metrics(a.url()).await;
    assert_eq!(metric(&body, "redis_up"), Some(0.0));
    assert_eq!(metric(&body, "redis_memory_used_bytes"), None);

    // No RDB: the sessions are gone with the data, and the next check notices.
    redis.restart().await;
    let restarted = Instant::now();
    let within = SESSION_CHECK + Duration::from_secs(2);
    assert_disconnected(&mut alice, within).await;
    assert_disconnected(&mut carol, within).await;
    println!(
        "Redis restarted empty: sockets of the lost sessions disconnected after {:?} \
         (session check every {SESSION_CHECK:?})",
        restarted.elapsed()
    );
    // Logging in again works at once.
    let _alice = connect_user(a.url(), "alice").await;
}
