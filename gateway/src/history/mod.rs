//! Durable rooms: every chat `message` and `dm` is appended to a Redis Stream (one per tenant
//! room, one per conversation) before the sender's ack, and the stream entry id is the
//! message id. Streams are bounded per tenant by count and by age, and a stream left without
//! a message for the whole age expires.
//!
//! One message costs one script call here: it counts the sender's rate-limit hit and, when
//! within the limit, appends and trims (the rate counter and the stream share the tenant's
//! hash tag, so this holds on Redis Cluster too). On one Redis the same script publishes
//! the line's broadcast (`published`); on a cluster the fan-out is the adapter's publish.
//! Reads are a page of history (`XREVRANGE`) and the replay after a client's last seen id.
//! The publish API's stored messages take the same streams through [`History::append_all`]:
//! a whole batch in one script, and never the spool.

mod id;
mod published;
mod record;
mod spooled;

use std::time::Duration;

use redis::{Script, ScriptInvocation, Value};
use serde::Serialize;

pub(crate) use id::MessageId;
use id::{Contention, NextIds};
pub(crate) use published::Publishing;
pub(crate) use record::{Message, Record, stamped_id};
pub(crate) use spooled::{Audience, Spooled};

use crate::{
    Error,
    ids::now_ms,
    metrics,
    ratelimit::{Rate, WINDOW_LUA, window_ms},
    refusal::Refusal,
    spool::{Full, Spool},
    store::Store,
};

/// Most messages one `history` page or one replay read returns.
pub(crate) const PAGE_MAX: usize = 100;
/// Messages per `history` page when the client does not say.
pub(crate) const PAGE_DEFAULT: usize = 50;
/// How many of a stream's newest entries a retried write looks through for itself.
const RETRY_WINDOW: usize = 100;

/// A Lua function `append(stream, max messages, oldest id kept, expiry ms, fields...)`:
/// appends one entry, trims the stream by count and age, renews its expiry; returns the
/// entry's id. Shared by the chat's one-message script and the publish API's batches.
const APPEND_FN_LUA: &str = r"
local function append(stream, maxlen, minid, expiry, ...)
  local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', ...)
  redis.call('XTRIM', stream, 'MINID', '~', minid)
  redis.call('PEXPIRE', stream, expiry)
  return id
end
";

/// The start of the scripts that count a sender's hit before they store: `stream` is the last
/// key; with a rate max (> 0) in `ARGV[1]` and its window in ms in `ARGV[2]`, a hit is counted
/// on `KEYS[1]` ([`WINDOW_LUA`]), and over the limit the script returns `{0, ms left}`.
const COUNT_HIT_LUA: &str = r"
local stream = KEYS[#KEYS]
if tonumber(ARGV[1]) > 0 and hit(KEYS[1], ARGV[2], '1') > tonumber(ARGV[1]) then
  return {0, left(KEYS[1], ARGV[2])}
end
";

/// Counts the hit (when a rate key is given), then, within the limit, appends the entry and
/// trims the stream by count and age, and renews its expiry.
///
/// KEYS: `[rate key,] stream`. ARGV: rate max (0: no limit), window ms, max messages, oldest
/// id kept, expiry ms, then the fields (`key` and its value first).
/// Returns `{0, ms left}` over the limit, else `{1, id, length}`.
const APPEND_LUA: &str = r"
local id = append(stream, ARGV[3], ARGV[4], ARGV[5], unpack(ARGV, 6))
return {1, id, redis.call('XLEN', stream)}
";

/// Appends several entries at once, in order (the publish API's batches: every stream is one
/// tenant's, so they share its hash tag and the script one slot). With dedupe, each stream's
/// newest entries (as many as it gets here, plus [`RETRY_WINDOW`]) are read once first, and an
/// entry whose `key` is among them is not appended again: its id is returned.
///
/// KEYS: the stream of each entry (repeated for entries of one stream). ARGV: max messages,
/// oldest id kept, expiry ms, dedupe (1 or 0), arguments per entry, extra entries to look
/// through, then each entry's fields (`key` and its value first). Returns `{id, length,
/// found, ...}` per entry, `found` 1 for an entry an earlier attempt stored.
const APPEND_ALL_LUA: &str = r"
local width = tonumber(ARGV[5])
local known = {}
if ARGV[4] == '1' then
  local per_stream = {}
  for i = 1, #KEYS do
    per_stream[KEYS[i]] = (per_stream[KEYS[i]] or 0) + 1
  end
  for i = 1, #KEYS do
    local stream = KEYS[i]
    if known[stream] == nil then
      local keys = {}
      local count = per_stream[stream] + tonumber(ARGV[6])
      for _, entry in ipairs(redis.call('XREVRANGE', stream, '+', '-', 'COUNT', count)) do
        local fields = entry[2]
        if fields[1] == 'key' then
          keys[fields[2]] = entry[1]
        end
      end
      known[stream] = keys
    end
  end
end
local out = {}
for i = 1, #KEYS do
  local stream = KEYS[i]
  local first = 7 + (i - 1) * width
  local id = known[stream] and known[stream][ARGV[first + 1]]
  local found = 1
  if not id then
    id = append(stream, ARGV[1], ARGV[2], ARGV[3], unpack(ARGV, first, first + width - 1))
    found = 0
  end
  out[#out + 1] = id
  out[#out + 1] = redis.call('XLEN', stream)
  out[#out + 1] = found
end
return out
";

/// How long a tenant keeps its rooms' and conversations' messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention {
    /// Messages kept per stream (trimmed approximately: Redis drops whole blocks).
    pub(crate) messages: u32,
    /// Age beyond which messages are dropped.
    pub(crate) age: Duration,
}

/// An entry of [`History::append_all`]: its id, its stream's length after the script, and
/// whether an earlier attempt had stored it (found by its `key`, not appended again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) id: String,
    pub(crate) length: u64,
    pub(crate) found: bool,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Stored under this id; the stream now holds `length` entries.
    Stored { id: String, length: u64 },
    /// Over the rate limit, nothing stored: the window ends in this many milliseconds.
    Limited(i64),
}

/// A page of history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    /// The messages, as `(id, record)`, oldest first.
    pub(crate) entries: Vec<(String, Record)>,
    /// Whether older messages exist.
    pub(crate) more: bool,
}

/// What a replay after a client's last seen id found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Every message after the id, in order (the id itself is still kept, so nothing after
    /// it was trimmed).
    Complete(Vec<(String, Record)>),
    /// The id is no longer kept (older than retention, or the stream was lost): what
    /// followed it may be gone, and nothing is replayed.
    Lost,
}

