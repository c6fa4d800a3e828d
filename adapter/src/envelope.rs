//! The versioned wire format shared by every instance: encode, decode, nothing else.
//!
//! ```text
//! byte 0       version (currently 1)
//! byte 1       kind: 1 request, 2 response, 3 heartbeat, 4 hello, 5 leave, 6 applied
//! bytes 2..18  origin instance id (16 ASCII bytes)
//! bytes 18..   body: a msgpack request; for a response, 16 bytes of request id then msgpack;
//!              for "applied", the 16 bytes of the request id
//! ```
//!
//! The origin sits in a fixed-size header so an instance can ignore its own messages, and
//! route responses, without decoding any msgpack.

use serde::Serialize;
use socketioxide_core::{Sid, Uid};

/// The only version this build reads and writes.
pub(crate) const VERSION: u8 = 1;
const ID_LEN: usize = 16;
const HEADER_LEN: usize = 2 + ID_LEN;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An operation for other instances (`RequestOut` in msgpack).
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
    pub origin: Uid,
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
pub(crate) fn encode_signal(kind: Kind, origin: Uid) -> Vec<u8> {
    header(kind, origin, 0)
}

/// Encodes a request.
pub(crate) fn encode_request(
    origin: Uid,
    request: &impl Serialize,
) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut buf = header(Kind::Request, origin, 64);
    rmp_serde::encode::write(&mut buf, request)?;
    Ok(buf)
}

/// Encodes a response to the request `req_id`.
pub(crate) fn encode_response(
    origin: Uid,
    req_id: Sid,
    response: &impl Serialize,
) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut buf = header(Kind::Response, origin, ID_LEN + 64);
    buf.extend_from_slice(req_id.as_str().as_bytes());
    rmp_serde::encode::write(&mut buf, response)?;
    Ok(buf)
}

/// Encodes the answer to a remote join or leave, the request `req_id`.
pub(crate) fn encode_applied(origin: Uid, req_id: Sid) -> Vec<u8> {
    let mut buf = header(Kind::Applied, origin, ID_LEN);
    buf.extend_from_slice(req_id.as_str().as_bytes());
    buf
}

/// Splits a response body into its request id and the msgpack response.
pub(crate) fn split_response(body: &[u8]) -> Result<(Sid, &[u8]), DecodeError> {
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
    if version != VERSION {
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

fn header(kind: Kind, origin: Uid, body_hint: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN + body_hint);
    buf.push(VERSION);
    buf.push(kind as u8);
    buf.extend_from_slice(origin.as_str().as_bytes());
    buf
}

fn parse_id<T: std::str::FromStr>(bytes: &[u8]) -> Result<T, DecodeError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(DecodeError::Malformed("invalid id"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signal_round_trips() {
        let origin = Uid::new();
        let bytes = encode_signal(Kind::Heartbeat, origin);
        let env = decode(&bytes).unwrap();
        assert_eq!(env.kind, Kind::Heartbeat);
        assert_eq!(env.origin, origin);
        assert!(env.body.is_empty());
    }

    #[test]
    fn response_carries_its_request_id() {
        let (origin, req) = (Uid::new(), Sid::new());
        let bytes = encode_response(origin, req, &(1u8, "x")).unwrap();
        let env = decode(&bytes).unwrap();
        assert_eq!(env.kind, Kind::Response);
        let (id, body) = split_response(env.body).unwrap();
        assert_eq!(id, req);
        let decoded: (u8, String) = rmp_serde::from_slice(body).unwrap();
        assert_eq!(decoded, (1, "x".to_owned()));
    }

    #[test]
    fn rejects_unknown_version_and_garbage() {
        let mut bytes = encode_signal(Kind::Leave, Uid::new());
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
        let bytes = encode_response(Uid::new(), Sid::new(), &vec![1u32; 10]).unwrap();
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

        /// A valid header followed by arbitrary bytes: the body decoders reject or accept,
        /// never panic.
        #[test]
        fn arbitrary_bodies_never_panic(kind in 1u8..=6, body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut bytes = encode_signal(Kind::Heartbeat, Uid::new());
            bytes[1] = kind;
            bytes.extend_from_slice(&body);
            let env = decode(&bytes).unwrap();
            let _ = rmp_serde::from_slice::<socketioxide_core::adapter::remote_packet::RequestIn>(env.body);
            if let Ok((_, response)) = split_response(env.body) {
                let _ = rmp_serde::from_slice::<socketioxide_core::adapter::remote_packet::Response<socketioxide_core::adapter::RemoteSocketData>>(response);
            }
        }
    }
}
