//! Membership by heartbeats: instances that leave or die stop being counted and waited for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::common::{TIMEOUT, client, fast_config, start, start_cluster};
use test_support::{Killable, RedisServer, eventually};

/// An instance on its own runtime and thread, so that it can be killed: dropping the runtime
/// stops its heartbeats and connections without the goodbye of a clean close.
async fn killable(redis_url: String, prefix: &'static str) -> Killable {
    Killable::start(move || async move {
        let instance = start(&redis_url, fast_config(prefix)).await;
        (instance.url.clone(), instance)
    })
    .await
}

#[tokio::test]
async fn a_killed_instance_stops_being_counted_and_waited_for() {
    let redis = RedisServer::start().await;
    let cluster = start_cluster(&redis.url(), "kill", 2).await;
    let mut doomed = killable(redis.url(), "kill").await;
    let survivors = &cluster;
    assert!(
        eventually(TIMEOUT, || survivors
            .iter()
            .all(|i| i.state.server_count("/") == Some(3)))
        .await
    );
    let _live_client = client(&cluster[1], &["r"]).await;
    let _doomed_client = socketio_client::SocketClient::connect(doomed.url())
        .await
        .unwrap();

    doomed.kill();
    let killed_at = Instant::now();

    // A request started right away still waits for the dead instance, but never past its
    // timeout, and returns what the live instances have.
    let sockets = cluster[0].io.fetch_sockets().await.unwrap();
    let request_timeout = cluster[0].state.config().request_timeout;
    assert!(killed_at.elapsed() < request_timeout + Duration::from_millis(500));
    assert_eq!(sockets.len(), 1);

    // Within the heartbeat timeout it is gone from every survivor's count...
    let heartbeat_timeout = cluster[0].state.config().heartbeat_timeout;
    assert!(
        eventually(heartbeat_timeout + Duration::from_millis(500), || survivors
            .iter()
            .all(|i| i.state.server_count("/") == Some(2)))
        .await,
        "the killed instance is still counted"
    );
    // ...and requests stop waiting for it.
    let started = Instant::now();
    let sockets = cluster[0].io.fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 1);
    assert!(
        started.elapsed() < request_timeout,
        "fetch_sockets waited for a dead instance"
    );
}

#[tokio::test]
async fn a_closed_instance_is_dropped_at_once() {
    let redis = RedisServer::start().await;
    let mut cluster = start_cluster(&redis.url(), "leave", 3).await;
    let leaving = cluster.pop().unwrap();

    leaving.io.close().await;

    // Much sooner than the heartbeat timeout: the goodbye is explicit.
    assert!(
        eventually(Duration::from_millis(300), || cluster
            .iter()
            .all(|i| i.state.server_count("/") == Some(2)))
        .await
    );
}

#[tokio::test]
async fn a_new_instance_is_known_before_its_first_heartbeat() {
    let redis = RedisServer::start().await;
    let mut config = fast_config("hello");
    config.heartbeat_interval = Duration::from_secs(60);
    config.heartbeat_timeout = Duration::from_secs(180);
    let first = start(&redis.url(), config.clone()).await;
    let second = start(&redis.url(), config).await;

    // Hello and its reply introduce both sides without waiting a minute for heartbeats.
    assert!(
        eventually(TIMEOUT, || first.state.server_count("/") == Some(2)
            && second.state.server_count("/") == Some(2))
        .await
    );
}
