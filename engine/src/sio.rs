//! Socket.IO v5 packets, the data of an engine.io MESSAGE:
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]`, where the attachment count
//! is there only for the binary types, the namespace only when it is not `/`, and the binary
//! attachments themselves follow as engine.io binary messages.
//!
//! The decoder splits the header off and leaves the JSON data undecoded: which shape the data
//! must have (an object for CONNECT, an array starting with the event name for EVENT...) is for
//! the side that reads it.
//!
//! A BINARY_EVENT or BINARY_ACK is its text packet, whose JSON holds a placeholder
//! `{"_placeholder":true,"num":n}` (at any depth) for each attachment, followed by the
//! attachments as binary engine.io messages. An [`Assembler`] per connection joins them into a
//! [`BinaryPacket`], which [`BinaryPacket::encode_message`] writes back.

use std::fmt::Write;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

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
    write(message_buffer(), kind, ns, 0, ack, data)
}

/// An empty buffer for a packet framed as an engine.io MESSAGE: `4` already in it.
fn message_buffer() -> String {
    let mut text = String::with_capacity(64);
    text.push(eio::Kind::Message.as_char());
    text
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

/// The default of [`Limits::max_attachments`].
pub const MAX_ATTACHMENTS: usize = 10;

/// The default of [`Limits::max_bytes`]: 1 MB, engine.io's default `maxPayload`.
pub const MAX_ATTACHMENT_BYTES: usize = 1_000_000;

/// The bounds an [`Assembler`] keeps to for each binary packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most attachments a packet may announce.
    pub max_attachments: usize,
    /// The most bytes a packet's attachments may hold together.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attachments: MAX_ATTACHMENTS,
            max_bytes: MAX_ATTACHMENT_BYTES,
        }
    }
}

/// A BINARY_EVENT or BINARY_ACK with all its attachments.
///
/// `data` is the JSON as sent: each attachment stays a placeholder in it, and the placeholder
/// numbered `n` stands for `attachments[n]` ([`BinaryPacket::attachment`] resolves one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryPacket {
    /// [`Kind::BinaryEvent`] or [`Kind::BinaryAck`].
    pub kind: Kind,
    /// Its namespace.
    pub ns: String,
    /// The ack id, when the packet has one.
    pub ack: Option<u64>,
    /// The JSON data with its placeholders: `["name", ...args]` for an event, `[...args]` for
    /// an ack.
    pub data: Value,
    /// The attachments, in order.
    pub attachments: Vec<Bytes>,
}

impl BinaryPacket {
    /// The attachment `value` stands for, when it is a placeholder of one of them.
    pub fn attachment(&self, value: &Value) -> Option<&Bytes> {
        placeholder_num(value).and_then(|num| self.attachments.get(num))
    }

    /// Encodes the packet framed as the engine.io MESSAGE that carries it,
    /// `45<n>-<ns>,<ack><data>` (namespace and ack as in [`encode`]), in one allocation. Its
    /// attachments are to be sent right after it, in order, each as a binary message: a
    /// websocket binary frame as it is, or [`eio::encode_binary`] in a long-polling payload.
    ///
    /// Fails when `kind` is not binary or a placeholder of `data` names no attachment, as
    /// [`Assembler`] would on the other side.
    pub fn encode_message(&self) -> Result<String, Error> {
        if !self.kind.is_binary() {
            return Err(Error::NotBinary(self.kind.as_char()));
        }
        check_placeholders(&self.data, self.attachments.len())?;
        write(
            message_buffer(),
            self.kind,
            &self.ns,
            self.attachments.len(),
            self.ack,
            Some(&self.data),
        )
    }
}

/// The placeholder of attachment `num`, `{"_placeholder":true,"num":<num>}`.
pub fn placeholder(num: usize) -> Value {
    serde_json::json!({ "_placeholder": true, "num": num })
}

/// The attachment number of a placeholder; `None` when `value` is not one (an object with
/// `"_placeholder": true` and an integer `num` of 0 or more).
pub fn placeholder_num(value: &Value) -> Option<usize> {
    let map = value.as_object()?;
    if map.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    usize::try_from(map.get("num")?.as_u64()?).ok()
}

/// Checks that every placeholder of `value`, at any depth, names one of `count` attachments:
/// any object with `"_placeholder": true` must be a placeholder with a `num` below `count`.
/// (Parsed JSON is at most 128 levels deep, so the recursion is bounded.)
fn check_placeholders(value: &Value, count: usize) -> Result<(), Error> {
    match value {
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| check_placeholders(item, count)),
        Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
            match placeholder_num(value) {
                Some(num) if num < count => Ok(()),
                _ => Err(Error::Placeholder),
            }
        }
        Value::Object(map) => map
            .values()
            .try_for_each(|item| check_placeholders(item, count)),
        _ => Ok(()),
    }
}

/// What [`Assembler::text`] makes of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled<'a> {
    /// A packet of a type without attachments, to handle as it is.
    Text(Packet<'a>),
    /// A binary packet whose attachments are to come: the next messages go to
    /// [`Assembler::binary`].
    Waiting,
    /// A binary packet that announced no attachment, complete at once.
    Binary(BinaryPacket),
}

/// Joins binary packets and their attachments, on one connection.
///
/// Every Socket.IO packet the connection receives goes to [`Assembler::text`] and every binary
/// engine.io message to [`Assembler::binary`], in order (engine.io PING, PONG... do not concern
/// it). Each error is a protocol violation: the caller closes the connection, and the assembler
/// is left with nothing pending.
#[derive(Debug, Default)]
pub struct Assembler {
    limits: Limits,
    pending: Option<Pending>,
}

/// A binary packet that waits for attachments.
#[derive(Debug)]
struct Pending {
    packet: BinaryPacket,
    /// How many attachments it announced.
    expected: usize,
    /// The bytes of the attachments received so far.
    bytes: usize,
}

impl Assembler {
    /// An assembler with nothing pending, bounded by `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            pending: None,
        }
    }

    /// Whether a binary packet waits for attachments.
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes a decoded packet. A binary one has its JSON parsed and its placeholders checked
    /// against the count it announces.
    ///
    /// Errors: [`Error::AttachmentsPending`] while attachments are expected,
    /// [`Error::TooManyAttachments`] above [`Limits::max_attachments`],
    /// [`Error::InvalidJson`], [`Error::Placeholder`] when a placeholder names no attachment.
    pub fn text<'a>(&mut self, packet: Packet<'a>) -> Result<Assembled<'a>, Error> {
        if self.pending.take().is_some() {
            return Err(Error::AttachmentsPending);
        }
        if !packet.kind.is_binary() {
            return Ok(Assembled::Text(packet));
        }
        let max = self.limits.max_attachments;
        if packet.attachments > max {
            return Err(Error::TooManyAttachments {
                announced: packet.attachments,
                max,
            });
        }
        let data: Value =
            serde_json::from_str(packet.data).map_err(|err| Error::InvalidJson(err.to_string()))?;
        check_placeholders(&data, packet.attachments)?;
        let binary = BinaryPacket {
            kind: packet.kind,
            ns: packet.ns.to_owned(),
            ack: packet.ack,
            data,
            attachments: Vec::new(),
        };
        if packet.attachments == 0 {
            return Ok(Assembled::Binary(binary));
        }
        self.pending = Some(Pending {
            packet: binary,
            expected: packet.attachments,
            bytes: 0,
        });
        Ok(Assembled::Waiting)
    }

    /// Takes a binary engine.io message: the next attachment of the pending packet, returned
    /// once it has them all.
    ///
    /// Errors: [`Error::UnexpectedBinary`] when no packet waits (which is also what an
    /// attachment beyond the announced count is: its packet completed with the last announced
    /// one), [`Error::AttachmentsTooLarge`] above [`Limits::max_bytes`].
    pub fn binary(&mut self, data: Bytes) -> Result<Option<BinaryPacket>, Error> {
        let mut pending = self.pending.take().ok_or(Error::UnexpectedBinary)?;
        pending.bytes = pending.bytes.saturating_add(data.len());
        if pending.bytes > self.limits.max_bytes {
            return Err(Error::AttachmentsTooLarge(self.limits.max_bytes));
        }
        pending.packet.attachments.push(data);
        if pending.packet.attachments.len() < pending.expected {
            self.pending = Some(pending);
            return Ok(None);
        }
        Ok(Some(pending.packet))
    }
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

    const PH0: &str = r#"{"_placeholder":true,"num":0}"#;
    const PH1: &str = r#"{"_placeholder":true,"num":1}"#;

    fn binary(
        kind: Kind,
        ns: &str,
        ack: Option<u64>,
        data: Value,
        attachments: &[&'static [u8]],
    ) -> BinaryPacket {
        BinaryPacket {
            kind,
            ns: ns.to_owned(),
            ack,
            data,
            attachments: attachments
                .iter()
                .copied()
                .map(Bytes::from_static)
                .collect(),
        }
    }

    /// Feeds `text` then `attachments` to a fresh assembler, as websocket frames would.
    fn assemble(text: &str, attachments: &[Bytes]) -> Result<BinaryPacket, Error> {
        let mut assembler = Assembler::default();
        let Assembled::Waiting = assembler.text(decode(text)?)? else {
            panic!("{text} does not wait for attachments");
        };
        let mut done = None;
        for attachment in attachments {
            assert!(
                done.is_none(),
                "{text}: complete before its last attachment"
            );
            done = assembler.binary(attachment.clone())?;
        }
        assert!(!assembler.is_waiting());
        Ok(done.unwrap())
    }

    /// The binary packets of the Socket.IO protocol's specification, decoded and encoded.
    #[test]
    fn binary_packets_of_the_specification() {
        let cases = [
            (
                format!(r#"51-["hello",{PH0}]"#),
                binary(
                    Kind::BinaryEvent,
                    "/",
                    None,
                    json!(["hello", placeholder(0)]),
                    &[&[1, 2, 3]],
                ),
            ),
            (
                format!(r#"51-["baz",{PH0}]"#),
                binary(
                    Kind::BinaryEvent,
                    "/",
                    None,
                    json!(["baz", placeholder(0)]),
                    &[&[1, 2, 3, 4]],
                ),
            ),
            (
                format!(r#"52-/admin,["baz",{PH0},{PH1}]"#),
                binary(
                    Kind::BinaryEvent,
                    "/admin",
                    None,
                    json!(["baz", placeholder(0), placeholder(1)]),
                    &[&[1, 2], &[3, 4]],
                ),
            ),
            (
                format!(r#"51-14["foo",{PH0}]"#),
                binary(
                    Kind::BinaryEvent,
                    "/",
                    Some(14),
                    json!(["foo", placeholder(0)]),
                    &[&[1, 2, 3, 4]],
                ),
            ),
            (
                format!(r#"61-15["bar",{PH0}]"#),
                binary(
                    Kind::BinaryAck,
                    "/",
                    Some(15),
                    json!(["bar", placeholder(0)]),
                    &[&[1, 2, 3, 4]],
                ),
            ),
            (
                format!(r#"61-/admin,13[{PH0}]"#),
                binary(
                    Kind::BinaryAck,
                    "/admin",
                    Some(13),
                    json!([placeholder(0)]),
                    &[&[5]],
                ),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                assemble(&text, &expected.attachments),
                Ok(expected.clone()),
                "{text}"
            );
            assert_eq!(expected.encode_message().unwrap(), format!("4{text}"));
        }
    }

    #[test]
    fn placeholders_anywhere_resolve_to_their_attachment() {
        let text = format!(
            r#"53-["upload",{{"files":[{PH1},{{"thumb":{{"_placeholder":true,"num":2}}}}],"n":1}},{PH0}]"#
        );
        let attachments = [&b"zero"[..], b"one", b"two"].map(Bytes::from_static);
        let packet = assemble(&text, &attachments).unwrap();
        let data = &packet.data;
        assert_eq!(packet.attachment(&data[2]).unwrap().as_ref(), b"zero");
        assert_eq!(
            packet.attachment(&data[1]["files"][0]).unwrap().as_ref(),
            b"one"
        );
        assert_eq!(
            packet
                .attachment(&data[1]["files"][1]["thumb"])
                .unwrap()
                .as_ref(),
            b"two"
        );
        assert_eq!(packet.attachment(&data[0]), None);
        assert_eq!(packet.attachment(&data[1]["n"]), None);
        assert_eq!(
            placeholder_num(&json!({"_placeholder": false, "num": 0})),
            None
        );
        assert_eq!(placeholder_num(&json!({"num": 0})), None);
    }

    /// `451-...` then `bAQID` in one long-polling payload, through both codecs.
    #[test]
    fn a_binary_event_over_polling() {
        let header = binary(
            Kind::BinaryEvent,
            "/",
            None,
            json!(["hello", placeholder(0)]),
            &[&[1, 2, 3]],
        )
        .encode_message()
        .unwrap();
        let attachment = eio::encode_binary(&[1, 2, 3]);
        let payload = eio::join_payload([header.as_str(), attachment.as_str()]);
        assert_eq!(payload, format!("451-[\"hello\",{PH0}]\u{1e}bAQID"));

        let mut assembler = Assembler::default();
        let mut done = Vec::new();
        for packet in eio::split_payload(&payload) {
            match eio::decode_payload_packet(packet).unwrap() {
                eio::PayloadPacket::Text(frame) => {
                    assert_eq!(frame.kind, eio::Kind::Message);
                    let step = assembler.text(decode(frame.data).unwrap()).unwrap();
                    assert_eq!(step, Assembled::Waiting);
                }
                eio::PayloadPacket::Binary(bytes) => done.extend(assembler.binary(bytes).unwrap()),
            }
        }
        assert_eq!(
            done,
            [binary(
                Kind::BinaryEvent,
                "/",
                None,
                json!(["hello", placeholder(0)]),
                &[&[1, 2, 3]]
            )]
        );
    }

    #[test]
    fn text_packets_pass_and_no_attachment_completes_at_once() {
        let mut assembler = Assembler::default();
        let text = r#"2["x"]"#;
        assert_eq!(
            assembler.text(decode(text).unwrap()),
            Ok(Assembled::Text(decode(text).unwrap()))
        );
        assert_eq!(
            assembler.text(decode(r#"50-/a,["x"]"#).unwrap()),
            Ok(Assembled::Binary(binary(
                Kind::BinaryEvent,
                "/a",
                None,
                json!(["x"]),
                &[]
            )))
        );
        assert!(!assembler.is_waiting());
        let none = binary(Kind::BinaryAck, "/", Some(2), json!([]), &[]);
        assert_eq!(none.encode_message().unwrap(), "460-2[]");
    }

    fn step<'a>(assembler: &mut Assembler, text: &'a str) -> Result<Assembled<'a>, Error> {
        assembler.text(decode(text).unwrap())
    }

    #[test]
    fn what_breaks_the_attachments_protocol_is_an_error() {
        let small = Limits {
            max_attachments: 2,
            max_bytes: 4,
        };

        let mut assembler = Assembler::new(small);
        let three = format!(r#"53-[{PH0},{PH1},{{"_placeholder":true,"num":2}}]"#);
        assert_eq!(
            step(&mut assembler, &three),
            Err(Error::TooManyAttachments {
                announced: 3,
                max: 2
            })
        );

        let two = format!(r#"52-[{PH0},{PH1}]"#);
        assert_eq!(step(&mut assembler, &two), Ok(Assembled::Waiting));
        assert_eq!(assembler.binary(Bytes::from_static(&[1, 2, 3])), Ok(None));
        assert_eq!(
            assembler.binary(Bytes::from_static(&[4, 5])),
            Err(Error::AttachmentsTooLarge(4))
        );
        assert!(!assembler.is_waiting());

        // A binary message with nothing pending, or one more than announced.
        assert_eq!(assembler.binary(Bytes::new()), Err(Error::UnexpectedBinary));
        assert_eq!(
            step(&mut assembler, &format!("51-[{PH0}]")),
            Ok(Assembled::Waiting)
        );
        assert!(assembler.binary(Bytes::new()).unwrap().is_some());
        assert_eq!(assembler.binary(Bytes::new()), Err(Error::UnexpectedBinary));

        // A text packet, binary or not, while attachments are expected.
        for text in [r#"2["x"]"#, "1", two.as_str()] {
            assert_eq!(step(&mut assembler, &two), Ok(Assembled::Waiting));
            assert_eq!(
                step(&mut assembler, text),
                Err(Error::AttachmentsPending),
                "{text}"
            );
            assert!(!assembler.is_waiting());
        }

        for text in [
            r#"51-["x",{"_placeholder":true,"num":1}]"#,
            r#"51-["x",{"_placeholder":true,"num":-1}]"#,
            r#"51-["x",{"_placeholder":true,"num":"0"}]"#,
            r#"51-["x",{"_placeholder":true,"num":0.5}]"#,
            r#"51-["x",{"_placeholder":true}]"#,
            r#"51-{"a":[{"b":{"_placeholder":true,"num":9}}]}"#,
            r#"50-["x",{"_placeholder":true,"num":0}]"#,
        ] {
            assert_eq!(
                step(&mut assembler, text),
                Err(Error::Placeholder),
                "{text}"
            );
        }
        for text in ["51-", "51-[", "51-/a,1", "51-[1]]"] {
            assert!(
                matches!(step(&mut assembler, text), Err(Error::InvalidJson(_))),
                "{text}"
            );
        }
        assert!(!assembler.is_waiting());
    }

    #[test]
    fn binary_packets_that_cannot_be_encoded() {
        let mut packet = binary(
            Kind::Event,
            "/",
            None,
            json!(["x", placeholder(0)]),
            &[b"a"],
        );
        assert_eq!(packet.encode_message(), Err(Error::NotBinary('2')));
        packet.kind = Kind::BinaryEvent;
        assert!(packet.encode_message().is_ok());
        packet.attachments.clear();
        assert_eq!(packet.encode_message(), Err(Error::Placeholder));
        packet.data = json!(["x"]);
        packet.ns = "admin".to_owned();
        assert_eq!(
            packet.encode_message(),
            Err(Error::Namespace("admin".to_owned()))
        );
    }

    /// A message the assembler may see: a text packet (often a binary header) or a binary one.
    #[derive(Debug, Clone)]
    enum Input {
        Text(String),
        Binary(Vec<u8>),
    }

    fn input() -> impl proptest::strategy::Strategy<Value = Input> {
        use proptest::prelude::*;
        prop_oneof![
            "\\PC{0,24}".prop_map(Input::Text),
            (0usize..4, 0u64..4, "(|/a,)(|[0-9])").prop_map(|(count, num, prefix)| Input::Text(
                format!(r#"5{count}-{prefix}["e",{{"_placeholder":true,"num":{num}}}]"#)
            )),
            Just(Input::Text(r#"2["e"]"#.to_owned())),
            proptest::collection::vec(any::<u8>(), 0..4).prop_map(Input::Binary),
        ]
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_text_never_panics(text in "\\PC{0,64}") {
            let _ = decode(&text);
        }

        #[test]
        fn the_assembler_never_panics(
            inputs in proptest::collection::vec(input(), 0..12),
            max_attachments in 0usize..4,
            max_bytes in 0usize..8,
        ) {
            let mut assembler = Assembler::new(Limits { max_attachments, max_bytes });
            for input in inputs {
                match input {
                    Input::Text(text) => {
                        if let Ok(packet) = decode(&text) {
                            let _ = assembler.text(packet);
                        }
                    }
                    Input::Binary(bytes) => {
                        if let Ok(Some(packet)) = assembler.binary(Bytes::from(bytes)) {
                            proptest::prop_assert!(packet.attachments.len() <= max_attachments);
                            let total: usize = packet.attachments.iter().map(Bytes::len).sum();
                            proptest::prop_assert!(total <= max_bytes);
                        }
                    }
                }
            }
        }

        #[test]
        fn encoded_binary_packets_decode_back(
            ns in "(/|/[a-z]{1,8})",
            ack in proptest::option::of(proptest::prelude::any::<u64>()),
            name in "\\PC{0,8}",
            attachments in proptest::collection::vec(
                (proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16), 0usize..3),
                0..5,
            ),
            is_ack in proptest::prelude::any::<bool>(),
            polling in proptest::prelude::any::<bool>(),
        ) {
            // Each placeholder nested 0, 1 or 2 levels deep, in an array or an object.
            let mut args = vec![Value::String(name)];
            for (num, (_, depth)) in attachments.iter().enumerate() {
                args.push(match depth {
                    0 => placeholder(num),
                    1 => json!([num, placeholder(num)]),
                    _ => json!({"file": {"data": placeholder(num)}}),
                });
            }
            let packet = BinaryPacket {
                kind: if is_ack { Kind::BinaryAck } else { Kind::BinaryEvent },
                ns,
                ack,
                data: Value::Array(args),
                attachments: attachments.into_iter().map(|(bytes, _)| Bytes::from(bytes)).collect(),
            };
            let header = packet.encode_message().unwrap();

            let mut assembler = Assembler::default();
            let mut done = Vec::new();
            if polling {
                let binaries: Vec<String> = packet.attachments.iter().map(|a| eio::encode_binary(a)).collect();
                let payload = eio::join_payload(
                    std::iter::once(header.as_str()).chain(binaries.iter().map(String::as_str)),
                );
                for text in eio::split_payload(&payload) {
                    match eio::decode_payload_packet(text).unwrap() {
                        eio::PayloadPacket::Text(frame) => match assembler.text(decode(frame.data).unwrap()).unwrap() {
                            Assembled::Binary(complete) => done.push(complete),
                            step => proptest::prop_assert_eq!(step, Assembled::Waiting),
                        },
                        eio::PayloadPacket::Binary(bytes) => done.extend(assembler.binary(bytes).unwrap()),
                    }
                }
            } else {
                let frame = eio::decode(&header).unwrap();
                match assembler.text(decode(frame.data).unwrap()).unwrap() {
                    Assembled::Binary(complete) => done.push(complete),
                    step => proptest::prop_assert_eq!(step, Assembled::Waiting),
                }
                for attachment in &packet.attachments {
                    done.extend(assembler.binary(attachment.clone()).unwrap());
                }
            }
            proptest::prop_assert!(!assembler.is_waiting());
            proptest::prop_assert_eq!(done, vec![packet]);
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
