//! `write-floor`: what one loopback TCP write costs the writer on this host, at the rate and
//! spread of `bench/compare.sh`'s fixed step, with nothing else in the process.
//!
//! A Socket.IO server that writes each delivery to its member's connection cannot cost less
//! CPU per delivery than this: the write's system call, the sender's TCP path, and (on
//! loopback, charged to the writer) the receiver's TCP path and the wake-up of the reader.
//! `serve` (pinned where the servers run) accepts `--connections` sockets and writes one
//! `--frame-bytes` frame at a time to them in turn, `--rate` writes per second for
//! `--duration`, and reports its own CPU time per write; `read` (pinned where the load tester
//! runs) holds the other ends and reads until the writer closes them.

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// The command line.
#[derive(Debug, Parser)]
#[command(about = "The CPU cost of one loopback TCP write per delivery")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The two ends of the measurement.
#[derive(Debug, Subcommand)]
enum Command {
    /// Accept the connections, write to them at the rate, report CPU per write.
    Serve {
        /// Where the readers connect (a loopback address).
        #[arg(long)]
        listen: String,
        /// Connections to write to, in turn.
        #[arg(long, default_value_t = 1500)]
        connections: usize,
        /// Writes per second, over every connection.
        #[arg(long, default_value_t = 27_000)]
        rate: u32,
        /// How long to write.
        #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Bytes per write (a delivery's websocket frame).
        #[arg(long, default_value_t = 200)]
        frame_bytes: usize,
        /// Where to write the result as JSON.
        #[arg(long)]
        json: Option<String>,
    },
    /// Open the connections and read until the writer closes them.
    Read {
        /// The writer's address.
        #[arg(long)]
        connect: String,
        /// Connections to open.
        #[arg(long, default_value_t = 1500)]
        connections: usize,
    },
}

/// What `serve` measured.
#[derive(Debug, Serialize)]
struct Floor {
    /// Writes that the socket took whole.
    writes: u64,
    /// Writes refused because the socket's send buffer was full (none on a healthy run).
    would_block: u64,
    /// The writer's CPU time (user + system) while writing, seconds.
    cpu_s: f64,
    /// The writer's CPU time per write, microseconds.
    cpu_us_per_write: f64,
}

/// How often the writer wakes to write what the rate owes.
const TICK: Duration = Duration::from_millis(1);

/// How long the reader waits for the writer to listen (they are started together).
const CONNECT_WAIT: Duration = Duration::from_secs(10);

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("write-floor: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("write-floor: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    // One descriptor per connection, plus a few: the soft limit is often 1024.
    rlimit::increase_nofile_limit(u64::MAX)
        .map_err(|e| format!("raising the open-files limit: {e}"))?;
    match command {
        Command::Serve {
            listen,
            connections,
            rate,
            duration,
            frame_bytes,
            json,
        } => {
            let sockets = accept(&listen, connections).await?;
            let floor = write(&sockets, rate, duration, frame_bytes).await?;
            println!(
                "write floor: {} writes of {frame_bytes} bytes over {connections} connections at {rate}/s, {} would block, {:.2} µs of CPU per write",
                floor.writes, floor.would_block, floor.cpu_us_per_write
            );
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&floor).map_err(|e| e.to_string())?;
                std::fs::write(&path, text).map_err(|e| format!("writing {path}: {e}"))?;
            }
            Ok(())
        }
        Command::Read {
            connect,
            connections,
        } => read(&connect, connections).await,
    }
}

/// Accepts `connections` sockets on `listen`, with Nagle off as every server here sets it.
async fn accept(listen: &str, connections: usize) -> Result<Vec<TcpStream>, String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("listening on {listen}: {e}"))?;
    let mut sockets = Vec::with_capacity(connections);
    while sockets.len() < connections {
        let (socket, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accepting: {e}"))?;
        socket.set_nodelay(true).map_err(|e| e.to_string())?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Writes `rate` frames per second to `sockets` in turn for `duration`, one write each, from
/// a timer tick as a fan-out task would; the CPU this process spent doing it.
async fn write(
    sockets: &[TcpStream],
    rate: u32,
    duration: Duration,
    frame_bytes: usize,
) -> Result<Floor, String> {
    if sockets.is_empty() || rate == 0 {
        return Err("nothing to write to: --connections and --rate must be positive".into());
    }
    let frame = vec![b'x'; frame_bytes];
    let per_tick = f64::from(rate) * TICK.as_secs_f64();
    let mut ticks = tokio::time::interval(TICK);
    let (mut owed, mut next, mut writes, mut would_block) = (0.0, 0, 0u64, 0u64);
    let before = loadtest::sysinfo::own_usage().map_err(|e| e.to_string())?;
    let start = Instant::now();
    while start.elapsed() < duration {
        ticks.tick().await;
        owed += per_tick;
        while owed >= 1.0 {
            owed -= 1.0;
            match sockets[next].try_write(&frame) {
                Ok(_) => writes += 1,
                Err(_) => would_block += 1,
            }
            next = (next + 1) % sockets.len();
        }
    }
    let after = loadtest::sysinfo::own_usage().map_err(|e| e.to_string())?;
    let cpu_s = (after.cpu - before.cpu).as_secs_f64();
    Ok(Floor {
        writes,
        would_block,
        cpu_s,
        cpu_us_per_write: cpu_s * 1e6 / writes.max(1) as f64,
    })
}

/// Opens `connections` sockets to `connect` and reads each until the writer closes it.
async fn read(connect: &str, connections: usize) -> Result<(), String> {
    let mut readers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut socket = connect_within(connect, CONNECT_WAIT).await?;
        readers.push(tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            let mut total = 0u64;
            while let Ok(n @ 1..) = socket.read(&mut buffer).await {
                total += n as u64;
            }
            total
        }));
    }
    let mut total = 0u64;
    for reader in readers {
        total += reader.await.unwrap_or(0);
    }
    println!("write floor reader: {total} bytes read");
    Ok(())
}

/// Connects to `address`, retrying while nothing listens there yet, for at most `wait`.
async fn connect_within(address: &str, wait: Duration) -> Result<TcpStream, String> {
    let deadline = Instant::now() + wait;
    loop {
        match TcpStream::connect(address).await {
            Ok(socket) => return Ok(socket),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("connecting to {address}: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
