//! `connect`: open `--connections` at `--connect-rate`, hold them for `--hold`, report the
//! connect-time distribution and the failures by reason.

use std::time::Duration;

use clap::Args;

use super::hold::{self, Plan};
use crate::Error;
use crate::config::Common;
use crate::report::Report;

/// The `connect` scenario's flags.
#[derive(Debug, Clone, Args)]
pub struct ConnectConfig {
    /// Targets, transports and measurements.
    #[command(flatten)]
    pub common: Common,

    /// Connections to open.
    #[arg(long)]
    pub connections: u32,

    /// How long to hold them once all are open (`10s`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub hold: Duration,
}

/// Runs the connect scenario to its end.
pub async fn run(config: &ConnectConfig) -> Result<Report, Error> {
    hold::run(Plan {
        scenario: "connect",
        common: config.common.clone(),
        connections: config.connections,
        hold: config.hold,
        measure_memory: false,
    })
    .await
}
