//! `publish --via emitter` against two instances of the Node peer (socket.io 4.8 with
//! @socket.io/redis-adapter, `bench/peers/node/server.mjs`) on one Redis: the official
//! `@socket.io/redis-emitter` publishes, Node's adapter delivers natively, and every tick
//! reaches every member of its room once, in order. Needs the Debian packages
//! `redis-server`, `nodejs` and `npm` (the peer's modules are installed with `npm ci`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{bounded, common};
use loadtest::scenarios::publish::{self, PublishConfig, Via};
use test_support::{RedisServer, TIMEOUT, free_port, npm_ci};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const LIMIT: Duration = Duration::from_secs(60);
/// The Node peer, with the emitter in its lockfile.
const NODE_PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/peers/node");

/// `node server.mjs` on a free port, once it says it listens; killed when dropped.
async fn node_peer(redis_url: &str) -> (String, Child) {
    let port = free_port();
    let mut child = Command::new("node")
        .arg("server.mjs")
        .args(["--port", &port.to_string(), "--redis-url", redis_url])
        .current_dir(NODE_PEER)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| {
            panic!("cannot run node ({err}): install the Debian package `nodejs`")
        });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(TIMEOUT * 2, lines.next_line())
        .await
        .expect("the Node peer starts in time")
        .unwrap()
        .expect("the Node peer says it listens");
    assert!(line.contains("\"listening\""), "{line}");
    (format!("http://127.0.0.1:{port}"), child)
}

#[tokio::test]
async fn the_official_emitter_reaches_every_member_on_node_peers_once_in_order() {
    npm_ci(Path::new(NODE_PEER), "@socket.io/redis-emitter");
    let redis = RedisServer::start().await;
    let (a, _a) = node_peer(&redis.url()).await;
    let (b, _b) = node_peer(&redis.url()).await;
    let mut common = common(&[&a, &b]);
    common.polling_share = 0.25;
    let rate = 100.0;
    let mut config = PublishConfig::new(common, 12, 4, rate, Duration::from_secs(1), Via::Emitter);
    config.redis_url = Some(redis.url());
    config.pad_bytes = 16;
    config.settle = Duration::from_millis(500);
    let report = bounded(LIMIT, publish::run(&config)).await.unwrap();
    println!("{report}");

    let figures = report.publish.as_ref().expect("publish figures");
    assert_eq!(figures.via, "emitter");
    assert_eq!(
        (figures.planned, figures.attempted, figures.accepted),
        (100, 100, 100),
        "{report}"
    );
    assert!(figures.failures.is_empty(), "{report}");
    assert!(
        (figures.publishes_per_sec - rate).abs() < rate * 0.1,
        "{report}"
    );
    // Three rooms of four: every publish is owed to the four members of its room.
    assert_eq!(report.sent, 100);
    assert_eq!(report.expected, 400, "{report}");
    assert_eq!(report.received, 400, "{report}");
    assert_eq!(
        (
            report.loss,
            report.duplicates,
            report.out_of_order,
            report.errors
        ),
        (0, 0, 0, 0),
        "{report}"
    );
    assert_eq!(report.polling_users, 3);
    assert_eq!(report.latency_ms.count, 400, "{report}");
    assert!(
        report.latency_ms.max < LIMIT.as_secs_f64() * 1000.0,
        "{report}"
    );
}
