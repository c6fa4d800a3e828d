//! `POST /api/login`, `POST /api/logout`, `GET /api/me`, and the session cookie they set
//! (HttpOnly, SameSite=Lax, Path=/, Secure with `--secure-cookies`; where a request presents
//! its token is `request.rs`).

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use cookie::{Cookie, SameSite};
use engine::sockets::Change;
use redis_adapter::Selection;
use serde::{Deserialize, Serialize};

use super::AccountRoutes;
use crate::{
    accounts::Accounts,
    ids::now_ms,
    jobs::{AuditEvent, AuditKind},
    login_throttle::Admission,
    ratelimit::{Counted, Scope},
    refusal::Refusal,
    request::{COOKIE_NAME, Peer, presented_token},
    sessions::{Session, Token},
    tenancy,
    users::User,
};

/// The body of `POST /api/login`.
#[derive(Debug, Deserialize)]
pub(super) struct LoginRequest {
    username: String,
    password: String,
}

/// The answer to a login: the token again for non-browser clients, who logged in, and for how
/// long (seconds).
#[derive(Debug, Serialize)]
struct LoginResponse {
    token: String,
    user: Me,
    expires_in: u64,
}

/// The body of `GET /api/me`.
#[derive(Debug, Serialize)]
pub(super) struct Me {
    /// The user id (username).
    id: String,
    /// The display name.
    name: String,
    /// The tenant id.
    tenant: String,
    /// Whether the user is an admin of the tenant.
    admin: bool,
}

impl From<&User> for Me {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            name: user.name.to_string(),
            tenant: user.tenant.to_string(),
            admin: user.admin,
        }
    }
}

/// `POST /api/login {username, password}`: a new session, as a cookie and in the body.
///
/// Counted against the per-address login limit whatever the outcome, then against the
/// failed-login throttle of the username (`login_throttle.rs`), and only then is the password
/// verified. A password is never verified unless both could be asked of Redis: while they
/// cannot, every login gets the same 503, right password or wrong.
pub(super) async fn login(
    State(state): State<AccountRoutes>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, Refusal> {
    let accounts = &state.accounts;
    let ip = accounts.proxies.client_ip(peer, &headers);
    let address = accounts.limiter.ip_id(ip);
    if let Counted::Local(err) = accounts.limiter.check(Scope::Login, &address).await? {
        return Err(Refusal::from(err));
    }
    let Json(request) = body.map_err(|rejection| Refusal::InvalidPayload(rejection.body_text()))?;
    let username = request.username.as_str();
    // A name that cannot be a user gets no Redis key (it is verified against the dummy hash
    // like any unknown name, and can never succeed).
    let throttled = tenancy::valid_id(username);
    if throttled {
        if let Admission::Throttled(retry_after) =
            accounts.throttle.admit(username, &address).await?
        {
            accounts.counters.login_throttled.incr();
            accounts.counters.rate_limited.incr();
            return Err(Refusal::RateLimited { retry_after });
        }
    }
    let verified = accounts
        .directory
        .authenticate(username, &request.password, &accounts.counters)
        .await?;
    let Some(user) = verified else {
        accounts.counters.login_failures.incr();
        if throttled {
            // Not counted, the next guess could go unthrottled: answer as if Redis were down.
            accounts.throttle.failed(username, &address).await?;
        }
        return Err(Refusal::BadCredentials);
    };
    if let Err(err) = accounts.throttle.succeeded(username, &address).await {
        tracing::warn!(%err, "login: this address is not remembered as known");
    }
    let session = Session {
        user: user.id.to_string(),
        tenant: user.tenant.to_string(),
        created_at: now_ms(),
        ip: ip.map(|ip| ip.to_string()),
    };
    let token = accounts.sessions.create(&session).await?;
    accounts.counters.logins.incr();
    tracing::info!(user = %user.id, tenant = %user.tenant, "logged in");
    let mut event = AuditEvent::new(AuditKind::Login, &user.tenant, Some(&user.id));
    event.session = Some(token.id().as_str().to_owned());
    event.detail = serde_json::json!({ "ip": session.ip });
    accounts.jobs.audit(event).await;
    let ttl = accounts.sessions.ttl().as_secs();
    let cookie = session_cookie(token.as_str(), ttl, accounts.secure_cookies);
    let body = LoginResponse {
        token: token.as_str().to_owned(),
        user: Me::from(&user),
        expires_in: ttl,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// `POST /api/logout`: deletes the presented session and disconnects its sockets on every
/// instance. Answers 204 and clears the cookie even without a live session (idempotent); 403
/// `forbidden: origin` when the cookie comes from a page that may not use it.
pub(super) async fn logout(
    State(state): State<AccountRoutes>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let accounts = &state.accounts;
    // A page of another origin must not log the user out with their cookie.
    accounts.origins.guard_cookie(peer, &headers)?;
    if let Some(token) = presented_token(&headers).and_then(|token| Token::parse(&token)) {
        if let Some(session) = accounts.sessions.get(&token).await? {
            let id = token.id();
            accounts.sessions.delete(&id).await?;
            tracing::info!(user = %session.user, tenant = %session.tenant, "logged out");
            let mut event =
                AuditEvent::new(AuditKind::Logout, &session.tenant, Some(&session.user));
            event.session = Some(id.as_str().to_owned());
            accounts.jobs.audit(event).await;
            let room = tenancy::session_room(&session.tenant, id.as_str());
            let disconnect = Change::Disconnect { close: false };
            // On failure the periodic session check disconnects them later.
            if let Err(err) = state.chat.change(&Selection::room(room), disconnect).await {
                tracing::warn!(%err, "logout: not every socket of the session was disconnected at once");
            }
        }
    }
    let cookie = session_cookie("", 0, accounts.secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// `GET /api/me`: the session's user, or 401.
pub(super) async fn me(
    State(state): State<AccountRoutes>,
    headers: HeaderMap,
) -> Result<Json<Me>, Refusal> {
    let user = current_user(&state.accounts, &headers).await?;
    Ok(Json(Me::from(user)))
}

/// The user of the session `headers` present, or why there is none.
pub(super) async fn current_user<'a>(
    accounts: &'a Accounts,
    headers: &HeaderMap,
) -> Result<&'a User, Refusal> {
    let token = presented_token(headers);
    Ok(accounts.user_for_token(token.as_deref()).await?.user)
}

/// The `Set-Cookie` value carrying `token` for `max_age` seconds (0 with an empty token: the
/// cookie's removal).
fn session_cookie(token: &str, max_age: u64, secure: bool) -> HeaderValue {
    let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
    let cookie = Cookie::build((COOKIE_NAME, token))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    // Token characters and the attributes are all valid header characters.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_attributes() {
        let cookie = session_cookie("tok", 60, false);
        let text = cookie.to_str().unwrap_or_default();
        for part in [
            "gw_session=tok",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        assert!(!text.contains("Secure"));
        let secure = session_cookie("tok", 60, true);
        assert!(secure.to_str().unwrap_or_default().contains("Secure"));
    }
}
