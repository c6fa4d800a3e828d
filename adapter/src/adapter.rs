//! The `CoreAdapter` implementation: composes the bus, the envelope, membership and the
//! request bookkeeping into socketioxide's adapter operations.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, OnceLock, Weak},
    task::{Context, Poll},
    time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};
use socketioxide_core::{
    Sid, Uid,
    adapter::{
        BroadcastFlags, BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter,
        RemoteSocketData, Room, RoomParam, SocketEmitter, Spawnable,
        errors::BroadcastError,
        remote_packet::{
            RequestIn, RequestOut, RequestTypeIn, RequestTypeOut, Response, ResponseTypeId,
        },
        request::RemoteRequestHandler,
        stream::{AckStream, ChanStream},
    },
    packet::Packet,
};
use tokio::task::JoinHandle;

use crate::{
    bus::{Handler, LinkRx, Wait},
    channels::Channels,
    confirm,
    envelope::{self, Kind},
    error::Error,
    membership::Membership,
    remote::PendingRequests,
    rooms::{RoomChannels, RoomSubscriptions},
    state::{NamespaceRooms, RedisAdapterState, Shared},
    stats::Counters,
};

/// A socketioxide adapter that shares one namespace across instances through Redis Pub/Sub.
///
/// Install it with `SocketIo::builder().with_adapter::<RedisAdapter<_>>(state)`; see the
/// crate documentation for a complete example.
pub struct RedisAdapter<E> {
    local: CoreLocalAdapter<E>,
    shared: Arc<Shared>,
    channels: Channels,
    uid: Uid,
    members: Arc<Membership>,
    pending: PendingRequests,
    rooms: RoomSubscriptions,
    /// This adapter behind the `Arc` socketioxide keeps, once initialised: room handlers
    /// and joins reach it through this.
    myself: OnceLock<Weak<Self>>,
    /// The heartbeat and the room keeper, stopped with the adapter.
    tasks: Mutex<Vec<JoinHandle<()>>>,
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
        let shared = state.shared.clone();
        let members = Arc::new(Membership::new(shared.config.heartbeat_timeout));
        shared.register_namespace(local.path(), &members);
        Self {
            channels: Channels::new(&shared.config.prefix, local.path()),
            uid: local.server_id(),
            pending: PendingRequests::new(shared.config.response_buffer, shared.counters.clone()),
            rooms: RoomSubscriptions::new(shared.config.unsubscribe_delay, shared.counters.clone()),
            members,
            shared,
            local,
            myself: OnceLock::new(),
            tasks: Mutex::default(),
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        InitRes(Box::pin(async move {
            self.start().await?;
            on_success();
            Ok(())
        }))
    }

    async fn close(&self) -> Result<(), Error> {
        self.stop_tasks();
        let leave = envelope::encode_signal(Kind::Leave, self.uid);
        let result = self
            .publish(self.channels.broadcast.clone(), leave, Wait::Confirmed)
            .await;
        let rooms = self.rooms.subscribed();
        let room_channels = rooms.iter().map(|room| self.channels.room(room));
        for channel in self.own_channels().into_iter().chain(room_channels) {
            self.shared.bus.unsubscribe(channel).await;
        }
        result
    }

    async fn server_count(&self) -> Result<u16, Error> {
        Ok(self.members.server_count())
    }

