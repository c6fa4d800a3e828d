//! The socketioxide front end of the cluster bus: socketioxide's `CoreAdapter` operations as
//! requests on the bus, and the bus's requests carried out on the local sockets.

use std::{
    collections::HashSet,
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock, Weak},
    task::{Context, Poll},
    time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};
use socketioxide_core::{
    Sid, Uid,
    adapter::{
        BroadcastFlags, BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter,
        RemoteSocketData, Room, RoomParam, SocketEmitter, Spawnable,
        errors::{BroadcastError, SocketError},
        remote_packet::{RequestIn, RequestOut, RequestTypeIn, RequestTypeOut, Response},
        request::RemoteRequestHandler,
        stream::{AckStream, ChanStream},
    },
    packet::Packet,
};

use super::{
    emitted,
    gate::{Gates, Keep, Kept},
    ids,
    outbox::{Handoff, Outbox, Retry, SLOW_RETRY},
    state::{MembershipChange, NamespaceRooms, RedisAdapterState},
};
use crate::{
    cluster::{EmitterRequest, Id, Inbound, NamespaceBus, Outgoing, Selection},
    connection::{Redis, Wait},
    error::Error,
    scope,
};

/// A socketioxide adapter that shares one namespace across instances through Redis Pub/Sub.
///
/// Install it with `SocketIo::builder().with_adapter::<RedisAdapter<_>>(state)`; see the
/// crate documentation for a complete example.
pub struct RedisAdapter<E> {
    local: CoreLocalAdapter<E>,
    bus: Arc<NamespaceBus<Redis>>,
    state: RedisAdapterState,
    uid: Uid,
    /// Sockets being caught up, whose broadcasts are held back ([`RedisAdapterState::hold`]).
    gates: Gates,
    /// Deliveries waiting for local sockets whose buffer is full.
    outbox: Outbox,
    /// This adapter, for the outbox's retry task (set by `init`).
    me: OnceLock<Weak<Self>>,
}

/// The acknowledgement stream of [`RedisAdapter::broadcast_with_ack`]: local acks first
/// as they come, then remote ones, until every expected ack arrived or the timeout.
pub type RedisAckStream<E> = AckStream<E, ChanStream<Vec<u8>>, Vec<u8>>;

impl<E: SocketEmitter> DefinedAdapter for RedisAdapter<E> {}

impl<E: SocketEmitter> CoreAdapter<E> for RedisAdapter<E> {
    type Error = Error;
    type State = RedisAdapterState;
    type AckStream = RedisAckStream<E>;
    type InitRes = InitRes;

