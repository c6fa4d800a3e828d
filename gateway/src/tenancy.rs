//! Socket.IO names: the chat's namespace ([`CHAT_NS`]), and tenant-scoped rooms: every room
//! the gateway uses belongs to one tenant.
//!
//! Clients name chat rooms (`general`); internally a socket joins `t:{tenant}:r:{room}`, and
//! the gateway itself adds a per-user room `t:{tenant}:u:{user}` and a per-session room
//! `t:{tenant}:s:{session-id}`, and one room of the whole tenant, `t:{tenant}:a:all`. A client
//! only ever supplies `{room}`, so it can only reach `r` rooms of its own tenant. Backends
//! (the HTTP publish API and the Redis emitter) may address any of the four kinds, and what
//! they send is read back with [`parse`]: a name the gateway would never build is refused.
//!
//! The naming is injective: tenant ids never contain `:` (see [`valid_id`]), so in
//! `t:{tenant}:{kind}:{name}` the tenant ends at the first `:` after `t:`, the kind is the one
//! letter after it, and the name is everything after the next `:`. Reading a name back
//! ([`parse`]) therefore gives back exactly the tenant, kind and name it was built from; two
//! different triples can never produce the same room. A client room called
//! `t:other:r:general` becomes `t:acme:r:t:other:r:general`: still a room of `acme`.

use crate::validate;

/// The Socket.IO namespace of the chat, the only one the gateway serves.
pub(crate) const CHAT_NS: &str = "/";

/// The tenant of every socket in standalone (development) mode.
pub(crate) const DEV_TENANT: &str = "dev";

/// Longest tenant or user id, in bytes.
pub(crate) const ID_MAX: usize = 64;

/// The kinds of tenant-scoped rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A chat room named by clients.
    Room,
    /// Every socket of one user.
    User,
    /// Every socket of one session.
    Session,
    /// Every socket of the tenant.
    Tenant,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Self::Room => 'r',
            Self::User => 'u',
            Self::Session => 's',
            Self::Tenant => 'a',
        }
    }
}

/// A tenant or user id: 1 to 64 characters from `A-Z a-z 0-9 _ . -` (no `:`, which keeps the
/// room naming injective, and nothing that needs escaping in a Redis key).
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ID_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The internal name of `tenant`'s room of `kind` called `name`.
fn scoped(tenant: &str, kind: Kind, name: &str) -> String {
    debug_assert!(valid_id(tenant), "tenant ids are validated on load");
    format!("t:{tenant}:{}:{name}", kind.letter())
}

/// The internal name of the chat room a client of `tenant` calls `room`.
pub(crate) fn room(tenant: &str, room: &str) -> String {
    scoped(tenant, Kind::Room, room)
}

/// The room every socket of `user` in `tenant` joins at handshake.
pub(crate) fn user_room(tenant: &str, user: &str) -> String {
    scoped(tenant, Kind::User, user)
}

/// The room every socket opened with one session joins at handshake (`session` is the
/// session id, a hash of the token: never the token).
pub(crate) fn session_room(tenant: &str, session: &str) -> String {
    scoped(tenant, Kind::Session, session)
}

/// The name part of the one room of kind [`Kind::Tenant`].
const TENANT_ROOM_NAME: &str = "all";

/// The room every socket of `tenant` joins at handshake.
pub(crate) fn tenant_room(tenant: &str) -> String {
    scoped(tenant, Kind::Tenant, TENANT_ROOM_NAME)
}

/// Whether `internal` is a chat room (named by clients), not a user's or a session's room.
pub(crate) fn is_chat_room(internal: &str) -> bool {
    internal
        .strip_prefix("t:")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(_, rest)| rest.starts_with("r:"))
}

/// Reads an internal room name back into `(tenant, kind, name)`; `None` for a name the
/// gateway never builds: an invalid tenant id, an unknown kind, or a name its kind does not
/// allow (a chat room name that fails [`validate::room`], a user id that fails [`valid_id`],
/// a session id that is not 1 to 128 of `A-Z a-z 0-9 _ -`, a tenant room not named `all`).
/// This is the injectivity argument above as code, and the check of every room name a
/// backend sends.
pub(crate) fn parse(internal: &str) -> Option<(&str, Kind, &str)> {
    let rest = internal.strip_prefix("t:")?;
    let (tenant, rest) = rest.split_once(':')?;
    let (letter, name) = rest.split_once(':')?;
    let (kind, name_ok) = match letter {
        "r" => (Kind::Room, validate::room(name).is_ok()),
        "u" => (Kind::User, valid_id(name)),
        "s" => (Kind::Session, valid_session(name)),
        "a" => (Kind::Tenant, name == TENANT_ROOM_NAME),
        _ => return None,
    };
    (valid_id(tenant) && name_ok).then_some((tenant, kind, name))
}