    async fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        let remote = self.outgoing_broadcast(&packet, &opts)?;
        // Local sockets are served first, whatever happens to Redis.
        let local = self.local.broadcast(packet, opts);
        self.forward(remote).await?;
        Ok(local?)
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, Error> {
        let remote_timeout = timeout.unwrap_or_else(|| self.local.ack_timeout())
            + self.shared.config.request_timeout;
        if opts.is_local(self.uid) {
            let (local, _) = self.local.broadcast_with_ack(packet, opts, timeout);
            let (_, no_remote) = tokio::sync::mpsc::channel(1);
            return Ok(self.ack_stream(local, no_remote, Sid::new(), 0, remote_timeout));
        }
        let request = RequestOut::new(self.uid, RequestTypeOut::BroadcastWithAck(&packet), &opts)
            .with_ack_timeout(timeout);
        let req_id = request.id;
        let payload = envelope::encode_request(self.uid, &request)?;
        let channel = self.request_channel(&opts);
        let expected = self.expected_responses(&opts);
        let rx = self.pending.register(req_id);
        let (local, _) = self.local.broadcast_with_ack(packet, opts, timeout);
        // A failed publish still yields the local acks: the remote part expects nothing.
        let servers = match self.publish(channel, payload, Wait::Confirmed).await {
            Ok(()) => expected,
            Err(_) => {
                self.pending.forget(req_id);
                0
            }
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
        let expected = self.expected_responses(&opts);
        self.local.add_sockets(opts, rooms.clone());
        let subscribed = self.subscribe_held(&rooms).await;
        self.apply_remotely(remote, expected).await.and(subscribed)
    }

    async fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Error> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        let remote = self.outgoing(RequestTypeOut::DelSockets(&rooms), &opts)?;
        let expected = self.expected_responses(&opts);
        self.local.del_sockets(opts, rooms.clone());
        self.rooms.release(rooms);
        self.apply_remotely(remote, expected).await
    }

    async fn disconnect_socket(&self, opts: BroadcastOptions) -> Result<(), BroadcastError> {
        let remote = self.outgoing(RequestTypeOut::DisconnectSockets, &opts)?;
        let local = self.local.disconnect_socket(opts);
        self.forward(remote).await?;
        local.map_err(BroadcastError::Socket)
    }

    async fn rooms(&self, opts: BroadcastOptions) -> Result<Vec<Room>, Error> {
        let mut rooms = self.local.rooms(opts.clone());
        if !opts.is_local(self.uid) {
            let responses = self
                .query::<()>(RequestTypeOut::AllRooms, &opts, ResponseTypeId::AllRooms)
                .await?;
            rooms.extend(
                responses
                    .into_iter()
                    .filter_map(Response::into_rooms)
                    .flatten(),
            );
        }
        Ok(rooms.into_iter().collect())
    }

    async fn fetch_sockets(&self, opts: BroadcastOptions) -> Result<Vec<RemoteSocketData>, Error> {
        let mut sockets = self.local.fetch_sockets(opts.clone());
        if !opts.is_local(self.uid) {
            let responses = self
                .query::<RemoteSocketData>(
                    RequestTypeOut::FetchSockets,
                    &opts,
                    ResponseTypeId::FetchSockets,
                )
                .await?;
            sockets.extend(
                responses
                    .into_iter()
                    .filter_map(Response::into_fetch_sockets)
                    .flatten(),
            );
        }
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

    fn send_res<T: Serialize + fmt::Debug + Send + 'static>(
        &self,
        req_id: Sid,
        req_origin: Uid,
        res: Response<T>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let channel = self.channels.responses_of(req_origin);
        let publish = envelope::encode_response(self.uid, req_id, &res)
            .map(|payload| self.shared.bus.publish(channel, payload, Wait::Queued));
        async move { publish?.await }
    }
}

impl<E: SocketEmitter> RedisAdapter<E> {
    /// Subscribes the namespace's channels, says hello, and starts heartbeating.
    async fn start(self: &Arc<Self>) -> Result<(), Error> {
        let _first_init = self.myself.set(Arc::downgrade(self));
        let bus = &self.shared.bus;
        let [broadcast, own_requests, own_responses] = self.own_channels();
        bus.subscribe(broadcast, self.route(Self::on_request_message))
            .await?;
        bus.subscribe(own_requests, self.route(Self::on_request_message))
            .await?;
        bus.subscribe(own_responses, self.route(Self::on_response_message))
            .await?;
        let hello = envelope::encode_signal(Kind::Hello, self.uid);
        self.publish(self.channels.broadcast.clone(), hello, Wait::Confirmed)
            .await?;
        let config = &self.shared.config;
        let heartbeat = heartbeat_loop(Arc::downgrade(self), config.heartbeat_interval, bus.link());
        let keeper = room_keeper(
            Arc::downgrade(self),
            config.unsubscribe_delay,
            config.reconcile_interval,
        );
        self.lock_tasks()
            .extend([tokio::spawn(heartbeat), tokio::spawn(keeper)]);
        self.shared
            .register_rooms(self.local.path(), Arc::downgrade(self) as _);
        tracing::info!(node = %self.uid, ns = %self.local.path(), "redis adapter ready");
        Ok(())
    }

