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
//! - [`zab`]: ZooKeeper Atomic Broadcast's peer messages and Fast Leader Election.
//! - [`node`]: the sans-IO server: shared state plus its role (looking, leading, learning),
//!   client connections, leases and confirmation rounds.
//! - [`ondisk`]: the log, snapshot and epoch file formats, and recovery as a pure function
//!   (which snapshot to start from, where a torn log ends).

//! # Driving a server
//!
//! A [`node::Node`] is one server. A driver feeds it inputs with the current time and
//! carries out its outputs; this is the whole loop, with a `Vec` standing in for the disk
//! and a client speaking the wire protocol:
//!
//! ```
//! use zk_core::node::{ClientOutput, Node, NodeConfig, Now};
//! use zk_core::proto::{self, Buffer, ConnectRequest, CreateRequest, Record, Request};
//! use zk_core::ondisk::{self, RecoveryInput};
//!
//! let mut now = Now { monotonic_ms: 0, wall_ms: 1_700_000_000_000 };
//! // A fresh data directory recovers to an empty state.
//! let recovered = ondisk::recover(&RecoveryInput::default()).unwrap();
//! let mut node = Node::new(NodeConfig::standalone(1), recovered, now);
//! let mut disk = Vec::new();
//! let mut to_client = Vec::new();
//!
//! // One turn of the driver: persist (then report durability), send, deliver, and ask
//! // when to come back.
//! let mut turn = |node: &mut Node, now: Now, to_client: &mut Vec<Vec<u8>>| -> Option<u64> {
//!     while let Some(request) = node.poll_persist() {
//!         disk.push(request.ops); // a real driver writes and fsyncs here
//!         node.handle_persisted(request.token, now);
//!     }
//!     while let Some(transmit) = node.poll_peer() {
//!         let _bytes = zk_core::zab::message::encode(&transmit.message); // to peer `transmit.to`
//!     }
//!     while let Some(output) = node.poll_client() {
//!         if let ClientOutput::Frame { bytes, .. } = output {
//!             to_client.push(bytes);
//!         }
//!     }
//!     node.poll_timeout()
//! };
//!
//! // A standalone server elects itself and writes its epochs before it serves.
//! while !node.is_serving() {
//!     let deadline = turn(&mut node, now, &mut to_client).expect("a timer is always set");
//!     now.monotonic_ms = now.monotonic_ms.max(deadline);
//!     node.handle_timeout(now);
//! }
//!
//! // A client connects and creates a znode; frames go in without their length prefix.
//! node.handle_client_connected(1, None, now);
//! let connect = ConnectRequest { time_out: 30_000, passwd: Buffer(vec![0; 16]), ..Default::default() };
//! node.handle_client_frame(1, &connect.to_bytes(), now);
//! turn(&mut node, now, &mut to_client);
//! let create = Request::Create(CreateRequest {
//!     path: "/hello".into(),
//!     data: Some(b"world".to_vec()),
//!     acl: zk_core::acl::open_acl_unsafe(),
//!     flags: 0,
//! });
//! let frame = proto::encode_request(1, &create);
//! node.handle_client_frame(1, &frame[4..], now);
//! turn(&mut node, now, &mut to_client);
//!
//! assert_eq!(to_client.len(), 2, "the session, then the create's reply");
//! assert!(node.database().tree.contains("/hello"));
//! ```

pub mod acl;
pub mod codec;
pub mod database;
pub mod error;
pub mod node;
pub mod ondisk;
pub mod path;
pub mod proto;
pub mod request;
pub mod sasl;
pub mod session;
pub mod tree;
pub mod txn;
pub mod watch;
pub mod zab;

pub use error::{ErrorCode, ZkResult};
