//! Redis going away and coming back: local delivery never stops, nothing panics, sockets stay
//! connected, and cross-instance delivery resumes on its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::common::{Instance, client, fast_config, recv, start, start_with};
use redis_adapter::RedisConfig;
use serde_json::json;
use socketio_client::{ClientError, SocketClient};
use test_support::{RedisServer, SilencingProxy, eventually};

/// Emits from `sender` every 20 ms until `member` receives one of these emits (earlier ones
/// still queued are skipped); returns how long it took.
async fn time_until_delivered(
    sender: &Instance,
    member: &mut SocketClient,
    limit: Duration,
) -> Duration {
    let phase = rand_phase();
    let started = Instant::now();
    while started.elapsed() < limit {
        let _ = sender.io.to("chat").emit("probe", &phase).await;
        while let Ok(event) = member.next_event(Duration::from_millis(20)).await {
            if event.name == "probe" && event.data == json!(phase) {
                return started.elapsed();
            }
        }
    }
    panic!("no cross-instance delivery within {limit:?}");
}

fn rand_phase() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PHASE: AtomicU64 = AtomicU64::new(0);
    format!("phase-{}", PHASE.fetch_add(1, Ordering::Relaxed))
}

async fn drain(client: &mut SocketClient) {
    while client.next_event(Duration::from_millis(100)).await.is_ok() {}
}

#[tokio::test]
async fn a_redis_restart_is_survived_and_delivery_resumes_within_a_second() {
    let mut redis = RedisServer::start().await;
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(start(&redis.url(), fast_config("outage")).await);
    }
    let (a, b) = (&instances[0], &instances[1]);
    let mut local_a = client(a, &["chat"]).await;
    let mut remote_b = client(b, &["chat"]).await;
    time_until_delivered(a, &mut remote_b, Duration::from_secs(3)).await;
    drain(&mut local_a).await;

    redis.kill();
    // During the outage: local delivery goes on, the publish fails fast, nobody is dropped.
    for i in 0..5 {
        let started = Instant::now();
        let result = redis_adapter::confirmed(a.io.to("chat").emit("local", &i)).await;
        assert!(
            result.is_err(),
            "a confirmed publish without Redis must report failure"
        );
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "publish hung for {:?}",
            started.elapsed()
        );
        assert_eq!(recv(&mut local_a).await.data, json!(i));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(a.state.stats().publish_failures >= 5);

    redis.restart().await;
    let back_after = time_until_delivered(a, &mut remote_b, Duration::from_secs(5)).await;
    println!("cross-instance delivery back {back_after:?} after Redis accepted connections again");
    assert!(back_after < Duration::from_secs(1), "took {back_after:?}");

    // The instances find each other again and every socket is still connected.
    assert!(
        eventually(Duration::from_secs(3), || instances
            .iter()
            .all(|i| i.state.server_count("/") == Some(3)))
        .await
    );
    drain(&mut local_a).await;
    drain(&mut remote_b).await;
    for client in [&local_a, &remote_b] {
        let ack = client
            .emit_with_ack("ping", json!(null), Duration::from_millis(200))
            .await;
        assert!(
            !matches!(ack, Err(ClientError::Disconnected(_))),
            "a socket was dropped"
        );
    }
    assert!(instances.iter().all(|i| i.state.stats().reconnects >= 1));
}

#[tokio::test]
async fn a_subscriber_connection_killed_by_redis_is_rebuilt() {
    let redis = RedisServer::start().await;
    let a = start(&redis.url(), fast_config("killsub")).await;
    let b = start(&redis.url(), fast_config("killsub")).await;
    let mut member = client(&b, &["chat"]).await;
    time_until_delivered(&a, &mut member, Duration::from_secs(3)).await;

    let mut conn = redis.connection().await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(killed >= 2, "killed {killed} pubsub connections");

    let back_after = time_until_delivered(&a, &mut member, Duration::from_secs(3)).await;
    println!("delivery back {back_after:?} after CLIENT KILL TYPE pubsub");
    assert!(b.state.stats().reconnects >= 1);
}

#[tokio::test]
async fn a_subscriber_that_silently_stops_delivering_is_detected_and_rebuilt() {
    let redis = RedisServer::start().await;
    let proxy = SilencingProxy::start(redis.port()).await;
    let config = fast_config("silent");
    let fast_probe = RedisConfig {
        probe_interval: Duration::from_millis(200),
        probe_timeout: Duration::from_millis(300),
        ..RedisConfig::default()
    };
    let a = start_with(&redis.url(), config.clone(), fast_probe.clone()).await;
    let b = start_with(&proxy.url(), config, fast_probe).await;
    let mut member = client(&b, &["chat"]).await;
    time_until_delivered(&a, &mut member, Duration::from_secs(3)).await;

    assert_eq!(proxy.silence_subscribers(), 1);

    let back_after = time_until_delivered(&a, &mut member, Duration::from_secs(5)).await;
    println!("delivery back {back_after:?} after the subscriber connection went silent");
    assert!(b.state.stats().stale_subscriber >= 1);
}
