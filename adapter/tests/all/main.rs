//! The adapter's integration tests, in one binary: one link of the adapter and its
//! dependencies instead of one per file. None installs anything process-wide (no tracing
//! subscriber, no metrics recorder, no environment variables).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod suite;

mod bad_input;
mod burst;
mod catch_up;
mod cluster;
mod cross_instance;
mod local_first;
mod membership;
mod redis_outage;
mod rooms;
mod trust;
