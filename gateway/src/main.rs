//! The gateway binary: parse the configuration, start logging, serve until SIGTERM or Ctrl-C.

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use gateway::{Config, shutdown, telemetry};

fn main() -> ExitCode {
    let mut config = Config::parse();
    let instance = config.instance_id();
    telemetry::init(config.log_format, &instance);

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(workers) = config.worker_threads {
        runtime.worker_threads(workers.max(1));
    }
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(%err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(gateway::run(config, shutdown::signal()));
    // `run` already honoured the shutdown deadline; don't let a stuck task hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "gateway stopped");
            ExitCode::FAILURE
        }
    }
}
