//! What one instance's broadcast carries to the others on the cluster bus: the rooms it is
//! for, the rooms left out, whether it is volatile, and the Socket.IO packet as it is written
//! to each socket (engine.io MESSAGE text, encoded once by the sender).
//!
//! Layout: version (1), flags (bit 0: volatile), the rooms and the except rooms (each a u16
//! count, then per room a u16 length and its UTF-8 name), then the packet to the end.

use bytes::{BufMut, Bytes};
use redis_adapter::Room;

/// The layout's version.
const VERSION: u8 = 1;
/// Flag: volatile.
const VOLATILE: u8 = 1;

/// A decoded broadcast body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    /// The rooms (none: the whole namespace).
    pub(crate) rooms: Vec<Room>,
    /// The rooms left out.
    pub(crate) except: Vec<Room>,
    /// Whether it may be dropped for a socket not ready.
    pub(crate) volatile: bool,
    /// The packet text.
    pub(crate) packet: Bytes,
}

/// Why a body is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadBody {
    /// Another layout version.
    #[error("unknown broadcast body version {0}")]
    Version(u8),
    /// Cut short.
    #[error("truncated broadcast body")]
    Truncated,
    /// A room name that is not UTF-8.
    #[error("a room name is not UTF-8")]
    Room,
    /// A room name too long to encode.
    #[error("a room name is longer than 65,535 bytes")]
    TooLong,
}

/// Appends the body of a broadcast to `rooms` but `except` (and `earlier`, the rooms whose
/// own messages reach their members) to `buf`.
pub(crate) fn encode(
    buf: &mut Vec<u8>,
    rooms: &[Room],
    except: &[Room],
    earlier: &[Room],
    volatile: bool,
    packet: &[u8],
) -> Result<(), BadBody> {
    buf.put_u8(VERSION);
    buf.put_u8(if volatile { VOLATILE } else { 0 });
    put_rooms(buf, rooms.len(), rooms.iter())?;
    put_rooms(
        buf,
        except.len() + earlier.len(),
        except.iter().chain(earlier),
    )?;
    buf.put_slice(packet);
    Ok(())
}

fn put_rooms<'a>(
    buf: &mut Vec<u8>,
    count: usize,
    rooms: impl Iterator<Item = &'a Room>,
) -> Result<(), BadBody> {
    buf.put_u16(u16::try_from(count).map_err(|_| BadBody::TooLong)?);
    for room in rooms {
        buf.put_u16(u16::try_from(room.len()).map_err(|_| BadBody::TooLong)?);
        buf.put_slice(room.as_bytes());
    }
    Ok(())
}

/// Reads a body.
pub(crate) fn decode(body: &[u8]) -> Result<Body, BadBody> {
    let mut rest = body;
    let [version, flags] = take::<2>(&mut rest)?;
    if version != VERSION {
        return Err(BadBody::Version(version));
    }
    let rooms = take_rooms(&mut rest)?;
    let except = take_rooms(&mut rest)?;
    Ok(Body {
        rooms,
        except,
        volatile: flags & VOLATILE != 0,
        packet: Bytes::copy_from_slice(rest),
    })
}

fn take<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], BadBody> {
    let (head, tail) = rest.split_first_chunk::<N>().ok_or(BadBody::Truncated)?;
    *rest = tail;
    Ok(*head)
}

fn take_rooms(rest: &mut &[u8]) -> Result<Vec<Room>, BadBody> {
    let count = u16::from_be_bytes(take::<2>(rest)?);
    let mut rooms = Vec::with_capacity(usize::from(count).min(rest.len() / 2));
    for _ in 0..count {
        let len = usize::from(u16::from_be_bytes(take::<2>(rest)?));
        if rest.len() < len {
            return Err(BadBody::Truncated);
        }
        let (name, tail) = rest.split_at(len);
        let name = std::str::from_utf8(name).map_err(|_| BadBody::Room)?;
        rooms.push(Room::Owned(name.to_owned()));
        *rest = tail;
    }
    Ok(rooms)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_body_reads_back() {
        let mut buf = Vec::new();
        let rooms = [Room::Borrowed("t:acme:r:general")];
        encode(
            &mut buf,
            &rooms,
            &[Room::Borrowed("x")],
            &[Room::Borrowed("é")],
            true,
            b"42[\"m\"]",
        )
        .unwrap();
        let body = decode(&buf).unwrap();
        assert_eq!(body.rooms, rooms);
        assert_eq!(body.except, [Room::Borrowed("x"), Room::Borrowed("é")]);
        assert!(body.volatile);
        assert_eq!(&body.packet[..], b"42[\"m\"]");
        assert_eq!(decode(&buf[..5]), Err(BadBody::Truncated));
        assert_eq!(decode(&[9, 0]), Err(BadBody::Version(9)));
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
