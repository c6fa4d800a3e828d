//! Durable rooms on real Redis: history paging, `join` with `since` (exact replay, no gap and
//! no duplicate at the seam while messages keep coming), and `since` beyond retention.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use socketio_client::SocketClient;
use test_support::{RedisCluster, RedisServer};
use tokio::sync::watch;

use crate::support::{TIMEOUT, TestGateway, ack, connect_user, join, login, now_ms};

async fn gateways(redis_url: &str, n: usize) -> Vec<TestGateway> {
    crate::support::cluster(n, redis_url, |_| {}).await
}

/// Sends `text` to `room` and returns the stored id.
async fn send(client: &SocketClient, room: &str, text: &str) -> String {
    let reply = ack(client, "message", json!({"room": room, "text": text})).await;
    reply["id"]
        .as_str()
        .unwrap_or_else(|| panic!("message not stored: {reply}"))
        .to_owned()
}

/// The next `message` event's data, skipping other events.
async fn next_message(client: &mut SocketClient) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = client
            .next_event(left)
            .await
            .unwrap_or_else(|err| panic!("no message: {err}"));
        if event.name == "message" {
            return event.data;
        }
    }
}

fn texts(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .unwrap_or_else(|| panic!("not a list of messages: {messages}"))
        .iter()
        .map(|message| message["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn history_pages_through_250_messages_oldest_first_on_redis() {
    let redis = RedisServer::start().await;
    history_pages_through_250_messages_oldest_first(&redis.url()).await;
}

#[tokio::test]
async fn since_replays_exactly_what_was_missed_20_times_on_redis() {
    let redis = RedisServer::start().await;
    since_replays_exactly_what_was_missed_with_no_duplicate_at_the_seam_20_times(&redis.url())
        .await;
}

#[tokio::test]
async fn since_beyond_retention_replays_nothing_on_redis() {
    let redis = RedisServer::start().await;
    since_beyond_retention_replays_nothing_and_says_so(&redis.url()).await;
}

/// Two instances on `redis`, alice connected to the first and bob to the second.
async fn alice_and_bob(redis: &RedisServer) -> (Vec<TestGateway>, SocketClient, SocketClient) {
    let gateways = gateways(&redis.url(), 2).await;
    let alice = connect_user(gateways[0].url(), "alice").await;
    let bob = connect_user(gateways[1].url(), "bob").await;
    (gateways, alice, bob)
}

/// The ids of a history page's messages, in its order.
fn page_ids(page: &Value) -> Vec<&str> {
    page["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page of history: {page}"))
        .iter()
        .filter_map(|message| message["id"].as_str())
        .collect()
}

/// `(ms, seq)` of a message id, to compare ids as Redis does.
fn id_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id
        .split_once('-')
        .unwrap_or_else(|| panic!("not a message id: {id}"));
    (ms.parse().unwrap(), seq.parse().unwrap())
}