/// The message streams on the shared Redis, and the spool of messages accepted while Redis
/// could not store them.
pub(crate) struct History {
    store: Store,
    append: Script,
    append_all: Script,
    append_publishing: Script,
    /// Whether a line's script publishes it too (one Redis, not a cluster).
    publishes: bool,
    ids: NextIds,
    contention: Contention,
    spool: Spool<Spooled>,
}

impl History {
    /// Streams in `store`; at most `spool_capacity` messages spooled.
    pub(crate) fn new(store: Store, spool_capacity: usize) -> Self {
        Self {
            append: Script::new(&format!(
                "{WINDOW_LUA}{APPEND_FN_LUA}{COUNT_HIT_LUA}{APPEND_LUA}"
            )),
            append_all: Script::new(&format!("{APPEND_FN_LUA}{APPEND_ALL_LUA}")),
            append_publishing: Script::new(&format!(
                "{WINDOW_LUA}{COUNT_HIT_LUA}{}",
                published::APPEND_PUBLISH_LUA
            )),
            publishes: !store.redis().is_cluster(),
            ids: NextIds::new(),
            contention: Contention::new(),
            spool: Spool::new(spool_capacity),
            store,
        }
    }

    /// Spools `message`, refused when the spool is full.
    pub(crate) fn spool(&self, message: &Spooled) -> Result<(), Full> {
        self.spool.push(message.clone())
    }

    /// The spooled messages: drained by `chat::spooled`.
    pub(crate) fn spooled(&self) -> &Spool<Spooled> {
        &self.spool
    }

    /// The key names.
    pub(crate) fn keys(&self) -> &crate::keys::Keys {
        self.store.keys()
    }

    /// Appends `record` to `stream`, after counting a hit on `rate` (its key and limit) if
    /// given; the caller publishes it. Counted on one Redis, where the line could have been
    /// published by the script that stored it ([`History::append_publishing`]).
    pub(crate) async fn append(
        &self,
        rate: Option<(&str, Rate)>,
        stream: &str,
        record: &Record,
        retention: Retention,
    ) -> Result<Appended, Error> {
        let mut invocation = line_invocation(&self.append, rate, stream, retention);
        for (name, value) in record.fields() {
            invocation.arg(name).arg(value);
        }
        let answer: Value = self.store.invoke(&invocation).await?;
        let appended = decode_append(&answer)
            .ok_or(Error::Internal("the append script answered something else"))?;
        if self.publishes && matches!(appended, Appended::Stored { .. }) {
            metrics::published_after_store();
        }
        Ok(appended)
    }

