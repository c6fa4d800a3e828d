//! `idle`: hold `--connections` idle sockets for `--hold`; with `--server-pid`, the servers'
//! RSS is sampled before connecting and 2 s after all connected, and the growth per
//! connection is reported as `rss_per_connection_bytes`.

use std::time::Duration;

use clap::Args;

use super::hold::{self, Plan};
use crate::Error;
use crate::config::Common;
use crate::report::Report;

/// The `idle` scenario's flags.
#[derive(Debug, Clone, Args)]
pub struct IdleConfig {
    /// Targets, transports and measurements.
    #[command(flatten)]
    pub common: Common,

    /// Idle connections to hold.
    #[arg(long)]
    pub connections: u32,

    /// How long to hold them once all are open (at least the 2 s memory settle).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub hold: Duration,
}

/// Runs the idle scenario to its end.
pub async fn run(config: &IdleConfig) -> Result<Report, Error> {
    hold::run(Plan {
        scenario: "idle",
        common: config.common.clone(),
        connections: config.connections,
        hold: config.hold,
        measure_memory: true,
    })
    .await
}
