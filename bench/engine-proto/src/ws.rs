//! The websocket protocol (RFC 6455) as far as the prototype needs it: the upgrade answer,
//! server frames (unmasked, so one frame's bytes serve every recipient) and client frames
//! (masked, unfragmented, at most a bound).

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::{BufMut, Bytes, BytesMut};
use sha1::{Digest, Sha1};

/// The GUID of RFC 6455 §1.3.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Text frame opcode.
pub const TEXT: u8 = 0x1;
/// Close frame opcode.
pub const CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const PING: u8 = 0x9;
/// Pong frame opcode.
pub const PONG: u8 = 0xA;

/// The `101 Switching Protocols` answer to a request with `Sec-WebSocket-Key: key`.
pub fn upgrade_response(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    let accept = STANDARD.encode(sha.finalize());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
}

/// One final, unmasked server frame of `opcode` carrying `parts` concatenated.
pub fn frame(opcode: u8, parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    let mut buf = BytesMut::with_capacity(len + 10);
    buf.put_u8(0x80 | opcode);
    match len {
        0..=125 => buf.put_u8(len as u8),
        126..=0xffff => {
            buf.put_u8(126);
            buf.put_u16(len as u16);
        }
        _ => {
            buf.put_u8(127);
            buf.put_u64(len as u64);
        }
    }
    for part in parts {
        buf.put_slice(part);
    }
    buf.freeze()
}

/// A client frame, unmasked.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    /// Its opcode.
    pub opcode: u8,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// Why the client's bytes are not a frame we read.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Unmasked, fragmented, or with reserved bits.
    Protocol,
    /// Longer than the bound.
    TooLong,
}

/// Takes one client frame off the front of `buf`: `Ok(None)` when it is not complete yet.
pub fn parse(buf: &mut BytesMut, max_payload: usize) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (first, second) = (buf[0], buf[1]);
    if first & 0x80 == 0 || first & 0x70 != 0 || second & 0x80 == 0 {
        return Err(FrameError::Protocol);
    }
    let (len, header) = match second & 0x7f {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&buf[2..10]);
            (
                usize::try_from(u64::from_be_bytes(bytes)).unwrap_or(usize::MAX),
                10,
            )
        }
        126 | 127 => return Ok(None),
        short => (usize::from(short), 2),
    };
    if len > max_payload {
        return Err(FrameError::TooLong);
    }
    if buf.len() < header + 4 + len {
        return Ok(None);
    }
    let frame = buf.split_to(header + 4 + len);
    let mask = [
        frame[header],
        frame[header + 1],
        frame[header + 2],
        frame[header + 3],
    ];
    let payload = frame[header + 4..]
        .iter()
        .enumerate()
        .map(|(i, byte)| byte ^ mask[i % 4])
        .collect();
    Ok(Some(Frame {
        opcode: first & 0x0f,
        payload,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_of_rfc_6455() {
        assert!(
            upgrade_response("dGhlIHNhbXBsZSBub25jZQ==").contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn a_masked_client_frame_reads_back_and_a_partial_one_waits() {
        let mask = [1u8, 2, 3, 4];
        let text = b"42[\"join\"]";
        let mut bytes = vec![0x81, 0x80 | text.len() as u8];
        bytes.extend_from_slice(&mask);
        bytes.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let mut buf = BytesMut::from(&bytes[..5]);
        assert_eq!(parse(&mut buf, 100), Ok(None));
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = parse(&mut buf, 100).unwrap().unwrap();
        assert_eq!((frame.opcode, &frame.payload[..]), (TEXT, &text[..]));
        assert!(buf.is_empty());
        let mut unmasked = BytesMut::from(&[0x81u8, 0x01, b'x'][..]);
        assert_eq!(parse(&mut unmasked, 100), Err(FrameError::Protocol));
    }

    #[test]
    fn server_frames_carry_their_length() {
        assert_eq!(&frame(TEXT, &[b"4", b"2"])[..], &[0x81, 2, b'4', b'2']);
        let long = vec![b'x'; 300];
        let framed = frame(TEXT, &[&long]);
        assert_eq!(&framed[..4], &[0x81, 126, 1, 44]);
    }
}
