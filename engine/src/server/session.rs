//! One engine.io session: its transport (long-polling, or a websocket from the handshake or
//! after an upgrade), what waits for a polling client, the heartbeat, and its close.

use crate::locks::lock;
use std::{
    any::Any,
    collections::VecDeque,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::Notify;

use super::{CloseReason, Message, Packet, Shared, query::Refusal, sink::Sink};
use crate::{
    eio::{self, PayloadPacket},
    slot::Slot,
};

pin_project_lite::pin_project! {
    /// A future whose every poll holds back what its session is sent ([`Session::corked`]).
    /// A struct rather than an `async fn`, whose state would hold the wrapped future twice
    /// (the argument and the pinned copy it polls).
    pub struct Corked<'a, F> {
        session: &'a Session,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Corked<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _cork = this.session.cork();
        this.future.poll(cx)
    }
}

/// One client's engine.io session, shared by its transports and the layer above.
pub struct Session {
    sid: Arc<str>,
    request: http::request::Parts,
    peer: SocketAddr,
    state: Mutex<State>,
    /// Wakes the pending polling request when something changed.
    wake: Notify,
    /// Whether a pong arrived since the last ping.
    pong: AtomicBool,
    closed: AtomicBool,
    shared: Weak<Shared>,
    /// What the layer above keeps with the session (Socket.IO: its namespaces' sockets).
    extension: Slot,
}

/// Where a session's packets go.
enum State {
    Polling(Polling),
    Websocket(Arc<Sink>),
    Closed(CloseReason),
}

/// A long-polling session between requests.
#[derive(Default)]
struct Polling {
    queue: VecDeque<Packet>,
    bytes: usize,
    /// A GET waits for packets.
    polling: bool,
    /// A POST is being handled.
    posting: bool,
    /// A websocket probes for an upgrade.
    upgrading: bool,
    /// The pending GET is to be answered NOOP: the upgrade's probe succeeded.
    release: bool,
}

/// The text of a NOOP payload, ending a pending GET with nothing.
const NOOP: &str = "6";
/// The text of a CLOSE payload.
const CLOSE: &str = "1";

impl Session {
    /// A session `sid` opened by `request` from `peer`, on polling or on `websocket`.
    pub(crate) fn new(
        sid: Arc<str>,
        mut request: http::request::Parts,
        peer: SocketAddr,
        websocket: Option<Arc<Sink>>,
        shared: Weak<Shared>,
    ) -> Arc<Self> {
        // What hyper keeps in a request's extensions is its own, not the session's.
        request.extensions = http::Extensions::new();
        let state = match websocket {
            Some(sink) => State::Websocket(sink),
            None => State::Polling(Polling::default()),
        };
        Arc::new(Self {
            sid,
            request,
            peer,
            state: Mutex::new(state),
            wake: Notify::new(),
            pong: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            shared,
            extension: Slot::default(),
        })
    }

    /// The session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The request that opened the session (headers with the cookies, the URI with its query).
    pub fn request(&self) -> &http::request::Parts {
        &self.request
    }

    /// The address the opening request came from (a proxy's, behind one).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Keeps `value` with the session, once: the layer above's state for it. `Err` gives it
    /// back when the session already has one.
    pub fn set_extension<T: Any + Send + Sync>(&self, value: T) -> Result<(), T> {
        self.extension.set(value)
    }

