//! The load tester's integration tests, in one binary: one link of the load tester, the
//! gateway and their dependencies instead of one per file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod burst;
mod cli;
mod fanout;
mod publish;
