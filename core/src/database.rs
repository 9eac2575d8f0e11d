//! One server's replicated state and the local views over it: the znode tree, the sessions
//! the txns created, the watches its connections hold, and the last applied zxid
//! (ZooKeeper's `ZKDatabase`), with the two things a server does with it:
//!
//! - [`Database::apply`] applies a committed txn in zxid order and returns the reply for
//!   the requesting client plus the watch notifications the change triggered;
//! - [`Database::read`] serves a read-only request locally (ZooKeeper's
//!   `FinalRequestProcessor` for exists, getData, getChildren, getACL, multiRead,
//!   watch management and friends).

use std::collections::BTreeMap;

use crate::acl;
use crate::proto::{
    perms, Acl, AddWatchMode, ErrorResponse, ExistsResponse, GetAclResponse, GetAllChildrenNumberResponse,
    GetChildren2Response, GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, Id, MultiOp, MultiResult,
    Request, Response, SyncResponse, WatcherEvent, WatcherType, WhoAmIResponse,
};
use crate::tree::DataTree;
use crate::txn::{self, Txn, TxnHeader};
use crate::watch::{NodeZxids, SetWatchesPaths, WatchManager, WatcherId, WATCHES_MAX_DEFAULT};
use crate::ErrorCode;

/// A watch notification for one connection.
pub type Notification = (WatcherId, WatcherEvent);

/// What applying a committed txn produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// The reply for the requesting session: `err` and body; its header zxid is the txn's.
    /// For a multi `err` is Ok even when an op failed: the results say which.
    pub err: ErrorCode,
    pub response: Response,
    /// Notifications to send, in order, already filtered by READ permission.
    pub notifications: Vec<Notification>,
}

/// What serving a read produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOutcome {
    pub err: ErrorCode,
    pub response: Response,
    /// Events for the requesting connection itself (setWatches catching up on changes it
    /// missed while disconnected), to send before the reply.
    pub events: Vec<WatcherEvent>,
}

impl ReadOutcome {
    fn ok(response: Response) -> Self {
        ReadOutcome { err: ErrorCode::Ok, response, events: Vec::new() }
    }

    fn error(err: ErrorCode) -> Self {
        ReadOutcome { err, response: Response::Empty, events: Vec::new() }
    }
}

/// Who is reading: the connection (for watches), its session and its identities.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    pub watcher: WatcherId,
    pub session_id: i64,
    pub auth_ids: &'a [Id],
}

/// The replicated state of one server.
#[derive(Clone, Debug)]
pub struct Database {
    pub tree: DataTree,
    pub watches: WatchManager,
    /// Live sessions and their negotiated timeouts, as createSession and closeSession txns
    /// left them (ZooKeeper's `sessionsWithTimeouts`).
    sessions: BTreeMap<i64, i32>,
    last_processed_zxid: i64,
}

impl Default for Database {
    fn default() -> Self {
        Database::new(WATCHES_MAX_DEFAULT)
    }
}

impl Database {
    pub fn new(watches_max: usize) -> Self {
        Database {
            tree: DataTree::new(),
            watches: WatchManager::new(watches_max),
            sessions: BTreeMap::new(),
            last_processed_zxid: 0,
        }
    }

    /// A database rebuilt from a snapshot: its tree, its sessions and the zxid it was taken
    /// at, with no watches (watches belong to connections, which a restart closes).
    pub fn from_parts(
        tree: DataTree,
        sessions: BTreeMap<i64, i32>,
        last_processed_zxid: i64,
        watches_max: usize,
    ) -> Self {
        Database { tree, watches: WatchManager::new(watches_max), sessions, last_processed_zxid }
    }

    /// The zxid of the last txn applied.
    pub fn last_processed_zxid(&self) -> i64 {
        self.last_processed_zxid
    }

    /// Live sessions with their timeouts in milliseconds.
    pub fn sessions(&self) -> &BTreeMap<i64, i32> {
        &self.sessions
    }

