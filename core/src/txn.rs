//! Txns: the replicated state changes, and their deterministic application to the tree.
//!
//! Every change to replicated state is a txn decided by the leader and applied in zxid
//! order on every server (DESIGN.md rule 3): node creation and deletion of every kind,
//! data and ACL changes, version checks, multi, session creation and closing (which
//! deletes the session's ephemerals), container and TTL clean-up, and error txns (a
//! request that failed its checks still takes its place in the order, so a client's
//! replies stay in FIFO order, as in ZooKeeper).
//!
//! Applying returns what the requesting client must be told and the list of
//! [`TreeEvent`]s that watches are triggered from.

use std::sync::Arc;

use crate::proto::{
    Acl, Create2Response, CreateResponse, Data, MultiResult, OpCode, Response, SetAclResponse, SetDataResponse,
};
use crate::tree::{DataTree, NodeKind};
use crate::{path, ErrorCode};

/// The header every txn carries: who asked, which request, its place in the order and the
/// leader's wall-clock time (ZooKeeper's `TxnHeader`; the op type lives in [`Txn`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TxnHeader {
    /// The session that sent the request (`clientId`).
    pub session_id: i64,
    /// The request's xid (`cxid`).
    pub cxid: i32,
    pub zxid: i64,
    /// The leader's wall-clock time in milliseconds, stamped into ctime and mtime so every
    /// replica agrees.
    pub time_ms: i64,
}

/// The kind of node a create txn makes; an ephemeral's owner is the txn's session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CreateKind {
    Persistent,
    Ephemeral,
    Container,
    Ttl { ttl_ms: i64 },
}

impl CreateKind {
    /// The node kind this creates when the txn's session is `session_id`.
    pub fn node_kind(self, session_id: i64) -> NodeKind {
        match self {
            CreateKind::Persistent => NodeKind::Persistent,
            CreateKind::Ephemeral => NodeKind::Ephemeral { owner: session_id },
            CreateKind::Container => NodeKind::Container,
            CreateKind::Ttl { ttl_ms } => NodeKind::Ttl { ttl_ms },
        }
    }
}

/// A replicated state change.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Txn {
    /// Creates a node. `op` is the client's opcode (create, create2, createContainer,
    /// createTTL), which decides the reply's shape.
    Create {
        op: OpCode,
        path: String,
        #[serde(with = "serde_bytes")]
        data: Data,
        acl: Vec<Acl>,
        kind: CreateKind,
        /// The parent's stored cversion after this creation.
        parent_cversion: i32,
    },
    /// Deletes a childless node; `op` is delete, or deleteContainer when the server removes
    /// an empty container or an expired TTL node.
    Delete { op: OpCode, path: String },
    /// Replaces data; `version` is the new version.
    SetData {
        path: String,
        #[serde(with = "serde_bytes")]
        data: Data,
        version: i32,
    },
    /// Replaces an ACL; `version` is the new aversion.
    SetAcl { path: String, acl: Vec<Acl>, version: i32 },
    /// A version check inside a multi (or alone); changes nothing.
    Check { path: String, version: i32 },
    /// All-or-nothing: when any sub-txn is an error, none of the others is applied.
    /// A multi never holds a multi (ZooKeeper refuses nested multi), and decoding refuses
    /// one, so a crafted record cannot nest deep enough to exhaust the stack.
    Multi(#[serde(deserialize_with = "deserialize_flat_multi")] Vec<Txn>),
    /// A new session with its negotiated timeout.
    CreateSession { timeout_ms: i32 },
    /// Closes the header's session and deletes these ephemerals (chosen by the leader when
    /// it prepared the txn, so every replica deletes the same set).
    CloseSession { paths_to_delete: Vec<String> },
    /// A request that failed its checks; the reply carries this error.
    Error(ErrorCode),
}

