//! The official JavaScript client (socket.io-client 4.8, pinned in tests/node) against two
//! gateway processes sharing one Redis, over websocket and over HTTP long-polling, each client
//! logged in as a user of the same tenant (`auth: {token}`, or the session cookie).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{ChildGateway, clustered_args, login};
use test_support::RedisServer;

/// How the Node clients present their session.
#[derive(Clone, Copy)]
enum Session {
    /// `auth: {token}`.
    Token,
    /// The `gw_session` cookie, as a browser sends it.
    Cookie,
}

async fn chat_across_two_instances(transport: &str, session: Session) {
    let redis = RedisServer::start().await;
    let args = clustered_args(&redis.url());
    let a = ChildGateway::start(&args).await;
    let b = ChildGateway::start(&args).await;
    let token_a = login(a.url(), "alice").await;
    let token_b = login(b.url(), "bob").await;

    // `=`: a base64url token may start with '-'.
    let mut args = [
        "--a",
        a.url(),
        "--b",
        b.url(),
        "--transport",
        transport,
        &format!("--token-a={token_a}"),
        &format!("--token-b={token_b}"),
    ]
    .map(str::to_owned)
    .to_vec();
    if matches!(session, Session::Cookie) {
        args.push("--cookie".to_owned());
    }
    let summary = crate::support::run_chat_mjs(transport, &args).await;
    assert_eq!(summary["transport"], transport);
}

#[tokio::test]
async fn official_client_chats_across_instances_over_websocket() {
    chat_across_two_instances("websocket", Session::Token).await;
}

#[tokio::test]
async fn official_client_chats_across_instances_over_polling() {
    chat_across_two_instances("polling", Session::Token).await;
}

#[tokio::test]
async fn official_client_chats_with_the_session_cookie_over_polling() {
    chat_across_two_instances("polling", Session::Cookie).await;
}
