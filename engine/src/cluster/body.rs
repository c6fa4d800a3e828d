//! What one instance asks the others on the cluster bus, and what they answer.
//!
//! A broadcast carries the rooms it is for, the rooms left out, whether it is volatile, and
//! the Socket.IO packet as it is written to each socket (engine.io MESSAGE text, encoded once
//! by the sender). Layout: kind (1), flags (bit 0: volatile), the rooms and the except rooms
//! (each a u16 count, then per room a u16 length and its UTF-8 name), the packet to the end.
//!
//! A fetch asks for the sockets of a selection: kind (2), the request id (16 bytes), the
//! rooms, the except rooms. Its answer lists them: a u32 count, then per socket its id (u16
//! length and bytes), its rooms (as above) and its data (u32 length and JSON).
//!
//! A change moves the sockets of a selection: kind (3 join, 4 leave, 5 disconnect), the
//! request id, the rooms, the except rooms, then the rooms joined or left (for 5: one byte,
//! 1 to close the whole connection). Each instance answers once it is carried out.

use bytes::{BufMut, Bytes};
use redis_adapter::{Id, Room, Selection};

use crate::sockets::{Change, SocketView};

/// Kind: a broadcast.
const BROADCAST: u8 = 1;
/// Kind: a fetch of sockets.
const FETCH: u8 = 2;
/// Kind: sockets join rooms.
const JOIN: u8 = 3;
/// Kind: sockets leave rooms.
const LEAVE: u8 = 4;
/// Kind: sockets are disconnected.
const DISCONNECT: u8 = 5;
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

/// What another instance asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// Deliver this.
    Broadcast(Body),
    /// Answer request `req_id` with the local sockets of `selection`.
    Fetch {
        /// The request's id.
        req_id: Id,
        /// The sockets asked for.
        selection: Selection,
    },
    /// Move the local sockets of `selection` as `change` says, then answer request `req_id`.
    Change {
        /// The request's id.
        req_id: Id,
        /// The sockets moved.
        selection: Selection,
        /// What happens to them.
        change: Change,
    },
}

/// Why a body is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadBody {
    /// An unknown kind (another version's).
    #[error("unknown cluster request kind {0}")]
    Version(u8),
    /// Data that is not JSON.
    #[error("a socket's data is not JSON")]
    Json,
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
    buf.put_u8(BROADCAST);
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

/// Appends a fetch of the sockets of `selection`, request `req_id`, to `buf`.
pub(crate) fn encode_fetch(
    buf: &mut Vec<u8>,
    req_id: Id,
    selection: &Selection,
) -> Result<(), BadBody> {
    buf.put_u8(FETCH);
    buf.put_slice(req_id.as_bytes());
    put_rooms(buf, selection.rooms.len(), selection.rooms.iter())?;
    put_rooms(buf, selection.except.len(), selection.except.iter())
}

/// Appends `change` of the sockets of `selection`, request `req_id`, to `buf`.
pub(crate) fn encode_change(
    buf: &mut Vec<u8>,
    req_id: Id,
    selection: &Selection,
    change: &Change,
) -> Result<(), BadBody> {
    buf.put_u8(match change {
        Change::Join(_) => JOIN,
        Change::Leave(_) => LEAVE,
        Change::Disconnect { .. } => DISCONNECT,
    });
    buf.put_slice(req_id.as_bytes());
    put_rooms(buf, selection.rooms.len(), selection.rooms.iter())?;
    put_rooms(buf, selection.except.len(), selection.except.iter())?;
    match change {
        Change::Join(rooms) | Change::Leave(rooms) => put_rooms(buf, rooms.len(), rooms.iter()),
        Change::Disconnect { close } => {
            buf.put_u8(u8::from(*close));
            Ok(())
        }
    }
}

/// Reads a request.
pub(crate) fn decode(body: &[u8]) -> Result<Request, BadBody> {
    let mut rest = body;
    let [kind] = take::<1>(&mut rest)?;
    match kind {
        BROADCAST => {
            let [flags] = take::<1>(&mut rest)?;
            let rooms = take_rooms(&mut rest)?;
            let except = take_rooms(&mut rest)?;
            Ok(Request::Broadcast(Body {
                rooms,
                except,
                volatile: flags & VOLATILE != 0,
                packet: Bytes::copy_from_slice(rest),
            }))
        }
        FETCH | JOIN | LEAVE | DISCONNECT => {
            let id = take::<16>(&mut rest)?;
            let req_id = Id::parse(&id).ok_or(BadBody::Truncated)?;
            let rooms = take_rooms(&mut rest)?;
            let except = take_rooms(&mut rest)?;
            let selection = Selection { rooms, except };
            let change = match kind {
                FETCH => return Ok(Request::Fetch { req_id, selection }),
                JOIN => Change::Join(take_rooms(&mut rest)?),
                LEAVE => Change::Leave(take_rooms(&mut rest)?),
                _ => Change::Disconnect {
                    close: take::<1>(&mut rest)? == [1],
                },
            };
            Ok(Request::Change {
                req_id,
                selection,
                change,
            })
        }
        other => Err(BadBody::Version(other)),
    }
}

