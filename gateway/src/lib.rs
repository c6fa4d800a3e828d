//! A horizontally scaled Socket.IO chat gateway.
//!
//! Clients connect with Socket.IO to namespace `/`, join rooms and chat (see the `chat` module
//! for the protocol). Instances started with the same Redis URL and key prefix share their
//! rooms through the Redis adapter, and every socket needs a session (`POST /api/login`): users
//! belong to tenants, and rooms to tenants. Without a Redis URL an instance runs standalone, a
//! development mode without accounts where every socket is an anonymous user of tenant `dev`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gateway::Error> {
//! let config = gateway::Config { listen: "127.0.0.1:0".into(), ..Default::default() };
//! let gateway = gateway::bind(config).await?;
//! println!("listening on {}", gateway.local_addr());
//! gateway.serve(gateway::shutdown::signal()).await
//! # }
//! ```

mod accounts;
mod api;
mod background;
mod cache;
mod chat;
pub mod config;
mod counters;
mod emitter;
mod error;
mod history;
mod http;
mod ids;
mod jobs;
mod keys;
mod local_limit;
mod login_throttle;
mod metrics;
mod mode;
mod origin;
mod presence;
mod ratelimit;
mod refusal;
mod request;
mod secrets;
mod sessions;
pub mod shutdown;
mod spool;
mod store;
pub mod telemetry;
mod tenancy;
pub mod testing;
pub mod users;
mod validate;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, serve::ListenerExt};
use redis_adapter::{
    ClusterSecret, Credentials, Redis, RedisAdapter, RedisAdapterConfig, RedisAdapterState,
    RedisConfig,
};
use socketioxide::{SocketIo, adapter::Adapter, layer::SocketIoLayer};
use tokio::{net::TcpListener, sync::oneshot};

pub use api::{CommandOutput, run_api_key_command};
pub use config::{Cli, Command, Config, LogFormat, RedisArgs};
pub use error::Error;
pub use jobs::{run_jobs_command, run_worker};
pub use ratelimit::Rate;

use accounts::Accounts;
use background::Background;
use counters::Counters;
use http::HttpState;
use mode::Mode;
use shutdown::Shutdown;

/// Initial websocket read buffer per socket, allocated for each connection's whole life.
const WS_READ_BUFFER_SIZE: usize = 256;

/// A gateway bound to its address and ready to serve.
pub struct Gateway {
    listener: TcpListener,
    local_addr: SocketAddr,
    instance: String,
    /// HTTP routes wrapped in the Socket.IO layer and the CORS policy.
    app: Router,
    /// The operational listener (`--admin-listen`) and its routes (metrics, stats, cluster).
    admin_listener: TcpListener,
    admin_addr: SocketAddr,
    admin_app: Router,
    shutdown: Shutdown,
    /// Session checks and the settings subscription, stopped when the gateway stops.
    background: Background,
}

