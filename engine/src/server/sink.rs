//! The sending side of one websocket: a frame is written to the socket directly by whichever
//! task has it (a broadcast's fan-out, the reader answering) while the kernel's send buffer
//! takes it; what it does not take waits in a bounded queue that a task, spawned only then,
//! flushes. Over the bound the connection is closed.

use crate::locks::lock;
use std::{
    collections::VecDeque,
    io::{self, IoSlice},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::{net::TcpStream, sync::Notify};
use tungstenite::protocol::frame::{FrameHeader, coding::OpCode};

/// Why a frame was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The connection is closed.
    Closed,
    /// The queue would exceed its bound: the connection is now closed.
    Full,
}

impl From<Refused> for super::CloseReason {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Full => Self::TooSlow,
            Refused::Closed => Self::TransportClosed,
        }
    }
}

/// What waits to be written, and whether a flush task owns the socket's writes.
#[derive(Default)]
struct Pending {
    frames: VecDeque<Bytes>,
    bytes: usize,
    flushing: bool,
}

/// The sending side of one websocket.
pub(crate) struct Sink {
    stream: Arc<TcpStream>,
    pending: Mutex<Pending>,
    max_buffered: usize,
    /// How long queued bytes may wait for the socket to take any.
    max_stall: Duration,
    closed: AtomicBool,
    /// Why the sending side closed, when it was not asked to.
    reason: OnceLock<super::CloseReason>,
    /// Wakes the reader when the sending side closes the connection.
    closing: Notify,
}

impl Sink {
    /// The sending side of `stream` (shared with its reader), queueing at most `max_buffered`
    /// bytes for at most `max_stall` without progress.
    pub(crate) fn new(
        stream: Arc<TcpStream>,
        max_buffered: usize,
        max_stall: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            stream,
            pending: Mutex::default(),
            max_buffered,
            max_stall,
            closed: AtomicBool::new(false),
            reason: OnceLock::new(),
            closing: Notify::new(),
        })
    }

    /// Whether the connection was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the connection closed and wakes its reader, which drops the socket.
    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.closing.notify_one();
        }
    }

    /// Closes the connection because of `reason` (the reader reports it).
    fn close_for(&self, reason: super::CloseReason) {
        let _first = self.reason.set(reason);
        self.close();
    }

    /// Why the sending side closed by itself (a stall), if it did.
    pub(crate) fn reason(&self) -> Option<super::CloseReason> {
        self.reason.get().copied()
    }

    /// Resolves once [`Sink::close`] was called.
    pub(crate) async fn closed(&self) {
        let notified = self.closing.notified();
        if !self.is_closed() {
            notified.await;
        }
    }

    /// Sends a text frame of `payload` after everything sent before it.
    pub(crate) fn text(self: &Arc<Self>, payload: &Bytes) -> Result<(), Refused> {
        self.frame(TEXT, payload, false).map(|_| ())
    }

    /// Sends a binary frame of `payload` after everything sent before it.
    pub(crate) fn binary(self: &Arc<Self>, payload: &Bytes) -> Result<(), Refused> {
        self.frame(BINARY, payload, false).map(|_| ())
    }

    /// Sends a text (or `binary`) frame of `payload` only if the socket takes it now: nothing
    /// queued before it and room in the send buffer. `Ok(false)` when it was dropped.
    pub(crate) fn now(self: &Arc<Self>, payload: &Bytes, binary: bool) -> Result<bool, Refused> {
        self.frame(if binary { BINARY } else { TEXT }, payload, true)
    }

    /// Sends a control frame (`Pong`, `Close`) of `payload`.
    pub(crate) fn control(
        self: &Arc<Self>,
        control: tungstenite::protocol::frame::coding::Control,
        payload: &Bytes,
    ) -> Result<(), Refused> {
        self.frame(OpCode::Control(control), payload, false)
            .map(|_| ())
    }

    /// Writes or queues one frame; a `volatile` one is dropped (`Ok(false)`) rather than
    /// queued whole.
    fn frame(
        self: &Arc<Self>,
        opcode: OpCode,
        payload: &Bytes,
        volatile: bool,
    ) -> Result<bool, Refused> {
        if self.is_closed() {
            return Err(Refused::Closed);
        }
        let head = head(opcode, payload.len());
        let mut pending = lock(&self.pending);
        if pending.flushing || !pending.frames.is_empty() {
            if volatile {
                return Ok(false);
            }
            return self
                .enqueue(&mut pending, joined(&head, payload, 0))
                .map(|()| true);
        }
        let parts = [IoSlice::new(&head), IoSlice::new(payload)];
        match self.stream.try_write_vectored(&parts) {
            Ok(written) if written == head.len() + payload.len() => Ok(true),
            Ok(written) => {
                // Part of the frame is out: the rest must follow, volatile or not.
                let queued = self.enqueue(&mut pending, joined(&head, payload, written));
                self.start_flush(&mut pending);
                queued.map(|()| true)
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                if volatile {
                    return Ok(false);
                }
                let queued = self.enqueue(&mut pending, joined(&head, payload, 0));
                self.start_flush(&mut pending);
                queued.map(|()| true)
            }
            Err(_) => {
                drop(pending);
                self.close();
                Err(Refused::Closed)
            }
        }
    }

    fn enqueue(&self, pending: &mut Pending, bytes: Bytes) -> Result<(), Refused> {
        if pending.bytes + bytes.len() > self.max_buffered {
            pending.frames.clear();
            pending.bytes = 0;
            self.close();
            return Err(Refused::Full);
        }
        pending.bytes += bytes.len();
        pending.frames.push_back(bytes);
        Ok(())
    }

    fn start_flush(self: &Arc<Self>, pending: &mut Pending) {
        if pending.flushing || self.is_closed() {
            return;
        }
        pending.flushing = true;
        tokio::spawn(self.clone().flush());
    }

    /// Writes the queue out as the socket becomes writable, then gives the writes back. A
    /// socket that takes nothing for `max_stall` is closed as too slow.
    async fn flush(self: Arc<Self>) {
        loop {
            match tokio::time::timeout(self.max_stall, self.stream.writable()).await {
                Err(_stalled) => return self.close_for(super::CloseReason::TooSlow),
                Ok(Err(_)) => return self.close(),
                Ok(Ok(())) if self.is_closed() => return,
                Ok(Ok(())) => {}
            }
            let mut pending = lock(&self.pending);
            while let Some(front) = pending.frames.pop_front() {
                match self.stream.try_write(&front) {
                    Ok(written) => {
                        pending.bytes -= written;
                        if written < front.len() {
                            pending.frames.push_front(front.slice(written..));
                            break;
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        pending.frames.push_front(front);
                        break;
                    }
                    Err(_) => {
                        drop(pending);
                        return self.close();
                    }
                }
            }
            if pending.frames.is_empty() {
                pending.flushing = false;
                return;
            }
        }
    }
}

