//! Issue 14, phase 1: the delivery hot path without socketioxide, to measure its floor.
//!
//! engine.io v4 over websocket only and enough Socket.IO v5 for `loadtest chat` (the
//! benchmark peers' chat protocol), shared across instances by the adapter's cluster bus
//! (`redis_adapter::NamespaceBus`). A broadcast's websocket frame is encoded once and written
//! to each local member straight from the task that has it (the Redis subscriber for remote
//! broadcasts) while the kernel takes it; a per-socket queue and a task exist only for a
//! socket that is behind. An idle connection is one task with no read buffer, and one ping
//! task serves them all. Not a product: no long-polling, no binary, no ack timeouts, no
//! accounts.

mod conn;
mod rooms;
mod server;
mod session;
mod ws;

use std::{net::SocketAddr, process::ExitCode, sync::Arc};

use clap::Parser;
use redis_adapter::{Counters, Id, NamespaceBus, Redis, RedisAdapterConfig, RedisConfig};

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Delivery-engine prototype (issue 14, phase 1)")]
struct Args {
    /// Address to listen on, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Redis URL.
    #[arg(long)]
    redis_url: String,
    /// Tokio worker threads (default: one per CPU).
    #[arg(long)]
    worker_threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.worker_threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("engine-proto stopped: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let redis = Arc::new(Redis::connect(&args.redis_url, RedisConfig::default()).await?);
    let rooms = Arc::new(rooms::Rooms::default());
    let bus = NamespaceBus::new(
        redis,
        &RedisAdapterConfig::default().with_prefix("engine-proto"),
        Arc::new(Counters::default()),
        "/",
        Id::random(),
    );
    rooms.set_bus(bus.clone());
    bus.start(Arc::downgrade(&rooms) as std::sync::Weak<dyn redis_adapter::Inbound>)
        .await?;
    let server = server::Server::new(rooms);
    tokio::spawn(server.clone().ping_all());
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "engine-proto listening");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(session::serve(stream, server.clone()));
    }
}
