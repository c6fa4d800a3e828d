//! Durable rooms: every chat `message` and `dm` is appended to a Redis Stream (one per tenant
//! room, one per conversation) before the sender's ack, and the stream entry id is the
//! message id. Streams are bounded per tenant by count and by age, and a stream left without
//! a message for the whole age expires.
//!
//! One message costs one script call here: it counts the sender's rate-limit hit and, when
//! within the limit, appends and trims (the rate counter and the stream share the tenant's
//! hash tag, so this holds on Redis Cluster too); the fan-out is the adapter's one publish.
//! Reads are a page of history (`XREVRANGE`) and the replay after a client's last seen id.

mod id;
mod record;
mod spooled;

use std::time::Duration;

use redis::{Script, Value};

pub(crate) use id::MessageId;
pub(crate) use record::{Message, Record};
pub(crate) use spooled::{Audience, Spooled};

use crate::{
    Error,
    ids::now_ms,
    ratelimit::{Rate, WINDOW_LUA, window_ms},
    spool::{Full, Spool},
    store::Store,
};

/// Most messages one `history` page or one replay read returns.
pub(crate) const PAGE_MAX: usize = 100;
/// How many of a stream's newest entries a retried write looks through for itself.
const RETRY_WINDOW: usize = 100;

/// Counts the hit (when a rate key is given), then, within the limit, appends the entry and
/// trims the stream by count and age, and renews its expiry. With `dedupe`, an entry of the
/// same `key` among the newest ones is the message already stored by an earlier attempt
/// whose answer was lost: its id is returned and nothing is appended.
///
/// KEYS: `[rate key,] stream`. ARGV: rate max (0: no limit), window ms, max messages, oldest
/// id kept, expiry ms, how many newest entries to look through for `key` (0: none), then the
/// fields (`key` and its value first).
/// Returns `{0, ms left}` over the limit, else `{1, id, length}`.
const APPEND_LUA: &str = r"
local stream = KEYS[#KEYS]
if tonumber(ARGV[1]) > 0 then
  local hit = window(KEYS[1], ARGV[2])
  if hit[1] > tonumber(ARGV[1]) then
    return {0, hit[2]}
  end
end
if tonumber(ARGV[6]) > 0 then
  local recent = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', ARGV[6])
  for _, entry in ipairs(recent) do
    local fields = entry[2]
    if fields[1] == 'key' and fields[2] == ARGV[8] then
      return {1, entry[1], redis.call('XLEN', stream)}
    end
  end
end
local fields = {}
for i = 7, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
redis.call('XTRIM', stream, 'MINID', '~', ARGV[4])
redis.call('PEXPIRE', stream, ARGV[5])
return {1, id, redis.call('XLEN', stream)}
";

/// How long a tenant keeps its rooms' and conversations' messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention {
    /// Messages kept per stream (trimmed approximately: Redis drops whole blocks).
    pub(crate) messages: u32,
    /// Age beyond which messages are dropped.
    pub(crate) age: Duration,
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
    spool: Spool<Spooled>,
}

impl History {
    /// Streams in `store`; at most `spool_capacity` messages spooled.
    pub(crate) fn new(store: Store, spool_capacity: usize) -> Self {
        Self {
            store,
            append: Script::new(&format!("{WINDOW_LUA}{APPEND_LUA}")),
            spool: Spool::new(spool_capacity),
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
    /// given. `retry` marks a write that may already have taken effect (from the spool).
    pub(crate) async fn append(
        &self,
        rate: Option<(&str, Rate)>,
        stream: &str,
        record: &Record,
        retention: Retention,
        retry: bool,
    ) -> Result<Appended, Error> {
        let mut invocation = self.append.prepare_invoke();
        let (max, window) = match rate {
            Some((key, rate)) => {
                invocation.key(key);
                (rate.max, window_ms(rate))
            }
            None => (0, 0),
        };
        let age_ms = u64::try_from(retention.age.as_millis()).unwrap_or(u64::MAX);
        invocation
            .key(stream)
            .arg(max)
            .arg(window)
            .arg(retention.messages)
            .arg(format!("{}-0", now_ms().saturating_sub(age_ms)))
            .arg(age_ms.max(1))
            .arg(if retry { RETRY_WINDOW } else { 0 });
        for (name, value) in record.fields() {
            invocation.arg(name).arg(value);
        }
        let answer: Value = self.store.invoke(&invocation).await?;
        decode_append(&answer).ok_or(Error::Internal("the append script answered something else"))
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
}

/// `XRANGE` of at most [`PAGE_MAX`] entries of `stream` after id `after` (exclusive).
fn page_after(stream: &str, after: &str) -> redis::Cmd {
    let mut command = redis::cmd("XRANGE");
    command
        .arg(stream)
        .arg(format!("({after}"))
        .arg("+")
        .arg("COUNT")
        .arg(PAGE_MAX);
    command
}

/// Entries in an `XRANGE` answer, decodable or not.
fn count_of(answer: &Value) -> usize {
    match answer {
        Value::Array(entries) => entries.len(),
        _ => 0,
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
