//! `join {room, since}`: a client that saw the room up to message `since` gets every message
//! after it, in order, then the live ones, with no gap and no duplicate at the seam.
//!
//! The engine holds the room's broadcasts back for the socket (`Socket::hold`, subscribed
//! before anything is read), the stream is read after `since`, the replay is sent, and the
//! hold ends by sending the held messages the replay did not contain (those with a greater
//! id, or no id yet) and making the socket a member, with no delivery in between. When
//! `since` is no longer kept (older than retention, or the stream was lost) nothing is
//! replayed and the ack says `recovered: false`; so it does when the socket could not take
//! the whole replay, or more than the engine holds arrived meanwhile.

use engine::{eio, sio};

use super::{call::Request, reply::Reply};
use crate::{
    history::{Message, MessageId, Replay, stamped_id},
    metrics,
    refusal::Refusal,
    store::COMMAND_TIMEOUT,
};

/// Joins `socket` to `room` (internal name; clients call it `name`), replaying what followed
/// `since`; `max` bounds the replay (the tenant's retention).
pub(super) async fn join_since(
    request: &Request,
    (room, name): (String, String),
    since: MessageId,
    max: usize,
) -> Result<Reply, Refusal> {
    let Request {
        socket,
        chat,
        identity,
        ..
    } = request;
    let stream = chat
        .mode
        .room_stream(&identity.tenant, &name)
        .ok_or(Refusal::NoHistory)?;
    let hold = socket
        .hold(room.clone())
        .await
        .map_err(Refusal::from_subscribe)?;
    // On error the hold is dropped: the socket is not in the room.
    let replay = chat.mode.replay(&stream, since, max).await?;
    let (mut recovered, mut replayed, mut last) = (false, 0, None);
    if let Replay::Complete(entries) = replay {
        recovered = true;
        for (id, record) in entries {
            let parsed = id.parse::<MessageId>().ok();
            if let Some(parsed) = parsed {
                // A mend after a gap does not send it again.
                chat.relayed.keep(&room, parsed);
            }
            last = parsed.or(last);
            let message = Message::new(record, Some(id), Some(&name));
            if let Err(err) = socket.emit("message", &message) {
                tracing::debug!(%err, "the socket did not take its whole replay");
                recovered = false;
                break;
            }
            replayed += 1;
        }
        last = last.or(Some(since));
    }
    // A message stored before the replay was read may be published up to a command
    // deadline later: broadcasts are filtered the same way for that long.
    let held = hold.join(move |packet| not_replayed(packet, last), COMMAND_TIMEOUT);
    recovered &= held.is_some();
    metrics::replayed(replayed);
    if !recovered {
        metrics::recovery_failed();
    }
    Ok(Reply::Joined {
        ok: true,
        recovered: Some(recovered),
        replayed: Some(replayed),
    })
}

/// Whether a held broadcast still has to be sent: anything but a `message` whose id is at
/// most `last`, the newest replayed (the replay had it).
fn not_replayed(packet: &[u8], last: Option<MessageId>) -> bool {
    let Some(last) = last else {
        return true;
    };
    event_data(packet)
        .and_then(stamped_id)
        .is_none_or(|id| id > last)
}

/// The JSON data of a Socket.IO EVENT in an engine.io MESSAGE packet (`42[...]`).
fn event_data(packet: &[u8]) -> Option<&str> {
    let frame = eio::decode(std::str::from_utf8(packet).ok()?).ok()?;
    let event = sio::decode(frame.data).ok()?;
    (frame.kind == eio::Kind::Message && event.kind == sio::Kind::Event).then_some(event.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> Vec<u8> {
        format!(r#"42["message",{{"room":"a","id":"{id}","text":"hi"}}]"#).into_bytes()
    }

    #[test]
    fn held_messages_the_replay_had_are_dropped() {
        let last = "10-0".parse().ok();
        assert!(!not_replayed(&message("9-5"), last));
        assert!(!not_replayed(&message("10-0"), last));
        assert!(not_replayed(&message("10-1"), last));
        assert!(not_replayed(&message("9-0"), None));
        assert!(not_replayed(br#"42["typing",{"room":"a"}]"#, last));
        assert!(not_replayed(
            br#"42["message",{"id":null,"pending":true}]"#,
            last
        ));
        assert!(not_replayed(b"not a packet", last));
    }
}