/// The ids of the next `count` messages `client` receives.
async fn received_ids(client: &mut SocketClient, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let message = next_message(client).await;
        ids.push(message["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// On one Redis a line is stored and published by one script, under an id the instance
/// chose: a stream whose newest entry is later (here one 60 s ahead, as from an instance
/// whose clock runs fast) refuses it, and the line is stored right after that entry, and
/// delivered everywhere with the id it is stored under.
#[tokio::test]
async fn a_line_behind_a_newer_entry_is_stored_after_it_and_delivered_with_that_id() {
    let redis = RedisServer::start().await;
    let (gateways, alice, mut bob) = alice_and_bob(&redis).await;
    join(&alice, "ahead").await;
    join(&bob, "ahead").await;
    let first = send(&alice, "ahead", "first").await;
    assert_eq!(next_message(&mut bob).await["id"], first.as_str());

    let mut conn = redis.connection().await;
    let streams: Vec<String> = redis::cmd("KEYS")
        .arg("*:r:ahead")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(streams.len(), 1, "one stream for the room: {streams:?}");
    let ahead = now_ms() + 60_000;
    let _: String = redis::cmd("XADD")
        .arg(&streams[0])
        .arg(format!("{ahead}-0"))
        .arg(&[
            "key", "planted", "from", "Eve", "user", "eve", "text", "ahead", "ts", "0",
        ])
        .query_async(&mut conn)
        .await
        .unwrap();

    let second = send(&alice, "ahead", "second").await;
    assert_eq!(second, format!("{ahead}-1"));
    let body = crate::support::metrics(gateways[0].url()).await;
    let refused = crate::support::metric(&body, "history_id_refusals_total");
    assert_eq!(refused, Some(1.0), "the refused id is counted");
    let received = next_message(&mut bob).await;
    assert_eq!(
        (&received["id"], &received["text"]),
        (&json!(second), &json!("second"))
    );
    let page = ack(&bob, "history", json!({"room": "ahead", "limit": 3})).await;
    let ids = page_ids(&page);
    assert_eq!(
        ids,
        [first.as_str(), &format!("{ahead}-0"), second.as_str()]
    );
}

/// Two senders on two instances, each sending 100 lines as fast as their acks come: a member
/// on a third instance receives the 200 in the order the room's stream holds them (each
/// line's script stores and publishes it at once; a line stored, then published by a second
/// command, could be overtaken by another instance's). The exception is counted: after ids
/// refused 3 times, or often lately, a line takes that second command
/// (`history_published_after_store_total`), and only such a line may arrive late, after a line
/// stored later.
#[tokio::test]
async fn lines_sent_at_once_from_two_instances_arrive_elsewhere_in_stream_order() {
    const EACH: usize = 100;
    let redis = RedisServer::start().await;
    let [a, b, c] = <[_; 3]>::try_from(gateways(&redis.url(), 3).await)
        .ok()
        .unwrap();
    let alice = connect_user(a.url(), "alice").await;
    let bob = connect_user(b.url(), "bob").await;
    let mut carol = connect_user(c.url(), "carol").await;
    for client in [&alice, &bob, &carol] {
        join(client, "race").await;
    }
    tokio::join!(
        async {
            for i in 0..EACH {
                send(&alice, "race", &format!("a{i}")).await;
            }
        },
        async {
            for i in 0..EACH {
                send(&bob, "race", &format!("b{i}")).await;
            }
        }
    );
    let received = received_ids(&mut carol, 2 * EACH).await;
    let order: Vec<_> = received.iter().map(|id| id_order(id)).collect();
    let late = order
        .iter()
        .scan(None, |newest, &id| {
            let overtaken = newest.is_some_and(|newest| id < newest);
            *newest = (*newest).max(Some(id));
            Some(overtaken)
        })
        .filter(|&overtaken| overtaken)
        .count();
    // One metrics recorder per process: a gateway's counters are those of every gateway of
    // this test binary, an upper bound of the senders' own.
    let body = crate::support::metrics(a.url()).await;
    let count = |name| crate::support::metric(&body, name).unwrap_or(0.0);
    let (refused, published_after) = (
        count("history_id_refusals_total"),
        count("history_published_after_store_total"),
    );
    assert!(
        late as f64 <= published_after,
        "{late} lines arrived after a line stored later, {published_after} were published \
         after they were stored (ids refused: {refused}): {received:?}"
    );
}

/// The same three on one Redis Cluster (3 masters, 1 replica each), one after the other: one
/// cluster rather than three at once on a 2-core machine. Retention last: it shortens the
/// tenant's.
#[tokio::test]
async fn history_paging_since_and_retention_on_a_cluster() {
    let cluster = RedisCluster::start(3, 1).await;
    let url = cluster.cluster_url();
    history_pages_through_250_messages_oldest_first(&url).await;
    since_replays_exactly_what_was_missed_with_no_duplicate_at_the_seam_20_times(&url).await;
    since_beyond_retention_replays_nothing_and_says_so(&url).await;
}

async fn history_pages_through_250_messages_oldest_first(redis_url: &str) {
    let [a, b] = <[_; 2]>::try_from(gateways(redis_url, 2).await)
        .ok()
        .unwrap();
    let alice = connect_user(a.url(), "alice").await;
    join(&alice, "archive").await;
    let mut ids = Vec::new();
    for i in 0..250 {
        ids.push(send(&alice, "archive", &format!("m{i}")).await);
    }
    // Read from the other instance, by someone who was not there.
    let bob = connect_user(b.url(), "bob").await;
    let refused = ack(&bob, "history", json!({"room": "archive"})).await;
    assert_eq!(refused["error"], "not a member of this room");
    join(&bob, "archive").await;

    let mut pages = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut request = json!({"room": "archive", "limit": 100});
        if let Some(before) = &before {
            request["before"] = json!(before);
        }
        let page = ack(&bob, "history", request).await;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        assert!(!messages.is_empty(), "an empty page: {page}");
        before = messages[0]["id"].as_str().map(str::to_owned);
        pages.push(texts(&page["messages"]));
        if page["more"] == false {
            break;
        }
        assert!(pages.len() < 4, "more than three pages of 100");
    }
    let expected =
        |range: std::ops::Range<usize>| -> Vec<String> { range.map(|i| format!("m{i}")).collect() };
    assert_eq!(
        pages,
        [expected(150..250), expected(50..150), expected(0..50)]
    );

    // The default page is the newest 50, with the ids the senders were acked.
    let latest = ack(&bob, "history", json!({"room": "archive"})).await;
    let latest_ids = page_ids(&latest);
    assert_eq!(
        latest_ids,
        ids[200..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(latest["messages"][0]["from"], "alice");
    assert_eq!(latest["more"], true);

    for bad in [
        json!({"room": "archive", "limit": 101}),
        json!({"room": "archive", "limit": 0}),
        json!({"room": "archive", "before": "yesterday"}),
        json!({"limit": 5}),
        json!({"room": "archive", "with": "alice"}),
    ] {
        let refused = ack(&bob, "history", bad.clone()).await;
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("invalid payload")),
            "{bad} -> {refused}"
        );
    }
}

#[tokio::test]
async fn a_dm_conversation_has_a_history_for_both_users() {
    let redis = RedisServer::start().await;
    let (_gateways, alice, mut bob) = alice_and_bob(&redis).await;
    let sent = ack(&alice, "dm", json!({"to": "bob", "text": "psst"})).await;
    assert!(sent["id"].is_string(), "{sent}");
    let received = crate::support::next_named(&mut bob, "dm").await.data;
    assert_eq!(received["id"], sent["id"]);
    for (client, with) in [(&alice, "bob"), (&bob, "alice")] {
        let page = ack(client, "history", json!({"with": with})).await;
        assert_eq!(texts(&page["messages"]), ["psst"], "{with}: {page}");
        assert_eq!(page["messages"][0]["id"], sent["id"]);
    }
    let stranger = ack(&alice, "history", json!({"with": "nobody"})).await;
    assert_eq!(stranger["error"], "unknown user");
}

/// Waits until the sender reports at least `count` acked messages.
async fn sent_at_least(progress: &watch::Receiver<usize>, count: usize) {
    let mut progress = progress.clone();
    let reached = tokio::time::timeout(TIMEOUT, progress.wait_for(|sent| *sent >= count)).await;
    assert!(reached.is_ok(), "the sender did not reach {count} messages");
}

/// Reads the events already sent to `client` (after an acked `leave`, nothing more comes),
/// adding the messages' ids to `seen`.
async fn drain_messages(client: &mut SocketClient, seen: &mut Vec<String>) {
    while let Ok(event) = client.next_event(Duration::from_millis(50)).await {
        if event.name == "message" {
            seen.push(event.data["id"].as_str().unwrap().to_owned());
        }
    }
}

async fn since_replays_exactly_what_was_missed_with_no_duplicate_at_the_seam_20_times(
    redis_url: &str,
) {
    let [a, b, _c] = <[_; 3]>::try_from(gateways(redis_url, 3).await)
        .ok()
        .unwrap();
    let sender = connect_user(a.url(), "alice").await;
    join(&sender, "busy").await;
    // The sender keeps sending (bounded in count and time) and reports how many were acked.
    let (progress_tx, progress) = watch::channel(0usize);
    let (stop_tx, stop) = watch::channel(false);
    let sending = tokio::spawn(async move {
        let mut ids: Vec<String> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !*stop.borrow() && ids.len() < 50_000 && Instant::now() < deadline {
            ids.push(send(&sender, "busy", &format!("n{}", ids.len())).await);
            let _ = progress_tx.send(ids.len());
            // Well within the room's retention of 1,000 while the receiver is away.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        ids
    });
    let mut receiver = connect_user(b.url(), "bob").await;
    join(&receiver, "busy").await;
    let first = next_message(&mut receiver).await;
    let mut seen = vec![first["id"].as_str().unwrap().to_owned()];
    for round in 0..20 {
        ack(&receiver, "leave", json!({"room": "busy"})).await;
        drain_messages(&mut receiver, &mut seen).await;
        // 30 messages go by while away; more keep coming during the join.
        let now = *progress.borrow();
        sent_at_least(&progress, now + 30).await;
        let since = seen.last().cloned().unwrap();
        let reply = ack(&receiver, "join", json!({"room": "busy", "since": since})).await;
        assert_eq!(reply["recovered"], true, "round {round}: {reply}");
        let replayed = usize::try_from(reply["replayed"].as_u64().unwrap_or(0)).unwrap();
        assert!(replayed >= 30, "round {round}: {reply}");
        // The replay, then at least a few live messages past the seam.
        let now = *progress.borrow();
        sent_at_least(&progress, now + 5).await;
        for _ in 0..replayed + 3 {
            let message = next_message(&mut receiver).await;
            seen.push(message["id"].as_str().unwrap().to_owned());
        }
    }
    ack(&receiver, "leave", json!({"room": "busy"})).await;
    drain_messages(&mut receiver, &mut seen).await;
    stop_tx.send(true).unwrap();
    let sent = sending.await.unwrap();
    // What the receiver saw is exactly a run of what was sent: in order, no gap, no
    // duplicate, from its first message on.
    let start = sent.iter().position(|id| *id == seen[0]).unwrap();
    assert!(
        start + seen.len() <= sent.len(),
        "the receiver saw more than was sent"
    );
    let expected = &sent[start..start + seen.len()];
    if let Some(at) = (0..seen.len()).find(|&i| seen[i] != expected[i]) {
        let from = at.saturating_sub(3);
        panic!(
            "the receiver's {} messages are not the sender's, in order, once each: from \
             message {at} it saw {:?}, the sender sent {:?}",
            seen.len(),
            &seen[from..(at + 4).min(seen.len())],
            &expected[from..(at + 4).min(expected.len())],
        );
    }
}

async fn since_beyond_retention_replays_nothing_and_says_so(redis_url: &str) {
    let [a] = <[_; 1]>::try_from(gateways(redis_url, 1).await)
        .ok()
        .unwrap();
    let token = login(a.url(), "alice").await;
    let response = reqwest::Client::new()
        .put(format!("{}/api/admin/tenants/acme/settings", a.url()))
        .bearer_auth(&token)
        .json(&json!({
            "max_message_length": 2000, "max_room_members": 100, "history_max_messages": 10
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let alice = connect_user(a.url(), "alice").await;
    join(&alice, "short").await;
    let first = send(&alice, "short", "the first").await;
    // Redis trims whole blocks of 100 entries: 300 messages drop the first one for sure.
    for i in 0..300 {
        send(&alice, "short", &format!("later {i}")).await;
    }
    let mut bob = connect_user(a.url(), "bob").await;
    let reply = ack(&bob, "join", json!({"room": "short", "since": first})).await;
    assert_eq!(
        reply,
        json!({"ok": true, "recovered": false, "replayed": 0})
    );
    let page = ack(&bob, "history", json!({"room": "short", "limit": 100})).await;
    assert!(
        !texts(&page["messages"]).contains(&"the first".to_owned()),
        "trimmed"
    );
    // Nothing was replayed; live messages still come.
    send(&alice, "short", "live").await;
    let message = next_message(&mut bob).await;
    assert_eq!(message["text"], "live");

    // A stream that is gone altogether, and a since that never existed.
    let carol = connect_user(a.url(), "carol").await;
    let lost = ack(
        &carol,
        "join",
        json!({"room": "never-used", "since": "1-0"}),
    )
    .await;
    assert_eq!(lost["recovered"], false);
    let bad = ack(&carol, "join", json!({"room": "short", "since": "$"})).await;
    assert!(
        bad["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("invalid payload")
    );
}