    fn own_channels(&self) -> [String; 3] {
        [
            self.channels.broadcast.clone(),
            self.channels.requests_of(self.uid),
            self.channels.responses_of(self.uid),
        ]
    }

    /// A subscriber handler that reaches this adapter for as long as it exists.
    fn route(self: &Arc<Self>, on_message: fn(&Arc<Self>, &[u8])) -> Handler {
        let adapter = Arc::downgrade(self);
        Arc::new(move |payload| {
            if let Some(adapter) = adapter.upgrade() {
                on_message(&adapter, payload);
            }
        })
    }

    /// Handles a message of the namespace channel or of this instance's request channel.
    fn on_request_message(self: &Arc<Self>, payload: &[u8]) {
        let Some(env) = self.open(payload) else {
            return;
        };
        match env.kind {
            Kind::Request => match rmp_serde::from_slice::<RequestIn>(env.body) {
                Ok(request) => self.on_request(request),
                Err(err) => self.drop_malformed(env.origin, &err),
            },
            Kind::Hello => {
                let reply = envelope::encode_signal(Kind::Heartbeat, self.uid);
                let publish =
                    self.publish(self.channels.requests_of(env.origin), reply, Wait::Queued);
                tokio::spawn(publish);
            }
            Kind::Leave => {
                self.members.left(env.origin);
                tracing::info!(node = %env.origin, ns = %self.local.path(), "instance left");
            }
            Kind::Heartbeat => {}
            Kind::Response | Kind::Applied => {
                self.drop_malformed(env.origin, &"response on a request channel")
            }
        }
    }

    /// Handles a message of a room's channel: read only while this instance holds the room
    /// (the channel stays subscribed for the unsubscribe delay after the last member left).
    fn on_room_message(self: &Arc<Self>, room: &Room, payload: &[u8]) {
        if self.has_members(room) {
            self.on_request_message(payload);
        } else {
            Counters::incr(&self.shared.counters.room_messages_discarded);
        }
    }