    fn new(state: &Self::State, local: CoreLocalAdapter<E>) -> Self {
        let uid = local.server_id();
        let bus = state.namespace_bus(local.path(), ids::node(uid));
        Self {
            local,
            bus,
            state: state.clone(),
            uid,
            gates: Gates::default(),
            outbox: Outbox::new(
                state.config().local_backlog.clone(),
                state.redis().counters().clone(),
            ),
            me: OnceLock::new(),
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        InitRes(Box::pin(async move {
            let _ = self.me.set(Arc::downgrade(&self));
            let inbound = Arc::downgrade(&self) as std::sync::Weak<dyn Inbound>;
            self.bus.start(inbound).await?;
            self.state
                .register(self.local.path(), &self.bus, Arc::downgrade(&self) as _);
            tracing::info!(node = %self.uid, ns = %self.local.path(), "redis adapter ready");
            on_success();
            Ok(())
        }))
    }

    async fn close(&self) -> Result<(), Error> {
        self.bus.close().await
    }

    async fn server_count(&self) -> Result<u16, Error> {
        Ok(self.bus.server_count())
    }

    async fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        let remote = self.outgoing_broadcast(&packet, &opts)?;
        // Local sockets are served first, whatever happens to Redis (unless they already were).
        if !scope::local_skipped() {
            self.deliver_locally(packet, opts);
        }
        self.forward(remote).await?;
        Ok(())
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, Error> {
        let remote_timeout = timeout.unwrap_or_else(|| self.local.ack_timeout())
            + self.state.config().request_timeout;
        if opts.is_local(self.uid) {
            let (local, _) = self.local.broadcast_with_ack(packet, opts, timeout);
            let (_, no_remote) = tokio::sync::mpsc::channel(1);
            return Ok(self.ack_stream(local, no_remote, Sid::new(), 0, remote_timeout));
        }
        let request = RequestOut::new(self.uid, RequestTypeOut::BroadcastWithAck(&packet), &opts)
            .with_ack_timeout(timeout);
        let req_id = request.id;
        let target = target(&opts);
        let outgoing = self.bus.request(target, msgpack(&request))?;
        let expected = self.bus.expected_responses(target);
        let rx = self.bus.register(ids::request(req_id));
        let (local, _) = self.local.broadcast_with_ack(packet, opts, timeout);
        // A failed publish still yields the local acks: the remote part expects nothing.
        let servers = match self
            .bus
            .publish_request(outgoing, ids::request(req_id))
            .await
        {
            Ok(()) => expected,
            Err(_) => 0,
        };
        Ok(self.ack_stream(local, rx, req_id, servers, remote_timeout))
    }

    async fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Error> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        let remote = self.outgoing(RequestTypeOut::AddSockets(&rooms), &opts)?;
        let expected = self.bus.expected_responses(target(&opts));
        self.local.add_sockets(opts, rooms.clone());
        let subscribed = self.bus.subscribe_held(&rooms).await;
        self.apply_remotely(remote, expected).await.and(subscribed)
    }

    async fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Error> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        let remote = self.outgoing(RequestTypeOut::DelSockets(&rooms), &opts)?;
        let expected = self.bus.expected_responses(target(&opts));
        self.local.del_sockets(opts, rooms.clone());
        self.bus.release(rooms);
        self.apply_remotely(remote, expected).await
    }

    async fn disconnect_socket(&self, opts: BroadcastOptions) -> Result<(), BroadcastError> {
        let remote = self.outgoing(RequestTypeOut::DisconnectSockets, &opts)?;
        let local = self.local.disconnect_socket(opts);
        self.forward(remote.map(|(outgoing, _)| outgoing)).await?;
        local.map_err(BroadcastError::Socket)
    }

    async fn rooms(&self, opts: BroadcastOptions) -> Result<Vec<Room>, Error> {
        let mut rooms = self.local.rooms(opts.clone());
        let responses = self.query::<()>(RequestTypeOut::AllRooms, &opts).await?;
        rooms.extend(
            responses
                .into_iter()
                .filter_map(Response::into_rooms)
                .flatten(),
        );
        Ok(rooms.into_iter().collect())
    }

    async fn fetch_sockets(&self, opts: BroadcastOptions) -> Result<Vec<RemoteSocketData>, Error> {
        let mut sockets = self.local.fetch_sockets(opts.clone());
        let responses = self
            .query::<RemoteSocketData>(RequestTypeOut::FetchSockets, &opts)
            .await?;
        sockets.extend(
            responses
                .into_iter()
                .filter_map(Response::into_fetch_sockets)
                .flatten(),
        );
        Ok(sockets)
    }

    fn get_local(&self) -> &CoreLocalAdapter<E> {
        &self.local
    }
}

impl<E: SocketEmitter> RemoteRequestHandler<E> for RedisAdapter<E> {
    type Error = Error;

    fn local(&self) -> &CoreLocalAdapter<E> {
        &self.local
    }

    /// A broadcast from another instance, delivered like a local one (held sockets included).
    fn recv_broadcast(&self, opts: BroadcastOptions, packet: Packet) {
        self.deliver_locally(packet, opts);
    }

    fn send_res<T: Serialize + fmt::Debug + Send + 'static>(
        &self,
        req_id: Sid,
        req_origin: Uid,
        res: Response<T>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let publish = self
            .bus
            .response(ids::node(req_origin), ids::request(req_id), msgpack(&res))
            .map(|response| self.bus.publish(response, Wait::Queued));
        async move { publish?.await }
    }
}

