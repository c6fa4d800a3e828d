//! The engine's front end of the cluster bus (`redis_adapter::NamespaceBus`): a namespace's
//! broadcasts reach the instances holding its rooms through per-room channels, as with the
//! adapter's socketioxide front end, and what they send is delivered here to the local
//! members with the packet their instance encoded. The Socket.IO Redis emitter's operations
//! are carried out on the local sockets.

mod body;
mod emitted;

use std::{
    collections::HashSet,
    sync::{Arc, Weak},
};

use bytes::Bytes;
use futures_util::FutureExt;
use redis_adapter::{EmitterRequest, Id, Inbound, NamespaceBus, PubSub, Room, Selection, Wait};

use crate::{
    server::Packet,
    sio,
    sockets::{BroadcastOptions, Change, Fetching, Nsp, Remote, RemoteError, Remoting},
};

/// One namespace of the engine on the cluster bus.
pub struct ClusterFront<P: PubSub> {
    nsp: Weak<Nsp>,
    bus: Arc<NamespaceBus<P>>,
}

impl<P: PubSub> ClusterFront<P> {
    /// Shares `nsp`'s rooms through `bus` (of the same namespace name): the bus is started
    /// with this front end, and the namespace's broadcasts go through it from now on.
    pub async fn attach(
        nsp: &Arc<Nsp>,
        bus: Arc<NamespaceBus<P>>,
    ) -> Result<Arc<Self>, redis_adapter::Error> {
        let front = Arc::new(Self {
            nsp: Arc::downgrade(nsp),
            bus,
        });
        front
            .bus
            .start(Arc::downgrade(&front) as Weak<dyn Inbound>)
            .await?;
        // A namespace has one cluster; attaching again keeps the first.
        let _first = nsp.set_remote(front.clone());
        Ok(front)
    }

    /// The bus.
    pub fn bus(&self) -> &Arc<NamespaceBus<P>> {
        &self.bus
    }

    /// Carries out a request another instance sent, once checked.
    fn carry_out(&self, origin: Id, body: &[u8], room: Option<&Room>) -> Result<(), String> {
        let nsp = self.nsp.upgrade().ok_or("the namespace is gone")?;
        match body::decode(body).map_err(|err| err.to_string())? {
            body::Request::Broadcast(body) => deliver(&nsp, body, room),
            body::Request::Fetch { .. } if room.is_some() => {
                Err("a room's channel carried a fetch".into())
            }
            body::Request::Fetch { req_id, selection } => {
                let sockets = nsp.local_views(&selection);
                let answer = self
                    .bus
                    .response(origin, req_id, |buf| body::encode_sockets(buf, &sockets))
                    .map_err(|err| err.to_string())?;
                // Answered in the background: the reader goes on with the next message.
                tokio::spawn(self.bus.publish(answer, Wait::Queued));
                Ok(())
            }
            body::Request::Change { .. } if room.is_some() => {
                Err("a room's channel carried a change of sockets".into())
            }
            body::Request::Change {
                req_id,
                selection,
                change,
            } => {
                let bus = self.bus.clone();
                tokio::spawn(async move {
                    nsp.change_locally(&selection, &change).await;
                    // Only the acknowledgement: the sockets' own joins and leaves already
                    // held and released their rooms.
                    bus.remote_change_applied(origin, req_id, false, Vec::new());
                });
                Ok(())
            }
        }
    }
}

/// Delivers a broadcast another instance sent, once checked.
fn deliver(nsp: &Nsp, body: body::Body, room: Option<&Room>) -> Result<(), String> {
    if let Some(room) = room
        && body.rooms != std::slice::from_ref(room)
    {
        return Err("a room's channel carried something else than a broadcast to it".into());
    }
    let text = std::str::from_utf8(&body.packet).map_err(|_| "a packet that is not UTF-8")?;
    let packet = text
        .strip_prefix(sio_message_prefix())
        .map(sio::decode)
        .ok_or("not an engine.io MESSAGE")?
        .map_err(|err| err.to_string())?;
    if packet.ns != nsp.name() || packet.kind != sio::Kind::Event {
        return Err(format!("a {:?} of namespace {}", packet.kind, packet.ns));
    }
    if !nsp.handler().relayed(&body.rooms, packet.data) {
        return Ok(());
    }
    let selection = Selection {
        rooms: body.rooms,
        except: body.except,
    };
    nsp.deliver(
        &selection,
        None,
        &[Packet::Text(body.packet)],
        body.volatile,
    );
    Ok(())
}

/// The engine.io MESSAGE type a broadcast's packet starts with.
fn sio_message_prefix() -> char {
    crate::eio::Kind::Message.as_char()
}

