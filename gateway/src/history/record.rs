//! What a room or conversation stream keeps of one message, and the message as clients
//! receive it (in the `message` and `dm` events, in `history` and in replays).

use redis::Value;
use serde::{Deserialize, Serialize};

use super::MessageId;

/// One stored message: the fields of its stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// Unique per message, assigned by the instance that accepted it (matches a message
    /// spooled through an outage with its later id, and makes a retried write idempotent).
    pub(crate) key: String,
    /// The sender's display name.
    pub(crate) from: String,
    /// The sender's user id.
    pub(crate) user: String,
    /// The text.
    pub(crate) text: String,
    /// When it was accepted, ms since the epoch.
    pub(crate) ts: u64,
}

/// Fields of a stream entry.
pub(crate) const FIELD_COUNT: usize = 5;
/// Field names in the stream entry, `key` first (the scripts that find a message again by
/// its key read the first field).
const FIELDS: [&str; FIELD_COUNT] = ["key", "from", "user", "text", "ts"];

impl Record {
    /// The entry's fields as `XADD` arguments: name, value, name, value...
    pub(crate) fn fields(&self) -> [(&'static str, String); FIELD_COUNT] {
        let [key, from, user, text, ts] = FIELDS;
        [
            (key, self.key.clone()),
            (from, self.from.clone()),
            (user, self.user.clone()),
            (text, self.text.clone()),
            (ts, self.ts.to_string()),
        ]
    }

    /// The record of a stream entry's fields, `None` when one is missing or malformed (an
    /// entry this gateway did not write).
    fn from_fields(fields: &[Value]) -> Option<Self> {
        let mut found: [Option<String>; FIELD_COUNT] = Default::default();
        for pair in fields.chunks_exact(2) {
            let (Value::BulkString(name), Value::BulkString(value)) = (&pair[0], &pair[1]) else {
                return None;
            };
            let at = FIELDS
                .iter()
                .position(|field| field.as_bytes() == name.as_slice())?;
            found[at] = Some(String::from_utf8(value.clone()).ok()?);
        }
        let [key, from, user, text, ts] = found;
        Some(Self {
            key: key?,
            from: from?,
            user: user?,
            text: text?,
            ts: ts?.parse().ok()?,
        })
    }
}

/// A stored message as clients receive it: `{room, id, key, from, user, text, ts}`; `room`
/// only for room messages, `id` `None` (with `pending: true`) while spooled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Message {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) room: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) key: String,
    pub(crate) from: String,
    pub(crate) user: String,
    pub(crate) text: String,
    pub(crate) ts: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) pending: bool,
}

impl Message {
    /// The message of `record`, stored as `id` (`None`: spooled), in client room `room`.
    pub(crate) fn new(record: Record, id: Option<String>, room: Option<&str>) -> Self {
        Self {
            room: room.map(str::to_owned),
            pending: id.is_none(),
            id,
            key: record.key,
            from: record.from,
            user: record.user,
            text: record.text,
            ts: record.ts,
        }
    }
}

/// The part of a `message` event's payload that says which message it is.
#[derive(Deserialize)]
struct Stamped {
    id: Option<String>,
}

/// The id of the message a `message` event carries, from the event's JSON (`["message",
/// {"id": ...}]`); `None` for another event, a pending message (no id yet), or anything that
/// does not parse.
pub(crate) fn stamped_id(data: &str) -> Option<MessageId> {
    match serde_json::from_str::<(String, Stamped)>(data).ok()? {
        (event, Stamped { id: Some(id) }) if event == "message" => id.parse().ok(),
        _ => None,
    }
}

/// The messages of an `XRANGE`/`XREVRANGE` answer, as `(id, record)`; entries that do not
/// decode are skipped and counted in `skipped`.
pub(crate) fn entries(answer: &Value, skipped: &mut usize) -> Vec<(String, Record)> {
    let Value::Array(entries) = answer else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let decoded = match entry {
            Value::Array(parts) => match parts.as_slice() {
                [Value::BulkString(id), Value::Array(fields)] => String::from_utf8(id.clone())
                    .ok()
                    .zip(Record::from_fields(fields)),
                _ => None,
            },
            _ => None,
        };
        match decoded {
            Some(decoded) => out.push(decoded),
            None => *skipped += 1,
        }
    }
    out
}

/// The id of the last entry of an `XRANGE` answer, whether or not it decodes as a message.
pub(crate) fn last_id(answer: &Value) -> Option<String> {
    let Value::Array(entries) = answer else {
        return None;
    };
    match entries.last()? {
        Value::Array(parts) => match parts.first()? {
            Value::BulkString(id) => String::from_utf8(id.clone()).ok(),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn entries_round_trip_and_garbage_is_skipped() {
        let record = Record {
            key: "k1".into(),
            from: "Alice".into(),
            user: "alice".into(),
            text: "hi".into(),
            ts: 42,
        };
        let fields: Vec<Value> = record
            .fields()
            .iter()
            .flat_map(|(name, value)| [bulk(name), bulk(value)])
            .collect();
        let answer = Value::Array(vec![
            Value::Array(vec![bulk("1-0"), Value::Array(fields)]),
            Value::Array(vec![bulk("2-0"), Value::Array(vec![bulk("key")])]),
            bulk("garbage"),
            Value::Array(vec![bulk("3-0"), Value::Array(vec![bulk("ts"), bulk("x")])]),
        ]);
        let mut skipped = 0;
        assert_eq!(entries(&answer, &mut skipped), [("1-0".to_owned(), record)]);
        assert_eq!(skipped, 3);
        // The last entry does not decode as a message, but the next page starts after it.
        assert_eq!(last_id(&answer), Some("3-0".to_owned()));
        assert_eq!(last_id(&Value::Array(Vec::new())), None);
    }
}