    /// Carries out a remote request. A remote join subscribes the rooms it filled, a remote
    /// leave releases the rooms it may have emptied, and both answer the requester once done.
    fn on_request(self: &Arc<Self>, request: RequestIn) {
        let rooms = match &request.r#type {
            RequestTypeIn::AddSockets(rooms) => Some((true, rooms.clone())),
            RequestTypeIn::DelSockets(rooms) => Some((false, rooms.clone())),
            _ => None,
        };
        let (req_id, origin) = (request.id, request.node_id);
        self.recv_req(request);
        let Some((join, rooms)) = rooms else {
            return;
        };
        let adapter = self.clone();
        tokio::spawn(async move {
            if join {
                if let Err(err) = adapter.subscribe_held(&rooms).await {
                    tracing::warn!(%err, "rooms of a remote join not subscribed yet");
                }
            } else {
                adapter.rooms.release(rooms);
            }
            let applied = envelope::encode_applied(adapter.uid, req_id);
            let channel = adapter.channels.responses_of(origin);
            let _counted_by_the_queue = adapter.publish(channel, applied, Wait::Queued).await;
        });
    }

    /// Subscribes those of `rooms` that this instance now has members in.
    async fn subscribe_held(&self, rooms: &[Room]) -> Result<(), Error> {
        let held: Vec<Room> = rooms
            .iter()
            .filter(|room| self.has_members(room))
            .cloned()
            .collect();
        match self.me() {
            Some(me) => self.rooms.ensure(&self.shared.bus, &me, &held).await,
            None => Ok(()),
        }
    }

    /// Whether a socket of this instance is in `room`.
    fn has_members(&self, room: &Room) -> bool {
        let mut opts = BroadcastOptions::default();
        opts.rooms.push(room.clone());
        !self.local.sockets(opts).is_empty()
    }

    /// Handles a message of this instance's response channel.
    fn on_response_message(self: &Arc<Self>, payload: &[u8]) {
        let Some(env) = self.open(payload) else {
            return;
        };
        match (env.kind, envelope::split_response(env.body)) {
            (Kind::Response | Kind::Applied, Ok((req_id, body))) => {
                self.pending.deliver(req_id, body)
            }
            (Kind::Response | Kind::Applied, Err(err)) => self.drop_malformed(env.origin, &err),
            (kind, _) => {
                self.drop_malformed(env.origin, &format!("{kind:?} on a response channel"))
            }
        }
    }

    /// Decodes the envelope, drops (and counts) what is not for us, and records that the
    /// origin is alive.
    fn open<'a>(&self, payload: &'a [u8]) -> Option<envelope::Envelope<'a>> {
        let counters = &self.shared.counters;
        let env = match envelope::decode(payload) {
            Ok(env) => env,
            Err(envelope::DecodeError::UnknownVersion(version)) => {
                Counters::incr(&counters.dropped_unknown_version);
                tracing::warn!(version, "message of unknown envelope version dropped");
                return None;
            }
            Err(err) => {
                Counters::incr(&counters.dropped_malformed);
                tracing::warn!(%err, "malformed message dropped");
                return None;
            }
        };
        if env.origin == self.uid {
            Counters::incr(&counters.ignored_own);
            return None;
        }
        if self.members.saw(env.origin) && env.kind != Kind::Leave {
            tracing::info!(node = %env.origin, ns = %self.local.path(), "instance joined");
        }
        Some(env)
    }

    fn drop_malformed(&self, origin: Uid, err: &dyn fmt::Display) {
        Counters::incr(&self.shared.counters.dropped_malformed);
        tracing::warn!(%origin, %err, "malformed message dropped");
    }

    fn publish(
        &self,
        channel: String,
        payload: Vec<u8>,
        wait: Wait,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.shared.bus.publish(channel, payload, wait)
    }

    /// The messages that carry a broadcast to the other instances: to rooms, one on each
    /// room's channel, so that only the instances holding a room receive it. A socket in
    /// several of the rooms must get the packet once: the message of the `i`-th room also
    /// excludes the rooms before it, whose own messages reach that socket's instance (it
    /// holds them, so it subscribes to them).
    fn outgoing_broadcast(
        &self,
        packet: &Packet,
        opts: &BroadcastOptions,
    ) -> Result<Vec<Outgoing>, Error> {
        if opts.rooms.is_empty() || Self::target(opts).is_some() {
            return Ok(self
                .outgoing(RequestTypeOut::Broadcast(packet), opts)?
                .into_iter()
                .collect());
        }
        if opts.is_local(self.uid) {
            return Ok(Vec::new());
        }
        let mut rooms = opts.rooms.clone();
        rooms.sort_unstable();
        rooms.dedup();
        let mut room_opts = opts.clone();
        let mut outgoing = Vec::with_capacity(rooms.len());
        for (index, room) in rooms.iter().enumerate() {
            room_opts.rooms = std::iter::once(room.clone()).collect();
            if index > 0 {
                room_opts.except.push(rooms[index - 1].clone());
            }
            let request = RequestOut::new(self.uid, RequestTypeOut::Broadcast(packet), &room_opts);
            outgoing.push(Outgoing {
                channel: self.channels.room(room),
                payload: envelope::encode_request(self.uid, &request)?,
                id: request.id,
            });
        }
        Ok(outgoing)
    }

    /// This adapter behind its `Arc`, while it is installed.
    fn me(&self) -> Option<Arc<Self>> {
        self.myself.get().and_then(Weak::upgrade)
    }

    /// The request that carries an operation to the other instances, encoded before the
    /// local part of the operation consumes its inputs; `None` when `opts` stay local.
    fn outgoing(
        &self,
        kind: RequestTypeOut<'_>,
        opts: &BroadcastOptions,
    ) -> Result<Option<Outgoing>, Error> {
        if opts.is_local(self.uid) {
            return Ok(None);
        }
        let request = RequestOut::new(self.uid, kind, opts);
        Ok(Some(Outgoing {
            channel: self.request_channel(opts),
            payload: envelope::encode_request(self.uid, &request)?,
            id: request.id,
        }))
    }

    /// Publishes what [`Self::outgoing`] prepared, if anything: queued in order, and
    /// confirmed by Redis when the caller runs inside [`confirm::confirmed`]. A burst of
    /// emits yields to the runtime now and then so the writer can drain the queue.
    async fn forward(&self, outgoing: impl IntoIterator<Item = Outgoing>) -> Result<(), Error> {
        let wait = if confirm::wanted() {
            Wait::Confirmed
        } else {
            tokio::task::consume_budget().await;
            Wait::Queued
        };
        let sent: Vec<_> = outgoing
            .into_iter()
            .map(
                |Outgoing {
                     channel, payload, ..
                 }| self.publish(channel, payload, wait),
            )
            .collect();
        for result in futures_util::future::join_all(sent).await {
            result?;
        }
        Ok(())
    }

    /// Sends a remote join or leave and waits (at most the request timeout) until each of
    /// the `expected` instances answered that it is in place there: a broadcast sent after
    /// this returns sees the new membership everywhere.
    async fn apply_remotely(&self, remote: Option<Outgoing>, expected: usize) -> Result<(), Error> {
        let Some(Outgoing {
            channel,
            payload,
            id,
        }) = remote
        else {
            return Ok(());
        };
        let rx = self.pending.register(id);
        if let Err(err) = self.publish(channel, payload, Wait::Confirmed).await {
            self.pending.forget(id);
            return Err(err);
        }
        let timeout = self.shared.config.request_timeout;
        self.pending.count(rx, id, expected, timeout).await;
        Ok(())
    }

    /// Operations aimed at one remote socket go to its instance only.
    fn target(opts: &BroadcastOptions) -> Option<Uid> {
        let single_socket = !opts.has_flag(BroadcastFlags::Broadcast)
            && opts.rooms.is_empty()
            && opts.sid.is_some();
        opts.server_id.filter(|_| single_socket)
    }

    fn request_channel(&self, opts: &BroadcastOptions) -> String {
        match Self::target(opts) {
            Some(node) => self.channels.requests_of(node),
            None => self.channels.broadcast.clone(),
        }
    }

    fn expected_responses(&self, opts: &BroadcastOptions) -> usize {
        match Self::target(opts) {
            Some(_) => 1,
            None => self.members.others(),
        }
    }

    /// Asks the other instances and gathers their responses, bounded by the request timeout.
    async fn query<D: DeserializeOwned>(
        &self,
        kind: RequestTypeOut<'_>,
        opts: &BroadcastOptions,
        response: ResponseTypeId,
    ) -> Result<Vec<Response<D>>, Error> {
        let expected = self.expected_responses(opts);
        if expected == 0 {
            return Ok(Vec::new());
        }
        let request = RequestOut::new(self.uid, kind, opts);
        let req_id = request.id;
        let payload = envelope::encode_request(self.uid, &request)?;
        let rx = self.pending.register(req_id);
        let channel = self.request_channel(opts);
        if let Err(err) = self.publish(channel, payload, Wait::Confirmed).await {
            self.pending.forget(req_id);
            return Err(err);
        }
        let timeout = self.shared.config.request_timeout;
        Ok(self
            .pending
            .collect(rx, req_id, response, expected, timeout)
            .await)
    }

    fn ack_stream(
        &self,
        local: E::AckStream,
        rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
        req_id: Sid,
        servers: usize,
        timeout: Duration,
    ) -> RedisAckStream<E> {
        AckStream::new(
            local,
            ChanStream::new(rx),
            decode_ack::<E::AckError>,
            timeout,
            u16::try_from(servers).unwrap_or(u16::MAX),
            req_id,
            self.pending.handlers(),
        )
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stop_tasks(&self) {
        for task in self.lock_tasks().drain(..) {
            task.abort();
        }
    }
}