/// A txn inside a multi, for decoding only: the same variants in the same order as
/// [`Txn`], but `Multi` holds a type no bytes can decode to.
#[derive(serde::Deserialize)]
enum FlatTxn {
    Create {
        op: OpCode,
        path: String,
        #[serde(with = "serde_bytes")]
        data: Data,
        acl: Vec<Acl>,
        kind: CreateKind,
        parent_cversion: i32,
    },
    Delete {
        op: OpCode,
        path: String,
    },
    SetData {
        path: String,
        #[serde(with = "serde_bytes")]
        data: Data,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    Multi(NestedMulti),
    CreateSession {
        timeout_ms: i32,
    },
    CloseSession {
        paths_to_delete: Vec<String>,
    },
    Error(ErrorCode),
}

/// Uninhabited: a nested multi never decodes.
#[derive(serde::Deserialize)]
enum NestedMulti {}

fn deserialize_flat_multi<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Txn>, D::Error> {
    let flat: Vec<FlatTxn> = serde::Deserialize::deserialize(deserializer)?;
    Ok(flat
        .into_iter()
        .map(|txn| match txn {
            FlatTxn::Create { op, path, data, acl, kind, parent_cversion } => {
                Txn::Create { op, path, data, acl, kind, parent_cversion }
            }
            FlatTxn::Delete { op, path } => Txn::Delete { op, path },
            FlatTxn::SetData { path, data, version } => Txn::SetData { path, data, version },
            FlatTxn::SetAcl { path, acl, version } => Txn::SetAcl { path, acl, version },
            FlatTxn::Check { path, version } => Txn::Check { path, version },
            FlatTxn::Multi(never) => match never {},
            FlatTxn::CreateSession { timeout_ms } => Txn::CreateSession { timeout_ms },
            FlatTxn::CloseSession { paths_to_delete } => Txn::CloseSession { paths_to_delete },
            FlatTxn::Error(code) => Txn::Error(code),
        })
        .collect())
}

impl Txn {
    /// The opcode ZooKeeper would log this txn under.
    pub fn op_code(&self) -> OpCode {
        match self {
            Txn::Create { op, .. } | Txn::Delete { op, .. } => *op,
            Txn::SetData { .. } => OpCode::SetData,
            Txn::SetAcl { .. } => OpCode::SetAcl,
            Txn::Check { .. } => OpCode::Check,
            Txn::Multi(_) => OpCode::Multi,
            Txn::CreateSession { .. } => OpCode::CreateSession,
            Txn::CloseSession { .. } => OpCode::CloseSession,
            Txn::Error(_) => OpCode::Error,
        }
    }

    /// Roughly the memory the txn holds, in bytes (what bounds a server's in-memory
    /// history): its strings and data plus a fixed overhead per part.
    pub fn approximate_bytes(&self) -> usize {
        const PART: usize = 64;
        let acl_bytes =
            |acl: &[Acl]| acl.iter().map(|entry| PART + entry.id.scheme.len() + entry.id.id.len()).sum::<usize>();
        let data_bytes = |data: &Data| data.as_ref().map_or(0, Vec::len);
        PART + match self {
            Txn::Create { path, data, acl, .. } => path.len() + data_bytes(data) + acl_bytes(acl),
            Txn::Delete { path, .. } | Txn::Check { path, .. } => path.len(),
            Txn::SetData { path, data, .. } => path.len() + data_bytes(data),
            Txn::SetAcl { path, acl, .. } => path.len() + acl_bytes(acl),
            Txn::Multi(txns) => txns.iter().map(Txn::approximate_bytes).sum(),
            Txn::CloseSession { paths_to_delete } => paths_to_delete.iter().map(|path| PART + path.len()).sum(),
            Txn::CreateSession { .. } | Txn::Error(_) => 0,
        }
    }
}

/// A change to the tree that watches react to, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeEvent {
    Created(String),
    Deleted(String),
    DataChanged(String),
}

impl TreeEvent {
    pub fn path(&self) -> &str {
        match self {
            TreeEvent::Created(path) | TreeEvent::Deleted(path) | TreeEvent::DataChanged(path) => path,
        }
    }
}

/// A tree event with the ACLs that decide who may hear of it, taken at the moment of the
/// change: a watcher without READ on the node the notification names hears nothing
/// (ZooKeeper's `ServerCnxn.process`), and a deleted node's ACL is gone after the txn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventAcls {
    /// The ACL of the node the event is about (shared with the tree's interned copy).
    pub node: Arc<[Acl]>,
    /// The ACL of its parent, for NodeChildrenChanged.
    pub parent: Arc<[Acl]>,
}

/// What applying a txn produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The error for the reply header (Ok, or the error of a failed txn or multi).
    pub err: ErrorCode,
    /// The reply body (empty unless `err` is Ok, except for multi).
    pub response: Response,
    /// What changed in the tree, for watches, each with the ACLs current at the change.
    pub events: Vec<(TreeEvent, EventAcls)>,
    /// The path the txn acted on, where it has one (for logs and metrics).
    pub path: Option<String>,
}

impl Applied {
    fn ok(response: Response, path: Option<String>) -> Applied {
        Applied { err: ErrorCode::Ok, response, events: Vec::new(), path }
    }

