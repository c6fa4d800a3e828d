//! A Redis out of memory (a small `maxmemory`, `volatile-lru` as the deployments configure it):
//! the gateway keeps running, says why it refuses (`unavailable: Redis out of memory`), the
//! chat goes on with the limits counted in process and the settings last read, and `/metrics`
//! shows the memory, the limit and the evictions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{
    TestGateway, ack, clustered, connect_token, healthz, join, login, login_response, metric,
    metrics, next_named,
};
use redis::aio::MultiplexedConnection;
use serde_json::json;
use test_support::RedisServer;

/// `CONFIG SET name value`.
async fn config_set(conn: &mut MultiplexedConnection, name: &str, value: &str) {
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async(conn)
        .await
        .unwrap();
}

/// `used_memory` now.
async fn used_memory(conn: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn out_of_memory_is_reported_and_survived() {
    let redis = RedisServer::start().await;
    let mut conn = redis.connection().await;
    config_set(&mut conn, "maxmemory-policy", "volatile-lru").await;
    let gateway = TestGateway::start(clustered(&redis.url())).await;
    let url = gateway.url();
    let admin = login(url, "alice").await;
    let put = reqwest::Client::new()
        .put(format!("{url}/api/admin/tenants/acme/settings"))
        .bearer_auth(&admin)
        .json(&json!({"max_message_length": 10, "max_room_members": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let mut alice = connect_token(url, &admin).await;
    join(&alice, "lobby").await;

    // Keys Redis may evict (they expire) and one it may not, then a limit below what is used:
    // the next write evicts every volatile key and is still refused.
    let filler = "x".repeat(1024);
    for i in 0..100 {
        let () = redis::cmd("SET")
            .arg(format!("filler:volatile:{i}"))
            .arg(&filler)
            .arg("PX")
            .arg(600_000)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let () = redis::cmd("SET")
        .arg("filler:persistent")
        .arg("y".repeat(512 * 1024))
        .query_async(&mut conn)
        .await
        .unwrap();
    let limit = used_memory(&mut conn).await - 256 * 1024;
    config_set(&mut conn, "maxmemory", &limit.to_string()).await;

    let refused = login_response(url, "bob", "bob-password").await;
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        body["error"],
        "unavailable: Redis out of memory, retry later"
    );

    // The chat goes on: the message limit is counted in process, the message is spooled
    // (Redis cannot store it) and served to this instance's members, the tenant keeps its
    // limit.
    let reply = ack(
        &alice,
        "message",
        json!({"room": "lobby", "text": "still here"}),
    )
    .await;
    assert!(reply["id"].is_null() && reply["pending"] == true, "{reply}");
    assert_eq!(
        next_named(&mut alice, "message").await.data["text"],
        "still here"
    );
    let long = ack(
        &alice,
        "message",
        json!({"room": "lobby", "text": "far too long"}),
    )
    .await;
    assert_eq!(
        long["error"],
        "invalid text: longer than this tenant's limit of 10 characters"
    );
    assert_eq!(healthz(url).await, Some(200));

    let text = metrics(url).await;
    let evicted = metric(&text, "redis_evicted_keys_total").unwrap();
    println!("evicted {evicted} keys; maxmemory {limit}");
    assert!(evicted >= 100.0, "{evicted} keys evicted");
    assert_eq!(metric(&text, "redis_maxmemory_bytes"), Some(limit as f64));
    assert!(metric(&text, "redis_memory_used_bytes").unwrap() > 0.0);

    // Memory back: logins are back, and the spooled message is stored.
    config_set(&mut conn, "maxmemory", "0").await;
    assert_eq!(
        login_response(url, "bob", "bob-password").await.status(),
        200
    );
    let stored = next_named(&mut alice, "stored").await.data;
    assert_eq!(stored["key"], reply["key"], "{stored}");
    let history = ack(&alice, "history", json!({"room": "lobby"})).await;
    let last = &history["messages"][history["messages"].as_array().map_or(0, Vec::len) - 1];
    assert_eq!(last["text"], "still here");
    assert_eq!(last["id"], stored["id"]);
}
