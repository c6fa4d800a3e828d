//! Rate limits counted in a real Redis and shared by two gateways: login and handshake per
//! client IP (429 / `connect_error`), `message` and `dm` per user (`rate_limited` acks), each
//! recovering after its window; `X-Forwarded-For` only from a trusted proxy; counted in
//! process while Redis is down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::{
    RawSocket, TestGateway, ack, cluster, clustered, connect_token, connect_user, join, login,
    login_response, next_named, password, refusal, stats,
};
use gateway::{Config, Rate};
use redis::AsyncCommands;
use serde_json::{Value, json};
use test_support::{RedisServer, eventually_async};

/// N per second: windows short enough to wait for.
fn per_second(n: u32) -> Rate {
    Rate::new(n, Duration::from_secs(1))
}

/// The wait of a `rate_limited` answer, which must be within one window.
fn retry_after(body: &Value) -> Duration {
    assert_eq!(body["error"], "rate_limited", "{body}");
    let ms = body["retry_after_ms"].as_u64().unwrap();
    assert!(ms > 0 && ms <= 1000, "retry_after_ms {ms}");
    Duration::from_millis(ms)
}

/// Waits out a window of which `left` remains.
async fn wait_out(left: Duration) {
    tokio::time::sleep(left + Duration::from_millis(50)).await;
}