    /// Applies a committed txn. `can_read(watcher, acl)` says whether a connection may hear
    /// of a change to a node with that ACL: ZooKeeper drops the notification otherwise (the
    /// one-time watch is consumed all the same).
    pub fn apply(
        &mut self,
        header: &TxnHeader,
        txn: &Txn,
        can_read: &dyn Fn(WatcherId, &[Acl]) -> bool,
    ) -> ApplyOutcome {
        debug_assert!(header.zxid > self.last_processed_zxid || header.zxid == 0, "txns apply in zxid order");
        let applied = txn::apply(&mut self.tree, header, txn);
        match txn {
            Txn::CreateSession { timeout_ms } => {
                self.sessions.insert(header.session_id, *timeout_ms);
            }
            Txn::CloseSession { .. } => {
                self.sessions.remove(&header.session_id);
            }
            _ => {}
        }
        if header.zxid > self.last_processed_zxid {
            self.last_processed_zxid = header.zxid;
        }
        let mut notifications = Vec::new();
        for (event, acls) in &applied.events {
            let fired = match event {
                txn::TreeEvent::Created(path) => self.watches.node_created(path),
                txn::TreeEvent::Deleted(path) => self.watches.node_deleted(path),
                txn::TreeEvent::DataChanged(path) => self.watches.node_data_changed(path),
            };
            for (watcher, watcher_event) in fired {
                let acl = if watcher_event.path == event.path() { &acls.node } else { &acls.parent };
                if can_read(watcher, acl) {
                    notifications.push((watcher, watcher_event));
                }
            }
        }
        // A multi's reply header always says Ok: its per-op results carry the errors, and
        // clients decode a reply body only when the header's error is Ok (ZooKeeper's
        // FinalRequestProcessor never raises a multi's error into the header).
        let err = if matches!(txn, Txn::Multi(_)) { ErrorCode::Ok } else { applied.err };
        ApplyOutcome { err, response: applied.response, notifications }
    }

