//! A [socketioxide] adapter that shares rooms and sockets across server instances through
//! Redis Pub/Sub, on a standalone Redis or a Redis Cluster.
//!
//! Every adapter operation works across instances: broadcasts to the namespace or to
//! rooms (with `except`, local and volatile flags), broadcasts with acknowledgements from
//! sockets on every instance, remote join and leave, remote disconnect, `rooms()`,
//! `fetch_sockets()` and the server count.
//!
//! What it does differently from the usual Redis adapters:
//! - **Each instance hears only the rooms it holds.** A room broadcast goes to the room's own
//!   channel, which an instance subscribes to while it has a member in the room, so adding
//!   instances does not add traffic to the others. [`RedisAdapterState::join`] returns once
//!   the subscription is confirmed by Redis: nothing sent after it is missed. The last member
//!   leaving lets the channel go after [`RedisAdapterConfig::unsubscribe_delay`], so churn
//!   costs nothing, and a periodic reconcile catches rooms joined any other way.
//! - **Pipelined publishes.** Every publish of the process goes through one bounded, ordered
//!   queue whose writer sends whatever is waiting as one pipeline: a burst of emits costs a
//!   few round trips. An emit returns once its message is queued; wrap it in [`confirmed`]
//!   to wait for Redis. A full queue refuses at once ([`Error::QueueFull`]): it holds at most
//!   [`RedisConfig::publish_queue_capacity`] messages and
//!   [`RedisConfig::publish_queue_max_bytes`], and one room's channel at most
//!   1 / [`RedisConfig::publish_channel_share`] of either, so a burst on one room (or a Redis
//!   that stopped taking publishes) keeps the other rooms' publishes out only for the 1 room
//!   in 1,024 whose channel is counted with it (channels are counted in 1,024 buckets by hash).
//! - **Redis Cluster** with sharded Pub/Sub (`SSUBSCRIBE`/`SPUBLISH`, Redis >= 7): connect
//!   with a `redis+cluster://host:port,host:port` URL and room channels spread over the
//!   shards. After a failover the subscriptions move to the new master by themselves.
//! - **Local delivery first.** A broadcast reaches this instance's sockets before anything
//!   is published, so local members are served even while Redis is down; the failed
//!   publish is logged and counted. [`remote_only`] publishes without serving them again.
//! - **No silent loss in a burst.** Redis delivers faster than a socket's connection writes,
//!   and socketioxide drops what does not fit a socket's buffer (`max_buffer_size`, 128
//!   packets by default). Here a delivery that finds the buffer full waits in the socket's
//!   backlog, in order, and a retry task hands it over as the buffer takes it again: a
//!   healthy socket that is behind for a moment receives everything. A socket that stays
//!   behind past [`LocalBacklog`]'s limits (bytes per socket, bytes per namespace, time
//!   without progress) is slow: its backlog is dropped and it is disconnected. Volatile
//!   emits never wait. Every drop is counted (`redis_adapter_local_drops_total{reason}`) and
//!   a slow socket logged once; the memory bound is [`LocalBacklog::max_total_bytes`] per
//!   namespace. Acknowledged broadcasts (`emit_with_ack`) are not queued: a full socket
//!   answers them with an error in the acknowledgement stream.
//! - **Catch-up joins** for applications that keep a history: [`RedisAdapterState::hold`]
//!   subscribes a room and holds its broadcasts back for one socket while the application
//!   replays what the socket missed, and [`Hold::join`] sends the held ones it did not
//!   replay, then makes the socket a member: no gap and no duplicate at the seam.
//! - **Membership by heartbeats**, not `PUBSUB NUMSUB`: an instance that dies stops being
//!   counted, and waited for, after [`RedisAdapterConfig::heartbeat_timeout`]; one that
//!   shuts down cleanly says so and is dropped at once. No request waits past its timeout.
//! - **A versioned binary envelope** carrying the origin instance: an instance ignores its
//!   own messages without decoding them, and a malformed message or one of an unknown
//!   version is dropped and counted ([`Stats`]), never a panic.
//! - **Connections that come back.** The subscriber reconnects with exponential backoff
//!   and jitter and restores exactly the subscriptions still needed; the publisher
//!   reconnects by itself; a probe through Redis catches a subscriber that went deaf.
//!   [`Redis::link`] says when messages may have been missed: [`Link::subscribed`] is false
//!   from the moment a subscription may be broken (a lost connection; on a Redis Cluster a
//!   node's dropped connection or a topology change) until every one holds again, in a new
//!   [`Link::generation`]. A cache kept valid by invalidation messages, or a feed that can
//!   re-read what it missed, watches it. Publishes go on while Redis takes them
//!   ([`Link::connected`]).
//! - **One Redis layer for the whole process** ([`Redis`]): the command connection, the
//!   subscriber and the publish pipeline the adapter uses are the application's too, for
//!   its own commands ([`Redis::query`]) and subscriptions ([`Redis::subscribe`]), with one
//!   reconnect loop, one probe and one timeout ([`within`]) for all of them.
//! - **A cluster bus independent of socketioxide** ([`NamespaceBus`]): channels, envelope,
//!   membership, room subscriptions and requests over any [`PubSub`]; [`RedisAdapter`] is
//!   its socketioxide front end, and another Socket.IO engine can plug in through
//!   [`Inbound`]. The socketioxide front end is the default Cargo feature `socketioxide`;
//!   without it (`default-features = false`) the crate is the bus and the Redis layer only,
//!   with no socketioxide crate in the build.
//! - **Metrics**: counters in [`Stats`] ([`RedisAdapterState::stats`]), and the latency of
//!   each pipeline as the histogram [`PUBLISH_DURATION`] through the [`metrics`] facade, for
//!   whichever recorder the application installs.
//! - **The official Socket.IO Redis emitter** (`@socket.io/redis-emitter`) works unchanged
//!   when [`RedisAdapterConfig::emitter`] is set ([`EmitterConfig`]): its emits to rooms or to
//!   the namespace, `socketsJoin`, `socketsLeave` and `disconnectSockets` reach the sockets on
//!   every instance, single-room emits through per-room channels as well. Each operation is
//!   decoded ([`EmitterRequest`]), bounded and checked by the application's
//!   [`EmitterConfig::accept`] rule first; anything else is dropped and counted. An
//!   application that keeps its own record of room membership hears of the emitter's joins
//!   and leaves through [`RedisAdapterState::on_emitter_membership`].
//! - **A channel prefix** ([`RedisAdapterConfig::prefix`]) so several deployments can
//!   share one Redis.
//!
//! [socketioxide]: https://docs.rs/socketioxide
#![cfg_attr(
    feature = "socketioxide",
    doc = r#"
