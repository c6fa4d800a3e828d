//! Our Socket.IO engine, from the protocol specifications (issue 14; the plan and its status
//! are `docs/engine-plan.md`):
//! - [`eio`] and [`sio`]: the packet codecs both sides of a connection share (engine.io v4
//!   packets and long-polling payloads; the Socket.IO v5 packets they carry, binary messages
//!   and attachments included). The test client (`socketio-client`) decodes with them.
//! - [`server`]: the engine.io server (long-polling, websocket, the upgrade, heartbeats,
//!   limits), a [`server::Handler`] above it.
//! - [`sockets`]: the Socket.IO server as that handler (namespaces, acks, rooms, broadcasts).
//! - [`cluster`]: the namespaces' front end of the adapter's cluster bus.
//!
//! A chat on one namespace, shared across instances through Redis:
//!
//! ```no_run
//! use std::sync::Arc;
//! use engine::{cluster::ClusterFront, server::{Config, Engine, NotFound}, sockets::*};
//! use redis_adapter::{Counters, Id, NamespaceBus, Redis, RedisAdapterConfig, RedisConfig};
//!
//! struct Chat;
//!
//! impl Namespace for Chat {
//!     fn connected(&self, _socket: &Arc<Socket>) {}
//!     fn event(&self, socket: &Arc<Socket>, event: Event) {
//!         if event.name == "say" {
//!             // Encoded once, written to each local member, published once for the others.
//!             let _ = socket.nsp().to(["lobby"]).emit_now("said", &event.args);
//!         }
//!     }
//!     fn disconnected(&self, _socket: &Arc<Socket>, _reason: DisconnectReason) {}
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let io = Arc::new(SocketIo::new().namespace("/", Chat));
//! let redis = Arc::new(Redis::connect("redis://127.0.0.1:6379", RedisConfig::default()).await?);
//! let bus = NamespaceBus::new(redis, &RedisAdapterConfig::default(), Arc::new(Counters::default()), "/", Id::random());
//! ClusterFront::attach(io.of("/").ok_or("no namespace")?, bus).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! Engine::new(Config::default(), io).serve(listener, NotFound).await;
//! # Ok(())
//! # }
//! ```
//!
//! Decoders never panic: anything that is not a packet is an [`Error`]. Text packets borrow
//! from their input and allocate nothing; the bytes of a binary message and the parsed JSON
//! of a binary packet ([`sio::Assembler`]) are the allocations.
//!
//! ```
//! use engine::{eio, sio};
//!
//! let frame = eio::decode(r#"42/chat,7["hello",1]"#)?;
//! assert_eq!(frame.kind, eio::Kind::Message);
//! let packet = sio::decode(frame.data)?;
//! assert_eq!((packet.kind, packet.ns, packet.ack), (sio::Kind::Event, "/chat", Some(7)));
//! assert_eq!(packet.data, r#"["hello",1]"#);
//! let ack = sio::encode_message(sio::Kind::Ack, "/chat", Some(7), Some(&["ok"]))?;
//! assert_eq!(ack, r#"43/chat,7["ok"]"#);
//! # Ok::<(), engine::Error>(())
//! ```
//!
//! A binary event over long-polling: its text packet, then its attachment in base64.
//!
//! ```
//! use engine::{eio, sio};
//!
//! let header = r#"451-["file",{"_placeholder":true,"num":0}]"#;
//! let payload = format!("{header}\u{1e}bAQID");
//! let mut assembler = sio::Assembler::default();
//! let mut done = None;
//! for packet in eio::split_payload(&payload) {
//!     match eio::decode_payload_packet(packet)? {
//!         eio::PayloadPacket::Text(frame) => {
//!             let step = assembler.text(sio::decode(frame.data)?)?;
//!             assert_eq!(step, sio::Assembled::Waiting);
//!         }
//!         eio::PayloadPacket::Binary(bytes) => done = assembler.binary(bytes)?,
//!     }
//! }
//! let packet = done.ok_or(engine::Error::Empty)?;
//! assert_eq!(packet.attachment(&packet.data[1]).map(|b| b.as_ref()), Some(&[1, 2, 3][..]));
//! assert_eq!(packet.encode_message()?, header);
//! # Ok::<(), engine::Error>(())
//! ```

pub mod cluster;
pub mod eio;
mod locks;
pub mod server;
pub mod sio;
mod slot;
pub mod sockets;

/// Why some text is not a packet, or a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An empty packet.
    #[error("empty packet")]
    Empty,
    /// The first character is no packet type of the protocol.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A binary packet's attachment count is missing, not a number, or not ended by `-`.
    #[error("invalid attachment count")]
    Attachments,
    /// The ack id does not fit in 64 bits.
    #[error("invalid ack id")]
    AckId,
    /// A namespace that does not start with `/` or holds a `,`, on encoding.
    #[error("invalid namespace {0:?}")]
    Namespace(String),
    /// The data could not be written as JSON.
    #[error("cannot encode the data: {0}")]
    Json(String),
    /// A binary message of a long-polling payload (`b...`) whose data is not base64.
    #[error("invalid base64 in a binary message")]
    Base64,
    /// The data of a binary packet is not JSON.
    #[error("invalid JSON data: {0}")]
    InvalidJson(String),
    /// A binary packet announces more attachments than the limit.
    #[error("{announced} attachments announced, above the limit of {max}")]
    TooManyAttachments {
        /// The count the packet announces.
        announced: usize,
        /// The limit.
        max: usize,
    },
    /// The attachments of a binary packet hold more bytes than the limit (given).
    #[error("attachments above the limit of {0} bytes")]
    AttachmentsTooLarge(usize),
    /// An object with `"_placeholder": true` whose `num` names no attachment of its packet.
    #[error("a placeholder names no attachment")]
    Placeholder,
    /// A binary message while no binary packet waits for attachments.
    #[error("binary message while no packet waits for attachments")]
    UnexpectedBinary,
    /// A text packet while a binary packet still waits for attachments.
    #[error("text packet while attachments are still expected")]
    AttachmentsPending,
    /// Attachments for a packet type that has none, on encoding.
    #[error("packet type {0:?} has no attachments")]
    NotBinary(char),
    /// A packet the client may not send now: an event for a namespace it did not join, a
    /// second CONNECT, CONNECT_ERROR.
    #[error("a packet the connection's state does not allow")]
    State,
    /// The cluster did not take a broadcast.
    #[error("the cluster did not take the broadcast: {0}")]
    Remote(String),
}
