//! The Socket.IO handshake: who is connecting, decided when the socket asks to join, before
//! it joins any room or gets any event.
//!
//! With accounts (Redis), in this order: the per-IP handshake rate limit, then a session
//! token (`auth: {token}`, else `Authorization: Bearer`, else the session cookie, whose page's
//! `Origin` must be allowed: `forbidden: origin` otherwise, see `origin.rs`), then the
//! session in Redis and its user in the directory. Any failure refuses the connection with a
//! `connect_error` whose message says why (`unauthorized: no session`, `unauthorized: session
//! expired`, `rate_limited: retry in 3s`, `unavailable: ...`). In standalone mode every socket
//! is an anonymous user of tenant `dev`, named by `auth.name` or its socket id.

use std::sync::Arc;

use engine::sockets::Socket;
use serde_json::Value;

use super::{
    ChatState,
    identity::{DisplayName, Identity},
};
use crate::{
    accounts::Accounts, mode::Mode, ratelimit::Scope, refusal::Refusal, request::presented_token,
    tenancy,
};

/// The identity of the socket being connected, or why it is refused.
pub(super) async fn identify(socket: &Socket, chat: &ChatState) -> Result<Identity, Refusal> {
    let auth = socket.auth();
    let Mode::Clustered { accounts, .. } = &*chat.mode else {
        return anonymous(socket, auth.as_ref());
    };
    let identity = authenticate(socket, accounts, auth.as_ref()).await;
    if let Err(err) = &identity {
        accounts.counters.handshakes_refused.incr();
        tracing::debug!(sid = %socket.id(), %err, "handshake refused");
    }
    identity
}

/// Standalone mode: an anonymous user of tenant `dev`.
fn anonymous(socket: &Socket, auth: Option<&Value>) -> Result<Identity, Refusal> {
    let sid: Arc<str> = socket.id().into();
    let name = DisplayName::from_auth(auth)?.unwrap_or_else(|| DisplayName::trusted(sid.clone()));
    Ok(Identity {
        tenant: tenancy::DEV_TENANT.into(),
        user: sid,
        name,
        session: None,
    })
}

/// Account mode: a valid session, within the handshake rate limit.
async fn authenticate(
    socket: &Socket,
    accounts: &Accounts,
    auth: Option<&Value>,
) -> Result<Identity, Refusal> {
    let session = socket.session();
    let parts = session.request();
    let peer = Some(session.peer());
    let ip = accounts.proxies.client_ip(peer, &parts.headers);
    // Counted by this instance alone while Redis cannot be asked: the token is then checked
    // within that limit (and its session read most likely fails the same way: 503).
    accounts
        .limiter
        .check(Scope::Handshake, &accounts.limiter.ip_id(ip))
        .await?;

    // `auth.token` is sent deliberately; a cookie is attached by the browser whichever page
    // opened the socket, so its page must be allowed to use it.
    let token = match auth_token(auth) {
        Some(token) => Some(token),
        None => {
            accounts.origins.guard_cookie(peer, &parts.headers)?;
            presented_token(&parts.headers)
        }
    };
    let signed_in = accounts.user_for_token(token.as_deref()).await?;
    let user = signed_in.user;
    Ok(Identity {
        tenant: user.tenant.clone(),
        user: user.id.clone(),
        name: DisplayName::trusted(user.name.clone()),
        session: Some(signed_in.session),
    })
}

/// `auth.token`, when it is a string.
fn auth_token(auth: Option<&Value>) -> Option<String> {
    match auth {
        Some(Value::Object(auth)) => auth.get("token")?.as_str().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_from_auth() {
        assert_eq!(
            auth_token(Some(&json!({"token": "abc"}))),
            Some("abc".into())
        );
        assert_eq!(auth_token(Some(&json!({"token": 7}))), None);
        assert_eq!(auth_token(Some(&json!({"name": "x"}))), None);
        assert_eq!(auth_token(Some(&json!("abc"))), None);
        assert_eq!(auth_token(None), None);
    }
}