    /// Appends every `(stream, record)` of `entries`, in order, in one script (the streams
    /// must share a hash tag: one tenant's), with no rate limit and no spool: when Redis
    /// cannot take them, nothing is appended and the error says why. With `dedupe`, a record
    /// whose `key` is already among its stream's newest entries (an earlier attempt of the
    /// same request) is not appended again. Returns what became of each entry.
    pub(crate) async fn append_all(
        &self,
        entries: &[(String, Record)],
        retention: Retention,
        dedupe: bool,
    ) -> Result<Vec<Written>, Error> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.append_all.prepare_invoke();
        let (minid, age_ms) = retention_args(retention);
        invocation
            .arg(retention.messages)
            .arg(minid)
            .arg(age_ms)
            .arg(u8::from(dedupe))
            .arg(2 * record::FIELD_COUNT)
            .arg(RETRY_WINDOW);
        for (stream, record) in entries {
            invocation.key(stream);
            for (name, value) in record.fields() {
                invocation.arg(name).arg(value);
            }
        }
        let answer: Value = self.store.invoke(&invocation).await?;
        decode_append_all(&answer, entries.len()).ok_or(Error::Internal(
            "the batch append script answered something else",
        ))
    }

    /// At most `limit` messages of `stream` older than `before` (the newest ones without it),
    /// oldest first.
    pub(crate) async fn page(
        &self,
        stream: &str,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<(Page, usize), Error> {
        let limit = limit.clamp(1, PAGE_MAX);
        let end = before.map_or_else(|| "+".to_owned(), |id| format!("({id}"));
        let mut command = redis::cmd("XREVRANGE");
        command
            .arg(stream)
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(limit + 1);
        let answer: Value = self.store.query(&command).await?;
        let mut skipped = 0;
        let mut entries = record::entries(&answer, &mut skipped);
        let more = entries.len() > limit;
        entries.truncate(limit);
        entries.reverse();
        Ok((Page { entries, more }, skipped))
    }

    /// Every message of `stream` after `since`, read `PAGE_MAX` at a time, at most `max`.
    pub(crate) async fn replay(
        &self,
        stream: &str,
        since: MessageId,
        max: usize,
    ) -> Result<(Replay, usize), Error> {
        let mut pipe = redis::pipe();
        pipe.cmd("XRANGE")
            .arg(stream)
            .arg(since.to_string())
            .arg(since.to_string());
        pipe.add_command(page_after(stream, &since.to_string()));
        let (kept, mut page): (Value, Value) = self.store.pipeline(&pipe).await?;
        if !matches!(&kept, Value::Array(entries) if !entries.is_empty()) {
            return Ok((Replay::Lost, 0));
        }
        let mut skipped = 0;
        let mut entries = Vec::new();
        loop {
            entries.extend(record::entries(&page, &mut skipped));
            // The next page starts after the last entry read, decodable or not.
            let last = match record::last_id(&page) {
                Some(last) if count_of(&page) == PAGE_MAX && entries.len() < max => last,
                _ => break,
            };
            page = self.store.query(&page_after(stream, &last)).await?;
        }
        entries.truncate(max);
        Ok((Replay::Complete(entries), skipped))
    }

    /// The messages of `stream` whose id is from millisecond `from_ms` on, oldest first, at
    /// most `max` (one read), and how many entries did not decode.
    pub(crate) async fn lines_from(
        &self,
        stream: &str,
        from_ms: u64,
        max: usize,
    ) -> Result<(Vec<(String, Record)>, usize), Error> {
        let command = range_from(stream, &format!("{from_ms}-0"), max);
        let answer: Value = self.store.query(&command).await?;
        let mut skipped = 0;
        let entries = record::entries(&answer, &mut skipped);
        Ok((entries, skipped))
    }
}

/// An invocation of `script`, a script that starts with [`COUNT_HIT_LUA`] and appends a line to
/// `stream`: its keys (`rate`'s key if given, then `stream`) and first five arguments (the
/// rate's limit and window in ms, `0, 0` for none; `retention`'s messages, oldest id kept
/// and age in ms).
fn line_invocation<'a>(
    script: &'a Script,
    rate: Option<(&str, Rate)>,
    stream: &str,
    retention: Retention,
) -> ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    let (max, window) = match rate {
        Some((key, rate)) => {
            invocation.key(key);
            (rate.max, window_ms(rate))
        }
        None => (0, 0),
    };
    let (minid, age_ms) = retention_args(retention);
    invocation
        .key(stream)
        .arg(max)
        .arg(window)
        .arg(retention.messages)
        .arg(minid)
        .arg(age_ms);
    invocation
}