impl<P: PubSub> ClusterFront<P> {
    /// The messages of a broadcast: one per target room, or one on the namespace channel.
    fn encode(
        &self,
        selection: &Selection,
        packet: &Bytes,
        volatile: bool,
    ) -> Result<Vec<redis_adapter::Outgoing>, body::BadBody> {
        if selection.rooms.is_empty() {
            self.bus
                .request(None, |buf| {
                    body::encode(buf, &[], &selection.except, &[], volatile, packet)
                })
                .map(|outgoing| vec![outgoing])
        } else {
            self.bus
                .room_requests(&selection.rooms, |room, earlier, buf| {
                    body::encode(
                        buf,
                        std::slice::from_ref(room),
                        &selection.except,
                        earlier,
                        volatile,
                        packet,
                    )
                })
        }
    }
}

impl<P: PubSub> Remote for ClusterFront<P> {
    fn broadcast(
        &self,
        selection: &Selection,
        packet: &Bytes,
        options: BroadcastOptions,
    ) -> Remoting {
        let outgoing = self.encode(selection, packet, options.volatile);
        let wait = if options.confirmed {
            Wait::Confirmed
        } else {
            Wait::Queued
        };
        let bus = self.bus.clone();
        Box::pin(async move {
            let outgoing = outgoing?;
            bus.send(outgoing, wait).await?;
            Ok(())
        })
    }

    fn broadcast_now(
        &self,
        selection: &Selection,
        packet: &Bytes,
        options: BroadcastOptions,
    ) -> Result<(), RemoteError> {
        for outgoing in self.encode(selection, packet, options.volatile)? {
            // A queued publish is taken or refused when it is made: its future is ready.
            if let Some(Err(err)) = self.bus.publish(outgoing, Wait::Queued).now_or_never() {
                return Err(err.into());
            }
        }
        Ok(())
    }

    fn outgoing(
        &self,
        selection: &Selection,
        packet: &Bytes,
        options: BroadcastOptions,
    ) -> Result<Vec<redis_adapter::Outgoing>, RemoteError> {
        Ok(self.encode(selection, packet, options.volatile)?)
    }

    fn hold(&self, room: &Room) -> Remoting {
        let bus = self.bus.clone();
        let room = room.clone();
        Box::pin(async move {
            bus.join(std::slice::from_ref(&room)).await?;
            Ok(())
        })
    }

    fn release(&self, rooms: Vec<Room>) {
        self.bus.release(rooms);
    }

    fn change(&self, selection: &Selection, change: Change) -> Remoting {
        let req_id = Id::random();
        let outgoing = self.bus.request(None, |buf| {
            body::encode_change(buf, req_id, selection, &change)
        });
        let expected = self.bus.expected_responses(None);
        let bus = self.bus.clone();
        Box::pin(async move {
            bus.apply_remotely(outgoing?, req_id, expected).await?;
            Ok(())
        })
    }

    fn fetch(&self, selection: &Selection) -> Fetching {
        let req_id = Id::random();
        let outgoing = self
            .bus
            .request(None, |buf| body::encode_fetch(buf, req_id, selection));
        let expected = self.bus.expected_responses(None);
        let bus = self.bus.clone();
        Box::pin(async move {
            let answers = bus.query(outgoing?, req_id, expected).await?;
            let mut sockets = Vec::new();
            for answer in answers {
                match body::decode_sockets(&answer) {
                    Ok(some) => sockets.extend(some),
                    // The answers come without their sender: the request is named instead.
                    Err(err) => bus.drop_malformed(req_id, &format!("an answer to a fetch: {err}")),
                }
            }
            Ok(sockets)
        })
    }
}

impl<P: PubSub> Inbound for ClusterFront<P> {
    fn on_request(self: Arc<Self>, origin: Id, body: &[u8], room: Option<&Room>) {
        if let Err(err) = self.carry_out(origin, body, room) {
            self.bus.drop_malformed(origin, &err);
        }
    }

    fn holds(&self, room: &str) -> bool {
        self.nsp.upgrade().is_some_and(|nsp| nsp.holds(room))
    }

    fn held_rooms(&self) -> HashSet<Room> {
        self.nsp
            .upgrade()
            .map(|nsp| nsp.held_rooms())
            .unwrap_or_default()
    }

    fn on_emitter(self: Arc<Self>, request: EmitterRequest) {
        let Some(nsp) = self.nsp.upgrade() else {
            return;
        };
        match request {
            EmitterRequest::Broadcast {
                selection,
                event,
                args,
                volatile,
            } => match emitted::event_packets(nsp.name(), &event, &args.0) {
                Ok(packets) => {
                    nsp.deliver(&selection, None, &packets, volatile);
                }
                Err(err) => self.bus.drop_emitted(&err),
            },
            EmitterRequest::Join { selection, rooms } => {
                let change = Change::Join(rooms);
                tokio::spawn(async move { nsp.change_locally(&selection, &change).await });
            }
            // Leaves and disconnects never wait: carried out now, before the emitter's next
            // message is read.
            EmitterRequest::Leave { selection, rooms } => {
                let _done = nsp
                    .change_locally(&selection, &Change::Leave(rooms))
                    .now_or_never();
            }
            EmitterRequest::Disconnect { selection, close } => {
                let _done = nsp
                    .change_locally(&selection, &Change::Disconnect { close })
                    .now_or_never();
            }
        }
    }
}
