//! Which of the `--url` instances each simulated user connects to: round-robin over all of
//! them, or, for rooms, every room's members on a few consecutive instances only (sparse
//! rooms: most instances hold none of a given room's members).

/// How users are spread over a list of `n` URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// User `i` on URL `i mod n`.
    #[default]
    RoundRobin,
    /// Users `r*size .. (r+1)*size` form room `r`; its members sit on the `span` consecutive
    /// URLs starting at URL `r mod n` (wrapping past the last), member `j` of the room on the
    /// `(j mod span)`-th of them. Rooms thus cycle over the `n` possible windows, and every
    /// URL holds members of `span` rooms out of every `n` consecutive ones.
    Rooms {
        /// Members per room.
        size: u32,
        /// Consecutive URLs each room's members are split over.
        span: u32,
    },
}

impl Placement {
    /// The index, in a list of `urls` URLs, of the URL `user` connects to (0 for no URLs).
    pub fn url_index(self, user: u32, urls: usize) -> usize {
        let n = u64::try_from(urls.max(1)).unwrap_or(u64::MAX);
        let index = match self {
            Self::RoundRobin => u64::from(user) % n,
            Self::Rooms { size, span } => {
                let (size, span) = (u64::from(size.max(1)), u64::from(span.max(1)));
                let (room, member) = (u64::from(user) / size, u64::from(user) % size);
                (room % n + member % span) % n
            }
        };
        usize::try_from(index).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles_over_every_url() {
        let urls: Vec<usize> = (0..7)
            .map(|user| Placement::RoundRobin.url_index(user, 3))
            .collect();
        assert_eq!(urls, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(Placement::RoundRobin.url_index(5, 0), 0);
    }

    #[test]
    fn rooms_of_ten_sit_five_and_five_on_two_consecutive_instances() {
        let placement = Placement::Rooms { size: 10, span: 2 };
        let mut per_instance = [0u32; 8];
        for room in 0..80u32 {
            let mut instances: Vec<usize> = (room * 10..room * 10 + 10)
                .map(|user| placement.url_index(user, 8))
                .collect();
            for &instance in &instances {
                per_instance[instance] += 1;
            }
            instances.sort_unstable();
            let first = usize::try_from(room % 8).unwrap_or_default();
            let second = (first + 1) % 8;
            let (low, high) = (first.min(second), first.max(second));
            assert_eq!(instances, [[low; 5], [high; 5]].concat(), "room {room}");
        }
        // 80 rooms over 8 windows: every instance holds 20 rooms' halves, 100 users.
        assert_eq!(per_instance, [100; 8]);
    }

    #[test]
    fn a_span_of_every_url_is_round_robin_within_each_room() {
        let placement = Placement::Rooms { size: 6, span: 3 };
        let urls: Vec<usize> = (0..12).map(|user| placement.url_index(user, 3)).collect();
        assert_eq!(urls, [0, 1, 2, 0, 1, 2, 1, 2, 0, 1, 2, 0]);
    }
}
