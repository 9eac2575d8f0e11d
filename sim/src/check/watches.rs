//! ZooKeeper's watch guarantees, read from what each client saw, against the committed
//! ledger (every txn ever committed, in zxid order, which is the order every server applies
//! them in):
//!
//! - **event before newer data**: "a client will see a watch event for a znode it is
//!   watching before seeing the new data for that znode" (ZooKeeper Programmer's Guide,
//!   "ZooKeeper Watches"). Precisely: once a watch is registered in the state at zxid R
//!   (the zxid in the header of the reply that set it), let T be the first committed txn
//!   after R that changes what the watch covers; the client must receive the event for T
//!   before any reply whose header carries a zxid >= T, on any connection of its session.
//!   The check runs over every reply, pings included, so a trigger missed altogether shows
//!   up at the next reply once the client's server has applied T.
//! - **no missed trigger across reconnects**: a client that reconnects with its session sends
//!   setWatches relative to the last zxid L it saw; the server (in the state at S, the
//!   zxid of the setWatches reply) answers at once, with no zxid (-1), for each watch whose
//!   node changed after L: a data watch whose node is gone (NodeDeleted) or has mzxid > L
//!   (NodeDataChanged); an exist watch whose node exists (NodeCreated); a child watch whose
//!   node is gone or has pzxid > L. Every other watch is registered again at S. Those
//!   events, exactly, must arrive before the setWatches reply. This is ZooKeeper's rule with
//!   its known gaps, which are not violations: an exist watch misses a node created and
//!   deleted again while the client was away, and persistent watches get no catch-up at all
//!   (they fire again for changes after S).
//! - **at most once**: a one-time watch fires once per registration, a persistent watch once
//!   per matching change; an event no registration expects (a second firing, or an event
//!   for a change the watch does not cover) is a violation.
//! - **persistent watches** fire for every matching change after their registration, each
//!   before any reply at or past that change's zxid, while the connection they were set on
//!   (or re-registered on) lasts.
//!
//! What a change fires follows ZooKeeper's `WatchManager` (see `zk_core::watch`): a create
//! fires NodeCreated on the node's data watches (exist watches, persistent watches, recursive
//! watches on it or an ancestor) and NodeChildrenChanged on its parent's child and persistent
//! watches; a delete fires NodeDeleted on the node's data, child, persistent and recursive
//! watches and NodeChildrenChanged on its parent's; a setData fires NodeDataChanged on the
//! node's data, persistent and recursive watches. One connection hears one event per change
//! even when several of its watches cover it.
//!
//! Watches end with their session (expiry or close). The check needs the whole ledger; when
//! it is not known whole (a txn trimmed from every history between two looks), it is skipped.

use std::collections::BTreeMap;

use zk_core::node::ConnectionId;
use zk_core::proto::{EventType, XID_SET_WATCHES};
use zk_core::txn::LogEntry;
use zk_core::txn::Txn;

use crate::history::{ClientId, Observation, ObservationKind, WatchKind};
use crate::trace;

/// How a txn changed one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChangeKind {
    Created,
    Deleted,
    DataChanged,
}

/// One change to the tree, in the order the txns apply.
#[derive(Clone, Debug)]
struct Change {
    zxid: i64,
    kind: ChangeKind,
    path: String,
}

fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let cut = path.rfind('/')?;
    Some(if cut == 0 { "/" } else { &path[..cut] })
}

fn is_under(path: &str, ancestor: &str) -> bool {
    path == ancestor || ancestor == "/" || path.strip_prefix(ancestor).is_some_and(|rest| rest.starts_with('/'))
}

