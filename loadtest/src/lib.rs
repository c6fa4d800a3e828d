//! A Socket.IO fan-out load tester, and the lean engine.io v4 / Socket.IO v5 client it is
//! built on.
//!
//! The scenarios ([`scenarios`]) measure the time from one user's send to every other
//! member's receipt, across instances, and prove that nothing was lost: every message carries
//! its sender, a per-sender sequence number and its send time, and receivers count distinct
//! deliveries, duplicates and out-of-order ones. Each returns a [`Report`]; the `loadtest`
//! binary is a thin command line over them ([`config::Cli`]).
//!
//! The [`client`] module plays real clients (websocket or HTTP long-polling) in the
//! integration tests of the gateway and of the Redis adapter, and drives tens of thousands of
//! sockets from one process in load tests.
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
pub mod config;
mod error;
pub mod fleet;
pub mod placement;
pub mod probe;
pub mod progress;
pub mod report;
pub mod scenarios;
pub mod sequence;
pub mod stats;
pub mod sysinfo;
pub mod window;

pub use client::{ClientError, ConnectOptions, Event, SocketClient};
pub use error::Error;
pub use report::{Report, Thresholds};
