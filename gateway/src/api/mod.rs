//! The HTTP publish API: backends, holding an API key of one tenant, publish to that tenant's
//! Socket.IO clients through the gateway, on every instance, and read who is in a room and
//! what was said there. Clustered mode only (keys live in Redis); routed on `--listen`.
//!
//! - `keys`: the keys (`gk_<id>_<secret>`, stored as a hash), their scopes, the lookup;
//! - `cli`: `gateway api-key create|list|revoke`;
//! - `body`: the request bodies, checked (targets, events, rooms, users, texts, scopes);
//! - `idempotency`: `Idempotency-Key`, one delivery per retried request;
//! - `deliver`: storing chat messages and the fan-out, the other instances first;
//! - `publish`: `POST /api/v1/publish` and `/batch`; `read`: presence and history.
//!
//! A key reaches its own tenant only: the tenant comes from the stored key, every room from
//! `tenancy`. The chat's own `message` event to a room is a chat message, stored like the
//! chat's (its `from` is the key's name, its `user` `api:<key id>`); every other event is
//! delivered live with its `data` as its one argument.

mod body;
mod cli;
mod deliver;
mod idempotency;
mod keys;
mod publish;
mod read;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};
use engine::sockets::Nsp;

pub use cli::{CommandOutput, run_api_key_command};

use crate::{
    accounts::Accounts,
    ids::MessageIds,
    mode::Mode,
    ratelimit::{self, Scope},
    refusal::Refusal,
};
use idempotency::Idempotency;
use keys::{ApiKey, KeyStore};

/// What the API's routes share.
#[derive(Clone)]
struct ApiState {
    /// The chat namespace the publications go through.
    chat: Arc<Nsp>,
    /// Rooms' streams, settings, the directory.
    mode: Arc<Mode>,
    /// The rate limiter.
    accounts: Arc<Accounts>,
    /// The API keys.
    keys: KeyStore,
    /// The `Idempotency-Key` markers.
    idempotency: Idempotency,
    /// Keys of the messages of requests without an `Idempotency-Key`.
    message_ids: Arc<MessageIds>,
}

impl ApiState {
    /// Counts `hits` against `key`'s rate, on every instance (by this one alone while Redis
    /// cannot be asked): 429 beyond it.
    async fn limit(&self, key: &ApiKey, hits: u32) -> Result<(), Refusal> {
        let id = ratelimit::user_id(&key.tenant, &key.id);
        self.accounts
            .limiter
            .check_many(Scope::ApiPublish, &id, hits)
            .await
            .map(drop)
    }
}

/// The API's routes: `POST /api/v1/publish`, `POST /api/v1/publish/batch`,
/// `GET /api/v1/rooms/{room}/presence` and `GET /api/v1/rooms/{room}/history`.
pub(crate) fn router(accounts: Arc<Accounts>, mode: Arc<Mode>, chat: Arc<Nsp>) -> Router {
    let state = ApiState {
        chat,
        mode,
        keys: KeyStore::new(accounts.store.clone()),
        idempotency: Idempotency::new(accounts.store.clone()),
        accounts,
        message_ids: Arc::new(MessageIds::new()),
    };
    Router::new()
        .route(
            "/api/v1/publish",
            post(publish::single).layer(DefaultBodyLimit::max(body::SINGLE_BODY_MAX)),
        )
        .route(
            "/api/v1/publish/batch",
            post(publish::batch).layer(DefaultBodyLimit::max(body::BATCH_BODY_MAX)),
        )
        .route("/api/v1/rooms/{room}/presence", get(read::presence))
        .route("/api/v1/rooms/{room}/history", get(read::history))
        .with_state(state)
}
