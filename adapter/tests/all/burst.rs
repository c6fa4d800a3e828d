//! Bursts from Redis to local sockets with socketioxide's default buffer (128 packets): a
//! healthy member gets everything in order, a stalled one is treated as the backlog's
//! documented policy says, and the drops are counted.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use redis_adapter::{LocalBacklog, RedisAdapterConfig, RedisConfig};
use serde_json::json;
use socketio_client::{ClientError, ConnectOptions, Connection, EventHandler, RawEvent};
use test_support::{RedisServer, eventually};
use tokio::net::TcpSocket;
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};

use crate::common::{
    Instance, client, fast_config, recv, start_cluster_by, start_cluster_with, start_pinging,
    start_with,
};

/// The engine.io ping interval of the 100,000-message burst's instances: longer than the test.
/// socketioxide sends each ping with `try_send` into the socket's bounded channel and closes
/// the socket when that channel is full at the tick, as it is for a member with a backlog
/// (the outbox keeps it full), so a member that reads more slowly than the burst arrives is
/// closed by socketioxide at its first ping, uncounted by the adapter. Seen on a slow host
/// (a loopback write costing 16 µs): 1 to 3 of the 10 members closed after 66-84% of the
/// burst, in each of 5 runs of the suite. That is socketioxide's heartbeat, not what this
/// test measures (the adapter's order and completeness); see the README's "Bursts".
const QUIET_PING_INTERVAL: Duration = Duration::from_secs(600);

/// The part of an event `n` a member reads: its number.
#[derive(serde::Deserialize)]
struct Numbered {
    i: u64,
}

/// A member that checks it receives `n` events numbered 0, 1, 2... in order.
#[derive(Clone, Default)]
struct Counted {
    /// The next number expected: how many arrived in order.
    next: Arc<AtomicU64>,
    /// Numbers that arrived out of order (or twice).
    wrong: Arc<AtomicUsize>,
}