impl<E: SocketEmitter> Inbound for RedisAdapter<E> {
    /// Carries out a remote request. A remote join subscribes the rooms it filled, a remote
    /// leave releases the rooms it may have emptied, and both answer the requester once done.
    fn on_request(self: Arc<Self>, origin: Id, body: &[u8], room: Option<&Room>) {
        let request = match rmp_serde::from_slice::<RequestIn>(body) {
            Ok(request) => request,
            Err(err) => return self.bus.drop_malformed(origin, &err),
        };
        if let Some(room) = room
            && !is_broadcast_to(&request, room)
        {
            return self.bus.drop_malformed(
                origin,
                &"a room's channel carried something else than a broadcast to it",
            );
        }
        let change = match &request.r#type {
            RequestTypeIn::AddSockets(rooms) => Some((true, rooms.clone())),
            RequestTypeIn::DelSockets(rooms) => Some((false, rooms.clone())),
            _ => None,
        };
        let req_id = ids::request(request.id);
        self.recv_req(request);
        if let Some((join, rooms)) = change {
            self.bus.remote_change_applied(origin, req_id, join, rooms);
        }
    }

    fn holds(&self, room: &str) -> bool {
        if self.gates.holds(room) {
            return true;
        }
        let mut opts = BroadcastOptions::default();
        opts.rooms.push(Room::Owned(room.to_owned()));
        !self.local.sockets(opts).is_empty()
    }

    fn held_rooms(&self) -> HashSet<Room> {
        self.local.rooms(every_socket())
    }

    /// Carries out an emitter operation on the local sockets, as a remote instance's would
    /// be: an emit reaches held sockets too, a join subscribes the rooms it filled, a leave
    /// releases those it may have emptied.
    fn on_emitter(self: Arc<Self>, request: EmitterRequest) {
        match request {
            EmitterRequest::Broadcast {
                selection,
                event,
                args,
                volatile,
            } => {
                let packet =
                    emitted::event_packet(self.local.parser(), self.local.path(), &event, &args);
                match packet {
                    Ok(packet) => {
                        self.recv_broadcast(emitted::options(&selection, volatile), packet)
                    }
                    Err(err) => self.bus.drop_emitted(&err),
                }
            }
            EmitterRequest::Join { selection, rooms } => {
                self.move_sockets(&selection, &rooms, MembershipChange::Joined);
                tokio::spawn(async move {
                    if let Err(err) = self.bus.subscribe_held(&rooms).await {
                        tracing::warn!(%err, "rooms of an emitter join not subscribed yet");
                    }
                });
            }
            EmitterRequest::Leave { selection, rooms } => {
                self.move_sockets(&selection, &rooms, MembershipChange::Left);
                self.bus.release(rooms);
            }
            EmitterRequest::Disconnect { selection, .. } => {
                if let Err(errors) = self
                    .local
                    .disconnect_socket(emitted::options(&selection, false))
                {
                    tracing::debug!(
                        ?errors,
                        "emitter disconnect: some sockets were already gone"
                    );
                }
            }
        }
    }
}

