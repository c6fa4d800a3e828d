//! What the official Socket.IO Redis emitter (`@socket.io/redis-emitter` 5, and its ports)
//! publishes, read exactly as `@socket.io/redis-adapter` reads it, and nothing else.
//!
//! For namespace `nsp` and emitter key `key` (default `socket.io`):
//! - `{key}#{nsp}#` carries msgpack `[uid, packet, opts]` for an emit to the whole namespace
//!   or to two or more rooms; `{key}#{nsp}#{room}#` the same for an emit to one room;
//!   `packet` is `{type: 2, data: [event, ...args], nsp}` and `opts` is
//!   `{rooms, except, flags: {volatile?, compress?}}`;
//! - `{key}-request#{nsp}#` carries JSON (msgpack from some ports): `{type: 2 | 3, opts:
//!   {rooms, except}, rooms}` (join, leave), `{type: 4, opts, close}` (disconnect) and
//!   `{type: 6, data}` (server-side emit, which has no meaning here).
//!
//! The emitter's messages are not sealed: they are believed as far as Redis access is.

use std::fmt;

use serde::{
    Deserialize, Serialize,
    ser::{SerializeTuple, Serializer},
};

use super::Room;

/// The Socket.IO `EVENT` and `BINARY_EVENT` packet types.
const EVENT: u8 = 2;
const BINARY_EVENT: u8 = 5;

/// The request types of `@socket.io/redis-adapter` that the emitter sends.
const REMOTE_JOIN: u8 = 2;
const REMOTE_LEAVE: u8 = 3;
const REMOTE_DISCONNECT: u8 = 4;
const SERVER_SIDE_EMIT: u8 = 6;

/// Event names Socket.IO keeps for itself; the emitter refuses them too.
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Which sockets an emitter operation is for: those in any of `rooms` (every socket of the
/// namespace when empty) and in none of `except`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Selection {
    /// The rooms selected; none selects the whole namespace.
    pub rooms: Vec<Room>,
    /// The rooms whose sockets are left out.
    pub except: Vec<Room>,
}

impl Selection {
    /// The sockets in `room`.
    pub fn room(room: impl Into<Room>) -> Self {
        Self {
            rooms: vec![room.into()],
            except: Vec::new(),
        }
    }
}

/// One emitter operation, decoded and checked for shape (not yet for the application's
/// rules: see [`EmitterConfig::accept`](crate::EmitterConfig)).
#[derive(Debug, Clone, PartialEq)]
pub enum EmitterRequest {
    /// `emitter.to(..).except(..).emit(event, ...args)`.
    Broadcast {
        /// The sockets it is for.
        selection: Selection,
        /// The event name.
        event: String,
        /// The arguments, as msgpack values (binary ones stay binary).
        args: EventArgs,
        /// Whether it may be dropped for a socket that is not ready (`volatile`).
        volatile: bool,
    },
    /// `emitter.in(..).socketsJoin(rooms)`.
    Join {
        /// The sockets that join.
        selection: Selection,
        /// The rooms they join.
        rooms: Vec<Room>,
    },
    /// `emitter.in(..).socketsLeave(rooms)`.
    Leave {
        /// The sockets that leave.
        selection: Selection,
        /// The rooms they leave.
        rooms: Vec<Room>,
    },
    /// `emitter.in(..).disconnectSockets(close)`.
    Disconnect {
        /// The sockets disconnected.
        selection: Selection,
        /// Whether their whole connection is closed, not just this namespace.
        close: bool,
    },
}

impl EmitterRequest {
    /// The sockets the operation is for.
    pub fn selection(&self) -> &Selection {
        match self {
            Self::Broadcast { selection, .. }
            | Self::Join { selection, .. }
            | Self::Leave { selection, .. }
            | Self::Disconnect { selection, .. } => selection,
        }
    }
}

/// The arguments of an emitted event. It serializes as a tuple, which Socket.IO parsers
/// spread into the event's arguments; binary values serialize as bytes, which they send as
/// attachments.
#[derive(Debug, Clone, PartialEq)]
pub struct EventArgs(pub Vec<rmpv::Value>);

impl Serialize for EventArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}

/// Why an emitter message was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitterError {
    /// Not in any of the emitter's shapes.
    Malformed(String),
    /// A shape the emitter sends that has no meaning here (server-side emit).
    Unsupported(&'static str),
}

impl fmt::Display for EmitterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed emitter message: {why}"),
            Self::Unsupported(what) => write!(f, "unsupported emitter message: {what}"),
        }
    }
}

