//! The client's side of engine.io v4 / Socket.IO v5 text packets, on the shared codecs of
//! the `engine` crate ([`engine::eio`], [`engine::sio`]).
//!
//! Pure functions, no I/O. Only the main namespace `/` and text packets are supported.
//! A websocket frame carries one engine.io packet; a long-polling payload carries several,
//! separated by [`engine::eio::SEPARATOR`].
//! The decoder never panics: any input it does not understand is a [`ClientError::Protocol`].
//! Event arguments are left undecoded ([`RawEvent`]) for the handler to decode as it needs.

use engine::{eio, sio};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ClientError, RawEvent};

/// engine.io PONG, the answer to a server PING.
pub(crate) const PONG: &str = "3";
/// Socket.IO DISCONNECT on the main namespace.
pub(crate) const DISCONNECT: &str = "41";
/// engine.io CLOSE, sent by a long-polling client that leaves.
pub(crate) const CLOSE: &str = "1";

/// A decoded server-to-client packet, borrowing from the frame.
#[derive(Debug, PartialEq)]
pub(crate) enum Packet<'a> {
    /// engine.io OPEN, with the engine.io session id (other handshake data is ignored).
    Open {
        /// engine.io session id, needed by long-polling requests.
        sid: String,
    },
    /// engine.io CLOSE.
    Close,
    /// engine.io PING: answer with [`PONG`].
    Ping,
    /// engine.io PONG or NOOP: nothing to do.
    Noop,
    /// Socket.IO CONNECT accepted, with the socket id.
    Connect {
        /// Socket.IO socket id.
        sid: String,
    },
    /// Socket.IO CONNECT_ERROR, with the server's message.
    ConnectError(String),
    /// Socket.IO DISCONNECT.
    Disconnect,
    /// Socket.IO EVENT, arguments not decoded yet.
    Event(RawEvent<'a>),
    /// Socket.IO ACK for one of our `emit_with_ack` calls.
    Ack {
        /// The ack id we sent with the event.
        id: u64,
        /// The acknowledgement arguments.
        args: Vec<Value>,
    },
}

/// `{"sid": "..."}`, the part of the engine.io OPEN and Socket.IO CONNECT bodies we need.
#[derive(Deserialize)]
struct Handshake {
    sid: String,
}

/// Decodes one engine.io packet (a websocket frame, or one packet of a polling payload).
pub(crate) fn decode(frame: &str) -> Result<Packet<'_>, ClientError> {
    let packet = eio::decode(frame).map_err(|err| protocol(&err.to_string(), frame))?;
    match packet.kind {
        eio::Kind::Open => {
            let Handshake { sid } = json(packet.data, frame)?;
            Ok(Packet::Open { sid })
        }
        eio::Kind::Close => Ok(Packet::Close),
        eio::Kind::Ping => Ok(Packet::Ping),
        eio::Kind::Pong | eio::Kind::Noop => Ok(Packet::Noop),
        eio::Kind::Message => decode_socketio(packet.data),
        eio::Kind::Upgrade => Err(protocol("unexpected engine.io UPGRADE", frame)),
    }
}

/// Decodes the Socket.IO packet carried by an engine.io MESSAGE.
fn decode_socketio(text: &str) -> Result<Packet<'_>, ClientError> {
    let packet = sio::decode(text).map_err(|err| protocol(&err.to_string(), text))?;
    if packet.ns != "/" {
        return Err(protocol("only the main namespace is supported", text));
    }
    match packet.kind {
        sio::Kind::Connect => {
            let Handshake { sid } = json(packet.data, text)?;
            Ok(Packet::Connect { sid })
        }
        sio::Kind::Disconnect => Ok(Packet::Disconnect),
        sio::Kind::Event => {
            if !packet.data.starts_with('[') {
                return Err(protocol("event is not an array", text));
            }
            Ok(Packet::Event(RawEvent::new(packet.ack, packet.data)))
        }
        sio::Kind::Ack => match packet.ack {
            Some(id) => Ok(Packet::Ack {
                id,
                args: json(packet.data, text)?,
            }),
            None => Err(protocol("ack without an id", text)),
        },
        sio::Kind::ConnectError => Ok(Packet::ConnectError(connect_error_message(packet.data))),
        sio::Kind::BinaryEvent | sio::Kind::BinaryAck => {
            Err(protocol("binary packets are not supported", text))
        }
    }
}

/// The message of a CONNECT_ERROR body: `{"message": "..."}`, a bare JSON string, or the raw text.
fn connect_error_message(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::String(message)) => message,
        Ok(Value::Object(mut map)) => match map.remove("message") {
            Some(Value::String(message)) => message,
            _ => body.to_owned(),
        },
        _ => body.to_owned(),
    }
}

fn json<'a, T: Deserialize<'a>>(text: &'a str, packet: &str) -> Result<T, ClientError> {
    serde_json::from_str(text).map_err(|e| protocol(&format!("invalid JSON ({e})"), packet))
}

fn protocol(what: &str, packet: &str) -> ClientError {
    ClientError::Protocol(format!("{what}: {packet:.120}"))
}

/// Socket.IO CONNECT to the main namespace, with an optional auth payload.
pub(crate) fn connect(auth: Option<&Value>) -> Result<String, ClientError> {
    message(sio::Kind::Connect, None, auth)
}

/// Socket.IO EVENT `42[<ack id>]["name",data]`; `data` is sent as the single argument.
pub(crate) fn event<T: Serialize + ?Sized>(
    name: &str,
    data: &T,
    ack_id: Option<u64>,
) -> Result<String, ClientError> {
    message(sio::Kind::Event, ack_id, Some(&(name, data)))
}

