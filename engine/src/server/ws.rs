//! A websocket's reading side: the upgrade answer, client frames (masked, fragmented
//! messages reassembled up to `maxPayload`), and the engine.io packets they carry, for a
//! session opened on the websocket or one upgrading from polling (the probe).

use std::{io::Cursor, sync::Arc};

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tungstenite::protocol::frame::{
    FrameHeader,
    coding::{Control, Data, OpCode},
};

use super::{CloseReason, session::Session, sink::Sink};
use crate::eio::{self, PayloadPacket};

/// The `Sec-WebSocket-Accept` answering `key`.
pub(crate) fn accept_key(key: &[u8]) -> String {
    tungstenite::handshake::derive_accept_key(key)
}

/// Why a connection's bytes are not frames we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameError {
    /// Unmasked, reserved bits or opcodes, a fragmented or long control frame, a
    /// continuation without a start, text that is not UTF-8.
    Protocol,
    /// A message longer than `maxPayload`.
    TooLong,
}

/// One complete client message or control frame.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    Close,
}

/// Reassembles the frames of one connection.
#[derive(Default)]
struct Frames {
    /// The first frames of a fragmented message: whether it is text, and its bytes so far.
    partial: Option<(bool, BytesMut)>,
}

impl Frames {
    /// Takes the next complete message or control frame off the front of `buf`; `Ok(None)`
    /// when more bytes are needed.
    fn next(
        &mut self,
        buf: &mut BytesMut,
        max_payload: usize,
    ) -> Result<Option<Frame>, FrameError> {
        loop {
            let mut cursor = Cursor::new(&buf[..]);
            let Some((header, len)) =
                FrameHeader::parse(&mut cursor).map_err(|_| FrameError::Protocol)?
            else {
                return Ok(None);
            };
            let head = usize::try_from(cursor.position()).map_err(|_| FrameError::Protocol)?;
            let len = usize::try_from(len).map_err(|_| FrameError::TooLong)?;
            let Some(mask) = header.mask else {
                return Err(FrameError::Protocol);
            };
            if header.rsv1 || header.rsv2 || header.rsv3 {
                return Err(FrameError::Protocol);
            }
            // A control frame may come between fragments; it is no part of the message.
            let so_far = match header.opcode {
                OpCode::Data(_) => self.partial.as_ref().map_or(0, |(_, bytes)| bytes.len()),
                OpCode::Control(_) => 0,
            };
            if len.saturating_add(so_far) > max_payload {
                return Err(FrameError::TooLong);
            }
            if buf.len() < head + len {
                return Ok(None);
            }
            let mut payload = buf.split_to(head + len).split_off(head);
            unmask(&mut payload, mask);
            if let Some(frame) = self.take(header.opcode, header.is_final, payload)? {
                return Ok(Some(frame));
            }
        }
    }

    /// One frame: a whole message or control frame, or `None` for a fragment.
    fn take(
        &mut self,
        opcode: OpCode,
        is_final: bool,
        payload: BytesMut,
    ) -> Result<Option<Frame>, FrameError> {
        match opcode {
            OpCode::Control(control) => {
                if !is_final || payload.len() > 125 {
                    return Err(FrameError::Protocol);
                }
                match control {
                    Control::Close => Ok(Some(Frame::Close)),
                    Control::Ping => Ok(Some(Frame::Ping(payload.freeze()))),
                    Control::Pong => Ok(Some(Frame::Pong)),
                    Control::Reserved(_) => Err(FrameError::Protocol),
                }
            }
            OpCode::Data(Data::Text | Data::Binary) if self.partial.is_some() => {
                Err(FrameError::Protocol)
            }
            OpCode::Data(data @ (Data::Text | Data::Binary)) => {
                let text = data == Data::Text;
                if is_final {
                    return message(text, payload).map(Some);
                }
                self.partial = Some((text, payload));
                Ok(None)
            }
            OpCode::Data(Data::Continue) => {
                let Some((text, mut bytes)) = self.partial.take() else {
                    return Err(FrameError::Protocol);
                };
                bytes.unsplit(payload);
                if is_final {
                    return message(text, bytes).map(Some);
                }
                self.partial = Some((text, bytes));
                Ok(None)
            }
            OpCode::Data(Data::Reserved(_)) => Err(FrameError::Protocol),
        }
    }
}

