//! An official `socket.io-client` (Node, `tests/node/failover.mjs`) connected through the
//! deployment's nginx to one of three clustered gateway processes, in a conversation: its
//! instance is SIGKILLed while Bob keeps sending, it reconnects through nginx to another
//! instance, re-joins with `since`, and ends with every message Bob was acknowledged exactly
//! once, in order.
//!
//! Needs the Debian packages `nginx`, `redis-server`, `nodejs` and `npm`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::nginx_support::gateways_behind_nginx;
use crate::support::{ScriptPeer, TIMEOUT, clustered_args, connect_user, join, login};
use serde_json::json;
use test_support::RedisServer;

const INSTANCES: [&str; 3] = ["gw-a", "gw-b", "gw-c"];
/// How long Bob keeps talking after the kill (the client reconnects within about a second).
const TALKING: Duration = Duration::from_secs(3);

#[tokio::test]
async fn the_node_client_ends_with_every_acknowledged_message_once_after_its_instance_dies() {
    let redis = RedisServer::start().await;
    let (mut gateways, nginx) =
        gateways_behind_nginx(&clustered_args(&redis.url()), &INSTANCES).await;
    let token = login(nginx.url(), "alice").await;
    let room = "node-failover";
    let args = [
        "--url",
        nginx.url(),
        "--room",
        room,
        &format!("--token={token}"),
    ];
    let mut script = ScriptPeer::node("failover.mjs", "failover.mjs", &args.map(str::to_owned));
    let joined = script.step("joined").await;
    let before = joined["instance"].as_str().unwrap().to_owned();
    let victim = INSTANCES.iter().position(|id| *id == before).unwrap();
    let bob = connect_user(gateways[(victim + 1) % 3].url(), "bob").await;
    join(&bob, room).await;

    // Bob talks before, across and after the kill; what he was acked is what must arrive.
    let mut acked = Vec::new();
    let say = |i: usize| {
        let bob = &bob;
        async move {
            let text = format!("m{i}");
            let reply = bob
                .emit_with_ack("message", json!({"room": room, "text": text}), TIMEOUT)
                .await
                .unwrap();
            reply["id"].is_string().then_some(text)
        }
    };
    for i in 0..5 {
        acked.extend(say(i).await);
    }
    println!("the client is served by {before}: killing it mid-conversation");
    gateways[victim].kill();
    let killed = Instant::now();
    let mut i = 5;
    while killed.elapsed() < TALKING && i < 1000 {
        acked.extend(say(i).await);
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rejoined = script.step("rejoined").await;
    assert_eq!(rejoined["recovered"], true, "{rejoined}");
    assert_ne!(rejoined["instance"], before.as_str(), "{rejoined}");
    for _ in 0..5 {
        acked.extend(say(i).await);
        i += 1;
    }
    // Let the last ones arrive, then ask for the report.
    tokio::time::sleep(Duration::from_millis(500)).await;
    script.send("report").await;
    let report = script.next("report").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["duplicates"], json!([]), "{report}");
    let texts: Vec<String> = report["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    println!(
        "{} messages acked to Bob, {} received by the client across the failover from {before} \
         to {}",
        acked.len(),
        texts.len(),
        rejoined["instance"]
    );
    assert_eq!(
        texts, acked,
        "not every acknowledged message once, in order"
    );
    let _ = script.finish().await;
}