/// The changes a committed txn made, in apply order.
fn flatten(zxid: i64, txn: &Txn, out: &mut Vec<Change>) {
    match txn {
        Txn::Create { path, .. } => out.push(Change { zxid, kind: ChangeKind::Created, path: path.clone() }),
        Txn::Delete { path, .. } => out.push(Change { zxid, kind: ChangeKind::Deleted, path: path.clone() }),
        Txn::SetData { path, .. } => out.push(Change { zxid, kind: ChangeKind::DataChanged, path: path.clone() }),
        Txn::Multi(txns) => {
            // All or nothing: a multi holding an error changed nothing.
            if !txns.iter().any(|txn| matches!(txn, Txn::Error(_))) {
                for txn in txns {
                    flatten(zxid, txn, out);
                }
            }
        }
        Txn::CloseSession { paths_to_delete } => {
            for path in paths_to_delete {
                out.push(Change { zxid, kind: ChangeKind::Deleted, path: path.clone() });
            }
        }
        Txn::SetAcl { .. } | Txn::Check { .. } | Txn::CreateSession { .. } | Txn::Error(_) => {}
    }
}

/// The ledger as changes to nodes.
struct Changes {
    list: Vec<Change>,
    /// Per path, the indexes of the changes to that node.
    by_path: BTreeMap<String, Vec<usize>>,
    /// Per path, the indexes of the creations and deletions of its children.
    by_parent: BTreeMap<String, Vec<usize>>,
}

/// A node's state at some zxid, as setWatches judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NodeAt {
    exists: bool,
    mzxid: i64,
    pzxid: i64,
}

impl Changes {
    fn new(committed: &BTreeMap<i64, LogEntry>) -> Changes {
        let mut list = Vec::new();
        for (zxid, entry) in committed {
            flatten(*zxid, &entry.txn, &mut list);
        }
        let mut by_path: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut by_parent: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, change) in list.iter().enumerate() {
            by_path.entry(change.path.clone()).or_default().push(index);
            if change.kind != ChangeKind::DataChanged {
                if let Some(parent) = parent_of(&change.path) {
                    by_parent.entry(parent.to_owned()).or_default().push(index);
                }
            }
        }
        Changes { list, by_path, by_parent }
    }

    /// The index of the first change after `zxid`.
    fn after(&self, zxid: i64) -> usize {
        self.list.partition_point(|change| change.zxid <= zxid)
    }

    /// The node at `path` once every txn up to `zxid` applied.
    fn node_at(&self, path: &str, zxid: i64) -> NodeAt {
        // The root and ZooKeeper's own nodes exist from the start.
        let mut node = NodeAt { exists: path == "/" || is_under(path, "/zookeeper"), mzxid: 0, pzxid: 0 };
        let upto = |indexes: Option<&Vec<usize>>| -> Vec<usize> {
            indexes
                .map(|indexes| indexes.iter().copied().take_while(|&i| self.list[i].zxid <= zxid).collect())
                .unwrap_or_default()
        };
        for index in upto(self.by_path.get(path)) {
            let change = &self.list[index];
            match change.kind {
                ChangeKind::Created => {
                    node = NodeAt { exists: true, mzxid: change.zxid, pzxid: change.zxid };
                }
                ChangeKind::Deleted => node.exists = false,
                ChangeKind::DataChanged => node.mzxid = change.zxid,
            }
        }
        for index in upto(self.by_parent.get(path)) {
            node.pzxid = node.pzxid.max(self.list[index].zxid);
        }
        node
    }
}

/// The event `kind` on `path` expects for `change`, if the change fires it.
fn fires(kind: WatchKind, path: &str, change: &Change) -> Option<(EventType, String)> {
    let event = |change_kind: ChangeKind| match change_kind {
        ChangeKind::Created => EventType::NodeCreated,
        ChangeKind::Deleted => EventType::NodeDeleted,
        ChangeKind::DataChanged => EventType::NodeDataChanged,
    };
    let on_node = change.path == path;
    let on_child = change.kind != ChangeKind::DataChanged && parent_of(&change.path) == Some(path);
    match kind {
        WatchKind::Data | WatchKind::Exist => on_node.then(|| (event(change.kind), path.to_owned())),
        WatchKind::Child | WatchKind::Persistent => {
            if on_node && (kind == WatchKind::Persistent || change.kind == ChangeKind::Deleted) {
                Some((event(change.kind), path.to_owned()))
            } else if on_child {
                Some((EventType::NodeChildrenChanged, path.to_owned()))
            } else {
                None
            }
        }
        WatchKind::PersistentRecursive => {
            is_under(&change.path, path).then(|| (event(change.kind), change.path.clone()))
        }
    }
}