impl<E: SocketEmitter> NamespaceRooms for RedisAdapter<E> {
    fn join(
        self: Arc<Self>,
        sid: Sid,
        rooms: Vec<Room>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> {
        Box::pin(async move {
            self.local.add_all(sid, rooms.clone());
            let subscribed = self.bus.join(&rooms).await;
            if subscribed.is_err() {
                // Not joined after all: the bus released the rooms, unsubscribed if empty.
                self.local.del(sid, rooms);
            }
            subscribed
        })
    }

    fn leave(&self, sid: Sid, rooms: Vec<Room>) {
        for room in &rooms {
            // A socket still caught up is not made a member after all.
            self.gates.close_all(sid, room);
        }
        self.local.del(sid, rooms.clone());
        self.bus.release(rooms);
    }

    fn hold(
        self: Arc<Self>,
        sid: Sid,
        room: Room,
    ) -> Pin<Box<dyn Future<Output = Result<u64, Error>> + Send>> {
        Box::pin(async move {
            let ticket = self.gates.open(sid, room.clone());
            if let Err(err) = self.bus.join(std::slice::from_ref(&room)).await {
                self.cancel_hold(sid, ticket, room);
                return Err(err);
            }
            Ok(ticket)
        })
    }

    fn end_hold(
        self: Arc<Self>,
        (sid, ticket): (Sid, u64),
        room: Room,
        join: Option<Keep>,
    ) -> Option<usize> {
        let Some(keep) = join else {
            self.cancel_hold(sid, ticket, room);
            return None;
        };
        let sent = self.gates.pass(ticket, &room, keep, |kept: Kept, keep| {
            // Under the delivery lock: the kept packets first, then the filtered live ones.
            let mut sent = 0;
            for packet in kept.packets.into_iter().filter(|packet| keep(packet)) {
                sent += 1;
                self.send_to(sid, packet);
            }
            (!kept.overflowed).then_some(sent)
        });
        let Some(sent) = sent else {
            self.cancel_hold(sid, ticket, room);
            return None;
        };
        // A message read by the catch-up may still be on its way from its sender, for at
        // most the sender's command deadline: filtered until then, then a plain member.
        let grace = self.state.redis().config().command_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let member = self.gates.close(ticket, &room, || {
                let connected = self.is_connected(sid);
                if connected {
                    self.local.add_all(sid, vec![room.clone()]);
                }
                connected
            });
            if member != Some(true) {
                self.bus.release([room]);
            }
        });
        sent
    }
}

impl<E: SocketEmitter> RedisAdapter<E> {
    /// Drops hold `ticket` of `sid` on `room`, which it does not join.
    fn cancel_hold(&self, sid: Sid, ticket: u64, room: Room) {
        self.gates.close(ticket, &room, || ());
        if !self.local.socket_rooms(sid).contains(&room) {
            self.bus.release([room]);
        }
    }

    /// Delivers `packet` to the local sockets `opts` select, keeping a copy for the sockets
    /// held for one of its rooms.
    fn deliver_locally(&self, packet: Packet, opts: BroadcastOptions) {
        let reached_otherwise = |sid: Sid, opts: &BroadcastOptions| {
            let rooms = self.local.socket_rooms(sid);
            opts.rooms
                .iter()
                .chain(&opts.except)
                .any(|room| rooms.contains(room))
        };
        self.gates.deliver(
            packet,
            opts,
            reached_otherwise,
            |sid, packet| self.send_to(sid, packet),
            |packet, opts| {
                let volatile = opts.has_flag(BroadcastFlags::Volatile);
                self.send_each(self.local.sockets(opts), &packet, volatile);
            },
        )
    }

    /// Moves the local sockets of an emitter's `selection` in or out of `rooms`, then tells
    /// the application ([`RedisAdapterState::on_emitter_membership`]).
    fn move_sockets(&self, selection: &Selection, rooms: &[Room], change: MembershipChange) {
        let opts = emitted::options(selection, false);
        let sids = self.local.sockets(opts.clone());
        match change {
            MembershipChange::Joined => self.local.add_sockets(opts, rooms.to_vec()),
            MembershipChange::Left => self.local.del_sockets(opts, rooms.to_vec()),
        }
        self.state
            .tell_membership(self.local.path(), &sids, rooms, change);
    }

    /// Sends `packet` to socket `sid` alone.
    fn send_to(&self, sid: Sid, packet: Packet) {
        self.send_each([sid], &packet, false);
    }

    /// Sends `packet` to each of `sids` through the outbox: in order behind what waits for
    /// them, waiting itself where a socket's buffer is full.
    fn send_each(&self, sids: impl IntoIterator<Item = Sid>, packet: &Packet, volatile: bool) {
        let start = self.outbox.send(sids, packet, volatile, |sid, packet| {
            self.try_send(sid, packet)
        });
        if start {
            self.start_retrying();
        }
    }

