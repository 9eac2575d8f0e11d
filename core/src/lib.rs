//! zk-core: zkd's deterministic, sans-IO core.
//!
//! This crate holds everything a ZooKeeper-compatible server decides, with no networking,
//! no files, no threads and no clock of its own: time and randomness always come in as
//! arguments, so the same inputs give the same outputs, byte for byte.
//!
//! - [`proto`]: the client wire protocol (jute records, requests, replies, framing).
//! - [`error`]: ZooKeeper's error codes.

pub mod error;
pub mod path;
pub mod proto;

pub use error::{ErrorCode, ZkResult};
