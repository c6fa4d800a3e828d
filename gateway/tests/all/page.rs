//! The chat page: `GET /` and its assets, and the socket.io-client browser build read from
//! `--web-modules-dir` (503 with what to do when it is missing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use crate::support::{TestGateway, standalone};

/// A node_modules holding socket.io-client 4.8.4: tests/node's (which CI installs), else
/// gateway/web's.
fn modules_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [
        root.join("tests/node/node_modules"),
        root.join("web/node_modules"),
    ] {
        if dir.join("socket.io-client/dist/socket.io.min.js").is_file() {
            return dir;
        }
    }
    panic!("socket.io-client is not installed: run `npm ci` in gateway/tests/node or gateway/web");
}

async fn gateway_with(modules: PathBuf) -> TestGateway {
    TestGateway::start(gateway::Config {
        web_modules_dir: modules,
        ..standalone()
    })
    .await
}

async fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn the_page_and_its_own_assets_are_served() {
    let gateway = gateway_with(modules_dir()).await;
    let (status, content_type, body) = get(&format!("{}/", gateway.url())).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(body.starts_with("<!doctype html>"), "{body}");
    for asset in [
        "/assets/socket.io.min.js",
        "/assets/app.js",
        "/assets/style.css",
    ] {
        assert!(body.contains(asset), "the page does not load {asset}");
    }
    let (status, content_type, body) = get(&format!("{}/assets/app.js", gateway.url())).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/javascript; charset=utf-8");
    assert!(body.contains("textContent"));
    assert!(
        !body.contains("innerHTML"),
        "user text must never go through innerHTML"
    );
    let (status, content_type, _) = get(&format!("{}/assets/style.css", gateway.url())).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/css; charset=utf-8");
    let (status, _, _) = get(&format!("{}/assets/nope.js", gateway.url())).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_official_browser_client_is_served_from_the_modules_dir() {
    let modules = modules_dir();
    let gateway = gateway_with(modules.clone()).await;
    let (status, content_type, body) =
        get(&format!("{}/assets/socket.io.min.js", gateway.url())).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/javascript; charset=utf-8");
    let on_disk =
        std::fs::read_to_string(modules.join("socket.io-client/dist/socket.io.min.js")).unwrap();
    assert_eq!(body, on_disk);
    assert!(
        body.contains("Socket.IO v4.8.4"),
        "not socket.io-client 4.8.4"
    );
}

#[tokio::test]
async fn a_missing_modules_dir_answers_503_saying_what_to_run() {
    let gateway = gateway_with(PathBuf::from("/nonexistent/gateway-web-modules")).await;
    let (status, content_type, body) =
        get(&format!("{}/assets/socket.io.min.js", gateway.url())).await;
    assert_eq!(status, 503);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert!(body.contains("run `npm ci` in gateway/web"), "{body}");
    // The page itself is still served.
    let (status, _, _) = get(&format!("{}/", gateway.url())).await;
    assert_eq!(status, 200);
}