    /// Hands `packet` to socket `sid`'s buffer if it takes it now.
    fn try_send(&self, sid: Sid, packet: Packet) -> Handoff {
        match self.local.broadcast(packet, BroadcastOptions::new(sid)) {
            Ok(()) => Handoff::Taken,
            Err(errors) if errors.iter().any(is_full) => Handoff::Full,
            Err(_) => Handoff::Gone,
        }
    }

    /// Sends slow socket `sid` its DISCONNECT; whether it went out (or the socket is gone).
    fn disconnect_slow(&self, sid: Sid) -> bool {
        match self.local.disconnect_socket(BroadcastOptions::new(sid)) {
            Ok(()) => true,
            Err(errors) => !errors.iter().any(is_full),
        }
    }

    /// Starts the task that retries the backlogs until they are empty.
    fn start_retrying(&self) {
        let Some(me) = self.me.get().cloned() else {
            tracing::error!(ns = %self.local.path(), "a backlog before the adapter's init: nothing retries it");
            return;
        };
        let interval = self.outbox.config().retry_interval;
        tokio::spawn(async move {
            let mut pause = interval;
            loop {
                tokio::time::sleep(pause).await;
                let Some(this) = me.upgrade() else {
                    return;
                };
                let retry = this.outbox.retry(
                    |sid, packet| this.try_send(sid, packet),
                    |sid| this.disconnect_slow(sid),
                );
                pause = match retry {
                    Retry::Soon => interval,
                    Retry::Later => SLOW_RETRY,
                    Retry::Done => return,
                };
            }
        });
    }

    /// Whether socket `sid` is still connected to this namespace.
    fn is_connected(&self, sid: Sid) -> bool {
        self.local.sockets(every_socket()).contains(&sid)
    }

    /// The messages that carry a broadcast to the other instances: to rooms, one on each
    /// room's channel (see [`NamespaceBus::room_requests`]).
    fn outgoing_broadcast(
        &self,
        packet: &Packet,
        opts: &BroadcastOptions,
    ) -> Result<Vec<Outgoing>, Error> {
        if opts.rooms.is_empty() || target(opts).is_some() {
            return Ok(self
                .outgoing(RequestTypeOut::Broadcast(packet), opts)?
                .map(|(outgoing, _)| outgoing)
                .into_iter()
                .collect());
        }
        if opts.is_local(self.uid) {
            return Ok(Vec::new());
        }
        let mut room_opts = opts.clone();
        let except = opts.except.len();
        self.bus.room_requests(&opts.rooms, |room, before, buf| {
            room_opts.rooms = std::iter::once(room.clone()).collect();
            room_opts.except.truncate(except);
            room_opts.except.extend(before.iter().cloned());
            let request = RequestOut::new(self.uid, RequestTypeOut::Broadcast(packet), &room_opts);
            Ok(rmp_serde::encode::write(buf, &request)?)
        })
    }

    /// The request that carries an operation to the other instances, and its id, encoded
    /// before the local part of the operation consumes its inputs; `None` when `opts` stay
    /// local.
    fn outgoing(
        &self,
        kind: RequestTypeOut<'_>,
        opts: &BroadcastOptions,
    ) -> Result<Option<(Outgoing, Id)>, Error> {
        if opts.is_local(self.uid) {
            return Ok(None);
        }
        let request = RequestOut::new(self.uid, kind, opts);
        let outgoing = self.bus.request(target(opts), msgpack(&request))?;
        Ok(Some((outgoing, ids::request(request.id))))
    }

    /// Publishes what [`Self::outgoing`] prepared: queued in order, and confirmed by Redis
    /// when the caller runs inside [`scope::confirmed`].
    async fn forward(&self, outgoing: impl IntoIterator<Item = Outgoing>) -> Result<(), Error> {
        let wait = if scope::confirm_wanted() {
            Wait::Confirmed
        } else {
            Wait::Queued
        };
        self.bus.send(outgoing.into_iter().collect(), wait).await
    }

