//! The HTTP publish API on three gateways sharing one real Redis: API keys made and revoked
//! with the `gateway api-key` binary, publications to a room, a user and the whole tenant
//! reaching exactly their sockets on every instance and nobody of another tenant, batches,
//! idempotent retries, every refusal delivering nothing, stored chat messages read back
//! through `history`, presence, and Redis down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use futures_util::future::join_all;
use serde_json::{Value, json};
use socketio_client::{ClientError, SocketClient};
use test_support::RedisServer;

use crate::support::{
    QUIET, TestGateway, ack, cluster, connect_user, join, metric, metrics, next_named,
};

/// A key's scopes as `gateway api-key create` flags: every one.
const ALL_SCOPES: [&str; 6] = [
    "--events",
    "*",
    "--users",
    "--tenant-wide",
    "--presence",
    "--history",
];

/// Runs `gateway api-key <args>` against `redis_url`: exit success, stdout, stderr.
fn api_key_cli(redis_url: &str, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("api-key")
        .args(args)
        .args(["--redis-url", redis_url])
        .output()
        .expect("the gateway binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A new key of `tenant` called `name` with `scopes` (flags), as an operator makes one: the
/// first line of `gateway api-key create`'s stdout.
fn create_key(redis_url: &str, tenant: &str, name: &str, scopes: &[&str]) -> String {
    let mut args = vec!["create", "--tenant", tenant, "--name", name];
    args.extend_from_slice(scopes);
    let (ok, stdout, stderr) = api_key_cli(redis_url, &args);
    assert!(ok, "api-key create failed: {stderr}");
    let key = stdout.lines().next().unwrap_or_default().to_owned();
    assert!(
        key.starts_with("gk_"),
        "not a key on stdout's first line: {stdout:?}"
    );
    assert!(stderr.contains("created API key"), "{stderr}");
    assert!(!stderr.contains(&key), "the key is printed on stdout only");
    key
}

/// The public id of `key` (`gk_<id>_<secret>`).
fn key_id(key: &str) -> &str {
    &key[3..15]
}

/// Revokes `tenant`'s key `key` with `gateway api-key revoke`.
fn revoke(redis_url: &str, tenant: &str, key: &str) {
    let (ok, stdout, stderr) = api_key_cli(redis_url, &["revoke", "--tenant", tenant, key_id(key)]);
    assert!(ok, "api-key revoke failed: {stderr}");
    assert_eq!(stdout.trim(), format!("revoked API key {}", key_id(key)));
}

/// An answer: status, `Idempotent-Replayed` header, JSON body (`null` when not JSON).
struct Answer {
    status: u16,
    replayed: bool,
    body: Value,
}

/// Sends `request` with `key` as its bearer (if any).
async fn send(request: reqwest::RequestBuilder, key: Option<&str>) -> Answer {
    let request = match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    };
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        replayed,
        body,
    }
}

/// `POST {url}{path}` with the JSON `body`, `key` and an optional `Idempotency-Key`.
async fn post(
    url: &str,
    path: &str,
    key: Option<&str>,
    idempotency: Option<&str>,
    body: &Value,
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(body);
    if let Some(idempotency) = idempotency {
        request = request.header("Idempotency-Key", idempotency);
    }
    send(request, key).await
}

/// `POST /api/v1/publish` of the bytes `body` as JSON.
async fn post_raw(url: &str, key: &str, body: &'static str) -> Answer {
    let request = reqwest::Client::new()
        .post(format!("{url}/api/v1/publish"))
        .header("content-type", "application/json")
        .body(body);
    send(request, Some(key)).await
}

/// `POST /api/v1/publish`.
async fn publish(url: &str, key: &str, body: Value) -> Answer {
    post(url, "/api/v1/publish", Some(key), None, &body).await
}

/// `POST /api/v1/publish/batch` with `messages`.
async fn publish_batch(url: &str, key: &str, messages: Vec<Value>) -> Answer {
    post(
        url,
        "/api/v1/publish/batch",
        Some(key),
        None,
        &json!({ "messages": messages }),
    )
    .await
}

/// `GET {url}{path}` with `key`.
async fn get(url: &str, path: &str, key: &str) -> Answer {
    send(
        reqwest::Client::new().get(format!("{url}{path}")),
        Some(key),
    )
    .await
}

/// Asserts `answer` has `status` and, refused, an `error` containing `reason`.
fn refused(answer: &Answer, status: u16, reason: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let error = answer.body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(reason),
        "{status}: {error:?} lacks {reason:?}"
    );
}

/// Every event `client` receives until none comes for [`QUIET`], as `(name, args)`.
async fn drain(client: &mut SocketClient) -> Vec<(String, Vec<Value>)> {
    let mut events = Vec::new();
    loop {
        match client.next_event(QUIET).await {
            Ok(event) => events.push((event.name, event.args)),
            Err(ClientError::Timeout) => return events,
            Err(err) => panic!("the client failed: {err}"),
        }
    }
}

