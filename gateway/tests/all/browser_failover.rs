//! Failover seen from a real browser: the chat page in headless Debian `chromium`
//! (playwright-core, `tests/browser/failover.mjs`) is opened through the deployment's nginx
//! (`deploy/nginx.conf.template`) in front of three clustered gateway processes. Alice logs in
//! and joins a room, and sees a message Bob sends there; the instance serving her (nginx
//! hashes 127.0.0.1 to one) is SIGKILLed, and Bob sends more at once, while her page is
//! reconnecting. The page must show that it lost the connection, reconnect through nginx to
//! another instance, re-join the room by itself (`join` with `since`: the id of the last
//! message it saw), and show the messages it missed, then one Bob sends after: each exactly
//! once, in order. Screenshots go to target/browser-artifacts/.
//!
//! Needs the Debian packages `chromium`, `nginx`, `redis-server`, `nodejs` and `npm`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, process::Stdio, time::Duration};

use crate::nginx_support::gateways_behind_nginx;
use crate::support::{browser_ready, clustered_args, connect_user, join, password, with_flag};
use serde_json::{Value, json};
use socketio_client::SocketClient;
use test_support::RedisServer;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{ChildStdout, Command},
};

const INSTANCES: [&str; 3] = ["gw-a", "gw-b", "gw-c"];
/// How many messages Bob sends while the page is reconnecting.
const MISSED: usize = 3;
/// How long one step of the page may take (the script's own waits are shorter); the first
/// includes launching Chromium, which the script allows a minute (`common.mjs`).
const STEP: Duration = Duration::from_secs(75);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The next JSON line of the script, within [`STEP`].
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>, waiting_for: &str) -> Value {
    let line = tokio::time::timeout(STEP, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("no line from failover.mjs within {STEP:?} ({waiting_for})"))
        .expect("reading failover.mjs's output")
        .unwrap_or_else(|| panic!("failover.mjs ended early ({waiting_for})"));
    println!("failover.mjs: {line}");
    serde_json::from_str(&line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
}

/// Asserts that `line` is the script's `step`, not its failure summary; returns the instance.
fn step_instance(line: &Value, step: &str) -> String {
    assert_eq!(line["step"], step, "failover.mjs failed: {line}");
    line["instance"].as_str().expect("an instance").to_owned()
}

#[tokio::test]
async fn the_page_fails_over_to_another_instance_through_nginx() {
    let (browser_dir, [flag, modules]) = browser_ready();
    let redis = RedisServer::start().await;
    let args = with_flag(clustered_args(&redis.url()), &flag, &modules);
    let (mut gateways, nginx) = gateways_behind_nginx(&args, &INSTANCES).await;
    let url = nginx.url().to_owned();

    let room = "failover";
    let first = "before the failover";
    let missed_text = "sent while you were away";
    let text = "still here after the failover?";
    let workspace = manifest_dir().parent().unwrap().to_path_buf();
    let artifacts = workspace.join("target/browser-artifacts");
    let mut script = Command::new("node")
        .arg("failover.mjs")
        .args(["--url", &url, "--user", "alice", "--from", "bob"])
        .arg(format!("--password={}", password("alice")))
        .args(["--room", room])
        .arg(format!("--first-text={first}"))
        .args(["--missed", &MISSED.to_string()])
        .arg(format!("--missed-text={missed_text}"))
        .arg(format!("--expect-text={text}"))
        .arg("--artifacts")
        .arg(&artifacts)
        .args(["--timeout-ms", "10000"])
        .current_dir(&browser_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| {
            panic!("cannot run node ({err}): install the Debian package `nodejs`")
        });
    let mut to_page = script.stdin.take().unwrap();
    let mut lines = BufReader::new(script.stdout.take().unwrap()).lines();

    // Alice is in the room, served by the instance nginx pins 127.0.0.1 to.
    let before = step_instance(&next_line(&mut lines, "joined").await, "joined");
    let victim = INSTANCES
        .iter()
        .position(|id| *id == before)
        .unwrap_or_else(|| panic!("the page shows an unknown instance {before:?}"));

    // Bob, straight on an instance that survives, is in the room and sends a first message,
    // which her page shows (the last id it has seen there).
    let survivor = (victim + 1) % INSTANCES.len();
    let mut bob = connect_user(gateways[survivor].url(), "bob").await;
    join(&bob, room).await;
    send(&bob, room, first).await;
    to_page.write_all(b"first\n").await.unwrap();
    assert_eq!(
        step_instance(&next_line(&mut lines, "seen").await, "seen"),
        before
    );

    // Killed; Bob's messages right after go out while the page has no connection (socket.io
    // waits at least half a second before its first reconnection attempt).
    println!("alice's page is served by {before}: killing it");
    gateways[victim].kill();
    for i in 1..=MISSED {
        send(&bob, room, &format!("{missed_text} {i}")).await;
    }
    to_page.write_all(b"killed\n").await.unwrap();

    // It showed the loss, reconnected elsewhere, re-joined the room, and shows what it missed.
    let rejoined = next_line(&mut lines, "rejoined").await;
    let after = step_instance(&rejoined, "rejoined");
    assert_ne!(after, before, "the page still shows the killed instance");
    assert!(
        INSTANCES.contains(&after.as_str()),
        "the page shows an unknown instance {after:?}"
    );
    println!("alice's page failed over from {before} to {after}");

    // And a live message after the re-join.
    send(&bob, room, text).await;
    to_page.write_all(b"sent\n").await.unwrap();

    let summary = next_line(&mut lines, "the message").await;
    let status = tokio::time::timeout(STEP, script.wait())
        .await
        .expect("failover.mjs did not exit")
        .expect("waiting for failover.mjs");
    assert_eq!(
        summary["ok"],
        true,
        "failover.mjs failed (screenshots in {}): {summary}",
        artifacts.display()
    );
    assert!(status.success(), "failover.mjs exited with {status}");
    assert_eq!(summary["before"], before.as_str());
    assert_eq!(summary["after"], after.as_str());
    assert_eq!(summary["shown"], MISSED + 2, "{summary}");
    // Drain Bob's own echoes so his close is clean.
    while bob.next_event(Duration::from_millis(100)).await.is_ok() {}
    bob.close().await;
}

/// Sends `text` to `room` as `client`, asserting it was stored (an id in the ack, not
/// `pending`).
async fn send(client: &SocketClient, room: &str, text: &str) {
    let sent = crate::support::ack(client, "message", json!({"room": room, "text": text})).await;
    assert!(
        sent["id"].is_string(),
        "the message {text:?} was not stored: {sent}"
    );
}