    /// What [`Session::set_extension`] kept, if it is a `T`.
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.extension.get()
    }

    /// Whether the session was closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether the session's transport is a websocket (from the start or upgraded).
    pub fn is_websocket(&self) -> bool {
        matches!(*lock(&self.state), State::Websocket(_))
    }

    /// Sends `packet` after everything sent before it. A session whose transport cannot take
    /// it (more than the configured bytes waiting) is closed as too slow; `false` when the
    /// packet was not sent.
    pub fn send(&self, packet: &Packet) -> bool {
        self.send_all(std::slice::from_ref(packet))
    }

    /// Sends `packets` one after the other with nothing else between them (a binary packet
    /// and its attachments), as [`Session::send`] does one.
    pub fn send_all(&self, packets: &[Packet]) -> bool {
        self.settle(self.try_send_all(packets))
    }

    /// Sends `packet` only if the transport takes it at once (a websocket with nothing
    /// queued and room in its send buffer, a polling GET waiting with nothing before it);
    /// `false` when it was dropped. For what may be lost: typing notices, volatile emits.
    pub fn send_volatile(&self, packet: &Packet) -> bool {
        self.settle(self.try_send_volatile(packet))
    }

    /// Like [`Session::send_all`], but a session its transport refuses is not closed here:
    /// `Err` says why it must be, which the caller does with [`Session::close_with`] once it
    /// holds no lock of its own (the close runs the handler's `on_close`). `Ok(false)`: the
    /// session was closed already.
    pub(crate) fn try_send_all(&self, packets: &[Packet]) -> Result<bool, CloseReason> {
        let mut state = lock(&self.state);
        match &mut *state {
            State::Polling(polling) => {
                let max = self
                    .shared
                    .upgrade()
                    .map_or(0, |shared| shared.config.max_buffered);
                let len: usize = packets.iter().map(Packet::len).sum();
                if polling.bytes + len > max {
                    return Err(CloseReason::TooSlow);
                }
                polling.bytes += len;
                polling.queue.extend(packets.iter().cloned());
            }
            State::Websocket(sink) => packets
                .iter()
                .try_for_each(|packet| write(sink, packet))
                .map_err(CloseReason::from)?,
            State::Closed(_) => return Ok(false),
        }
        drop(state);
        self.wake.notify_waiters();
        Ok(true)
    }

    /// Like [`Session::send_volatile`], leaving the close of a session its transport refuses
    /// to the caller as [`Session::try_send_all`] does.
    pub(crate) fn try_send_volatile(&self, packet: &Packet) -> Result<bool, CloseReason> {
        let mut state = lock(&self.state);
        let sent = match &mut *state {
            State::Polling(polling) if polling.polling && polling.queue.is_empty() => {
                polling.bytes += packet.len();
                polling.queue.push_back(packet.clone());
                true
            }
            State::Polling(_) | State::Closed(_) => false,
            State::Websocket(sink) => match packet {
                Packet::Text(bytes) => sink.now(bytes, false),
                Packet::Binary(bytes) => sink.now(bytes, true),
            }
            .map_err(CloseReason::from)?,
        };
        drop(state);
        if sent {
            self.wake.notify_waiters();
        }
        Ok(sent)
    }

    /// Runs `future`, holding back what this session is sent during each of its polls and
    /// writing it all at the end of the poll in one vectored write (on websocket; polling
    /// batches by itself). A handler that broadcasts to its own socket and then acks costs
    /// that client one write instead of two; nothing waits longer than the poll it was sent in.
    pub fn corked<F: Future>(&self, future: F) -> Corked<'_, F> {
        Corked {
            session: self,
            future,
        }
    }

    /// A cork on the websocket's sink, if the session is on one.
    fn cork(&self) -> Option<super::sink::Cork> {
        match &*lock(&self.state) {
            State::Websocket(sink) => Some(sink.cork()),
            State::Polling(_) | State::Closed(_) => None,
        }
    }

    /// Whether a send went through; a session its transport refused is closed.
    pub(crate) fn settle(&self, sent: Result<bool, CloseReason>) -> bool {
        sent.unwrap_or_else(|reason| {
            self.close_with(reason);
            false
        })
    }

    /// Closes the session from the server's side: the client is sent CLOSE.
    pub fn close(&self) {
        self.close_with(CloseReason::ServerClosed);
    }

    /// Closes the session for `reason`, once: its transport is told (a pending GET answers,
    /// a websocket is sent CLOSE unless the client ended it) and the handler learns why.
    pub(crate) fn close_with(&self, reason: CloseReason) {
        if !self.end(reason, reason.client_is_told()) {
            return;
        }
        if let Some(shared) = self.shared.upgrade() {
            if reason == CloseReason::TooSlow {
                shared.slow_closed.fetch_add(1, Ordering::Relaxed);
                tracing::info!(sid = %self.sid, "session closed: its client stayed behind");
            }
            shared.forget(&self.sid);
            shared.handler.on_close(self, reason);
        }
    }

    /// Ends the session without a word to anyone: its server is gone. Its transport closes
    /// (a websocket's connection with the last reference to it).
    pub(crate) fn abandon(&self) {
        self.end(CloseReason::ServerClosed, false);
    }

    /// Marks the session closed for `reason` and closes its transport (a websocket sent
    /// CLOSE first when `tell_client`), waking a pending GET; `false` when it was closed
    /// already.
    fn end(&self, reason: CloseReason, tell_client: bool) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        let previous = std::mem::replace(&mut *lock(&self.state), State::Closed(reason));
        if let State::Websocket(sink) = previous {
            if tell_client {
                let _gone = sink.text(&Bytes::from_static(CLOSE.as_bytes()));
                let _gone = sink.control(
                    tungstenite::protocol::frame::coding::Control::Close,
                    &Bytes::new(),
                );
            }
            sink.close();
        }
        self.wake.notify_waiters();
        true
    }

    /// Whether the handler counts the session established (see
    /// [`Handler::is_established`](super::Handler::is_established)).
    pub(crate) fn is_established(&self) -> bool {
        self.shared
            .upgrade()
            .is_none_or(|shared| shared.handler.is_established(self))
    }

    /// Records a PONG.
    pub(crate) fn ponged(&self) {
        self.pong.store(true, Ordering::Release);
    }

    /// Sends a PING and starts waiting for its PONG.
    pub(crate) fn ping(&self) {
        self.pong.store(false, Ordering::Release);
        self.send(&Packet::text_static(b"2"));
    }

    /// Whether a PONG arrived since the last [`Session::ping`].
    pub(crate) fn has_ponged(&self) -> bool {
        self.pong.load(Ordering::Acquire)
    }

    /// Hands one client packet to the handler or acts on it; `Err` closes the session.
    pub(crate) fn receive(
        &self,
        packet: Result<PayloadPacket<'_>, crate::Error>,
    ) -> Result<(), CloseReason> {
        let packet = packet.map_err(|_| CloseReason::InvalidPacket)?;
        let message = match packet {
            PayloadPacket::Binary(bytes) => Message::Binary(bytes),
            PayloadPacket::Text(eio::Packet {
                kind: eio::Kind::Message,
                data,
            }) => Message::Text(data),
            PayloadPacket::Text(eio::Packet {
                kind: eio::Kind::Pong,
                ..
            }) => {
                self.ponged();
                return Ok(());
            }
            PayloadPacket::Text(eio::Packet {
                kind: eio::Kind::Noop,
                ..
            }) => return Ok(()),
            PayloadPacket::Text(eio::Packet {
                kind: eio::Kind::Close,
                ..
            }) => return Err(CloseReason::ClientClosed),
            PayloadPacket::Text(_) => return Err(CloseReason::InvalidPacket),
        };
        if let Some(shared) = self.shared.upgrade() {
            shared.handler.on_message(self, message);
        }
        Ok(())
    }

    /// A polling GET: waits until there is something to send and returns the payload.
    pub(crate) async fn poll(&self) -> Result<Bytes, Refusal> {
        {
            let mut state = lock(&self.state);
            match &mut *state {
                State::Polling(polling) if polling.polling => {
                    drop(state);
                    // engine.io: a second GET while one waits ends the session.
                    self.close_with(CloseReason::DuplicatePoll);
                    return Err(Refusal::BadRequest);
                }
                State::Polling(polling) => polling.polling = true,
                State::Websocket(_) | State::Closed(_) => return Err(Refusal::BadRequest),
            }
        }
        let _waiting = Flag {
            session: self,
            flag: |polling| &mut polling.polling,
        };
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match &mut *lock(&self.state) {
                State::Polling(polling) if !polling.queue.is_empty() => {
                    polling.bytes = 0;
                    return Ok(payload(polling.queue.drain(..)));
                }
                State::Polling(polling) if polling.release => {
                    polling.release = false;
                    return Ok(Bytes::from_static(NOOP.as_bytes()));
                }
                State::Polling(_) => {}
                State::Websocket(_) => return Ok(Bytes::from_static(NOOP.as_bytes())),
                State::Closed(CloseReason::ClientClosed) => {
                    return Ok(Bytes::from_static(NOOP.as_bytes()));
                }
                State::Closed(_) => return Ok(Bytes::from_static(CLOSE.as_bytes())),
            }
            notified.await;
        }
    }

    /// A polling POST begins (its body not read yet). A POST while another is handled ends
    /// the session, as in engine.io; the guard marks the POST done when dropped.
    pub(crate) fn begin_post(&self) -> Result<Posting<'_>, Refusal> {
        let overlap = match &mut *lock(&self.state) {
            State::Polling(polling) if polling.posting => true,
            State::Polling(polling) => {
                polling.posting = true;
                false
            }
            State::Websocket(_) | State::Closed(_) => return Err(Refusal::BadRequest),
        };
        if overlap {
            self.close_with(CloseReason::OverlappingPost);
            return Err(Refusal::BadRequest);
        }
        Ok(Flag {
            session: self,
            flag: |polling| &mut polling.posting,
        })
    }

    /// The body of the POST begun with `_posting`: its packets in order. An invalid packet
    /// closes the session.
    pub(crate) fn post(&self, _posting: &Posting<'_>, body: &[u8]) -> Result<(), Refusal> {
        let outcome = std::str::from_utf8(body)
            .map_err(|_| CloseReason::InvalidPacket)
            .and_then(|payload| {
                eio::split_payload(payload)
                    .try_for_each(|packet| self.receive(eio::decode_payload_packet(packet)))
            });
        match outcome {
            Ok(()) => Ok(()),
            Err(CloseReason::ClientClosed) => {
                self.close_with(CloseReason::ClientClosed);
                Ok(())
            }
            Err(reason) => {
                self.close_with(reason);
                Err(Refusal::BadRequest)
            }
        }
    }

    /// A websocket asks to take this polling session over.
    pub(crate) fn begin_upgrade(&self) -> Result<(), Refusal> {
        match &mut *lock(&self.state) {
            State::Polling(polling) if !polling.upgrading => {
                polling.upgrading = true;
                Ok(())
            }
            _ => Err(Refusal::BadRequest),
        }
    }

    /// The upgrading websocket answered its probe: the pending GET is released (NOOP) so that
    /// the client can complete the upgrade.
    pub(crate) fn probed(&self) {
        if let State::Polling(polling) = &mut *lock(&self.state) {
            polling.release = true;
        }
        self.wake.notify_waiters();
    }

    /// UPGRADE arrived on `sink`: it is the session's transport from now on, and whatever
    /// waited for the next poll goes to it first. `false` when the session ended meanwhile.
    pub(crate) fn complete_upgrade(&self, sink: &Arc<Sink>) -> bool {
        let mut state = lock(&self.state);
        let State::Polling(polling) = &mut *state else {
            return false;
        };
        let waiting = std::mem::take(&mut polling.queue);
        for packet in &waiting {
            if write(sink, packet).is_err() {
                drop(state);
                self.close_with(CloseReason::TooSlow);
                return false;
            }
        }
        *state = State::Websocket(sink.clone());
        drop(state);
        self.wake.notify_waiters();
        true
    }

    /// The upgrading websocket went away before UPGRADE: polling goes on.
    pub(crate) fn abort_upgrade(&self) {
        if let State::Polling(polling) = &mut *lock(&self.state) {
            polling.upgrading = false;
            polling.release = false;
        }
    }
}