/// What each client received until all were quiet, drained at once.
async fn drain_all(clients: &mut [&mut SocketClient]) -> Vec<Vec<(String, Vec<Value>)>> {
    join_all(clients.iter_mut().map(|client| drain(client))).await
}

/// Asserts that none of `clients` receives anything within [`QUIET`].
async fn assert_all_quiet(clients: &mut [&mut SocketClient], after: &str) {
    for (i, events) in drain_all(clients).await.into_iter().enumerate() {
        assert!(
            events.is_empty(),
            "client {i} received {events:?} after {after}"
        );
    }
}

/// Waits until every one of `gateways` is ready (`/readyz`: Redis answers, its Pub/Sub
/// subscription is back): a publication reaches the instances subscribed when Redis takes
/// it, so a test that brings Redis back waits for this before it counts deliveries.
async fn all_ready(gateways: &[&TestGateway]) {
    for gateway in gateways {
        let ready = test_support::eventually_async(Duration::from_secs(10), || async {
            crate::support::readyz(gateway.url()).await.0 == 200
        })
        .await;
        assert!(ready, "{} is not ready again", gateway.url());
    }
}

/// Three clustered gateways on `redis`.
async fn three(redis: &RedisServer) -> [TestGateway; 3] {
    <[_; 3]>::try_from(cluster(3, &redis.url(), |_| {}).await)
        .ok()
        .unwrap()
}

