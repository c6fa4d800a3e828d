//! `chat`: rooms of `--room-size` members spread over the instances; every member sends at
//! `--rate` and receives the other members' messages. With `--instances-per-room N` each
//! room's members sit on N consecutive instances only (sparse rooms), see
//! [`Placement::Rooms`](crate::placement::Placement::Rooms).

use std::time::Duration;

use clap::Args;

use super::fanout::{self, Layout, Plan};
use crate::Error;
use crate::config::{Common, parse_rate};
use crate::report::Report;

/// The `chat` scenario's flags.
#[derive(Debug, Clone, Args)]
pub struct ChatConfig {
    /// Targets, transports and measurements.
    #[command(flatten)]
    pub common: Common,

    /// Users (one socket each), named `u<i>`.
    #[arg(long)]
    pub users: u32,

    /// Members per room; rooms are `lt-<run id>-<n>`, the last one takes the remainder.
    #[arg(long)]
    pub room_size: u32,

    /// Messages per second sent by each user (`2` or `2/s`).
    #[arg(long, value_parser = parse_rate)]
    pub rate: f64,

    /// How long users send (`20s`, `1m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Message text size in bytes (never less than the probe it carries).
    #[arg(long, default_value_t = 64)]
    pub body_bytes: usize,

    /// How long to wait for late deliveries and acks after sending stops.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub settle: Duration,

    /// Put each room's members on this many consecutive instances of the --url list instead
    /// of round-robin over all of them: room r's members go to the URLs r mod n, r+1 mod n,
    /// ... (n URLs, wrapping), member j of the room on the (j mod N)-th, so rooms of 10 with
    /// N = 2 sit 5 and 5 on a pair of instances and the rooms cycle over every pair. Between 1
    /// and the number of URLs. Default: round-robin over all URLs.
    #[arg(long)]
    pub instances_per_room: Option<u32>,
}

impl ChatConfig {
    /// A chat run with the default body size and settle time.
    pub fn new(common: Common, users: u32, room_size: u32, rate: f64, duration: Duration) -> Self {
        Self {
            common,
            users,
            room_size,
            rate,
            duration,
            body_bytes: 64,
            settle: Duration::from_secs(2),
            instances_per_room: None,
        }
    }
}

/// Runs the chat scenario to its end. Fails only when it cannot be set up (invalid flags,
/// unreadable server pid, nobody connected); losses and errors are in the report.
pub async fn run(config: &ChatConfig) -> Result<Report, Error> {
    fanout::run(Plan {
        scenario: "chat",
        common: config.common.clone(),
        users: config.users,
        layout: Layout::Rooms {
            size: config.room_size,
            span: config.instances_per_room,
        },
        rate: config.rate,
        duration: config.duration,
        body_bytes: config.body_bytes,
        settle: config.settle,
    })
    .await
}
