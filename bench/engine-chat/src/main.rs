//! The benchmark peers' chat protocol (`loadtest chat`: `join`, `leave`, `message`,
//! `typing`) on our engine (`engine/`), its rooms shared across instances by the engine's
//! front end of the adapter's cluster bus. What `bench/compare.sh` runs as `engine`: the
//! engine's delivery cost with the same handlers as the Node, socketioxide and stock peers,
//! not a product (no accounts, no history).

mod chat;
mod health;

use std::{net::SocketAddr, process::ExitCode, sync::Arc};

use clap::Parser;
use engine::{
    cluster::ClusterFront,
    server::{Config, Engine},
    sockets::SocketIo,
};
use redis_adapter::{Counters, Id, NamespaceBus, Redis, RedisAdapterConfig, RedisConfig};

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "The benchmark peers' chat on our engine (issue 14)")]
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
            eprintln!("engine-chat stopped: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let redis = Arc::new(Redis::connect(&args.redis_url, RedisConfig::default()).await?);
    let instance: Arc<str> = format!("{:08x}", rand::random::<u32>()).into();
    let io = Arc::new(SocketIo::new().namespace("/", chat::Chat::new(instance)));
    let bus = NamespaceBus::new(
        redis,
        &RedisAdapterConfig::default().with_prefix("engine-chat"),
        Arc::new(Counters::default()),
        "/",
        Id::random(),
    );
    let nsp = io.of("/").ok_or("no namespace /")?;
    ClusterFront::attach(nsp, bus).await?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "engine-chat listening");
    Engine::new(Config::default(), io)
        .serve(listener, health::Health)
        .await;
    Ok(())
}
