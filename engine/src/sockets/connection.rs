//! One engine.io session's Socket.IO side: its sockets by namespace, the CONNECTs being
//! answered, the binary packet being reassembled, and the packets it reads. A packet that is
//! not one, or one the client may not send in that state, closes the session.

use crate::locks::lock;
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, Weak},
};

use bytes::Bytes;
use redis_adapter::Room;
use serde_json::{Value, json};

use super::{Ack, DisconnectReason, Event, nsp::Nsp, socket::Socket};
use crate::{
    Error,
    server::{CloseReason, Message, Packet, Session},
    sio::{self, Assembled, Assembler, BinaryPacket, Kind},
};

/// The Socket.IO state of one session.
pub(crate) struct Connection {
    session: Weak<Session>,
    namespaces: Arc<HashMap<String, Arc<Nsp>>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    sockets: HashMap<Arc<str>, Arc<Socket>>,
    /// Namespaces whose CONNECT waits for its answer.
    connecting: HashSet<Arc<str>>,
    assembler: Assembler,
}

impl Connection {
    /// The Socket.IO side of `session`, serving `namespaces`.
    pub(crate) fn new(session: &Arc<Session>, namespaces: Arc<HashMap<String, Arc<Nsp>>>) -> Self {
        Self {
            session: Arc::downgrade(session),
            namespaces,
            state: Mutex::default(),
        }
    }

    /// Whether a namespace is connected (its CONNECT accepted, not left since).
    pub(crate) fn has_sockets(&self) -> bool {
        !lock(&self.state).sockets.is_empty()
    }

    /// One engine.io message of the client.
    pub(crate) fn receive(&self, message: Message<'_>) {
        let read = match message {
            Message::Text(text) => self.text(text),
            Message::Binary(bytes) => self.binary(bytes),
        };
        if let Err(err) = read {
            tracing::debug!(%err, "not a Socket.IO packet: the session is closed");
            if let Some(session) = self.session.upgrade() {
                session.close_with(CloseReason::InvalidPacket);
            }
        }
    }

    fn text(&self, text: &str) -> Result<(), Error> {
        let packet = sio::decode(text)?;
        let assembled = lock(&self.state).assembler.text(packet)?;
        match assembled {
            Assembled::Waiting => Ok(()),
            Assembled::Binary(packet) => self.binary_packet(packet),
            Assembled::Text(packet) => match packet.kind {
                Kind::Connect => self.connect(packet.ns, packet.data),
                Kind::Disconnect => {
                    self.remove(packet.ns, DisconnectReason::ClientDisconnected)
                        .ok_or(Error::State)?;
                    Ok(())
                }
                Kind::Event => {
                    let args = serde_json::from_str(packet.data)
                        .map_err(|err| Error::InvalidJson(err.to_string()))?;
                    self.event(packet.ns, packet.ack, args, Vec::new())
                }
                Kind::Ack => {
                    let args = serde_json::from_str(packet.data)
                        .map_err(|err| Error::InvalidJson(err.to_string()))?;
                    self.ack(packet.ns, packet.ack, args, Vec::new())
                }
                Kind::ConnectError | Kind::BinaryEvent | Kind::BinaryAck => Err(Error::State),
            },
        }
    }

    fn binary(&self, bytes: Bytes) -> Result<(), Error> {
        let completed = lock(&self.state).assembler.binary(bytes)?;
        match completed {
            Some(packet) => self.binary_packet(packet),
            None => Ok(()),
        }
    }

    fn binary_packet(&self, packet: BinaryPacket) -> Result<(), Error> {
        match packet.kind {
            Kind::BinaryEvent => {
                self.event(&packet.ns, packet.ack, packet.data, packet.attachments)
            }
            Kind::BinaryAck => self.ack(&packet.ns, packet.ack, packet.data, packet.attachments),
            _ => Err(Error::State),
        }
    }

    /// CONNECT to `ns` with `auth`: an unknown namespace is answered CONNECT_ERROR, a known
    /// one asks its [`Namespace::connect`].
    fn connect(&self, ns: &str, auth: &str) -> Result<(), Error> {
        let session = self.session.upgrade().ok_or(Error::State)?;
        let Some(nsp) = self.namespaces.get(ns) else {
            let refusal = json!({ "message": "Invalid namespace" });
            let text = sio::encode_message(Kind::ConnectError, ns, None, Some(&refusal))?;
            session.send(&Packet::Text(text.into()));
            return Ok(());
        };
        let auth = match auth {
            "" => None,
            auth => match serde_json::from_str(auth) {
                Ok(Value::Object(_)) => Some(auth.into()),
                Ok(_) => {
                    return Err(Error::InvalidJson(
                        "the CONNECT payload is no object".into(),
                    ));
                }
                Err(err) => return Err(Error::InvalidJson(err.to_string())),
            },
        };
        let socket = Socket::new(nsp.clone(), session, auth);
        {
            let mut state = lock(&self.state);
            if state.sockets.contains_key(ns) || !state.connecting.insert(ns.into()) {
                return Err(Error::State);
            }
        }
        nsp.handler().connect(Connecting {
            socket,
            answered: false,
        });
        Ok(())
    }

