//! Socket.IO v5 packets, the data of an engine.io MESSAGE:
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]`, where the attachment count
//! is there only for the binary types, the namespace only when it is not `/`, and the binary
//! attachments themselves follow as engine.io binary messages.
//!
//! The decoder splits the header off and leaves the JSON data undecoded: which shape the data
//! must have (an object for CONNECT, an array starting with the event name for EVENT...) is for
//! the side that reads it.

use std::fmt::Write;

use serde::Serialize;

use crate::{Error, eio};

/// The type of a Socket.IO packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `0`: join a namespace (with the auth payload), or the server's acceptance (with the
    /// socket id).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event: `["name", ...args]`.
    Event,
    /// `3`: the acknowledgement of an event: `[...args]`.
    Ack,
    /// `4`: the server refused a CONNECT.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck,
}

impl Kind {
    /// The packet type of character `c`.
    pub fn from_char(c: char) -> Option<Self> {
        Some(match c {
            '0' => Self::Connect,
            '1' => Self::Disconnect,
            '2' => Self::Event,
            '3' => Self::Ack,
            '4' => Self::ConnectError,
            '5' => Self::BinaryEvent,
            '6' => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The character this type is written as.
    pub fn as_char(self) -> char {
        match self {
            Self::Connect => '0',
            Self::Disconnect => '1',
            Self::Event => '2',
            Self::Ack => '3',
            Self::ConnectError => '4',
            Self::BinaryEvent => '5',
            Self::BinaryAck => '6',
        }
    }

    /// Whether binary attachments follow packets of this type.
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }
}

/// A decoded packet, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Its type.
    pub kind: Kind,
    /// Its namespace, `/` when the packet names none.
    pub ns: &'a str,
    /// How many binary attachments follow (0 unless [`Kind::is_binary`]).
    pub attachments: usize,
    /// The ack id, when the packet has one.
    pub ack: Option<u64>,
    /// The JSON data, undecoded (may be empty).
    pub data: &'a str,
}

/// Decodes one packet from the data of an engine.io MESSAGE.
pub fn decode(text: &str) -> Result<Packet<'_>, Error> {
    let mut chars = text.chars();
    let first = chars.next().ok_or(Error::Empty)?;
    let kind = Kind::from_char(first).ok_or(Error::UnknownType(first))?;
    let mut rest = chars.as_str();
    let mut attachments = 0;
    if kind.is_binary() {
        let (count, after) = rest.split_once('-').ok_or(Error::Attachments)?;
        attachments = digits(count).ok_or(Error::Attachments)?;
        rest = after;
    }
    let mut ns = "/";
    if rest.starts_with('/') {
        let (name, after) = rest.split_once(',').unwrap_or((rest, ""));
        ns = name;
        rest = after;
    }
    let data = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    // `data` is a suffix of `rest`: the ack id is what was trimmed.
    let ack = match rest.strip_suffix(data).unwrap_or_default() {
        "" => None,
        id => Some(id.parse().map_err(|_| Error::AckId)?),
    };
    Ok(Packet {
        kind,
        ns,
        attachments,
        ack,
        data,
    })
}

/// A non-empty run of ASCII digits as a number.
fn digits(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Encodes a text packet (no attachments): `kind`, namespace `ns` (written only when it is
/// not `/`), the optional `ack` id and `data` as JSON, in one allocation. A binary `kind` is
/// written with 0 attachments.
pub fn encode<T: Serialize + ?Sized>(
    kind: Kind,
    ns: &str,
    ack: Option<u64>,
    data: Option<&T>,
) -> Result<String, Error> {
    write(String::with_capacity(64), kind, ns, 0, ack, data)
}

/// [`encode`], framed as the engine.io MESSAGE that carries it (`4` first), still in one
/// allocation: what a websocket frame or a polling payload holds.
pub fn encode_message<T: Serialize + ?Sized>(
    kind: Kind,
    ns: &str,
    ack: Option<u64>,
    data: Option<&T>,
) -> Result<String, Error> {
    let mut text = String::with_capacity(64);
    text.push(eio::Kind::Message.as_char());
    write(text, kind, ns, 0, ack, data)
}

/// Appends the packet to `text`, with its count of `attachments` when `kind` is binary.
fn write<T: Serialize + ?Sized>(
    mut text: String,
    kind: Kind,
    ns: &str,
    attachments: usize,
    ack: Option<u64>,
    data: Option<&T>,
) -> Result<String, Error> {
    if !ns.starts_with('/') || ns.contains(',') {
        return Err(Error::Namespace(ns.to_owned()));
    }
    text.push(kind.as_char());
    // Writing to a String cannot fail (here and for the ack id).
    if kind.is_binary() {
        let _ = write!(text, "{attachments}-");
    }
    if ns != "/" {
        text.push_str(ns);
        text.push(',');
    }
    if let Some(ack) = ack {
        let _ = write!(text, "{ack}");
    }
    let mut bytes = text.into_bytes();
    if let Some(data) = data {
        serde_json::to_writer(&mut bytes, data).map_err(|err| Error::Json(err.to_string()))?;
    }
    String::from_utf8(bytes).map_err(|err| Error::Json(err.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn packet<'a>(
        kind: Kind,
        ns: &'a str,
        attachments: usize,
        ack: Option<u64>,
        data: &'a str,
    ) -> Packet<'a> {
        Packet {
            kind,
            ns,
            attachments,
            ack,
            data,
        }
    }

    /// The packets of the Socket.IO protocol's specification and test suite.
    #[test]
    fn decodes_the_specifications_examples() {
        let cases = [
            ("0", packet(Kind::Connect, "/", 0, None, "")),
            (
                r#"0{"token":"123"}"#,
                packet(Kind::Connect, "/", 0, None, r#"{"token":"123"}"#),
            ),
            ("0/custom,", packet(Kind::Connect, "/custom", 0, None, "")),
            ("0/random", packet(Kind::Connect, "/random", 0, None, "")),
            (
                r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
                packet(
                    Kind::Connect,
                    "/admin",
                    0,
                    None,
                    r#"{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
                ),
            ),
            (
                r#"4/random,{"message":"Invalid namespace"}"#,
                packet(
                    Kind::ConnectError,
                    "/random",
                    0,
                    None,
                    r#"{"message":"Invalid namespace"}"#,
                ),
            ),
            ("1/custom", packet(Kind::Disconnect, "/custom", 0, None, "")),
            (
                r#"2["message",1,"2",{"3":[true]}]"#,
                packet(
                    Kind::Event,
                    "/",
                    0,
                    None,
                    r#"["message",1,"2",{"3":[true]}]"#,
                ),
            ),
            (
                r#"2/admin,456["project:delete",123]"#,
                packet(
                    Kind::Event,
                    "/admin",
                    0,
                    Some(456),
                    r#"["project:delete",123]"#,
                ),
            ),
            (
                "3/admin,456[]",
                packet(Kind::Ack, "/admin", 0, Some(456), "[]"),
            ),
            (
                r#"52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
                packet(
                    Kind::BinaryEvent,
                    "/",
                    2,
                    None,
                    r#"["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
                ),
            ),
            (
                r#"61-/admin,456[{"_placeholder":true,"num":0}]"#,
                packet(
                    Kind::BinaryAck,
                    "/admin",
                    1,
                    Some(456),
                    r#"[{"_placeholder":true,"num":0}]"#,
                ),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(decode(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_packet_is_an_error() {
        assert_eq!(decode(""), Err(Error::Empty));
        assert_eq!(decode("7"), Err(Error::UnknownType('7')));
        assert_eq!(decode("abc"), Err(Error::UnknownType('a')));
        assert_eq!(decode("5[]"), Err(Error::Attachments));
        assert_eq!(decode("5x-[]"), Err(Error::Attachments));
        assert_eq!(decode("5-[]"), Err(Error::Attachments));
        assert_eq!(decode("299999999999999999999[\"x\"]"), Err(Error::AckId));
    }

    #[test]
    fn encodes_text_packets() {
        let none: Option<&()> = None;
        assert_eq!(encode(Kind::Connect, "/", None, none).unwrap(), "0");
        assert_eq!(
            encode(Kind::Connect, "/", None, Some(&json!({"token": "t"}))).unwrap(),
            r#"0{"token":"t"}"#
        );
        assert_eq!(
            encode(Kind::Event, "/", Some(42), Some(&("e\"v", ()))).unwrap(),
            r#"242["e\"v",null]"#
        );
        assert_eq!(
            encode(Kind::Disconnect, "/admin", None, none).unwrap(),
            "1/admin,"
        );
        assert_eq!(
            encode(Kind::Ack, "/", Some(7), Some(&[[1, 2]])).unwrap(),
            "37[[1,2]]"
        );
        assert_eq!(
            encode(Kind::BinaryAck, "/admin", Some(1), Some(&[0])).unwrap(),
            "60-/admin,1[0]"
        );
        assert_eq!(
            encode(Kind::Event, "admin", None, none),
            Err(Error::Namespace("admin".to_owned()))
        );
        assert_eq!(
            encode(Kind::Event, "/a,b", None, none),
            Err(Error::Namespace("/a,b".to_owned()))
        );
    }

    #[test]
    fn a_message_is_the_packet_framed_for_engine_io() {
        let data = json!(["news", 1]);
        let framed = encode_message(Kind::Event, "/admin", Some(3), Some(&data)).unwrap();
        let packet = encode(Kind::Event, "/admin", Some(3), Some(&data)).unwrap();
        assert_eq!(framed, eio::encode(eio::Kind::Message, &packet));
        assert_eq!(framed, r#"42/admin,3["news",1]"#);
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_text_never_panics(text in "\\PC{0,64}") {
            let _ = decode(&text);
        }

        #[test]
        fn encoded_packets_decode_back(
            kind in 0u8..7,
            ns in "(/|/[a-z]{1,8})",
            ack in proptest::option::of(proptest::prelude::any::<u64>()),
            args in proptest::collection::vec("\\PC{0,8}", 0..4),
        ) {
            let kind = Kind::from_char(char::from(b'0' + kind)).unwrap();
            let text = encode(kind, &ns, ack, Some(&args)).unwrap();
            let decoded = decode(&text).unwrap();
            proptest::prop_assert_eq!((decoded.kind, decoded.ns, decoded.ack), (kind, ns.as_str(), ack));
            let back: Vec<String> = serde_json::from_str(decoded.data).unwrap();
            proptest::prop_assert_eq!(back, args);
        }
    }
}
