//! Who the adapter believes: a Redis reached only over TLS with an ACL user, and, with a
//! cluster secret, only instances that hold it.

use std::time::Duration;

use crate::common::{Instance, client, fast_config, recv, start_with};
use redis::AsyncCommands;
use redis_adapter::{ClusterSecret, Credentials, Redis, RedisConfig};
use serde_json::json;
use socketio_client::SocketClient;
use socketioxide_core::{
    Uid,
    adapter::{
        BroadcastFlags, BroadcastOptions,
        remote_packet::{RequestOut, RequestTypeOut},
    },
};
use test_support::{
    QUIET, RedisServer, SECURE_PASSWORD, SECURE_USER, SecureRedis, TIMEOUT, eventually,
};

fn secure_config(redis: &SecureRedis) -> RedisConfig {
    RedisConfig {
        credentials: Some(Credentials {
            username: Some(SECURE_USER.to_owned()),
            password: SECURE_PASSWORD.to_owned(),
        }),
        tls_root_cert: Some(redis.ca_pem()),
        connect_timeout: Duration::from_secs(1),
        ..RedisConfig::default()
    }
}

#[tokio::test]
async fn a_tls_redis_with_an_acl_user_is_reached_only_with_its_ca_and_credentials() {
    let redis = SecureRedis::start().await;
    let no_ca = RedisConfig {
        tls_root_cert: None,
        ..secure_config(&redis)
    };
    assert!(
        Redis::connect(&redis.url(), no_ca).await.is_err(),
        "a server certificate from an unknown CA is refused"
    );
    let no_credentials = RedisConfig {
        credentials: None,
        ..secure_config(&redis)
    };
    assert!(Redis::connect(&redis.url(), no_credentials).await.is_err());
    let wrong_password = RedisConfig {
        credentials: Some(Credentials {
            username: Some(SECURE_USER.to_owned()),
            password: "guess".to_owned(),
        }),
        ..secure_config(&redis)
    };
    assert!(Redis::connect(&redis.url(), wrong_password).await.is_err());

    let a = start_with(&redis.url(), fast_config("tls"), secure_config(&redis)).await;
    let b = start_with(&redis.url(), fast_config("tls"), secure_config(&redis)).await;
    let mut member = client(&b, &["chat"]).await;
    assert!(eventually(TIMEOUT, || a.state.server_count("/") == Some(2)).await);
    a.io.to("chat").emit("msg", "over tls").await.unwrap();
    assert_eq!(recv(&mut member).await.data, json!("over tls"));
    // The application's own commands go through the same authenticated connection.
    let pong: String = a.state.redis().query(&redis::cmd("PING")).await.unwrap();
    assert_eq!(pong, "PONG");
}

/// A v1 envelope as anyone with Redis access can write it.
fn forged(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![1, kind];
    bytes.extend_from_slice(Uid::new().to_string().as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// A forged request to every instance of `/`: `kind` for every socket.
fn forged_request(kind: RequestTypeOut<'_>) -> Vec<u8> {
    let mut opts = BroadcastOptions::default();
    opts.add_flag(BroadcastFlags::Broadcast);
    let request = RequestOut::new(Uid::new(), kind, &opts);
    forged(1, &rmp_serde::to_vec(&request).unwrap())
}

/// Publishes a forged heartbeat, hello, request to disconnect and to join every socket to a
/// room, and a response, on the channels of namespace `/` under `prefix`.
async fn forge_everything(redis: &RedisServer, prefix: &str, victim: &Instance) {
    let mut conn = redis.connection().await;
    let everyone = format!("{prefix}#/#");
    let rooms = vec!["stolen".into()];
    let messages = [
        (everyone.clone(), forged(3, b"")),
        (everyone.clone(), forged(4, b"")),
        (
            everyone.clone(),
            forged_request(RequestTypeOut::DisconnectSockets),
        ),
        (
            everyone.clone(),
            forged_request(RequestTypeOut::AddSockets(&rooms)),
        ),
        (
            format!("{prefix}#/#r#chat#"),
            forged_request(RequestTypeOut::DisconnectSockets),
        ),
    ];
    for (channel, payload) in messages {
        let _: () = conn.publish(channel, payload).await.unwrap();
    }
    // A response to whatever the victim may be waiting for, on its response channel.
    let uid = victim.io.config().server_id;
    let mut response = forged(2, &[b'x'; 16]);
    response.extend_from_slice(&rmp_serde::to_vec(&0u8).unwrap());
    let _: () = conn
        .publish(format!("{prefix}-response#/#{uid}#"), response)
        .await
        .unwrap();
}

/// Two instances of `prefix` with `secret`, and a member of "chat" on the second.
async fn pair(
    redis: &RedisServer,
    prefix: &str,
    secret: Option<ClusterSecret>,
) -> (Instance, Instance, SocketClient) {
    let config = redis_adapter::RedisAdapterConfig {
        cluster_secret: secret,
        ..fast_config(prefix)
    };
    let a = start_with(&redis.url(), config.clone(), RedisConfig::default()).await;
    let b = start_with(&redis.url(), config, RedisConfig::default()).await;
    let member = client(&b, &["chat"]).await;
    assert!(eventually(TIMEOUT, || a.state.server_count("/") == Some(2)).await);
    assert!(eventually(TIMEOUT, || b.state.server_count("/") == Some(2)).await);
    (a, b, member)
}

#[tokio::test]
async fn with_the_cluster_secret_a_redis_client_without_it_changes_nothing() {
    let redis = RedisServer::start().await;
    let secret = ClusterSecret::new(b"the deployment's secret, 32 byte");
    let (a, b, mut member) = pair(&redis, "sealed", secret).await;
    for victim in [&a, &b] {
        forge_everything(&redis, "sealed", victim).await;
    }
    tokio::time::sleep(QUIET).await;
    for instance in [&a, &b] {
        assert_eq!(
            instance.state.server_count("/"),
            Some(2),
            "membership unchanged"
        );
        let dropped = instance.state.stats().dropped_unverified;
        assert!(
            dropped >= 5,
            "forged messages dropped and counted: {dropped}"
        );
    }
    let rooms = b.io.rooms().await.unwrap();
    assert!(
        !rooms.iter().any(|room| room == "stolen"),
        "no forged join: {rooms:?}"
    );
    // The member is still connected and in its room: a real broadcast still reaches it.
    a.io.to("chat").emit("msg", "still here").await.unwrap();
    assert_eq!(recv(&mut member).await.data, json!("still here"));
}

/// What the secret protects against: without it, one forged heartbeat adds a server that
/// every request then waits for, and a forged request disconnects every socket.
#[tokio::test]
async fn without_a_secret_forged_messages_are_believed() {
    let redis = RedisServer::start().await;
    let (a, _b, mut member) = pair(&redis, "open", None).await;
    forge_everything(&redis, "open", &a).await;
    assert!(
        eventually(TIMEOUT, || a
            .state
            .server_count("/")
            .is_some_and(|n| n >= 4))
        .await
    );
    assert!(
        member.next_event(TIMEOUT).await.is_err(),
        "disconnected by a forged request"
    );
}
