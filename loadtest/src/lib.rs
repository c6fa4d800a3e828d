//! A Socket.IO fan-out load tester.
//!
//! The scenarios ([`scenarios`]) measure the time from one user's send to every other
//! member's receipt, across instances, and prove that nothing was lost: every message carries
//! its sender, a per-sender sequence number and its send time, and receivers count distinct
//! deliveries, duplicates and out-of-order ones. Each returns a [`Report`]; the `loadtest`
//! binary is a thin command line over them ([`config::Cli`]).
//!
//! The clients are those of [`socketio_client`] (websocket or HTTP long-polling), held by the
//! tens of thousands in one process.

pub mod config;
mod error;
pub mod fleet;
pub mod pacing;
pub mod placement;
pub mod probe;
pub mod progress;
pub mod report;
pub mod scenarios;
pub mod sequence;
pub mod stats;
pub mod sysinfo;
pub mod tick;
pub mod window;

pub use error::Error;
pub use report::{Report, Thresholds};
