//! Server events: decoded ([`Event`]), raw ([`RawEvent`]) and the [`EventHandler`] that the
//! reader task of a [`Connection`](super::Connection) hands them to.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;

use super::ClientError;

/// An event sent by the server, fully decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event name.
    pub name: String,
    /// First argument (a copy of `args[0]`), `Value::Null` if there is none.
    pub data: Value,
    /// All arguments, in order.
    pub args: Vec<Value>,
    /// Set when the server asked for an acknowledgement: answer with
    /// [`SocketClient::ack`](super::SocketClient::ack).
    pub ack_id: Option<u64>,
}

/// An event as it came off the wire, borrowed from the frame: the JSON array
/// `["name", arg, ...]`, not decoded yet. Handlers that only care about one event decode just
/// that one with [`RawEvent::decode_if`], without building a [`Value`] tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent<'a> {
    ack_id: Option<u64>,
    json: &'a str,
}

impl<'a> RawEvent<'a> {
    /// A raw event from the JSON array text and the optional ack id the server asked for
    /// (public so that handlers can be tested on events of their own making).
    pub fn new(ack_id: Option<u64>, json: &'a str) -> Self {
        Self { ack_id, json }
    }

    /// The ack id, when the server asked for an acknowledgement.
    pub fn ack_id(&self) -> Option<u64> {
        self.ack_id
    }

    /// The JSON array text `["name", arg, ...]`.
    pub fn json(&self) -> &'a str {
        self.json
    }

    /// Decodes the whole event. Fails with [`ClientError::Protocol`] on anything that is not
    /// a JSON array starting with a string.
    pub fn parse(&self) -> Result<Event, ClientError> {
        let mut args: Vec<Value> = serde_json::from_str(self.json)
            .map_err(|e| protocol(&format!("invalid JSON ({e})"), self.json))?;
        if args.is_empty() {
            return Err(protocol("event without a name", self.json));
        }
        let Value::String(name) = args.remove(0) else {
            return Err(protocol("event name is not a string", self.json));
        };
        let data = args.first().cloned().unwrap_or(Value::Null);
        Ok(Event {
            name,
            data,
            args,
            ack_id: self.ack_id,
        })
    }

    /// Decodes the first argument as `T` if the event is named `name`, in one pass and
    /// borrowing from the frame where `T` allows it. `Ok(None)` for any other event; an error
    /// when the text is not an event array or the argument does not fit `T`.
    pub fn decode_if<T: Deserialize<'a>>(&self, name: &str) -> Result<Option<T>, ClientError> {
        let mut deserializer = serde_json::Deserializer::from_str(self.json);
        let value = deserializer
            .deserialize_seq(FirstArgIf::<T> {
                name,
                _arg: PhantomData,
            })
            .and_then(|value| deserializer.end().map(|()| value))
            .map_err(|e| protocol(&format!("invalid event ({e})"), self.json))?;
        Ok(value)
    }
}

/// Receives the events of one connection, on its reader task. Methods must not block: they
/// run between two reads of the socket.
pub trait EventHandler: Send + 'static {
    /// A server event. Returning an error ends the connection with that error.
    fn on_event(&mut self, event: RawEvent<'_>) -> Result<(), ClientError>;

    /// The connection ended on the server's side or on a transport error; `end` says why.
    /// Not called when the client closes or drops the connection itself.
    fn on_close(&mut self, end: ClientError);
}

/// Visits `["name", first, ...]`, keeping `first` as `T` when the name matches.
struct FirstArgIf<'n, T> {
    name: &'n str,
    _arg: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstArgIf<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Socket.IO event array [name, args...]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let matches = seq
            .next_element_seed(NameIs(self.name))?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let value = if matches {
            Some(
                seq.next_element::<T>()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?,
            )
        } else {
            None
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(value)
    }
}

/// Deserializes a string and tells whether it equals the wanted name, without allocating
/// when the JSON string has no escapes.
struct NameIs<'n>(&'n str);

impl<'de> DeserializeSeed<'de> for NameIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for NameIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<bool, E> {
        Ok(name == self.0)
    }
}

fn protocol(what: &str, json: &str) -> ClientError {
    ClientError::Protocol(format!("{what}: {json:.120}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::borrow::Cow;

    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Line<'a> {
        #[serde(borrow)]
        text: Cow<'a, str>,
    }

    #[test]
    fn parses_whole_events() {
        let raw = RawEvent::new(Some(3), r#"["hello",{"a":1},2]"#);
        let event = raw.parse().unwrap();
        assert_eq!(event.name, "hello");
        assert_eq!(event.data, json!({"a": 1}));
        assert_eq!(event.args, vec![json!({"a": 1}), json!(2)]);
        assert_eq!(event.ack_id, Some(3));
    }

    #[test]
    fn decode_if_picks_the_named_event_and_borrows() {
        let raw = RawEvent::new(None, r#"["message",{"room":"r","text":"hi"},"extra"]"#);
        let line: Line<'_> = raw.decode_if("message").unwrap().unwrap();
        assert!(matches!(line.text, Cow::Borrowed("hi")));
        assert_eq!(raw.decode_if::<Line<'_>>("welcome").unwrap(), None);
        let escaped = RawEvent::new(None, r#"["mess\u0061ge",{"text":"a\"b"}]"#);
        let line: Line<'_> = escaped.decode_if("message").unwrap().unwrap();
        assert_eq!(line.text, "a\"b");
    }

    #[test]
    fn decode_if_rejects_garbage() {
        for json in [
            "",
            "[",
            "[]",
            "[1]",
            "{}",
            r#"["message"]"#,
            r#"["message",{"no":1}]"#,
            r#"["message",{"text":"x"}] trailing"#,
        ] {
            let raw = RawEvent::new(None, json);
            assert!(
                matches!(
                    raw.decode_if::<Line<'_>>("message"),
                    Err(ClientError::Protocol(_))
                ),
                "{json}"
            );
        }
    }
}
