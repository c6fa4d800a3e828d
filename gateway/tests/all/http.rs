//! The HTTP routes next to Socket.IO: health, cluster status, CORS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::{TestGateway, connect, standalone};
use serde_json::{Value, json};

async fn cluster(gateway: &TestGateway) -> Value {
    let url = format!("{}/api/cluster", gateway.url());
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn healthz_answers_ok() {
    let gateway = TestGateway::start(standalone()).await;
    let response = reqwest::get(format!("{}/healthz", gateway.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn cluster_reports_the_instance_one_server_and_the_local_sockets() {
    let gateway = TestGateway::start(standalone()).await;
    let expected = |sockets: usize| json!({"instance": gateway.instance(), "servers": 1, "sockets_local": sockets});
    assert_eq!(cluster(&gateway).await, expected(0));

    let first = connect(gateway.url()).await;
    let _second = connect(gateway.url()).await;
    assert_eq!(cluster(&gateway).await, expected(2));

    first.close().await;
    let mut count = Value::Null;
    for _ in 0..50 {
        count = cluster(&gateway).await;
        if count == expected(1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("sockets_local did not drop to 1: {count}");
}

#[tokio::test]
async fn cors_is_same_origin_only_by_default() {
    let gateway = TestGateway::start(standalone()).await;
    let response = reqwest::Client::new()
        .get(format!("{}/healthz", gateway.url()))
        .header("Origin", "http://app.test")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn cors_allows_the_configured_origins_on_routes_and_polling() {
    let mut config = standalone();
    config.cors_origins = vec!["http://app.test".into()];
    let gateway = TestGateway::start(config).await;
    let client = reqwest::Client::new();
    for path in ["/healthz", "/socket.io/?EIO=4&transport=polling"] {
        for origin in ["http://app.test", "http://evil.test"] {
            let response = client
                .get(format!("{}{path}", gateway.url()))
                .header("Origin", origin)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let allowed = response.headers().get("access-control-allow-origin");
            if origin == "http://app.test" {
                assert_eq!(allowed.unwrap(), origin, "{path}");
            } else {
                assert!(allowed.is_none(), "{path} allowed {origin}");
            }
        }
    }
}
