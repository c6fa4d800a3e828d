//! A horizontally scaled Socket.IO chat gateway.
//!
//! Clients connect with Socket.IO to namespace `/`, join rooms and chat (see the `chat` module
//! for the protocol), served by our engine (`engine`). Instances started with the same Redis
//! URL and key prefix share their rooms through the engine's front end of the Redis cluster
//! bus (`redis_adapter::NamespaceBus`), and every socket needs a session (`POST /api/login`): users
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

use axum::Router;
use engine::{
    cluster::ClusterFront,
    server::{self as engine_server, Engine},
    sockets::SocketIo,
};
use redis_adapter::{
    ClusterSecret, Credentials, Id, NamespaceBus, Redis, RedisAdapterConfig, RedisConfig,
};
use tokio::net::TcpListener;

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
use tenancy::CHAT_NS;

/// A gateway bound to its address and ready to serve.
pub struct Gateway {
    listener: TcpListener,
    local_addr: SocketAddr,
    instance: String,
    /// The engine serving Socket.IO (its requests are mounted in `app`).
    engine: Engine,
    /// HTTP routes, the engine's included, wrapped in the CORS policy.
    app: Router,
    /// The operational listener (`--admin-listen`) and its routes (metrics, stats, cluster).
    admin_listener: TcpListener,
    admin_addr: SocketAddr,
    admin_app: Router,
    shutdown: Shutdown,
    /// Session checks and the settings subscription, stopped when the gateway stops.
    background: Background,
}

/// Binds the listen addresses, connects to Redis and the cluster bus (none without a Redis URL:
/// standalone) and sets up the chat on the engine. Nothing is served until [`Gateway::serve`].
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
    metrics::install_recorder();

    let counters = Arc::new(Counters::default());
    let mut background = Background::default();
    let mode = match &config.redis.redis_url {
        None => {
            tracing::warn!(
                "no Redis URL: running standalone, rooms are not shared with other instances"
            );
            tracing::warn!(
                "DEVELOPMENT MODE: no accounts, no sessions, no rate limits; every socket is an \
                 anonymous user of tenant `dev`"
            );
            Arc::new(Mode::Standalone)
        }
        Some(url) => {
            // The process's one Redis layer: the cluster bus, sessions, limits and settings
            // share it. Every file a flag names is read before anything connects.
            let (adapter_config, redis_config) =
                (adapter_config(&config)?, redis_config(&config.redis)?);
            let redis = Redis::connect(url, redis_config).await?;
            let accounts =
                Accounts::start(&config, redis.clone(), counters.clone(), &mut background).await?;
            let bus = NamespaceBus::new(
                Arc::new(redis.clone()),
                &adapter_config,
                redis.counters().clone(),
                CHAT_NS,
                Id::random(),
            );
            Arc::new(Mode::Clustered {
                redis,
                bus,
                accounts,
            })
        }
    };
    let chat_state = chat::ChatState::new(&instance, mode.clone(), &config);
    let chat = chat::Chat::new(chat_state.clone());
    let io = SocketIo::new().namespace(CHAT_NS, chat);
    let nsp = io
        .of(CHAT_NS)
        .cloned()
        .ok_or(Error::Missing("the chat namespace"))?;
    let engine = Engine::new(engine_config(&config), io);
    // Clustered: the bus (which the shutdown leaves), its front, and the background tasks.
    let bus = if let Mode::Clustered {
        redis,
        bus,
        accounts,
    } = &*mode
    {
        ClusterFront::attach(&nsp, bus.clone()).await?;
        if let Some(history) = &accounts.history {
            let connected = redis.clone();
            background.push(chat::spawn_spool_drain(
                nsp.clone(),
                bus.clone(),
                history.clone(),
                move || connected.is_connected(),
                config.redis.redis_reconnect().1,
            ));
            background.push(chat::spawn_mender(nsp.clone(), chat_state, redis.link()));
        }
        background.push(chat::spawn_session_check(
            nsp.clone(),
            accounts.clone(),
            // At least a second between two checks.
            config.session_check_interval.max(Duration::from_secs(1)),
        ));
        tracing::info!(prefix = %config.redis.key_prefix, "joined the cluster over Redis");
        Some(bus.clone())
    } else {
        None
    };
    let opens = Arc::new(http::Opens::new(
        config.connect_timeout,
        config.max_opens_per_address,
        request::TrustedProxies::new(&config.trusted_proxies),
        counters.clone(),
    ));
    engine.set_admission(http::admission(opens));
    let state = HttpState {
        instance: Arc::from(instance.as_str()),
        chat: nsp,
        engine: engine.clone(),
        mode,
        counters,
        web_modules_dir: Arc::from(config.web_modules_dir.as_path()),
        bench_endpoints: config.bench_endpoints,
    };
    let admin_app = http::admin_router(state.clone());
    let app = http::router(state);
    let shutdown = Shutdown::new(engine.clone(), bus, config.shutdown_timeout);
    let app = match cors {
        Some(cors) => app.layer(cors),
        None => app,
    };
    Ok(Gateway {
        listener,
        local_addr,
        instance,
        engine,
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
    /// stop accepting, close every socket and leave the cluster.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        tracing::info!(addr = %self.local_addr, admin = %self.admin_addr, "listening");
        // Dropped when serving ends: stops the background tasks, the admin listener with them.
        let mut background = self.background;
        let admin = axum::serve(self.admin_listener, self.admin_app);
        background.push(tokio::spawn(async move {
            if let Err(err) = admin.await {
                tracing::error!(%err, "the admin listener stopped");
            }
        }));
        let _background = background;
        let (engine, listener, app) = (self.engine, self.listener, self.app);
        let accepting = tokio::spawn(async move { engine.serve_app(listener, app).await });
        shutdown.await;
        self.shutdown.run(accepting).await;
        Ok(())
    }
}

/// The engine's settings from the gateway's flags.
fn engine_config(config: &Config) -> engine_server::Config {
    engine_server::Config {
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
        max_payload: usize::try_from(config.max_payload).unwrap_or(usize::MAX),
        max_buffered: config.max_buffered,
        connect_timeout: config.connect_timeout,
        ..engine_server::Config::default()
    }
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