    /// Serves a read-only request locally. Requests that are not reads (writes, auth,
    /// ping, closeSession) are a caller bug and answered Unimplemented.
    pub fn read(&mut self, reader: &Reader<'_>, request: &Request) -> ReadOutcome {
        match request {
            Request::Exists(exists) => {
                if exists.path.contains('\0') {
                    return ReadOutcome::error(ErrorCode::BadArguments);
                }
                if let Some(node) = self.tree.get(&exists.path) {
                    if let Err(err) = acl::check_acl(self.tree.acl(node), perms::READ, reader.auth_ids) {
                        return ReadOutcome::error(err);
                    }
                }
                // ZooKeeper leaves the watch whether or not the node exists, so that a
                // create fires it.
                if exists.watch {
                    if let Err(err) = self.watches.add_data_watch(&exists.path, reader.watcher) {
                        return ReadOutcome::error(err);
                    }
                }
                match self.tree.stat(&exists.path) {
                    Some(stat) => ReadOutcome::ok(Response::Exists(ExistsResponse { stat })),
                    None => ReadOutcome::error(ErrorCode::NoNode),
                }
            }
            Request::GetData(get) => match self.get_data(reader, &get.path, get.watch) {
                Ok(response) => ReadOutcome::ok(Response::GetData(response)),
                Err(err) => ReadOutcome::error(err),
            },
            Request::GetChildren(get) => match self.get_children(reader, &get.path, get.watch) {
                Ok((children, _)) => ReadOutcome::ok(Response::GetChildren(GetChildrenResponse { children })),
                Err(err) => ReadOutcome::error(err),
            },
            Request::GetChildren2(get) => match self.get_children(reader, &get.path, get.watch) {
                Ok((children, stat)) => {
                    ReadOutcome::ok(Response::GetChildren2(GetChildren2Response { children, stat }))
                }
                Err(err) => ReadOutcome::error(err),
            },
            Request::GetAcl(get) => {
                let Some(node) = self.tree.get(&get.path) else { return ReadOutcome::error(ErrorCode::NoNode) };
                let node_acl = self.tree.acl(node);
                if let Err(err) = acl::check_acl(node_acl, perms::READ | perms::ADMIN, reader.auth_ids) {
                    return ReadOutcome::error(err);
                }
                // Without ADMIN, digest hashes are masked (ZooKeeper's getACL).
                let acl = match acl::check_acl(node_acl, perms::ADMIN, reader.auth_ids) {
                    Ok(()) => node_acl.to_vec(),
                    Err(_) => acl::mask_digest_ids(node_acl),
                };
                ReadOutcome::ok(Response::GetAcl(GetAclResponse { acl, stat: node.client_stat() }))
            }
            Request::GetAllChildrenNumber(get) => {
                let Some(node) = self.tree.get(&get.path) else { return ReadOutcome::error(ErrorCode::NoNode) };
                if let Err(err) = acl::check_acl(self.tree.acl(node), perms::READ, reader.auth_ids) {
                    return ReadOutcome::error(err);
                }
                let total = self.tree.all_children_number(&get.path).unwrap_or(0);
                ReadOutcome::ok(Response::GetAllChildrenNumber(GetAllChildrenNumberResponse {
                    total_number: i32::try_from(total).unwrap_or(i32::MAX),
                }))
            }
            Request::GetEphemerals(get) => {
                let prefix = get.prefix_path.trim();
                let ephemerals = self
                    .tree
                    .ephemerals(reader.session_id)
                    .into_iter()
                    .filter(|path| prefix.is_empty() || prefix == "/" || path.starts_with(&get.prefix_path))
                    .collect();
                ReadOutcome::ok(Response::GetEphemerals(GetEphemeralsResponse { ephemerals }))
            }
            Request::MultiRead(ops) => {
                // Reads inside multiRead never leave watches (ZooKeeper drops the flag).
                let results = ops
                    .iter()
                    .map(|op| match op {
                        MultiOp::GetData(get) => match self.get_data(reader, &get.path, false) {
                            Ok(response) => MultiResult::GetData(response),
                            Err(err) => MultiResult::Error(err),
                        },
                        MultiOp::GetChildren(get) => match self.get_children(reader, &get.path, false) {
                            Ok((children, _)) => MultiResult::GetChildren(GetChildrenResponse { children }),
                            Err(err) => MultiResult::Error(err),
                        },
                        _ => MultiResult::Error(ErrorCode::BadArguments),
                    })
                    .collect();
                ReadOutcome::ok(Response::Multi(results))
            }
            Request::Sync(sync) => ReadOutcome::ok(Response::Sync(SyncResponse { path: sync.path.clone() })),
            Request::CheckWatches(check) => match WatcherType::from_code(check.watcher_type) {
                None => ReadOutcome::error(ErrorCode::BadArguments),
                Some(kind) => match self.watches.check_watch(&check.path, kind, reader.watcher) {
                    Ok(()) => ReadOutcome::ok(Response::Empty),
                    Err(err) => ReadOutcome::error(err),
                },
            },
            Request::RemoveWatches(remove) => match WatcherType::from_code(remove.watcher_type) {
                None => ReadOutcome::error(ErrorCode::BadArguments),
                Some(kind) => match self.watches.remove_watches(&remove.path, kind, reader.watcher) {
                    Ok(()) => ReadOutcome::ok(Response::Empty),
                    Err(err) => ReadOutcome::error(err),
                },
            },
            Request::AddWatch(add) => match AddWatchMode::from_code(add.mode) {
                None => ReadOutcome::error(ErrorCode::BadArguments),
                Some(mode) => match self.watches.add_persistent_watch(&add.path, reader.watcher, mode) {
                    Ok(()) => ReadOutcome::ok(Response::AddWatch(ErrorResponse { err: 0 })),
                    Err(err) => ReadOutcome::error(err),
                },
            },
            Request::SetWatches(set) => self.set_watches(reader, set.relative_zxid, SetWatchesPaths::from(set)),
            Request::SetWatches2(set) => self.set_watches(reader, set.relative_zxid, SetWatchesPaths::from(set)),
            Request::WhoAmI => {
                ReadOutcome::ok(Response::WhoAmI(WhoAmIResponse { client_info: acl::client_infos(reader.auth_ids) }))
            }
            _ => ReadOutcome::error(ErrorCode::Unimplemented),
        }
    }

