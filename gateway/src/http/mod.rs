//! Plain HTTP next to Socket.IO: liveness, readiness, the chat page; clustered (accounts in
//! Redis) also login, logout, the current user and tenant settings. Metrics, cluster status
//! and counters are on a listener of their own (`admin_router`, `--admin-listen`).
//! The CORS policy here also covers Socket.IO's long-polling requests.

mod admin;
mod auth;
mod bench;
mod cluster;
mod cors;
mod detach;
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
use socketioxide::{SocketIo, adapter::Adapter};

use crate::{accounts::Accounts, counters::Counters, mode::Mode};
pub(crate) use cors::cors_layer;
pub(crate) use detach::detach_from_read_buffer;
pub(crate) use opens::{Opens, limit_opens};

/// What the HTTP routes read.
pub(crate) struct HttpState<A: Adapter> {
    /// This instance's id.
    pub(crate) instance: Arc<str>,
    /// The Socket.IO server: the local socket count, and logout's disconnections.
    pub(crate) io: SocketIo<A>,
    /// Standalone or clustered: the instance count, readiness, Redis's memory.
    pub(crate) mode: Arc<Mode>,
    /// The gateway's counters.
    pub(crate) counters: Arc<Counters>,
    /// The chat page's npm modules, where the socket.io-client browser build is read.
    pub(crate) web_modules_dir: Arc<Path>,
    /// Whether the benchmark-only routes (`POST /bench/burst`) are served.
    pub(crate) bench_endpoints: bool,
}

impl<A: Adapter> Clone for HttpState<A> {
    fn clone(&self) -> Self {
        Self {
            instance: self.instance.clone(),
            io: self.io.clone(),
            mode: self.mode.clone(),
            counters: self.counters.clone(),
            web_modules_dir: self.web_modules_dir.clone(),
            bench_endpoints: self.bench_endpoints,
        }
    }
}

/// What the account routes (login, logout, me, tenant settings) read; they exist only in
/// clustered mode, so the accounts are always there.
pub(crate) struct AccountRoutes<A: Adapter> {
    /// Sessions, limits and settings.
    pub(crate) accounts: Arc<Accounts>,
    /// The Socket.IO server: logout's disconnections.
    pub(crate) io: SocketIo<A>,
}

impl<A: Adapter> Clone for AccountRoutes<A> {
    fn clone(&self) -> Self {
        Self {
            accounts: self.accounts.clone(),
            io: self.io.clone(),
        }
    }
}

/// The HTTP routes of `--listen`, what browsers and clients use: the chat page (`GET /` and
/// `GET /assets/...`), `GET /healthz` and `GET /readyz`; clustered (with accounts) also
/// `POST /api/login`, `POST /api/logout`, `GET /api/me`,
/// `GET|PUT /api/admin/tenants/{id}/settings` and the publish API of backends (`/api/v1/`,
/// see `crate::api`); with `--bench-endpoints` also
/// `POST /bench/burst`. The operational routes are on [`admin_router`] only.
pub(crate) fn router<A: Adapter>(state: HttpState<A>) -> Router {
    let mut router = Router::new()
        .route("/", get(page::index))
        .route("/assets/app.js", get(page::app_js))
        .route("/assets/style.css", get(page::style_css))
        .route("/assets/socket.io.min.js", get(page::socket_io_js::<A>))
        .route("/healthz", get(health::healthz::<A>))
        .route("/readyz", get(ready::readyz::<A>));
    let mut api = None;
    if let Mode::Clustered { accounts, .. } = &*state.mode {
        let accounts = AccountRoutes {
            accounts: accounts.clone(),
            io: state.io.clone(),
        };
        router = router.merge(
            Router::new()
                .route("/api/login", post(auth::login::<A>))
                .route("/api/logout", post(auth::logout::<A>))
                .route("/api/me", get(auth::me::<A>))
                .route(
                    "/api/admin/tenants/{id}/settings",
                    get(admin::get_settings::<A>).put(admin::put_settings::<A>),
                )
                .with_state(accounts.clone()),
        );
        api = Some(crate::api::router(
            accounts.accounts,
            state.mode.clone(),
            state.io.clone(),
        ));
    }
    if state.bench_endpoints {
        tracing::warn!("benchmark endpoints enabled (POST /bench/burst): never in production");
        router = router.route("/bench/burst", post(bench::burst::<A>));
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
pub(crate) fn admin_router<A: Adapter>(state: HttpState<A>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz::<A>))
        .route("/readyz", get(ready::readyz::<A>))
        .route("/metrics", get(metrics::metrics::<A>))
        .route("/api/cluster", get(cluster::cluster::<A>))
        .route("/api/cluster/sockets", get(cluster::sockets::<A>))
        .route("/api/stats", get(stats::stats::<A>))
        .with_state(state)
}
