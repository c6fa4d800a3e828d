//! `loadtest`: runs one scenario, prints the summary, writes `--json`, and exits 0 when every
//! threshold held, 1 when one was missed, 2 when the run could not be set up.

use std::process::ExitCode;

use clap::Parser;
use loadtest::config::{Cli, Command, Output};
use loadtest::{Error, Report, scenarios};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loadtest: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadtest: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the scenario and reports; `Ok(false)` when a threshold was missed.
async fn run(command: Command) -> Result<bool, Error> {
    let (report, output) = match command {
        Command::Chat { config, output } => (scenarios::chat::run(&config).await?, output),
        Command::Broadcast { config, output } => {
            (scenarios::broadcast::run(&config).await?, output)
        }
        Command::Burst { config, output } => (scenarios::burst::run(&config).await?, output),
        Command::Publish { config, output } => (scenarios::publish::run(&config).await?, output),
        Command::Connect { config, output } => (scenarios::connect::run(&config).await?, output),
        Command::Idle { config, output } => (scenarios::idle::run(&config).await?, output),
    };
    finish(report, &output)
}

/// Judges, prints and writes the report.
fn finish(mut report: Report, output: &Output) -> Result<bool, Error> {
    let passed = report.judge(&output.thresholds()).passed;
    print!("{report}");
    if let Some(path) = &output.json {
        report.write_json(path)?;
    }
    for violation in &report.thresholds.violations {
        eprintln!("loadtest: threshold missed: {violation}");
    }
    Ok(passed)
}
