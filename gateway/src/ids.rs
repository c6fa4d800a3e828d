//! Random ids: this instance's default id, the per-process prefix of message ids, and the OS
//! generator for secrets; and the wall-clock timestamp that messages and sessions carry.

use std::time::{SystemTime, UNIX_EPOCH};

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

/// Now, in milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}
