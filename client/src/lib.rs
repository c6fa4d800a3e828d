//! A lean engine.io v4 / Socket.IO v5 client, over websocket or HTTP long-polling: real
//! clients in the integration tests of the gateway and the Redis adapter, and tens of thousands
//! of sockets from one process in the load tester.
//!
//! ```no_run
//! # async fn demo() -> Result<(), socketio_client::ClientError> {
//! use std::time::Duration;
//! use socketio_client::SocketClient;
//!
//! let mut client = SocketClient::connect("http://127.0.0.1:3000").await?;
//! let echoed = client
//!     .emit_with_ack("echo", serde_json::json!({"hello": "world"}), Duration::from_secs(1))
//!     .await?;
//! println!("{} got {echoed}", client.sid());
//! let event = client.next_event(Duration::from_secs(1)).await?;
//! println!("server sent {} {}", event.name, event.data);
//! client.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! Scope: the main namespace `/` only, text packets only (binary packets end the connection
//! with [`ClientError::Protocol`]), no transport upgrade (a connection keeps the transport it
//! started with).
//!
//! Two ways to receive server events:
//! - [`SocketClient`] decodes every event and queues it for [`SocketClient::next_event`]:
//!   the convenient client for tests.
//! - [`Connection`] hands each event, undecoded, to an [`EventHandler`] on the reader task:
//!   no queue and no per-event allocation, for load tests holding tens of thousands of sockets.
//!
//! Each connection runs one reader task that answers engine.io pings, routes acks to pending
//! emits and delivers events. A websocket connection costs that task, a 4 KiB read buffer and
//! a few small allocations. Dropping a client aborts its reader task and closes the transport.

mod connection;
mod error;
mod event;
mod http;
mod login;
mod options;
mod packet;
mod polling;
mod shared;
mod socket;
mod tcp;
mod transport;
mod websocket;

pub use connection::Connection;
pub use error::ClientError;
pub use event::{Event, EventHandler, RawEvent};
pub use http::post_json;
pub use login::{Credentials, login};
pub use options::{ConnectOptions, Transport};
pub use shared::PendingAck;
pub use socket::SocketClient;
pub use tcp::host_port;
