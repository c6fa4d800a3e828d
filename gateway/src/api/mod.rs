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
use socketioxide::{SocketIo, adapter::Adapter};

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
struct ApiState<A: Adapter> {
    /// The Socket.IO server the publications go through.
    io: SocketIo<A>,
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

impl<A: Adapter> Clone for ApiState<A> {
    fn clone(&self) -> Self {
        Self {
            io: self.io.clone(),
            mode: self.mode.clone(),
            accounts: self.accounts.clone(),
            keys: self.keys.clone(),
            idempotency: self.idempotency.clone(),
            message_ids: self.message_ids.clone(),
        }
    }
}

impl<A: Adapter> ApiState<A> {
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
pub(crate) fn router<A: Adapter>(
    accounts: Arc<Accounts>,
    mode: Arc<Mode>,
    io: SocketIo<A>,
) -> Router {
    let state = ApiState {
        io,
        mode,
        keys: KeyStore::new(accounts.store.clone()),
        idempotency: Idempotency::new(accounts.store.clone()),
        accounts,
        message_ids: Arc::new(MessageIds::new()),
    };
    Router::new()
        .route(
            "/api/v1/publish",
            post(publish::single::<A>).layer(DefaultBodyLimit::max(body::SINGLE_BODY_MAX)),
        )
        .route(
            "/api/v1/publish/batch",
            post(publish::batch::<A>).layer(DefaultBodyLimit::max(body::BATCH_BODY_MAX)),
        )
        .route("/api/v1/rooms/{room}/presence", get(read::presence::<A>))
        .route("/api/v1/rooms/{room}/history", get(read::history::<A>))
        .with_state(state)
}