/// A polling payload of `packets`: text as is, binary as `b` + base64, joined by the record
/// separator.
fn payload(packets: impl Iterator<Item = Packet>) -> Bytes {
    let mut payload = BytesMut::new();
    for packet in packets {
        if !payload.is_empty() {
            payload.put_u8(eio::SEPARATOR as u8);
        }
        match packet {
            Packet::Text(text) => payload.put_slice(&text),
            Packet::Binary(bytes) => payload.put_slice(eio::encode_binary(&bytes).as_bytes()),
        }
    }
    payload.freeze()
}

/// Writes `packet` as one websocket frame.
fn write(sink: &Arc<Sink>, packet: &Packet) -> Result<(), super::sink::Refused> {
    match packet {
        Packet::Text(text) => sink.text(text),
        Packet::Binary(bytes) => sink.binary(bytes),
    }
}

/// A polling POST being handled (see [`Session::begin_post`]).
pub(crate) type Posting<'a> = Flag<'a>;

/// Clears a flag of the polling state when a request ends, however it ends (a client that
/// drops its GET may poll again).
pub(crate) struct Flag<'a> {
    session: &'a Session,
    flag: fn(&mut Polling) -> &mut bool,
}

impl Drop for Flag<'_> {
    fn drop(&mut self) {
        if let State::Polling(polling) = &mut *lock(&self.session.state) {
            *(self.flag)(polling) = false;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_payload_joins_text_and_base64_binary() {
        let packets = [
            Packet::text_static(b"4hello"),
            Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        ];
        assert_eq!(&payload(packets.into_iter())[..], b"4hello\x1ebAQIDBA==");
    }
}
