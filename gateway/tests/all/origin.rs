//! The session cookie is honoured only from pages of an allowed origin (by default the
//! gateway's own): a page of another origin (another port of the host, a sibling subdomain)
//! cannot open a socket, log the user out or change settings with the victim's cookie, over
//! websocket or long-polling. Token-authenticated clients are not concerned.

use serde_json::{Value, json};
use socketio_client::{ClientError, ConnectOptions, SocketClient};
use test_support::RedisServer;

use crate::support::{TIMEOUT, TestGateway, clustered, join, login, next_named};

/// A page on another port of the same host: same site, so a `SameSite=Lax` cookie goes along.
const FOREIGN: &str = "http://127.0.0.1:1";

/// Connects to `url` as a browser page of `origin` would with `cookie` (or with `auth` when
/// given).
async fn connect_as_page(
    url: &str,
    origin: Option<&str>,
    cookie: &str,
    auth: Option<Value>,
    polling: bool,
) -> Result<SocketClient, ClientError> {
    let mut options = ConnectOptions::new(url)
        .timeout(TIMEOUT)
        .polling(polling)
        .header("cookie", format!("gw_session={cookie}"));
    if let Some(origin) = origin {
        options = options.header("origin", origin);
    }
    if let Some(auth) = auth {
        options = options.auth(auth);
    }
    SocketClient::connect_with(options).await
}

#[tokio::test]
async fn a_cookie_handshake_from_a_foreign_origin_is_refused_on_both_transports() {
    let redis = RedisServer::start().await;
    let gateway = TestGateway::start(clustered(&redis.url())).await;
    let url = gateway.url();
    let token = login(url, "alice").await;
    for polling in [false, true] {
        let transport = if polling { "polling" } else { "websocket" };
        match connect_as_page(url, Some(FOREIGN), &token, None, polling).await {
            Err(ClientError::ConnectRefused(message)) => {
                assert_eq!(message, "forbidden: origin", "{transport}")
            }
            Err(other) => panic!("{transport}: expected a connect_error, got {other}"),
            Ok(_) => panic!("{transport}: a foreign page connected with the cookie"),
        }
        // The gateway's own page, and a client without Origin (not a browser page), connect.
        for origin in [Some(url), None] {
            let mut own = connect_as_page(url, origin, &token, None, polling)
                .await
                .unwrap_or_else(|err| panic!("{transport}, origin {origin:?}: {err}"));
            next_named(&mut own, "welcome").await;
            join(&own, "general").await;
            own.close().await;
        }
        // A token in `auth` is sent deliberately: any origin.
        let mut with_token = connect_as_page(
            url,
            Some(FOREIGN),
            "none",
            Some(json!({ "token": token })),
            polling,
        )
        .await
        .unwrap_or_else(|err| panic!("{transport}, token from a foreign origin: {err}"));
        next_named(&mut with_token, "welcome").await;
        with_token.close().await;
    }
}

/// `POST {path}` or `PUT` with the cookie or a bearer token, from `origin`.
async fn send(
    method: reqwest::Method,
    url: &str,
    token: &str,
    cookie: bool,
    origin: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .header("origin", origin);
    request = if cookie {
        request.header("cookie", format!("gw_session={token}"))
    } else {
        request.bearer_auth(token)
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn logout_and_settings_writes_with_the_cookie_need_an_allowed_origin() {
    let redis = RedisServer::start().await;
    let gateway = TestGateway::start(clustered(&redis.url())).await;
    let url = gateway.url();
    let token = login(url, "alice").await;
    let settings = format!("{url}/api/admin/tenants/acme/settings");
    let body = json!({"max_message_length": 500, "max_room_members": 50});
    let put = reqwest::Method::PUT;
    let post = reqwest::Method::POST;

    let forbidden = json!({"error": "forbidden: origin"});
    let refused = send(
        put.clone(),
        &settings,
        &token,
        true,
        FOREIGN,
        Some(body.clone()),
    )
    .await;
    assert_eq!(refused, (403, forbidden.clone()));
    let logout = format!("{url}/api/logout");
    assert_eq!(
        send(post.clone(), &logout, &token, true, FOREIGN, None).await,
        (403, forbidden)
    );
    // Neither happened: the session is alive and the settings unchanged.
    let me = reqwest::Client::new()
        .get(format!("{url}/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the foreign page logged the user out");

    // A bearer token from anywhere, and the cookie from the gateway's own page, are served.
    let (status, written) = send(
        put.clone(),
        &settings,
        &token,
        false,
        FOREIGN,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 200, "{written}");
    let (status, written) = send(put, &settings, &token, true, url, Some(body)).await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(send(post, &logout, &token, true, url, None).await.0, 204);
}