/// Longest session id in a room name, in bytes.
const SESSION_MAX: usize = 128;

/// A session id as the gateway writes it in a room name.
fn valid_session(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= SESSION_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::validate::room as validate_room;

    #[test]
    fn chat_rooms_are_told_from_private_rooms() {
        assert!(is_chat_room(&room("acme", "general")));
        assert!(is_chat_room(&room("acme", "t:globex:u:bob")));
        assert!(!is_chat_room(&user_room("acme", "bob")));
        assert!(!is_chat_room(&session_room("acme", "abc")));
        assert!(!is_chat_room("general"));
    }

    #[test]
    fn ids() {
        for ok in ["acme", "a", "t-1.eu_west", &"x".repeat(ID_MAX)] {
            assert!(valid_id(ok), "{ok:?}");
        }
        for bad in ["", "a:b", "a b", "café", "a/b", &"x".repeat(ID_MAX + 1)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn names_read_back_to_what_built_them() {
        let rooms = [
            "general",
            "a:b",
            "t:other:r:general",
            "t:acme:u:bob",
            "t:acme:s:x",
            ":",
            "::r::",
            "r",
        ];
        for tenant in ["acme", "other", "a", "a.b-c_d"] {
            for name in rooms {
                assert!(
                    validate_room(name).is_ok(),
                    "{name:?} is a valid client name"
                );
                assert_eq!(parse(&room(tenant, name)), Some((tenant, Kind::Room, name)));
            }
            assert_eq!(
                parse(&user_room(tenant, "bob")),
                Some((tenant, Kind::User, "bob"))
            );
            assert_eq!(
                parse(&session_room(tenant, "abc_-")),
                Some((tenant, Kind::Session, "abc_-"))
            );
            assert_eq!(
                parse(&tenant_room(tenant)),
                Some((tenant, Kind::Tenant, "all"))
            );
        }
    }

    #[test]
    fn crafted_client_names_never_reach_another_tenant_or_a_private_room() {
        let crafted = [
            "general",
            "t:other:r:general",
            "t:acme:r:general",
            "t:acme:u:bob",
            "t:acme:s:abc",
            "other:r:general",
            "r:general",
            "a:b",
            "a",
            "b",
            "a:b:r:c",
        ];
        let mut seen: HashMap<String, (&str, &str)> = HashMap::new();
        for tenant in ["acme", "other", "a", "a.b"] {
            for name in crafted {
                let internal = room(tenant, name);
                let (owner, kind, _) = parse(&internal).unwrap_or(("?", Kind::User, ""));
                assert_eq!(owner, tenant, "{name:?} left its tenant");
                assert_eq!(kind, Kind::Room, "{name:?} reached a private room");
                if let Some(other) = seen.insert(internal.clone(), (tenant, name)) {
                    panic!(
                        "{internal} built from both {other:?} and {:?}",
                        (tenant, name)
                    );
                }
            }
            seen.insert(user_room(tenant, "bob"), (tenant, "user bob"));
            seen.insert(session_room(tenant, "abc"), (tenant, "session abc"));
            seen.insert(tenant_room(tenant), (tenant, "the tenant"));
        }
        // Private rooms are distinct from every client room too.
        assert_eq!(seen.len(), 4 * (crafted.len() + 3));
    }

    #[test]
    fn names_no_kind_allows_are_refused() {
        for bad in [
            "general",
            "t:acme",
            "t:acme:r",
            "t:acme:r:",
            "t:acme:r:gén",
            "t:a:b:r:general",
            "t::r:general",
            "t:acme:x:general",
            "t:acme:u:",
            "t:acme:u:a:b",
            "t:acme:s:a b",
            "t:acme:a:",
            "t:acme:a:everyone",
            &format!("t:acme:r:{}", "x".repeat(65)),
            &format!("t:{}:r:general", "x".repeat(ID_MAX + 1)),
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lookalikes_are_not_room_names() {
        for lookalike in [
            "gеneral",         // Cyrillic е
            "ｇeneral",        // fullwidth g
            "general\u{200b}", // zero-width space
            "general\u{0}",
            "t|acme|r|general",
            "t:acme:r:général",
        ] {
            assert!(validate_room(lookalike).is_err(), "{lookalike:?}");
        }
    }
}