/// Binds the listen address, connects the adapter (Redis, or the in-memory one without a Redis
/// URL) and registers the chat. Nothing is served until [`Gateway::serve`].
pub async fn bind(mut config: Config) -> Result<Gateway, Error> {
    let instance = config.instance_id();
    let bind_error = |source| Error::Bind {
        addr: config.listen.clone(),
        source,
    };
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let admin_bind_error = |source| Error::Bind {
        addr: config.admin_listen.clone(),
        source,
    };
    let admin_listener = TcpListener::bind(&config.admin_listen)
        .await
        .map_err(admin_bind_error)?;
    let admin_addr = admin_listener.local_addr().map_err(admin_bind_error)?;
    let cors = http::cors_layer(&config.cors_origins)?;
    // Before anything records: the adapter's publish latencies go to this recorder too.
    if metrics::handle().is_none() {
        tracing::warn!("metrics are not recorded: another recorder is installed");
    }

    let counters = Arc::new(Counters::default());
    let mut background = Background::default();
    // One bound for every client-sent body: a polling POST, a websocket message or frame.
    let max_message = usize::try_from(config.max_payload).unwrap_or(usize::MAX);
    let builder = SocketIo::builder()
        .max_payload(config.max_payload)
        .ws_max_message_size(max_message)
        .ws_max_frame_size(max_message)
        .connect_timeout(config.connect_timeout)
        .max_buffer_size(config.socket_buffer)
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        // Chat frames are small; tungstenite grows the buffer for a larger one as needed.
        .ws_read_buffer_size(WS_READ_BUFFER_SIZE);
    let (app, admin_app, shutdown) = match &config.redis.redis_url {
        None => {
            tracing::warn!(
                "no Redis URL: running standalone on the in-memory adapter, \
                 rooms are not shared with other instances"
            );
            tracing::warn!(
                "DEVELOPMENT MODE: no accounts, no sessions, no rate limits; every socket is an \
                 anonymous user of tenant `dev`"
            );
            let mode = Arc::new(Mode::Standalone);
            let (layer, io) = builder
                .with_state(chat::ChatState::new(&instance, mode.clone(), &config))
                .build_layer();
            chat::register(&io);
            assemble(&config, &instance, mode, counters, layer, io)
        }
        Some(url) => {
            // The process's one Redis layer: the adapter, sessions, limits and settings share it.
            // Every file a flag names is read before anything connects.
            let (adapter_config, redis_config) =
                (adapter_config(&config)?, redis_config(&config.redis)?);
            let redis = Redis::connect(url, redis_config).await?;
            let accounts =
                Accounts::start(&config, redis.clone(), counters.clone(), &mut background).await?;
            let adapter = RedisAdapterState::new(redis, adapter_config);
            let mode = Arc::new(Mode::Clustered {
                adapter: adapter.clone(),
                accounts: accounts.clone(),
            });
            let (layer, io) = builder
                .with_adapter::<RedisAdapter<_>>(adapter.clone())
                .with_state(chat::ChatState::new(&instance, mode.clone(), &config))
                .build_layer();
            chat::register(&io).await?;
            if config.emitter_key.is_some() {
                chat::track_emitter_membership(&adapter, io.clone());
            }
            if let Some(history) = &accounts.history {
                let connected = adapter.clone();
                background.push(chat::spawn_spool_drain(
                    io.clone(),
                    history.clone(),
                    move || connected.is_connected(),
                    config.redis.redis_reconnect().1,
                ));
            }
            background.push(chat::spawn_session_check(
                io.clone(),
                accounts,
                // At least a second between two checks.
                config.session_check_interval.max(Duration::from_secs(1)),
            ));
            tracing::info!(prefix = %config.redis.key_prefix, "joined the cluster over Redis");
            assemble(&config, &instance, mode, counters, layer, io)
        }
    };
    let app = match cors {
        Some(cors) => app.layer(cors),
        None => app,
    };
    Ok(Gateway {
        listener,
        local_addr,
        instance,
        app,
        admin_listener,
        admin_addr,
        admin_app,
        shutdown,
        background,
    })
}

impl Gateway {
    /// The address actually bound (the real port when `--listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the operational routes are served on (`--admin-listen`).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// This instance's id, as sent to clients in `welcome`.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    /// Serves until `shutdown` resolves, then stops gracefully within the shutdown timeout:
    /// stop accepting, close every socket and leave the cluster, finish in-flight requests.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        tracing::info!(addr = %self.local_addr, admin = %self.admin_addr, "listening");
        let listener = self.listener.tap_io(|tcp| {
            // Chat frames are small: send them now rather than batching them (Nagle).
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%err, "cannot set TCP_NODELAY");
            }
        });
        let (stop_accepting, stopped) = oneshot::channel::<()>();
        // The peer address is kept with each request (and each socket's handshake): the
        // client IP of the rate limits is derived from it.
        let app = self.app.into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        // Dropped when serving ends: stops the background tasks, the admin listener with them.
        let mut background = self.background;
        let admin = axum::serve(self.admin_listener, self.admin_app);
        background.push(tokio::spawn(async move {
            if let Err(err) = admin.await {
                tracing::error!(%err, "the admin listener stopped");
            }
        }));
        let _background = background;
        let mut server = tokio::spawn(server.into_future());
        tokio::select! {
            // The server only stops by itself on a fatal I/O error.
            joined = &mut server => return joined?.map_err(Error::Serve),
            () = shutdown => {}
        }
        self.shutdown.run(stop_accepting, server).await
    }
}