    fn error(err: ErrorCode, path: Option<String>) -> Applied {
        Applied { err, response: Response::Empty, events: Vec::new(), path }
    }
}

/// Applies one txn to the tree. Deterministic: the same tree and txn give the same tree
/// and result. A txn that fails here (NodeExists on a replayed create, say) leaves the tree
/// as it was and reports the error, as ZooKeeper's `processTxn` does.
pub fn apply(tree: &mut DataTree, header: &TxnHeader, txn: &Txn) -> Applied {
    match txn {
        Txn::Create { op, path, data, acl, kind, parent_cversion } => {
            let node_kind = kind.node_kind(header.session_id);
            match tree.create_node(path, data.clone(), acl, node_kind, *parent_cversion, header.zxid, header.time_ms) {
                Ok(stat) => {
                    let response = match op {
                        OpCode::Create => Response::Create(CreateResponse { path: path.clone() }),
                        _ => Response::Create2(Create2Response { path: path.clone(), stat }),
                    };
                    let mut applied = Applied::ok(response, Some(path.clone()));
                    applied.events.push((TreeEvent::Created(path.clone()), event_acls(tree, path)));
                    applied
                }
                Err(err) => {
                    if err == ErrorCode::NodeExists {
                        // Replaying a create over a fuzzy snapshot that already holds the
                        // node: the parent's cversion and pzxid still move as they did.
                        if let Some(parent) = path::parent(path) {
                            let _ = tree.set_cversion_pzxid(parent, *parent_cversion, header.zxid);
                        }
                    }
                    Applied::error(err, Some(path.clone()))
                }
            }
        }
        Txn::Delete { path, .. } => {
            let acls = event_acls(tree, path);
            match tree.delete_node(path, header.zxid) {
                Ok(()) => {
                    let mut applied = Applied::ok(Response::Empty, Some(path.clone()));
                    applied.events.push((TreeEvent::Deleted(path.clone()), acls));
                    applied
                }
                Err(err) => Applied::error(err, Some(path.clone())),
            }
        }
        Txn::SetData { path, data, version } => {
            match tree.set_data(path, data.clone(), *version, header.zxid, header.time_ms) {
                Ok(stat) => {
                    let mut applied = Applied::ok(Response::SetData(SetDataResponse { stat }), Some(path.clone()));
                    applied.events.push((TreeEvent::DataChanged(path.clone()), event_acls(tree, path)));
                    applied
                }
                Err(err) => Applied::error(err, Some(path.clone())),
            }
        }
        Txn::SetAcl { path, acl, version } => match tree.set_acl(path, acl, *version) {
            Ok(stat) => Applied::ok(Response::SetAcl(SetAclResponse { stat }), Some(path.clone())),
            Err(err) => Applied::error(err, Some(path.clone())),
        },
        Txn::Check { path, .. } => match tree.stat(path) {
            Some(stat) => Applied::ok(Response::SetData(SetDataResponse { stat }), Some(path.clone())),
            None => Applied::error(ErrorCode::NoNode, Some(path.clone())),
        },
        Txn::Multi(txns) => apply_multi(tree, header, txns),
        Txn::CreateSession { .. } => Applied::ok(Response::Empty, None),
        Txn::CloseSession { paths_to_delete } => {
            let mut applied = Applied::ok(Response::Empty, None);
            // The leader chose the set; a path that is gone or now owned by another session
            // (deleted and re-created since) is skipped, as ZooKeeper's killSession does.
            for node_path in paths_to_delete {
                let owned = tree
                    .get(node_path)
                    .is_some_and(|node| node.kind == NodeKind::Ephemeral { owner: header.session_id });
                if owned {
                    let acls = event_acls(tree, node_path);
                    if tree.delete_node(node_path, header.zxid).is_ok() {
                        applied.events.push((TreeEvent::Deleted(node_path.clone()), acls));
                    }
                }
            }
            applied
        }
        Txn::Error(err) => Applied::error(*err, None),
    }
}

fn event_acls(tree: &DataTree, node_path: &str) -> EventAcls {
    let node = tree.acl_of_shared(node_path).unwrap_or_default();
    let parent = path::parent(node_path).and_then(|parent| tree.acl_of_shared(parent)).unwrap_or_default();
    EventAcls { node, parent }
}

