//! Plain HTTP next to Socket.IO: liveness, readiness, the chat page; clustered (accounts in
//! Redis) also login, logout, the current user and tenant settings. Metrics, cluster status
//! and counters are on a listener of their own (`admin_router`, `--admin-listen`).
//! The engine's requests (`/socket.io/`) are mounted here too, so that the CORS policy covers
//! Socket.IO's long-polling requests.

mod admin;
mod auth;
mod bench;
mod cluster;
mod cors;
mod error;
mod health;
mod metrics;
mod opens;
mod page;
mod ready;
mod stats;

use std::{path::Path, sync::Arc};

use axum::{
    Router,
    routing::{get, post},
};
use engine::{server::Engine, sockets::Nsp};

use crate::{accounts::Accounts, counters::Counters, mode::Mode};
pub(crate) use cors::cors_layer;
pub(crate) use opens::{Opens, admission};

/// Where the engine serves Socket.IO (the engine's default path, the clients' too).
const SOCKET_IO_PATH: &str = "/socket.io/";

/// What the HTTP routes read.
#[derive(Clone)]
pub(crate) struct HttpState {
    /// This instance's id.
    pub(crate) instance: Arc<str>,
    /// The chat namespace: the local socket count, the cluster-wide one, the bench bursts.
    pub(crate) chat: Arc<Nsp>,
    /// The engine serving it: its sessions and counters.
    pub(crate) engine: Engine,
    /// Standalone or clustered: the instance count, readiness, Redis's memory.
    pub(crate) mode: Arc<Mode>,
    /// The gateway's counters.
    pub(crate) counters: Arc<Counters>,
    /// The chat page's npm modules, where the socket.io-client browser build is read.
    pub(crate) web_modules_dir: Arc<Path>,
    /// Whether the benchmark-only routes (`POST /bench/burst`) are served.
    pub(crate) bench_endpoints: bool,
}

/// What the account routes (login, logout, me, tenant settings) read; they exist only in
/// clustered mode, so the accounts are always there.
#[derive(Clone)]
pub(crate) struct AccountRoutes {
    /// Sessions, limits and settings.
    pub(crate) accounts: Arc<Accounts>,
    /// The chat namespace: logout's disconnections.
    pub(crate) chat: Arc<Nsp>,
}

/// The HTTP routes of `--listen`, what browsers and clients use: the chat page (`GET /` and
/// `GET /assets/...`), `GET /healthz` and `GET /readyz`; clustered (with accounts) also
/// `POST /api/login`, `POST /api/logout`, `GET /api/me`,
/// `GET|PUT /api/admin/tenants/{id}/settings` and the publish API of backends (`/api/v1/`,
/// see `crate::api`); with `--bench-endpoints` also
/// `POST /bench/burst`. The operational routes are on [`admin_router`] only.
pub(crate) fn router(state: HttpState) -> Router {
    let mut router = Router::new()
        .route_service(SOCKET_IO_PATH, state.engine.service())
        .route("/", get(page::index))
        .route("/assets/app.js", get(page::app_js))
        .route("/assets/style.css", get(page::style_css))
        .route("/assets/socket.io.min.js", get(page::socket_io_js))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(ready::readyz));
    let mut api = None;
    if let Mode::Clustered { accounts, .. } = &*state.mode {
        let accounts = AccountRoutes {
            accounts: accounts.clone(),
            chat: state.chat.clone(),
        };
        router = router.merge(
            Router::new()
                .route("/api/login", post(auth::login))
                .route("/api/logout", post(auth::logout))
                .route("/api/me", get(auth::me))
                .route(
                    "/api/admin/tenants/{id}/settings",
                    get(admin::get_settings).put(admin::put_settings),
                )
                .with_state(accounts.clone()),
        );
        api = Some(crate::api::router(
            accounts.accounts,
            state.mode.clone(),
            state.chat.clone(),
        ));
    }
    if state.bench_endpoints {
        tracing::warn!("benchmark endpoints enabled (POST /bench/burst): never in production");
        router = router.route("/bench/burst", post(bench::burst));
    }
    let router = router.with_state(state);
    match api {
        Some(api) => router.merge(api),
        None => router,
    }
}

/// The operational routes of `--admin-listen` (loopback by default): `GET /metrics`,
/// `GET /api/stats`, `GET /api/cluster` and `GET /api/cluster/sockets` (a count, never a
/// socket id), plus `GET /healthz` and `GET /readyz` for the operator's probes.
pub(crate) fn admin_router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(ready::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/cluster", get(cluster::cluster))
        .route("/api/cluster/sockets", get(cluster::sockets))
        .route("/api/stats", get(stats::stats))
        .with_state(state)
}
