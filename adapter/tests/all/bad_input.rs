//! Garbage on the adapter's channels is dropped and counted; delivery goes on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{TIMEOUT, client, recv, start_cluster};
use serde_json::json;
use test_support::{RedisServer, eventually};

async fn publish(redis: &RedisServer, channel: &str, payload: &[u8]) {
    let mut conn = redis.connection().await;
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query_async::<i64>(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn malformed_and_unknown_version_messages_are_dropped_and_counted() {
    let redis = RedisServer::start().await;
    let [a, b] = <[_; 2]>::try_from(start_cluster(&redis.url(), "bad", 2).await)
        .ok()
        .unwrap();
    let mut member = client(&b, &["chat"]).await;
    let origin = "AAAAAAAAAAAAAAAA";

    let malformed: Vec<Vec<u8>> = vec![
        vec![],
        vec![1],
        vec![1, 1],
        [&[1u8, 1][..], origin.as_bytes(), b"\xc1\xff not msgpack"].concat(),
        [&[1u8, 99][..], origin.as_bytes()].concat(),
        [&[1u8, 2][..], origin.as_bytes(), b"short"].concat(),
    ];
    let unknown_version: Vec<Vec<u8>> = vec![b"not an envelope".to_vec(), vec![42, 3]];
    for payload in malformed.iter().chain(&unknown_version) {
        publish(&redis, "bad#/#", payload).await;
    }

    let dropped = || {
        let stats = b.state.stats();
        (stats.dropped_malformed, stats.dropped_unknown_version)
    };
    assert!(
        eventually(TIMEOUT, || dropped()
            == (malformed.len() as u64, unknown_version.len() as u64))
        .await,
        "dropped counts {:?}",
        dropped()
    );

    // Delivery goes on as if nothing happened.
    a.io.to("chat").emit("msg", "still here").await.unwrap();
    assert_eq!(recv(&mut member).await.data, json!("still here"));
}

#[tokio::test]
async fn an_instance_ignores_its_own_messages() {
    let redis = RedisServer::start().await;
    let [a, _b] = <[_; 2]>::try_from(start_cluster(&redis.url(), "own", 2).await)
        .ok()
        .unwrap();
    let mut member = client(&a, &["chat"]).await;
    let before = a.state.stats().ignored_own;

    a.io.to("chat").emit("msg", "once").await.unwrap();

    assert_eq!(recv(&mut member).await.data, json!("once"));
    assert!(eventually(TIMEOUT, || a.state.stats().ignored_own > before).await);
    assert!(
        member.next_event(test_support::QUIET).await.is_err(),
        "delivered twice"
    );
}
