//! engine.io v4 packets: one type character and its data, one per websocket text frame, or
//! several in a long-polling payload joined by [`SEPARATOR`] (which JSON text never contains
//! unescaped).

use crate::Error;

/// Separates the packets of one long-polling payload.
pub const SEPARATOR: char = '\u{1e}';

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

    proptest::proptest! {
        #[test]
        fn decoding_any_text_never_panics(text in "\\PC{0,64}") {
            let _ = decode(&text);
            let _ = split_payload(&text).map(decode).count();
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
