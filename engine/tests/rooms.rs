//! Rooms and broadcasts on one instance: a broadcast is encoded once and reaches exactly the
//! selected local sockets, each once; and issue 15's slow-client policy on the engine: a
//! socket that stops reading is closed as too slow while the others receive everything, in
//! order, and volatile packets are dropped (counted) rather than queued.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use engine::{
    server::{Config, Engine},
    sockets::{DisconnectReason, Event, Namespace, Socket, SocketIo},
};
use serde_json::{Value, json};

mod common;
use common::{WAIT, Ws, closes, next_text, quiet, send, websocket};

/// `join` (acked once joined), `leave`, `say` (to the room but the sender), `shout` (to
/// the room, sender included, except the rooms named), `flood` (`n` messages of `pad` bytes
/// to the room), `whisper` (the same, volatile).
struct Chat;

fn arg(event: &Event, at: usize) -> String {
    event
        .args
        .get(at)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl Namespace for Chat {
    fn connected(&self, _: &Arc<Socket>) {}

    fn event(&self, socket: &Arc<Socket>, event: Event) {
        let socket = socket.clone();
        tokio::spawn(async move {
            let room = arg(&event, 0);
            match event.name.as_str() {
                "join" => socket.join(room).await.unwrap(),
                "leave" => socket.leave(&room),
                "say" => {
                    socket
                        .to([room])
                        .emit("said", &arg(&event, 1))
                        .await
                        .unwrap();
                }
                "shout" => {
                    let rooms: Vec<String> = room.split(',').map(str::to_owned).collect();
                    let except: Vec<String> = arg(&event, 1)
                        .split(',')
                        .filter(|room| !room.is_empty())
                        .map(str::to_owned)
                        .collect();
                    socket
                        .nsp()
                        .to(rooms)
                        .except(except)
                        .emit("shouted", &"!")
                        .await
                        .unwrap();
                }
                "flood" | "whisper" => {
                    let n = event.args.get(1).and_then(Value::as_u64).unwrap_or(0);
                    let pad =
                        "x".repeat(event.args.get(2).and_then(Value::as_u64).unwrap_or(0) as usize);
                    for seq in 0..n {
                        let broadcast = socket.nsp().to([room.clone()]);
                        let broadcast = if event.name == "whisper" {
                            broadcast.volatile()
                        } else {
                            broadcast
                        };
                        broadcast.emit("seq", &(seq, &pad)).await.unwrap();
                        // One broadcast at a time, as they come from the cluster.
                        if seq % 64 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                }
                _ => {}
            }
            if let Some(ack) = event.ack {
                ack.send(&json!(["done"])).unwrap();
            }
        });
    }

    fn disconnected(&self, _: &Arc<Socket>, _: DisconnectReason) {}
}

async fn server(config: Config) -> (String, Arc<SocketIo>, Engine) {
    let io = Arc::new(SocketIo::new().namespace("/", Chat));
    let engine = Engine::new(config, io.clone());
    (common::serve(engine.clone()).await, io, engine)
}

/// A raw client connected to `/`.
async fn client(url: &str) -> Ws {
    let mut ws = websocket(url, "EIO=4&transport=websocket").await.unwrap();
    assert!(next_text(&mut ws).await.starts_with('0'));
    send(&mut ws, "40").await;
    assert!(next_text(&mut ws).await.starts_with("40"));
    ws
}

/// Emits `args` with ack id `id` and waits for the ack.
async fn call(ws: &mut Ws, id: u64, args: Value) {
    send(ws, &format!("42{id}{args}")).await;
    assert_eq!(next_text(ws).await, format!(r#"43{id}["done"]"#));
}

#[tokio::test]
async fn a_broadcast_reaches_the_rooms_members_once_each_and_no_one_else() {
    let (url, _, _) = server(Config::default()).await;
    let mut alice = client(&url).await;
    let mut bob = client(&url).await;
    let mut carol = client(&url).await;
    let mut dave = client(&url).await;
    call(&mut alice, 1, json!(["join", "a"])).await;
    call(&mut bob, 1, json!(["join", "a"])).await;
    call(&mut bob, 2, json!(["join", "b"])).await;
    call(&mut carol, 1, json!(["join", "b"])).await;
    call(&mut dave, 1, json!(["join", "c"])).await;

    // To the room but the sender.
    call(&mut alice, 2, json!(["say", "a", "hi"])).await;
    assert_eq!(next_text(&mut bob).await, r#"42["said","hi"]"#);
    quiet(&mut alice).await;
    quiet(&mut carol).await;

    // Two rooms: bob is in both and gets it once; the sender too, being in `a`.
    send(&mut carol, r#"423["shout","a,b",""]"#).await;
    assert_eq!(next_text(&mut carol).await, r#"42["shouted","!"]"#);
    assert_eq!(next_text(&mut carol).await, r#"433["done"]"#);
    assert_eq!(next_text(&mut alice).await, r#"42["shouted","!"]"#);
    assert_eq!(next_text(&mut bob).await, r#"42["shouted","!"]"#);
    quiet(&mut bob).await;
    quiet(&mut dave).await;

    // Except a room: bob is in `b`, so only alice of `a` gets it.
    call(&mut dave, 2, json!(["shout", "a", "b"])).await;
    assert_eq!(next_text(&mut alice).await, r#"42["shouted","!"]"#);
    quiet(&mut bob).await;
}

#[tokio::test]
async fn leaving_or_disconnecting_ends_the_deliveries() {
    let (url, io, _) = server(Config::default()).await;
    let mut alice = client(&url).await;
    let mut bob = client(&url).await;
    let mut carol = client(&url).await;
    for ws in [&mut alice, &mut bob, &mut carol] {
        call(ws, 1, json!(["join", "a"])).await;
    }
    let nsp = io.of("/").unwrap();
    assert!(nsp.holds("a"));
    call(&mut bob, 2, json!(["leave", "a"])).await;
    send(&mut carol, "41").await;
    closes(&mut carol).await;
    call(&mut alice, 2, json!(["say", "a", "anyone?"])).await;
    quiet(&mut bob).await;
    call(&mut alice, 3, json!(["leave", "a"])).await;
    assert!(!nsp.holds("a"), "the room is empty: it is not held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_reading_is_closed_as_too_slow_and_the_others_get_everything_in_order()
{
    let (url, _, engine) = server(Config {
        max_buffered: 256 << 10,
        max_stall: Duration::from_millis(500),
        ..Config::default()
    })
    .await;
    let mut stalled = client(&url).await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(client(&url).await);
    }
    call(&mut stalled, 1, json!(["join", "r"])).await;
    for reader in &mut readers {
        call(reader, 1, json!(["join", "r"])).await;
    }
    // 20,000 messages of 1 KB: 20 MB, far more than the stalled member's socket buffers
    // and its 256 KiB bound.
    const N: u64 = 20_000;
    send(&mut readers[0], &format!(r#"422["flood","r",{N},1000]"#)).await;
    let mut tasks = Vec::new();
    for mut reader in readers {
        tasks.push(tokio::spawn(async move {
            let mut expected = 0;
            while expected < N {
                let text = tokio::time::timeout(WAIT, next_text(&mut reader))
                    .await
                    .unwrap();
                if text == r#"432["done"]"# {
                    continue;
                }
                assert!(
                    text.starts_with(&format!(r#"42["seq",[{expected},"#)),
                    "{expected}: {text:.40}"
                );
                expected += 1;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // The stalled member: what it finally reads ends with the close.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while common::next(&mut stalled).await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "the stalled member was not closed");
    assert_eq!(engine.slow_closed(), 1, "closed as too slow, and only it");
    let slow = engine
        .readings()
        .into_iter()
        .find(|reading| reading.name == "redis_adapter_local_slow_sockets_total")
        .map(|reading| reading.value);
    assert_eq!(slow, Some(1), "the metric says so too");
}

#[tokio::test]
async fn volatile_packets_are_dropped_for_a_member_that_cannot_take_them_and_counted() {
    let (url, io, _) = server(Config::default()).await;
    let mut stalled = client(&url).await;
    let mut sender = client(&url).await;
    call(&mut stalled, 1, json!(["join", "r"])).await;
    call(&mut sender, 1, json!(["join", "other"])).await;
    // 20,000 volatile packets of 1 KB to a member that reads nothing: its socket buffers
    // fill and the rest is dropped, not queued (the session stays open).
    call(&mut sender, 2, json!(["whisper", "r", 20_000, 1000])).await;
    let nsp = io.of("/").unwrap();
    let dropped = nsp.deliveries().volatile_dropped.load(Ordering::Relaxed);
    assert!(dropped > 0, "nothing was dropped");
    let mut received = 0u64;
    let mut last = None;
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(300), common::next(&mut stalled)).await
    {
        let text = message.into_text().unwrap().to_string();
        let seq: u64 = text
            .strip_prefix(r#"42["seq",["#)
            .and_then(|rest| rest.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(last < Some(seq), "out of order");
        last = Some(seq);
        received += 1;
    }
    assert_eq!(
        received + dropped,
        20_000,
        "each packet delivered or counted as dropped"
    );
    call(&mut stalled, 2, json!(["leave", "r"])).await;
}
