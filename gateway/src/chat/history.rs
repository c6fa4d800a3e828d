//! `history {room | with, before?, limit?}`: a page of a room's (member only) or of the
//! conversation with user `with`'s stored messages, oldest first, with whether older ones
//! exist: `{messages, more}`. `before` (exclusive) is a message id; `limit` is 1 to 100,
//! 50 by default.

use serde::Deserialize;

use super::{call::Request, payload::Object, reply::Reply, rooms::ensure_member};
use crate::{history::page_bounds, refusal::Refusal, tenancy, validate};

/// The payload of `history`.
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryRequest {
    /// A room the socket is in.
    room: Option<String>,
    /// Or a user of the same tenant: the conversation with them.
    with: Option<String>,
    /// Only messages older than this id.
    before: Option<String>,
    /// At most this many.
    limit: Option<usize>,
}

/// `history {room | with, before?, limit?}`.
pub(crate) async fn history(request: Request) -> Result<Reply, Refusal> {
    let (mode, tenant) = (&request.chat.mode, &request.identity.tenant);
    let body = Object::<HistoryRequest>::parse(request.payload.as_ref())?;
    let (before, limit) = page_bounds(body.before.as_deref(), body.limit)?;
    let (stream, room) = match (body.room, body.with) {
        (Some(room), None) => {
            validate::room(&room)?;
            ensure_member(&request.socket, &tenancy::room(tenant, &room))?;
            (mode.room_stream(tenant, &room), Some(room))
        }
        (None, Some(with)) => {
            if !mode.knows(tenant, &with) {
                return Err(Refusal::UnknownUser);
            }
            let stream = mode.dm_stream(tenant, &request.identity.user, &with);
            (stream, None)
        }
        _ => {
            return Err(Refusal::InvalidPayload(
                "one of room or with is required".to_owned(),
            ));
        }
    };
    let stream = stream.ok_or(Refusal::NoHistory)?;
    let page = mode.history_page(&stream, before, limit).await?;
    Ok(Reply::History(page.into_messages(room.as_deref())))
}