/// A watch the client holds, and the events it is due.
#[derive(Clone, Debug)]
struct Registration {
    /// The zxid it was (last) registered at, for messages.
    registered_zxid: i64,
    /// The first change not yet looked at.
    cursor: usize,
    /// The zxid of the txn whose events are due, and those events (empty: none due yet).
    due_zxid: i64,
    due: Vec<(EventType, String)>,
}

impl Registration {
    fn new(changes: &Changes, kind: WatchKind, path: &str, zxid: i64) -> Registration {
        let mut registration =
            Registration { registered_zxid: zxid, cursor: changes.after(zxid), due_zxid: 0, due: Vec::new() };
        registration.advance(changes, kind, path);
        registration
    }

    /// Finds the events of the next txn that fires the watch: for a one-time watch the
    /// first change only, for a persistent one every change of that txn it covers.
    fn advance(&mut self, changes: &Changes, kind: WatchKind, path: &str) {
        debug_assert!(self.due.is_empty());
        while self.cursor < changes.list.len() {
            let change = &changes.list[self.cursor];
            self.cursor += 1;
            let Some(event) = fires(kind, path, change) else { continue };
            self.due_zxid = change.zxid;
            self.due.push(event);
            if !kind.is_persistent() {
                return;
            }
            while let Some(next) = changes.list.get(self.cursor).filter(|next| next.zxid == self.due_zxid) {
                if let Some(event) = fires(kind, path, next) {
                    self.due.push(event);
                }
                self.cursor += 1;
            }
            return;
        }
    }
}

/// A setWatches sent and not yet answered.
#[derive(Clone, Debug)]
struct Reset {
    relative_zxid: i64,
    watches: Vec<(WatchKind, String)>,
    /// Catch-up events (zxid -1) received meanwhile.
    received: Vec<(EventType, String)>,
}

/// What the checker knows of one client.
#[derive(Clone, Debug, Default)]
struct ClientWatches {
    session_id: i64,
    connection: Option<ConnectionId>,
    registrations: BTreeMap<(WatchKind, String), Registration>,
    reset: Option<Reset>,
}

struct Checker<'a> {
    changes: &'a Changes,
    clients: BTreeMap<ClientId, ClientWatches>,
    violations: Vec<String>,
}

/// Checks the watch guarantees; `ledger_complete` says whether `committed` holds every txn
/// ever committed (otherwise nothing is checked).
pub fn check(observations: &[Observation], committed: &BTreeMap<i64, LogEntry>, ledger_complete: bool) -> Vec<String> {
    if !ledger_complete {
        return Vec::new();
    }
    let changes = Changes::new(committed);
    let mut checker = Checker { changes: &changes, clients: BTreeMap::new(), violations: Vec::new() };
    for observation in observations {
        checker.observe(observation);
    }
    checker.violations
}

