//! `GET /api/v1/rooms/{room}/presence` (scope `presence`): who is in the key's tenant's room
//! on every instance, `{members: [{user, name}]}` (see `presence`); and
//! `GET /api/v1/rooms/{room}/history?before=<id>&limit=<1..100>` (scope `history`): a page of
//! its stored messages, `{messages, more}`, as the socket `history` event answers it. Each
//! read counts one against the key's rate.

use axum::{
    Json,
    extract::{
        Path, Query, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::HeaderMap,
};
use serde::Deserialize;

use super::{ApiState, keys::ApiKey};
use crate::{
    history::{Messages, page_bounds},
    presence::{self, Members},
    refusal::Refusal,
    tenancy, validate,
};

/// The query of a history read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    /// Only messages older than this id.
    before: Option<String>,
    /// At most this many (default 50).
    limit: Option<usize>,
}

/// `GET /api/v1/rooms/{room}/presence`.
pub(super) async fn presence(
    State(api): State<ApiState>,
    headers: HeaderMap,
    room: Result<Path<String>, PathRejection>,
) -> Result<Json<Members>, Refusal> {
    let (key, room) = admitted(&api, &headers, room, |key| key.scopes.presence).await?;
    let internal = tenancy::room(&key.tenant, &room);
    let members = presence::members(&api.chat, internal, &key.tenant, &api.mode).await;
    Ok(Json(members))
}

/// `GET /api/v1/rooms/{room}/history`.
pub(super) async fn history(
    State(api): State<ApiState>,
    headers: HeaderMap,
    room: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Messages>, Refusal> {
    let (key, room) = admitted(&api, &headers, room, |key| key.scopes.history).await?;
    let Query(query) = query.map_err(|rejection| Refusal::InvalidPayload(rejection.body_text()))?;
    let (before, limit) = page_bounds(query.before.as_deref(), query.limit)?;
    let stream = api
        .mode
        .room_stream(&key.tenant, &room)
        .ok_or(Refusal::NoHistory)?;
    let page = api.mode.history_page(&stream, before, limit).await?;
    Ok(Json(page.into_messages(Some(&room))))
}

/// The key of a read and its room, checked: the key (401, 503), its scope (403), the room
/// name (400), and the key's rate (429).
async fn admitted(
    api: &ApiState,
    headers: &HeaderMap,
    room: Result<Path<String>, PathRejection>,
    allowed: impl Fn(&ApiKey) -> bool,
) -> Result<(ApiKey, String), Refusal> {
    let key = api.keys.authenticate(headers).await?;
    if !allowed(&key) {
        return Err(Refusal::Forbidden("this API key may not read this"));
    }
    let Path(room) = room.map_err(|rejection| Refusal::InvalidPayload(rejection.body_text()))?;
    validate::room(&room)?;
    api.limit(&key, 1).await?;
    Ok((key, room))
}
