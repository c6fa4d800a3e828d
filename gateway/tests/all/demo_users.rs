//! The demo directory (published passwords, two admins) is loaded only on request: a
//! clustered gateway without `--users-file` and without `--demo-users` refuses to start and
//! says what to pass; with `--demo-users` the demo logins work.

use std::time::Duration;

use test_support::RedisServer;

use crate::support::{ChildGateway, login_response};

#[tokio::test]
async fn without_a_directory_or_demo_users_a_clustered_gateway_refuses_to_start() {
    let redis = RedisServer::start().await;
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--redis-url", &redis.url()])
        .env_remove("GATEWAY_USERS_FILE")
        .env_remove("GATEWAY_DEMO_USERS")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the gateway should exit at once, not serve")
        .expect("the gateway binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it started: {stderr}");
    assert!(
        stderr.contains("no user directory")
            && stderr.contains("--users-file")
            && stderr.contains("--demo-users"),
        "the message names both ways out: {stderr}"
    );

    // Asked for explicitly, the demo directory is there.
    let demo =
        ChildGateway::start(&["--redis-url".into(), redis.url(), "--demo-users".into()]).await;
    let response = login_response(demo.url(), "alice", "alice-demo").await;
    assert_eq!(response.status(), 200);
}
