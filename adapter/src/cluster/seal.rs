//! Who may speak on the bus: with a cluster secret, every envelope ends with a keyed
//! BLAKE2s-256 MAC over its channel and bytes, and a message that does not verify is dropped
//! unread. Anyone with Redis access can publish; only holders of the secret are heard.
//!
//! The channel is part of the MAC, so a verified message cannot be replayed onto another
//! channel (another instance's requests, another room). A replay of a message on its own
//! channel is not detected: the secret keeps out strangers, not recordings.

use blake2::{
    Blake2s256, Blake2sMac256, Digest,
    digest::{FixedOutput, KeyInit, Mac},
};

/// Length of the MAC at the end of a sealed envelope.
pub(crate) const MAC_LEN: usize = 32;
/// The envelope version of a sealed message.
pub(crate) const SEALED_VERSION: u8 = 2;

/// The shared secret of the instances of one deployment, kept as the BLAKE2s-256 hash of
/// what was given (the MAC key).
#[derive(Clone)]
pub struct ClusterSecret([u8; 32]);

impl ClusterSecret {
    /// The secret `bytes`; at least 16 of them (use 32 random bytes).
    pub fn new(bytes: impl AsRef<[u8]>) -> Option<Self> {
        let bytes = bytes.as_ref();
        (bytes.len() >= 16).then(|| Self(Blake2s256::digest(bytes).into()))
    }

    fn mac(&self, channel: &str) -> Blake2sMac256 {
        let mut mac = <Blake2sMac256 as KeyInit>::new(&self.0.into());
        mac.update(&(channel.len() as u64).to_le_bytes());
        mac.update(channel.as_bytes());
        mac
    }
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

/// `payload` as it goes out on `channel`: unchanged without a secret; with one, marked as
/// sealed (envelope version [`SEALED_VERSION`]) and followed by its MAC.
pub(crate) fn seal(secret: Option<&ClusterSecret>, channel: &str, mut payload: Vec<u8>) -> Vec<u8> {
    let Some(secret) = secret else {
        return payload;
    };
    if let Some(version) = payload.first_mut() {
        *version = SEALED_VERSION;
    }
    let mut mac = secret.mac(channel);
    mac.update(&payload);
    payload.extend_from_slice(&mac.finalize_fixed());
    payload
}

/// The envelope of a message received on `channel`, if this instance may believe it: without
/// a secret, any unsealed message; with one, a sealed message whose MAC verifies (without
/// its MAC).
pub(crate) fn open<'a>(
    secret: Option<&ClusterSecret>,
    channel: &str,
    received: &'a [u8],
) -> Option<&'a [u8]> {
    let sealed = received.first() == Some(&SEALED_VERSION);
    match secret {
        None => (!sealed).then_some(received),
        Some(secret) if sealed => {
            let split = received.len().checked_sub(MAC_LEN)?;
            let (payload, tag) = received.split_at(split);
            let mut mac = secret.mac(channel);
            mac.update(payload);
            mac.verify_slice(tag).ok().map(|()| payload)
        }
        Some(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_secret_on_the_same_channel_opens() {
        let secret = ClusterSecret::new(*b"0123456789abcdef0123456789abcdef").unwrap();
        let sealed = seal(Some(&secret), "chan", b"\x01payload".to_vec());
        assert_eq!(
            open(Some(&secret), "chan", &sealed),
            Some(&b"\x02payload"[..])
        );
        assert_eq!(
            open(Some(&secret), "other", &sealed),
            None,
            "bound to its channel"
        );
        let stranger = ClusterSecret::new(*b"another secret, as long as that").unwrap();
        assert_eq!(open(Some(&stranger), "chan", &sealed), None);
        assert_eq!(
            open(None, "chan", &sealed),
            None,
            "cannot be verified without it"
        );
        let mut tampered = sealed.clone();
        tampered[3] ^= 1;
        assert_eq!(open(Some(&secret), "chan", &tampered), None, "tampered");
        assert_eq!(
            open(Some(&secret), "chan", b"\x01unsealed"),
            None,
            "unsealed"
        );
        assert_eq!(open(Some(&secret), "chan", b"\x02"), None);
        assert_eq!(open(None, "chan", b"\x01plain"), Some(&b"\x01plain"[..]));
        assert!(ClusterSecret::new(*b"too short").is_none());
    }
}