impl Checker<'_> {
    fn observe(&mut self, observation: &Observation) {
        let client = observation.client;
        let at = trace::Time(observation.time_ms);
        let state = self.clients.entry(client).or_default();
        match &observation.kind {
            ObservationKind::Connected { connection, session_id, .. } => {
                if state.session_id != *session_id {
                    *state = ClientWatches { session_id: *session_id, ..ClientWatches::default() };
                }
                state.connection = Some(*connection);
                state.reset = None;
            }
            ObservationKind::ConnectionLost { connection } => {
                if state.connection == Some(*connection) {
                    state.connection = None;
                    state.reset = None;
                }
            }
            ObservationKind::SessionExpired { .. } | ObservationKind::SessionClosed { .. } => {
                *state = ClientWatches::default();
            }
            ObservationKind::WatchRegistered { connection, kind, path, zxid } => {
                if state.connection != Some(*connection) {
                    return;
                }
                // The server holds one entry per watch: while one is registered, setting it
                // again changes nothing.
                let changes = self.changes;
                state
                    .registrations
                    .entry((*kind, path.clone()))
                    .or_insert_with(|| Registration::new(changes, *kind, path, *zxid));
            }
            ObservationKind::WatchesReset { connection, relative_zxid, watches } => {
                if state.connection == Some(*connection) {
                    state.reset =
                        Some(Reset { relative_zxid: *relative_zxid, watches: watches.clone(), received: Vec::new() });
                }
            }
            ObservationKind::WatchEvent { connection, zxid, event_type, path } => {
                if state.connection != Some(*connection) {
                    return;
                }
                if *zxid == -1 {
                    match &mut state.reset {
                        Some(reset) => reset.received.push((*event_type, path.clone())),
                        None => self.violations.push(format!(
                            "client {client} at {at}: a catch-up event {event_type:?} on {path} (zxid -1) without \
                             a setWatches outstanding"
                        )),
                    }
                    return;
                }
                let event = (*event_type, path.clone());
                let mut matched = false;
                let mut emptied = Vec::new();
                for (key, registration) in &mut state.registrations {
                    if registration.due_zxid != *zxid {
                        continue;
                    }
                    if let Some(position) = registration.due.iter().position(|due| *due == event) {
                        registration.due.remove(position);
                        matched = true;
                        if registration.due.is_empty() {
                            emptied.push(key.clone());
                        }
                    }
                }
                if !matched {
                    let watches: Vec<String> = state
                        .registrations
                        .iter()
                        .map(|((kind, path), registration)| {
                            format!(
                                "{kind:?} {path} due {:?} at {}",
                                registration.due,
                                trace::zxid(registration.due_zxid)
                            )
                        })
                        .collect();
                    self.violations.push(format!(
                        "client {client} at {at}: event {event_type:?} on {path} for txn {} that no watch of its \
                         session expects (fired twice, or for a change no watch covers); its watches: {watches:?}",
                        trace::zxid(*zxid)
                    ));
                }
                for key in emptied {
                    if key.0.is_persistent() {
                        let registration = state.registrations.get_mut(&key).expect("just seen");
                        registration.advance(self.changes, key.0, &key.1);
                    } else {
                        state.registrations.remove(&key);
                    }
                }
            }
            ObservationKind::Reply { connection, xid, zxid, .. } => {
                if state.connection != Some(*connection) {
                    return;
                }
                if *xid == XID_SET_WATCHES {
                    if let Some(reset) = state.reset.take() {
                        let found = reset_watches(self.changes, state, reset, *zxid);
                        self.violations
                            .extend(found.into_iter().map(|problem| format!("client {client} at {at}: {problem}")));
                    }
                }
                if *zxid <= 0 {
                    return;
                }
                let late: Vec<(WatchKind, String)> = state
                    .registrations
                    .iter()
                    .filter(|(_, registration)| !registration.due.is_empty() && registration.due_zxid <= *zxid)
                    .map(|(key, _)| key.clone())
                    .collect();
                for key in late {
                    let registration = state.registrations.remove(&key).expect("just seen");
                    self.violations.push(format!(
                        "client {client} at {at}: a reply (xid {xid}) carries zxid {} but the {:?} watch on {} \
                         (registered at {}) has not yet delivered {:?} for txn {} (event before newer data)",
                        trace::zxid(*zxid),
                        key.0,
                        key.1,
                        trace::zxid(registration.registered_zxid),
                        registration.due,
                        trace::zxid(registration.due_zxid)
                    ));
                }
            }
            ObservationKind::Sent { .. }
            | ObservationKind::Undecodable { .. }
            | ObservationKind::RecipeHeld { .. }
            | ObservationKind::RecipeReleased { .. } => {}
        }
    }
}

