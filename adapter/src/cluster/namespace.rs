//! One namespace on the cluster bus: its channels, its live instances, its room
//! subscriptions and its pending requests, over a [`PubSub`]; the front end that owns the
//! sockets ([`Inbound`]) encodes and carries out the requests, the bus moves them.

use std::{
    collections::HashSet,
    fmt,
    sync::{Arc, Mutex, OnceLock, Weak},
};

use tokio::{sync::mpsc, task::JoinHandle};

use super::{
    Id, PubSub, Room,
    channels::{Channels, EmitterChannels},
    emitter::{self, EmitterError, EmitterRequest},
    envelope::{self, Kind},
    membership::{self, Membership},
    pending::PendingRequests,
    rooms::{self, RoomOwner, RoomSubscriptions},
    seal::{self, ClusterSecret},
};
use crate::{
    config::{EmitterConfig, RedisAdapterConfig},
    connection::{Handler, Wait},
    error::Error,
    stats::Counters,
};

/// What the bus needs from the front end that owns a namespace's sockets.
pub trait Inbound: Send + Sync + 'static {
    /// A request another instance sent to this namespace, as its front end encoded it:
    /// carry it out (and answer through [`NamespaceBus::response`] if it asks for answers).
    /// `room` is the room whose channel carried it: such a request may only be a broadcast
    /// to that room, and anything else is to be dropped ([`NamespaceBus::drop_malformed`]).
    fn on_request(self: Arc<Self>, origin: Id, body: &[u8], room: Option<&Room>);
    /// Whether a local socket is in `room`; asked off the hot path only.
    fn holds(&self, room: &str) -> bool;
    /// Every room a local socket is in.
    fn held_rooms(&self) -> HashSet<Room>;
    /// An operation of the Socket.IO Redis emitter for this namespace, decoded and accepted
    /// by [`EmitterConfig::accept`]: carry it out on the local sockets.
    fn on_emitter(self: Arc<Self>, request: EmitterRequest);
}

/// The Socket.IO Redis emitter as one namespace reads it.
struct EmitterInbound {
    config: EmitterConfig,
    channels: EmitterChannels,
}

/// An encoded message and the channel it goes to.
#[derive(Debug)]
pub struct Outgoing {
    /// The channel.
    pub channel: String,
    /// The envelope.
    pub payload: Vec<u8>,
}

/// One namespace of this instance on the cluster bus. Create it with
/// [`NamespaceBus::new`], then [`NamespaceBus::start`] it with its front end.
pub struct NamespaceBus<P: PubSub> {
    pubsub: Arc<P>,
    config: RedisAdapterConfig,
    pub(super) counters: Arc<Counters>,
    pub(super) channels: Channels,
    node: Id,
    /// Seals what this instance sends, and keeps out what does not verify.
    secret: Option<ClusterSecret>,
    /// What the Socket.IO Redis emitter sends, when it is read.
    emitter: Option<EmitterInbound>,
    members: Membership,
    pending: PendingRequests,
    rooms: RoomSubscriptions,
    inbound: OnceLock<Weak<dyn Inbound>>,
    /// This bus behind its `Arc`: room handlers reach it through this.
    myself: OnceLock<Weak<Self>>,
    /// The heartbeat and the room keeper, stopped with the bus.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl<P: PubSub> NamespaceBus<P> {
    /// Namespace `ns` of instance `node` over `pubsub`, counting into `counters`.
    pub fn new(
        pubsub: Arc<P>,
        config: &RedisAdapterConfig,
        counters: Arc<Counters>,
        ns: &str,
        node: Id,
    ) -> Arc<Self> {
        Arc::new(Self {
            channels: Channels::new(&config.prefix, ns),
            members: Membership::new(config.heartbeat_timeout),
            pending: PendingRequests::new(config.response_buffer, counters.clone()),
            rooms: RoomSubscriptions::new(config.unsubscribe_delay, counters.clone()),
            secret: config.cluster_secret.clone(),
            emitter: config.emitter.as_ref().map(|emitter| EmitterInbound {
                config: emitter.clone(),
                channels: EmitterChannels::new(&emitter.key, ns),
            }),
            config: config.clone(),
            counters,
            pubsub,
            node,
            inbound: OnceLock::new(),
            myself: OnceLock::new(),
            tasks: Mutex::default(),
        })
    }

