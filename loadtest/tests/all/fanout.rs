//! Chat and broadcast runs against three in-process gateways clustered over a real Redis:
//! exact accounting over websocket and long-polling, and losses counted when an instance dies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::{bounded, killable, logged_in};
use gateway::testing::{TestGateway, clustered};
use loadtest::scenarios::{broadcast, chat};
use loadtest::{Error, Report};
use test_support::RedisServer;

const LIMIT: Duration = Duration::from_secs(60);

async fn cluster(redis: &RedisServer) -> Vec<TestGateway> {
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(TestGateway::start(clustered(&redis.url())).await);
    }
    // Let the instances see each other before rooms span them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateways
}

fn urls(gateways: &[TestGateway]) -> Vec<&str> {
    gateways.iter().map(|g| g.url()).collect()
}

/// Nothing lost, duplicated or reordered, and no error of any kind.
fn assert_exact(report: &Report) {
    println!("{report}");
    assert!(report.expected > 0, "{report}");
    assert_eq!(report.received, report.expected, "{report}");
    assert_eq!(report.loss, 0, "{report}");
    assert_eq!(report.duplicates, 0, "{report}");
    assert_eq!(report.out_of_order, 0, "{report}");
    assert_eq!(report.errors, 0, "{report}");
    assert_eq!(report.connect_failures, 0, "{report}");
    assert_eq!(report.connected, report.users, "{report}");
    assert!(
        report.latency_ms.count > 0 && report.latency_ms.p50 > 0.0,
        "{report}"
    );
    assert!(report.ack_ms.count > 0, "{report}");
    assert!(report.deliveries_per_sec > 0.0, "{report}");
}

#[tokio::test]
async fn chat_over_three_instances_loses_nothing() {
    let redis = RedisServer::start().await;
    let gateways = cluster(&redis).await;
    let config = chat::ChatConfig::new(
        logged_in(&urls(&gateways)),
        60,
        6,
        5.0,
        Duration::from_secs(2),
    );
    let report = bounded(LIMIT, chat::run(&config)).await.unwrap();
    assert_exact(&report);
    assert_eq!(report.scenario, "chat");
    assert_eq!(report.polling_users, 0);
    // 60 users at 5/s for 2 s: about 600 messages, each owed to 5 other members.
    assert!((500..=700).contains(&report.sent), "{report}");
    assert_eq!(report.expected, report.sent * 5, "{report}");
}

#[tokio::test]
async fn chat_with_rooms_on_two_of_three_instances_loses_nothing() {
    let redis = RedisServer::start().await;
    let gateways = cluster(&redis).await;
    let mut config = chat::ChatConfig::new(
        logged_in(&urls(&gateways)),
        60,
        6,
        5.0,
        Duration::from_secs(2),
    );
    config.instances_per_room = Some(2);
    let report = bounded(LIMIT, chat::run(&config)).await.unwrap();
    assert_exact(&report);
    assert_eq!(report.expected, report.sent * 5, "{report}");

    config.instances_per_room = Some(4);
    assert!(matches!(chat::run(&config).await, Err(Error::Config(_))));
}

#[tokio::test]
async fn chat_with_half_the_users_on_long_polling_loses_nothing() {
    let redis = RedisServer::start().await;
    let gateways = cluster(&redis).await;
    let mut common = logged_in(&urls(&gateways));
    common.polling_share = 0.5;
    let config = chat::ChatConfig::new(common, 60, 6, 5.0, Duration::from_secs(2));
    let report = bounded(LIMIT, chat::run(&config)).await.unwrap();
    assert_eq!(report.polling_users, 30);
    assert_exact(&report);
}

#[tokio::test]
async fn broadcast_reaches_every_member_from_every_sender() {
    let redis = RedisServer::start().await;
    let gateways = cluster(&redis).await;
    let mut config = broadcast::BroadcastConfig::new(
        logged_in(&urls(&gateways)),
        30,
        3,
        10.0,
        Duration::from_secs(1),
    );
    config.body_bytes = 200;
    config.common.polling_share = 0.2;
    let report = bounded(LIMIT, broadcast::run(&config)).await.unwrap();
    assert_exact(&report);
    assert_eq!(report.expected, report.sent * 29, "{report}");
}

#[tokio::test]
async fn a_killed_instance_shows_as_loss_and_disconnections() {
    let redis = RedisServer::start().await;
    let survivors = [
        TestGateway::start(clustered(&redis.url())).await,
        TestGateway::start(clustered(&redis.url())).await,
    ];
    let mut doomed = killable(clustered(&redis.url())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut common = logged_in(&[survivors[0].url(), survivors[1].url(), doomed.url()]);
    common.polling_share = 0.3;
    let config = chat::ChatConfig::new(common, 60, 6, 5.0, Duration::from_secs(4));

    let run = tokio::spawn(async move { chat::run(&config).await });
    // Setup takes well under a second; kill in the middle of the sending.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    tokio::task::spawn_blocking(move || doomed.kill())
        .await
        .unwrap();
    let report = bounded(LIMIT, run).await.unwrap().unwrap();
    println!("{report}");

    assert_eq!(report.connected, 60, "{report}");
    assert!(report.loss > 0, "{report}");
    assert!(report.received > 0, "{report}");
    // A third of the users were on the killed instance.
    assert_eq!(report.error_counts.disconnected, 20, "{report}");
    assert!(report.errors >= 20, "{report}");
    assert_eq!(report.duplicates, 0, "{report}");
}