/// Applies a multi: if any sub-txn is an error, nothing is applied, the ops before the
/// first error report Ok, the failing one its error, and the later ones
/// RuntimeInconsistency (ZooKeeper's `DataTree.processTxn`); otherwise every sub-txn is
/// applied in order.
fn apply_multi(tree: &mut DataTree, header: &TxnHeader, txns: &[Txn]) -> Applied {
    let first_error = txns.iter().position(|txn| matches!(txn, Txn::Error(_)));
    if let Some(failed_at) = first_error {
        let results: Vec<MultiResult> = txns
            .iter()
            .enumerate()
            .map(|(index, txn)| match txn {
                Txn::Error(err) => MultiResult::Error(*err),
                _ if index < failed_at => MultiResult::Error(ErrorCode::Ok),
                _ => MultiResult::Error(ErrorCode::RuntimeInconsistency),
            })
            .collect();
        let err = match &txns[failed_at] {
            Txn::Error(err) => *err,
            _ => unreachable!("position found an error txn"),
        };
        return Applied { err, response: Response::Multi(results), events: Vec::new(), path: None };
    }
    let mut results = Vec::with_capacity(txns.len());
    let mut events = Vec::new();
    let mut err = ErrorCode::Ok;
    for txn in txns {
        let applied = apply(tree, header, txn);
        if applied.err != ErrorCode::Ok && err == ErrorCode::Ok {
            err = applied.err;
        }
        events.extend(applied.events);
        results.push(multi_result(txn, applied.err, applied.response));
    }
    Applied { err, response: Response::Multi(results), events, path: None }
}

/// The per-op result of a multi as ZooKeeper's `FinalRequestProcessor` shapes it: create
/// gives a path, create2/createTTL/createContainer a path and Stat, setData a Stat, delete
/// and check nothing.
fn multi_result(txn: &Txn, err: ErrorCode, response: Response) -> MultiResult {
    if err != ErrorCode::Ok {
        return MultiResult::Error(err);
    }
    match (txn, response) {
        (Txn::Create { .. }, Response::Create(r)) => MultiResult::Create(r),
        (Txn::Create { .. }, Response::Create2(r)) => MultiResult::Create2(r),
        (Txn::Delete { .. }, _) => MultiResult::Delete,
        (Txn::SetData { .. }, Response::SetData(r)) => MultiResult::SetData(r),
        (Txn::Check { .. }, _) => MultiResult::Check,
        (_, _) => MultiResult::Error(ErrorCode::RuntimeInconsistency),
    }
}

/// One txn as the log holds it, and as proposals and syncs carry it. `prev_zxid` is the zxid of the txn before it in the server's history
/// (0 for the first txn ever); recovery uses it to chain records so a leftover of a divergent
/// history (a crash between installing a snapshot / truncating and the log catching up) is
/// detected and dropped rather than replayed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    pub prev_zxid: i64,
    pub header: TxnHeader,
    pub txn: Txn,
}

