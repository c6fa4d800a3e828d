//! The ids of instances and requests on the wire: 16 URL-safe base64 characters, the same
//! shape as socketioxide's `Uid` and `Sid`, so either converts without a table.

use std::fmt;

/// Length of an id, in bytes.
pub const ID_LEN: usize = 16;

/// An instance id or a request id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id([u8; ID_LEN]);

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Id {
    /// A new random id.
    pub fn random() -> Self {
        let mut id = [0u8; ID_LEN];
        for byte in &mut id {
            *byte = ALPHABET[usize::from(rand::random::<u8>() & 63)];
        }
        Self(id)
    }

    /// The id written as `bytes`, if they are 16 URL-safe base64 characters.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let id: [u8; ID_LEN] = bytes.try_into().ok()?;
        id.iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-' || *byte == b'_')
            .then_some(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Always valid: only ASCII is ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The id as bytes.
    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_writes_and_nothing_else() {
        let id = Id::random();
        assert_eq!(Id::parse(id.as_bytes()), Some(id));
        assert_eq!(Id::parse(b"short"), None);
        assert_eq!(Id::parse(b"0123456789abcde!"), None);
        assert_eq!(
            Id::parse(b"0123456789abcdef").map(|id| id.to_string()),
            Some("0123456789abcdef".to_owned())
        );
    }
}
