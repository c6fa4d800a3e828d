//! Redis killed (SIGKILL) under three gateway processes, then restarted on the same port.
//!
//! Throughout: every instance stays up, chat goes on on every instance (acked `pending`,
//! spooled, delivered locally), no socket is disconnected (the periodic session check keeps
//! sockets it cannot verify), `/readyz` says not ready. After the restart (Redis with an
//! append-only file, `appendfsync always`): every member has every message within 1 s of
//! Redis accepting connections, once each and in each sender's order, the spools written in
//! batches (a script per 100 messages, not one per message); the history holds all of them;
//! `/readyz` is ready again, `/metrics` counts the reconnects.
//!
//! Also: a line whose script's answer comes past the deadline is spooled, and reaches the
//! other instances once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use socketio_client::SocketClient;
use support::{
    ChildGateway, TIMEOUT, assert_disconnected, cluster_info, clustered_args, connect_user,
    healthz, join, metric, metrics, readyz, with_flag,
};
use test_support::{RedisServer, eventually_async};

/// The session check runs every second: several times during the outage.
const SESSION_CHECK: Duration = Duration::from_secs(1);
const OUTAGE: Duration = Duration::from_secs(3);
/// Each instance retries Redis at least this often once it is gone.
const RECONNECT_MAX: &str = "200ms";

/// Three clustered gateway processes on `redis`, seeing each other.
async fn three_gateways(redis: &RedisServer) -> [ChildGateway; 3] {
    let args = with_flag(
        with_flag(
            clustered_args(&redis.url()),
            "--session-check-interval",
            &format!("{}s", SESSION_CHECK.as_secs()),
        ),
        "--redis-reconnect-max",
        RECONNECT_MAX,
    );
    let gateways = [
        ChildGateway::start(&args).await,
        ChildGateway::start(&args).await,
        ChildGateway::start(&args).await,
    ];
    let all = eventually_async(TIMEOUT, || async {
        for gateway in &gateways {
            if cluster_info(gateway.url()).await["servers"] != 3 {
                return false;
            }
        }
        true
    })
    .await;
    assert!(all, "the three instances did not find each other");
    gateways
}

/// Reads `client`'s events until a `message` with `text` arrives (within `within`).
async fn receives(client: &mut SocketClient, text: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_event(left).await {
            Ok(event) if event.name == "message" && event.data["text"] == text => return,
            Ok(_) => {}
            Err(err) => panic!("waiting for {text:?}: {err}"),
        }
    }
}

/// Sends `text` to `lobby`, returning the ack.
async fn say(client: &SocketClient, text: &str) -> Value {
    client
        .emit_with_ack("message", json!({"room": "lobby", "text": text}), TIMEOUT)
        .await
        .unwrap_or_else(|err| panic!("no ack for {text:?}: {err}"))
}

/// Reads `client`'s `message` events until every one of `texts` arrived, or `deadline`;
/// returns the texts received in order (any text twice fails the test).
async fn collect(
    client: &mut SocketClient,
    texts: &BTreeSet<String>,
    deadline: Instant,
) -> Vec<String> {
    let mut got = Vec::new();
    let mut seen = BTreeSet::new();
    while !texts.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.next_event(left).await {
            Ok(event) if event.name == "message" => {
                let text = event.data["text"].as_str().unwrap_or_default().to_owned();
                assert!(seen.insert(text.clone()), "{text:?} received twice");
                got.push(text);
            }
            Ok(event) => assert_ne!(event.name, "disconnect", "disconnected: {event:?}"),
            Err(err) => {
                let missing: Vec<_> = texts.difference(&seen).collect();
                panic!(
                    "{} missing after the deadline ({err}): {missing:?}",
                    missing.len()
                );
            }
        }
    }
    got
}

/// Makes `redis` log every command it runs in its slow log, up to 100,000 of them.
async fn log_every_command(redis: &RedisServer) {
    let mut connection = redis.connection().await;
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-max-len")
        .arg(100_000)
        .arg("slowlog-log-slower-than")
        .arg(0)
        .query_async(&mut connection)
        .await
        .expect("CONFIG SET of the slow log");
}

/// How many scripts naming a key that contains `key_part` Redis ran since
/// [`log_every_command`], from its slow log.
async fn scripts_on(redis: &RedisServer, key_part: &str) -> usize {
    let mut connection = redis.connection().await;
    let log: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(&mut connection)
        .await
        .expect("SLOWLOG GET");
    let text = |value: &redis::Value| match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(text) => text.clone(),
        _ => String::new(),
    };
    log.iter()
        .filter(|entry| {
            let redis::Value::Array(fields) = entry else {
                return false;
            };
            let Some(redis::Value::Array(args)) = fields.get(3) else {
                return false;
            };
            let is_script = args
                .first()
                .is_some_and(|name| text(name).to_ascii_uppercase().starts_with("EVAL"));
            is_script && args.iter().any(|arg| text(arg).contains(key_part))
        })
        .count()
}