impl EventHandler for Counted {
    fn on_event(&mut self, event: RawEvent<'_>) -> Result<(), ClientError> {
        let Some(Numbered { i: n }) = event.decode_if::<Numbered>("n")? else {
            return Ok(());
        };
        if self.next.load(Ordering::Relaxed) == n {
            self.next.fetch_add(1, Ordering::Relaxed);
        } else {
            self.wrong.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn on_close(&mut self, _: ClientError) {}
}

/// A member of `room` on `instance`, counting its deliveries.
async fn member(instance: &Instance, room: &str) -> (Connection, Counted) {
    let counted = Counted::default();
    let opts = ConnectOptions::new(&instance.url).auth(json!({ "rooms": [room] }));
    let connection = Connection::connect(&opts, counted.clone()).await.unwrap();
    (connection, counted)
}

/// Emits `count` events `n` (`{"i": i, "filler": filler}`) to `room` from `instance`, each awaited; returns
/// the emits Redis's publish queue refused at first (they were retried).
async fn emit_burst(instance: &Instance, room: &str, count: u64, filler: &str) -> usize {
    let mut refused = 0;
    for i in 0..count {
        while instance
            .io
            .to(room.to_owned())
            .emit("n", &json!({ "i": i, "filler": filler }))
            .await
            .is_err()
        {
            // No member sits on the emitting instance: a retry delivers nothing twice.
            refused += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100000_reaches_every_member_on_the_other_instances_in_order() {
    const COUNT: u64 = 100_000;
    let redis = RedisServer::start().await;
    let url = redis.url();
    let [a, b, c] = <[_; 3]>::try_from(
        start_cluster_by(3, || {
            start_pinging(
                &url,
                fast_config("burst"),
                RedisConfig::default(),
                QUIET_PING_INTERVAL,
            )
        })
        .await,
    )
    .ok()
    .unwrap();
    let mut members = Vec::new();
    for i in 0..10 {
        members.push(member(if i % 2 == 0 { &b } else { &c }, "burst").await);
    }
    let joined = eventually(test_support::TIMEOUT, || {
        b.state.stats().room_subscriptions >= 1 && c.state.stats().room_subscriptions >= 1
    })
    .await;
    assert!(joined, "the room channel is subscribed");

    let refused = emit_burst(&a, "burst", COUNT, "").await;
    let all = eventually(Duration::from_secs(60), || {
        members
            .iter()
            .all(|(_, counted)| counted.next.load(Ordering::Relaxed) == COUNT)
    })
    .await;
    let received: Vec<u64> = members
        .iter()
        .map(|(_, counted)| counted.next.load(Ordering::Relaxed))
        .collect();
    let wrong: usize = members
        .iter()
        .map(|(_, counted)| counted.wrong.load(Ordering::Relaxed))
        .sum();
    let (sb, sc) = (b.state.stats(), c.state.stats());
    assert!(
        all && wrong == 0,
        "every member receives all {COUNT} in order: received in order {received:?}, out of \
         order {wrong}, emits refused and retried at the sender {refused}, deliveries deferred \
         {} + {}, dropped slow {} + {}; now waiting {} + {} bytes for {} + {} sockets; \
         messages received from Redis {} + {}, subscriber reconnects {} + {}",
        sb.local_deferred,
        sc.local_deferred,
        sb.local_drops_slow,
        sc.local_drops_slow,
        sb.local_backlog_bytes,
        sc.local_backlog_bytes,
        sb.local_backlogged_sockets,
        sc.local_backlogged_sockets,
        sb.received,
        sc.received,
        sb.reconnects,
        sc.reconnects,
    );
    assert_eq!(sb.local_drops_slow + sc.local_drops_slow, 0);
    assert!(
        sb.local_deferred + sc.local_deferred > 0,
        "the burst outran the sockets' buffers at least once (else this test proves nothing)"
    );
    let drained = eventually(test_support::TIMEOUT, || {
        b.state.stats().local_backlog_bytes == 0 && c.state.stats().local_backlog_bytes == 0
    })
    .await;
    assert!(drained, "every backlog is released once delivered");
}

/// A websocket member of `room` that never reads after its CONNECT, with a small receive
/// buffer so that the server's writes back up soon.
async fn stalled_member(instance: &Instance, room: &str) -> WebSocketStream<tokio::net::TcpStream> {
    let host = instance.url.trim_start_matches("http://");
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(host.parse().unwrap()).await.unwrap();
    let url = format!("ws://{host}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let open = ws.next().await.unwrap().unwrap();
    assert!(
        open.to_text().unwrap().starts_with('0'),
        "engine.io OPEN: {open:?}"
    );
    let connect = format!("40{}", json!({ "rooms": [room] }));
    ws.send(Message::text(connect)).await.unwrap();
    loop {
        let frame = ws.next().await.unwrap().unwrap();
        if frame.to_text().unwrap().starts_with("40") {
            return ws;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_member_is_dropped_counted_and_disconnected_while_the_others_get_everything() {
    const COUNT: u64 = 10_000;
    const MAX_BYTES: usize = 2 << 20;
    const MAX_TOTAL: usize = 6 << 20;
    let backlog = LocalBacklog {
        max_bytes: MAX_BYTES,
        max_total_bytes: MAX_TOTAL,
        ..LocalBacklog::default()
    };
    let config =
        move || -> RedisAdapterConfig { fast_config("stall").with_local_backlog(backlog.clone()) };
    let redis = RedisServer::start().await;
    let [a, b, c] = <[_; 3]>::try_from(start_cluster_with(&redis.url(), 3, config).await)
        .ok()
        .unwrap();
    let mut stalled = stalled_member(&b, "stall").await;
    let mut members = Vec::new();
    for instance in [&b, &c, &b, &c] {
        members.push(member(instance, "stall").await);
    }
    let joined = eventually(test_support::TIMEOUT, || {
        b.state.stats().room_subscriptions >= 1 && c.state.stats().room_subscriptions >= 1
    })
    .await;
    assert!(joined, "the room channel is subscribed");

    // The backlog gauge, sampled while the burst runs.
    let highest = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (state, highest) = (b.state.clone(), highest.clone());
        tokio::spawn(async move {
            loop {
                highest.fetch_max(state.stats().local_backlog_bytes, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // 2 KiB each, 20 MB per member: far more than the stalled socket's buffers hold.
    let filler = "x".repeat(2048);
    let refused = emit_burst(&a, "stall", COUNT, &filler).await;
    let all = eventually(Duration::from_secs(120), || {
        members
            .iter()
            .all(|(_, counted)| counted.next.load(Ordering::Relaxed) == COUNT)
    })
    .await;
    sampler.abort();
    let received: Vec<u64> = members
        .iter()
        .map(|(_, counted)| counted.next.load(Ordering::Relaxed))
        .collect();
    assert!(
        all,
        "the healthy members receive all {COUNT} in order: {received:?} (emits retried at the sender {refused})"
    );
    let stats = b.state.stats();
    assert_eq!(
        stats.local_slow_sockets, 1,
        "the stalled member alone is slow"
    );
    assert!(stats.local_drops_slow > 0, "its drops are counted");
    assert_eq!(c.state.stats().local_slow_sockets, 0);
    let highest = highest.load(Ordering::Relaxed);
    assert!(
        highest <= MAX_TOTAL as u64,
        "the backlogs stay under max_total_bytes: at most {highest} bytes"
    );

    // Reading again, the stalled member gets a prefix of the burst in order, then its
    // DISCONNECT, and is gone from the server.
    let mut next = 0u64;
    let disconnected = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(frame)) = stalled.next().await {
            let Ok(text) = frame.to_text() else { continue };
            if text.starts_with("41") {
                return true;
            }
            if let Some(event) = text.strip_prefix("42") {
                let (_, n): (String, Numbered) = serde_json::from_str(event).unwrap();
                assert_eq!(n.i, next, "the stalled member's deliveries are in order");
                next += 1;
            }
        }
        false
    })
    .await;
    assert_eq!(
        disconnected,
        Ok(true),
        "the stalled member is sent its DISCONNECT after {next} events"
    );
    assert!(
        next < COUNT,
        "the stalled member did not get everything ({next})"
    );
    let gone = eventually(test_support::TIMEOUT, || {
        b.io.sockets().len() == 2 && b.state.stats().local_backlogged_sockets == 0
    })
    .await;
    assert!(gone, "the slow socket is gone and its backlog released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_into_a_stalled_redis_is_bounded_and_does_not_keep_other_rooms_out() {
    const CAPACITY: usize = 1024;
    const SHARE: usize = 4;
    let redis = RedisServer::start().await;
    let redis_config = || RedisConfig {
        publish_queue_capacity: CAPACITY,
        publish_channel_share: SHARE,
        max_pipeline: CAPACITY,
        command_timeout: Duration::from_secs(10),
        probe_timeout: Duration::from_secs(10),
        ..RedisConfig::default()
    };
    let config = || RedisAdapterConfig::default().with_prefix("slow");
    let a = start_with(&redis.url(), config(), redis_config()).await;
    let b = start_with(&redis.url(), config(), redis_config()).await;
    let (_hot, hot_count) = member(&b, "hot").await;
    // Channels are counted in 1,024 buckets by a hash seeded per process, and a room that shares
    // the hot room's bucket shares its allowance: of three other rooms, one may be kept out
    // (1 run in 1,024), all three only once in 1,024^3.
    let cold_rooms = ["cold-0", "cold-1", "cold-2"];
    let mut cold = client(&b, &cold_rooms).await;
    let seen = eventually(test_support::TIMEOUT, || {
        a.state.server_count("/") == Some(2)
    })
    .await;
    assert!(seen, "the instances see each other");

    // Redis stops taking publishes until the burst and the other rooms' emits are done (a
    // pause of 1.5 s ended during the burst once on a loaded CI machine: a pipeline drained
    // and 2,275 were accepted): what the burst adds waits in the queue.
    redis.pause(Duration::from_secs(30), "WRITE").await;
    let (mut accepted, mut refused) = (0u64, 0u64);
    for i in 0..20_000u64 {
        match a
            .io
            .to("hot")
            .emit("n", &json!({ "i": accepted, "try": i }))
            .await
        {
            Ok(()) => accepted += 1,
            Err(err) => {
                let text = format!("{err:?}");
                assert!(text.contains("QueueFull"), "refused as full: {text}");
                refused += 1;
            }
        }
    }
    // At most one pipeline in flight plus the room's share of the queue.
    let bound = (CAPACITY + CAPACITY / SHARE) as u64;
    assert!(
        accepted <= bound,
        "the burst is bounded: {accepted} accepted, at most {bound}"
    );
    assert!(
        refused > 0,
        "the rest is refused at once, and the caller told"
    );
    assert!(a.state.stats().publish_queue_share_full > 0);
    // Other rooms still get in while the burst holds its share.
    let mut served = 0;
    for room in cold_rooms {
        match a.io.to(room).emit("note", room).await {
            Ok(()) => served += 1,
            Err(err) => assert!(format!("{err:?}").contains("QueueFull"), "{err:?}"),
        }
    }
    assert!(served > 0, "other rooms are kept out too");
    redis.unpause().await;
    for _ in 0..served {
        let note = recv(&mut cold).await;
        assert!(cold_rooms.iter().any(|room| note.data == json!(room)));
    }
    // Once Redis is back, every accepted message arrives, in order.
    let all = eventually(Duration::from_secs(20), || {
        hot_count.next.load(Ordering::Relaxed) == accepted
    })
    .await;
    assert!(
        all && hot_count.wrong.load(Ordering::Relaxed) == 0,
        "the hot room's member gets the {accepted} accepted, in order: {} in order, {} not",
        hot_count.next.load(Ordering::Relaxed),
        hot_count.wrong.load(Ordering::Relaxed)
    );
}