    /// Subscribes the namespace's channels, says hello, and starts heartbeating and keeping
    /// the room subscriptions; requests from other instances go to `inbound` from now on.
    pub async fn start(self: &Arc<Self>, inbound: Weak<dyn Inbound>) -> Result<(), Error> {
        let _first_start = self.myself.set(Arc::downgrade(self));
        let _first_front_end = self.inbound.set(inbound);
        let [broadcast, own_requests, own_responses] = self.own_channels();
        let pubsub = &self.pubsub;
        for (channel, on_message) in [
            (
                broadcast.clone(),
                Self::on_request_message as fn(&Self, &[u8]),
            ),
            (own_requests, Self::on_request_message),
            (own_responses, Self::on_response_message),
        ] {
            let handler = self.route(channel.clone(), on_message);
            pubsub.subscribe(channel, handler).await?;
        }
        for (channel, handler) in self.emitter_routes() {
            pubsub.subscribe_plain(channel, handler).await?;
        }
        self.signal(Kind::Hello, broadcast.clone(), Wait::Confirmed)
            .await?;
        let heartbeat = membership::heartbeat(
            pubsub.clone(),
            broadcast,
            self.node,
            self.secret.clone(),
            self.config.heartbeat_interval,
        );
        let keeper = rooms::keep(
            Arc::downgrade(self),
            self.config.unsubscribe_delay,
            self.config.reconcile_interval,
        );
        self.lock_tasks()
            .extend([tokio::spawn(heartbeat), tokio::spawn(keeper)]);
        Ok(())
    }

    /// Says goodbye (the others stop counting this instance at once) and unsubscribes.
    pub async fn close(&self) -> Result<(), Error> {
        self.stop_tasks();
        let result = self
            .signal(
                Kind::Leave,
                self.channels.broadcast.clone(),
                Wait::Confirmed,
            )
            .await;
        let rooms = self.rooms.subscribed();
        let room_channels = rooms.iter().map(|room| self.channels.room(room));
        for channel in self.own_channels().into_iter().chain(room_channels) {
            self.pubsub.unsubscribe(channel).await;
        }
        let emitter_rooms = rooms.iter().filter_map(|room| self.emitter_channel(room));
        let emitter_channels = self.emitter.iter().flat_map(|emitter| {
            [
                emitter.channels.broadcast.clone(),
                emitter.channels.requests.clone(),
            ]
        });
        for channel in emitter_channels.chain(emitter_rooms) {
            self.pubsub.unsubscribe_plain(channel).await;
        }
        result
    }

    /// This instance's id.
    pub fn node(&self) -> Id {
        self.node
    }

    /// The number of live instances serving the namespace, this one included.
    pub fn server_count(&self) -> u16 {
        self.members.server_count()
    }

    /// How many answers a request to `target` (one instance) or to every other instance
    /// (`None`) should get.
    pub fn expected_responses(&self, target: Option<Id>) -> usize {
        match target {
            Some(_) => 1,
            None => self.members.others(),
        }
    }

