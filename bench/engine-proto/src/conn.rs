//! One client connection's sending side: a frame is written to the socket directly by
//! whichever task has it (the fan-out, the reader answering an ack) while the kernel's send
//! buffer takes it; what it does not take waits in a bounded per-socket queue that a task,
//! spawned only then, flushes. Over the bound the connection is closed (counted).

use std::{
    collections::VecDeque,
    io,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use tokio::{net::TcpStream, sync::Notify};

/// Bytes that may wait for one socket before it is closed as too slow.
pub const QUEUE_MAX_BYTES: usize = 4 << 20;

/// Connections closed because their queue overflowed.
pub static OVERFLOWS: AtomicU64 = AtomicU64::new(0);

/// What waits to be written, and whether a flush task owns the socket's writes.
#[derive(Default)]
struct Pending {
    frames: VecDeque<Bytes>,
    bytes: usize,
    flushing: bool,
}

/// The sending side of one connection.
pub struct Conn {
    stream: Arc<TcpStream>,
    pending: Mutex<Pending>,
    closed: AtomicBool,
    /// Wakes the reader when the sending side closes the connection.
    pub closing: Notify,
}

impl Conn {
    /// The connection over `stream` (shared with its reader).
    pub fn new(stream: Arc<TcpStream>) -> Arc<Self> {
        Arc::new(Self {
            stream,
            pending: Mutex::default(),
            closed: AtomicBool::new(false),
            closing: Notify::new(),
        })
    }

    /// Whether the connection was closed (by the peer, or as too slow).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Marks the connection closed and wakes its reader, which drops the socket.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            self.closing.notify_one();
        }
    }

    /// Sends `frame` after everything sent before it.
    pub fn send(self: &Arc<Self>, frame: Bytes) {
        if self.is_closed() {
            return;
        }
        let mut pending = lock(&self.pending);
        if pending.flushing || !pending.frames.is_empty() {
            self.enqueue(&mut pending, frame);
            return;
        }
        match write_some(&self.stream, &frame) {
            Ok(written) if written == frame.len() => {}
            Ok(written) => {
                self.enqueue(&mut pending, frame.slice(written..));
                self.start_flush(&mut pending);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                self.enqueue(&mut pending, frame);
                self.start_flush(&mut pending);
            }
            Err(_) => {
                drop(pending);
                self.close();
            }
        }
    }

    fn enqueue(&self, pending: &mut Pending, frame: Bytes) {
        pending.bytes += frame.len();
        pending.frames.push_back(frame);
        if pending.bytes > QUEUE_MAX_BYTES {
            OVERFLOWS.fetch_add(1, Ordering::Relaxed);
            pending.frames.clear();
            pending.bytes = 0;
            self.close();
        }
    }

    fn start_flush(self: &Arc<Self>, pending: &mut Pending) {
        if pending.flushing || self.is_closed() {
            return;
        }
        pending.flushing = true;
        tokio::spawn(self.clone().flush());
    }

    /// Writes the queue out as the socket becomes writable, then gives the writes back.
    async fn flush(self: Arc<Self>) {
        loop {
            if self.stream.writable().await.is_err() || self.is_closed() {
                return self.close();
            }
            let mut pending = lock(&self.pending);
            while let Some(front) = pending.frames.pop_front() {
                match write_some(&self.stream, &front) {
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

fn write_some(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    stream.try_write(bytes)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
