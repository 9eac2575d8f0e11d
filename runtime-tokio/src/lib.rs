//! zk-runtime-tokio: the zkd daemon, the production driver of zk-core's sans-IO
//! [`zk_core::node::Node`].
//!
//! - [`config`]: zoo.cfg, mapped onto the core's `NodeConfig`.
//! - [`storage`]: the data directory, group commit on a dedicated thread, recovery.
//! - [`server`]: the task that owns the node, the client port and four-letter words.
//! - [`peer`]: the quorum connections between servers.
//! - [`rt`]: what differs under madsim (`RUSTFLAGS="--cfg madsim"`), where madsim-tokio
//!   replaces tokio so the same server runs in a deterministic simulation.

// This crate is the one place that touches the operating system: the clock, threads,
// files and sockets that clippy.toml keeps out of the deterministic core are its job.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod config;
pub mod four_letter;
pub mod peer;
pub mod rt;
pub mod server;
pub mod storage;

pub use server::{start, start_with_fs, ServerError, ServerHandle, Status};