#[tokio::test]
async fn publications_reach_exactly_their_room_user_or_tenant_on_every_instance() {
    let redis = RedisServer::start().await;
    let [a, b, c] = three(&redis).await;
    let key = create_key(&redis.url(), "acme", "backend", &ALL_SCOPES);
    let mut alice = connect_user(a.url(), "alice").await; // acme
    let mut bob = connect_user(b.url(), "bob").await; // acme
    let mut bob_too = connect_user(c.url(), "bob").await; // acme, not in the room
    let mut carol = connect_user(c.url(), "carol").await; // acme
    let mut dave = connect_user(a.url(), "dave").await; // acme, not in the room
    let mut grace = connect_user(b.url(), "grace").await; // globex
    let mut heidi = connect_user(c.url(), "heidi").await; // globex
    for member in [&alice, &bob, &carol, &grace, &heidi] {
        join(member, "general").await;
    }
    // Spelled like globex's internal room: still a room of acme's.
    join(&alice, "t:globex:r:general").await;

    let sent = [
        (
            a.url(),
            json!({"room": "general", "event": "news", "data": {"n": 1}}),
        ),
        (
            b.url(),
            json!({"user": "bob", "event": "notice", "data": [1, 2]}),
        ),
        (
            c.url(),
            json!({"tenant": true, "event": "all-hands", "data": "hi"}),
        ),
        (
            a.url(),
            json!({"room": "t:globex:r:general", "event": "crafted", "data": null}),
        ),
        (
            b.url(),
            json!({"room": "globex:general", "event": "nobody", "data": 0}),
        ),
        (
            c.url(),
            json!({"room": "a:b", "event": "nobody", "data": 0}),
        ),
    ];
    let mut keys = Vec::new();
    for (url, body) in sent {
        let answer = publish(url, &key, body.clone()).await;
        assert_eq!(answer.status, 202, "{body}: {}", answer.body);
        let message_key = answer.body["key"].as_str().expect("a key").to_owned();
        assert_eq!(answer.body, json!({ "key": message_key }));
        keys.push(message_key);
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 6, "every publication has its own key");

    // Nothing of another tenant is addressable: a user of globex, crafted user names.
    for (body, reason) in [
        (
            json!({"user": "grace", "event": "x", "data": 1}),
            "unknown user",
        ),
        (
            json!({"user": "t:globex:u:grace", "event": "x", "data": 1}),
            "user:",
        ),
        (
            json!({"user": "../grace", "event": "x", "data": 1}),
            "user:",
        ),
        (
            json!({"room": "../general", "event": "x", "data": 1}),
            "invalid room",
        ),
        (
            json!({"room": "t/globex/r/general", "event": "x", "data": 1}),
            "invalid room",
        ),
        (
            json!({"room": "général", "event": "x", "data": 1}),
            "invalid room",
        ),
    ] {
        refused(&publish(b.url(), &key, body).await, 400, reason);
    }

    let one = |name: &str, data: Value| (name.to_owned(), vec![data]);
    let expected = [
        // alice: the room, the tenant, the crafted room she joined.
        vec![
            one("news", json!({"n": 1})),
            one("all-hands", json!("hi")),
            one("crafted", Value::Null),
        ],
        // bob: the room, his user (one argument, the array), the tenant.
        vec![
            one("news", json!({"n": 1})),
            one("notice", json!([1, 2])),
            one("all-hands", json!("hi")),
        ],
        // bob's other socket, not in the room.
        vec![one("notice", json!([1, 2])), one("all-hands", json!("hi"))],
        vec![one("news", json!({"n": 1})), one("all-hands", json!("hi"))],
        vec![one("all-hands", json!("hi"))],
        // globex: nothing at all.
        vec![],
        vec![],
    ];
    let received = drain_all(&mut [
        &mut alice,
        &mut bob,
        &mut bob_too,
        &mut carol,
        &mut dave,
        &mut grace,
        &mut heidi,
    ])
    .await;
    // Publications sent to different instances may arrive in either order.
    let sorted = |mut events: Vec<(String, Vec<Value>)>| {
        events.sort_by_key(|event| format!("{event:?}"));
        events
    };
    for (i, (got, want)) in received.into_iter().zip(expected).enumerate() {
        assert_eq!(sorted(got), sorted(want), "client {i}");
    }

    let text = metrics(a.url()).await;
    let live = metric(&text, r#"gateway_api_publish_total{outcome="live"}"#);
    assert!(
        live.is_some_and(|n| n >= 2.0),
        "live publishes counted: {live:?}"
    );
    let refused = metric(
        &text,
        r#"gateway_api_publish_total{outcome="invalid_room"}"#,
    );
    assert!(refused.is_some(), "refusals counted by reason");
}

#[tokio::test]
async fn a_batch_of_a_thousand_is_delivered_exactly_once_and_a_bad_one_not_at_all() {
    let redis = RedisServer::start().await;
    let [a, b, c] = three(&redis).await;
    let key = create_key(&redis.url(), "acme", "batcher", &ALL_SCOPES);
    let mut alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    let mut carol = connect_user(c.url(), "carol").await;
    let mut grace = connect_user(a.url(), "grace").await; // globex
    for member in [&alice, &bob, &carol, &grace] {
        join(member, "room").await;
    }
    let messages: Vec<Value> = (0..1000)
        .map(|i| match i % 10 {
            0 => json!({"room": "room", "event": "message", "data": {"text": format!("m{i}")}}),
            1 => json!({"user": "bob", "event": "tick", "data": {"i": i}}),
            _ => json!({"room": "room", "event": "tick", "data": {"i": i}}),
        })
        .collect();
    let answer = publish_batch(b.url(), &key, messages.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let results = answer.body["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), 1000);
    let mut stored_ids = Vec::new();
    for (i, result) in results.iter().enumerate() {
        if i % 10 == 0 {
            assert!(
                result["id"].is_string() && result["ts"].is_u64(),
                "{i}: {result}"
            );
            stored_ids.push(result["id"].as_str().unwrap_or_default().to_owned());
        } else {
            assert_eq!(
                result.as_object().map(|o| o.len()),
                Some(1),
                "{i}: {result}"
            );
        }
    }
    let mut keys: Vec<&str> = results.iter().filter_map(|r| r["key"].as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 1000, "one unique key per message");

    let received = drain_all(&mut [&mut alice, &mut bob, &mut carol, &mut grace]).await;
    for (who, events) in ["alice", "bob", "carol"].iter().zip(&received) {
        let mut ticks: Vec<u64> = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        for (name, args) in events {
            match name.as_str() {
                "tick" => ticks.push(args[0]["i"].as_u64().expect("i")),
                "message" => {
                    assert_eq!(args[0]["from"], "batcher");
                    assert_eq!(args[0]["user"], format!("api:{}", key_id(&key)));
                    assert_eq!(args[0]["room"], "room");
                    ids.push(args[0]["id"].as_str().expect("an id").to_owned());
                }
                other => panic!("{who} got {other}"),
            }
        }
        assert_eq!(ids, stored_ids, "{who}: every chat message once, in order");
        let want: Vec<u64> = (0..1000)
            .filter(|i| i % 10 != 0 && (i % 10 != 1 || *who == "bob"))
            .collect();
        let mut sorted = ticks.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, want, "{who}: every tick once");
    }
    assert!(
        received[3].is_empty(),
        "globex got {:?}",
        received[3].first()
    );

    // One bad message refuses the whole batch, naming it; nothing is delivered.
    let mut bad = messages.clone();
    bad[537] = json!({"room": "no/slash", "event": "tick", "data": 1});
    refused(
        &publish_batch(c.url(), &key, bad).await,
        400,
        "messages[537]: invalid room",
    );
    let mut unknown = messages.clone();
    unknown[999] = json!({"room": "room", "event": "tick", "data": 1, "extra": true});
    refused(
        &publish_batch(a.url(), &key, unknown).await,
        400,
        "messages[999]",
    );
    let limited = create_key(&redis.url(), "acme", "ticker", &["--events", "tick"]);
    let ticks: Vec<Value> = messages.iter().skip(2).take(5).cloned().collect();
    let mut forbidden = ticks.clone();
    forbidden.push(json!({"room": "room", "event": "message", "data": {"text": "no"}}));
    refused(
        &publish_batch(a.url(), &limited, forbidden).await,
        403,
        "messages[5]: forbidden",
    );
    let mut too_many = messages.clone();
    too_many.push(json!({"room": "room", "event": "tick", "data": 1}));
    refused(
        &publish_batch(a.url(), &key, too_many).await,
        400,
        "1 to 1000",
    );
    refused(
        &publish_batch(a.url(), &key, Vec::new()).await,
        400,
        "1 to 1000",
    );
    // Over 1 MiB: 1,000 messages of about 1.1 KiB each.
    let padding = "p".repeat(1100);
    let huge: Vec<Value> = (0..1000)
        .map(|_| json!({"room": "room", "event": "tick", "data": padding}))
        .collect();
    refused(&publish_batch(b.url(), &key, huge).await, 413, "too_large");
    assert_all_quiet(
        &mut [&mut alice, &mut bob, &mut carol, &mut grace],
        "refused batches",
    )
    .await;
}

#[tokio::test]
async fn an_idempotent_retry_delivers_once_and_answers_the_same() {
    let redis = RedisServer::start().await;
    let [a, b, c] = three(&redis).await;
    let key = create_key(&redis.url(), "acme", "orders", &ALL_SCOPES);
    let mut alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(c.url(), "bob").await;
    join(&alice, "general").await;
    join(&bob, "general").await;

    let live = json!({"room": "general", "event": "order.paid", "data": {"order": 7}});
    let chat = json!({"room": "general", "event": "message", "data": {"text": "order 7 paid"}});
    let batch = json!({"messages": [live, chat]});
    for (path, body, status) in [
        ("/api/v1/publish", &live, 202),
        ("/api/v1/publish", &chat, 200),
        ("/api/v1/publish/batch", &batch, 200),
    ] {
        let idempotency = format!("retry {path} {status}");
        let first = post(a.url(), path, Some(&key), Some(&idempotency), body).await;
        assert_eq!(first.status, status, "{}", first.body);
        assert!(!first.replayed);
        // Retried on every instance: the first answer, nothing delivered again.
        for url in [a.url(), b.url(), c.url()] {
            let again = post(url, path, Some(&key), Some(&idempotency), body).await;
            assert_eq!((again.status, &again.body), (status, &first.body));
            assert!(again.replayed, "the retry says it is one");
        }
        // The same key with another request is refused.
        let other = json!({"room": "general", "event": "order.paid", "data": {"order": 8}});
        refused(
            &post(
                b.url(),
                "/api/v1/publish",
                Some(&key),
                Some(&idempotency),
                &other,
            )
            .await,
            422,
            "idempotency_key_reused",
        );
        let want = if path.ends_with("batch") { 2 } else { 1 };
        for (i, events) in drain_all(&mut [&mut alice, &mut bob])
            .await
            .iter()
            .enumerate()
        {
            assert_eq!(events.len(), want, "client {i} for {path}: {events:?}");
        }
    }

    // The stored message is in the history once.
    let history = get(b.url(), "/api/v1/rooms/general/history", &key).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let texts: Vec<&str> = history.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["order 7 paid", "order 7 paid"],
        "once per request: single and batch"
    );

    // Twenty identical requests at once: one is carried out, the others are answered its
    // answer or 409 while it runs; one delivery.
    let racing = json!({"room": "general", "event": "race", "data": 1});
    let answers = join_all((0..20).map(|i| {
        let url = [a.url(), b.url(), c.url()][i % 3];
        post(url, "/api/v1/publish", Some(&key), Some("race"), &racing)
    }))
    .await;
    let carried: Vec<&Answer> = answers.iter().filter(|a| a.status == 202).collect();
    assert!(!carried.is_empty(), "someone carried it out");
    assert!(
        carried.iter().all(|a| a.body == carried[0].body),
        "one answer"
    );
    assert_eq!(carried.iter().filter(|a| !a.replayed).count(), 1);
    for answer in answers.iter().filter(|a| a.status != 202) {
        refused(answer, 409, "conflict");
    }
    for events in drain_all(&mut [&mut alice, &mut bob]).await {
        assert_eq!(events.len(), 1, "{events:?}");
    }

    // A request still in progress (its marker, as the first request writes it): 409.
    let mut redis_conn = redis.connection().await;
    let marker = format!("socket.io:idem:{{acme}}:{}:held", key_id(&key));
    let _: () = redis::cmd("SET")
        .arg(&marker)
        .arg(r#"{"state":"in_progress","fingerprint":"another"}"#)
        .arg("PX")
        .arg(30_000)
        .query_async(&mut redis_conn)
        .await
        .unwrap();
    refused(
        &post(
            a.url(),
            "/api/v1/publish",
            Some(&key),
            Some("held"),
            &racing,
        )
        .await,
        409,
        "in progress",
    );
    // A bad idempotency key is refused before anything.
    let long = "k".repeat(129);
    refused(
        &post(a.url(), "/api/v1/publish", Some(&key), Some(&long), &racing).await,
        400,
        "Idempotency-Key",
    );
    assert_all_quiet(&mut [&mut alice, &mut bob], "refused retries").await;
}

#[tokio::test]
async fn every_refusal_has_its_status_and_delivers_nothing() {
    let redis = RedisServer::start().await;
    let [a, b, c] = three(&redis).await;
    let key = create_key(&redis.url(), "acme", "full", &ALL_SCOPES);
    let limited = create_key(&redis.url(), "acme", "limited", &["--events", "news"]);
    let mut alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    let mut carol = connect_user(c.url(), "carol").await;
    for member in [&alice, &bob, &carol] {
        join(member, "general").await;
    }
    let news = json!({"room": "general", "event": "news", "data": 1});

    // Keys: none, malformed, well-shaped but unknown, a session token, revoked.
    refused(
        &post(a.url(), "/api/v1/publish", None, None, &news).await,
        401,
        "no API key",
    );
    for bad in [
        "nonsense",
        &format!("gk_000000000000_{}", "A".repeat(43)),
        &key[..key.len() - 1],
    ] {
        refused(
            &publish(b.url(), bad, news.clone()).await,
            401,
            "unknown or revoked",
        );
    }
    let token = crate::support::login(a.url(), "alice").await;
    refused(
        &publish(a.url(), &token, news.clone()).await,
        401,
        "unknown or revoked",
    );
    let doomed = create_key(&redis.url(), "acme", "doomed", &["--events", "news"]);
    assert_eq!(publish(c.url(), &doomed, news.clone()).await.status, 202);
    for member in [&mut alice, &mut bob, &mut carol] {
        next_named(member, "news").await;
    }
    revoke(&redis.url(), "acme", &doomed);
    // At once, on every instance.
    for url in [a.url(), b.url(), c.url()] {
        refused(
            &publish(url, &doomed, news.clone()).await,
            401,
            "unknown or revoked",
        );
    }

    // Bodies.
    refused(&post_raw(a.url(), &key, "{").await, 400, "not JSON");
    refused(&post_raw(a.url(), &key, "").await, 400, "not JSON");
    refused(
        &post_raw(a.url(), &key, "[]").await,
        400,
        "expected a JSON object",
    );
    for (body, reason) in [
        (json!({"event": "news", "data": 1}), "a target is required"),
        (
            json!({"room": "general", "tenant": true, "event": "news", "data": 1}),
            "one target only",
        ),
        (
            json!({"room": "general", "event": "news", "data": 1, "extra": 1}),
            "unknown field",
        ),
        (
            json!({"room": "general", "event": "news"}),
            "missing field `data`",
        ),
        (
            json!({"room": "general", "event": "connect", "data": 1}),
            "reserved by Socket.IO",
        ),
        (
            json!({"room": "general", "event": "removeListener", "data": 1}),
            "reserved by Socket.IO",
        ),
        (
            json!({"room": "general", "event": "a b", "data": 1}),
            "invalid event",
        ),
        (
            json!({"room": "general", "event": "e".repeat(65), "data": 1}),
            "invalid event",
        ),
        (
            json!({"room": "", "event": "news", "data": 1}),
            "invalid room",
        ),
        (
            json!({"room": "general", "event": "message", "data": "text"}),
            "data:",
        ),
        (
            json!({"room": "general", "event": "message", "data": {"text": "x".repeat(2001)}}),
            "invalid text",
        ),
        (
            json!({"tenant": true, "event": "message", "data": {"text": "x"}}),
            "to a room only",
        ),
        (
            json!({"tenant": "acme", "event": "news", "data": 1}),
            "invalid payload",
        ),
    ] {
        refused(&publish(b.url(), &key, body).await, 400, reason);
    }

    // Scopes the key lacks.
    for (body, reason) in [
        (
            json!({"room": "general", "event": "other", "data": 1}),
            "may not publish this event",
        ),
        (
            json!({"room": "general", "event": "message", "data": {"text": "x"}}),
            "may not publish this event",
        ),
        (
            json!({"user": "bob", "event": "news", "data": 1}),
            "may not address users",
        ),
        (
            json!({"tenant": true, "event": "news", "data": 1}),
            "may not address the whole tenant",
        ),
    ] {
        refused(&publish(c.url(), &limited, body).await, 403, reason);
    }
    for read in ["presence", "history"] {
        let answer = get(a.url(), &format!("/api/v1/rooms/general/{read}"), &limited).await;
        refused(&answer, 403, "may not read");
    }

    // Over the size limit: a 70 KiB message.
    let big = json!({"room": "general", "event": "news", "data": "x".repeat(70 * 1024)});
    refused(&publish(a.url(), &key, big).await, 413, "at most 64 KiB");

    assert_all_quiet(&mut [&mut alice, &mut bob, &mut carol], "refusals").await;
}

#[tokio::test]
async fn over_its_rate_a_key_gets_429_and_delivers_nothing() {
    let redis = RedisServer::start().await;
    let gateways = cluster(3, &redis.url(), |config| {
        config.api_publish_rate = gateway::Rate::new(5, Duration::from_secs(60));
    })
    .await;
    let key = create_key(&redis.url(), "acme", "chatty", &ALL_SCOPES);
    let other = create_key(&redis.url(), "acme", "quiet", &ALL_SCOPES);
    let mut alice = connect_user(gateways[0].url(), "alice").await;
    join(&alice, "general").await;
    let news = |n: u64| json!({"room": "general", "event": "news", "data": n});
    // Shared by every instance: 2 + 3 = 5.
    let batch: Vec<Value> = (0..2).map(news).collect();
    assert_eq!(
        publish_batch(gateways[0].url(), &key, batch).await.status,
        200
    );
    for (n, gateway) in (2..5).zip(&gateways) {
        assert_eq!(publish(gateway.url(), &key, news(n)).await.status, 202);
    }
    let got: Vec<Value> = drain(&mut alice)
        .await
        .into_iter()
        .map(|(_, args)| args[0].clone())
        .collect();
    assert_eq!(got, [0, 1, 2, 3, 4].map(|n| json!(n)));

    let over = publish(gateways[2].url(), &key, news(5)).await;
    refused(&over, 429, "rate_limited");
    assert!(
        over.body["retry_after_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 0),
        "{}",
        over.body
    );
    refused(
        &publish_batch(gateways[1].url(), &key, vec![news(6)]).await,
        429,
        "rate_limited",
    );
    // An idempotent request over the rate can be retried: its marker is given back.
    let idempotent = post(
        gateways[0].url(),
        "/api/v1/publish",
        Some(&key),
        Some("later"),
        &news(7),
    )
    .await;
    refused(&idempotent, 429, "rate_limited");
    refused(
        &post(
            gateways[1].url(),
            "/api/v1/publish",
            Some(&key),
            Some("later"),
            &news(7),
        )
        .await,
        429,
        "rate_limited",
    );
    // Another key has its own budget; a batch larger than the whole rate is refused as one.
    let too_big: Vec<Value> = (0..6).map(news).collect();
    refused(
        &publish_batch(gateways[1].url(), &other, too_big).await,
        429,
        "rate_limited",
    );
    assert_all_quiet(&mut [&mut alice], "refused over the rate").await;
}

#[tokio::test]
async fn a_message_to_a_room_is_stored_and_presence_and_history_read_it_back() {
    let redis = RedisServer::start().await;
    let [a, b, c] = three(&redis).await;
    let key = create_key(&redis.url(), "acme", "Orders bot", &ALL_SCOPES);
    let mut alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    let _bob_too = connect_user(c.url(), "bob").await;
    let grace = connect_user(c.url(), "grace").await; // globex
    join(&alice, "general").await;
    join(&bob, "general").await;
    join(&grace, "general").await;
    join(&grace, "t:acme:r:general").await; // globex's room, whatever its name

    let said = ack(
        &alice,
        "message",
        json!({"room": "general", "text": "before"}),
    )
    .await;
    let answer = publish(
        c.url(),
        &key,
        json!({"room": "general", "event": "message", "data": {"text": "order 7 shipped"}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (id, message_key, ts) = (
        answer.body["id"].as_str().expect("an id").to_owned(),
        answer.body["key"].as_str().expect("a key").to_owned(),
        answer.body["ts"].as_u64().expect("a ts"),
    );
    assert!(
        id.as_str() > said["id"].as_str().unwrap_or_default(),
        "stored after alice's"
    );
    let expected = json!({
        "room": "general",
        "id": id,
        "key": message_key,
        "from": "Orders bot",
        "user": format!("api:{}", key_id(&key)),
        "text": "order 7 shipped",
        "ts": ts,
    });
    for member in [&mut alice, &mut bob] {
        assert_eq!(next_named(member, "message").await.data["text"], "before");
        assert_eq!(next_named(member, "message").await.data, expected);
    }

    // The socket history and the HTTP history show it alike.
    let socket_page = ack(&bob, "history", json!({"room": "general"})).await;
    let http_page = get(a.url(), "/api/v1/rooms/general/history", &key).await;
    assert_eq!(http_page.status, 200, "{}", http_page.body);
    assert_eq!(http_page.body, socket_page);
    assert_eq!(http_page.body["more"], false);
    assert_eq!(http_page.body["messages"][1], expected);
    let older = get(
        b.url(),
        &format!("/api/v1/rooms/general/history?before={id}&limit=1"),
        &key,
    )
    .await;
    assert_eq!(older.body["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(older.body["messages"][0]["text"], "before");
    for (query, reason) in [
        ("?limit=0", "limit: 1 to 100"),
        ("?limit=101", "limit: 1 to 100"),
        ("?limit=x", "invalid payload"),
        ("?before=yesterday", "before:"),
        ("?since=1-0", "invalid payload"),
    ] {
        let answer = get(
            a.url(),
            &format!("/api/v1/rooms/general/history{query}"),
            &key,
        )
        .await;
        refused(&answer, 400, reason);
    }
    refused(
        &get(a.url(), "/api/v1/rooms/no%2Fslash/history", &key).await,
        400,
        "invalid room",
    );
    // globex's `general` is not acme's, whatever it is called.
    let crafted = get(b.url(), "/api/v1/rooms/t:globex:r:general/history", &key).await;
    assert_eq!(crafted.body, json!({"messages": [], "more": false}));

    // Presence: acme's members on every instance, each user once; nobody of globex.
    let presence = get(c.url(), "/api/v1/rooms/general/presence", &key).await;
    assert_eq!(presence.status, 200, "{}", presence.body);
    assert_eq!(
        presence.body,
        json!({"members": [{"user": "alice", "name": "alice"}, {"user": "bob", "name": "bob"}]})
    );
    let empty = get(a.url(), "/api/v1/rooms/t:globex:r:general/presence", &key).await;
    assert_eq!(empty.body, json!({"members": []}));
    let without = create_key(&redis.url(), "acme", "writer", &["--events", "*"]);
    for read in ["presence", "history"] {
        refused(
            &get(b.url(), &format!("/api/v1/rooms/general/{read}"), &without).await,
            403,
            "may not read",
        );
    }
    let text = metrics(c.url()).await;
    let stored = metric(&text, r#"gateway_api_publish_total{outcome="stored"}"#);
    assert!(stored.is_some_and(|n| n >= 1.0), "{stored:?}");
}

#[tokio::test]
async fn with_redis_down_a_publish_is_503_and_reaches_nobody() {
    // Durable: the API key survives the restart.
    let mut redis = RedisServer::start_durable().await;
    let [a, b, c] = three(&redis).await;
    let key = create_key(&redis.url(), "acme", "backend", &ALL_SCOPES);
    let mut alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    join(&alice, "general").await;
    join(&bob, "general").await;
    let news = json!({"room": "general", "event": "news", "data": 1});
    assert_eq!(publish(a.url(), &key, news.clone()).await.status, 202);
    for member in [&mut alice, &mut bob] {
        next_named(member, "news").await;
    }

    redis.kill();
    let chat = json!({"room": "general", "event": "message", "data": {"text": "lost?"}});
    for body in [&news, &chat] {
        let answer = post(a.url(), "/api/v1/publish", Some(&key), Some("outage"), body).await;
        refused(&answer, 503, "unavailable");
    }
    refused(
        &publish_batch(a.url(), &key, vec![news.clone(), chat.clone()]).await,
        503,
        "unavailable",
    );
    refused(
        &get(a.url(), "/api/v1/rooms/general/presence", &key).await,
        503,
        "unavailable",
    );
    // Nothing reached the local socket, nor the other instance's.
    assert_all_quiet(&mut [&mut alice, &mut bob], "publishing with Redis down").await;

    // Back: the retry with the same Idempotency-Key goes through, once.
    redis.restart().await;
    // Once every instance is subscribed again (a publication reaches the instances
    // subscribed when Redis takes it): attempts that fail deliver nothing, the first that
    // goes through delivers once.
    all_ready(&[&a, &b, &c]).await;
    let back = test_support::eventually_async(Duration::from_secs(10), || async {
        post(
            a.url(),
            "/api/v1/publish",
            Some(&key),
            Some("outage"),
            &news,
        )
        .await
        .status
            == 202
    })
    .await;
    assert!(back, "publishing again once Redis is back");
    for (who, events) in ["alice", "bob"]
        .iter()
        .zip(drain_all(&mut [&mut alice, &mut bob]).await)
    {
        assert_eq!(events, [("news".to_owned(), vec![json!(1)])], "{who}");
    }
}

#[tokio::test]
async fn a_publication_the_cluster_cannot_take_reaches_nobody_and_its_retry_once() {
    let redis = RedisServer::start().await;
    let [a, b, c] = three(&redis).await;
    let key = create_key(&redis.url(), "acme", "backend", &ALL_SCOPES);
    let mut alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    join(&alice, "general").await;
    join(&bob, "general").await;
    // Redis answers the key lookups and stores, but refuses every publish.
    let mut conn = redis.connection().await;
    let acl = |rule: &'static str| {
        let mut command = redis::cmd("ACL");
        command
            .arg("SETUSER")
            .arg("default")
            .arg(rule)
            .arg(format!("{}spublish", &rule[..1]));
        command
    };
    let _: () = acl("-publish").query_async(&mut conn).await.unwrap();
    let news = json!({"room": "general", "event": "news", "data": 1});
    let chat = json!({"room": "general", "event": "message", "data": {"text": "once"}});
    for (idempotency, body) in [("live", &news), ("chat", &chat)] {
        let answer = post(
            a.url(),
            "/api/v1/publish",
            Some(&key),
            Some(idempotency),
            body,
        )
        .await;
        refused(&answer, 503, "cluster unavailable");
    }
    // Not even the socket on the instance that was asked.
    assert_all_quiet(&mut [&mut alice, &mut bob], "publishes Redis refused").await;

    let _: () = acl("+publish").query_async(&mut conn).await.unwrap();
    all_ready(&[&a, &b, &c]).await;
    let mut answers = Vec::new();
    for (idempotency, body, status) in [("live", &news, 202), ("chat", &chat, 200)] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let answer = loop {
            let sent = post(
                a.url(),
                "/api/v1/publish",
                Some(&key),
                Some(idempotency),
                body,
            )
            .await;
            if sent.status == status || tokio::time::Instant::now() > deadline {
                break sent;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(answer.status, status, "still refused: {}", answer.body);
        answers.push(answer);
    }
    let id = answers[1].body["id"].clone();
    for events in drain_all(&mut [&mut alice, &mut bob]).await {
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["news", "message"], "each once: {events:?}");
        assert_eq!(events[1].1[0]["id"], id);
    }
    // The first attempt had stored the chat message before its publish was refused: the
    // retry found it (same key) instead of storing it again.
    let page = get(b.url(), "/api/v1/rooms/general/history", &key).await;
    let messages = page.body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(messages.len(), 1, "{}", page.body);
    assert_eq!(messages[0]["id"], id);
}

#[tokio::test]
async fn the_api_key_commands_create_list_and_revoke() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let first = create_key(
        &url,
        "acme",
        "orders",
        &["--events", "order.created,order.paid", "--users"],
    );
    let second = create_key(&url, "acme", "reader", &["--presence", "--history"]);
    let globex = create_key(&url, "globex", "theirs", &ALL_SCOPES);
    let (ok, stdout, _) = api_key_cli(&url, &["list", "--tenant", "acme"]);
    assert!(ok);
    let listed: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(listed.len(), 2, "{stdout}");
    let by_id: BTreeMap<&str, &Value> = listed
        .iter()
        .map(|k| (k["id"].as_str().unwrap_or_default(), k))
        .collect();
    let orders = by_id[key_id(&first)];
    assert_eq!(orders["name"], "orders");
    assert_eq!(
        orders["scopes"],
        json!({"events": ["order.created", "order.paid"], "users": true, "tenant_wide": false, "presence": false, "history": false})
    );
    assert!(
        orders["created"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{orders}"
    );
    assert!(by_id.contains_key(key_id(&second)));
    for secret in [&first, &second, &globex] {
        assert!(!stdout.contains(&secret[16..]), "list shows no secret");
    }
    // Redis holds hashes only.
    let mut conn = redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    for secret in [&first, &second, &globex] {
        assert!(keys.iter().all(|k| !k.contains(&secret[16..])), "{keys:?}");
    }
    let dump: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg("socket.io:apikeys:{acme}")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(dump.iter().all(|(_, v)| !v.contains(&first[16..])));

    // Another tenant's key cannot be revoked through this one; unknown ids fail.
    let (ok, _, stderr) = api_key_cli(&url, &["revoke", "--tenant", "acme", key_id(&globex)]);
    assert!(!ok && stderr.contains("no API key"), "{stderr}");
    revoke(&url, "acme", &first);
    let (_, stdout, _) = api_key_cli(&url, &["list", "--tenant", "acme"]);
    assert!(
        !stdout.contains(key_id(&first)) && stdout.contains(key_id(&second)),
        "{stdout}"
    );
    let (_, stdout, _) = api_key_cli(&url, &["list", "--tenant", "globex"]);
    assert!(stdout.contains(key_id(&globex)));

    // Refused at creation: reserved or malformed events, `*` with others, a bad tenant or name.
    for (args, reason) in [
        (
            vec!["--tenant", "acme", "--name", "x", "--events", "connect"],
            "reserved",
        ),
        (
            vec!["--tenant", "acme", "--name", "x", "--events", "*,a"],
            "alone",
        ),
        (
            vec!["--tenant", "acme", "--name", "x", "--events", "a b"],
            "invalid event",
        ),
        (vec!["--tenant", "a:b", "--name", "x"], "--tenant"),
        (vec!["--tenant", "acme", "--name", ""], "--name"),
    ] {
        let mut all = vec!["create"];
        all.extend(args);
        let (ok, stdout, stderr) = api_key_cli(&url, &all);
        assert!(
            !ok && stdout.is_empty() && stderr.contains(reason),
            "{all:?}: {stderr}"
        );
    }
    let without_redis = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["api-key", "list", "--tenant", "acme"])
        .env_remove("REDIS_URL")
        .output()
        .expect("the gateway binary runs");
    let stderr = String::from_utf8_lossy(&without_redis.stderr);
    assert!(
        !without_redis.status.success() && stderr.contains("--redis-url"),
        "{stderr}"
    );
}
