//! engine.io v4 packets: one type character and its data, one per websocket text frame, or
//! several in a long-polling payload joined by [`SEPARATOR`] (which JSON text never contains
//! unescaped).
//!
//! A binary message has no type character: over websocket it is a binary frame, its bytes as
//! they are; in a long-polling payload it is [`BINARY`] followed by its bytes in base64
//! ([`decode_payload_packet`], [`encode_binary`]).

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;

use crate::Error;

/// Separates the packets of one long-polling payload.
pub const SEPARATOR: char = '\u{1e}';

/// Starts a binary message in a long-polling payload, before its base64.
pub const BINARY: char = 'b';

/// The type of an engine.io packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `0`: the server's handshake, with its JSON.
    Open,
    /// `1`: the session ends.
    Close,
    /// `2`: a heartbeat (or `2probe` during an upgrade).
    Ping,
    /// `3`: its answer.
    Pong,
    /// `4`: a message: in Socket.IO, one Socket.IO packet.
    Message,
    /// `5`: completes an upgrade to websocket.
    Upgrade,
    /// `6`: nothing (ends a pending long-polling request).
    Noop,
}

impl Kind {
    /// The packet type of character `c`.
    pub fn from_char(c: char) -> Option<Self> {
        Some(match c {
            '0' => Self::Open,
            '1' => Self::Close,
            '2' => Self::Ping,
            '3' => Self::Pong,
            '4' => Self::Message,
            '5' => Self::Upgrade,
            '6' => Self::Noop,
            _ => return None,
        })
    }

    /// The character this type is written as.
    pub fn as_char(self) -> char {
        match self {
            Self::Open => '0',
            Self::Close => '1',
            Self::Ping => '2',
            Self::Pong => '3',
            Self::Message => '4',
            Self::Upgrade => '5',
            Self::Noop => '6',
        }
    }
}

/// A decoded text packet, borrowing its data from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Its type.
    pub kind: Kind,
    /// What follows the type character (may be empty).
    pub data: &'a str,
}

/// Decodes one text packet: a websocket text frame, or one packet of a polling payload.
pub fn decode(text: &str) -> Result<Packet<'_>, Error> {
    let mut chars = text.chars();
    let first = chars.next().ok_or(Error::Empty)?;
    let kind = Kind::from_char(first).ok_or(Error::UnknownType(first))?;
    Ok(Packet {
        kind,
        data: chars.as_str(),
    })
}

/// Encodes a text packet of type `kind` with `data`.
pub fn encode(kind: Kind, data: &str) -> String {
    let mut text = String::with_capacity(1 + data.len());
    text.push(kind.as_char());
    text.push_str(data);
    text
}

/// One packet of a long-polling payload: a text packet or a binary message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadPacket<'a> {
    /// A text packet, as [`decode`] reads it.
    Text(Packet<'a>),
    /// A binary message (a MESSAGE whose data is bytes), decoded from base64.
    Binary(Bytes),
}

/// Decodes one packet of a long-polling payload (one item of [`split_payload`]): `b<base64>`
/// is a binary message, anything else a text packet. The bytes of a binary message are the
/// only allocation.
pub fn decode_payload_packet(text: &str) -> Result<PayloadPacket<'_>, Error> {
    match text.strip_prefix(BINARY) {
        Some(base64) => {
            let bytes = STANDARD.decode(base64).map_err(|_| Error::Base64)?;
            Ok(PayloadPacket::Binary(Bytes::from(bytes)))
        }
        None => decode(text).map(PayloadPacket::Text),
    }
}

/// Encodes a binary message for a long-polling payload: [`BINARY`] and `data` in base64, in
/// one allocation. (Over websocket, `data` is sent as a binary frame as it is.)
pub fn encode_binary(data: &[u8]) -> String {
    let len = base64::encoded_len(data.len(), true).unwrap_or_default();
    let mut text = String::with_capacity(1 + len);
    text.push(BINARY);
    STANDARD.encode_string(data, &mut text);
    text
}

/// The packets of a long-polling payload, in order (an empty payload has none).
pub fn split_payload(payload: &str) -> impl Iterator<Item = &str> {
    payload.split(SEPARATOR).filter(|packet| !packet.is_empty())
}

