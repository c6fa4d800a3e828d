//! Message ids: Redis Stream entry ids (`<ms>-<seq>`), strictly increasing per stream, so
//! they order a room's history and tell a reconnecting client where it stopped.

use std::{fmt, str::FromStr};

/// A stream entry id, compared as Redis compares them (milliseconds, then sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct MessageId {
    ms: u64,
    seq: u64,
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
