//! Tenant settings: cached on every instance, changed by a tenant admin on one instance and
//! enforced on the others as soon as the write is answered; `max_room_members` counted across
//! the cluster and per tenant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::{
    TestGateway, ack, cluster, connect_user, error_of, join, login, next_named, stats,
};
use redis::AsyncCommands;
use serde_json::{Value, json};
use socketio_client::SocketClient;
use test_support::RedisServer;

async fn two_instances(redis: &RedisServer, ttl_secs: u64) -> [TestGateway; 2] {
    <[_; 2]>::try_from(
        cluster(2, &redis.url(), |config| {
            config.settings_cache_ttl = Duration::from_secs(ttl_secs)
        })
        .await,
    )
    .ok()
    .unwrap()
}

/// `PUT /api/admin/tenants/{tenant}/settings` with `token`.
async fn put_settings(url: &str, token: &str, tenant: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .put(format!("{url}/api/admin/tenants/{tenant}/settings"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn settings(max_message_length: u32, max_room_members: u32) -> Value {
    json!({"max_message_length": max_message_length, "max_room_members": max_room_members})
}

/// `settings(..)` as stored: with the default history retention the body left out.
fn stored(max_message_length: u32, max_room_members: u32) -> Value {
    let mut settings = settings(max_message_length, max_room_members);
    settings["history_max_messages"] = json!(1000);
    settings["history_max_age_secs"] = json!(7 * 24 * 3600);
    settings
}

async fn send(client: &mut SocketClient, text: &str) -> Value {
    let reply = ack(client, "message", json!({"room": "general", "text": text})).await;
    if reply["id"].is_string() {
        next_named(client, "message").await;
    }
    reply
}

#[tokio::test]
async fn a_change_on_one_instance_is_enforced_on_the_other_right_after_the_write() {
    let redis = RedisServer::start().await;
    // A TTL far longer than the test: only the invalidation can make B see the change.
    let [a, b] = two_instances(&redis, 3600).await;
    let admin = login(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    let mut grace = connect_user(b.url(), "grace").await;
    join(&bob, "general").await;
    join(&grace, "general").await;
    let fifteen = "fifteen chars!!";
    assert!(
        send(&mut bob, fifteen).await["id"].is_string(),
        "B caches the defaults"
    );

    for round in 0..5 {
        let limit = if round % 2 == 0 { 10 } else { 20 };
        let written = put_settings(a.url(), &admin, "acme", &settings(limit, 100)).await;
        assert_eq!(written.status(), 200);
        let written: Value = written.json().await.unwrap();
        assert_eq!(written["settings"], stored(limit, 100));
        assert_eq!(
            written["invalidation"],
            json!({"expected": 2, "confirmed": 2})
        );

        // At once, on the other instance.
        let reply = send(&mut bob, fifteen).await;
        if limit == 10 {
            assert_eq!(
                error_of(&reply),
                "invalid text: longer than this tenant's limit of 10 characters",
                "round {round}"
            );
            let dm = ack(&bob, "dm", json!({"to": "alice", "text": fifteen})).await;
            assert_eq!(
                error_of(&dm),
                "invalid text: longer than this tenant's limit of 10 characters"
            );
            assert!(send(&mut bob, "ten chars!").await["id"].is_string());
        } else {
            assert!(reply["id"].is_string(), "round {round}: {reply}");
        }
        // Another tenant keeps its own settings.
        assert!(send(&mut grace, fifteen).await["id"].is_string());
    }
    let b_stats = stats(b.url()).await;
    assert!(b_stats["settings_invalidations"].as_u64().unwrap() >= 5);
    assert!(b_stats["settings_cache_hits"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn only_the_tenants_admins_change_its_settings_and_only_within_bounds() {
    let redis = RedisServer::start().await;
    let [a, _b] = two_instances(&redis, 120).await;
    let alice = login(a.url(), "alice").await; // admin of acme
    let bob = login(a.url(), "bob").await; // user of acme
    let grace = login(a.url(), "grace").await; // admin of globex
    let valid = settings(500, 50);

    let status = |response: reqwest::Response| response.status().as_u16();
    assert_eq!(
        status(put_settings(a.url(), &bob, "acme", &valid).await),
        403
    );
    assert_eq!(
        status(put_settings(a.url(), &grace, "acme", &valid).await),
        403
    );
    assert_eq!(
        status(put_settings(a.url(), &alice, "globex", &valid).await),
        403
    );
    assert_eq!(
        status(put_settings(a.url(), &"A".repeat(43), "acme", &valid).await),
        401
    );
    let anonymous = reqwest::Client::new()
        .put(format!("{}/api/admin/tenants/acme/settings", a.url()))
        .json(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    for invalid in [
        settings(0, 50),
        settings(2001, 50),
        settings(500, 0),
        json!({"max_message_length": 500}),
        json!({"max_message_length": 500, "max_room_members": 50, "color": "red"}),
        json!({"max_message_length": 500, "max_room_members": 50, "history_max_messages": 0}),
        json!({"max_message_length": 500, "max_room_members": 50, "history_max_age_secs": 1}),
    ] {
        let response = put_settings(a.url(), &alice, "acme", &invalid).await;
        assert_eq!(response.status(), 400, "{invalid}");
    }

    assert_eq!(
        status(put_settings(a.url(), &alice, "acme", &valid).await),
        200
    );
    let read = |token: String| {
        let url = format!("{}/api/admin/tenants/acme/settings", a.url());
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let by_member = read(bob.clone()).await;
    assert_eq!(by_member.status(), 200);
    assert_eq!(
        by_member.json::<Value>().await.unwrap(),
        json!({"tenant": "acme", "settings": stored(500, 50)})
    );
    assert_eq!(read(grace).await.status(), 403);
}

#[tokio::test]
async fn a_full_room_refuses_joins_counted_across_instances_and_per_tenant() {
    let redis = RedisServer::start().await;
    let [a, b] = two_instances(&redis, 120).await;
    let admin = login(a.url(), "alice").await;
    assert_eq!(
        put_settings(a.url(), &admin, "acme", &settings(2000, 2))
            .await
            .status(),
        200
    );
    let alice = connect_user(a.url(), "alice").await;
    let bob = connect_user(b.url(), "bob").await;
    let carol = connect_user(a.url(), "carol").await;
    let grace = connect_user(b.url(), "grace").await;
    let heidi = connect_user(a.url(), "heidi").await;
    join(&alice, "general").await;
    join(&bob, "general").await;

    let refused = ack(&carol, "join", json!({"room": "general"})).await;
    assert_eq!(refused, json!({"error": "room_full"}));
    // Joining again is not a new member.
    join(&alice, "general").await;
    // globex's `general` is another room, with globex's settings.
    join(&grace, "general").await;
    join(&heidi, "general").await;

    ack(&bob, "leave", json!({"room": "general"})).await;
    join(&carol, "general").await;
}

#[tokio::test]
async fn the_ttl_bounds_a_change_made_behind_the_gateways_back() {
    let redis = RedisServer::start().await;
    let [_a, b] = two_instances(&redis, 1).await;
    let mut bob = connect_user(b.url(), "bob").await;
    join(&bob, "general").await;
    let fifteen = "fifteen chars!!";
    assert!(send(&mut bob, fifteen).await["id"].is_string());

    // Written straight into Redis: no invalidation is published.
    let mut conn = redis.connection().await;
    let _: () = conn
        .set(
            "socket.io:tenant:acme:settings",
            settings(10, 100).to_string(),
        )
        .await
        .unwrap();
    assert!(
        send(&mut bob, fifteen).await["id"].is_string(),
        "still cached"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = send(&mut bob, fifteen).await;
    assert_eq!(
        error_of(&reply),
        "invalid text: longer than this tenant's limit of 10 characters"
    );
}

/// The invalidation subscription lives on the process's one Redis layer, with the adapter's
/// subscriptions and the sessions' commands: after Redis restarts (empty), logins, chat across
/// instances and the invalidation all come back through it, and a change made on one
/// instance is again enforced on the other at once.
#[tokio::test]
async fn after_a_redis_restart_sessions_chat_and_invalidations_recover_together() {
    let mut redis = RedisServer::start().await;
    let [a, b] = two_instances(&redis, 3600).await;
    redis.restart().await;

    for instance in [&a, &b] {
        let mut ready = false;
        for _ in 0..100 {
            if crate::support::readyz(instance.url()).await.0 == 200 {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "{} ready again after the restart", instance.url());
    }
    // Sessions: a login works again (the old sessions went with the empty Redis).
    let admin = login(a.url(), "alice").await;
    // The adapter: a message from A reaches a member on B.
    let mut bob = connect_user(b.url(), "bob").await;
    join(&bob, "general").await;
    let mut carol = connect_user(a.url(), "carol").await;
    join(&carol, "general").await;
    assert!(send(&mut carol, "across").await["id"].is_string());
    assert_eq!(next_named(&mut bob, "message").await.data["text"], "across");
    let fifteen = "fifteen chars!!";
    assert!(
        send(&mut bob, fifteen).await["id"].is_string(),
        "B caches the defaults"
    );

    // The invalidation: both subscriptions are back, and B enforces the change at once.
    let mut written = Value::Null;
    for _ in 0..100 {
        written = put_settings(a.url(), &admin, "acme", &settings(10, 100))
            .await
            .json()
            .await
            .unwrap();
        if written["invalidation"] == json!({"expected": 2, "confirmed": 2}) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        written["invalidation"],
        json!({"expected": 2, "confirmed": 2})
    );
    assert_eq!(
        error_of(&send(&mut bob, fifteen).await),
        "invalid text: longer than this tenant's limit of 10 characters"
    );
}

/// The counter `name` of `GET /api/stats` at `url`.
async fn counter(url: &str, name: &str) -> u64 {
    stats(url).await[name].as_u64().unwrap()
}

#[tokio::test]
async fn settings_that_cannot_be_read_keep_the_last_known_value_never_the_defaults() {
    let redis = RedisServer::start().await;
    let [a, _b] = two_instances(&redis, 3600).await;
    let admin = login(a.url(), "alice").await;
    let mut bob = connect_user(a.url(), "bob").await;
    join(&bob, "general").await;
    let fifteen = "fifteen chars!!";
    let put = put_settings(a.url(), &admin, "acme", &settings(10, 100)).await;
    assert_eq!(put.status(), 200);
    assert!(error_of(&send(&mut bob, fifteen).await).contains("limit of 10"));

    // The stored value becomes unreadable (garbage, then a key of another type), and every
    // instance is told to drop its copy: the next reads fail.
    let mut conn = redis.connection().await;
    let key = "socket.io:tenant:acme:settings";
    for corrupt in ["garbage", "wrong type"] {
        let _: () = conn.del(key).await.unwrap();
        if corrupt == "garbage" {
            let _: () = conn.set(key, "{not json").await.unwrap();
        } else {
            let _: () = conn.rpush(key, "x").await.unwrap();
        }
        let invalidations = counter(a.url(), "settings_invalidations").await;
        let failures_before = counter(a.url(), "settings_fetch_failures").await;
        let invalidation = json!({"tenant": "acme", "nonce": corrupt.replace(' ', "-")});
        let _: () = conn
            .publish("socket.io:invalidate", invalidation.to_string())
            .await
            .unwrap();
        let dropped = test_support::eventually_async(Duration::from_secs(5), || async {
            counter(a.url(), "settings_invalidations").await > invalidations
        })
        .await;
        assert!(dropped, "the invalidation did not arrive");
        // Still the last known limit, not the defaults' 2000.
        assert_eq!(
            error_of(&send(&mut bob, fifteen).await),
            "invalid text: longer than this tenant's limit of 10 characters",
            "{corrupt}"
        );
        let failures = counter(a.url(), "settings_fetch_failures").await;
        assert!(
            failures > failures_before,
            "{corrupt}: the read did not fail"
        );
    }
}

/// A Redis Cluster master restarted in place forgets its subscribers. Until an instance has
/// subscribed again to the invalidations (on that master's shard) it may miss one, so its
/// cache serves nothing meanwhile: a change written then is enforced on it at once (it used
/// to keep the old value for the whole TTL, while the write reported every subscriber
/// confirmed), and the cache is confirmed again once the subscription holds.
#[tokio::test]
async fn a_change_while_the_invalidations_master_restarts_is_enforced_at_once() {
    let mut redis = test_support::RedisCluster::start(3, 1).await;
    let [a, b] = <[_; 2]>::try_from(
        cluster(2, &redis.cluster_url(), |config| {
            config.settings_cache_ttl = Duration::from_secs(3600);
            // A re-subscription that fails waits 1.5-3 s: the change is written meanwhile.
            config.redis.redis_reconnect_min = Duration::from_secs(3);
        })
        .await,
    )
    .ok()
    .unwrap();
    // The restarted master comes back empty: the sessions it held are gone. Of eight of
    // Alice's, one on another shard survives (all eight there: 1 run in 6,561).
    let mut admins = Vec::new();
    for _ in 0..8 {
        admins.push(login(a.url(), "alice").await);
    }
    let mut bob = connect_user(b.url(), "bob").await;
    join(&bob, "general").await;
    let fifteen = "fifteen chars!!";
    assert!(
        send(&mut bob, fifteen).await["id"].is_string(),
        "B caches the defaults"
    );

    let slot = redis.slot_of("socket.io:invalidate").await;
    let master = redis.master_for_slot(slot).await;
    redis.restart_node(master).await;
    // A command sent to the restarted master may time out (503, up to 2 s seen): tried again.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let admin = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no write of the settings succeeded"
        );
        let status = put_settings(a.url(), &admins[0], "acme", &settings(10, 100))
            .await
            .status();
        match status.as_u16() {
            200 => break admins.swap_remove(0),
            401 => {
                admins.swap_remove(0);
                assert!(
                    !admins.is_empty(),
                    "every one of Alice's sessions was on that master"
                );
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    // The change is written; B may not have subscribed again yet (it waits 1.5-3 s).
    let reply = send(&mut bob, fifteen).await;
    assert_eq!(
        error_of(&reply),
        "invalid text: longer than this tenant's limit of 10 characters",
        "B enforces the change at once"
    );

    // Once both have subscribed again, a change is confirmed by both, and enforced.
    let confirmed_by_both = test_support::eventually_async(Duration::from_secs(15), || async {
        let written = put_settings(a.url(), &admin, "acme", &settings(20, 100)).await;
        let written: Value = written.json().await.unwrap();
        written["invalidation"] == json!({"expected": 2, "confirmed": 2})
    })
    .await;
    assert!(confirmed_by_both, "the instances never subscribed again");
    assert!(send(&mut bob, fifteen).await["id"].is_string());
}
