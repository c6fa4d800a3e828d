//! The bodies of `POST /api/v1/publish` and `POST /api/v1/publish/batch`, read and checked
//! before anything is sent: exactly one target, a valid event name the key may publish, a
//! room name that is valid for clients, a user of the key's tenant, and for the chat's own
//! `message` event a `{text}` the chat would accept. Unknown fields are refused.
//!
//! Every name lands in the key's tenant: a room is `tenancy::room(tenant, room)` whatever
//! it is called (`t:globex:r:general` stays a room of the key's tenant), a user is
//! `tenancy::user_room(tenant, user)` of a user of that tenant.

use serde::Deserialize;
use serde_json::Value;

use super::keys::ApiKey;
use crate::{ids, mode::Mode, refusal::Refusal, tenancy, validate};

/// Largest body of `POST /api/v1/publish`, bytes.
pub(super) const SINGLE_BODY_MAX: usize = 64 * 1024;
/// Largest body of `POST /api/v1/publish/batch`, bytes.
pub(super) const BATCH_BODY_MAX: usize = 1024 * 1024;
/// Most messages in one batch.
pub(super) const BATCH_MAX: usize = 1000;
/// The chat's event: to a room, it is stored like a chat message.
pub(super) const CHAT_EVENT: &str = "message";

/// One message as a backend writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    /// A chat room, as clients name it.
    room: Option<String>,
    /// A user of the key's tenant.
    user: Option<String>,
    /// `true`: every socket of the key's tenant.
    tenant: Option<bool>,
    /// The event name.
    event: String,
    /// The event's one argument, delivered as is (for `message` to a room: `{text}`).
    data: Value,
}

/// A batch as a backend writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    messages: Vec<Value>,
}

/// The `data` of a `message` to a room.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatData {
    text: String,
}

/// One message, checked, about to be sent.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Publication {
    /// The internal room it goes to, in the key's tenant.
    pub(super) room: String,
    /// What it carries.
    pub(super) content: Content,
}

/// What a publication carries.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Content {
    /// An event delivered live, its `data` unchanged.
    Live {
        /// The event name.
        event: String,
        /// Its one argument.
        data: Value,
    },
    /// A chat message to a room: stored in its history, then delivered as the chat's
    /// `message`.
    Chat {
        /// The room as clients name it.
        room: String,
        /// The text.
        text: String,
    },
}

/// The JSON of a body, and the fingerprint an `Idempotency-Key` is held to: the hash of
/// `route` and of the body as parsed (keys sorted, so a retry that orders its fields
/// otherwise is the same request).
pub(super) fn parse(route: &str, bytes: &[u8]) -> Result<(Value, String), Refusal> {
    let json: Value = serde_json::from_slice(bytes)
        .map_err(|err| Refusal::InvalidPayload(format!("not JSON: {err}")))?;
    let fingerprint = ids::digest(&format!("{route} {json}"));
    Ok((json, fingerprint))
}

/// The messages of a batch body (1 to [`BATCH_MAX`]), not checked yet.
pub(super) fn batch(json: Value) -> Result<Vec<Value>, Refusal> {
    object(&json)?;
    let body: BatchBody =
        serde_json::from_value(json).map_err(|err| Refusal::InvalidPayload(err.to_string()))?;
    if !(1..=BATCH_MAX).contains(&body.messages.len()) {
        return Err(Refusal::InvalidPayload(format!(
            "messages: 1 to {BATCH_MAX} per batch"
        )));
    }
    Ok(body.messages)
}

