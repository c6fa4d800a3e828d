//! Benchmark peer: the gateway's chat protocol (namespace `/`) on the stock Rust stack,
//! socketioxide 0.18 + the `socketioxide-redis` 0.4 adapter with its redis-rs driver and its
//! default configuration.
//!
//! Written the way a typical socketioxide application is: the event handlers are registered in
//! the (async) connect handler, which socketioxide spawns only after it has sent CONNECT. An
//! event a client emits right after CONNECT may therefore arrive before its handler exists and
//! be dropped; that is deliberately left as is (the load tester retries an unanswered `join`).

mod bench;
mod chat;

use std::{net::SocketAddr, process::ExitCode};

use clap::Parser;
use socketioxide::{SocketIo, adapter::Adapter};
use socketioxide_redis::{
    RedisAdapter, RedisAdapterCtr,
    drivers::redis::redis_client::{self as redis, IntoConnectionInfo, ProtocolVersion},
};
use tracing_subscriber::EnvFilter;

/// Command line; every flag also reads an environment variable (flags win).
#[derive(Debug, Parser)]
#[command(about = "Chat peer on socketioxide + socketioxide-redis")]
struct Args {
    /// Address to listen on, HOST:PORT.
    #[arg(long, env = "PEER_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Redis URL, e.g. redis://127.0.0.1:6379 (RESP3 is forced: the adapter's driver needs it).
    #[arg(long, env = "REDIS_URL")]
    redis_url: String,
    /// Tokio worker threads (default: tokio's default, one per CPU).
    #[arg(long, env = "PEER_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// For benchmarks only: serve `POST /bench/burst` (see `bench.rs`).
    #[arg(long, env = "PEER_BENCH_ENDPOINTS")]
    bench_endpoints: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.worker_threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(err) => {
            tracing::error!(%err, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    // Sockets are closed by now; don't let a lingering task hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "peer stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // The stock redis driver receives Pub/Sub messages as RESP3 pushes; without RESP3 it would
    // subscribe and never see a message. Force it whatever the URL says.
    let info = args.redis_url.as_str().into_connection_info()?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let adapter = RedisAdapterCtr::new_with_redis(&client).await?;

    let state = chat::ChatState::new();
    let instance = state.instance.clone();
    let (layer, io) = SocketIo::builder()
        .with_state(state)
        .with_adapter::<RedisAdapter<_>>(adapter)
        .build_layer();
    io.ns("/", chat::on_connect).await?;

    let mut app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    if args.bench_endpoints {
        tracing::warn!("benchmark endpoints enabled (POST /bench/burst)");
        app = app.route(
            "/bench/burst",
            axum::routing::post(bench::burst::<RedisAdapter<_>>).with_state(io.clone()),
        );
    }
    let app = app.layer(layer);

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, %instance, "peer listening");

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown(io))
        .await?;
    tracing::info!("peer stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT, once every socket has been closed.
async fn shutdown<A: Adapter>(io: SocketIo<A>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
    io.close().await;
}
