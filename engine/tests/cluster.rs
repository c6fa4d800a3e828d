//! Three engine instances sharing rooms through a real Redis (a `redis-server` of the test's
//! own): broadcasts reach exactly the selected sockets on every instance, once each, with
//! the packet their sender encoded; what is not a broadcast is dropped and counted; the
//! official `@socket.io/redis-emitter` (npm, pinned) reaches the engine's sockets unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{sync::Arc, time::Duration};

use engine::{
    cluster::ClusterFront,
    server::{Config, Engine},
    sockets::{DisconnectReason, Event, Namespace, Socket, SocketIo},
};
use redis_adapter::{
    Counters, EmitterConfig, Id, Inbound, NamespaceBus, Redis, RedisAdapterConfig, RedisConfig,
    Room,
};
use serde_json::{Value, json};
use test_support::RedisServer;

mod common;
use common::{Ws, next_text, quiet, send, websocket};

/// `join` (acked once joined), `say` (to a room but the sender), `shout` (to rooms except
/// rooms), `all` (everyone).
struct Chat;

fn names(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(',')
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Namespace for Chat {
    /// A socket whose CONNECT payload names `rooms` joins them (the burst's members).
    fn connected(&self, socket: &Arc<Socket>) {
        let rooms: Vec<String> = socket
            .auth()
            .as_ref()
            .and_then(|auth| auth.get("rooms"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let socket = socket.clone();
        tokio::spawn(async move {
            for room in rooms {
                socket.join(room).await.unwrap();
            }
        });
    }

    fn event(&self, socket: &Arc<Socket>, event: Event) {
        let socket = socket.clone();
        tokio::spawn(async move {
            let first = event.args.first();
            match event.name.as_str() {
                "join" => {
                    for room in names(first) {
                        socket.join(room).await.unwrap();
                    }
                }
                "say" => {
                    socket
                        .to(names(first))
                        .emit("said", &event.args[1])
                        .await
                        .unwrap();
                }
                "shout" => {
                    let except = names(event.args.get(1));
                    socket
                        .nsp()
                        .to(names(first))
                        .except(except)
                        .emit("shouted", &"!")
                        .await
                        .unwrap();
                }
                "all" => {
                    socket.nsp().everyone().emit("all", &"hello").await.unwrap();
                }
                _ => {}
            }
            if let Some(ack) = event.ack {
                ack.send(&json!(["done"])).unwrap();
            }
        });
    }

    fn disconnected(&self, _: &Arc<Socket>, _: DisconnectReason) {}

    /// Every broadcast from another instance is delivered but a `said` of `"unrelayed"` to one
    /// room.
    fn relayed(&self, rooms: &[Room], data: &str) -> bool {
        !(rooms.len() == 1 && data == r#"["said","unrelayed"]"#)
    }

    /// Other instances see a socket's CONNECT payload.
    fn describe(&self, socket: &Arc<Socket>) -> Value {
        socket.auth().unwrap_or(Value::Null)
    }
}

/// One instance: its URL and its cluster front end.
struct Instance {
    url: String,
    io: Arc<SocketIo>,
    front: Arc<ClusterFront<Redis>>,
    counters: Arc<Counters>,
}

async fn instance(redis: &RedisServer) -> Instance {
    let io = Arc::new(SocketIo::new().namespace("/", Chat));
    let connection = Arc::new(
        Redis::connect(&redis.url(), RedisConfig::default())
            .await
            .unwrap(),
    );
    let counters = Arc::new(Counters::default());
    let bus = NamespaceBus::new(
        connection,
        &RedisAdapterConfig::default()
            .with_prefix("engine-test")
            .with_emitter(EmitterConfig::new("socket.io")),
        counters.clone(),
        "/",
        Id::random(),
    );
    let front = ClusterFront::attach(io.of("/").unwrap(), bus)
        .await
        .unwrap();
    let url = common::serve(Engine::new(Config::default(), io.clone())).await;
    Instance {
        url,
        io,
        front,
        counters,
    }
}

async fn cluster(redis: &RedisServer) -> Vec<Instance> {
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(instance(redis).await);
    }
    // Each instance counts the others before broadcasts are relied on.
    let seen = test_support::eventually(Duration::from_secs(10), || {
        instances
            .iter()
            .all(|instance| instance.front.bus().server_count() == 3)
    })
    .await;
    assert!(seen, "the instances did not see each other");
    instances
}

/// A raw client connected to `/` of `url`, in `rooms` (comma-separated).
async fn member(url: &str, rooms: &str) -> Ws {
    named(url, rooms, "").await
}

/// A member whose CONNECT payload is `{"name": name}` (none when `name` is empty).
async fn named(url: &str, rooms: &str, name: &str) -> Ws {
    let mut ws = websocket(url, "EIO=4&transport=websocket").await.unwrap();
    assert!(next_text(&mut ws).await.starts_with('0'));
    if name.is_empty() {
        send(&mut ws, "40").await;
    } else {
        send(&mut ws, &format!("40{}", json!({ "name": name }))).await;
    }
    assert!(next_text(&mut ws).await.starts_with("40"));
    call(&mut ws, 1, json!(["join", rooms])).await;
    ws
}

async fn call(ws: &mut Ws, id: u64, args: Value) {
    send(ws, &format!("42{id}{args}")).await;
    assert_eq!(next_text(ws).await, format!(r#"43{id}["done"]"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_broadcast_reaches_its_members_on_every_instance_once_each() {
    let redis = RedisServer::start().await;
    let instances = cluster(&redis).await;
    let mut sender = member(&instances[0].url, "a").await;
    let mut near = member(&instances[0].url, "a").await;
    let mut far = member(&instances[1].url, "a,b").await;
    let mut farther = member(&instances[2].url, "a").await;
    let mut outsider = member(&instances[2].url, "c").await;

    call(&mut sender, 2, json!(["say", "a", "hi"])).await;
    for ws in [&mut near, &mut far, &mut farther] {
        assert_eq!(next_text(ws).await, r#"42["said","hi"]"#);
    }
    quiet(&mut sender).await;
    quiet(&mut outsider).await;

    // Two rooms: `far` is in both and gets it once.
    call(&mut outsider, 2, json!(["shout", "a,b", ""])).await;
    for ws in [&mut sender, &mut near, &mut far, &mut farther] {
        assert_eq!(next_text(ws).await, r#"42["shouted","!"]"#);
    }
    quiet(&mut far).await;

    // Except a room: `far` is in `b`.
    call(&mut outsider, 3, json!(["shout", "a", "b"])).await;
    for ws in [&mut sender, &mut near, &mut farther] {
        assert_eq!(next_text(ws).await, r#"42["shouted","!"]"#);
    }
    quiet(&mut far).await;

    // Everyone, the sender included.
    send(&mut far, r#"42["all"]"#).await;
    for ws in [
        &mut sender,
        &mut near,
        &mut far,
        &mut farther,
        &mut outsider,
    ] {
        assert_eq!(next_text(ws).await, r#"42["all","hello"]"#);
    }
}

/// A broadcast prepared for a caller that publishes it itself (from a Redis script): nothing
/// is sent until the caller publishes its one message, which reaches the other instances'
/// members, and delivers it here.
/// The namespace decides what other instances' broadcasts it delivers (the gateway drops a
/// line it already sent its members after a gap); its own members get everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_from_another_instance_is_delivered_only_if_the_namespace_admits_it() {
    let redis = RedisServer::start().await;
    let instances = cluster(&redis).await;
    let mut sender = member(&instances[0].url, "a").await;
    let mut near = member(&instances[0].url, "a").await;
    let mut far = member(&instances[1].url, "a").await;

    call(&mut sender, 2, json!(["say", "a", "unrelayed"])).await;
    call(&mut sender, 3, json!(["say", "a", "relayed"])).await;
    assert_eq!(next_text(&mut near).await, r#"42["said","unrelayed"]"#);
    assert_eq!(next_text(&mut near).await, r#"42["said","relayed"]"#);
    // In order, or not at all: the first never comes.
    assert_eq!(next_text(&mut far).await, r#"42["said","relayed"]"#);
    quiet(&mut far).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_broadcast_reaches_the_members_once_its_caller_publishes_it() {
    let redis = RedisServer::start().await;
    let instances = cluster(&redis).await;
    let mut near = member(&instances[0].url, "a").await;
    let mut far = member(&instances[1].url, "a").await;
    let mut outsider = member(&instances[2].url, "c").await;
    let nsp = instances[0].io.of("/").unwrap();

    let prepared = nsp.to(["a"]).prepare("said", &"prepared").unwrap();
    let [message] = prepared.outgoing() else {
        panic!("one message per room, got {}", prepared.outgoing().len());
    };
    quiet(&mut near).await;
    quiet(&mut far).await;

    let publisher = Redis::connect(&redis.url(), RedisConfig::default())
        .await
        .unwrap();
    let receivers = publisher
        .publish_now(&message.channel, &message.payload)
        .await
        .unwrap();
    assert!(receivers >= 1, "no instance listens to the room's channel");
    assert_eq!(next_text(&mut far).await, r#"42["said","prepared"]"#);
    assert_eq!(prepared.deliver_locally(), 1);
    assert_eq!(next_text(&mut near).await, r#"42["said","prepared"]"#);
    quiet(&mut outsider).await;
    quiet(&mut far).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_broadcast_is_dropped_and_counted() {
    let redis = RedisServer::start().await;
    let instances = cluster(&redis).await;
    let mut listener = member(&instances[1].url, "a").await;
    let front = instances[1].front.clone();
    let room = redis_adapter::Room::Borrowed("a");
    for garbage in [
        &b"garbage"[..],
        b"\x01\x00\x00\x01\x00\x01a",
        b"\x01\x00\x00\x01\x00\x01a\x00\x00not a packet",
    ] {
        front.clone().on_request(Id::random(), garbage, Some(&room));
    }
    let dropped = instances[1].counters.snapshot().dropped_malformed;
    assert_eq!(dropped, 3);
    quiet(&mut listener).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_redis_emitter_reaches_the_engines_sockets() {
    let redis = RedisServer::start().await;
    let instances = cluster(&redis).await;
    let mut a1 = member(&instances[0].url, "a").await;
    let mut a2 = member(&instances[1].url, "a,b").await;
    let mut c1 = member(&instances[2].url, "c").await;
    let emit = |step: &'static str| {
        let url = redis.url();
        async move {
            let done = common::run_node("emitter.mjs", &url, step).await;
            assert_eq!(done["ok"], true, "{done}");
        }
    };

    emit("room").await;
    for ws in [&mut a1, &mut a2] {
        assert_eq!(next_text(ws).await, r#"42["news",{"step":"room"}]"#);
    }
    quiet(&mut c1).await;

    emit("except").await;
    assert_eq!(next_text(&mut a1).await, r#"42["news",{"step":"except"}]"#);
    quiet(&mut a2).await;

    emit("all").await;
    for ws in [&mut a1, &mut a2, &mut c1] {
        assert_eq!(next_text(ws).await, r#"42["news",{"step":"all"}]"#);
    }

    emit("binary").await;
    for ws in [&mut a1, &mut a2] {
        assert_eq!(
            next_text(ws).await,
            r#"451-["file",{"_placeholder":true,"num":0}]"#
        );
        match common::next(ws).await {
            Some(tokio_tungstenite::tungstenite::Message::Binary(bytes)) => {
                assert_eq!(&bytes[..], [1, 2, 3]);
            }
            other => panic!("expected the attachment, got {other:?}"),
        }
    }

    emit("join").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    emit("joined").await;
    assert_eq!(next_text(&mut c1).await, r#"42["news",{"step":"joined"}]"#);
    quiet(&mut a1).await;

    emit("kick").await;
    assert_eq!(next_text(&mut c1).await, "41");
    quiet(&mut a2).await;
}

/// A burst member: counts events `n` numbered 0, 1, 2... that arrive in order.
#[derive(Clone, Default)]
struct Counted {
    next: Arc<std::sync::atomic::AtomicU64>,
    wrong: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(serde::Deserialize)]
struct Numbered {
    i: u64,
}

impl socketio_client::EventHandler for Counted {
    fn on_event(
        &mut self,
        event: socketio_client::RawEvent<'_>,
    ) -> Result<(), socketio_client::ClientError> {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(Numbered { i }) = event.decode_if::<Numbered>("n")? {
            if self.next.load(Relaxed) == i {
                self.next.fetch_add(1, Relaxed);
            } else {
                self.wrong.fetch_add(1, Relaxed);
            }
        }
        Ok(())
    }

    fn on_close(&mut self, _: socketio_client::ClientError) {}
}

/// Issue 15's burst on the engine: 100,000 broadcasts emitted back to back on one instance
/// reach 10 members on the two others whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100_000_broadcasts_reaches_every_member_whole_and_in_order() {
    use std::sync::atomic::Ordering::Relaxed;
    const N: u64 = 100_000;
    let redis = RedisServer::start().await;
    let instances = cluster(&redis).await;
    let mut members = Vec::new();
    for instance in &instances[1..] {
        for _ in 0..5 {
            let counted = Counted::default();
            let opts = socketio_client::ConnectOptions::new(&instance.url)
                .auth(json!({ "rooms": ["burst"] }));
            let connection = socketio_client::Connection::connect(&opts, counted.clone())
                .await
                .unwrap();
            members.push((connection, counted));
        }
    }
    let selection = redis_adapter::Selection::room("burst");
    let joined = test_support::eventually(Duration::from_secs(10), || {
        instances[1..]
            .iter()
            .all(|instance| instance.io.of("/").unwrap().local_sockets(&selection).len() == 5)
    })
    .await;
    assert!(joined, "the members did not join");
    let nsp = instances[0].io.of("/").unwrap().clone();
    let mut refused = 0u64;
    for i in 0..N {
        // A broadcast the full publish queue refuses reaches no one: retried, it is
        // delivered once.
        while nsp
            .to(["burst"])
            .emit("n", &json!({ "i": i }))
            .await
            .is_err()
        {
            refused += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    println!("{refused} emits refused by the full publish queue at first");
    let all = test_support::eventually(Duration::from_secs(120), || {
        members
            .iter()
            .all(|(_, counted)| counted.next.load(Relaxed) == N)
    })
    .await;
    let received: Vec<u64> = members
        .iter()
        .map(|(_, counted)| counted.next.load(Relaxed))
        .collect();
    let wrong: u64 = members
        .iter()
        .map(|(_, counted)| counted.wrong.load(Relaxed))
        .sum();
    assert!(
        all && wrong == 0,
        "received in order {received:?}, out of order {wrong}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_sees_the_selection_on_every_instance_with_what_its_namespace_says() {
    let redis = RedisServer::start().await;
    let instances = cluster(&redis).await;
    let _alice = named(&instances[0].url, "a", "alice").await;
    let _bob = named(&instances[1].url, "a,b", "bob").await;
    let _carol = named(&instances[2].url, "b", "carol").await;
    let _dave = named(&instances[2].url, "a", "dave").await;
    let nsp = instances[0].io.of("/").unwrap();
    let fetch = |rooms: &[&str], except: &[&str]| {
        let selection = redis_adapter::Selection {
            rooms: rooms.iter().map(|room| room.to_string().into()).collect(),
            except: except.iter().map(|room| room.to_string().into()).collect(),
        };
        async move {
            let mut sockets = nsp.fetch_sockets(&selection).await.unwrap();
            sockets.sort_by(|x, y| x.data["name"].as_str().cmp(&y.data["name"].as_str()));
            sockets
        }
    };
    let in_a = fetch(&["a"], &[]).await;
    let names: Vec<&str> = in_a
        .iter()
        .filter_map(|s| s.data["name"].as_str())
        .collect();
    assert_eq!(names, ["alice", "bob", "dave"]);
    let bob = &in_a[1];
    let mut rooms: Vec<&str> = bob.rooms.iter().map(|room| room.as_ref()).collect();
    rooms.sort_unstable();
    assert_eq!(rooms, ["a", "b"]);
    assert!(!bob.id.is_empty());

    let a_not_b = fetch(&["a"], &["b"]).await;
    let names: Vec<&str> = a_not_b
        .iter()
        .filter_map(|s| s.data["name"].as_str())
        .collect();
    assert_eq!(names, ["alice", "dave"]);
    assert_eq!(fetch(&[], &[]).await.len(), 4, "everyone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_join_leave_and_are_disconnected_on_every_instance() {
    use engine::sockets::Change;
    let redis = RedisServer::start().await;
    let instances = cluster(&redis).await;
    let mut bob_here = named(&instances[0].url, "u:bob", "bob").await;
    let mut bob_there = named(&instances[2].url, "u:bob", "bob").await;
    let mut carol = named(&instances[1].url, "ops", "carol").await;
    let nsp = instances[1].io.of("/").unwrap();
    let bob = redis_adapter::Selection::room("u:bob");
    // Every socket of bob joins `ops`, on every instance, before this returns.
    nsp.change(&bob, Change::Join(vec!["ops".into()]))
        .await
        .unwrap();
    nsp.to(["ops"]).emit("news", &1).await.unwrap();
    for ws in [&mut bob_here, &mut bob_there, &mut carol] {
        assert_eq!(next_text(ws).await, r#"42["news",1]"#);
    }
    nsp.change(&bob, Change::Leave(vec!["ops".into()]))
        .await
        .unwrap();
    nsp.to(["ops"]).emit("news", &2).await.unwrap();
    assert_eq!(next_text(&mut carol).await, r#"42["news",2]"#);
    quiet(&mut bob_here).await;
    quiet(&mut bob_there).await;
    nsp.change(&bob, Change::Disconnect { close: false })
        .await
        .unwrap();
    for ws in [&mut bob_here, &mut bob_there] {
        assert_eq!(next_text(ws).await, "41");
    }
    quiet(&mut carol).await;
}
