//! What reaches the node task: one queue of [`Input`]s from client connections, quorum
//! links and storage, and the node task's end of a client connection that a
//! [`Input::ClientConnected`] hands over.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};
use zk_core::node::ConnectionId;
use zk_core::proto::Id;
use zk_core::zab::message::PeerMessage;
use zk_core::zab::ServerId;

use crate::storage::StorageReport;

/// Something for the node task.
pub(crate) enum Input {
    ClientConnected {
        connection: ConnectionId,
        handle: ConnectionHandle,
        /// Identities the connection brought (a TLS client certificate's).
        identities: Vec<Id>,
    },
    /// `count` complete frames from one read, back to back with their length prefixes: one
    /// input (one copy, one wake-up of the node task) per read rather than per request.
    ClientFrames {
        connection: ConnectionId,
        frames: Vec<u8>,
        count: usize,
    },
    ClientDisconnected {
        connection: ConnectionId,
    },
    FourLetterWord {
        word: &'static str,
        reply: oneshot::Sender<String>,
    },
    PeerUp {
        peer: ServerId,
        link: u64,
        sender: mpsc::Sender<PeerMessage>,
    },
    PeerMessage {
        peer: ServerId,
        link: u64,
        message: PeerMessage,
    },
    PeerDown {
        peer: ServerId,
        link: u64,
    },
    Storage(StorageReport),
}

/// What a connection's task and the node task share.
#[derive(Debug, Default)]
pub(crate) struct ConnectionShared {
    /// The node's `connection_requests_pending`, as of the node task's last turn.
    pub(crate) pending: AtomicUsize,
    /// Frames the node task has handled from this connection.
    pub(crate) handled: AtomicU64,
    /// Frames queued for the writer and not yet taken.
    pub(crate) queued: AtomicUsize,
    /// Wakes a paused reader.
    pub(crate) resume: Notify,
}

/// The node task's end of a client connection.
pub(crate) struct ConnectionHandle {
    pub(crate) writer: mpsc::Sender<Vec<u8>>,
    pub(crate) shared: Arc<ConnectionShared>,
    pub(crate) remote: SocketAddr,
    pub(crate) received: u64,
    pub(crate) sent: u64,
}