impl LogEntry {
    pub fn zxid(&self) -> i64 {
        self.header.zxid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Stat;

    fn header(zxid: i64) -> TxnHeader {
        TxnHeader { session_id: 7, cxid: 1, zxid, time_ms: 5000 + zxid }
    }

    fn create_txn(op: OpCode, node_path: &str, kind: CreateKind) -> Txn {
        Txn::Create {
            op,
            path: node_path.to_owned(),
            data: Some(b"d".to_vec()),
            acl: crate::acl::open_acl_unsafe(),
            kind,
            parent_cversion: -1,
        }
    }

    #[test]
    fn create_replies_by_opcode() {
        let mut tree = DataTree::new();
        let applied = apply(&mut tree, &header(1), &create_txn(OpCode::Create, "/a", CreateKind::Persistent));
        assert_eq!(applied.response, Response::Create(CreateResponse { path: "/a".into() }));
        assert_eq!(applied.events.len(), 1);
        assert_eq!(applied.events[0].0, TreeEvent::Created("/a".into()));
        assert_eq!(*applied.events[0].1.node, crate::acl::open_acl_unsafe()[..]);
        let applied = apply(&mut tree, &header(2), &create_txn(OpCode::Create2, "/b", CreateKind::Ephemeral));
        let Response::Create2(reply) = applied.response else { panic!("create2 reply") };
        assert_eq!(reply.stat.ephemeral_owner, 7);
        assert_eq!(reply.stat.ctime, 5002);
    }

    #[test]
    fn failed_multi_applies_nothing_and_reports_zookeepers_per_op_errors() {
        let mut tree = DataTree::new();
        let before = tree.clone();
        let txns = vec![
            create_txn(OpCode::Create, "/a", CreateKind::Persistent),
            Txn::Error(ErrorCode::NoNode),
            Txn::Error(ErrorCode::RuntimeInconsistency),
        ];
        let applied = apply(&mut tree, &header(1), &Txn::Multi(txns));
        assert_eq!(applied.err, ErrorCode::NoNode);
        assert_eq!(
            applied.response,
            Response::Multi(vec![
                MultiResult::Error(ErrorCode::Ok),
                MultiResult::Error(ErrorCode::NoNode),
                MultiResult::Error(ErrorCode::RuntimeInconsistency),
            ])
        );
        assert!(applied.events.is_empty());
        assert_eq!(tree, before);
    }

    #[test]
    fn successful_multi_applies_in_order() {
        let mut tree = DataTree::new();
        let txns = vec![
            create_txn(OpCode::Create, "/a", CreateKind::Persistent),
            create_txn(OpCode::Create2, "/a/b", CreateKind::Persistent),
            Txn::SetData { path: "/a".into(), data: None, version: 1 },
            Txn::Check { path: "/a".into(), version: 1 },
            Txn::Delete { op: OpCode::Delete, path: "/a/b".into() },
        ];
        let applied = apply(&mut tree, &header(3), &Txn::Multi(txns));
        assert_eq!(applied.err, ErrorCode::Ok);
        let Response::Multi(results) = applied.response else { panic!("multi reply") };
        assert_eq!(results.len(), 5);
        assert_eq!(results[0], MultiResult::Create(CreateResponse { path: "/a".into() }));
        assert!(matches!(results[1], MultiResult::Create2(_)));
        assert!(matches!(results[2], MultiResult::SetData(SetDataResponse { stat: Stat { version: 1, .. } })));
        assert_eq!(results[3], MultiResult::Check);
        assert_eq!(results[4], MultiResult::Delete);
        assert_eq!(
            applied.events.iter().map(|(event, _)| event.clone()).collect::<Vec<_>>(),
            vec![
                TreeEvent::Created("/a".into()),
                TreeEvent::Created("/a/b".into()),
                TreeEvent::DataChanged("/a".into()),
                TreeEvent::Deleted("/a/b".into()),
            ]
        );
        // Every op of a multi carries the multi's zxid.
        assert_eq!(tree.stat("/a").unwrap().mzxid, 3);
    }

    #[test]
    fn close_session_deletes_only_what_it_still_owns() {
        let mut tree = DataTree::new();
        apply(&mut tree, &header(1), &create_txn(OpCode::Create, "/e1", CreateKind::Ephemeral));
        apply(&mut tree, &header(2), &create_txn(OpCode::Create, "/e2", CreateKind::Ephemeral));
        let other = TxnHeader { session_id: 8, ..header(3) };
        apply(&mut tree, &other, &create_txn(OpCode::Create, "/e3", CreateKind::Ephemeral));
        let close = Txn::CloseSession { paths_to_delete: vec!["/e1".into(), "/e3".into(), "/gone".into()] };
        let applied = apply(&mut tree, &header(4), &close);
        assert_eq!(applied.events.len(), 1);
        assert_eq!(applied.events[0].0, TreeEvent::Deleted("/e1".into()));
        // The deleted node's ACL is kept for filtering notifications.
        assert_eq!(*applied.events[0].1.node, crate::acl::open_acl_unsafe()[..]);
        assert!(tree.contains("/e2") && tree.contains("/e3"));
    }

    #[test]
    fn replayed_create_of_an_existing_node_reports_node_exists_and_moves_the_parent() {
        let mut tree = DataTree::new();
        apply(&mut tree, &header(1), &create_txn(OpCode::Create, "/a", CreateKind::Persistent));
        let mut replay = create_txn(OpCode::Create, "/a", CreateKind::Persistent);
        if let Txn::Create { parent_cversion, .. } = &mut replay {
            *parent_cversion = 4;
        }
        let applied = apply(&mut tree, &header(9), &replay);
        assert_eq!(applied.err, ErrorCode::NodeExists);
        assert_eq!(tree.get("/").unwrap().stat.cversion, 4);
        assert_eq!(tree.get("/").unwrap().stat.pzxid, 9);
    }

    #[test]
    fn error_txn_changes_nothing() {
        let mut tree = DataTree::new();
        let before = tree.clone();
        let applied = apply(&mut tree, &header(1), &Txn::Error(ErrorCode::BadVersion));
        assert_eq!(applied.err, ErrorCode::BadVersion);
        assert_eq!(applied.response, Response::Empty);
        assert_eq!(tree, before);
    }
}