/// Whether `texts` keeps each sender's messages (`<sender>-<n>`) in the order they were sent.
fn in_sender_order(texts: &[String]) -> bool {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    texts.iter().all(|text| {
        let Some((sender, n)) = text.rsplit_once('-') else {
            return true;
        };
        let Ok(n) = n.parse::<u64>() else {
            return true;
        };
        let previous = last.insert(sender, n);
        previous.is_none_or(|previous| previous < n)
    })
}

#[tokio::test]
async fn nothing_acknowledged_or_spooled_is_lost_through_a_redis_crash() {
    // Zero loss is claimed with every write fsynced before Redis answers.
    let mut redis = RedisServer::start_durable().await;
    let [a, b, c] = three_gateways(&redis).await;
    let urls = [a.url(), b.url(), c.url()];
    let mut alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(a.url(), "bob").await;
    let mut carol = connect_user(b.url(), "carol").await;
    let mut dave = connect_user(c.url(), "dave").await;
    for client in [&alice, &bob, &carol, &dave] {
        join(client, "lobby").await;
    }
    assert!(say(&alice, "before").await["id"].is_string());
    for client in [&mut alice, &mut bob, &mut carol, &mut dave] {
        receives(client, "before", TIMEOUT).await;
    }
    for url in urls {
        assert_eq!(readyz(url).await.0, 200, "{url} ready before the outage");
    }

    redis.kill();
    let killed = Instant::now();

    // Chat load on all three instances while Redis is down: every message is accepted
    // (spooled, or stored if it got in before the crash), and the sender's own instance
    // serves it at once.
    let senders = [("a", &alice), ("c", &carol), ("d", &dave)];
    let mut sent = BTreeSet::new();
    let mut pending = 0;
    let mut not_ready = [false; 3];
    let mut slowest = Duration::ZERO;
    let mut n = 0;
    while killed.elapsed() < OUTAGE {
        for (name, sender) in senders {
            let text = format!("{name}-{n}");
            let asked = Instant::now();
            let reply = say(sender, &text).await;
            slowest = slowest.max(asked.elapsed());
            if reply["pending"] == true {
                assert!(reply["id"].is_null() && reply["key"].is_string(), "{reply}");
                pending += 1;
            } else {
                assert!(reply["id"].is_string(), "{text}: {reply}");
            }
            sent.insert(text);
        }
        for (i, url) in urls.iter().enumerate() {
            assert_eq!(
                healthz(url).await,
                Some(200),
                "{url} alive during the outage"
            );
            if readyz(url).await.0 == 503 {
                not_ready[i] = true;
            }
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("{n} rounds during the outage; the slowest ack took {slowest:?}");
    assert!(n >= 5, "only {n} rounds of messages during the outage");
    assert!(pending > 0, "no message was spooled");
    assert_eq!(not_ready, [true; 3], "/readyz said ready during the outage");

    redis.restart().await;
    let restarted = Instant::now();
    let deadline = restarted + Duration::from_secs(1);
    // The spools wait for the subscribers to be back and settled (200 ms) before they write:
    // from here on every command is logged (any missed would only lower the count below).
    log_every_command(&redis).await;

    // Every member has every message within a second of Redis being back, once each, each
    // sender's in order (the local ones it had at once).
    let mut everyone = [
        ("alice", &mut alice),
        ("bob", &mut bob),
        ("carol", &mut carol),
        ("dave", &mut dave),
    ];
    for (who, client) in &mut everyone {
        let got = collect(client, &sent, deadline).await;
        assert!(in_sender_order(&got), "{who}: out of order {got:?}");
    }
    println!(
        "Redis down {OUTAGE:?}: {} messages sent on 3 instances ({pending} spooled), every \
         member had all of them {:?} after Redis accepted connections again",
        sent.len(),
        restarted.elapsed()
    );
    assert!(restarted.elapsed() < Duration::from_secs(1));

    // Each instance wrote its spool in batches: one script stores up to 100 messages (two
    // calls for the first, when Redis does not know the script yet), where one per message
    // would be as many scripts as messages.
    let mut batches = 0;
    for url in urls {
        let empty = eventually_async(TIMEOUT, || async {
            metric(&metrics(url).await, "history_spool_depth") == Some(0.0)
        })
        .await;
        assert!(empty, "{url}: the spool did not empty");
        let flushed = metric(&metrics(url).await, "history_spool_flushed_total").unwrap_or(0.0);
        batches += (flushed as usize).div_ceil(100);
    }
    let scripts = scripts_on(&redis, ":r:lobby").await;
    println!("{pending} spooled messages stored by {scripts} scripts ({batches} batches)");
    assert!(
        scripts <= 2 * batches,
        "{scripts} scripts wrote the room's stream for {batches} batches of spooled messages"
    );

    // The history holds them all once, in each sender's order, and restarts keep it (AOF).
    let mut history = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut request = json!({"room": "lobby", "limit": 100});
        if let Some(before) = &before {
            request["before"] = json!(before);
        }
        let page = bob
            .emit_with_ack("history", request, TIMEOUT)
            .await
            .unwrap();
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        let texts: Vec<String> = messages
            .iter()
            .map(|message| message["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        history.splice(0..0, texts);
        before = messages
            .first()
            .and_then(|m| m["id"].as_str())
            .map(str::to_owned);
        if page["more"] != true {
            break;
        }
    }
    let stored: BTreeSet<String> = history.iter().cloned().collect();
    assert_eq!(stored.len(), history.len(), "a message stored twice");
    let mut expected = sent.clone();
    expected.insert("before".to_owned());
    assert_eq!(stored, expected, "the history is not what was acknowledged");
    assert!(
        in_sender_order(&history),
        "history out of order: {history:?}"
    );

    // Ready again, reconnects counted, and nobody was disconnected: every client still chats
    // after a session check has run against the restarted Redis.
    for url in urls {
        let ready = eventually_async(TIMEOUT, || async { readyz(url).await.0 == 200 }).await;
        assert!(ready, "{url} not ready after the restart");
        let body = metrics(url).await;
        let reconnects = metric(&body, "redis_adapter_reconnects_total");
        assert!(
            reconnects.is_some_and(|n| n >= 1.0),
            "{url}: {reconnects:?}"
        );
        assert_eq!(metric(&body, "redis_up"), Some(1.0), "{url}");
        assert_eq!(metric(&body, "history_spool_depth"), Some(0.0), "{url}");
        assert_eq!(
            metric(&body, "gateway_sessions_expired_disconnects_total"),
            Some(0.0),
            "{url}"
        );
    }
    tokio::time::sleep(SESSION_CHECK + Duration::from_millis(500)).await;
    assert!(say(&dave, "after").await["id"].is_string());
    for client in [&mut alice, &mut bob, &mut carol] {
        receives(client, "after", TIMEOUT).await;
    }
}

#[tokio::test]
async fn a_redis_restarted_empty_ends_the_sessions_at_the_next_check() {
    let mut redis = RedisServer::start().await;
    let [a, b, _c] = three_gateways(&redis).await;
    let mut alice = connect_user(a.url(), "alice").await;
    let mut carol = connect_user(b.url(), "carol").await;

    redis.kill();
    tokio::time::sleep(SESSION_CHECK * 2).await;
    // Redis down: scrapes skip its memory rather than report a stale or NaN value.
    let body = metrics(a.url()).await;
    assert_eq!(metric(&body, "redis_up"), Some(0.0));
    assert_eq!(metric(&body, "redis_memory_used_bytes"), None);

    // No RDB: the sessions are gone with the data, and the next check notices.
    redis.restart().await;
    let restarted = Instant::now();
    let within = SESSION_CHECK + Duration::from_secs(2);
    assert_disconnected(&mut alice, within).await;
    assert_disconnected(&mut carol, within).await;
    println!(
        "Redis restarted empty: sockets of the lost sessions disconnected after {:?} \
         (session check every {SESSION_CHECK:?})",
        restarted.elapsed()
    );
    // Logging in again works at once.
    let _alice = connect_user(a.url(), "alice").await;
}

/// A line whose script ran (stored and published it) but whose answer came after the 1 s
/// deadline is spooled by its instance; when the spool writes it, it finds it stored and does
/// not publish it again: the other instances' members receive it once.
#[tokio::test]
async fn a_line_answered_past_the_deadline_reaches_the_other_instances_once() {
    let redis = RedisServer::start().await;
    let [a, b, _c] = three_gateways(&redis).await;
    let alice = connect_user(a.url(), "alice").await;
    let mut bob = connect_user(b.url(), "bob").await;
    join(&alice, "lobby").await;
    join(&bob, "lobby").await;
    say(&alice, "before").await;
    receives(&mut bob, "before", TIMEOUT).await;

    // Every client waits 300 ms; then the line's script runs first, and a 1.5 s script runs
    // right after it, before Redis writes any answer: the line is stored and published, and
    // its instance hears so only after its deadline.
    redis.pause(Duration::from_millis(300), "ALL").await;
    let mut busy = redis.connection().await;
    let stall = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let busy_loop = "local t = redis.call('TIME') \
            local stop = t[1] * 1000000 + t[2] + 1500000 \
            repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop";
        // Its own answer may come after this connection's response timeout too.
        let _stalled: redis::RedisResult<()> = redis::cmd("EVAL")
            .arg(busy_loop)
            .arg(0)
            .query_async(&mut busy)
            .await;
    };
    let (ack, ()) = tokio::join!(say(&alice, "late"), stall);
    assert_eq!(ack["pending"], true, "the ack came in time: {ack}");

    // The spool writes it once Redis answers again; bob has it once, alice is told its id.
    receives(&mut bob, "late", TIMEOUT).await;
    let flushed = eventually_async(TIMEOUT, || async {
        metric(&metrics(a.url()).await, "history_spool_flushed_total") == Some(1.0)
    })
    .await;
    assert!(flushed, "the spool did not write the line");
    say(&alice, "after").await;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = bob.next_event(left).await.unwrap();
        if event.name == "message" {
            assert_ne!(event.data["text"], "late", "received twice: {event:?}");
            if event.data["text"] == "after" {
                break;
            }
        }
    }
}
