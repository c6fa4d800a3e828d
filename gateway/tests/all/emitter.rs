//! The official `@socket.io/redis-emitter` (5.1, pinned in tests/node with ioredis) writing
//! into the Redis of three gateway processes started with `--emitter-key socket.io`, and
//! official `socket.io-client`s on every instance observing exactly what each operation
//! should reach: a room, a room with `except`, the namespace, `socketsJoin` (after which the
//! socket may talk in the room) and `socketsLeave` (after which it may not),
//! `disconnectSockets`, an emit with a binary argument; and nothing of what the tenant rules
//! refuse (a raw room name, a join across tenants), each refusal counted on every instance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use test_support::RedisServer;

use crate::support::{ChildGateway, clustered_args, login, metric, metrics, node_client_dir};

/// Runs `tests/node/emitter.mjs` with `args` and returns its summary once it says `ok`.
async fn run_emitter_mjs(args: &[String]) -> Value {
    let output = tokio::process::Command::new("node")
        .arg("emitter.mjs")
        .args(args)
        .current_dir(node_client_dir())
        .output()
        .await
        .unwrap_or_else(|err| {
            panic!("cannot run node ({err}): install the Debian package `nodejs`")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("node emitter.mjs: {stdout}");
    assert!(
        output.status.success(),
        "the emitter script failed: {stdout}\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(summary["ok"], true, "{summary}");
    summary
}

/// The sum over `gateways` of the adapter's emitter drops for `reason`.
async fn dropped(gateways: &[&ChildGateway], reason: &str) -> f64 {
    let series = format!("redis_adapter_emitter_dropped_total{{reason=\"{reason}\"}}");
    let mut total = 0.0;
    for gateway in gateways {
        total += metric(&metrics(gateway.url()).await, &series).unwrap_or(0.0);
    }
    total
}

#[tokio::test]
async fn the_official_emitter_reaches_exactly_the_sockets_the_tenant_rules_allow() {
    let redis = RedisServer::start().await;
    let mut args = clustered_args(&redis.url());
    args.extend(["--emitter-key".to_owned(), "socket.io".to_owned()]);
    let a = ChildGateway::start(&args).await;
    let b = ChildGateway::start(&args).await;
    let c = ChildGateway::start(&args).await;
    // alice and grace (another tenant) on a, bob on b, carol on c.
    let mut script = vec![
        "--redis-url".to_owned(),
        redis.url(),
        "--timeout-ms".to_owned(),
        "30000".to_owned(),
    ];
    for (name, gateway) in [("alice", &a), ("grace", &a), ("bob", &b), ("carol", &c)] {
        let token = login(gateway.url(), name).await;
        script.extend([
            "--client".to_owned(),
            format!("{name}={}={token}", gateway.url()),
        ]);
    }
    let summary = run_emitter_mjs(&script).await;

    let news = |step: u32| json!({"event": "news", "step": step});
    let announce = json!({"event": "announce", "step": 3});
    let binary = json!({"event": "binary", "step": 9, "extra": [1, 2, 3]});
    let received = &summary["received"];
    assert_eq!(
        received["alice"],
        json!([news(1), news(2), announce, binary]),
        "alice"
    );
    assert_eq!(
        received["bob"],
        json!([news(1), announce]),
        "bob, excepted then disconnected"
    );
    assert_eq!(
        received["carol"],
        json!([news(1), news(2), announce, news(4), binary]),
        "carol, joined to ops by the emitter"
    );
    assert_eq!(
        received["grace"],
        json!([announce, news(6)]),
        "grace, of the other tenant"
    );
    let acks = &summary["acks"];
    assert!(
        acks["joined"]["id"].is_string(),
        "carol, joined to ops by the emitter, may send there: {acks}"
    );
    assert_eq!(
        acks["left"]["error"], "not a member of this room",
        "carol, taken out of ops by the emitter, may not: {acks}"
    );
    assert_eq!(summary["disconnected"]["bob"], "io server disconnect");
    for name in ["alice", "carol", "grace"] {
        assert_eq!(
            summary["disconnected"][name],
            Value::Null,
            "{name} stays connected"
        );
    }

    let gateways = [&a, &b, &c];
    // The raw name and the cross-tenant join, each refused by all three instances.
    assert_eq!(dropped(&gateways, "refused").await, 6.0);
    assert_eq!(
        dropped(&gateways, "unsupported").await,
        3.0,
        "serverSideEmit"
    );
    assert_eq!(dropped(&gateways, "malformed").await, 0.0);
}
