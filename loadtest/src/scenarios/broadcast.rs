//! `broadcast`: one room of every user; `--senders` of them send at `--rate` each and every
//! other member receives everything.

use std::time::Duration;

use clap::Args;

use super::fanout::{self, Layout, Plan};
use crate::Error;
use crate::config::{Common, parse_rate};
use crate::report::Report;

/// The `broadcast` scenario's flags.
#[derive(Debug, Clone, Args)]
pub struct BroadcastConfig {
    /// Targets, transports and measurements.
    #[command(flatten)]
    pub common: Common,

    /// Members of the room (one socket each), named `u<i>`.
    #[arg(long)]
    pub users: u32,

    /// How many members send (users `u0..u<senders>`, spread over the URLs).
    #[arg(long, default_value_t = 1)]
    pub senders: u32,

    /// Messages per second sent by each sender (`100` or `100/s`).
    #[arg(long, value_parser = parse_rate)]
    pub rate: f64,

    /// How long senders send (`20s`, `1m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Message text size in bytes (never less than the probe it carries).
    #[arg(long, default_value_t = 64)]
    pub body_bytes: usize,

    /// How long to wait for late deliveries and acks after sending stops.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub settle: Duration,
}

impl BroadcastConfig {
    /// A broadcast run with the default body size and settle time.
    pub fn new(common: Common, users: u32, senders: u32, rate: f64, duration: Duration) -> Self {
        Self {
            common,
            users,
            senders,
            rate,
            duration,
            body_bytes: 64,
            settle: Duration::from_secs(2),
        }
    }
}

/// Runs the broadcast scenario to its end; see [`chat::run`](super::chat::run) for errors.
pub async fn run(config: &BroadcastConfig) -> Result<Report, Error> {
    fanout::run(Plan {
        scenario: "broadcast",
        common: config.common.clone(),
        users: config.users,
        layout: Layout::OneRoom {
            senders: config.senders,
        },
        rate: config.rate,
        duration: config.duration,
        body_bytes: config.body_bytes,
        settle: config.settle,
    })
    .await
}