# Example

```no_run
use redis_adapter::{RedisAdapter, RedisAdapterConfig, RedisAdapterState};
use socketioxide::{
    SocketIo,
    extract::{SocketRef, State},
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = RedisAdapterConfig::default().with_prefix("my-app");
    let state = RedisAdapterState::connect("redis://127.0.0.1:6379", config).await?;

    let (layer, io) = SocketIo::builder()
        .with_state(state.clone())
        .with_adapter::<RedisAdapter<_>>(state.clone())
        .build_layer();

    // With this adapter `ns` returns a future: it resolves once the namespace is
    // subscribed in Redis and announced to the other instances.
    io.ns(
        "/",
        async |socket: SocketRef<RedisAdapter<_>>, State(rooms): State<RedisAdapterState>| {
            // Not `socket.join`: this returns once "lobby" is subscribed in Redis.
            if let Err(err) = rooms.join(socket.ns(), socket.id, "lobby").await {
                socket.disconnect().ok();
                eprintln!("could not join: {err}");
            }
        },
    )
    .await?;

    // Reaches the members of "lobby" on every instance; returns once queued for Redis.
    io.to("lobby").emit("news", "hello").await?;
    // Returns once Redis took it.
    redis_adapter::confirmed(io.to("lobby").emit("news", "confirmed")).await?;
    println!("{} instances serve /", state.server_count("/").unwrap_or(1));

    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
```
"#
)]

mod cluster;
mod config;
mod connection;
mod error;
#[cfg(feature = "socketioxide")]
mod front;
#[cfg(feature = "socketioxide")]
mod scope;
mod stats;

pub use cluster::{
    ClusterSecret, EmitterError, EmitterRequest, EventArgs, Id, Inbound, NamespaceBus, Outgoing,
    PubSub, Room, Selection,
};
pub use config::{EmitterConfig, EmitterRule, LocalBacklog, RedisAdapterConfig};
pub use connection::{
    Commands, Credentials, Handler, Link, LinkRx, PUBLISH_DURATION, Redis, RedisConfig, Wait,
    cluster_nodes, within,
};
pub use error::Error;
#[cfg(feature = "socketioxide")]
pub use front::{
    Hold, InitRes, MAX_HELD, MembershipChange, RedisAckStream, RedisAdapter, RedisAdapterState,
};
#[cfg(feature = "socketioxide")]
pub use scope::{confirmed, remote_only};
pub use stats::{Counters, MetricKind, Reading, Stats};
