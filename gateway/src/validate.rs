//! The rules client input must follow: room names, message texts, display names, event names
//! (the chat checks them on every event, `bench` its room, `users` the directory's names,
//! the publish API its rooms, texts and event names, `gateway api-key` its names).
//! Each check returns the client-visible reason of a refusal.

use crate::refusal::Refusal;

/// Longest room name, in characters.
pub(crate) const ROOM_MAX: usize = 64;
/// Longest message text, in characters.
pub(crate) const TEXT_MAX: usize = 2000;
/// Longest display name, in characters.
pub(crate) const NAME_MAX: usize = 32;

/// Longest event name a backend may publish, in characters.
pub(crate) const EVENT_MAX: usize = 64;
/// Event names Socket.IO reserves: a client library treats them as its own, never as an
/// application's event.
pub(crate) const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// A room name: 1 to 64 characters from `A-Z a-z 0-9 _ . : -`.
pub(crate) fn room(room: &str) -> Result<(), Refusal> {
    if room.is_empty() || room.len() > ROOM_MAX {
        return Err(Refusal::InvalidRoom("must be 1 to 64 characters long"));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-');
    if !room.bytes().all(allowed) {
        return Err(Refusal::InvalidRoom(
            "may only contain letters A-Z a-z, digits and _ . : -",
        ));
    }
    Ok(())
}

/// An event name a backend publishes (or an API key may publish): 1 to 64 characters from
/// `A-Z a-z 0-9 _ . : -`, and none of Socket.IO's [`RESERVED_EVENTS`].
pub(crate) fn event(event: &str) -> Result<(), Refusal> {
    if event.is_empty() || event.len() > EVENT_MAX {
        return Err(Refusal::InvalidEvent("must be 1 to 64 characters long"));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-');
    if !event.bytes().all(allowed) {
        return Err(Refusal::InvalidEvent(
            "may only contain letters A-Z a-z, digits and _ . : -",
        ));
    }
    if RESERVED_EVENTS.contains(&event) {
        return Err(Refusal::InvalidEvent("reserved by Socket.IO"));
    }
    Ok(())
}

/// A message text: 1 to 2000 characters, no control characters except newline and tab.
pub(crate) fn text(text: &str) -> Result<(), Refusal> {
    // Byte length bounds the character count from above: only count when it may matter.
    if text.is_empty() || (text.len() > TEXT_MAX && text.chars().count() > TEXT_MAX) {
        return Err(Refusal::InvalidText("must be 1 to 2000 characters long"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Refusal::InvalidText(
            "must not contain control characters other than newline and tab",
        ));
    }
    Ok(())
}

/// A valid text (see [`text`]) within its tenant's `max_message_length`.
pub(crate) fn text_within(text: &str, max: u32) -> Result<(), Refusal> {
    let max_chars = usize::try_from(max).unwrap_or(usize::MAX);
    if text.len() > max_chars && text.chars().count() > max_chars {
        return Err(Refusal::TextTooLong(max));
    }
    Ok(())
}

/// A display name: 1 to 32 characters, no control characters.
pub(crate) fn name(name: &str) -> Result<(), Refusal> {
    if name.is_empty() || (name.len() > NAME_MAX && name.chars().count() > NAME_MAX) {
        return Err(Refusal::InvalidName("must be 1 to 32 characters long"));
    }
    if name.chars().any(char::is_control) {
        return Err(Refusal::InvalidName("must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms() {
        for ok in ["a", "general", "team-1:dev_ops.eu", &"x".repeat(ROOM_MAX)] {
            assert!(room(ok).is_ok(), "{ok:?}");
        }
        let too_long = "x".repeat(ROOM_MAX + 1);
        for bad in [
            "", " ", "a b", "café", "ro/om", "room\n", "#", "日本", &too_long,
        ] {
            assert!(room(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn events() {
        for ok in [
            "order.created",
            "a",
            "x:y-z_1",
            "message",
            &"e".repeat(EVENT_MAX),
        ] {
            assert!(event(ok).is_ok(), "{ok:?}");
        }
        let too_long = "e".repeat(EVENT_MAX + 1);
        for bad in [
            "",
            "a b",
            "ünï",
            "a/b",
            "connect",
            "connect_error",
            "disconnect",
            "disconnecting",
            "newListener",
            "removeListener",
            "*",
            &too_long,
        ] {
            assert!(event(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn texts() {
        let longest = "é".repeat(TEXT_MAX);
        for ok in [
            "hi",
            " ",
            "line\nbreak\tand tab",
            "日本語 🎉",
            longest.as_str(),
        ] {
            assert!(text(ok).is_ok(), "{ok:?}");
        }
        let too_long = "a".repeat(TEXT_MAX + 1);
        for bad in [
            "",
            "\r",
            "bell\u{7}",
            "nul\0",
            "del\u{7f}",
            "c1\u{85}",
            &too_long,
        ] {
            assert!(text(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn texts_within_a_tenant_limit() {
        assert!(text_within("héllo", 5).is_ok());
        assert!(text_within("héllo!", 5).is_err());
        assert!(text_within(&"a".repeat(TEXT_MAX), 2000).is_ok());
    }

    #[test]
    fn names() {
        let longest = "ü".repeat(NAME_MAX);
        for ok in ["alice", "Zoë K.", longest.as_str()] {
            assert!(name(ok).is_ok(), "{ok:?}");
        }
        let too_long = "a".repeat(NAME_MAX + 1);
        for bad in ["", "tab\t", "new\nline", &too_long] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
    }
}
