//! Socket.IO load tester and a lean engine.io v4 / Socket.IO v5 client.
//!
//! The [`client`] module holds a small websocket-only Socket.IO client built for
//! two jobs: playing real clients in the integration tests of the gateway and of
//! the Redis adapter, and driving tens of thousands of sockets from one process
//! in load tests. Each connection costs one reader task, a 4 KiB websocket read
//! buffer and a few small allocations.
//!
//! ```no_run
//! # async fn demo() -> Result<(), loadtest::ClientError> {
//! use std::time::Duration;
//! use loadtest::SocketClient;
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

pub mod client;

pub use client::{ClientError, ConnectOptions, Event, SocketClient};
