//! Catch-up joins (`RedisAdapterState::hold`, `Hold::join`) across two instances on a real
//! Redis: broadcasts to the room are held back for the socket while it is caught up, the
//! held ones the application keeps arrive in order before live ones, and the socket then
//! becomes a plain member.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{str::FromStr, time::Duration};

use crate::common::{TIMEOUT, assert_quiet, client, recv, start_cluster};
use socketioxide::socket::Sid;
use socketioxide_core::{
    Value,
    packet::{Packet, PacketData},
};
use test_support::{RedisServer, eventually};

/// The number a test broadcast `["msg", n]` carries.
fn number(packet: &Packet) -> Option<u64> {
    let PacketData::Event(Value::Str(text, _), _) = &packet.inner else {
        return None;
    };
    let (_, n): (String, u64) = serde_json::from_str(text.as_str()).ok()?;
    Some(n)
}

#[tokio::test]
async fn a_held_socket_gets_what_it_keeps_in_order_then_live_ones_then_joins() {
    let redis = RedisServer::start().await;
    let [a, b] = <[_; 2]>::try_from(start_cluster(&redis.url(), "catchup", 2).await)
        .ok()
        .unwrap();
    let mut late = client(&b, &[]).await;
    let sid = Sid::from_str(late.sid()).unwrap();
    let hold = b.state.hold("/", sid, "chat").await.unwrap();
    for n in 1..=3u64 {
        redis_adapter::confirmed(a.io.to("chat").emit("msg", &n))
            .await
            .unwrap();
    }
    // Held: nothing reaches the socket yet.
    assert_quiet(&mut late).await;
    // The application "replayed" 2 itself: it keeps the others.
    let sent = hold.join(|packet| number(packet) != Some(2));
    assert_eq!(sent, Some(2));
    let held: Vec<_> = [recv(&mut late).await, recv(&mut late).await]
        .into_iter()
        .map(|event| event.data)
        .collect();
    assert_eq!(held, [serde_json::json!(1), serde_json::json!(3)]);
    // Live ones pass the same filter during the grace period, then it is a member.
    for n in [2u64, 4] {
        redis_adapter::confirmed(a.io.to("chat").emit("msg", &n))
            .await
            .unwrap();
    }
    assert_eq!(recv(&mut late).await.data, serde_json::json!(4));
    let member = eventually(TIMEOUT, || {
        b.io.within("chat")
            .sockets()
            .iter()
            .any(|socket| socket.id == sid)
    })
    .await;
    assert!(member, "not a member after the grace period");
    redis_adapter::confirmed(a.io.to("chat").emit("msg", &2u64))
        .await
        .unwrap();
    assert_eq!(recv(&mut late).await.data, serde_json::json!(2));
}

#[tokio::test]
async fn a_hold_dropped_without_join_leaves_the_socket_out() {
    let redis = RedisServer::start().await;
    let [a, b] = <[_; 2]>::try_from(start_cluster(&redis.url(), "catchdrop", 2).await)
        .ok()
        .unwrap();
    let mut late = client(&b, &[]).await;
    let sid = Sid::from_str(late.sid()).unwrap();
    let hold = b.state.hold("/", sid, "chat").await.unwrap();
    redis_adapter::confirmed(a.io.to("chat").emit("msg", &1u64))
        .await
        .unwrap();
    drop(hold);
    redis_adapter::confirmed(a.io.to("chat").emit("msg", &2u64))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_quiet(&mut late).await;
    assert!(b.io.within("chat").sockets().is_empty());
}