/// One message checked against the rules and `key`'s scopes (403 for what the key may not
/// do); `max_text` is the tenant's `max_message_length`.
pub(super) fn publication(
    json: Value,
    key: &ApiKey,
    mode: &Mode,
    max_text: u32,
) -> Result<Publication, Refusal> {
    object(&json)?;
    let body: PublishBody =
        serde_json::from_value(json).map_err(|err| Refusal::InvalidPayload(err.to_string()))?;
    validate::event(&body.event)?;
    if !key.scopes.may_publish(&body.event) {
        return Err(Refusal::Forbidden(
            "this API key may not publish this event",
        ));
    }
    let tenant = key.tenant.as_str();
    let room = match (body.room, body.user, body.tenant) {
        (Some(room), None, None) => {
            validate::room(&room)?;
            if body.event == CHAT_EVENT {
                let data: ChatData = serde_json::from_value(body.data)
                    .map_err(|err| Refusal::InvalidPayload(format!("data: {err}")))?;
                validate::text(&data.text)?;
                validate::text_within(&data.text, max_text)?;
                return Ok(Publication {
                    room: tenancy::room(tenant, &room),
                    content: Content::Chat {
                        room,
                        text: data.text,
                    },
                });
            }
            tenancy::room(tenant, &room)
        }
        (None, Some(user), None) => {
            if !key.scopes.users {
                return Err(Refusal::Forbidden("this API key may not address users"));
            }
            if !tenancy::valid_id(&user) {
                return Err(Refusal::InvalidPayload(
                    "user: 1 to 64 characters of A-Z a-z 0-9 _ . -".to_owned(),
                ));
            }
            if !mode.knows(tenant, &user) {
                return Err(Refusal::UnknownUser);
            }
            tenancy::user_room(tenant, &user)
        }
        (None, None, Some(true)) => {
            if !key.scopes.tenant_wide {
                return Err(Refusal::Forbidden(
                    "this API key may not address the whole tenant",
                ));
            }
            tenancy::tenant_room(tenant)
        }
        (None, None, Some(false)) => {
            return Err(Refusal::InvalidPayload(
                "tenant: only `true` (every socket of the tenant)".to_owned(),
            ));
        }
        (None, None, None) => {
            return Err(Refusal::InvalidPayload(
                "a target is required: one of room, user or tenant".to_owned(),
            ));
        }
        _ => {
            return Err(Refusal::InvalidPayload(
                "one target only: room, user or tenant".to_owned(),
            ));
        }
    };
    if body.event == CHAT_EVENT {
        return Err(Refusal::InvalidEvent(
            "`message` is the chat's stored event: to a room only",
        ));
    }
    Ok(Publication {
        room,
        content: Content::Live {
            event: body.event,
            data: body.data,
        },
    })
}

