//! What the publish queue holds, per channel: a burst on one channel (one room) may fill
//! only its share of the queue, so the other rooms' publishes still get in while it lasts,
//! and the queue's bytes are bounded whatever the messages' sizes.
//!
//! Channels are counted in [`BUCKETS`] buckets by a hash of their name (lock-free, no
//! allocation): two channels in one bucket share its allowance, which only makes the
//! bound stricter.

use std::{
    hash::{BuildHasher, RandomState},
    sync::atomic::{AtomicUsize, Ordering},
};

/// Buckets channels are counted in.
pub(crate) const BUCKETS: usize = 1024;

/// Why a message did not get into the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// The queue holds `publish_queue_capacity` messages.
    Messages,
    /// The queue's bytes would pass `publish_queue_max_bytes`.
    Bytes,
    /// The channel's bucket would pass its share of the queue.
    Share,
}

impl Over {
    /// What was full, for the log.
    pub fn reason(self) -> &'static str {
        match self {
            Over::Messages => "publish_queue_capacity messages",
            Over::Bytes => "publish_queue_max_bytes",
            Over::Share => "the channel's share (publish_channel_share)",
        }
    }
}

/// Messages and bytes in the queue, in total and per bucket of channels.
pub(crate) struct Shares {
    hasher: RandomState,
    max_bytes: usize,
    /// Most messages one bucket may have queued.
    share_messages: usize,
    /// Most bytes one bucket may have queued.
    share_bytes: usize,
    bytes: AtomicUsize,
    buckets: [(AtomicUsize, AtomicUsize); BUCKETS],
}

/// A message's place in the counts, given back with [`Shares::release`] when it leaves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Taken {
    bucket: usize,
    bytes: usize,
}

impl Shares {
    /// Counts for a queue of `capacity` messages and `max_bytes` bytes, of which one bucket
    /// of channels may hold `1 / divisor`.
    pub fn new(capacity: usize, max_bytes: usize, divisor: usize) -> Self {
        let divisor = divisor.max(1);
        Self {
            hasher: RandomState::new(),
            max_bytes,
            share_messages: (capacity / divisor).max(1),
            share_bytes: (max_bytes / divisor).max(1),
            bytes: AtomicUsize::new(0),
            buckets: std::array::from_fn(|_| (AtomicUsize::new(0), AtomicUsize::new(0))),
        }
    }

    /// Counts a message of `bytes` on `channel` in, unless it would pass a bound.
    pub fn take(&self, channel: &str, bytes: usize) -> Result<Taken, Over> {
        let bucket = (self.hasher.hash_one(channel) as usize) % BUCKETS;
        let (messages, bucket_bytes) = &self.buckets[bucket];
        if self.bytes.fetch_add(bytes, Ordering::AcqRel) + bytes > self.max_bytes {
            self.bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(Over::Bytes);
        }
        let crowded = messages.fetch_add(1, Ordering::AcqRel) + 1 > self.share_messages;
        let heavy = bucket_bytes.fetch_add(bytes, Ordering::AcqRel) + bytes > self.share_bytes;
        let taken = Taken { bucket, bytes };
        if crowded || heavy {
            self.release(taken);
            return Err(Over::Share);
        }
        Ok(taken)
    }

    /// Counts a message out: it left the queue.
    pub fn release(&self, taken: Taken) {
        let (messages, bucket_bytes) = &self.buckets[taken.bucket];
        messages.fetch_sub(1, Ordering::AcqRel);
        bucket_bytes.fetch_sub(taken.bytes, Ordering::AcqRel);
        self.bytes.fetch_sub(taken.bytes, Ordering::AcqRel);
    }

    /// Bytes queued right now.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_channel_gets_its_share_and_the_others_still_get_in() {
        let shares = Shares::new(64, 1 << 20, 8);
        let hot: Vec<Taken> = std::iter::from_fn(|| shares.take("hot", 10).ok())
            .take(100)
            .collect();
        assert_eq!(hot.len(), 8, "a channel may hold 1/8 of the messages");
        assert_eq!(shares.take("hot", 10).err(), Some(Over::Share));
        let others = (0..20)
            .filter(|n| shares.take(&format!("room-{n}"), 10).is_ok())
            .count();
        assert!(others >= 10, "other channels still get in ({others} of 20)");
        for taken in hot {
            shares.release(taken);
        }
        assert!(
            shares.take("hot", 10).is_ok(),
            "released room is taken again"
        );
    }

    #[test]
    fn the_bytes_of_the_queue_are_bounded_whatever_the_channels() {
        let shares = Shares::new(1 << 20, 1000, 1);
        let taken = (0..100)
            .filter(|n| shares.take(&format!("room-{n}"), 90).is_ok())
            .count();
        assert_eq!(taken, 11);
        assert_eq!(shares.take("one-more", 90).err(), Some(Over::Bytes));
        assert!(shares.bytes() <= 1000);
    }
}
