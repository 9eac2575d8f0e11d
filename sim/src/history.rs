//! What the clients did and saw: every operation with its invocation and completion times
//! and result, and the raw observations (requests sent, replies received, connections
//! made and lost) that the per-client checkers read.

use zk_core::node::ConnectionId;
use zk_core::proto::{AddWatchMode, CreateMode, EventType, OpCode};
use zk_core::zab::ServerId;
use zk_core::ErrorCode;

/// A client's index in the run.
pub type ClientId = usize;

/// What an operation asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    Create {
        path: String,
        data: Vec<u8>,
        mode: CreateMode,
    },
    /// `version` -1 means any version.
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Delete {
        path: String,
        version: i32,
    },
    GetData {
        path: String,
    },
    Exists {
        path: String,
    },
    GetChildren {
        path: String,
    },
    /// `sync` then `getData` on the same connection: the read must reflect every write
    /// committed before the sync was invoked.
    SyncRead {
        path: String,
    },
    /// A multi of writes, described by the paths it touches.
    Multi {
        paths: Vec<String>,
    },
    /// addWatch: a persistent (or persistent recursive) watch on `path`.
    AddWatch {
        path: String,
        mode: AddWatchMode,
    },
    CloseSession,
}

impl OpKind {
    /// Whether the operation may change state.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            OpKind::Create { .. }
                | OpKind::SetData { .. }
                | OpKind::Delete { .. }
                | OpKind::Multi { .. }
                | OpKind::CloseSession
        )
    }

    /// The single path the operation is about, if it is about one.
    pub fn path(&self) -> Option<&str> {
        match self {
            OpKind::Create { path, .. }
            | OpKind::SetData { path, .. }
            | OpKind::Delete { path, .. }
            | OpKind::GetData { path }
            | OpKind::Exists { path }
            | OpKind::GetChildren { path }
            | OpKind::SyncRead { path }
            | OpKind::AddWatch { path, .. } => Some(path),
            OpKind::Multi { .. } | OpKind::CloseSession => None,
        }
    }
}

/// What a successful operation returned (the parts the checkers look at).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    None,
    /// The created path.
    Path(String),
    /// getData and sync+read.
    Data {
        data: Vec<u8>,
        version: i32,
    },
    /// setData: the new version.
    Version(i32),
    Exists {
        version: i32,
    },
    Children(Vec<String>),
    /// The error code of each op of a multi (0 for success).
    Multi(Vec<i32>),
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished when the run ended (as good as unknown).
    Pending,
    Ok(Value),
    Err(ErrorCode),
    /// The connection dropped before the reply: it may or may not have taken effect.
    Unknown,
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub client: ClientId,
    pub session_id: i64,
    pub server: ServerId,
    pub kind: OpKind,
    pub invoke_ms: u64,
    pub complete_ms: Option<u64>,
    pub outcome: Outcome,
    /// The zxid in the reply header, when a reply came.
    pub zxid: Option<i64>,
    /// The xid of the request that carries the operation (the read, for sync+read): with
    /// the session it names the operation's txn (`cxid`) in the committed log.
    pub xid: Option<i32>,
}

/// The watches a client holds, by the table ZooKeeper's client keeps them in
/// (`ZKWatchManager`): what a getData or an exists on an existing node left (`Data`), an
/// exists on a missing node (`Exist`), a getChildren (`Child`), and addWatch's two modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchKind {
    Data,
    Exist,
    Child,
    Persistent,
    PersistentRecursive,
}

impl WatchKind {
    /// Whether the watch stays after it fires.
    pub fn is_persistent(self) -> bool {
        matches!(self, WatchKind::Persistent | WatchKind::PersistentRecursive)
    }
}

/// The coordination recipes clients run on top of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecipeKind {
    /// A lock: the lowest ephemeral sequential node under `/lock` holds it.
    Lock,
    /// Leader election: the lowest node under `/election` leads, and claims the next term.
    Election,
}

/// A raw event as one client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObservationKind {
    /// A session was established (or re-established) on a connection.
    Connected { connection: ConnectionId, server: ServerId, session_id: i64, last_zxid_seen: i64 },
    /// A request left on a connection.
    Sent { connection: ConnectionId, xid: i32, op: OpCode },
    /// A reply arrived.
    Reply { connection: ConnectionId, xid: i32, zxid: i64, err: i32 },
    /// A frame that could not be decoded as a reply to anything outstanding.
    Undecodable { connection: ConnectionId, problem: String },
    /// The connection broke or was given up.
    ConnectionLost { connection: ConnectionId },
    /// The server said the session expired.
    SessionExpired { session_id: i64 },
    /// The client closed its session and the server confirmed.
    SessionClosed { session_id: i64 },
    /// A reply left a watch registered, as ZooKeeper's client registers it: the watch of a
    /// successful getData, getChildren or addWatch, or of an exists (found or not). `zxid`
    /// is the reply's: the server registered the watch in the state at that zxid.
    WatchRegistered { connection: ConnectionId, kind: WatchKind, path: String, zxid: i64 },
    /// A watch notification arrived. `zxid` is the reply header's: the txn that fired it, or
    /// -1 for an event a setWatches caught up on.
    WatchEvent { connection: ConnectionId, zxid: i64, event_type: EventType, path: String },
    /// The client re-registered its watches on a new connection of its session (setWatches,
    /// xid -8), relative to the last zxid it had seen.
    WatchesReset { connection: ConnectionId, relative_zxid: i64, watches: Vec<(WatchKind, String)> },
    /// The client learned that it holds the lock, or leads the election (with the term it
    /// claimed), through its node `node`.
    RecipeHeld { recipe: RecipeKind, session_id: i64, node: String, term: Option<u64> },
    /// The client let go: it sent the delete of its node, or learned its session ended.
    RecipeReleased { recipe: RecipeKind, session_id: i64, node: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub time_ms: u64,
    pub client: ClientId,
    pub kind: ObservationKind,
}

/// Everything the clients of a run did and saw.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub operations: Vec<Operation>,
    pub observations: Vec<Observation>,
}

impl History {
    pub fn observe(&mut self, time_ms: u64, client: ClientId, kind: ObservationKind) {
        self.observations.push(Observation { time_ms, client, kind });
    }

    /// Starts an operation; returns its index.
    pub fn invoke(&mut self, client: ClientId, session_id: i64, server: ServerId, kind: OpKind, now_ms: u64) -> usize {
        self.operations.push(Operation {
            client,
            session_id,
            server,
            kind,
            invoke_ms: now_ms,
            complete_ms: None,
            outcome: Outcome::Pending,
            zxid: None,
            xid: None,
        });
        self.operations.len() - 1
    }

    pub fn complete(&mut self, index: usize, outcome: Outcome, zxid: Option<i64>, now_ms: u64) {
        let operation = &mut self.operations[index];
        debug_assert_eq!(operation.outcome, Outcome::Pending, "an operation completes once");
        operation.complete_ms = if outcome == Outcome::Unknown { None } else { Some(now_ms) };
        operation.outcome = outcome;
        operation.zxid = zxid;
    }
}
