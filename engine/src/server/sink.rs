//! The sending side of one websocket: a frame is written to the socket directly by whichever
//! task has it (a broadcast's fan-out, the reader answering) while the kernel's send buffer
//! takes it; what it does not take waits in a bounded queue that a task, spawned only then,
//! flushes. Over the bound the connection is closed.
//!
//! While the sink is corked ([`Sink::cork`]), frames wait in that queue instead, and the
//! last cork out writes them all with one vectored write: a handler's acknowledgement and
//! the broadcast it sent its own socket leave together.

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
use socket2::SockRef;
use tokio::{io::Interest, net::TcpStream, sync::Notify};
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

/// What waits to be written, whether a flush task owns the socket's writes, and how many
/// corks hold them back.
#[derive(Default)]
struct Pending {
    frames: VecDeque<Bytes>,
    bytes: usize,
    flushing: bool,
    corks: usize,
}

/// Frames written to a corked sink wait until the last [`Cork`] is dropped, then leave in
/// one vectored write.
pub(crate) struct Cork(Arc<Sink>);

impl Drop for Cork {
    fn drop(&mut self) {
        self.0.uncork();
    }
}

/// The most frames one vectored write carries (well under the kernel's `IOV_MAX`).
const MAX_SLICES: usize = 64;

/// The largest frame sent from one buffer on the stack (a chat line's is about 250 bytes).
const ONE_BUFFER: usize = 1024;

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
        // Behind a flush (or frames it will take), a volatile frame is dropped; behind a
        // cork it only waits for the end of the cork, so it goes with the others.
        let behind = pending.flushing || (pending.corks == 0 && !pending.frames.is_empty());
        if behind || pending.corks > 0 {
            if volatile && behind {
                return Ok(false);
            }
            return self
                .enqueue(&mut pending, joined(&head, payload, 0))
                .map(|()| true);
        }
        match self.send_frame(&head, payload) {
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

    /// Writes `head` then `payload` as far as the socket takes them now: a frame of at most
    /// [`ONE_BUFFER`] bytes copied into one buffer and sent with `send`, which costs the
    /// kernel less than a vectored write of its two parts (`bench/write-floor`); a larger one
    /// with a vectored write.
    fn send_frame(&self, head: &[u8], payload: &[u8]) -> io::Result<usize> {
        let len = head.len() + payload.len();
        if len > ONE_BUFFER {
            return self
                .stream
                .try_write_vectored(&[IoSlice::new(head), IoSlice::new(payload)]);
        }
        let mut frame = [0; ONE_BUFFER];
        frame[..head.len()].copy_from_slice(head);
        frame[head.len()..len].copy_from_slice(payload);
        self.send(&frame[..len])
    }

    /// Sends `bytes` as far as the socket takes them now, with `send` rather than `write`
    /// (a socket's own call, cheaper in the kernel).
    fn send(&self, bytes: &[u8]) -> io::Result<usize> {
        self.stream.try_io(Interest::WRITABLE, || {
            SockRef::from(&*self.stream).send(bytes)
        })
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

    /// Holds this sink's frames back until the returned cork (and every other) is dropped.
    pub(crate) fn cork(self: &Arc<Self>) -> Cork {
        lock(&self.pending).corks += 1;
        Cork(self.clone())
    }

    /// Drops one cork; the last one out writes what waits, and hands what the socket does
    /// not take to a flush task.
    fn uncork(self: &Arc<Self>) {
        let mut pending = lock(&self.pending);
        pending.corks -= 1;
        if pending.corks > 0 || pending.flushing || pending.frames.is_empty() || self.is_closed() {
            return;
        }
        match self.write_pending(&mut pending) {
            Ok(()) if pending.frames.is_empty() => {}
            Ok(()) => self.start_flush(&mut pending),
            Err(()) => {
                drop(pending);
                self.close();
            }
        }
    }

    /// Writes queued frames, up to [`MAX_SLICES`] per vectored write, until the queue is
    /// empty or the socket takes no more; `Err` when the connection failed.
    fn write_pending(&self, pending: &mut Pending) -> Result<(), ()> {
        while !pending.frames.is_empty() {
            let sent = match pending.frames.as_slices() {
                ([frame], []) | ([], [frame]) => self.send(frame),
                _ => {
                    let slices: Vec<IoSlice<'_>> = pending
                        .frames
                        .iter()
                        .take(MAX_SLICES)
                        .map(|frame| IoSlice::new(frame))
                        .collect();
                    self.stream.try_write_vectored(&slices)
                }
            };
            let mut written = match sent {
                // Nothing taken from non-empty frames: the connection is gone.
                Ok(0) => return Err(()),
                Ok(written) => written,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(_) => return Err(()),
            };
            pending.bytes -= written;
            while written > 0 {
                let Some(front) = pending.frames.pop_front() else {
                    break;
                };
                if written < front.len() {
                    pending.frames.push_front(front.slice(written..));
                    return Ok(());
                }
                written -= front.len();
            }
        }
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
            if self.write_pending(&mut pending).is_err() {
                drop(pending);
                return self.close();
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

/// The longest header of an unmasked frame: 2 bytes, then a 64-bit length.
const MAX_HEAD: usize = 10;

/// The header of a final, unmasked server frame of `opcode` with `len` payload bytes.
fn head(opcode: OpCode, len: usize) -> Head {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let len = len as u64;
    let mut head = Head {
        bytes: [0; MAX_HEAD],
        len: header.len(len),
    };
    // The header fits: `header.len` is at most MAX_HEAD for an unmasked frame.
    let _fits = header.format(len, &mut &mut head.bytes[..]);
    head
}

/// A frame's header, on the stack.
struct Head {
    bytes: [u8; MAX_HEAD],
    len: usize,
}

impl std::ops::Deref for Head {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::{io::AsyncReadExt, net::TcpListener};

    /// A sink on one end of a loopback connection, and the other end.
    async fn pair() -> (Arc<Sink>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let sink = Sink::new(Arc::new(server), 1 << 20, Duration::from_secs(5));
        (sink, client)
    }

    /// Reads exactly `len` bytes from `client`.
    async fn read(client: &mut TcpStream, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        client.read_exact(&mut bytes).await.unwrap();
        bytes
    }

    #[tokio::test]
    async fn a_corked_sink_writes_nothing_until_the_last_cork_goes_then_everything_in_order() {
        let (sink, mut client) = pair().await;
        let outer = sink.cork();
        let inner = sink.cork();
        sink.text(&Bytes::from_static(b"a")).unwrap();
        // A volatile frame behind a cork waits with the others instead of being dropped.
        assert_eq!(sink.now(&Bytes::from_static(b"b"), false), Ok(true));
        drop(inner);
        sink.text(&Bytes::from_static(b"c")).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut probe = [0; 1];
        let early = client.try_read(&mut probe);
        assert!(
            matches!(&early, Err(err) if err.kind() == io::ErrorKind::WouldBlock),
            "written before the last cork went: {early:?}"
        );
        drop(outer);
        assert_eq!(
            read(&mut client, 9).await,
            [0x81, 1, b'a', 0x81, 1, b'b', 0x81, 1, b'c']
        );
        // Uncorked, a frame goes out at once again.
        sink.text(&Bytes::from_static(b"d")).unwrap();
        assert_eq!(read(&mut client, 3).await, [0x81, 1, b'd']);
    }

    #[tokio::test]
    async fn corked_frames_count_against_the_bound() {
        let (sink, _client) = pair().await;
        let cork = sink.cork();
        let over = Bytes::from(vec![b'x'; 2 << 20]);
        assert_eq!(sink.binary(&over), Err(Refused::Full));
        drop(cork);
        assert!(sink.is_closed());
    }

    #[tokio::test]
    async fn frames_corked_behind_a_flush_follow_what_it_writes() {
        let (sink, mut client) = pair().await;
        // More than a fresh loopback socket takes at once: the rest goes to the flush task.
        let big = Bytes::from(vec![b'y'; 900 << 10]);
        sink.binary(&big).unwrap();
        let cork = sink.cork();
        sink.text(&Bytes::from_static(b"z")).unwrap();
        drop(cork);
        let head = read(&mut client, 10).await;
        assert_eq!(head[..2], [0x82, 127]);
        assert!(
            read(&mut client, big.len())
                .await
                .iter()
                .all(|b| *b == b'y')
        );
        assert_eq!(read(&mut client, 3).await, [0x81, 1, b'z']);
    }

    #[tokio::test]
    async fn frames_on_either_side_of_the_one_buffer_size_arrive_whole() {
        let (sink, mut client) = pair().await;
        // 4 header bytes: ONE_BUFFER - 4 payload bytes fill the buffer, one more does not.
        for len in [ONE_BUFFER - 4, ONE_BUFFER - 3] {
            let payload = Bytes::from(vec![b'q'; len]);
            sink.text(&payload).unwrap();
            let frame = read(&mut client, 4 + len).await;
            assert_eq!(&frame[..4], &*head(TEXT, len));
            assert!(
                frame[4..].iter().all(|b| *b == b'q'),
                "payload of {len} bytes"
            );
        }
    }

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