/// Text frames' opcode.
const TEXT: OpCode = OpCode::Data(tungstenite::protocol::frame::coding::Data::Text);
/// Binary frames' opcode.
const BINARY: OpCode = OpCode::Data(tungstenite::protocol::frame::coding::Data::Binary);

/// The header of a final, unmasked server frame of `opcode` with `len` payload bytes.
fn head(opcode: OpCode, len: usize) -> BytesMut {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let len = len as u64;
    let mut head = BytesMut::with_capacity(header.len(len)).writer();
    // Writing into memory cannot fail.
    let _infallible = header.format(len, &mut head);
    head.into_inner()
}

/// `head` then `payload`, without their first `skip` bytes (already written).
fn joined(head: &[u8], payload: &Bytes, skip: usize) -> Bytes {
    if skip >= head.len() {
        return payload.slice(skip - head.len()..);
    }
    let mut bytes = BytesMut::with_capacity(head.len() + payload.len() - skip);
    bytes.put_slice(&head[skip..]);
    bytes.put_slice(payload);
    bytes.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_frames_are_final_unmasked_and_carry_their_length() {
        assert_eq!(&head(TEXT, 2)[..], &[0x81, 2]);
        assert_eq!(&head(TEXT, 300)[..], &[0x81, 126, 1, 44]);
        assert_eq!(head(TEXT, 70_000).len(), 10);
        let payload = Bytes::from_static(b"42");
        assert_eq!(&joined(&[0x81, 2], &payload, 1)[..], &[2, b'4', b'2']);
        assert_eq!(&joined(&[0x81, 2], &payload, 3)[..], b"2");
    }
}