    /// Checks the tree's and the watch manager's internal consistency; drivers call it
    /// after every event in debug builds (DESIGN.md rule 5). Panics with a description.
    pub fn check_invariants(&self) {
        if let Err(problem) = self.tree.check_invariants() {
            panic!("tree invariant broken: {problem}");
        }
        self.watches.check_invariants();
    }

    /// Whether a request is served by [`Database::read`].
    pub fn is_read(request: &Request) -> bool {
        matches!(
            request,
            Request::Exists(_)
                | Request::GetData(_)
                | Request::GetChildren(_)
                | Request::GetChildren2(_)
                | Request::GetAcl(_)
                | Request::GetAllChildrenNumber(_)
                | Request::GetEphemerals(_)
                | Request::MultiRead(_)
                | Request::Sync(_)
                | Request::CheckWatches(_)
                | Request::RemoveWatches(_)
                | Request::AddWatch(_)
                | Request::SetWatches(_)
                | Request::SetWatches2(_)
                | Request::WhoAmI
        )
    }

    fn get_data(&mut self, reader: &Reader<'_>, path: &str, watch: bool) -> Result<GetDataResponse, ErrorCode> {
        let node = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        acl::check_acl(self.tree.acl(node), perms::READ, reader.auth_ids)?;
        let response = GetDataResponse { data: node.data.clone(), stat: node.client_stat() };
        if watch {
            self.watches.add_data_watch(path, reader.watcher)?;
        }
        Ok(response)
    }

    fn get_children(
        &mut self,
        reader: &Reader<'_>,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, crate::proto::Stat), ErrorCode> {
        let node = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        acl::check_acl(self.tree.acl(node), perms::READ, reader.auth_ids)?;
        let stat = node.client_stat();
        let children = self.tree.children(path).unwrap_or_default();
        if watch {
            self.watches.add_child_watch(path, reader.watcher)?;
        }
        Ok((children, stat))
    }

