//! The shape of client payloads: every event takes one JSON object, and a payload that is not
//! one is refused with a reason the client can act on.

use std::{fmt, marker::PhantomData};

use serde::{
    Deserialize, Deserializer,
    de::{DeserializeOwned, MapAccess, Visitor, value::MapAccessDeserializer},
};
use serde_json::Value;

use crate::refusal::Refusal;

/// A payload that must be a JSON object with `T`'s fields.
///
/// serde's derived struct impls also accept an array of the field values (`["lobby"]` for
/// `{room}`); this wrapper only accepts objects.
pub(crate) struct Object<T>(T);

impl<T: DeserializeOwned> Object<T> {
    /// The payload as it came off the wire (`None`: the event had no argument), or the
    /// reason it was refused.
    pub(crate) fn parse(payload: Option<&Value>) -> Result<T, Refusal> {
        Self::deserialize(payload.unwrap_or(&Value::Null))
            .map(|Object(inner)| inner)
            .map_err(|err| Refusal::InvalidPayload(err.to_string()))
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

#[cfg(test)]
mod tests {
    use serde_json::from_str;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Room {
        room: String,
    }

    fn parse(json: &str) -> Result<Room, String> {
        let payload = from_str::<Value>(json).ok();
        Object::<Room>::parse(payload.as_ref()).map_err(|err| err.to_string())
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
        assert_eq!(
            Object::<Room>::parse(None).map_err(|err| err.to_string()),
            Err("invalid payload: invalid type: null, expected an object".to_owned())
        );
    }
}
