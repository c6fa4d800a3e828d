//! The gateway on a Redis that admits only its ACL user over TLS, with a cluster secret:
//! every credential comes from a file, and the instances chat as usual.

use std::path::PathBuf;

use serde_json::json;
use test_support::{SECURE_PASSWORD, SECURE_USER, SecureRedis};

use crate::support::{ack, cluster, connect_user, join, next_named};

/// Writes `contents` to a file of its own for this test and returns its path.
fn file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-trusted-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test]
async fn instances_chat_over_an_acl_tls_redis_with_the_cluster_secret() {
    let redis = SecureRedis::start().await;
    let password = file("redis-password", format!("{SECURE_PASSWORD}\n").as_bytes());
    let ca = file("redis-ca.pem", &redis.ca_pem());
    let secret = file("cluster-secret", b"a cluster secret of at least 16 bytes\n");
    let [a, b] = <[_; 2]>::try_from(
        cluster(2, &redis.url(), |config| {
            config.redis.redis_user = Some(SECURE_USER.to_owned());
            config.redis.redis_password_file = Some(password.clone());
            config.redis.redis_ca_file = Some(ca.clone());
            config.cluster_secret_file = Some(secret.clone());
        })
        .await,
    )
    .ok()
    .unwrap();
    let mut bob = connect_user(b.url(), "bob").await;
    join(&bob, "general").await;
    let carol = connect_user(a.url(), "carol").await;
    join(&carol, "general").await;
    let sent = ack(
        &carol,
        "message",
        json!({"room": "general", "text": "sealed"}),
    )
    .await;
    assert!(sent["id"].is_string(), "{sent}");
    assert_eq!(
        next_named(&mut bob, "message").await.data["text"],
        json!("sealed")
    );

    // A secret file that is too short is a clear startup error, not a silent downgrade.
    let short = file("short-secret", b"short\n");
    let mut config = gateway::testing::clustered(&redis.url());
    config.cluster_secret_file = Some(short);
    let refused = gateway::bind(config).await.err().map(|err| err.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|err| err.contains("--cluster-secret-file")),
        "{refused:?}"
    );
}
