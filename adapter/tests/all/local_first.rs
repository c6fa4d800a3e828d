//! Local delivery does not depend on Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{TIMEOUT, client, recv, start_cluster};
use serde_json::json;
use test_support::{RedisServer, eventually};

#[tokio::test]
async fn local_members_are_served_when_the_publish_fails() {
    let mut redis = RedisServer::start().await;
    let [a, _b] = <[_; 2]>::try_from(start_cluster(&redis.url(), "local", 2).await)
        .ok()
        .unwrap();
    let mut member = client(&a, &["chat"]).await;
    let failures_before = a.state.stats().publish_failures;

    redis.kill();
    // A caller that waits for Redis learns that the publish failed...
    let confirmed = redis_adapter::confirmed(a.io.to("chat").emit("msg", "redis is gone")).await;
    assert!(
        confirmed.is_err(),
        "the failed publish is reported to the caller"
    );
    assert_eq!(recv(&mut member).await.data, json!("redis is gone"));
    // ...one that does not is served locally all the same, and the failure is counted.
    let _queued_or_refused = a.io.to("chat").emit("msg", "still local").await;
    assert_eq!(recv(&mut member).await.data, json!("still local"));
    assert!(
        eventually(TIMEOUT, || a.state.stats().publish_failures
            > failures_before)
        .await
    );
}
