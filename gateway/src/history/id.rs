//! Message ids: Redis Stream entry ids (`<ms>-<seq>`), strictly increasing per stream, so
//! they order a room's history and tell a reconnecting client where it stopped.

use std::{
    fmt,
    str::FromStr,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

/// A stream entry id, compared as Redis compares them (milliseconds, then sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct MessageId {
    ms: u64,
    seq: u64,
}

impl MessageId {
    /// Its millisecond part.
    pub(crate) fn ms(self) -> u64 {
        self.ms
    }

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
/// clock's millisecond and microsecond, or after the last id given when the clock has not
/// moved past it, so that this instance's ids only increase. Another instance may have
/// stored a later entry in the stream: Redis then refuses the id, and the caller tries the
/// one after it.
pub(crate) struct NextIds(Mutex<MessageId>);

impl NextIds {
    /// Ids from the clock on.
    pub(crate) fn new() -> Self {
        Self(Mutex::new(MessageId { ms: 0, seq: 0 }))
    }

    /// The next id: `now` (since the Unix epoch) as milliseconds and the microseconds within
    /// them, or after the last one given. Microseconds keep two instances' lines of one
    /// millisecond apart, where both would otherwise try sequence 0.
    pub(crate) fn next(&self, now: Duration) -> MessageId {
        let at = MessageId {
            ms: u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
            seq: u64::from(now.subsec_micros() % 1000),
        };
        let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let next = if at > *last { at } else { last.after() };
        *last = next;
        next
    }
}

/// How often the ids this instance chose were refused lately. A refusal comes from another
/// instance's line stored between an id's choice and its script's run, so refusals grow with
/// the time a script waits: near saturation each one adds a round trip, which makes scripts
/// wait longer, which brings more refusals. Past a threshold (more than one refusal in 33
/// tries, where a line usually meets one in a few hundred), lines take ids Redis picks, as
/// on a cluster, until enough of them went by.
pub(crate) struct Contention(AtomicU32);

/// What a refusal adds to the pressure; an accepted id takes 1 off, and so does each line
/// that does not try.
const REFUSAL_WEIGHT: u32 = 32;
/// The pressure above which lines do not try an id of this instance's.
const PRESSURE_LIMIT: u32 = 32;
/// The most pressure kept: after a run of refusals, at most this many lines go by untried.
const MAX_PRESSURE: u32 = 1024;

impl Contention {
    /// No refusal yet.
    pub(crate) fn new() -> Self {
        Self(AtomicU32::new(0))
    }

    /// Whether the next try may use an id of this instance's; when not, the pressure eases.
    pub(crate) fn allows_own_id(&self) -> bool {
        let eased = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |pressure| {
                (pressure > PRESSURE_LIMIT).then(|| pressure - 1)
            });
        eased.is_err()
    }

    /// An id was refused.
    pub(crate) fn refused(&self) {
        self.update(|pressure| (pressure + REFUSAL_WEIGHT).min(MAX_PRESSURE));
    }

    /// An id was accepted.
    pub(crate) fn accepted(&self) {
        self.update(|pressure| pressure.saturating_sub(1));
    }

    fn update(&self, change: impl Fn(u32) -> u32) {
        // The closure always answers, so the update always succeeds.
        let _updated = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |pressure| {
                Some(change(pressure))
            });
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
    fn frequent_refusals_pause_own_ids_for_a_while() {
        let contention = Contention::new();
        // One refusal in 40 tries: below the threshold, every line tries.
        for _ in 0..100 {
            contention.refused();
            for _ in 0..39 {
                assert!(contention.allows_own_id());
                contention.accepted();
            }
        }
        // Tries refused back to back: past the threshold, lines stop trying until the
        // pressure eased.
        for _ in 0..2 {
            assert!(contention.allows_own_id());
            contention.refused();
        }
        let untried = std::iter::repeat_with(|| contention.allows_own_id())
            .take_while(|allowed| !allowed)
            .count();
        assert_eq!(
            untried,
            2 * REFUSAL_WEIGHT as usize - PRESSURE_LIMIT as usize
        );
    }

    #[test]
    fn next_ids_follow_the_clock_and_never_repeat() {
        let ids = NextIds::new();
        let at = |micros: u64| ids.next(Duration::from_micros(micros)).to_string();
        let given = [at(1_000_250), at(1_000_250), at(999_000), at(1_002_000)];
        assert_eq!(given, ["1000-250", "1000-251", "1000-252", "1002-0"]);
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