#[tokio::test]
async fn logins_over_the_limit_get_429_with_retry_after_then_recover() {
    let redis = RedisServer::start().await;
    let [a, b] = <[_; 2]>::try_from(
        cluster(2, &redis.url(), |config| config.rate_login = per_second(2)).await,
    )
    .ok()
    .unwrap();

    // Failed logins count too, and both instances count in the same window.
    assert_eq!(login_response(a.url(), "bob", "wrong").await.status(), 401);
    assert_eq!(
        login_response(b.url(), "bob", &password("bob"))
            .await
            .status(),
        200
    );
    let limited = login_response(a.url(), "bob", &password("bob")).await;

    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");
    let left = retry_after(&limited.json().await.unwrap());
    wait_out(left).await;
    assert_eq!(
        login_response(a.url(), "bob", &password("bob"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn handshakes_over_the_limit_get_a_connect_error_then_recover() {
    let redis = RedisServer::start().await;
    let [a, b] = <[_; 2]>::try_from(
        cluster(2, &redis.url(), |config| {
            config.rate_handshake = per_second(2)
        })
        .await,
    )
    .ok()
    .unwrap();
    let token = login(a.url(), "alice").await;
    let auth = json!({"token": token});

    let _first = connect_token(a.url(), &token).await;
    let _second = connect_token(b.url(), &token).await;
    let started = std::time::Instant::now();
    assert_eq!(
        refusal(a.url(), Some(auth.clone())).await,
        "rate_limited: retry in 1s"
    );

    wait_out(Duration::from_secs(1).saturating_sub(started.elapsed())).await;
    let recovered = eventually_async(Duration::from_secs(2), || async {
        crate::support::try_connect(b.url(), Some(auth.clone()))
            .await
            .is_ok()
    })
    .await;
    assert!(recovered, "handshakes still refused after the window");
}

#[tokio::test]
async fn messages_are_limited_per_user_across_instances_and_the_socket_stays() {
    let redis = RedisServer::start().await;
    let [a, b] = <[_; 2]>::try_from(
        cluster(2, &redis.url(), |config| {
            config.rate_message = per_second(3)
        })
        .await,
    )
    .ok()
    .unwrap();
    let alice_a = connect_user(a.url(), "alice").await;
    let alice_b = connect_user(b.url(), "alice").await;
    let bob = connect_user(b.url(), "bob").await;
    for client in [&alice_a, &alice_b, &bob] {
        join(client, "lobby").await;
    }
    let message = |n: u32| json!({"room": "lobby", "text": format!("#{n}")});

    for n in 0..2 {
        assert!(ack(&alice_a, "message", message(n)).await["id"].is_string());
    }
    assert!(ack(&alice_b, "message", message(2)).await["id"].is_string());
    let limited = ack(&alice_b, "message", message(3)).await;
    let left = retry_after(&limited);
    // The user's other socket, on the other instance, shares the budget.
    retry_after(&ack(&alice_a, "message", message(4)).await);
    // Another user has a budget of their own.
    assert!(ack(&bob, "message", message(5)).await["id"].is_string());

    wait_out(left).await;
    assert!(ack(&alice_b, "message", message(6)).await["id"].is_string());
    assert!(ack(&alice_a, "message", message(7)).await["id"].is_string());
}

/// The script that stores a line counts its sender's hit and starts the window's expiry on
/// the first; it asks what is left of the window only over the limit. A counter without an
/// expiry (made persistent by hand) is repaired there: one window of waiting, not forever.
#[tokio::test]
async fn a_message_counter_made_persistent_expires_again_once_its_user_goes_over() {
    let redis = RedisServer::start().await;
    let gateway = TestGateway::start(Config {
        rate_message: per_second(2),
        ..clustered(&redis.url())
    })
    .await;
    let alice = connect_user(gateway.url(), "alice").await;
    join(&alice, "lobby").await;
    let message = |n: u32| json!({"room": "lobby", "text": format!("#{n}")});
    assert!(ack(&alice, "message", message(0)).await["id"].is_string());
    let mut conn = redis.connection().await;
    let keys: Vec<String> = conn.keys("*:rl:message:*").await.unwrap();
    let [key] = <[String; 1]>::try_from(keys).unwrap();
    let ttl: i64 = conn.pttl(&key).await.unwrap();
    assert!(ttl > 0 && ttl <= 1000, "pttl {ttl} after the first hit");
    let persisted: bool = conn.persist(&key).await.unwrap();
    assert!(persisted);

    assert!(ack(&alice, "message", message(1)).await["id"].is_string());
    let left = retry_after(&ack(&alice, "message", message(2)).await);
    let ttl: i64 = conn.pttl(&key).await.unwrap();
    assert!(
        ttl > 0 && ttl <= 1000,
        "pttl {ttl} after a hit over the limit"
    );

    wait_out(left).await;
    assert!(ack(&alice, "message", message(3)).await["id"].is_string());
}

#[tokio::test]
async fn dms_are_limited_per_user_and_recover() {
    let redis = RedisServer::start().await;
    let [a, b] =
        <[_; 2]>::try_from(cluster(2, &redis.url(), |config| config.rate_dm = per_second(2)).await)
            .ok()
            .unwrap();
    let alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    join(&alice, "lobby").await;
    let dm = json!({"to": "bob", "text": "hi"});

    for _ in 0..2 {
        assert!(ack(&alice, "dm", dm.clone()).await["id"].is_string());
        next_named(&mut bob, "dm").await;
    }
    let left = retry_after(&ack(&alice, "dm", dm.clone()).await);
    // `message` has its own limit.
    let sent = ack(&alice, "message", json!({"room": "lobby", "text": "still"})).await;
    assert!(sent["id"].is_string(), "{sent}");

    wait_out(left).await;
    assert!(ack(&alice, "dm", dm).await["id"].is_string());
    next_named(&mut bob, "dm").await;
}

/// A gateway with the login and handshake limits at one per minute, trusting `proxies`
/// (CIDR networks).
async fn strict_gateway(redis: &RedisServer, proxies: &[&str]) -> TestGateway {
    TestGateway::start(Config {
        trusted_proxies: proxies.iter().map(|net| net.parse().unwrap()).collect(),
        rate_login: Rate::new(1, Duration::from_secs(60)),
        rate_handshake: Rate::new(1, Duration::from_secs(60)),
        ..clustered(&redis.url())
    })
    .await
}

async fn login_from(gateway: &TestGateway, forwarded_for: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{}/api/login", gateway.url()))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": "carol", "password": password("carol")}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn forwarded_for_names_the_client_when_the_peer_is_a_trusted_proxy() {
    let redis = RedisServer::start().await;
    let gateway = strict_gateway(&redis, &["127.0.0.1/32"]).await;

    assert_eq!(login_from(&gateway, "127.0.0.7").await, 200);
    assert_eq!(login_from(&gateway, "127.0.0.7").await, 429);
    // Another client behind the same proxy has its own budget...
    assert_eq!(login_from(&gateway, "127.0.0.8").await, 200);
    // ...and one cannot pick a fresh bucket by prepending an address of one's own choice.
    assert_eq!(login_from(&gateway, "127.0.0.99, 127.0.0.8").await, 429);

    // The session records the client, not the proxy.
    let mut conn = redis.connection().await;
    let keys: Vec<String> = conn.keys("socket.io:session:*").await.unwrap();
    let mut ips = Vec::new();
    for key in keys {
        let session: String = conn.get(key).await.unwrap();
        let session: Value = serde_json::from_str(&session).unwrap();
        ips.push(session["ip"].as_str().unwrap().to_owned());
    }
    ips.sort();
    assert_eq!(ips, ["127.0.0.7", "127.0.0.8"]);

    // The handshake limit uses the same client address.
    let helper = TestGateway::start(clustered(&redis.url())).await;
    let token = login(helper.url(), "carol").await;
    let auth = json!({"token": token});
    let handshake = |ip: &'static str| {
        let auth = auth.clone();
        let url = gateway.url().to_owned();
        async move { RawSocket::connect(&url, &[("x-forwarded-for", ip)], Some(&auth)).await }
    };
    let _first = handshake("127.0.0.7").await.unwrap();
    assert_eq!(
        handshake("127.0.0.7").await.err().unwrap(),
        "rate_limited: retry in 60s"
    );
    let _other = handshake("127.0.0.8").await.unwrap();
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_anyone_else() {
    let redis = RedisServer::start().await;
    // The in-process peer is 127.0.0.1: trusting another address, or none, ignores the header.
    for proxies in [&[][..], &["127.0.0.2/32", "10.0.0.0/8"][..]] {
        let mut conn = redis.connection().await;
        let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
        let gateway = strict_gateway(&redis, proxies).await;
        assert_eq!(login_from(&gateway, "127.0.0.7").await, 200, "{proxies:?}");
        assert_eq!(login_from(&gateway, "127.0.0.8").await, 429, "{proxies:?}");
    }
}

#[tokio::test]
async fn limits_are_counted_in_process_while_redis_is_down_and_shared_again_after() {
    let mut redis = RedisServer::start().await;
    let gateway = TestGateway::start(Config {
        rate_message: Rate::new(2, Duration::from_secs(60)),
        rate_login: Rate::new(1, Duration::from_secs(60)),
        ..clustered(&redis.url())
    })
    .await;
    let mut alice = connect_user(gateway.url(), "alice").await;
    join(&alice, "lobby").await;
    for n in 0..2 {
        ack(
            &alice,
            "message",
            json!({"room": "lobby", "text": n.to_string()}),
        )
        .await;
        next_named(&mut alice, "message").await;
    }
    assert_eq!(
        ack(&alice, "message", json!({"room": "lobby", "text": "over"})).await["error"],
        "rate_limited"
    );
    assert_eq!(stats(gateway.url()).await["rate_limit_local"], 0);

    redis.kill();

    // The shared count is out of reach: this instance counts alone, from a window of its own.
    // (The broadcast reaches this instance's members; the other instances cannot be reached.)
    for n in 0..2 {
        let text = format!("during outage {n}");
        let reply = ack(&alice, "message", json!({"room": "lobby", "text": text})).await;
        assert_ne!(reply["error"], "rate_limited", "{reply}");
        assert_eq!(next_named(&mut alice, "message").await.data["text"], text);
    }
    let over = ack(&alice, "message", json!({"room": "lobby", "text": "over"})).await;
    assert_eq!(over["error"], "rate_limited", "{over}");
    // Logins are counted too, and refused without a verification (503), then limited (429).
    for expected in [503, 429] {
        assert_eq!(
            login_response(gateway.url(), "bob", &password("bob"))
                .await
                .status(),
            expected
        );
    }
    let local = stats(gateway.url()).await["rate_limit_local"]
        .as_u64()
        .unwrap();
    assert!(local >= 5, "rate_limit_local {local}");

    redis.restart().await;

    // Counting resumes (in a fresh window: the restarted Redis kept nothing).
    let limited_again = eventually_async(Duration::from_secs(10), || async {
        let reply = ack(&alice, "message", json!({"room": "lobby", "text": "after"})).await;
        reply["error"] == "rate_limited"
    })
    .await;
    assert!(limited_again, "the message limit never applied again");
}
