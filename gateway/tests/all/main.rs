//! The gateway's integration tests that share no process-wide state, in one binary: one link
//! of the gateway and its dependencies instead of one per file. `garbage_input.rs` and
//! `redis_outage.rs` read the process's metrics recorder, and `browser_netns.rs` sets up
//! network namespaces as root: each stays a binary of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../nginx_support/mod.rs"]
mod nginx_support;
#[path = "../support/mod.rs"]
mod support;

mod browser;
mod browser_failover;
mod chat;
mod cross_instance;
mod demo_users;
mod drain;
mod early_emit;
mod emitter;
mod history;
mod http;
mod instance_loss;
mod jobs;
mod limits;
mod logins;
mod nginx;
mod node_client;
mod node_failover;
mod origin;
mod page;
mod publish_api;
mod python_client;
mod python_node_chat;
mod ratelimit;
mod redis_cluster;
mod redis_memory;
mod sessions;
mod settings_cache;
mod shutdown;
mod tenancy;
mod trusted_redis;
