//! The chat page in a real browser: headless Debian `chromium` driven by playwright-core
//! (pinned in tests/browser). Two pages as two users of one tenant, on two gateway processes
//! sharing one Redis, log in, join one room, and each sees the other's typing notice and
//! message. Screenshots go to target/browser-artifacts/; with UPDATE_SCREENSHOT=1 the
//! two-instance one is copied to docs/chat-screenshot.png. A room's history in the page:
//! shown on join, older pages on scrolling up, and again after a reload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use crate::support::{
    ChildGateway, ack, browser_ready, clustered_args, connect_user, join, login, password,
    with_flag,
};
use serde_json::json;
use test_support::RedisServer;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn two_users_on_two_instances_chat_in_real_browsers() {
    let (browser_dir, [flag, modules]) = browser_ready();
    let redis = RedisServer::start().await;
    let args = with_flag(clustered_args(&redis.url()), &flag, &modules);
    let a = ChildGateway::start(&with_flag(args.clone(), "--instance-id", "gw-a")).await;
    let b = ChildGateway::start(&with_flag(args, "--instance-id", "gw-b")).await;
    // Both gateways answer logins (the pages log in through their form).
    login(a.url(), "alice").await;
    login(b.url(), "bob").await;

    let args = [
        "--a",
        a.url(),
        "--b",
        b.url(),
        "--user-a",
        "alice",
        "--user-b",
        "bob",
        &format!("--password-a={}", password("alice")),
        &format!("--password-b={}", password("bob")),
        "--room",
        "browser-test",
        "--timeout-ms",
        "20000",
    ];
    let (workspace, summary) = run_page_script(&browser_dir, "chat.mjs", &args).await;
    assert_eq!(summary["instances"], serde_json::json!(["gw-a", "gw-b"]));
    assert_eq!(summary["escaped"], true);

    if std::env::var_os("UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        let docs = workspace.join("docs/chat-screenshot.png");
        std::fs::copy(
            workspace
                .join("target/browser-artifacts")
                .join("chat-two-instances.png"),
            &docs,
        )
        .unwrap();
        println!("updated {}", docs.display());
    }
}

/// How many messages Bob leaves in the room before Alice's page joins: more than the page
/// asks per `history` request (50), so that scrolling up has an older page to load.
const SEEDED: usize = 60;
/// The text of seeded message `{i}` (markup, to be shown as text).
const SEED_TEXT: &str = "history {i} <i>as text</i>";

#[tokio::test]
async fn the_page_shows_a_rooms_history_on_join_on_scrolling_up_and_after_a_reload() {
    let (browser_dir, [flag, modules]) = browser_ready();
    let redis = RedisServer::start().await;
    let args = with_flag(clustered_args(&redis.url()), &flag, &modules);
    let gateway = ChildGateway::start(&with_flag(args, "--instance-id", "gw-a")).await;

    // Bob's messages, stored before Alice's page exists.
    let room = "history-test";
    let bob = connect_user(gateway.url(), "bob").await;
    join(&bob, room).await;
    for i in 1..=SEEDED {
        let text = SEED_TEXT.replace("{i}", &i.to_string());
        let sent = ack(&bob, "message", json!({"room": room, "text": text})).await;
        assert!(
            sent["id"].is_string(),
            "message {i} was not stored (an id in the ack): {sent}"
        );
    }
    bob.close().await;

    let args = [
        "--url",
        gateway.url(),
        "--user",
        "alice",
        "--from",
        "bob",
        &format!("--password={}", password("alice")),
        "--room",
        room,
        "--seeded",
        &SEEDED.to_string(),
        &format!("--seed-text={SEED_TEXT}"),
        "--sent",
        "3",
        "--timeout-ms",
        "15000",
    ];
    let (_, summary) = run_page_script(&browser_dir, "history.mjs", &args).await;
    assert_eq!(summary["escaped"], true);
}

/// Runs the page script `script` of `browser_dir` with `args` (screenshots to
/// `target/browser-artifacts/`) and returns the workspace directory and the script's JSON
/// summary, which must say `ok`.
async fn run_page_script(
    browser_dir: &Path,
    script: &str,
    args: &[&str],
) -> (PathBuf, serde_json::Value) {
    let workspace = manifest_dir().parent().unwrap().to_path_buf();
    let artifacts = workspace.join("target/browser-artifacts");
    let output = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .arg("--artifacts")
        .arg(&artifacts)
        .current_dir(browser_dir)
        .output()
        .await
        .unwrap_or_else(|err| {
            panic!("cannot run node ({err}): install the Debian package `nodejs`")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("node {script}: {stdout}");
    assert!(
        output.status.success(),
        "{script} failed (screenshots in {}): {stdout}\n{stderr}",
        artifacts.display()
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    (workspace, summary)
}