    fn set_watches(&mut self, reader: &Reader<'_>, relative_zxid: i64, paths: SetWatchesPaths<'_>) -> ReadOutcome {
        let tree = &self.tree;
        let lookup =
            |path: &str| tree.get(path).map(|node| NodeZxids { mzxid: node.stat.mzxid, pzxid: node.stat.pzxid });
        match self.watches.set_watches(relative_zxid, paths, reader.watcher, lookup) {
            Ok(events) => ReadOutcome { err: ErrorCode::Ok, response: Response::Empty, events },
            Err(err) => ReadOutcome::error(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{CreateRequest, EventType, ExistsRequest, GetDataRequest, SetWatches};
    use crate::request::{PrepareConfig, Preparer, RequestContext};

    struct Harness {
        database: Database,
        preparer: Preparer,
        zxid: i64,
    }

    impl Harness {
        fn new() -> Self {
            Harness { database: Database::default(), preparer: Preparer::new(PrepareConfig::default()), zxid: 0 }
        }

        fn write(&mut self, session_id: i64, ids: &[Id], request: &Request) -> ApplyOutcome {
            self.zxid += 1;
            let context = RequestContext { session_id, auth_ids: ids, zxid: self.zxid };
            let txn = self.preparer.prepare(&self.database.tree, &context, request.clone());
            let header = TxnHeader { session_id, cxid: 1, zxid: self.zxid, time_ms: 100 };
            let readers: BTreeMap<WatcherId, Vec<Id>> = [(1, Vec::new()), (2, vec![digest_id()])].into_iter().collect();
            let can_read = |watcher: WatcherId, acl: &[Acl]| {
                acl::check_acl(acl, perms::READ, readers.get(&watcher).map_or(&[][..], Vec::as_slice)).is_ok()
            };
            let outcome = self.database.apply(&header, &txn, &can_read);
            self.preparer.committed(self.zxid);
            outcome
        }
    }

    fn digest_id() -> Id {
        Id { scheme: "digest".into(), id: acl::generate_digest("alice:secret") }
    }

    fn create(path: &str, acl: Vec<Acl>) -> Request {
        Request::Create(CreateRequest { path: path.into(), data: Some(b"v".to_vec()), acl, flags: 0 })
    }

    #[test]
    fn exists_watch_on_a_missing_node_fires_on_create() {
        let mut harness = Harness::new();
        let reader = Reader { watcher: 1, session_id: 9, auth_ids: &[] };
        let outcome =
            harness.database.read(&reader, &Request::Exists(ExistsRequest { path: "/a".into(), watch: true }));
        assert_eq!(outcome.err, ErrorCode::NoNode);
        let applied = harness.write(9, &[], &create("/a", acl::open_acl_unsafe()));
        assert_eq!(applied.notifications.len(), 1);
        assert_eq!(applied.notifications[0].0, 1);
        assert_eq!(applied.notifications[0].1.event_type, EventType::NodeCreated.code());
        assert_eq!(harness.database.last_processed_zxid(), 1);
    }

    #[test]
    fn notifications_are_dropped_for_watchers_without_read() {
        let mut harness = Harness::new();
        let only_alice = vec![Acl { perms: perms::ALL, id: digest_id() }];
        harness.write(9, &[digest_id()], &create("/secret", only_alice));
        for watcher in [1, 2] {
            let ids = if watcher == 2 { vec![digest_id()] } else { Vec::new() };
            let reader = Reader { watcher, session_id: 9, auth_ids: &ids };
            harness.database.watches.add_data_watch("/secret", watcher).unwrap();
            let outcome = harness
                .database
                .read(&reader, &Request::GetData(GetDataRequest { path: "/secret".into(), watch: false }));
            assert_eq!(outcome.err, if watcher == 2 { ErrorCode::Ok } else { ErrorCode::NoAuth });
        }
        let applied = harness.write(
            9,
            &[digest_id()],
            &Request::SetData(crate::proto::SetDataRequest { path: "/secret".into(), data: None, version: -1 }),
        );
        assert_eq!(applied.notifications.iter().map(|(watcher, _)| *watcher).collect::<Vec<_>>(), vec![2]);
        // Watcher 1's one-time watch was consumed even though it heard nothing.
        assert!(harness.database.watches.check_watch("/secret", WatcherType::Data, 1).is_err());
    }

    #[test]
    fn set_watches_catches_up_on_missed_changes() {
        let mut harness = Harness::new();
        harness.write(9, &[], &create("/a", acl::open_acl_unsafe()));
        let reader = Reader { watcher: 1, session_id: 9, auth_ids: &[] };
        let set = SetWatches {
            relative_zxid: 0,
            data_watches: vec!["/a".into(), "/gone".into()],
            exist_watches: vec![],
            child_watches: vec![],
        };
        let outcome = harness.database.read(&reader, &Request::SetWatches(set));
        let kinds: Vec<(i32, String)> = outcome.events.iter().map(|e| (e.event_type, e.path.clone())).collect();
        assert_eq!(
            kinds,
            vec![(EventType::NodeDataChanged.code(), "/a".into()), (EventType::NodeDeleted.code(), "/gone".into())]
        );
    }

    #[test]
    fn sessions_follow_create_and_close_txns() {
        let mut harness = Harness::new();
        harness.zxid += 1;
        let header = TxnHeader { session_id: 5, cxid: 0, zxid: harness.zxid, time_ms: 0 };
        harness.database.apply(&header, &Txn::CreateSession { timeout_ms: 4000 }, &|_, _| true);
        assert_eq!(harness.database.sessions().get(&5), Some(&4000));
        harness.write(5, &[], &Request::CloseSession);
        assert!(harness.database.sessions().is_empty());
    }
}
