//! Burst runs against three in-process gateways clustered over a real Redis, the emitting one
//! serving `POST /bench/burst` (`--bench-endpoints`): every broadcast reaches every member on
//! the other instances, and the binary writes the figures `bench/compare.sh` reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::{bounded, logged_in, login_flag};
use gateway::testing::{TestGateway, clustered};
use loadtest::Error;
use loadtest::scenarios::burst::{self, BurstConfig};
use serde_json::Value;
use test_support::RedisServer;

const LIMIT: Duration = Duration::from_secs(60);
/// The tenant of the test account (crate::support::users_file).
const TENANT: &str = "bench";
/// Broadcasts per burst: fewer than socketioxide's per-socket buffer (128 packets), so that
/// no member can fall behind far enough for its instance to drop one, however fast the
/// emitter; these tests check the accounting, not the gateway's headroom.
const COUNT: u32 = 100;
/// Longest wait of a run that should complete, well within [`LIMIT`].
const MAX_WAIT: Duration = Duration::from_secs(20);

/// Three clustered gateways; the first one serves the bench endpoint.
async fn cluster(redis: &RedisServer) -> Vec<TestGateway> {
    let mut emitting = clustered(&redis.url());
    emitting.bench_endpoints = true;
    let gateways = vec![
        TestGateway::start(emitting).await,
        TestGateway::start(clustered(&redis.url())).await,
        TestGateway::start(clustered(&redis.url())).await,
    ];
    // Let the instances see each other before the room spans them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateways
}

#[tokio::test]
async fn every_member_on_the_other_instances_gets_every_broadcast_in_order() {
    let redis = RedisServer::start().await;
    let gateways = cluster(&redis).await;
    let members = [gateways[1].url(), gateways[2].url()];
    let mut config = BurstConfig::new(logged_in(&members), gateways[0].url(), COUNT, 4);
    config.tenant = Some(TENANT.to_owned());
    config.max_wait = MAX_WAIT;
    config.common.polling_share = 0.25;
    let report = bounded(LIMIT, burst::run(&config)).await.unwrap();
    println!("{report}");

    let figures = report.burst.as_ref().expect("burst figures");
    let count = u64::from(COUNT);
    assert_eq!(
        (figures.count, figures.emitted, figures.failed),
        (count, count, 0)
    );
    assert!(figures.emit_ms > 0.0, "{report}");
    assert!(figures.trigger_ms >= figures.emit_ms, "{report}");
    let all = figures.all_received_ms.expect("everything arrived");
    assert!(all > 0.0 && all < LIMIT.as_secs_f64() * 1000.0, "{report}");
    assert_eq!(figures.last_delivery_ms, Some(all), "{report}");
    assert_eq!(figures.received_per_member, vec![count; 4], "{report}");
    assert_eq!(figures.out_of_order_per_member.len(), 4, "{report}");
    assert_eq!(report.sent, count);
    assert_eq!(report.expected, 4 * count, "{report}");
    assert_eq!(report.received, 4 * count, "{report}");
    assert_eq!(
        (report.loss, report.duplicates, report.errors),
        (0, 0, 0),
        "{report}"
    );
    assert_eq!(report.polling_users, 1);
    assert_eq!(report.latency_ms.count, 4 * count, "{report}");
    assert!(report.deliveries_per_sec > 0.0, "{report}");
}

#[tokio::test]
async fn a_room_of_another_tenant_receives_nothing() {
    let redis = RedisServer::start().await;
    let gateways = cluster(&redis).await;
    let mut config = BurstConfig::new(logged_in(&[gateways[1].url()]), gateways[0].url(), 50, 2);
    config.tenant = Some("other".to_owned());
    config.max_wait = Duration::from_secs(1);
    let report = bounded(LIMIT, burst::run(&config)).await.unwrap();
    let figures = report.burst.as_ref().expect("burst figures");
    assert_eq!(figures.emitted, 50, "{report}");
    assert_eq!(figures.all_received_ms, None, "{report}");
    assert_eq!(figures.last_delivery_ms, None, "{report}");
    assert_eq!((report.received, report.loss), (0, 100), "{report}");
}

#[tokio::test]
async fn a_trigger_without_bench_endpoints_stops_the_run() {
    let redis = RedisServer::start().await;
    let gateways = cluster(&redis).await;
    // Instance 1 was started without --bench-endpoints: no such route.
    let config = BurstConfig::new(logged_in(&[gateways[2].url()]), gateways[1].url(), 10, 1);
    let error = bounded(LIMIT, burst::run(&config)).await.unwrap_err();
    assert!(
        matches!(&error, Error::Setup(why) if why.contains("404") && why.contains("bench endpoints")),
        "{error}"
    );
    let mut config = BurstConfig::new(logged_in(&[gateways[2].url()]), gateways[0].url(), 0, 1);
    assert!(matches!(burst::run(&config).await, Err(Error::Config(_))));
    config.count = 10;
    config.trigger = "http://192.0.2.1:3000".to_owned();
    assert!(matches!(burst::run(&config).await, Err(Error::Config(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_writes_the_burst_figures() {
    let redis = RedisServer::start().await;
    let gateways = cluster(&redis).await;
    let json = std::env::temp_dir().join(format!("loadtest-{}-burst.json", std::process::id()));
    let members = format!("{},{}", gateways[1].url(), gateways[2].url());
    let pid = std::process::id().to_string();
    let login = login_flag();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "burst",
            "--url",
            &members,
            "--trigger",
            gateways[0].url(),
            "--count",
            &COUNT.to_string(),
            "--members",
            "3",
            "--tenant",
            TENANT,
            "--login",
            &login,
            "--max-wait",
            "20s",
            "--server-pid",
            &pid,
            "--max-loss",
            "0",
            "--no-progress",
            "--json",
            json.to_str().unwrap(),
        ])
        .kill_on_drop(true)
        .output();
    let output = bounded(LIMIT, run).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("emit loop"), "{stdout}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["scenario"], "burst");
    assert_eq!(report["received"], 3 * COUNT);
    assert_eq!(report["expected"], 3 * COUNT);
    assert!(report["out_of_order"].is_u64(), "{report}");
    for key in [
        "emit_ms",
        "trigger_ms",
        "all_received_ms",
        "last_delivery_ms",
    ] {
        assert!(report["burst"][key].is_number(), "burst.{key} in {report}");
    }
    assert_eq!(report["burst"]["emitted"], COUNT);
    let out_of_order = report["burst"]["out_of_order_per_member"]
        .as_array()
        .unwrap();
    assert_eq!(out_of_order.len(), 3, "{report}");
    assert!(report["server_cpu_us_per_delivery"].is_number(), "{report}");
}
