//! Catch-up joins (`Socket::hold`, `Held::join`): the broadcasts to a room that reach a
//! socket between the hold and the join are held back, then sent if the application still
//! wants them, once each; the filter's window after the join; a dropped hold leaves the
//! room; tickets keep a later hold of the same room from being ended by an earlier one; and
//! across two instances on a real Redis, a broadcast from the other instance during the
//! hold is held, then delivered.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use engine::{
    server::{Config, Engine, Packet},
    sockets::{MAX_HELD, Nsp, Socket, SocketIo},
};
use redis_adapter::{RedisConfig, Selection};
use test_support::RedisServer;

mod common;
use common::{Instance, Quiet, Ws, next_text, quiet};

async fn server() -> (String, Arc<Nsp>) {
    let io = Arc::new(SocketIo::new().namespace("/", Quiet));
    let nsp = io.of("/").unwrap().clone();
    (common::serve(Engine::new(Config::default(), io)).await, nsp)
}

/// A raw client connected to `/` of `url`, and its socket on the server.
async fn client(url: &str, nsp: &Nsp) -> (Ws, Arc<Socket>) {
    common::socket_client(url, nsp).await
}

/// A broadcast of `m` numbered `n` to `room`.
async fn to(nsp: &Arc<Nsp>, room: &str, n: u32) {
    nsp.to([room.to_owned()]).emit("m", &n).await.unwrap();
}