/// The oldest id `retention` keeps now, and its age in ms (at least 1), for a script's
/// arguments.
fn retention_args(retention: Retention) -> (String, u64) {
    let age_ms = u64::try_from(retention.age.as_millis()).unwrap_or(u64::MAX);
    (
        format!("{}-0", now_ms().saturating_sub(age_ms)),
        age_ms.max(1),
    )
}

/// `XRANGE` of at most [`PAGE_MAX`] entries of `stream` after id `after` (exclusive).
fn page_after(stream: &str, after: &str) -> redis::Cmd {
    range_from(stream, &format!("({after}"), PAGE_MAX)
}

/// `XRANGE` of at most `count` entries of `stream` from `start` (an id, `(` before it to
/// leave it out) on.
fn range_from(stream: &str, start: &str, count: usize) -> redis::Cmd {
    let mut command = redis::cmd("XRANGE");
    command
        .arg(stream)
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(count);
    command
}

/// Entries in an `XRANGE` answer, decodable or not.
fn count_of(answer: &Value) -> usize {
    match answer {
        Value::Array(entries) => entries.len(),
        _ => 0,
    }
}

/// The batch append script's answer for `count` entries, `None` when it has another shape.
fn decode_append_all(answer: &Value, count: usize) -> Option<Vec<Written>> {
    let Value::Array(parts) = answer else {
        return None;
    };
    if parts.len() != 3 * count {
        return None;
    }
    parts
        .chunks_exact(3)
        .map(|entry| match entry {
            [Value::BulkString(id), Value::Int(length), Value::Int(found)] => Some(Written {
                id: String::from_utf8(id.clone()).ok()?,
                length: u64::try_from(*length).ok()?,
                found: *found == 1,
            }),
            _ => None,
        })
        .collect()
}

/// Where a page of history ends and how long it is, from a client's `before` (a message id,
/// exclusive) and `limit` (1 to [`PAGE_MAX`], [`PAGE_DEFAULT`] when absent): the `history`
/// event and `GET /api/v1/rooms/{room}/history` read them alike.
pub(crate) fn page_bounds(
    before: Option<&str>,
    limit: Option<usize>,
) -> Result<(Option<MessageId>, usize), Refusal> {
    let limit = limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(Refusal::InvalidPayload(format!("limit: 1 to {PAGE_MAX}")));
    }
    let before = before
        .map(str::parse::<MessageId>)
        .transpose()
        .map_err(|err| Refusal::InvalidPayload(format!("before: {err}")))?;
    Ok((before, limit))
}

/// A page of history as clients receive it: `{messages, more}`.
#[derive(Debug, Serialize)]
pub(crate) struct Messages {
    /// The messages, oldest first.
    pub(crate) messages: Vec<Message>,
    /// Whether older messages exist.
    pub(crate) more: bool,
}

impl Page {
    /// The page as clients receive it, its messages in client room `room` (`None`: a
    /// conversation).
    pub(crate) fn into_messages(self, room: Option<&str>) -> Messages {
        Messages {
            messages: self
                .entries
                .into_iter()
                .map(|(id, record)| Message::new(record, Some(id), room))
                .collect(),
            more: self.more,
        }
    }
}

/// The append script's answer, `None` when it has another shape.
fn decode_append(answer: &Value) -> Option<Appended> {
    let Value::Array(parts) = answer else {
        return None;
    };
    match parts.as_slice() {
        [Value::Int(0), Value::Int(left)] => Some(Appended::Limited(*left)),
        [Value::Int(1), Value::BulkString(id), Value::Int(length)] => Some(Appended::Stored {
            id: String::from_utf8(id.clone()).ok()?,
            length: u64::try_from(*length).ok()?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_answer_says_each_entry_and_whether_it_was_found_or_is_none() {
        let text = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let answer = Value::Array(vec![
            text("5-1"),
            Value::Int(7),
            Value::Int(1),
            text("5-2"),
            Value::Int(8),
            Value::Int(0),
        ]);
        let written = |id: &str, length, found| Written {
            id: id.to_owned(),
            length,
            found,
        };
        assert_eq!(
            decode_append_all(&answer, 2),
            Some(vec![written("5-1", 7, true), written("5-2", 8, false)])
        );
        for (odd, count) in [
            (answer.clone(), 3),
            (Value::Array(vec![text("5-1"), Value::Int(7)]), 1),
            (
                Value::Array(vec![text("5-1"), Value::Int(-1), Value::Int(0)]),
                1,
            ),
            (Value::Nil, 0),
        ] {
            assert_eq!(decode_append_all(&odd, count), None, "{odd:?}");
        }
    }
}
