//! zk-core: zkd's deterministic, sans-IO core.
//!
//! This crate holds everything a ZooKeeper-compatible server decides, with no networking,
//! no files, no threads and no clock of its own: time and randomness always come in as
//! arguments, so the same inputs give the same outputs, byte for byte.
//!
//! - [`proto`]: the client wire protocol (jute records, requests, replies, framing).
//! - [`path`]: znode path validation.
//! - [`tree`]: the znode tree with ZooKeeper's Stat rules, quotas and special nodes.
//! - [`codec`]: zkd's own binary encoding (bincode), for peer messages and storage.
//! - [`acl`]: ACL checks and authentication schemes (world, auth, digest, ip, super).
//! - [`txn`]: replicated state changes and their deterministic application.
//! - [`database`]: one server's replicated state: applying txns, serving reads, firing watches.
//! - [`request`]: request preparation: checks, then a read result or a txn to propose.
//! - [`session`]: the session table, timeouts and expiry.
//! - [`watch`]: one-time and persistent watches.
//! - [`error`]: ZooKeeper's error codes.

pub mod acl;
pub mod codec;
pub mod database;
pub mod error;
pub mod node;
pub mod path;
pub mod proto;
pub mod request;
pub mod session;
pub mod tree;
pub mod storage;
pub mod txn;
pub mod watch;
pub mod zab;

pub use error::{ErrorCode, ZkResult};