    /// A request for `target`'s request channel, or the namespace channel when `None`, with
    /// the body `write` appends.
    pub fn request<E>(
        &self,
        target: Option<Id>,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Outgoing, E> {
        let channel = match target {
            Some(node) => self.channels.requests_of(node),
            None => self.channels.broadcast.clone(),
        };
        let payload = envelope::encode_with(Kind::Request, self.node, write)?;
        Ok(self.outgoing(channel, payload))
    }

    /// The messages of a broadcast to `rooms`: one on each room's channel, so that only the
    /// instances holding a room receive it. A socket in several of the rooms must get the
    /// packet once: `write` gets each room with the rooms before it, which that message must
    /// also exclude (their own messages reach the socket's instance, which holds them).
    pub fn room_requests<E>(
        &self,
        rooms: &[Room],
        mut write: impl FnMut(&Room, &[Room], &mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Vec<Outgoing>, E> {
        let mut rooms = rooms.to_vec();
        if rooms.len() > 1 {
            rooms.sort_unstable();
            rooms.dedup();
        }
        rooms
            .iter()
            .enumerate()
            .map(|(index, room)| {
                let payload = envelope::encode_with(Kind::Request, self.node, |buf| {
                    write(room, &rooms[..index], buf)
                })?;
                Ok(self.outgoing(self.channels.room(room), payload))
            })
            .collect()
    }

    /// Publishes `outgoing` in order, each resolving as `wait` says. A burst of queued
    /// sends yields to the runtime now and then so the writer can drain the queue.
    pub async fn send(&self, outgoing: Vec<Outgoing>, wait: Wait) -> Result<(), Error> {
        if wait == Wait::Queued {
            tokio::task::consume_budget().await;
        }
        let mut outgoing = outgoing.into_iter();
        match (outgoing.next(), outgoing.len()) {
            (None, _) => Ok(()),
            (Some(one), 0) => self.pubsub.publish(one.channel, one.payload, wait).await,
            (Some(first), _) => {
                let sent: Vec<_> = std::iter::once(first)
                    .chain(outgoing)
                    .map(|Outgoing { channel, payload }| {
                        self.pubsub.publish(channel, payload, wait)
                    })
                    .collect();
                futures_util::future::try_join_all(sent).await.map(drop)
            }
        }
    }

    /// Starts routing the responses to request `req_id` (any number from each instance, as
    /// acknowledgements come); drop the receiver to stop.
    pub fn register(&self, req_id: Id) -> mpsc::Receiver<Vec<u8>> {
        self.pending.register(req_id, false)
    }

    /// Publishes request `req_id` and waits for Redis to take it; on failure nothing waits
    /// for its responses.
    pub async fn publish_request(&self, outgoing: Outgoing, req_id: Id) -> Result<(), Error> {
        let published = self
            .pubsub
            .publish(outgoing.channel, outgoing.payload, Wait::Confirmed)
            .await;
        if published.is_err() {
            self.pending.forget(req_id);
        }
        published
    }

    /// Sends request `req_id` and gathers up to `expected` responses, waiting at most the
    /// request timeout.
    pub async fn query(
        &self,
        outgoing: Outgoing,
        req_id: Id,
        expected: usize,
    ) -> Result<Vec<Vec<u8>>, Error> {
        if expected == 0 {
            return Ok(Vec::new());
        }
        let rx = self.pending.register(req_id, true);
        self.publish_request(outgoing, req_id).await?;
        Ok(self
            .pending
            .collect(rx, req_id, expected, self.config.request_timeout)
            .await)
    }

    /// Sends a remote join or leave, `req_id`, and waits (at most the request timeout)
    /// until each of the `expected` instances answered that it is in place there: a
    /// broadcast sent after this returns sees the new membership everywhere.
    pub async fn apply_remotely(
        &self,
        outgoing: Outgoing,
        req_id: Id,
        expected: usize,
    ) -> Result<(), Error> {
        let rx = self.pending.register(req_id, true);
        self.publish_request(outgoing, req_id).await?;
        self.pending
            .collect(rx, req_id, expected, self.config.request_timeout)
            .await;
        Ok(())
    }

    /// The answer to request `req_id` of instance `origin`, with the body `write` appends;
    /// send it with [`NamespaceBus::publish`].
    pub fn response<E>(
        &self,
        origin: Id,
        req_id: Id,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Outgoing, E> {
        let payload = envelope::encode_with(Kind::Response, self.node, |buf| {
            envelope::response_header(buf, req_id);
            write(buf)
        })?;
        Ok(self.outgoing(self.channels.responses_of(origin), payload))
    }

    /// Publishes one message now, in order with every other; resolves as `wait` says.
    pub fn publish(
        &self,
        outgoing: Outgoing,
        wait: Wait,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.pubsub
            .publish(outgoing.channel, outgoing.payload, wait)
    }

    /// Subscribes each of `rooms` this instance does not listen to yet, and returns once
    /// the subscriptions hold: every broadcast to them published after this is heard. On
    /// error the rooms are released again.
    pub async fn join(&self, rooms: &[Room]) -> Result<(), Error> {
        let Some(me) = self.me() else {
            return Err(Error::NotConnected);
        };
        let subscribed = self.rooms.ensure(&me, rooms).await;
        if subscribed.is_err() {
            self.rooms.release(rooms.iter().cloned());
        }
        subscribed
    }

    /// Notes that `rooms` may have lost their last local member: each is unsubscribed once
    /// it has stayed empty for the unsubscribe delay.
    pub fn release(&self, rooms: impl IntoIterator<Item = Room>) {
        self.rooms.release(rooms);
    }

    /// Subscribes those of `rooms` that a local socket is now in.
    pub async fn subscribe_held(&self, rooms: &[Room]) -> Result<(), Error> {
        let Some(me) = self.me() else {
            return Ok(());
        };
        let held: Vec<Room> = rooms
            .iter()
            .filter(|room| me.has_members(room))
            .cloned()
            .collect();
        self.rooms.ensure(&me, &held).await
    }

    /// After a remote join (`join`) or leave of `rooms` was carried out here: subscribe the
    /// rooms it filled, or release those it may have emptied, then tell `origin` that
    /// request `req_id` is in place.
    pub fn remote_change_applied(&self, origin: Id, req_id: Id, join: bool, rooms: Vec<Room>) {
        let Some(me) = self.me() else {
            return;
        };
        tokio::spawn(async move {
            if join {
                if let Err(err) = me.subscribe_held(&rooms).await {
                    tracing::warn!(%err, "rooms of a remote join not subscribed yet");
                }
            } else {
                me.rooms.release(rooms);
            }
            let applied = envelope::encode_applied(me.node, req_id);
            let applied = me.outgoing(me.channels.responses_of(origin), applied);
            let _counted_by_the_queue = me.publish(applied, Wait::Queued).await;
        });
    }

    fn own_channels(&self) -> [String; 3] {
        [
            self.channels.broadcast.clone(),
            self.channels.requests_of(self.node),
            self.channels.responses_of(self.node),
        ]
    }

    /// `payload` sealed for `channel` (when the bus has a secret), ready to publish.
    fn outgoing(&self, channel: String, payload: Vec<u8>) -> Outgoing {
        let payload = seal::seal(self.secret.as_ref(), &channel, payload);
        Outgoing { channel, payload }
    }

    /// Publishes a message without a body (hello, heartbeat, leave) on `channel`.
    fn signal(
        &self,
        kind: Kind,
        channel: String,
        wait: Wait,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let signal = self.outgoing(channel, envelope::encode_signal(kind, self.node));
        self.publish(signal, wait)
    }

    /// What this instance believes of a message received on `channel`: the whole of it
    /// without a secret, a verified envelope with one; anything else is dropped and counted.
    fn unseal<'a>(&self, channel: &str, received: &'a [u8]) -> Option<&'a [u8]> {
        let opened = seal::open(self.secret.as_ref(), channel, received);
        if opened.is_none() {
            Counters::incr(&self.counters.dropped_unverified);
            tracing::debug!(%channel, "unverifiable message dropped");
        }
        opened
    }

    /// A subscriber handler of `channel` that reaches this bus for as long as it exists.
    /// When the emitter's namespace channel has the same name (its key is the prefix), what
    /// the emitter sends there is told from envelopes by its first byte.
    fn route(self: &Arc<Self>, channel: String, on_message: fn(&Self, &[u8])) -> Handler {
        let bus = Arc::downgrade(self);
        let shared_with_emitter = self
            .emitter
            .as_ref()
            .is_some_and(|emitter| emitter.channels.broadcast == channel);
        Arc::new(move |received| {
            let Some(bus) = bus.upgrade() else {
                return;
            };
            if shared_with_emitter && emitter::looks_like_broadcast(received) {
                bus.on_emitter_broadcast(received, None);
            } else if let Some(payload) = bus.unseal(&channel, received) {
                on_message(&bus, payload);
            }
        })
    }

    /// The emitter's channels this namespace subscribes with a plain `SUBSCRIBE`, and their
    /// handlers: its request channel, and its namespace channel (which, when it has the name
    /// of the bus's own, gets the same handler: a Redis Cluster keeps `PUBLISH` apart from
    /// `SPUBLISH` on one name, a standalone Redis has one subscription for both).
    fn emitter_routes(self: &Arc<Self>) -> Vec<(String, Handler)> {
        let Some(emitter) = &self.emitter else {
            return Vec::new();
        };
        let broadcast = emitter.channels.broadcast.clone();
        let broadcast_handler = if broadcast == self.channels.broadcast {
            self.route(broadcast.clone(), Self::on_request_message)
        } else {
            self.emitter_handler_of(|bus, received| bus.on_emitter_broadcast(received, None))
        };
        let requests = self.emitter_handler_of(Self::on_emitter_request);
        vec![
            (broadcast, broadcast_handler),
            (emitter.channels.requests.clone(), requests),
        ]
    }

    /// A handler of an emitter channel that reaches this bus for as long as it exists.
    fn emitter_handler_of(self: &Arc<Self>, on_message: fn(&Self, &[u8])) -> Handler {
        let bus = Arc::downgrade(self);
        Arc::new(move |received| {
            if let Some(bus) = bus.upgrade() {
                on_message(&bus, received);
            }
        })
    }

    /// The emitter's channel of `room`, unless the emitter is not read or the name could be
    /// one of the bus's own channels (a room with `#` in it, or named like this instance's
    /// request channel when the emitter's key is the prefix).
    fn emitter_channel(&self, room: &str) -> Option<String> {
        let emitter = self.emitter.as_ref()?;
        if room.is_empty() || room.contains('#') {
            return None;
        }
        let channel = emitter.channels.room(room);
        (!self.own_channels().contains(&channel)).then_some(channel)
    }

    /// Handles a message of the emitter's namespace channel, or of its channel of `room`
    /// (which may only be an emit to that room).
    fn on_emitter_broadcast(&self, received: &[u8], room: Option<&Room>) {
        if let Some(room) = room
            && !self.holds_room(room)
        {
            Counters::incr(&self.counters.room_messages_discarded);
            return;
        }
        self.on_emitter_message(received, |payload| {
            let request = emitter::decode_broadcast(payload, self.channels.ns())?;
            match room {
                Some(room) if request.selection().rooms != std::slice::from_ref(room) => {
                    Err(EmitterError::Malformed(
                        "a room's channel carried an emit to other rooms".into(),
                    ))
                }
                _ => Ok(request),
            }
        });
    }

    /// Handles a message of the emitter's request channel.
    fn on_emitter_request(&self, received: &[u8]) {
        self.on_emitter_message(received, emitter::decode_request);
    }

    /// Bounds, decodes (with `decode`), checks with the application's rule, and hands to
    /// the front end one emitter message; anything else is dropped and counted.
    fn on_emitter_message(
        &self,
        received: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<EmitterRequest, EmitterError>,
    ) {
        let Some(emitter) = &self.emitter else {
            return;
        };
        let counters = &self.counters;
        Counters::incr(&counters.emitter_received);
        if received.len() > emitter.config.max_message_bytes {
            Counters::incr(&counters.emitter_dropped_oversized);
            tracing::warn!(bytes = received.len(), "oversized emitter message dropped");
            return;
        }
        let request = match decode(received) {
            Ok(request) => request,
            Err(err) => {
                let counter = match err {
                    EmitterError::Malformed(_) => &counters.emitter_dropped_malformed,
                    EmitterError::Unsupported(_) => &counters.emitter_dropped_unsupported,
                };
                Counters::incr(counter);
                tracing::warn!(%err, "emitter message dropped");
                return;
            }
        };
        if let Err(reason) = (emitter.config.accept)(&request) {
            Counters::incr(&counters.emitter_dropped_refused);
            tracing::warn!(%reason, "emitter message refused");
            return;
        }
        if let Some(inbound) = self.inbound() {
            inbound.on_emitter(request);
        }
    }

    /// Handles a message of the namespace channel or of this instance's request channel.
    fn on_request_message(&self, payload: &[u8]) {
        self.on_message(payload, None);
    }

    /// Handles a message of a request channel, or of `room`'s channel.
    fn on_message(&self, payload: &[u8], room: Option<&Room>) {
        let Some(env) = self.open(payload) else {
            return;
        };
        match env.kind {
            Kind::Request => {
                if let Some(inbound) = self.inbound() {
                    inbound.on_request(env.origin, env.body, room);
                }
            }
            Kind::Hello => {
                let channel = self.channels.requests_of(env.origin);
                tokio::spawn(self.signal(Kind::Heartbeat, channel, Wait::Queued));
            }
            Kind::Leave => {
                self.members.left(env.origin);
                tracing::info!(node = %env.origin, ns = %self.channels.ns(), "instance left");
            }
            Kind::Heartbeat => {}
            Kind::Response | Kind::Applied => {
                self.drop_malformed(env.origin, &"response on a request channel")
            }
        }
    }

    /// Handles a message of a room's channel: read only while this instance holds the room
    /// (the channel stays subscribed for the unsubscribe delay after the last member left).
    fn on_room_message(&self, room: &Room, payload: &[u8]) {
        if self.holds_room(room) {
            self.on_message(payload, Some(room));
        } else {
            Counters::incr(&self.counters.room_messages_discarded);
        }
    }

    /// Whether this instance holds `room`: O(1) unless the room was released lately.
    fn holds_room(&self, room: &str) -> bool {
        match self.rooms.is_held(room) {
            Some(held) => held,
            None => self.me().is_some_and(|me| me.has_members(room)),
        }
    }

    /// Handles a message of this instance's response channel.
    fn on_response_message(&self, payload: &[u8]) {
        let Some(env) = self.open(payload) else {
            return;
        };
        match (env.kind, envelope::split_response(env.body)) {
            (Kind::Response | Kind::Applied, Ok((req_id, body))) => {
                self.pending.deliver(req_id, env.origin, body)
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
        let counters = &self.counters;
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
        if env.origin == self.node {
            Counters::incr(&counters.ignored_own);
            return None;
        }
        if self.members.saw(env.origin) && env.kind != Kind::Leave {
            tracing::info!(node = %env.origin, ns = %self.channels.ns(), "instance joined");
        }
        Some(env)
    }

    /// Counts and logs an emitter message the front end could not carry out (an event its
    /// parser cannot encode, such as a map with non-string keys for JSON).
    pub fn drop_emitted(&self, err: &dyn fmt::Display) {
        Counters::incr(&self.counters.emitter_dropped_malformed);
        tracing::warn!(%err, "emitter message dropped");
    }

    /// Counts and logs a message that could not be read.
    pub fn drop_malformed(&self, origin: Id, err: &dyn fmt::Display) {
        Counters::incr(&self.counters.dropped_malformed);
        tracing::warn!(%origin, %err, "malformed message dropped");
    }

    /// This bus behind its `Arc`, once started.
    fn me(&self) -> Option<Arc<Self>> {
        self.myself.get().and_then(Weak::upgrade)
    }

    fn inbound(&self) -> Option<Arc<dyn Inbound>> {
        self.inbound.get().and_then(Weak::upgrade)
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

#[cfg(test)]
impl<P: PubSub> NamespaceBus<P> {
    /// Hands `req_id` a response after its request ended, as a slow instance would.
    pub(crate) fn deliver_late_for_test(&self, req_id: Id) {
        self.pending.deliver(req_id, Id::random(), b"late");
    }
}

impl<P: PubSub> Drop for NamespaceBus<P> {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

impl<P: PubSub> RoomOwner for NamespaceBus<P> {
    type PubSub = P;

    fn pubsub(&self) -> &P {
        &self.pubsub
    }

    fn subscriptions(&self) -> &RoomSubscriptions {
        &self.rooms
    }

    fn channel(&self, room: &str) -> String {
        self.channels.room(room)
    }

    fn handler(self: &Arc<Self>, room: &Room) -> Handler {
        let (bus, room) = (Arc::downgrade(self), room.clone());
        let channel = self.channels.room(&room);
        Arc::new(move |received| {
            if let Some(bus) = bus.upgrade()
                && let Some(payload) = bus.unseal(&channel, received)
            {
                bus.on_room_message(&room, payload);
            }
        })
    }

    fn emitter_channel(&self, room: &str) -> Option<String> {
        NamespaceBus::emitter_channel(self, room)
    }

    fn emitter_handler(self: &Arc<Self>, room: &Room) -> Handler {
        let (bus, room) = (Arc::downgrade(self), room.clone());
        Arc::new(move |received| {
            if let Some(bus) = bus.upgrade() {
                bus.on_emitter_broadcast(received, Some(&room));
            }
        })
    }

    fn has_members(&self, room: &str) -> bool {
        self.inbound().is_some_and(|inbound| inbound.holds(room))
    }

    fn held_rooms(&self) -> HashSet<Room> {
        self.inbound()
            .map(|inbound| inbound.held_rooms())
            .unwrap_or_default()
    }
}