    async fn apply_remotely(
        &self,
        remote: Option<(Outgoing, Id)>,
        expected: usize,
    ) -> Result<(), Error> {
        match remote {
            Some((outgoing, req_id)) => self.bus.apply_remotely(outgoing, req_id, expected).await,
            None => Ok(()),
        }
    }

    /// Asks the other instances and gathers their responses, bounded by the request timeout;
    /// malformed responses are dropped and counted.
    async fn query<D: DeserializeOwned>(
        &self,
        kind: RequestTypeOut<'_>,
        opts: &BroadcastOptions,
    ) -> Result<Vec<Response<D>>, Error> {
        let expected = self.bus.expected_responses(target(opts));
        let Some((outgoing, req_id)) = self.outgoing(kind, opts)? else {
            return Ok(Vec::new());
        };
        let bodies = self.bus.query(outgoing, req_id, expected).await?;
        Ok(bodies
            .iter()
            .filter_map(|body| match rmp_serde::from_slice(body) {
                Ok(response) => Some(response),
                Err(err) => {
                    self.bus.drop_malformed(req_id, &err);
                    None
                }
            })
            .collect())
    }

    fn ack_stream(
        &self,
        local: E::AckStream,
        rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
        req_id: Sid,
        servers: usize,
        timeout: Duration,
    ) -> RedisAckStream<E> {
        // The bus forgets the request once its receiver is dropped; socketioxide's own map
        // of response handlers is not used.
        AckStream::new(
            local,
            ChanStream::new(rx),
            decode_ack::<E::AckError>,
            timeout,
            u16::try_from(servers).unwrap_or(u16::MAX),
            req_id,
            Arc::default(),
        )
    }
}

/// Operations aimed at one remote socket go to its instance only.
fn target(opts: &BroadcastOptions) -> Option<Id> {
    let single_socket =
        !opts.has_flag(BroadcastFlags::Broadcast) && opts.rooms.is_empty() && opts.sid.is_some();
    opts.server_id.filter(|_| single_socket).map(ids::node)
}

/// Whether `request` is a broadcast to `room` alone, the only thing a room's channel carries.
fn is_broadcast_to(request: &RequestIn, room: &Room) -> bool {
    matches!(request.r#type, RequestTypeIn::Broadcast(_))
        && request
            .opts
            .as_ref()
            .is_some_and(|opts| opts.rooms.len() == 1 && opts.rooms[0] == *room)
}

/// A body writer that appends `value` as msgpack.
fn msgpack<T: Serialize + ?Sized>(value: &T) -> impl FnOnce(&mut Vec<u8>) -> Result<(), Error> {
    move |buf| Ok(rmp_serde::encode::write(buf, value)?)
}

fn decode_ack<D: DeserializeOwned>(
    bytes: Vec<u8>,
) -> Result<Response<D>, Box<dyn std::error::Error + Send>> {
    rmp_serde::from_slice(&bytes).map_err(|err| Box::new(err) as Box<dyn std::error::Error + Send>)
}

/// The future returned by `io.ns(..)` with this adapter: await it to know the namespace
/// is subscribed and announced. Dynamic namespaces spawn it and log a failure.
pub struct InitRes(Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>);

impl Future for InitRes {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl Spawnable for InitRes {
    fn spawn(self) {
        tokio::spawn(async move {
            if let Err(err) = self.await {
                tracing::error!(%err, "redis adapter could not initialise a namespace");
            }
        });
    }
}

/// Options that select every socket of the namespace on this instance.
fn every_socket() -> BroadcastOptions {
    let mut opts = BroadcastOptions::default();
    opts.add_flag(BroadcastFlags::Broadcast);
    opts
}

/// Whether `error` says the socket's buffer is full.
fn is_full(error: &SocketError) -> bool {
    matches!(error, SocketError::InternalChannelFull)
}
