//! The versioned wire format shared by every instance: encode, decode, nothing else.
//!
//! ```text
//! byte 0       version: 1, or 2 for a sealed envelope (followed by its MAC, see `seal`)
//! byte 1       kind: 1 request, 2 response, 3 heartbeat, 4 hello, 5 leave, 6 applied
//! bytes 2..18  origin instance id (16 ASCII bytes)
//! bytes 18..   body: a request as its front end encoded it (socketioxide's: msgpack); for a
//!              response, 16 bytes of request id then the response; for "applied", the
//!              16 bytes of the request id
//! ```
//!
//! The origin sits in a fixed-size header so an instance can ignore its own messages, and
//! route responses, without decoding any msgpack.

use super::id::{ID_LEN, Id};

/// The only version this build reads and writes.
pub(crate) const VERSION: u8 = 1;
const HEADER_LEN: usize = 2 + ID_LEN;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An operation for other instances.
    Request = 1,
    /// An answer to a request, sent to the requester's response channel.
    Response = 2,
    /// "I am alive".
    Heartbeat = 3,
    /// "I just started: tell me who you are".
    Hello = 4,
    /// "I am leaving: stop counting me now".
    Leave = 5,
    /// "Your remote join or leave is in place here (rooms subscribed or released)".
    Applied = 6,
}

impl Kind {
    fn from_u8(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Request,
            2 => Self::Response,
            3 => Self::Heartbeat,
            4 => Self::Hello,
            5 => Self::Leave,
            6 => Self::Applied,
            _ => return None,
        })
    }
}

/// A decoded envelope borrowing its body from the received bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    /// What the body holds.
    pub kind: Kind,
    /// The instance that published it.
    pub origin: Id,
    /// The rest of the message.
    pub body: &'a [u8],
}

/// Why an envelope was rejected.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// Written by a version of the adapter this one does not understand.
    #[error("unknown envelope version {0}")]
    UnknownVersion(u8),
    /// Not an envelope at all, or a corrupted one.
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
}

/// Encodes a message without a body (heartbeat, hello, leave).
pub(crate) fn encode_signal(kind: Kind, origin: Id) -> Vec<u8> {
    header(kind, origin, 0)
}

/// Encodes a message of `kind` whose body `write` appends to the header (a request; for a
/// response, see [`response_header`]).
pub(crate) fn encode_with<E>(
    kind: Kind,
    origin: Id,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    let mut buf = header(kind, origin, 64);
    write(&mut buf)?;
    Ok(buf)
}

/// Appends the request id a response body starts with.
pub(crate) fn response_header(buf: &mut Vec<u8>, req_id: Id) {
    buf.extend_from_slice(req_id.as_bytes());
}

/// Encodes the answer to a remote join or leave, the request `req_id`.
pub(crate) fn encode_applied(origin: Id, req_id: Id) -> Vec<u8> {
    let mut buf = header(Kind::Applied, origin, ID_LEN);
    response_header(&mut buf, req_id);
    buf
}

/// Splits a response body into its request id and the msgpack response.
pub(crate) fn split_response(body: &[u8]) -> Result<(Id, &[u8]), DecodeError> {
    let (id, rest) = body.split_at_checked(ID_LEN).ok_or(DecodeError::Malformed(
        "response shorter than its request id",
    ))?;
    Ok((parse_id(id)?, rest))
}

/// Decodes the header of a received message. Never panics, whatever the bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let (&version, rest) = bytes
        .split_first()
        .ok_or(DecodeError::Malformed("empty message"))?;
    if version != VERSION && version != super::seal::SEALED_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let (&kind, rest) = rest
        .split_first()
        .ok_or(DecodeError::Malformed("missing kind"))?;
    let kind = Kind::from_u8(kind).ok_or(DecodeError::Malformed("unknown kind"))?;
    let (origin, body) = rest
        .split_at_checked(ID_LEN)
        .ok_or(DecodeError::Malformed("missing origin"))?;
    let origin = parse_id(origin)?;
    Ok(Envelope { kind, origin, body })
}

fn header(kind: Kind, origin: Id, body_hint: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN + body_hint);
    buf.push(VERSION);
    buf.push(kind as u8);
    buf.extend_from_slice(origin.as_bytes());
    buf
}

fn parse_id(bytes: &[u8]) -> Result<Id, DecodeError> {
    Id::parse(bytes).ok_or(DecodeError::Malformed("invalid id"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn response(origin: Id, req_id: Id, body: &[u8]) -> Vec<u8> {
        encode_with(Kind::Response, origin, |buf| {
            response_header(buf, req_id);
            buf.extend_from_slice(body);
            Ok::<_, ()>(())
        })
        .unwrap()
    }

    #[test]
    fn signal_round_trips() {
        let origin = Id::random();
        let bytes = encode_signal(Kind::Heartbeat, origin);
        let env = decode(&bytes).unwrap();
        assert_eq!(env.kind, Kind::Heartbeat);
        assert_eq!(env.origin, origin);
        assert!(env.body.is_empty());
    }

    #[test]
    fn response_carries_its_request_id() {
        let (origin, req) = (Id::random(), Id::random());
        let bytes = response(origin, req, b"body");
        let env = decode(&bytes).unwrap();
        assert_eq!(env.kind, Kind::Response);
        assert_eq!(split_response(env.body).unwrap(), (req, &b"body"[..]));
        let applied = encode_applied(origin, req);
        let env = decode(&applied).unwrap();
        assert_eq!(
            (env.kind, split_response(env.body).unwrap()),
            (Kind::Applied, (req, &b""[..]))
        );
    }

    #[test]
    fn rejects_unknown_version_and_garbage() {
        let mut bytes = encode_signal(Kind::Leave, Id::random());
        bytes[0] = 9;
        assert_eq!(decode(&bytes), Err(DecodeError::UnknownVersion(9)));
        assert!(decode(&[]).is_err());
        assert!(decode(&[VERSION]).is_err());
        assert!(decode(&[VERSION, 3, b'a']).is_err());
        assert!(decode(&[VERSION, 77]).is_err());
        assert!(split_response(b"short").is_err());
    }

    #[test]
    fn never_panics_on_prefixes_of_valid_messages() {
        let bytes = response(Id::random(), Id::random(), &[7; 40]);
        for end in 0..bytes.len() {
            let _ = decode(&bytes[..end]).map(|env| split_response(env.body));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any bytes: decoded or rejected, never a panic.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            if let Ok(env) = decode(&bytes) {
                let _ = split_response(env.body);
            }
        }
    }
}