impl<E> Drop for RedisAdapter<E> {
    fn drop(&mut self) {
        let tasks = self
            .tasks
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for task in tasks.drain(..) {
            task.abort();
        }
    }
}

impl<E: SocketEmitter> RoomChannels for Arc<RedisAdapter<E>> {
    fn channel(&self, room: &Room) -> String {
        self.channels.room(room)
    }

    fn handler(&self, room: &Room) -> Handler {
        let (adapter, room) = (Arc::downgrade(self), room.clone());
        Arc::new(move |payload| {
            if let Some(adapter) = adapter.upgrade() {
                adapter.on_room_message(&room, payload);
            }
        })
    }

    fn has_members(&self, room: &Room) -> bool {
        RedisAdapter::has_members(self, room)
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
            let subscribed = self.rooms.ensure(&self.shared.bus, &self, &rooms).await;
            if subscribed.is_err() {
                // Not joined after all: the room may be unsubscribed again if now empty.
                self.local.del(sid, rooms.clone());
                self.rooms.release(rooms);
            }
            subscribed
        })
    }

    fn leave(&self, sid: Sid, rooms: Vec<Room>) {
        self.local.del(sid, rooms.clone());
        self.rooms.release(rooms);
    }
}

/// Keeps the room subscriptions in line with the rooms this instance holds: unsubscribes
/// released rooms once the delay has passed, and reconciles every `reconcile` interval.
async fn room_keeper<E: SocketEmitter>(
    adapter: Weak<RedisAdapter<E>>,
    delay: Duration,
    reconcile: Duration,
) {
    let tick = (delay / 2).clamp(
        Duration::from_millis(10),
        reconcile.max(Duration::from_millis(10)),
    );
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_reconcile = tokio::time::Instant::now();
    loop {
        ticker.tick().await;
        let Some(adapter) = adapter.upgrade() else {
            return;
        };
        let bus = &adapter.shared.bus;
        if last_reconcile.elapsed() >= reconcile {
            last_reconcile = tokio::time::Instant::now();
            let mut every_socket = BroadcastOptions::default();
            every_socket.add_flag(BroadcastFlags::Broadcast);
            let held = adapter.local.rooms(every_socket);
            adapter.rooms.reconcile(bus, &adapter, held).await;
        }
        adapter.rooms.sweep(bus, &adapter).await;
    }
}

/// Announces this instance every `interval` until the adapter is gone, and says hello again
/// each time the subscriber reconnects (the others may have dropped it meanwhile, and it may
/// have missed their heartbeats). Failed publishes are counted by the publisher and retried at
/// the next tick: the loop never ends on error.
async fn heartbeat_loop<E: SocketEmitter>(
    adapter: Weak<RedisAdapter<E>>,
    interval: Duration,
    mut link: LinkRx,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        let kind = tokio::select! {
            _ = ticker.tick() => Kind::Heartbeat,
            changed = link.changed() => {
                if changed.is_err() {
                    return;
                }
                if !link.borrow_and_update().connected {
                    continue;
                }
                Kind::Hello
            }
        };
        let Some(adapter) = adapter.upgrade() else {
            return;
        };
        let signal = envelope::encode_signal(kind, adapter.uid);
        let publish = adapter.publish(adapter.channels.broadcast.clone(), signal, Wait::Queued);
        drop(adapter);
        let _counted_by_publisher = publish.await;
    }
}

/// An encoded request, its id and the channel it goes to.
struct Outgoing {
    channel: String,
    payload: Vec<u8>,
    id: Sid,
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
