//! How many sockets each user and each session holds on this instance, so that one account
//! cannot open sockets without bound: a handshake beyond `--max-sockets-per-user` or
//! `--max-sockets-per-session` is refused `too_many_sockets`.
//!
//! Counted per instance, not cluster-wide: a user may hold the cap on every instance. The
//! counts live in memory only (a map entry per user and per session with a socket here, removed
//! at zero), are changed once per connect and once per disconnect, never per event, and cost
//! no Redis round trip.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use crate::refusal::Refusal;

/// The sockets of each user and session on this instance.
#[derive(Debug, Default)]
pub(crate) struct Census {
    /// Sockets per key (the socket's private room names, unique per user and per session).
    counts: Mutex<HashMap<String, usize>>,
}

/// One key a socket counts under, with its cap and the refusal's wording.
pub(crate) struct Claim {
    /// The key: the user's or the session's private room.
    pub(crate) key: String,
    /// Most sockets under this key.
    pub(crate) cap: usize,
    /// Which cap, for the refusal (`per user`, `per session`).
    pub(crate) what: &'static str,
}

/// A socket's place in the census, given back when dropped (the socket disconnected).
#[derive(Debug)]
pub(crate) struct Seat {
    census: Arc<Census>,
    keys: Vec<String>,
}

impl Census {
    /// Counts a socket under every claim, or refuses it (counting nothing) when one claim is
    /// at its cap.
    pub(crate) fn admit(self: &Arc<Self>, claims: Vec<Claim>) -> Result<Seat, Refusal> {
        let mut counts = self.lock();
        if let Some(full) = claims
            .iter()
            .find(|claim| counts.get(&claim.key).copied().unwrap_or(0) >= claim.cap)
        {
            return Err(Refusal::TooManySockets(full.what));
        }
        let mut keys = Vec::with_capacity(claims.len());
        for claim in claims {
            *counts.entry(claim.key.clone()).or_insert(0) += 1;
            keys.push(claim.key);
        }
        Ok(Seat {
            census: self.clone(),
            keys,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut counts = self.census.lock();
        for key in &self.keys {
            if let Some(count) = counts.get_mut(key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    counts.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(user: &str, session: &str) -> Vec<Claim> {
        vec![
            Claim {
                key: user.into(),
                cap: 3,
                what: "per user",
            },
            Claim {
                key: session.into(),
                cap: 2,
                what: "per session",
            },
        ]
    }

    #[test]
    fn caps_per_key_and_seats_given_back() {
        let census = Arc::new(Census::default());
        let a1 = census.admit(claims("u", "s1"));
        let a2 = census.admit(claims("u", "s1"));
        assert!(a1.is_ok() && a2.is_ok());
        assert!(matches!(
            census.admit(claims("u", "s1")),
            Err(Refusal::TooManySockets("per session"))
        ));
        let b1 = census.admit(claims("u", "s2"));
        assert!(b1.is_ok());
        assert!(matches!(
            census.admit(claims("u", "s3")),
            Err(Refusal::TooManySockets("per user"))
        ));
        drop(a1);
        assert!(census.admit(claims("u", "s3")).is_ok());
        drop((a2, b1));
        assert!(census.lock().is_empty());
    }
}
