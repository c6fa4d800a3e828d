//! The HTTP routes next to Socket.IO: health, cluster status, CORS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::{TestGateway, connect, metric, metrics, standalone};
use serde_json::{Value, json};

async fn cluster(gateway: &TestGateway) -> Value {
    let url = format!("{}/api/cluster", gateway.admin_url());
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

/// The operational routes are served on the admin listener only: the main listener (what
/// nginx and browsers reach) answers 404, and no answer names a socket.
#[tokio::test]
async fn operational_routes_are_on_the_admin_listener_only() {
    let gateway = TestGateway::start(standalone()).await;
    let _socket = connect(gateway.url()).await;
    for path in [
        "/metrics",
        "/api/stats",
        "/api/cluster",
        "/api/cluster/sockets",
    ] {
        let main = reqwest::get(format!("{}{path}", gateway.url()))
            .await
            .unwrap();
        assert_eq!(main.status(), 404, "{path} on the main listener");
        let admin = reqwest::get(format!("{}{path}", gateway.admin_url()))
            .await
            .unwrap();
        assert_eq!(admin.status(), 200, "{path} on the admin listener");
    }
    let sockets: Value = reqwest::get(format!("{}/api/cluster/sockets", gateway.admin_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sockets, json!({"sockets": 1}), "a count, no socket id");
    // The engine's readings are scraped with the rest (values are process-wide here: every
    // gateway of this test binary records into one recorder).
    let body = metrics(gateway.url()).await;
    for series in ["engine_sessions", "engine_deliveries_total"] {
        assert!(metric(&body, series).is_some(), "{series} in {body}");
    }
    // The chat page and the probes stay on the main listener; /healthz names the instance.
    let health = reqwest::get(format!("{}/healthz", gateway.url()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["x-gateway-instance"].to_str().unwrap(),
        gateway.instance()
    );
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