/// The setWatches reply came, in the state at `zxid`: the catch-up events received must
/// be exactly those ZooKeeper's rule gives, and every other watch it names is registered
/// again at `zxid`.
fn reset_watches(changes: &Changes, state: &mut ClientWatches, reset: Reset, zxid: i64) -> Vec<String> {
    let relative = reset.relative_zxid;
    let mut expected: Vec<(EventType, String)> = Vec::new();
    for (kind, path) in &reset.watches {
        let key = (*kind, path.clone());
        if !state.registrations.contains_key(&key) {
            // A watch the client believes in and the checker does not (it fired, or was
            // already reported): nothing to hold it to.
            continue;
        }
        let node = changes.node_at(path, zxid);
        let catch_up = match kind {
            WatchKind::Data if !node.exists => Some(EventType::NodeDeleted),
            WatchKind::Data if node.mzxid > relative => Some(EventType::NodeDataChanged),
            WatchKind::Exist if node.exists => Some(EventType::NodeCreated),
            WatchKind::Child if !node.exists => Some(EventType::NodeDeleted),
            WatchKind::Child if node.pzxid > relative => Some(EventType::NodeChildrenChanged),
            _ => None,
        };
        match catch_up {
            Some(event_type) => {
                expected.push((event_type, path.clone()));
                state.registrations.remove(&key);
            }
            None => {
                state.registrations.insert(key, Registration::new(changes, *kind, path, zxid));
            }
        }
    }
    let mut received = reset.received;
    let mut problems = Vec::new();
    for event in expected {
        match received.iter().position(|got| *got == event) {
            Some(position) => {
                received.remove(position);
            }
            None => problems.push(format!(
                "setWatches relative to {} answered at {} without the catch-up event {:?} on {} (missed trigger)",
                trace::zxid(relative),
                trace::zxid(zxid),
                event.0,
                event.1
            )),
        }
    }
    for (event_type, path) in received {
        problems.push(format!(
            "setWatches relative to {} answered at {} with an unexpected catch-up event {event_type:?} on {path}",
            trace::zxid(relative),
            trace::zxid(zxid)
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_core::proto::OpCode;
    use zk_core::txn::{CreateKind, TxnHeader};

    fn ledger(txns: Vec<Txn>) -> BTreeMap<i64, LogEntry> {
        txns.into_iter()
            .enumerate()
            .map(|(index, txn)| {
                let zxid = index as i64 + 1;
                let header = TxnHeader { session_id: 9, cxid: 1, zxid, time_ms: 0 };
                (zxid, LogEntry { prev_zxid: zxid - 1, header, txn })
            })
            .collect()
    }

    fn create(path: &str) -> Txn {
        Txn::Create {
            op: OpCode::Create,
            path: path.into(),
            data: None,
            acl: vec![],
            kind: CreateKind::Persistent,
            parent_cversion: -1,
        }
    }

    fn set(path: &str) -> Txn {
        Txn::SetData { path: path.into(), data: None, version: 1 }
    }

    fn at(time_ms: u64, kind: ObservationKind) -> Observation {
        Observation { time_ms, client: 0, kind }
    }

    fn connected(connection: ConnectionId) -> Observation {
        at(0, ObservationKind::Connected { connection, server: 1, session_id: 7, last_zxid_seen: 0 })
    }

    fn registered(connection: ConnectionId, kind: WatchKind, path: &str, zxid: i64) -> Observation {
        at(1, ObservationKind::WatchRegistered { connection, kind, path: path.into(), zxid })
    }

    fn event(connection: ConnectionId, zxid: i64, event_type: EventType, path: &str) -> Observation {
        at(2, ObservationKind::WatchEvent { connection, zxid, event_type, path: path.into() })
    }

    fn reply(connection: ConnectionId, xid: i32, zxid: i64) -> Observation {
        at(3, ObservationKind::Reply { connection, xid, zxid, err: 0 })
    }

    /// /a created at 1, /a set at 2 and 3, /a/b created at 4.
    fn four_txns() -> BTreeMap<i64, LogEntry> {
        ledger(vec![create("/a"), set("/a"), set("/a"), create("/a/b")])
    }

    #[test]
    fn events_delivered_before_newer_data_pass() {
        let observations = vec![
            connected(1),
            registered(1, WatchKind::Data, "/a", 1),
            registered(1, WatchKind::Persistent, "/a", 1),
            reply(1, 5, 1),
            event(1, 2, EventType::NodeDataChanged, "/a"),
            reply(1, 6, 2),
            event(1, 3, EventType::NodeDataChanged, "/a"),
            event(1, 4, EventType::NodeChildrenChanged, "/a"),
            reply(1, 7, 4),
        ];
        assert_eq!(check(&observations, &four_txns(), true), Vec::<String>::new());
    }

    #[test]
    fn planted_bug_newer_data_before_the_event() {
        let observations = vec![
            connected(1),
            registered(1, WatchKind::Data, "/a", 1),
            reply(1, 6, 2),
            event(1, 2, EventType::NodeDataChanged, "/a"),
        ];
        let violations = check(&observations, &four_txns(), true);
        assert!(violations[0].contains("event before newer data"), "{violations:?}");
        assert!(violations[1].contains("no watch of its session expects"), "{violations:?}");
    }

    #[test]
    fn planted_bug_a_one_time_watch_fires_twice() {
        let observations = vec![
            connected(1),
            registered(1, WatchKind::Data, "/a", 1),
            event(1, 2, EventType::NodeDataChanged, "/a"),
            event(1, 3, EventType::NodeDataChanged, "/a"),
        ];
        let violations = check(&observations, &four_txns(), true);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("fired twice"), "{violations:?}");
    }

    #[test]
    fn set_watches_catches_up_and_a_client_that_skips_it_is_caught() {
        // The watch was set at 1; the client last saw 1 and reconnects; the server is at 3.
        let lost = at(2, ObservationKind::ConnectionLost { connection: 1 });
        let reset = at(
            3,
            ObservationKind::WatchesReset {
                connection: 2,
                relative_zxid: 1,
                watches: vec![(WatchKind::Data, "/a".into()), (WatchKind::Child, "/a".into())],
            },
        );
        let good = vec![
            connected(1),
            registered(1, WatchKind::Data, "/a", 1),
            registered(1, WatchKind::Child, "/a", 1),
            lost.clone(),
            connected(2),
            reset.clone(),
            event(2, -1, EventType::NodeDataChanged, "/a"),
            reply(2, XID_SET_WATCHES, 3),
            event(2, 4, EventType::NodeChildrenChanged, "/a"),
            reply(2, 8, 4),
        ];
        assert_eq!(check(&good, &four_txns(), true), Vec::<String>::new());
        // Without the catch-up event.
        let mut missed = good.clone();
        missed.remove(6);
        let violations = check(&missed, &four_txns(), true);
        assert!(violations[0].contains("missed trigger"), "{violations:?}");
        // Without setWatches at all: the next reply carries newer data than the watch saw.
        let skipped = vec![connected(1), registered(1, WatchKind::Data, "/a", 1), lost, connected(2), reply(2, 8, 3)];
        let violations = check(&skipped, &four_txns(), true);
        assert!(violations[0].contains("event before newer data"), "{violations:?}");
    }

    #[test]
    fn an_exist_watch_misses_a_node_created_and_deleted_while_away_as_zookeeper_does() {
        let txns = ledger(vec![create("/x"), Txn::Delete { op: OpCode::Delete, path: "/x".into() }, create("/y")]);
        let observations = vec![
            connected(1),
            registered(1, WatchKind::Exist, "/x", 0),
            at(2, ObservationKind::ConnectionLost { connection: 1 }),
            connected(2),
            at(
                3,
                ObservationKind::WatchesReset {
                    connection: 2,
                    relative_zxid: 0,
                    watches: vec![(WatchKind::Exist, "/x".into())],
                },
            ),
            reply(2, XID_SET_WATCHES, 3),
        ];
        assert_eq!(check(&observations, &txns, true), Vec::<String>::new());
    }

    #[test]
    fn recursive_watches_see_every_descendant_and_the_session_end_drops_watches() {
        let observations = vec![
            connected(1),
            registered(1, WatchKind::PersistentRecursive, "/", 0),
            event(1, 1, EventType::NodeCreated, "/a"),
            event(1, 2, EventType::NodeDataChanged, "/a"),
            event(1, 3, EventType::NodeDataChanged, "/a"),
            at(4, ObservationKind::SessionExpired { session_id: 7 }),
            reply(1, 9, 4),
        ];
        assert_eq!(check(&observations, &four_txns(), true), Vec::<String>::new());
        let node = Changes::new(&four_txns()).node_at("/a", 4);
        assert_eq!(node, NodeAt { exists: true, mzxid: 3, pzxid: 4 });
    }
}
