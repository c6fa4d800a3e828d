//! Message ids: Redis Stream entry ids (`<ms>-<seq>`), strictly increasing per stream, so
//! they order a room's history and tell a reconnecting client where it stopped.

use std::{
    fmt,
    str::FromStr,
    sync::{Mutex, PoisonError},
};

/// A stream entry id, compared as Redis compares them (milliseconds, then sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct MessageId {
    ms: u64,
    seq: u64,
}

impl MessageId {
    /// The smallest id after this one.
    pub(crate) fn after(self) -> Self {
        match self.seq.checked_add(1) {
            Some(seq) => Self { ms: self.ms, seq },
            None => Self {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

/// The ids this instance gives the messages it stores and publishes in one script (the
/// script cannot publish an id Redis picks: the broadcast is sealed before it runs): the
/// clock's millisecond, or after the last id given when the clock has not moved past it,
/// so that this instance's ids only increase. Another instance may have stored a later
/// entry in the stream: Redis then refuses the id, and the caller tries the one after it.
pub(crate) struct NextIds(Mutex<MessageId>);

impl NextIds {
    /// Ids from the clock on.
    pub(crate) fn new() -> Self {
        Self(Mutex::new(MessageId { ms: 0, seq: 0 }))
    }

    /// The next id, at `now_ms` or after the last one given.
    pub(crate) fn next(&self, now_ms: u64) -> MessageId {
        let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let next = if now_ms > last.ms {
            MessageId { ms: now_ms, seq: 0 }
        } else {
            last.after()
        };
        *last = next;
        next
    }
}

impl FromStr for MessageId {
    type Err = &'static str;

    /// Only the complete form `<ms>-<seq>` (both decimal, no sign): what the server hands out.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const BAD: &str = "not a message id";
        let (ms, seq) = text.split_once('-').ok_or(BAD)?;
        let number = |part: &str| {
            if part.is_empty() || part.len() > 20 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BAD);
            }
            part.parse::<u64>().map_err(|_| BAD)
        };
        Ok(Self {
            ms: number(ms)?,
            seq: number(seq)?,
        })
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_ids_follow_the_clock_and_never_repeat() {
        let ids = NextIds::new();
        let given = [
            ids.next(1_000),
            ids.next(1_000),
            ids.next(999),
            ids.next(1_002),
        ];
        assert_eq!(
            given.map(|id| id.to_string()),
            ["1000-0", "1000-1", "1000-2", "1002-0"]
        );
        let last = MessageId {
            ms: 7,
            seq: u64::MAX,
        };
        assert_eq!(last.after().to_string(), "8-0");
    }

    #[test]
    fn parses_prints_and_orders_like_redis() {
        let id: Result<MessageId, _> = "1733100000000-7".parse();
        assert_eq!(
            id.map(|id| id.to_string()).as_deref(),
            Ok("1733100000000-7")
        );
        let order = ["5-10", "5-9", "6-0"].map(|id| id.parse::<MessageId>());
        assert!(order[1] < order[0] && order[0] < order[2]);
        for bad in [
            "",
            "5",
            "5-",
            "-5",
            "+5-1",
            "a-1",
            "5-1-2",
            "99999999999999999999999-0",
            "$",
            "+",
        ] {
            assert!(bad.parse::<MessageId>().is_err(), "{bad:?}");
        }
    }
}