fn malformed(why: impl fmt::Display) -> EmitterError {
    EmitterError::Malformed(why.to_string())
}

/// Whether `payload` can be an emitter broadcast: a msgpack array of three. Envelopes of the
/// bus start with their version byte (1 or 2), so one channel can carry both.
pub(crate) fn looks_like_broadcast(payload: &[u8]) -> bool {
    payload.first() == Some(&0x93)
}

/// The broadcast packet of the emitter, as socket.io-parser writes it.
#[derive(Deserialize)]
struct Packet {
    #[serde(rename = "type")]
    kind: u8,
    data: Vec<rmpv::Value>,
    #[serde(default)]
    nsp: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BroadcastOpts {
    rooms: Vec<Room>,
    except: Vec<Room>,
    flags: Flags,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Flags {
    volatile: Option<bool>,
}

/// Decodes a message of the emitter's namespace or room channel of namespace `ns`.
pub(crate) fn decode_broadcast(payload: &[u8], ns: &str) -> Result<EmitterRequest, EmitterError> {
    let (_uid, packet, opts): (rmpv::Value, Packet, BroadcastOpts) =
        rmp_serde::from_slice(payload).map_err(malformed)?;
    if packet.kind != EVENT && packet.kind != BINARY_EVENT {
        return Err(malformed(format_args!("packet type {}", packet.kind)));
    }
    if packet.nsp.as_deref().unwrap_or("/") != ns {
        return Err(malformed("packet of another namespace"));
    }
    let mut data = packet.data.into_iter();
    let event = match data.next() {
        Some(rmpv::Value::String(event)) => event
            .into_str()
            .ok_or_else(|| malformed("event name is not UTF-8"))?,
        _ => return Err(malformed("no event name")),
    };
    if event.is_empty() || RESERVED_EVENTS.contains(&event.as_str()) {
        return Err(malformed(format_args!("event name {event:?}")));
    }
    Ok(EmitterRequest::Broadcast {
        selection: Selection {
            rooms: opts.rooms,
            except: opts.except,
        },
        event,
        args: EventArgs(data.collect()),
        volatile: opts.flags.volatile.unwrap_or(false),
    })
}

/// A request of the emitter's request channel.
#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    opts: Selection,
    #[serde(default)]
    rooms: Option<Vec<Room>>,
    #[serde(default)]
    close: Option<bool>,
}

/// Decodes a message of the emitter's request channel: JSON when it starts with `{`,
/// msgpack otherwise, as `@socket.io/redis-adapter` reads it.
pub(crate) fn decode_request(payload: &[u8]) -> Result<EmitterRequest, EmitterError> {
    let request: Request = if payload.first() == Some(&b'{') {
        serde_json::from_slice(payload).map_err(malformed)?
    } else {
        rmp_serde::from_slice(payload).map_err(malformed)?
    };
    let rooms = || {
        request
            .rooms
            .clone()
            .filter(|rooms| !rooms.is_empty())
            .ok_or_else(|| malformed("no rooms to join or leave"))
    };
    match request.kind {
        REMOTE_JOIN => Ok(EmitterRequest::Join {
            rooms: rooms()?,
            selection: request.opts,
        }),
        REMOTE_LEAVE => Ok(EmitterRequest::Leave {
            rooms: rooms()?,
            selection: request.opts,
        }),
        REMOTE_DISCONNECT => Ok(EmitterRequest::Disconnect {
            selection: request.opts,
            close: request.close.unwrap_or(false),
        }),
        SERVER_SIDE_EMIT => Err(EmitterError::Unsupported("serverSideEmit")),
        other => Err(malformed(format_args!("request type {other}"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `[uid, packet, opts]` as notepack.io writes it (maps with string keys).
    fn broadcast(packet: rmpv::Value, opts: rmpv::Value) -> Vec<u8> {
        let message = rmpv::Value::Array(vec!["emitter".into(), packet, opts]);
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &message).unwrap();
        buf
    }

    fn map(entries: Vec<(&str, rmpv::Value)>) -> rmpv::Value {
        rmpv::Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn strings(items: &[&str]) -> rmpv::Value {
        rmpv::Value::Array(items.iter().map(|s| (*s).into()).collect())
    }

    fn event(data: Vec<rmpv::Value>) -> rmpv::Value {
        map(vec![
            ("type", 2.into()),
            ("data", rmpv::Value::Array(data)),
            ("nsp", "/".into()),
        ])
    }

    #[test]
    fn a_room_emit_with_except_and_binary_reads_back() {
        let payload = broadcast(
            event(vec![
                "news".into(),
                map(vec![("n", 1.into())]),
                rmpv::Value::Binary(vec![1, 2, 3]),
            ]),
            map(vec![
                ("rooms", strings(&["t:acme:r:general"])),
                ("except", strings(&["t:acme:u:bob"])),
                ("flags", map(vec![("volatile", true.into())])),
            ]),
        );
        assert!(looks_like_broadcast(&payload));
        let request = decode_broadcast(&payload, "/").unwrap();
        let EmitterRequest::Broadcast {
            selection,
            event,
            args,
            volatile,
        } = request
        else {
            panic!("not a broadcast");
        };
        assert_eq!(selection.rooms, ["t:acme:r:general"]);
        assert_eq!(selection.except, ["t:acme:u:bob"]);
        assert_eq!(event, "news");
        assert_eq!(args.0.len(), 2);
        assert_eq!(args.0[1], rmpv::Value::Binary(vec![1, 2, 3]));
        assert!(volatile);
    }

    #[test]
    fn empty_opts_select_the_namespace() {
        let payload = broadcast(
            event(vec!["tick".into()]),
            map(vec![("flags", map(vec![]))]),
        );
        let request = decode_broadcast(&payload, "/").unwrap();
        assert_eq!(request.selection(), &Selection::default());
    }

    #[test]
    fn what_the_emitter_never_sends_is_malformed() {
        let reserved = broadcast(event(vec!["disconnect".into()]), map(vec![]));
        let no_event = broadcast(event(vec![1.into()]), map(vec![]));
        let connect_packet = broadcast(
            map(vec![("type", 0.into()), ("data", strings(&["x"]))]),
            map(vec![]),
        );
        let other_ns = broadcast(
            map(vec![
                ("type", 2.into()),
                ("data", strings(&["x"])),
                ("nsp", "/admin".into()),
            ]),
            map(vec![]),
        );
        let number_room = broadcast(
            event(vec!["x".into()]),
            map(vec![("rooms", rmpv::Value::Array(vec![7.into()]))]),
        );
        for payload in [reserved, no_event, connect_packet, other_ns, number_room] {
            assert!(
                matches!(
                    decode_broadcast(&payload, "/"),
                    Err(EmitterError::Malformed(_))
                ),
                "{payload:?}"
            );
        }
        for garbage in [&b""[..], b"\x93", b"\x93\xa1x", b"{}", &[0xff; 40]] {
            assert!(decode_broadcast(garbage, "/").is_err());
        }
    }

    #[test]
    fn requests_read_back_from_json_as_the_emitter_writes_them() {
        let join =
            br#"{"type":2,"opts":{"rooms":["t:acme:r:a"],"except":[]},"rooms":["t:acme:r:b"]}"#;
        assert_eq!(
            decode_request(join).unwrap(),
            EmitterRequest::Join {
                selection: Selection {
                    rooms: vec!["t:acme:r:a".into()],
                    except: vec![]
                },
                rooms: vec!["t:acme:r:b".into()],
            }
        );
        let leave = br#"{"type":3,"opts":{"rooms":[],"except":[]},"rooms":"t:acme:r:b"}"#;
        assert!(decode_request(leave).is_err(), "rooms must be a list");
        let disconnect =
            br#"{"type":4,"opts":{"rooms":["t:acme:u:bob"],"except":[]},"close":true}"#;
        assert_eq!(
            decode_request(disconnect).unwrap(),
            EmitterRequest::Disconnect {
                selection: Selection {
                    rooms: vec!["t:acme:u:bob".into()],
                    except: vec![]
                },
                close: true,
            }
        );
        let server_side = br#"{"uid":"emitter","type":6,"data":["hello"]}"#;
        assert_eq!(
            decode_request(server_side),
            Err(EmitterError::Unsupported("serverSideEmit"))
        );
        for bad in [
            &br#"{"type":2,"opts":{},"rooms":[]}"#[..],
            br#"{"type":9}"#,
            br#"{"type":"2"}"#,
            b"{",
            b"",
        ] {
            assert!(
                matches!(decode_request(bad), Err(EmitterError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever anyone with Redis access publishes on the emitter's channels: decoded or
        /// refused, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode_broadcast(&body, "/");
            let _ = decode_request(&body);
            let mut array = vec![0x93];
            array.extend_from_slice(&body);
            let _ = decode_broadcast(&array, "/");
        }
    }
}
