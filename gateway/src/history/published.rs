//! A chat line stored and published in one script: on one Redis (not a cluster, whose
//! room channels and tenant streams live in different slots) the script that counts the
//! sender's hit and appends the line also publishes its broadcast, so a line costs one round
//! trip instead of two, and a room's lines go out in the order its stream holds them.
//!
//! The broadcast is encoded (and sealed) before the script runs, so it carries an id this
//! instance chose ([`NextIds`](super::NextIds)); a stream whose last id is later refuses it,
//! and the line is tried again after that id. While refusals are frequent (near saturation)
//! lines are stored under ids Redis picks and published after, as on a cluster.

use redis::Value;
use redis_adapter::Outgoing;

use super::{History, MessageId, Record, Retention};
use crate::{Error, ids::since_epoch, metrics, ratelimit::Rate};

/// Counts the hit (when a rate key is given), then, within the limit, appends the entry under
/// the given id, trims the stream by count and age, renews its expiry and publishes the
/// broadcast. An id not after the stream's last one is refused: nothing is appended or
/// published, and the last id is returned (the newest entry's, or a trimmed one's).
///
/// Follows `COUNT_HIT_LUA`. KEYS: `[rate key,] stream`. ARGV: rate max (0: no limit), window
/// ms, max messages, oldest id kept, expiry ms, id, channel, payload, then the fields.
/// Returns `{0, ms left}` over the limit, `{1, length}` once published, `{2, last id}`
/// for an id refused.
pub(super) const APPEND_PUBLISH_LUA: &str = r"
local added = redis.pcall('XADD', stream, 'MAXLEN', '~', ARGV[3], ARGV[6], unpack(ARGV, 9))
if type(added) == 'table' and added.err then
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      return {2, info[i + 1]}
    end
  end
  return added
end
redis.call('XTRIM', stream, 'MINID', '~', ARGV[4])
redis.call('PEXPIRE', stream, ARGV[5])
redis.call('PUBLISH', ARGV[7], ARGV[8])
return {1, redis.call('XLEN', stream)}
";

/// What [`History::append_publishing`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Publishing {
    /// Stored and published; the stream now holds this many entries.
    Done(u64),
    /// Over the rate limit, nothing stored: the window ends in this many milliseconds.
    Limited(i64),
    /// The id was refused: the stream's last id is this one, not before it.
    Behind(MessageId),
}

impl History {
    /// The id for a line's next try with [`History::append_publishing`], after `refused` (the
    /// stream's last id when the previous try was refused); `None` where a line cannot be
    /// stored and published in one script (a Redis Cluster), or should not try now (ids were
    /// refused often lately: [`Contention`](super::id::Contention)).
    pub(crate) fn own_id(&self, refused: Option<MessageId>) -> Option<MessageId> {
        if !self.publishes || !self.contention.allows_own_id() {
            return None;
        }
        let id = self.ids.next(since_epoch());
        Some(refused.map_or(id, |last| id.max(last.after())))
    }

    /// Appends `record` to `stream` under `id`, after counting a hit on `rate` if given, and
    /// publishes `broadcast` (encoded with that id) in the same script.
    pub(crate) async fn append_publishing(
        &self,
        rate: Option<(&str, Rate)>,
        stream: &str,
        record: &Record,
        retention: Retention,
        id: MessageId,
        broadcast: &Outgoing,
    ) -> Result<Publishing, Error> {
        let mut invocation =
            super::line_invocation(&self.append_publishing, rate, stream, retention);
        invocation
            .arg(id.to_string())
            .arg(&broadcast.channel)
            .arg(&broadcast.payload[..]);
        for (name, value) in record.fields() {
            invocation.arg(name).arg(value);
        }
        let answer: Value = self.store.invoke(&invocation).await?;
        let publishing = decode(&answer).ok_or(Error::Internal(
            "the append-and-publish script answered something else",
        ))?;
        match publishing {
            Publishing::Behind(last) if last < id => {
                return Err(Error::Internal(
                    "Redis refused a message id after its stream's last",
                ));
            }
            Publishing::Behind(_) => {
                self.contention.refused();
                metrics::id_refused();
            }
            Publishing::Done(_) => self.contention.accepted(),
            Publishing::Limited(_) => {}
        }
        Ok(publishing)
    }
}

/// The script's answer, `None` when it has another shape.
fn decode(answer: &Value) -> Option<Publishing> {
    let Value::Array(parts) = answer else {
        return None;
    };
    match parts.as_slice() {
        [Value::Int(0), Value::Int(left)] => Some(Publishing::Limited(*left)),
        [Value::Int(1), Value::Int(length)] => Some(Publishing::Done(u64::try_from(*length).ok()?)),
        [Value::Int(2), Value::BulkString(last)] => Some(Publishing::Behind(
            std::str::from_utf8(last).ok()?.parse().ok()?,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_another_shape_are_none() {
        let int = Value::Int;
        let text = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        assert_eq!(
            decode(&Value::Array(vec![int(1), int(3)])),
            Some(Publishing::Done(3))
        );
        assert_eq!(
            decode(&Value::Array(vec![int(2), text("5-1")])),
            "5-1".parse().ok().map(Publishing::Behind)
        );
        for odd in [
            Value::Nil,
            Value::Array(vec![int(1), int(-1)]),
            Value::Array(vec![int(2), text("not an id")]),
            Value::Array(vec![int(3), int(0)]),
        ] {
            assert_eq!(decode(&odd), None, "{odd:?}");
        }
    }
}
