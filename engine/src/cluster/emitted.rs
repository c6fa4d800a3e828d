//! The Socket.IO Redis emitter's operations on the engine's sockets: an emit's msgpack
//! arguments as the Socket.IO packet (binary arguments become attachments), and the local
//! sockets a selection reaches.

use bytes::Bytes;
use serde_json::{Map, Number, Value};

use crate::{
    Error,
    server::Packet,
    sio::{self, BinaryPacket, Kind},
};

/// How deep an emitter argument may nest; deeper values arrive as `null`.
const MAX_DEPTH: usize = 32;

/// The packets of `event(...args)` in namespace `ns`: one text packet, or a binary packet
/// and its attachments.
pub(crate) fn event_packets(
    ns: &str,
    event: &str,
    args: &[rmpv::Value],
) -> Result<Vec<Packet>, Error> {
    let mut attachments = Vec::new();
    let data: Vec<Value> = std::iter::once(Value::from(event))
        .chain(args.iter().map(|arg| json(arg, &mut attachments, 0)))
        .collect();
    if attachments.is_empty() {
        let text = sio::encode_message(Kind::Event, ns, None, Some(&data))?;
        return Ok(vec![Packet::Text(text.into())]);
    }
    let packet = BinaryPacket {
        kind: Kind::BinaryEvent,
        ns: ns.to_owned(),
        ack: None,
        data: Value::Array(data),
        attachments,
    };
    let header = packet.encode_message()?;
    Ok(std::iter::once(Packet::Text(header.into()))
        .chain(packet.attachments.into_iter().map(Packet::Binary))
        .collect())
}

/// A msgpack value as JSON; binary values become placeholders for `attachments`.
fn json(value: &rmpv::Value, attachments: &mut Vec<Bytes>, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match value {
        rmpv::Value::Nil | rmpv::Value::Ext(..) => Value::Null,
        rmpv::Value::Boolean(b) => Value::Bool(*b),
        rmpv::Value::Integer(i) => i
            .as_i64()
            .map(Value::from)
            .or_else(|| i.as_u64().map(Value::from))
            .unwrap_or(Value::Null),
        rmpv::Value::F32(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        rmpv::Value::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        rmpv::Value::String(s) => Value::String(s.as_str().unwrap_or_default().to_owned()),
        rmpv::Value::Binary(bytes) => {
            attachments.push(Bytes::copy_from_slice(bytes));
            sio::placeholder(attachments.len() - 1)
        }
        rmpv::Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| json(item, attachments, depth + 1))
                .collect(),
        ),
        rmpv::Value::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| (key_name(key), json(value, attachments, depth + 1)))
                .collect::<Map<String, Value>>(),
        ),
    }
}

/// A map key as a JSON object key (JavaScript's own conversion for numbers and booleans).
fn key_name(key: &rmpv::Value) -> String {
    match key {
        rmpv::Value::String(s) => s.as_str().unwrap_or_default().to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_emit_becomes_the_packet_a_node_server_would_send() {
        let args = [rmpv::Value::Map(vec![(
            rmpv::Value::from("text"),
            rmpv::Value::from("hi"),
        )])];
        let packets = event_packets("/", "message", &args).unwrap();
        assert_eq!(
            packets,
            [Packet::Text(Bytes::from_static(
                br#"42["message",{"text":"hi"}]"#
            ))]
        );
        let binary = [rmpv::Value::Binary(vec![1, 2])];
        let packets = event_packets("/", "file", &binary).unwrap();
        assert_eq!(
            packets,
            [
                Packet::Text(Bytes::from_static(
                    br#"451-["file",{"_placeholder":true,"num":0}]"#
                )),
                Packet::Binary(Bytes::from_static(&[1, 2])),
            ]
        );
    }
}