/// One long-polling payload of `packets`, each already encoded.
pub fn join_payload<'a>(packets: impl IntoIterator<Item = &'a str>) -> String {
    let mut payload = String::new();
    for packet in packets {
        if !payload.is_empty() {
            payload.push(SEPARATOR);
        }
        payload.push_str(packet);
    }
    payload
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_type_round_trips_and_keeps_its_data() {
        for c in '0'..='6' {
            let kind = Kind::from_char(c).unwrap();
            let text = encode(kind, "probe");
            assert_eq!(
                decode(&text).unwrap(),
                Packet {
                    kind,
                    data: "probe"
                }
            );
        }
        assert_eq!(decode("2").unwrap().data, "");
    }

    #[test]
    fn what_is_not_a_packet_is_an_error() {
        assert_eq!(decode(""), Err(Error::Empty));
        assert_eq!(decode("7"), Err(Error::UnknownType('7')));
        assert_eq!(decode("é4"), Err(Error::UnknownType('é')));
        // The engine.io suites' "invalid packet format".
        assert_eq!(decode("abc"), Err(Error::UnknownType('a')));
    }

    #[test]
    fn payloads_split_and_join_as_in_the_specification() {
        let payload = "4hello\u{1e}4€\u{1e}2";
        assert_eq!(
            split_payload(payload).collect::<Vec<_>>(),
            ["4hello", "4€", "2"]
        );
        assert_eq!(join_payload(split_payload(payload)), payload);
        assert_eq!(split_payload("").count(), 0);
        assert_eq!(join_payload(["6"]), "6");
    }

    #[test]
    fn binary_messages_in_a_payload_as_in_the_specification() {
        let payload = "4hello\u{1e}bAQIDBA==";
        let packets: Vec<_> = split_payload(payload)
            .map(|packet| decode_payload_packet(packet).unwrap())
            .collect();
        assert_eq!(
            packets,
            [
                PayloadPacket::Text(Packet {
                    kind: Kind::Message,
                    data: "hello"
                }),
                PayloadPacket::Binary(Bytes::from_static(&[1, 2, 3, 4])),
            ]
        );
        let binary = encode_binary(&[1, 2, 3, 4]);
        assert_eq!(binary, "bAQIDBA==");
        assert_eq!(join_payload(["4hello", binary.as_str()]), payload);
        assert_eq!(encode_binary(&[]), "b");
        assert_eq!(
            decode_payload_packet("b"),
            Ok(PayloadPacket::Binary(Bytes::new()))
        );
        // Over websocket, `b` starts no packet: binary messages are binary frames there.
        assert_eq!(decode("bAQIDBA=="), Err(Error::UnknownType('b')));
    }

    #[test]
    fn an_invalid_base64_is_an_error() {
        for text in [
            "b!",
            "bAQIDBA",
            "bAQIDBA=",
            "bAQ==AA=",
            "bAQ",
            "b====",
            "bAQIDBA==\n",
        ] {
            assert_eq!(decode_payload_packet(text), Err(Error::Base64), "{text:?}");
        }
        assert_eq!(decode_payload_packet(""), Err(Error::Empty));
        assert_eq!(decode_payload_packet("7"), Err(Error::UnknownType('7')));
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_text_never_panics(text in "\\PC{0,64}") {
            let _ = decode(&text);
            let _ = split_payload(&text).map(decode).count();
            let _ = split_payload(&text).map(decode_payload_packet).count();
            let _ = decode_payload_packet(&format!("{BINARY}{text}"));
        }

        #[test]
        fn binary_messages_decode_back(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let text = encode_binary(&data);
            proptest::prop_assert_eq!(decode_payload_packet(&text), Ok(PayloadPacket::Binary(Bytes::from(data))));
        }

        #[test]
        fn a_joined_payload_splits_back_into_its_packets(
            packets in proptest::collection::vec("[0-6][^\u{1e}]{0,16}", 1..8)
        ) {
            let payload = join_payload(packets.iter().map(String::as_str));
            let split: Vec<&str> = split_payload(&payload).collect();
            proptest::prop_assert_eq!(split, packets.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}
