//! Per (receiver, sender) sequence tracking: tells new deliveries, late (out-of-order) ones
//! and duplicates apart exactly, in memory proportional to the gaps only.

/// What one delivery was, given the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// First time this sequence number arrived, after every lower one seen so far.
    New,
    /// First time, but a higher number arrived before it.
    OutOfOrder,
    /// Already received.
    Duplicate,
}

/// The sequence numbers one receiver got from one sender.
#[derive(Debug, Clone, Default)]
pub struct SeqTrack {
    /// One past the highest number seen.
    next: u32,
    /// Numbers below `next` not seen yet, ascending (lost, or still to come out of order).
    missing: Vec<u32>,
}

impl SeqTrack {
    /// Records `seq` and classifies it.
    pub fn observe(&mut self, seq: u32) -> Delivery {
        if seq >= self.next {
            self.missing.extend(self.next..seq);
            self.next = seq.saturating_add(1);
            return Delivery::New;
        }
        match self.missing.binary_search(&seq) {
            Ok(index) => {
                self.missing.remove(index);
                Delivery::OutOfOrder
            }
            Err(_) => Delivery::Duplicate,
        }
    }
}

/// The tracks of one receiver, one per sender heard from, sorted by sender.
#[derive(Debug, Default)]
pub struct Peers(Vec<(u32, SeqTrack)>);

impl Peers {
    /// Records message `seq` from `sender`.
    pub fn observe(&mut self, sender: u32, seq: u32) -> Delivery {
        let index = match self.0.binary_search_by_key(&sender, |(peer, _)| *peer) {
            Ok(index) => index,
            Err(index) => {
                self.0.insert(index, (sender, SeqTrack::default()));
                index
            }
        };
        match self.0.get_mut(index) {
            Some((_, track)) => track.observe(seq),
            None => Delivery::New,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Delivery::*;

    #[test]
    fn in_order_then_gaps_then_late_and_duplicates() {
        let mut track = SeqTrack::default();
        assert_eq!(track.observe(0), New);
        assert_eq!(track.observe(1), New);
        assert_eq!(track.observe(1), Duplicate);
        assert_eq!(track.observe(4), New); // 2 and 3 missing
        assert_eq!(track.observe(3), OutOfOrder);
        assert_eq!(track.observe(3), Duplicate);
        assert_eq!(track.observe(0), Duplicate);
        assert_eq!(track.observe(5), New);
        assert_eq!(track.missing, vec![2]);
        assert_eq!(track.observe(2), OutOfOrder);
        assert!(track.missing.is_empty());
    }

    #[test]
    fn a_first_message_above_zero_leaves_the_lower_ones_missing() {
        let mut track = SeqTrack::default();
        assert_eq!(track.observe(2), New);
        assert_eq!(track.observe(0), OutOfOrder);
        assert_eq!(track.observe(1), OutOfOrder);
        assert_eq!(track.observe(2), Duplicate);
    }

    #[test]
    fn peers_keep_one_track_per_sender() {
        let mut peers = Peers::default();
        assert_eq!(peers.observe(9, 0), New);
        assert_eq!(peers.observe(3, 0), New);
        assert_eq!(peers.observe(9, 0), Duplicate);
        assert_eq!(peers.observe(3, 1), New);
        assert_eq!(peers.0.len(), 2);
    }
}