/// Appends the answer listing `sockets` to `buf`.
pub(crate) fn encode_sockets(buf: &mut Vec<u8>, sockets: &[SocketView]) -> Result<(), BadBody> {
    buf.put_u32(u32::try_from(sockets.len()).map_err(|_| BadBody::TooLong)?);
    for socket in sockets {
        buf.put_u16(u16::try_from(socket.id.len()).map_err(|_| BadBody::TooLong)?);
        buf.put_slice(socket.id.as_bytes());
        put_rooms(buf, socket.rooms.len(), socket.rooms.iter())?;
        let data = serde_json::to_vec(&socket.data).map_err(|_| BadBody::Json)?;
        buf.put_u32(u32::try_from(data.len()).map_err(|_| BadBody::TooLong)?);
        buf.put_slice(&data);
    }
    Ok(())
}

/// Reads an answer to a fetch.
pub(crate) fn decode_sockets(answer: &[u8]) -> Result<Vec<SocketView>, BadBody> {
    let mut rest = answer;
    let count = u32::from_be_bytes(take::<4>(&mut rest)?);
    let mut sockets = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(rest.len() / 8));
    for _ in 0..count {
        let id = take_name(&mut rest)?;
        let rooms = take_rooms(&mut rest)?;
        let len = usize::try_from(u32::from_be_bytes(take::<4>(&mut rest)?))
            .map_err(|_| BadBody::Truncated)?;
        if rest.len() < len {
            return Err(BadBody::Truncated);
        }
        let (data, tail) = rest.split_at(len);
        let data = serde_json::from_slice(data).map_err(|_| BadBody::Json)?;
        rest = tail;
        sockets.push(SocketView { id, rooms, data });
    }
    Ok(sockets)
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
        rooms.push(Room::Owned(take_name(rest)?));
    }
    Ok(rooms)
}

/// A u16 length and that many bytes of UTF-8.
fn take_name(rest: &mut &[u8]) -> Result<String, BadBody> {
    let len = usize::from(u16::from_be_bytes(take::<2>(rest)?));
    if rest.len() < len {
        return Err(BadBody::Truncated);
    }
    let (name, tail) = rest.split_at(len);
    let name = std::str::from_utf8(name).map_err(|_| BadBody::Room)?;
    *rest = tail;
    Ok(name.to_owned())
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
        let Request::Broadcast(body) = decode(&buf).unwrap() else {
            panic!("not a broadcast");
        };
        assert_eq!(body.rooms, rooms);
        assert_eq!(body.except, [Room::Borrowed("x"), Room::Borrowed("é")]);
        assert!(body.volatile);
        assert_eq!(&body.packet[..], b"42[\"m\"]");
        assert_eq!(decode(&buf[..5]), Err(BadBody::Truncated));
        assert_eq!(decode(&[9, 0]), Err(BadBody::Version(9)));
    }

    #[test]
    fn a_fetch_and_its_answer_read_back() {
        let mut buf = Vec::new();
        let req_id = Id::random();
        let selection = Selection {
            rooms: vec![Room::Borrowed("a")],
            except: vec![Room::Borrowed("b")],
        };
        encode_fetch(&mut buf, req_id, &selection).unwrap();
        assert_eq!(decode(&buf).unwrap(), Request::Fetch { req_id, selection });
        let sockets = vec![SocketView {
            id: "s1".into(),
            rooms: vec![Room::Borrowed("a")],
            data: serde_json::json!({"user": "alice"}),
        }];
        let mut answer = Vec::new();
        encode_sockets(&mut answer, &sockets).unwrap();
        assert_eq!(decode_sockets(&answer).unwrap(), sockets);
        assert_eq!(
            decode_sockets(&answer[..answer.len() - 1]),
            Err(BadBody::Truncated)
        );
    }

    #[test]
    fn changes_read_back() {
        let selection = Selection {
            rooms: vec![Room::Borrowed("t:acme:u:bob")],
            except: Vec::new(),
        };
        for change in [
            Change::Join(vec![Room::Borrowed("ops")]),
            Change::Leave(vec![Room::Borrowed("ops"), Room::Borrowed("x")]),
            Change::Disconnect { close: true },
            Change::Disconnect { close: false },
        ] {
            let mut buf = Vec::new();
            let req_id = Id::random();
            encode_change(&mut buf, req_id, &selection, &change).unwrap();
            assert_eq!(
                decode(&buf).unwrap(),
                Request::Change {
                    req_id,
                    selection: selection.clone(),
                    change
                }
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode(&bytes);
            let _ = decode_sockets(&bytes);
        }
    }
}
