//! A gateway killed with SIGKILL stops being counted, and waited for, by the others.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

// The heartbeat and request timeouts `clustered_args` gives.
use crate::support::{
    ChildGateway, ack, cluster_info, cluster_sockets, clustered_args, connect_user, join,
    next_named,
};
use gateway::testing::{HEARTBEAT_TIMEOUT, REQUEST_TIMEOUT};
use serde_json::json;
use test_support::{RedisServer, eventually_async};

#[tokio::test]
async fn a_killed_instance_drops_out_and_requests_stop_waiting_for_it() {
    let redis = RedisServer::start().await;
    let args = clustered_args(&redis.url());
    let a = ChildGateway::start(&args).await;
    let b = ChildGateway::start(&args).await;
    let mut doomed = ChildGateway::start(&args).await;
    let three = eventually_async(crate::support::TIMEOUT, || async {
        cluster_info(a.url()).await["servers"] == 3 && cluster_info(b.url()).await["servers"] == 3
    })
    .await;
    assert!(three, "the three instances did not find each other");
    let mut on_a = connect_user(a.url(), "alice").await;
    let on_b = connect_user(b.url(), "bob").await;
    let _on_doomed = connect_user(doomed.url(), "carol").await;
    join(&on_a, "lobby").await;
    join(&on_b, "lobby").await;

    doomed.kill();
    let killed = Instant::now();

    // Asked right away, the cluster-wide count still waits for the dead instance, but no
    // longer than the request timeout, and counts the live instances' sockets.
    let asking = async {
        let sockets = cluster_sockets(a.url()).await;
        (sockets, killed.elapsed())
    };
    let dropping = async {
        let dropped = eventually_async(HEARTBEAT_TIMEOUT + Duration::from_millis(500), || async {
            cluster_info(a.url()).await["servers"] == 2
                && cluster_info(b.url()).await["servers"] == 2
        })
        .await;
        (dropped, killed.elapsed())
    };
    let ((sockets, answered_after), (dropped, dropped_after)) = tokio::join!(asking, dropping);
    assert_eq!(sockets, 2);
    assert!(answered_after < REQUEST_TIMEOUT + Duration::from_millis(500));
    assert!(
        dropped,
        "the killed instance is still counted after the heartbeat timeout"
    );
    println!(
        "killed instance: dropped from membership after {dropped_after:?} \
         (heartbeat timeout {HEARTBEAT_TIMEOUT:?}); a request started at the kill \
         answered after {answered_after:?} (request timeout {REQUEST_TIMEOUT:?})"
    );

    // Once it is gone nobody waits for it, and the survivors keep chatting.
    let asked = Instant::now();
    assert_eq!(cluster_sockets(b.url()).await, 2);
    assert!(
        asked.elapsed() < REQUEST_TIMEOUT,
        "a request waited for the dead instance"
    );
    ack(
        &on_b,
        "message",
        json!({"room": "lobby", "text": "still here"}),
    )
    .await;
    assert_eq!(
        next_named(&mut on_a, "message").await.data["text"],
        "still here"
    );
}