/// The app for one adapter type: HTTP routes inside the Socket.IO layer, the admin routes,
/// and its shutdown.
fn assemble<A: Adapter>(
    config: &Config,
    instance: &str,
    mode: Arc<Mode>,
    counters: Arc<Counters>,
    layer: SocketIoLayer<A>,
    io: SocketIo<A>,
) -> (Router, Router, Shutdown) {
    let state = HttpState {
        instance: Arc::from(instance),
        io: io.clone(),
        mode,
        counters: counters.clone(),
        web_modules_dir: Arc::from(config.web_modules_dir.as_path()),
        bench_endpoints: config.bench_endpoints,
    };
    let admin = http::admin_router(state.clone());
    let opens = Arc::new(http::Opens::new(
        config.connect_timeout,
        config.max_opens_per_address,
        request::TrustedProxies::new(&config.trusted_proxies),
        counters,
    ));
    // The outermost layer runs first: request parts are copied before engineioxide keeps them,
    // and an open beyond its address's cap never reaches engineioxide.
    let app = http::router(state)
        .layer(layer)
        .layer(axum::middleware::map_request(http::detach_from_read_buffer))
        .layer(axum::middleware::from_fn_with_state(
            opens,
            http::limit_opens,
        ));
    (app, admin, Shutdown::new(io, config.shutdown_timeout))
}

/// The Redis adapter's settings from the gateway's flags.
fn adapter_config(config: &Config) -> Result<RedisAdapterConfig, Error> {
    const FLAG: &str = "--cluster-secret-file";
    let cluster_secret = match &config.cluster_secret_file {
        None => None,
        Some(path) => Some(
            ClusterSecret::new(secrets::first_line(FLAG, path)?)
                .ok_or_else(|| secrets::refused(FLAG, path, "shorter than 16 bytes"))?,
        ),
    };
    if cluster_secret.is_some() && config.emitter_key.is_some() {
        tracing::warn!(
            "--emitter-key with --cluster-secret-file: the emitter's messages carry no MAC, \
             so whoever may publish on Redis may emit within the tenant rules"
        );
    }
    Ok(RedisAdapterConfig {
        prefix: config.redis.key_prefix.clone(),
        heartbeat_interval: config.heartbeat_interval,
        heartbeat_timeout: config.heartbeat_timeout,
        request_timeout: config.request_timeout,
        cluster_secret,
        emitter: config.emitter_key.as_deref().map(emitter::config),
        ..RedisAdapterConfig::default()
    })
}

/// The command connection of a command-line tool (`gateway jobs`, `gateway api-key`) to the
/// Redis at `url`, with the other Redis flags; fails at once when Redis cannot be reached.
pub(crate) async fn connect_store(url: &str, redis: &RedisArgs) -> Result<store::Store, Error> {
    let connected = Redis::connect(url, redis_config(redis)?).await?;
    Ok(store::Store::new(
        connected,
        keys::Keys::new(&redis.key_prefix),
    ))
}

/// The Redis layer's settings from the Redis flags (the server's, the worker's, `gateway jobs`').
pub(crate) fn redis_config(config: &RedisArgs) -> Result<RedisConfig, Error> {
    let (reconnect_min_delay, reconnect_max_delay) = config.redis_reconnect();
    let credentials = match &config.redis_password_file {
        None => None,
        Some(path) => Some(Credentials {
            username: config.redis_user.clone(),
            password: secrets::first_line("--redis-password-file", path)?,
        }),
    };
    let tls_root_cert = match &config.redis_ca_file {
        None => None,
        Some(path) => Some(secrets::read("--redis-ca-file", path)?),
    };
    Ok(RedisConfig {
        command_timeout: store::COMMAND_TIMEOUT,
        reconnect_min_delay,
        reconnect_max_delay,
        probe_prefix: config.key_prefix.clone(),
        credentials,
        tls_root_cert,
        ..RedisConfig::default()
    })
}