fn numbered(n: u32) -> String {
    format!(r#"42["m",{n}]"#)
}

/// Keeps the packets whose text is one of `wanted`.
fn only(wanted: &[u32]) -> impl Fn(&[u8]) -> bool + Send + Sync + 'static {
    let wanted: Vec<String> = wanted.iter().map(|n| numbered(*n)).collect();
    move |text| wanted.iter().any(|w| w.as_bytes() == text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_between_hold_and_join_are_sent_once_after_it_if_kept() {
    let (url, nsp) = server().await;
    let (mut held_ws, held) = client(&url, &nsp).await;
    let (mut member_ws, member) = client(&url, &nsp).await;
    member.join("a").await.unwrap();

    let hold = held.hold("a").await.unwrap();
    assert!(held.in_room("a"));
    to(&nsp, "a", 1).await;
    to(&nsp, "a", 2).await;
    to(&nsp, "a", 3).await;
    // Binary (held whole), and volatile (dropped while held).
    let binary = [
        Packet::message(r#"51-["file",{"_placeholder":true,"num":0}]"#),
        Packet::Binary(Bytes::from_static(&[1, 2, 3])),
    ];
    let a = Selection::room("a");
    assert_eq!(nsp.deliver(&a, None, &binary, false), 1, "the member only");
    nsp.to(["a"]).volatile().emit("typing", &0).await.unwrap();
    // Not through the held room: written at once.
    nsp.everyone().emit("all", &0).await.unwrap();
    held.emit("replay", &0).unwrap();
    for n in 1..=3 {
        assert_eq!(next_text(&mut member_ws).await, numbered(n));
    }
    assert!(next_text(&mut member_ws).await.starts_with("451-"));
    assert_eq!(next_text(&mut held_ws).await, r#"42["all",0]"#);
    assert_eq!(next_text(&mut held_ws).await, r#"42["replay",0]"#);
    quiet(&mut held_ws).await;

    // 2 is refused; the binary broadcast is kept with its attachment.
    let keep = |text: &[u8]| text != numbered(2).as_bytes();
    assert_eq!(hold.join(keep, Duration::ZERO), Some(3));
    assert_eq!(next_text(&mut held_ws).await, numbered(1));
    assert_eq!(next_text(&mut held_ws).await, numbered(3));
    assert!(next_text(&mut held_ws).await.starts_with("451-"));
    match common::next(&mut held_ws).await {
        Some(tokio_tungstenite::tungstenite::Message::Binary(bytes)) => {
            assert_eq!(&bytes[..], [1, 2, 3]);
        }
        other => panic!("expected the attachment, got {other:?}"),
    }
    quiet(&mut held_ws).await;

    // A plain member now.
    to(&nsp, "a", 4).await;
    assert_eq!(next_text(&mut held_ws).await, numbered(4));
    quiet(&mut held_ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_deliveries_reaching_the_socket_through_the_held_room_are_held() {
    let (url, nsp) = server().await;
    let (mut ws, socket) = client(&url, &nsp).await;
    socket.join("b").await.unwrap();
    let hold = socket.hold("a").await.unwrap();
    nsp.to(["a", "b"]).emit("m", &1).await.unwrap();
    nsp.to(["b"]).emit("m", &2).await.unwrap();
    to(&nsp, "a", 3).await;
    nsp.to(["a", "c"]).emit("m", &4).await.unwrap();
    nsp.to(["a"]).except(["b"]).emit("m", &5).await.unwrap();
    assert_eq!(next_text(&mut ws).await, numbered(1));
    assert_eq!(next_text(&mut ws).await, numbered(2));
    quiet(&mut ws).await;
    assert_eq!(hold.join(|_| true, Duration::ZERO), Some(2));
    assert_eq!(next_text(&mut ws).await, numbered(3));
    assert_eq!(next_text(&mut ws).await, numbered(4));
    quiet(&mut ws).await;
}

/// The seam under load: broadcasts stream to the room from another task while the socket
/// is held and joined; it receives a contiguous run of them up to the last, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_broadcast_is_lost_or_doubled_at_the_seam() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let (url, nsp) = server().await;
    let (mut ws, socket) = client(&url, &nsp).await;
    let stop = Arc::new(AtomicBool::new(false));
    let streaming = {
        let (nsp, stop) = (nsp.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Relaxed) {
                to(&nsp, "a", n).await;
                n += 1;
                if n % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let hold = socket.hold("a").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let held = hold.join(|_| true, Duration::ZERO).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    stop.store(true, Relaxed);
    let count = streaming.await.unwrap();
    assert!(held > 0, "nothing streamed during the hold");
    let first = next_text(&mut ws).await;
    let first: u32 = first
        .strip_prefix(r#"42["m","#)
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        first > 0 && first + (held as u32) < count,
        "the hold began mid-stream"
    );
    for n in first + 1..count {
        assert_eq!(next_text(&mut ws).await, numbered(n));
    }
    quiet(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_within_the_window_after_the_join_are_filtered_and_later_ones_not() {
    let (url, nsp) = server().await;
    let (mut ws, socket) = client(&url, &nsp).await;
    let hold = socket.hold("a").await.unwrap();
    to(&nsp, "a", 1).await;
    to(&nsp, "a", 2).await;
    let window = Duration::from_millis(600);
    let joined = tokio::time::Instant::now();
    assert_eq!(hold.join(only(&[2, 4]), window), Some(1));
    assert_eq!(next_text(&mut ws).await, numbered(2));
    to(&nsp, "a", 3).await;
    to(&nsp, "a", 4).await;
    assert_eq!(next_text(&mut ws).await, numbered(4));
    assert!(
        joined.elapsed() < window,
        "the machine was too slow for the test"
    );
    quiet(&mut ws).await;
    tokio::time::sleep_until(joined + window).await;
    to(&nsp, "a", 5).await;
    assert_eq!(next_text(&mut ws).await, numbered(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_hold_leaves_the_room_and_an_old_ticket_ends_nothing() {
    let (url, nsp) = server().await;
    let (mut ws, socket) = client(&url, &nsp).await;
    let hold = socket.hold("a").await.unwrap();
    assert!(nsp.holds("a"));
    to(&nsp, "a", 1).await;
    drop(hold);
    assert!(!socket.in_room("a"));
    assert!(!nsp.holds("a"), "the room is released: it was the last");
    to(&nsp, "a", 2).await;
    quiet(&mut ws).await;

    // Held, left, held again: the first hold's join and drop touch the second.
    let first = socket.hold("a").await.unwrap();
    socket.leave("a");
    to(&nsp, "a", 3).await;
    let second = socket.hold("a").await.unwrap();
    to(&nsp, "a", 4).await;
    assert_eq!(first.join(|_| true, Duration::ZERO), None);
    assert!(socket.in_room("a"), "still held by the second hold");
    quiet(&mut ws).await;
    assert_eq!(second.join(|_| true, Duration::ZERO), Some(1));
    assert_eq!(next_text(&mut ws).await, numbered(4));
    quiet(&mut ws).await;

    // A second hold of a held room replaces the first, whose drop then leaves nothing.
    socket.leave("a");
    let first = socket.hold("a").await.unwrap();
    to(&nsp, "a", 5).await;
    let second = socket.hold("a").await.unwrap();
    to(&nsp, "a", 6).await;
    drop(first);
    assert!(socket.in_room("a"));
    assert_eq!(second.join(|_| true, Duration::ZERO), Some(1));
    assert_eq!(next_text(&mut ws).await, numbered(6));
    quiet(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_over_its_bound_keeps_nothing_and_the_socket_is_still_a_member() {
    let (url, nsp) = server().await;
    let (mut ws, socket) = client(&url, &nsp).await;
    let hold = socket.hold("a").await.unwrap();
    let a = Selection::room("a");
    let packet = [Packet::message(r#"2["m",0]"#)];
    for _ in 0..=MAX_HELD {
        nsp.deliver(&a, None, &packet, false);
    }
    assert_eq!(hold.join(|_| true, Duration::from_secs(60)), None);
    quiet(&mut ws).await;
    assert!(socket.in_room("a"));
    to(&nsp, "a", 1).await;
    assert_eq!(next_text(&mut ws).await, numbered(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_from_another_instance_during_the_hold_is_held_then_delivered() {
    let redis = RedisServer::start().await;
    let here = Instance::start(&redis.url(), RedisConfig::default()).await;
    let there = Instance::start(&redis.url(), RedisConfig::default()).await;
    Instance::see_each_other(&[&here, &there]).await;
    let (url, here, there) = (here.url, here.nsp, there.nsp);
    let (mut ws, socket) = client(&url, &here).await;
    let (mut observer_ws, observer) = client(&url, &here).await;

    // The hold subscribes the room (no other member here). An observer joins after it: once
    // it has the other instance's broadcast, the held socket had it in the same delivery.
    for (room, kept) in [("a", true), ("b", false)] {
        let hold = socket.hold(room).await.unwrap();
        observer.join(room).await.unwrap();
        to(&there, room, 1).await;
        assert_eq!(next_text(&mut observer_ws).await, numbered(1));
        quiet(&mut ws).await;
        let sent = hold.join(move |_| kept, Duration::ZERO);
        assert_eq!(sent, Some(usize::from(kept)));
        if kept {
            assert_eq!(next_text(&mut ws).await, numbered(1));
        }
        quiet(&mut ws).await;
        to(&there, room, 2).await;
        assert_eq!(next_text(&mut ws).await, numbered(2));
        assert_eq!(next_text(&mut observer_ws).await, numbered(2));
    }
}
