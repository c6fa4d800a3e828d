//! Random ids: this instance's default id, message keys ([`MessageIds`]), the OS generator
//! for secrets and the one hash of secrets ([`digest`]); and the wall-clock timestamp that
//! messages and sessions carry.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use blake2::{Blake2s256, Digest};

/// A short random instance id: 8 lowercase hex digits (32 bits; a collision inside one cluster
/// only makes two instances look alike in logs and `welcome`, the adapter keys on its own ids).
pub(crate) fn instance_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// A random token drawn once per process, so ids built on it never repeat across restarts,
/// even when an instance keeps its configured id (48 bits as 12 hex digits).
pub(crate) fn process_token() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// A random id of 128 bits as 32 hex digits: job ids and audit event ids, unique enough to
/// be idempotency keys.
pub(crate) fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Fills `buf` from the operating system's random generator (`getrandom`), for secrets:
/// session tokens and password salts.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<(), crate::Error> {
    use rand::TryRngCore;
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .map_err(|err| crate::Error::Random(err.to_string()))
}

/// Random bytes in a secret (session tokens, API keys): 256 bits.
const SECRET_BYTES: usize = 32;
/// Characters of a secret: base64url without padding of [`SECRET_BYTES`].
pub(crate) const SECRET_LEN: usize = 43;

/// A fresh secret from the OS generator: [`SECRET_BYTES`] bytes as base64url without padding
/// ([`SECRET_LEN`] characters of `A-Z a-z 0-9 - _`).
pub(crate) fn secret() -> Result<String, crate::Error> {
    let mut bytes = [0u8; SECRET_BYTES];
    os_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `text` has the shape of a [`secret`].
pub(crate) fn is_secret_shaped(text: &str) -> bool {
    text.len() == SECRET_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The BLAKE2s-256 hash of `secret`, base64url without padding (43 characters): what Redis
/// keys and room names hold instead of a high-entropy secret (session tokens, API keys).
pub(crate) fn digest(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Blake2s256::digest(secret.as_bytes()))
}

/// Message keys unique across the cluster and across restarts: a random per-process token and
/// a counter, e.g. `3f9a1c2e7b40-17` (the message id is its stream entry id).
#[derive(Debug)]
pub(crate) struct MessageIds {
    token: String,
    next: AtomicU64,
}

impl MessageIds {
    /// A generator with a fresh random token.
    pub(crate) fn new() -> Self {
        Self {
            token: process_token(),
            next: AtomicU64::new(1),
        }
    }

    /// The next id.
    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.token)
    }

    /// Whether `key` is one of this generator's (a message this process accepted).
    pub(crate) fn gave(&self, key: &str) -> bool {
        key.strip_prefix(self.token.as_str())
            .is_some_and(|rest| rest.starts_with('-'))
    }
}

/// Now, in milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_ms() -> u64 {
    u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX)
}

/// The time since the Unix epoch by this machine's clock (zero before it).
pub(crate) fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_unique_and_share_the_process_token() {
        let ids = MessageIds::new();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert_eq!(a.split('-').next(), b.split('-').next());
        assert_ne!(MessageIds::new().next(), MessageIds::new().next());
        assert!(ids.gave(&a));
        assert!(!MessageIds::new().gave(&a));
        assert!(!ids.gave(&a.replace('-', "")));
    }

    #[test]
    fn digests_are_fixed_length_base64url() {
        let hashed = digest("a secret");
        assert_eq!(hashed.len(), 43);
        assert_eq!(hashed, digest("a secret"));
        assert_ne!(hashed, digest("another secret"));
        assert!(is_secret_shaped(&hashed));
        let fresh = secret().unwrap_or_default();
        assert!(is_secret_shaped(&fresh), "{fresh}");
        assert!(!is_secret_shaped(&fresh[1..]));
        assert!(!is_secret_shaped(&format!("{}+", &fresh[1..])));
    }
}