/// Refuses anything but an object (serde would also read a struct from an array, by
/// position).
fn object(json: &Value) -> Result<(), Refusal> {
    match json {
        Value::Object(_) => Ok(()),
        _ => Err(Refusal::InvalidPayload("expected a JSON object".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::keys::Scopes;

    fn key(scopes: Scopes) -> ApiKey {
        ApiKey {
            id: "0123456789ab".into(),
            tenant: "dev".into(),
            name: "backend".into(),
            scopes,
            created_ms: 0,
        }
    }

    fn all() -> Scopes {
        Scopes {
            events: vec!["*".into()],
            users: true,
            tenant_wide: true,
            presence: true,
            history: true,
        }
    }

    fn check(body: Value, scopes: Scopes) -> Result<Publication, Refusal> {
        // Standalone: every valid id is a user of tenant `dev`.
        publication(body, &key(scopes), &Mode::Standalone, 2000)
    }

    #[test]
    fn targets_land_in_the_key_tenant() {
        let cases = [
            (
                json!({"room": "general", "event": "e", "data": 1}),
                "t:dev:r:general",
            ),
            (
                json!({"room": "t:globex:r:general", "event": "e", "data": 1}),
                "t:dev:r:t:globex:r:general",
            ),
            (
                json!({"user": "bob", "event": "e", "data": null}),
                "t:dev:u:bob",
            ),
            (
                json!({"tenant": true, "event": "e", "data": [1, 2]}),
                "t:dev:a:all",
            ),
        ];
        for (body, room) in cases {
            let published = check(body.clone(), all());
            assert_eq!(
                published.map(|p| p.room).ok().as_deref(),
                Some(room),
                "{body}"
            );
        }
        let chat = check(
            json!({"room": "general", "event": "message", "data": {"text": "hi"}}),
            all(),
        );
        assert_eq!(
            chat.ok().map(|p| p.content),
            Some(Content::Chat {
                room: "general".into(),
                text: "hi".into()
            })
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_the_reason() {
        let bad = [
            (json!({"event": "e", "data": 1}), "a target is required"),
            (
                json!({"room": "a", "user": "b", "event": "e", "data": 1}),
                "one target only",
            ),
            (
                json!({"tenant": false, "event": "e", "data": 1}),
                "only `true`",
            ),
            (json!({"room": "a", "event": "e"}), "missing field `data`"),
            (json!({"room": "a", "data": 1}), "missing field `event`"),
            (
                json!({"room": "a", "event": "e", "data": 1, "x": 1}),
                "unknown field `x`",
            ),
            (
                json!({"room": "../", "event": "e", "data": 1}),
                "invalid room",
            ),
            (
                json!({"room": "a b", "event": "e", "data": 1}),
                "invalid room",
            ),
            (
                json!({"room": "a", "event": "connect", "data": 1}),
                "reserved",
            ),
            (
                json!({"room": "a", "event": "", "data": 1}),
                "invalid event",
            ),
            (
                json!({"user": "t:dev:u:bob", "event": "e", "data": 1}),
                "user: 1 to 64",
            ),
            (
                json!({"user": "bob", "event": "message", "data": {"text": "x"}}),
                "to a room only",
            ),
            (
                json!({"room": "a", "event": "message", "data": "hi"}),
                "data:",
            ),
            (
                json!({"room": "a", "event": "message", "data": {"text": "x", "y": 1}}),
                "unknown field `y`",
            ),
            (
                json!({"room": "a", "event": "message", "data": {"text": ""}}),
                "invalid text",
            ),
            (
                json!({"room": "a", "event": "message", "data": {"text": "\u{7}"}}),
                "invalid text",
            ),
            (json!([1]), "expected a JSON object"),
            (json!([null, null, true, "e", 1]), "expected a JSON object"),
        ];
        for (body, reason) in bad {
            let refused = check(body.clone(), all()).err().map(|err| err.to_string());
            assert!(
                refused.as_deref().is_some_and(|text| text.contains(reason)),
                "{body}: {refused:?}"
            );
        }
    }

    #[test]
    fn scopes_are_enforced() {
        let only_e = Scopes {
            events: vec!["e".into()],
            ..Scopes::default()
        };
        assert!(
            check(
                json!({"room": "a", "event": "e", "data": 1}),
                only_e.clone()
            )
            .is_ok()
        );
        for body in [
            json!({"room": "a", "event": "f", "data": 1}),
            json!({"user": "bob", "event": "e", "data": 1}),
            json!({"tenant": true, "event": "e", "data": 1}),
        ] {
            assert!(
                matches!(
                    check(body.clone(), only_e.clone()),
                    Err(Refusal::Forbidden(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn batches_are_bounded() {
        assert!(batch(json!({"messages": [{}]})).is_ok());
        assert!(batch(json!({"messages": []})).is_err());
        assert!(batch(json!({"messages": vec![json!({}); BATCH_MAX + 1]})).is_err());
        assert!(batch(json!({"messages": [], "x": 1})).is_err());
        assert!(batch(json!([[{}]])).is_err());
        let (json, first) = parse("single", br#"{"b": 1, "a": 2}"#).unwrap_or_default();
        assert_eq!(json, json!({"a": 2, "b": 1}));
        let (_, again) = parse("single", br#"{"a":2,"b":1}"#).unwrap_or_default();
        assert_eq!(
            first, again,
            "the same request, its fields in another order"
        );
        let (_, other_route) = parse("batch", br#"{"a":2,"b":1}"#).unwrap_or_default();
        assert_ne!(first, other_route);
        assert!(parse("single", b"{").is_err());
    }
}
