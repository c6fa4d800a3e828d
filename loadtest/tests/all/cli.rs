//! Thresholds, and the `loadtest` binary end to end: exit codes and the `--json` contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use crate::support::{bounded, common};
use gateway::testing::{TestGateway, standalone};
use loadtest::scenarios::chat;
use loadtest::{Report, Thresholds};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// A short chat run against one standalone gateway.
async fn short_chat(url: &str) -> Report {
    let mut config = chat::ChatConfig::new(common(&[url]), 8, 4, 5.0, Duration::from_secs(1));
    config.settle = Duration::from_millis(500);
    bounded(LIMIT, chat::run(&config)).await.unwrap()
}

#[tokio::test]
async fn a_p99_below_any_real_latency_misses_the_threshold() {
    let gateway = TestGateway::start(standalone()).await;
    let mut report = short_chat(gateway.url()).await;
    assert_eq!(report.loss, 0, "{report}");
    assert!(report.judge(&Thresholds::default()).passed);
    let verdict = report.judge(&Thresholds {
        max_p99_ms: Some(0.001),
        max_loss: None,
    });
    assert!(!verdict.passed);
    assert!(verdict.violations[0].contains("p99"), "{verdict:?}");
    assert!(
        report
            .judge(&Thresholds {
                max_p99_ms: Some(60_000.0),
                max_loss: Some(0),
            })
            .passed
    );
}

fn json_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("loadtest-{}-{name}.json", std::process::id()))
}

async fn loadtest(args: &[&str]) -> std::process::Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(args)
        .kill_on_drop(true)
        .output();
    bounded(LIMIT, run).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_1_on_a_missed_threshold_and_writes_the_json_contract() {
    let gateway = TestGateway::start(standalone()).await;
    let json = json_path("threshold");
    // The gateway runs in this process: measure it as the server.
    let pid = std::process::id().to_string();
    let output = loadtest(&[
        "chat",
        "--url",
        gateway.url(),
        "--users",
        "6",
        "--room-size",
        "3",
        "--rate",
        "5/s",
        "--duration",
        "1s",
        "--settle",
        "500ms",
        "--server-pid",
        &pid,
        "--no-progress",
        "--max-p99",
        "0.001",
        "--json",
        json.to_str().unwrap(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("threshold missed"), "{stderr}");
    assert!(stdout.contains("MISSED"), "{stdout}");

    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    for key in [
        "scenario",
        "deliveries_per_sec",
        "expected",
        "received",
        "duplicates",
        "out_of_order",
        "errors",
        "join_retries",
        "latency_ms",
        "connect_ms",
        "connect_failures",
        "sent",
        "duration_s",
        "loadtest_cpu_us_per_delivery",
        "server_cpu_s",
        "server_cpu_us_per_delivery",
        "server_rss_bytes",
    ] {
        assert!(report.get(key).is_some(), "missing {key} in {report}");
    }
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(report["latency_ms"][key].is_number(), "latency_ms.{key}");
    }
    for key in ["p50", "p99", "max"] {
        assert!(report["connect_ms"][key].is_number(), "connect_ms.{key}");
    }
    assert_eq!(report["scenario"], "chat");
    assert_eq!(report["thresholds"]["passed"], false);
    assert!(report["received"].as_u64().unwrap() > 0);
    assert_eq!(report["received"], report["expected"]);
    assert!(report["server_rss_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_0_when_thresholds_hold_and_reports_idle_memory() {
    let gateway = TestGateway::start(standalone()).await;
    let json = json_path("idle");
    let pid = std::process::id().to_string();
    let output = loadtest(&[
        "idle",
        "--url",
        gateway.url(),
        "--connections",
        "50",
        "--polling-share",
        "0.2",
        "--hold",
        "2s",
        "--server-pid",
        &pid,
        "--no-progress",
        "--max-p99",
        "60000",
        "--json",
        json.to_str().unwrap(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["scenario"], "idle");
    assert_eq!(report["connected"], 50);
    assert_eq!(report["polling_users"], 10);
    assert!(report["rss_per_connection_bytes"].is_number(), "{report}");
    assert!(
        report["loadtest_rss_per_socket_bytes"].is_number(),
        "{report}"
    );
}

#[tokio::test]
async fn the_binary_exits_2_when_the_run_cannot_be_set_up() {
    // Nothing listens on port 1; a remote target is refused without --allow-remote.
    for url in ["http://127.0.0.1:1", "http://192.0.2.1:3000"] {
        let output = loadtest(&[
            "connect",
            "--url",
            url,
            "--connections",
            "2",
            "--hold",
            "1s",
            "--timeout",
            "1s",
            "--no-progress",
        ])
        .await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains("loadtest:"), "{stderr}");
    }
}
