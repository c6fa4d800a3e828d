//! The `CoreAdapter` implementation: composes the bus, the envelope, membership and the
//! request bookkeeping into socketioxide's adapter operations.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, Weak},
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
        remote_packet::{RequestIn, RequestOut, RequestTypeOut, Response, ResponseTypeId},
        request::RemoteRequestHandler,
        stream::{AckStream, ChanStream},
    },
    packet::Packet,
};
use tokio::task::JoinHandle;

use crate::{
    bus::{Handler, LinkRx},
    channels::Channels,
    envelope::{self, Kind},
    error::Error,
    membership::Membership,
    remote::PendingRequests,
    state::{RedisAdapterState, Shared},
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
    heartbeat: Mutex<Option<JoinHandle<()>>>,
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
            members,
            shared,
            local,
            heartbeat: Mutex::new(None),
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
        if let Some(task) = self.lock_heartbeat().take() {
            task.abort();
        }
        let leave = envelope::encode_signal(Kind::Leave, self.uid);
        let result = self.publish(self.channels.broadcast.clone(), leave).await;
        for channel in self.own_channels() {
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
        let remote = self.outgoing(RequestTypeOut::Broadcast(&packet), &opts)?;
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
        let servers = match self.publish(channel, payload).await {
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
        self.local.add_sockets(opts, rooms);
        self.forward(remote).await
    }

    async fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Error> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        let remote = self.outgoing(RequestTypeOut::DelSockets(&rooms), &opts)?;
        self.local.del_sockets(opts, rooms);
        self.forward(remote).await
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
            .map(|payload| self.shared.bus.publish(channel, payload));
        async move { publish?.await }
    }
}

impl<E: SocketEmitter> RedisAdapter<E> {
    /// Subscribes the namespace's channels, says hello, and starts heartbeating.
    async fn start(self: &Arc<Self>) -> Result<(), Error> {
        let bus = &self.shared.bus;
        let [broadcast, own_requests, own_responses] = self.own_channels();
        bus.subscribe(broadcast, self.route(Self::on_request_message))
            .await?;
        bus.subscribe(own_requests, self.route(Self::on_request_message))
            .await?;
        bus.subscribe(own_responses, self.route(Self::on_response_message))
            .await?;
        let hello = envelope::encode_signal(Kind::Hello, self.uid);
        self.publish(self.channels.broadcast.clone(), hello).await?;
        *self.lock_heartbeat() = Some(tokio::spawn(heartbeat_loop(
            Arc::downgrade(self),
            self.shared.config.heartbeat_interval,
            bus.link(),
        )));
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
                Ok(request) => self.recv_req(request),
                Err(err) => self.drop_malformed(env.origin, &err),
            },
            Kind::Hello => {
                let reply = envelope::encode_signal(Kind::Heartbeat, self.uid);
                let publish = self.publish(self.channels.requests_of(env.origin), reply);
                tokio::spawn(publish);
            }
            Kind::Leave => {
                self.members.left(env.origin);
                tracing::info!(node = %env.origin, ns = %self.local.path(), "instance left");
            }
            Kind::Heartbeat => {}
            Kind::Response => self.drop_malformed(env.origin, &"response on a request channel"),
        }
    }

    /// Handles a message of this instance's response channel.
    fn on_response_message(self: &Arc<Self>, payload: &[u8]) {
        let Some(env) = self.open(payload) else {
            return;
        };
        match (env.kind, envelope::split_response(env.body)) {
            (Kind::Response, Ok((req_id, body))) => self.pending.deliver(req_id, body),
            (Kind::Response, Err(err)) => self.drop_malformed(env.origin, &err),
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
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.shared.bus.publish(channel, payload)
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
        }))
    }

    /// Publishes what [`Self::outgoing`] prepared, if anything.
    async fn forward(&self, outgoing: Option<Outgoing>) -> Result<(), Error> {
        match outgoing {
            Some(Outgoing { channel, payload }) => self.publish(channel, payload).await,
            None => Ok(()),
        }
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
        if let Err(err) = self.publish(self.request_channel(opts), payload).await {
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

    fn lock_heartbeat(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.heartbeat
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<E> Drop for RedisAdapter<E> {
    fn drop(&mut self) {
        if let Some(task) = self
            .heartbeat
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
        {
            task.abort();
        }
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
        let publish = adapter.publish(adapter.channels.broadcast.clone(), signal);
        drop(adapter);
        let _counted_by_publisher = publish.await;
    }
}

/// An encoded request and the channel it goes to.
struct Outgoing {
    channel: String,
    payload: Vec<u8>,
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
