//! The gateway binary: parse the configuration, start logging, serve until SIGTERM or Ctrl-C.
//! `gateway add-user ...` adds a user to a users file instead; `gateway worker ...` runs
//! background jobs; `gateway jobs dead ...` lists and requeues dead letters; `gateway api-key
//! ...` creates, lists and revokes the publish API's keys.

use std::{io::BufRead, process::ExitCode, time::Duration};

use clap::Parser;
use gateway::{
    Cli, Command,
    config::{AddUser, ApiKeyCommand, JobsCommand, WorkerArgs},
    shutdown, telemetry,
};

/// mimalloc instead of glibc's malloc: per-thread free lists and no `malloc_consolidate`
/// pauses on the delivery path (see the README's Benchmark section for the measured
/// difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::AddUser(add)) => add_user(&add),
        Some(Command::Worker(args)) => worker(&args),
        Some(Command::Jobs { command }) => jobs(&command),
        Some(Command::ApiKey { command }) => api_key(&command),
        None => serve(cli.serve),
    }
}

/// `gateway [flags]`: the server.
fn serve(mut config: gateway::Config) -> ExitCode {
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
    let result = runtime.block_on(async {
        let gateway = gateway::bind(config).await?;
        // The one line on stdout: the addresses actually bound, so `--listen 127.0.0.1:0`
        // works for scripts and tests (no port picked in advance that another may take).
        println!(
            "listening on {} admin {}",
            gateway.local_addr(),
            gateway.admin_addr()
        );
        gateway.serve(shutdown::signal()).await
    });
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

/// `gateway worker ...`: runs jobs until SIGTERM or Ctrl-C, then lets the running ones finish.
fn worker(args: &WorkerArgs) -> ExitCode {
    telemetry::init(args.log_format, "worker");
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let announce = |admin: std::net::SocketAddr| println!("admin listening on {admin}");
    match runtime.block_on(gateway::run_worker(args, announce, shutdown::signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "worker stopped");
            ExitCode::FAILURE
        }
    }
}

/// `gateway jobs ...`: prints the answer on stdout, a failure on stderr.
fn jobs(command: &JobsCommand) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(gateway::run_jobs_command(command)) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// `gateway api-key ...`: the answer on stdout (a new key alone on the first line), details
/// and failures on stderr.
fn api_key(command: &ApiKeyCommand) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(gateway::run_api_key_command(command)) {
        Ok(output) => {
            for line in output.stdout {
                println!("{line}");
            }
            for line in output.stderr {
                eprintln!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// A multi-threaded runtime, or `None` (logged) if it cannot be built.
fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .inspect_err(|err| tracing::error!(%err, "cannot start the async runtime"))
        .ok()
}

/// `gateway add-user ...`: the password is the first line of stdin.
fn add_user(add: &AddUser) -> ExitCode {
    let mut password = String::new();
    if let Err(err) = std::io::stdin().lock().read_line(&mut password) {
        eprintln!("cannot read the password from stdin: {err}");
        return ExitCode::FAILURE;
    }
    let password = password.trim_end_matches(['\r', '\n']);
    let added = gateway::users::add_user(
        &add.users_file,
        &add.username,
        &add.tenant,
        &add.name,
        add.admin,
        password,
    );
    match added {
        Ok(()) => {
            println!(
                "added {} (tenant {}{}) to {}",
                add.username,
                add.tenant,
                if add.admin { ", admin" } else { "" },
                add.users_file.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