    /// A CONNECT was answered.
    fn answered(&self, socket: Arc<Socket>, refusal: Option<Value>) {
        let ns: Arc<str> = socket.ns().into();
        {
            let mut state = lock(&self.state);
            if !state.connecting.remove(&ns) {
                // The session closed meanwhile: the rooms joined while connecting go.
                socket.leave_pending();
                return;
            }
            if refusal.is_none() {
                state.sockets.insert(ns.clone(), socket.clone());
            }
        }
        let session = socket.session();
        match refusal {
            Some(refusal) => {
                socket.leave_pending();
                if let Ok(text) = sio::encode_message(Kind::ConnectError, &ns, None, Some(&refusal))
                {
                    session.send(&Packet::Text(text.into()));
                }
            }
            None => {
                let welcome = json!({ "sid": socket.id() });
                let connect = match sio::encode_message(Kind::Connect, &ns, None, Some(&welcome)) {
                    Ok(text) => Packet::Text(text.into()),
                    Err(err) => {
                        tracing::error!(%err, "cannot encode CONNECT");
                        return session.close_with(CloseReason::ServerClosed);
                    }
                };
                socket.mark_connected();
                // CONNECT goes out as the socket enters its rooms: no broadcast to them
                // reaches the client before it, and none after it is missed.
                let sent = socket
                    .nsp()
                    .rooms()
                    .add_socket(&socket, || session.try_send_all(&[connect]));
                match sent {
                    Ok(_) => socket.nsp().handler().connected(&socket),
                    Err(reason) => session.close_with(reason),
                }
            }
        }
    }

    fn socket(&self, ns: &str) -> Result<Arc<Socket>, Error> {
        lock(&self.state)
            .sockets
            .get(ns)
            .cloned()
            .ok_or(Error::State)
    }

    fn event(
        &self,
        ns: &str,
        ack: Option<u64>,
        data: Value,
        attachments: Vec<Bytes>,
    ) -> Result<(), Error> {
        let socket = self.socket(ns)?;
        let Value::Array(mut args) = data else {
            return Err(Error::InvalidJson("an event is no array".into()));
        };
        let Some(Value::String(name)) = (!args.is_empty()).then(|| args.remove(0)) else {
            return Err(Error::InvalidJson("an event has no name".into()));
        };
        let ack = ack.map(|id| Ack {
            socket: socket.clone(),
            id,
        });
        socket.nsp().handler().clone().event(
            &socket,
            Event {
                name,
                args,
                attachments,
                ack,
            },
        );
        Ok(())
    }

    fn ack(
        &self,
        ns: &str,
        id: Option<u64>,
        data: Value,
        attachments: Vec<Bytes>,
    ) -> Result<(), Error> {
        let socket = self.socket(ns)?;
        let (Some(id), Value::Array(args)) = (id, data) else {
            return Err(Error::InvalidJson("an ack without id or array".into()));
        };
        socket.receive_ack(id, args, attachments);
        Ok(())
    }

    /// Removes the socket of `ns` for `reason` and tells its namespace; the session closes
    /// when a client left its last namespace. `None` when there was none.
    pub(crate) fn remove(&self, ns: &str, reason: DisconnectReason) -> Option<()> {
        let (socket, none_left) = {
            let mut state = lock(&self.state);
            let socket = state.sockets.remove(ns)?;
            (
                socket,
                state.sockets.is_empty() && state.connecting.is_empty(),
            )
        };
        socket.left();
        socket.nsp().handler().disconnected(&socket, reason);
        if none_left && reason == DisconnectReason::ClientDisconnected {
            socket.session().close_with(CloseReason::ClientClosed);
        }
        Some(())
    }

    /// The session closed: every socket leaves.
    pub(crate) fn closed(&self, reason: CloseReason) {
        let sockets: Vec<Arc<Socket>> = {
            let mut state = lock(&self.state);
            state.connecting.clear();
            state.sockets.drain().map(|(_, socket)| socket).collect()
        };
        for socket in sockets {
            socket.left();
            socket
                .nsp()
                .handler()
                .disconnected(&socket, DisconnectReason::Closed(reason));
        }
    }
}

/// A CONNECT waiting for its namespace's answer: [`Connecting::accept`] or
/// [`Connecting::refuse`]; dropped unanswered, it refuses.
pub struct Connecting {
    socket: Arc<Socket>,
    answered: bool,
}

impl Connecting {
    /// The socket that would join.
    pub fn socket(&self) -> &Arc<Socket> {
        &self.socket
    }

    /// Puts the socket in `room` before it is let in (its user's room, say): resolves once
    /// the cluster sends this instance the room's broadcasts. The socket receives them from
    /// its CONNECT on, none before and none missed; refused, it leaves the room again.
    pub async fn join(&self, room: impl Into<Room>) -> Result<(), Error> {
        self.socket.join_pending(room.into()).await
    }

    /// Lets the socket join: it is sent CONNECT with its id, and
    /// [`Namespace::connected`](super::Namespace::connected) runs.
    pub fn accept(mut self) {
        self.answer(None);
    }

    /// Refuses the socket: it is sent CONNECT_ERROR with `message` (and `data`, when some).
    pub fn refuse(mut self, message: &str, data: Option<Value>) {
        let mut refusal = json!({ "message": message });
        if let Some(data) = data {
            refusal["data"] = data;
        }
        self.answer(Some(refusal));
    }

    fn answer(&mut self, refusal: Option<Value>) {
        if std::mem::replace(&mut self.answered, true) {
            return;
        }
        if let Some(connection) = self.socket.session().extension::<Connection>() {
            connection.answered(self.socket.clone(), refusal);
        }
    }
}

impl Drop for Connecting {
    fn drop(&mut self) {
        self.answer(Some(json!({ "message": "not accepted" })));
    }
}
