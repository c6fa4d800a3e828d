//! The broadcast options the gateway's chat needs, on two instances sharing a real Redis:
//! `remote_only` reaches the other instances' members and no local one; `confirmed` resolves
//! once Redis took the publish, and fails when Redis does not answer in time, where a queued
//! broadcast is already accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use redis_adapter::RedisConfig;
use test_support::RedisServer;

mod common;
use common::{Instance, Ws, next_text, quiet, socket_client};

/// Two instances on `redis` that see each other, the first with `config`, each with a client
/// in room `r`: (here, its client, there, its client).
async fn members_of_r(redis: &RedisServer, config: RedisConfig) -> (Instance, Ws, Instance, Ws) {
    let here = Instance::start(&redis.url(), config).await;
    let there = Instance::start(&redis.url(), RedisConfig::default()).await;
    Instance::see_each_other(&[&here, &there]).await;
    let (near, near_socket) = socket_client(&here.url, &here.nsp).await;
    let (far, far_socket) = socket_client(&there.url, &there.nsp).await;
    near_socket.join("r").await.unwrap();
    far_socket.join("r").await.unwrap();
    (here, near, there, far)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_only_broadcast_reaches_the_other_instances_and_no_local_socket() {
    let redis = RedisServer::start().await;
    let (here, mut near, _there, mut far) = members_of_r(&redis, RedisConfig::default()).await;

    let local = here
        .nsp
        .to(["r"])
        .remote_only()
        .emit("m", &1)
        .await
        .unwrap();
    assert_eq!(local, 0);
    assert_eq!(next_text(&mut far).await, r#"42["m",1]"#);
    quiet(&mut near).await;

    // Without waiting, confirmed too, and to the whole namespace.
    assert_eq!(here.nsp.everyone().remote_only().emit_now("m", &2), Ok(0));
    let local = here
        .nsp
        .everyone()
        .remote_only()
        .confirmed()
        .emit("m", &3)
        .await
        .unwrap();
    assert_eq!(local, 0);
    assert_eq!(next_text(&mut far).await, r#"42["m",2]"#);
    assert_eq!(next_text(&mut far).await, r#"42["m",3]"#);
    quiet(&mut near).await;

    // The last of `local` and `remote_only` counts.
    let local = here.nsp.to(["r"]).remote_only().local().emit("m", &4);
    assert_eq!(local.await.unwrap(), 1);
    assert_eq!(next_text(&mut near).await, r#"42["m",4]"#);
    quiet(&mut far).await;
}

/// `CLIENT PAUSE ms WRITE` on the Redis at `port`, in RESP over a plain connection.
async fn pause_writes(port: u16, ms: u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let ms = ms.to_string();
    let command = format!(
        "*4\r\n$6\r\nCLIENT\r\n$5\r\nPAUSE\r\n${}\r\n{ms}\r\n$5\r\nWRITE\r\n",
        ms.len()
    );
    conn.write_all(command.as_bytes()).await.unwrap();
    let mut answer = [0; 5];
    conn.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"+OK\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_broadcast_fails_when_redis_does_not_take_it_in_time() {
    let redis = RedisServer::start().await;
    // Publishes time out after 300 ms; no probe runs while Redis is paused.
    let config = RedisConfig {
        command_timeout: Duration::from_millis(300),
        probe_interval: Duration::from_secs(60),
        probe_timeout: Duration::from_secs(10),
        ..RedisConfig::default()
    };
    let (here, mut near, _there, mut far) = members_of_r(&redis, config).await;

    // Redis answers: confirmed, then delivered everywhere.
    let local = here.nsp.to(["r"]).confirmed().emit("m", &1).await;
    assert_eq!(local, Ok(1));
    assert_eq!(next_text(&mut near).await, r#"42["m",1]"#);
    assert_eq!(next_text(&mut far).await, r#"42["m",1]"#);

    // Redis takes no publish for 1.5 s: a queued broadcast is accepted at once, a confirmed
    // one fails once its publish timed out, and reaches no one here.
    pause_writes(redis.port(), 1500).await;
    let started = Instant::now();
    assert_eq!(here.nsp.to(["r"]).emit("m", &2).await, Ok(1));
    assert!(started.elapsed() < Duration::from_millis(250));
    assert_eq!(next_text(&mut near).await, r#"42["m",2]"#);
    let started = Instant::now();
    let confirmed = here.nsp.to(["r"]).confirmed().emit("m", &3).await;
    assert!(
        matches!(confirmed, Err(engine::Error::Remote(_))),
        "{confirmed:?}"
    );
    let waited = started.elapsed();
    println!("the confirmed broadcast failed after {waited:?}: {confirmed:?}");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(1500),
        "failed after {waited:?}"
    );
    quiet(&mut near).await;
}