/// Socket.IO ACK `43<id>[data]` answering a server event that asked for one.
pub(crate) fn ack(id: u64, data: &Value) -> Result<String, ClientError> {
    message(sio::Kind::Ack, Some(id), Some(&[data]))
}

/// An engine.io MESSAGE carrying the Socket.IO packet `kind` on the main namespace.
fn message<T: Serialize + ?Sized>(
    kind: sio::Kind,
    ack: Option<u64>,
    data: Option<&T>,
) -> Result<String, ClientError> {
    sio::encode_message(kind, "/", ack, data)
        .map_err(|err| ClientError::Protocol(format!("cannot encode packet: {err}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::Event;

    fn event(name: &str, args: Vec<Value>, ack_id: Option<u64>) -> Event {
        Event {
            name: name.to_owned(),
            data: args.first().cloned().unwrap_or(Value::Null),
            args,
            ack_id,
        }
    }

    /// Decodes a frame and, for events, their arguments too: what the reader and a
    /// channel-backed client do together.
    fn decode_event(frame: &str) -> Result<Event, ClientError> {
        match decode(frame)? {
            Packet::Event(raw) => raw.parse(),
            other => Err(ClientError::Protocol(format!("not an event: {other:?}"))),
        }
    }

    #[test]
    fn decodes_engineio_packets() {
        let open = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(
            decode(open).unwrap(),
            Packet::Open {
                sid: "abc".to_owned()
            }
        );
        assert_eq!(decode("1").unwrap(), Packet::Close);
        assert_eq!(decode("2").unwrap(), Packet::Ping);
        assert_eq!(decode("3").unwrap(), Packet::Noop);
        assert_eq!(decode("6").unwrap(), Packet::Noop);
    }

    #[test]
    fn decodes_connect_and_disconnect() {
        assert_eq!(
            decode(r#"40{"sid":"s1"}"#).unwrap(),
            Packet::Connect {
                sid: "s1".to_owned()
            }
        );
        assert_eq!(decode("41").unwrap(), Packet::Disconnect);
    }

    #[test]
    fn decodes_connect_error_variants() {
        let cases = [
            (r#"44{"message":"nope"}"#, "nope"),
            (r#"44"plain""#, "plain"),
            (r#"44{"data":1}"#, r#"{"data":1}"#),
            ("44not json", "not json"),
            ("44", ""),
        ];
        for (frame, message) in cases {
            assert_eq!(
                decode(frame).unwrap(),
                Packet::ConnectError(message.to_owned()),
                "{frame}"
            );
        }
    }

    #[test]
    fn decodes_events() {
        assert_eq!(
            decode_event(r#"42["hello",{"a":1},2]"#).unwrap(),
            event("hello", vec![json!({"a":1}), json!(2)], None)
        );
        assert_eq!(
            decode_event(r#"42["bare"]"#).unwrap(),
            event("bare", vec![], None)
        );
        assert_eq!(
            decode_event(r#"4217["ask","q"]"#).unwrap(),
            event("ask", vec![json!("q")], Some(17))
        );
    }

    #[test]
    fn decodes_acks() {
        assert_eq!(
            decode(r#"433["ok",1]"#).unwrap(),
            Packet::Ack {
                id: 3,
                args: vec![json!("ok"), json!(1)]
            }
        );
        assert_eq!(
            decode("430[]").unwrap(),
            Packet::Ack {
                id: 0,
                args: vec![]
            }
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let garbage = [
            "",
            "4",
            "9",
            "x",
            "é",
            "4é",
            "42",
            "42[",
            "42[]",
            "42[1]",
            "42{}",
            r#"42/admin,["x"]"#,
            "43",
            "43[1]",
            "43x",
            "4399999999999999999999999[1]",
            "4299999999999999999999999[\"x\"]",
            "40",
            "40{}",
            r#"40{"sid":1}"#,
            r#"451-["x",{"_placeholder":true,"num":0}]"#,
            r#"461-0[{"_placeholder":true,"num":0}]"#,
            "47",
            "4\u{0}",
            "42\u{ffff}",
            "5",
            "0",
            "0{}",
            "0not json",
        ];
        for frame in garbage {
            let decoded = decode(frame).and_then(|packet| match packet {
                Packet::Event(raw) => raw.parse().map(drop),
                _ => Ok(()),
            });
            assert!(
                matches!(decoded, Err(ClientError::Protocol(_))),
                "{frame:?} -> {decoded:?}"
            );
        }
    }

    #[test]
    fn never_panics_on_prefixes_of_valid_packets() {
        let valid = r#"4212["événement",{"k":[1,2,"ü"]},null]"#;
        for (i, _) in valid.char_indices() {
            let _ = decode_event(&valid[..i]);
            let _ = decode_event(&valid[i..]);
        }
        for len in 0..valid.len() {
            let bytes = &valid.as_bytes()[..len];
            let _ = decode_event(&String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn encodes_packets() {
        assert_eq!(connect(None).unwrap(), "40");
        assert_eq!(
            connect(Some(&json!({"token":"t"}))).unwrap(),
            r#"40{"token":"t"}"#
        );
        assert_eq!(
            super::event("echo", &json!({"a":"\"q\""}), None).unwrap(),
            r#"42["echo",{"a":"\"q\""}]"#
        );
        assert_eq!(
            super::event("e\"v", &Value::Null, Some(42)).unwrap(),
            r#"4242["e\"v",null]"#
        );
        assert_eq!(ack(7, &json!([1, 2])).unwrap(), "437[[1,2]]");
    }

    #[test]
    fn encoded_events_decode_back() {
        let frame = super::event("round", &json!({"x": [1, "two"]}), Some(9)).unwrap();
        assert_eq!(
            decode_event(&frame).unwrap(),
            event("round", vec![json!({"x": [1, "two"]})], Some(9))
        );
    }
}
