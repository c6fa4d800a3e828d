//! The shape of client payloads: every event takes one JSON object, and a payload that is not
//! one is refused with a reason the client can act on.

use std::{fmt, marker::PhantomData};

use serde::{
    Deserialize, Deserializer,
    de::{MapAccess, Visitor, value::MapAccessDeserializer},
};
use socketioxide::ParserError;

use crate::refusal::Refusal;

/// A payload that must be a JSON object with `T`'s fields.
///
/// serde's derived struct impls also accept an array of the field values (`["lobby"]` for
/// `{room}`); this wrapper only accepts objects.
pub(crate) struct Object<T>(T);

impl<T> Object<T> {
    /// The payload as it came off the wire, or the reason it was refused.
    pub(crate) fn parse(payload: Result<Self, ParserError>) -> Result<T, Refusal> {
        payload
            .map(|Object(inner)| inner)
            .map_err(|err| Refusal::InvalidPayload(reason(&err)))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

/// The parser's message without serde_json's " at line L column C": positions in the raw
/// Socket.IO packet mean nothing to the client.
fn reason(err: &ParserError) -> String {
    let mut message = err.to_string();
    if let Some(at) = message.rfind(" at line ") {
        let position = &message[at + " at line ".len()..];
        let is_position = position
            .split_once(" column ")
            .is_some_and(|(line, column)| {
                line.parse::<u64>().is_ok() && column.parse::<u64>().is_ok()
            });
        if is_position {
            message.truncate(at);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use serde_json::from_str;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Room {
        room: String,
    }

    fn parse(json: &str) -> Result<Room, String> {
        let payload = from_str::<Object<Room>>(json).map_err(ParserError::new);
        Object::parse(payload).map_err(|err| err.to_string())
    }

    #[test]
    fn only_objects_with_the_fields_pass() {
        assert_eq!(
            parse(r#"{"room":"a","extra":1}"#),
            Ok(Room { room: "a".into() })
        );
        let refusals = [
            (
                r#"["a"]"#,
                "invalid payload: invalid type: sequence, expected an object",
            ),
            (
                "null",
                "invalid payload: invalid type: null, expected an object",
            ),
            ("{}", "invalid payload: missing field `room`"),
            (
                r#"{"room":7}"#,
                "invalid payload: invalid type: integer `7`, expected a string",
            ),
        ];
        for (json, expected) in refusals {
            assert_eq!(parse(json), Err(expected.to_owned()), "{json}");
        }
    }
}