/// A whole message: text must be UTF-8.
fn message(text: bool, bytes: BytesMut) -> Result<Frame, FrameError> {
    if !text {
        return Ok(Frame::Binary(bytes.freeze()));
    }
    std::str::from_utf8(&bytes).map_err(|_| FrameError::Protocol)?;
    Ok(Frame::Text(bytes.freeze()))
}

/// XORs a client frame's payload with its mask (RFC 6455 §5.3).
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

/// What a websocket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The session's transport.
    Session,
    /// A websocket upgrading a polling session: probe first, then UPGRADE.
    Probing,
}

/// Reads `stream` (after `read`, the bytes the HTTP server read past the request) for
/// `session` until either side closes.
pub(crate) async fn read(
    session: Arc<Session>,
    stream: Arc<TcpStream>,
    sink: Arc<Sink>,
    read: Bytes,
    mut role: Role,
    max_payload: usize,
) {
    // `read` may be a slice of the HTTP server's whole read buffer: copied, and let go.
    let mut buf = BytesMut::from(&read[..]);
    drop(read);
    let mut frames = Frames::default();
    let reason = 'read: loop {
        loop {
            let frame = match frames.next(&mut buf, max_payload) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) => break 'read CloseReason::InvalidPacket,
            };
            match frame {
                Frame::Ping(payload) => {
                    let _closed = sink.control(Control::Pong, &payload);
                }
                Frame::Pong => {}
                Frame::Close => break 'read CloseReason::TransportClosed,
                Frame::Text(text) => {
                    // `message` checked it is UTF-8.
                    let text = std::str::from_utf8(&text).unwrap_or_default();
                    if let Err(reason) = on_text(&session, &sink, &mut role, text) {
                        break 'read reason;
                    }
                }
                Frame::Binary(bytes) if role == Role::Session => {
                    if let Err(reason) = session.receive(Ok(PayloadPacket::Binary(bytes))) {
                        break 'read reason;
                    }
                }
                Frame::Binary(_) => break 'read CloseReason::InvalidPacket,
            }
        }
        if session.is_closed() && role == Role::Session {
            break CloseReason::ServerClosed;
        }
        if buf.is_empty() {
            // An idle connection holds no read buffer.
            buf = BytesMut::new();
        }
        tokio::select! {
            readable = stream.readable() => if readable.is_err() {
                break CloseReason::TransportError;
            },
            () = sink.closed() => break sink.reason().unwrap_or(CloseReason::TransportClosed),
        }
        let mut chunk = [0u8; 4096];
        match read_chunk(&stream, &mut chunk) {
            Ok(0) => break CloseReason::TransportClosed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break CloseReason::TransportError,
        }
    };
    sink.close();
    match role {
        Role::Session => session.close_with(reason),
        Role::Probing => session.abort_upgrade(),
    }
}

/// Reads what `stream` holds into `chunk`, as tokio's own `poll_read` does: a read shorter
/// than `chunk` took everything there was, so the readiness seen before it is cleared, and
/// the next wait costs no read that only returns `EAGAIN` (`TcpStream::try_read` keeps the
/// readiness after any read that returned bytes).
fn read_chunk(stream: &TcpStream, chunk: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut read = 0;
    let outcome = stream.try_io(tokio::io::Interest::READABLE, || {
        read = (&*socket2::SockRef::from(stream)).read(chunk)?;
        if 0 < read && read < chunk.len() {
            // Drained: `WouldBlock` is how tokio is told to clear what it saw before the read.
            Err(std::io::ErrorKind::WouldBlock.into())
        } else {
            Ok(read)
        }
    });
    match outcome {
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock && read > 0 => Ok(read),
        other => other,
    }
}

