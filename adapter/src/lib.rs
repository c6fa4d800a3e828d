//! A [socketioxide] adapter that shares rooms and sockets across server instances through
//! Redis Pub/Sub.
//!
//! Every adapter operation works across instances: broadcasts to the namespace or to
//! rooms (with `except`, local and volatile flags), broadcasts with acknowledgements from
//! sockets on every instance, remote join and leave, remote disconnect, `rooms()`,
//! `fetch_sockets()` and the server count.
//!
//! What it does differently from the usual Redis adapters:
//! - **Local delivery first.** A broadcast reaches this instance's sockets before anything
//!   is published, so local members are served even while Redis is down; the failed
//!   publish is logged, counted and returned to the caller.
//! - **Membership by heartbeats**, not `PUBSUB NUMSUB`: an instance that dies stops being
//!   counted, and waited for, after [`RedisAdapterConfig::heartbeat_timeout`]; one that
//!   shuts down cleanly says so and is dropped at once. No request waits past its timeout.
//! - **A versioned binary envelope** carrying the origin instance: an instance ignores its
//!   own messages without decoding them, and a malformed message or one of an unknown
//!   version is dropped and counted ([`Stats`]), never a panic.
//! - **Connections that come back.** The subscriber reconnects with exponential backoff
//!   and jitter and restores every subscription; the publisher reconnects by itself.
//! - **Metrics**: counters in [`Stats`] ([`RedisAdapterState::stats`]), and the latency of
//!   each publish as the histogram [`PUBLISH_DURATION`] through the [`metrics`] facade, for
//!   whichever recorder the application installs.
//! - **A channel prefix** ([`RedisAdapterConfig::prefix`]) so several deployments can
//!   share one Redis.
//!
//! # Example
//!
//! ```no_run
//! use redis_adapter::{RedisAdapter, RedisAdapterConfig, RedisAdapterState};
//! use socketioxide::{SocketIo, extract::SocketRef};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = RedisAdapterConfig::default().with_prefix("my-app");
//!     let state = RedisAdapterState::connect("redis://127.0.0.1:6379", config).await?;
//!
//!     let (layer, io) = SocketIo::builder()
//!         .with_adapter::<RedisAdapter<_>>(state.clone())
//!         .build_layer();
//!
//!     // With this adapter `ns` returns a future: it resolves once the namespace is
//!     // subscribed in Redis and announced to the other instances.
//!     io.ns("/", async |socket: SocketRef<RedisAdapter<_>>| {
//!         socket.join("lobby");
//!     })
//!     .await?;
//!
//!     // Reaches the members of "lobby" on every instance.
//!     io.to("lobby").emit("news", "hello").await?;
//!     println!("{} instances serve /", state.server_count("/").unwrap_or(1));
//!
//!     let app = axum::Router::new().layer(layer);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! [socketioxide]: https://docs.rs/socketioxide

mod adapter;
mod bus;
mod channels;
mod config;
mod envelope;
mod error;
mod membership;
mod remote;
mod state;
mod stats;

pub use adapter::{InitRes, RedisAckStream, RedisAdapter};
pub use bus::PUBLISH_DURATION;
pub use config::RedisAdapterConfig;
pub use error::Error;
pub use state::RedisAdapterState;
pub use stats::Stats;
