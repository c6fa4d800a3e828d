//! The official Python client, python-socketio (pinned in `tests/python/requirements.txt`,
//! installed into a venv there by the harness): with `auth={"token": ...}` it logs in, connects
//! over websocket, joins a room and gets its message back; with the session cookie and a
//! foreign `Origin` it is refused with `forbidden: origin`.

use test_support::RedisServer;

use crate::support::{TestGateway, clustered, password, run_chat_py};

#[tokio::test]
async fn python_socketio_connects_with_a_token_and_not_with_a_foreign_cookie() {
    let redis = RedisServer::start().await;
    let gateway = TestGateway::start(clustered(&redis.url())).await;
    let args = |extra: &[&str]| {
        [
            "--url",
            gateway.url(),
            "--username",
            "alice",
            "--password",
            &password("alice"),
        ]
        .iter()
        .chain(extra)
        .map(|arg| (*arg).to_owned())
        .collect::<Vec<_>>()
    };
    let summary = run_chat_py("token", &args(&[])).await;
    assert_eq!(summary["transport"], "websocket");
    assert_eq!(summary["instance"], gateway.instance());
    assert_eq!(summary["message"]["text"], "hello from python");
    assert_eq!(summary["message"]["from"], "alice");

    let summary = run_chat_py(
        "cookie, foreign origin",
        &args(&["--cookie-origin", "http://127.0.0.1:1"]),
    )
    .await;
    assert_eq!(summary["refused"], "forbidden: origin");
}