/// One text frame's engine.io packet.
fn on_text(
    session: &Session,
    sink: &Arc<Sink>,
    role: &mut Role,
    text: &str,
) -> Result<(), CloseReason> {
    let packet = eio::decode(text).map_err(|_| CloseReason::InvalidPacket)?;
    match (*role, packet.kind) {
        (Role::Probing, eio::Kind::Ping) if packet.data == "probe" => {
            sink.text(&Bytes::from_static(b"3probe"))
                .map_err(|_| CloseReason::TransportClosed)?;
            session.probed();
            Ok(())
        }
        (Role::Probing, eio::Kind::Upgrade) => {
            if !session.complete_upgrade(sink) {
                return Err(CloseReason::TransportClosed);
            }
            *role = Role::Session;
            Ok(())
        }
        (Role::Probing, _) => Err(CloseReason::InvalidPacket),
        (Role::Session, _) => session.receive(Ok(PayloadPacket::Text(packet))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A masked client frame.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut bytes = vec![first];
        match payload.len() {
            len @ 0..=125 => bytes.push(0x80 | len as u8),
            len => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(len as u16).to_be_bytes());
            }
        }
        bytes.extend_from_slice(&mask);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        bytes
    }

    #[test]
    fn a_masked_text_frame_reads_back_and_a_partial_one_waits() {
        let frame = client_frame(0x81, b"4hello");
        let mut frames = Frames::default();
        let mut buf = BytesMut::from(&frame[..4]);
        assert_eq!(frames.next(&mut buf, 100), Ok(None));
        let mut buf = BytesMut::from(&frame[..]);
        assert_eq!(
            frames.next(&mut buf, 100),
            Ok(Some(Frame::Text(Bytes::from_static(b"4hello"))))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn fragments_are_joined_and_bounded() {
        let mut bytes = client_frame(0x01, b"4hel");
        bytes.extend(client_frame(0x89, b"p"));
        bytes.extend(client_frame(0x80, b"lo"));
        let mut frames = Frames::default();
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            frames.next(&mut buf, 100),
            Ok(Some(Frame::Ping(Bytes::from_static(b"p"))))
        );
        assert_eq!(
            frames.next(&mut buf, 100),
            Ok(Some(Frame::Text(Bytes::from_static(b"4hello"))))
        );
        let mut frames = Frames::default();
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(matches!(frames.next(&mut buf, 5), Ok(Some(Frame::Ping(_)))));
        assert_eq!(frames.next(&mut buf, 5), Err(FrameError::TooLong));
    }

    #[test]
    fn what_a_client_may_not_send_is_an_error() {
        let mut frames = Frames::default();
        let unmasked = [0x81u8, 0x01, b'x'];
        assert_eq!(
            frames.next(&mut BytesMut::from(&unmasked[..]), 100),
            Err(FrameError::Protocol)
        );
        let continuation = client_frame(0x80, b"x");
        assert_eq!(
            Frames::default().next(&mut BytesMut::from(&continuation[..]), 100),
            Err(FrameError::Protocol)
        );
        let not_utf8 = client_frame(0x81, &[0xff, 0xfe]);
        assert_eq!(
            Frames::default().next(&mut BytesMut::from(&not_utf8[..]), 100),
            Err(FrameError::Protocol)
        );
        let long_ping = client_frame(0x89, &[0; 126]);
        assert_eq!(
            Frames::default().next(&mut BytesMut::from(&long_ping[..]), 1000),
            Err(FrameError::Protocol)
        );
    }

    #[test]
    fn the_accept_key_of_rfc_6455() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    proptest::proptest! {
        #[test]
        fn reading_any_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut frames = Frames::default();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = frames.next(&mut buf, 200) {}
        }
    }
}
