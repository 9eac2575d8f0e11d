//! zk-runtime-tokio: the zkd daemon, the production driver of zk-core's sans-IO
//! [`zk_core::node::Node`].
//!
//! - [`config`]: zoo.cfg, mapped onto the core's `NodeConfig`.
//! - [`storage`]: the data directory, group commit on a dedicated thread, recovery.
//! - [`server`]: the task that owns the node; starting and stopping a server.
//! - [`client_port`]: client connections (plaintext or TLS) and four-letter words.
//! - `tls`: TLS on the client port (not in the madsim build).
//! - `input`: what reaches the node task (one queue of inputs), and its end of a client
//!   connection.
//! - [`peer`]: the quorum connections between servers.
//! - `shutdown`: the signal every task of a server watches to stop.
//! - [`rt`]: what differs under madsim (`RUSTFLAGS="--cfg madsim"`), where madsim-tokio
//!   replaces tokio so the same server runs in a deterministic simulation.

// This crate is the one place that touches the operating system: the clock, threads,
// files and sockets that clippy.toml keeps out of the deterministic core are its job.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod client_port;
pub mod config;
pub mod four_letter;
mod input;
pub mod peer;
pub mod rt;
pub mod server;
mod shutdown;
pub mod storage;
#[cfg(test)]
mod testing;
#[cfg(not(madsim))]
pub mod tls;

pub use server::{start, start_with_fs, ServerError, ServerHandle, Status};
