//! The server-side watch manager: which connection watches which znode, and which
//! notifications a change to the tree sends.
//!
//! # Model
//!
//! A watch belongs to a connection ([`WatcherId`]), not to a session: ZooKeeper registers
//! watches on the `ServerCnxn`, drops them all when the connection closes, and a client
//! that reconnects re-registers them with setWatches. The manager keeps ZooKeeper's two
//! tables ([`WatchTable`]):
//!
//! - the **data** table, fed by getData and exists (an exists on a missing node leaves a
//!   data watch there, which a later create fires), and by addWatch;
//! - the **child** table, fed by getChildren and by addWatch in persistent mode.
//!
//! An entry of a table is one (path, connection) pair carrying a set of [`WatchMode`]s, as
//! ZooKeeper's `WatchStats` does: a connection that calls getData with a watch and then
//! addWatch on the same path has one data entry holding both the standard and the
//! persistent mode. addWatch in persistent mode registers in both tables; in persistent
//! recursive mode it registers in the data table only, which is why recursive watches never
//! see `NodeChildrenChanged`.
//!
//! # What the tree-applying code must call
//!
//! After applying each change to the tree (so that every sub-operation of a multi, and each
//! ephemeral deleted by a closeSession, makes its own call, in application order):
//!
//! | change | call |
//! |---|---|
//! | create (every create flavour, container, TTL) | [`WatchManager::node_created`] with the created path (sequential suffix included) |
//! | delete (delete, deleteContainer, TTL and container expiry, each ephemeral of a closed session) | [`WatchManager::node_deleted`] with the deleted path |
//! | setData (and reconfig, which is a setData of `/zookeeper/config`) | [`WatchManager::node_data_changed`] |
//! | setACL, check, a failed multi | nothing: ZooKeeper triggers no watch for them |
//!
//! Each call returns the notifications to send, in a deterministic order: the table
//! triggers in ZooKeeper's order and, inside one trigger, connections by ascending id. Every
//! event carries state SyncConnected. ZooKeeper 3.9 puts the zxid of the applied txn in the
//! notification's reply header; notifications from [`WatchManager::set_watches`] have no
//! zxid and ZooKeeper sends -1 there (`WatchedEvent.NO_ZXID`).
//!
//! # Delivery is filtered by ACL, the watch is consumed regardless
//!
//! ZooKeeper's `ServerCnxn.process` drops a notification when the connection lacks READ on
//! the znode the event names: the node itself for created, deleted and data-changed events
//! (for a delete, the ACL it had before deletion), and the parent for
//! `NodeChildrenChanged`; so in every case, the znode named by the event's path. A one-time
//! watch is removed even when its notification is dropped this way. The manager knows no
//! ACLs, so the caller filters the returned notifications; setWatches events are never
//! filtered (ZooKeeper passes no ACL for them).
//!
//! # Limit
//!
//! The total number of entries over both tables is bounded by
//! [`WatchManager::watches_max`]. A registration that would add entries past it is refused
//! whole with [`ErrorCode::ThrottledOp`] and changes nothing; adding a mode to an entry that
//! already exists never counts against the limit.
//!
//! # Removal events
//!
//! ZooKeeper's server sends nothing when removeWatches succeeds: the client library itself
//! queues `DataWatchRemoved`, `ChildWatchRemoved` or `PersistentWatchRemoved` for its local
//! watchers once the reply arrives (`ClientCnxn.finishPacket`). So
//! [`WatchManager::remove_watches`] only answers Ok or NoWatcher.

use std::collections::{BTreeMap, BTreeSet};

use crate::path;
use crate::proto::{AddWatchMode, EventType, KeeperState, SetWatches, SetWatches2, WatcherEvent, WatcherType};
use crate::{ErrorCode, ZkResult};

/// A client connection as the driver numbers it; watches belong to connections, as they
/// belong to `ServerCnxn` in ZooKeeper.
pub type WatcherId = u64;

/// The default for [`WatchManager::watches_max`]: four million watches, above what large
/// ZooKeeper ensembles report in practice, and a bound of roughly a gigabyte of memory
/// even with long paths.
pub const WATCHES_MAX_DEFAULT: usize = 4_000_000;

/// How a watch behaves when it fires (ZooKeeper's `WatcherMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchMode {
    /// A one-time watch from getData, exists, getChildren or setWatches: removed when it
    /// fires.
    Standard,
    /// A persistent watch from addWatch mode 0: stays until removed, and fires only for
    /// changes to its own path.
    Persistent,
    /// A persistent recursive watch from addWatch mode 1: stays until removed, and fires
    /// for created, deleted and data-changed events on its path and every path below it.
    PersistentRecursive,
}

impl WatchMode {
    fn bit(self) -> u8 {
        match self {
            WatchMode::Standard => 1,
            WatchMode::Persistent => 2,
            WatchMode::PersistentRecursive => 4,
        }
    }
}

impl From<AddWatchMode> for WatchMode {
    /// Maps addWatch's wire mode to the watch mode it registers, as
    /// `WatcherMode.fromZooDef` does.
    fn from(mode: AddWatchMode) -> WatchMode {
        match mode {
            AddWatchMode::Persistent => WatchMode::Persistent,
            AddWatchMode::PersistentRecursive => WatchMode::PersistentRecursive,
        }
    }
}

/// One of ZooKeeper's two watch tables, named where a caller must choose (reports and
/// [`WatchManager::contains`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchTable {
    /// Watches from getData and exists, persistent and persistent recursive watches.
    /// ZooKeeper's wchs, wchc and wchp (and the admin server's watch commands) report this
    /// table only.
    Data,
    /// Watches from getChildren and persistent (non-recursive) watches.
    Child,
}

/// A node's zxids as setWatches needs them to decide whether the client missed a change
/// while it was disconnected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeZxids {
    /// The zxid of the node's last data change (`Stat.mzxid`).
    pub mzxid: i64,
    /// The zxid of the last change to the node's children (`Stat.pzxid`).
    pub pzxid: i64,
}

/// The five path lists of a setWatches or setWatches2 request, borrowed, so both request
/// versions reach [`WatchManager::set_watches`] the same way (ZooKeeper passes empty
/// persistent lists for the old setWatches).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetWatchesPaths<'a> {
    /// Paths the client watched with getData.
    pub data: &'a [String],
    /// Paths the client watched with exists while they were missing.
    pub exist: &'a [String],
    /// Paths the client watched with getChildren.
    pub child: &'a [String],
    /// Paths with a persistent watch.
    pub persistent: &'a [String],
    /// Paths with a persistent recursive watch.
    pub persistent_recursive: &'a [String],
}

impl<'a> From<&'a SetWatches> for SetWatchesPaths<'a> {
    /// Borrows the lists of an old-style setWatches (opcode 101), which has no persistent
    /// watches.
    fn from(request: &'a SetWatches) -> SetWatchesPaths<'a> {
        SetWatchesPaths {
            data: &request.data_watches,
            exist: &request.exist_watches,
            child: &request.child_watches,
            persistent: &[],
            persistent_recursive: &[],
        }
    }
}

impl<'a> From<&'a SetWatches2> for SetWatchesPaths<'a> {
    /// Borrows the lists of a setWatches2 (opcode 105).
    fn from(request: &'a SetWatches2) -> SetWatchesPaths<'a> {
        SetWatchesPaths {
            data: &request.data_watches,
            exist: &request.exist_watches,
            child: &request.child_watches,
            persistent: &request.persistent_watches,
            persistent_recursive: &request.persistent_recursive_watches,
        }
    }
}

/// The counts ZooKeeper's `WatchesSummary` (and the wchs four-letter word) reports for one
/// table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchSummary {
    /// Connections known to the table. As in ZooKeeper, a connection whose one-time
    /// watches have all fired is still counted until it closes or removes a watch
    /// explicitly, because firing never drops a connection's (then empty) path map.
    pub watcher_count: usize,
    /// Distinct paths with at least one watch.
    pub path_count: usize,
    /// (path, connection) entries, whatever their modes.
    pub watch_count: usize,
}

/// The modes of one (path, connection) entry, as a bit set (ZooKeeper's `WatchStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ModeSet(u8);

impl ModeSet {
    const ALL: ModeSet = ModeSet(1 | 2 | 4);

    fn of(mode: WatchMode) -> ModeSet {
        ModeSet(mode.bit())
    }

    fn contains(self, mode: WatchMode) -> bool {
        self.0 & mode.bit() != 0
    }

    fn with(self, mode: WatchMode) -> ModeSet {
        ModeSet(self.0 | mode.bit())
    }

    fn without(self, modes: ModeSet) -> ModeSet {
        ModeSet(self.0 & !modes.0)
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One watch table, indexed both ways like ZooKeeper's `WatchManager` (`watchTable` and
/// `watch2Paths`).
#[derive(Clone, Debug, Default)]
struct Table {
    watchers_by_path: BTreeMap<String, BTreeSet<WatcherId>>,
    paths_by_watcher: BTreeMap<WatcherId, BTreeMap<String, ModeSet>>,
    /// Entries holding the recursive mode; while zero, a trigger looks at its own path
    /// only, as ZooKeeper's `recursiveWatchQty` shortcut does.
    recursive_entry_count: usize,
    entry_count: usize,
}

impl Table {
    fn modes(&self, path: &str, watcher: WatcherId) -> ModeSet {
        self.paths_by_watcher.get(&watcher).and_then(|paths| paths.get(path)).copied().unwrap_or_default()
    }

    fn is_new_entry(&self, path: &str, watcher: WatcherId) -> bool {
        self.modes(path, watcher).is_empty()
    }

    fn add(&mut self, path: &str, watcher: WatcherId, mode: WatchMode) {
        let old = self.modes(path, watcher);
        let new = old.with(mode);
        if new == old {
            return;
        }
        if old.is_empty() {
            self.watchers_by_path.entry(path.to_owned()).or_default().insert(watcher);
            self.entry_count += 1;
        }
        if mode == WatchMode::PersistentRecursive {
            self.recursive_entry_count += 1;
        }
        self.paths_by_watcher.entry(watcher).or_default().insert(path.to_owned(), new);
    }

    /// Removes `modes` from the entry; returns whether anything changed. When the entry
    /// empties, it leaves both indexes; the connection's path map is dropped too when it
    /// empties, unless `keep_empty_watcher` (a trigger keeps it, as ZooKeeper does).
    fn remove(&mut self, path: &str, watcher: WatcherId, modes: ModeSet, keep_empty_watcher: bool) -> bool {
        let old = self.modes(path, watcher);
        let new = old.without(modes);
        if new == old {
            return false;
        }
        if old.contains(WatchMode::PersistentRecursive) && !new.contains(WatchMode::PersistentRecursive) {
            self.recursive_entry_count -= 1;
        }
        let paths = self.paths_by_watcher.get_mut(&watcher).expect("a non-empty entry has a path map");
        if !new.is_empty() {
            paths.insert(path.to_owned(), new);
            return true;
        }
        paths.remove(path);
        if paths.is_empty() && !keep_empty_watcher {
            self.paths_by_watcher.remove(&watcher);
        }
        let watchers = self.watchers_by_path.get_mut(path).expect("both indexes hold every entry");
        watchers.remove(&watcher);
        if watchers.is_empty() {
            self.watchers_by_path.remove(path);
        }
        self.entry_count -= 1;
        true
    }

    fn remove_watcher(&mut self, watcher: WatcherId) {
        let Some(paths) = self.paths_by_watcher.remove(&watcher) else {
            return;
        };
        for (path, modes) in paths {
            if modes.contains(WatchMode::PersistentRecursive) {
                self.recursive_entry_count -= 1;
            }
            if let Some(watchers) = self.watchers_by_path.get_mut(&path) {
                watchers.remove(&watcher);
                if watchers.is_empty() {
                    self.watchers_by_path.remove(&path);
                }
            }
            self.entry_count -= 1;
        }
    }

    /// Fires the table for a change at `path` and returns every connection that matched
    /// (ZooKeeper's `triggerWatch`): at the path itself every entry matches and loses its
    /// standard mode; at each ancestor only entries with the recursive mode match, and
    /// they keep it.
    fn trigger(&mut self, path: &str) -> BTreeSet<WatcherId> {
        let mut matched = BTreeSet::new();
        if let Some(watchers) = self.watchers_by_path.get(path) {
            let watchers: Vec<WatcherId> = watchers.iter().copied().collect();
            for watcher in watchers {
                matched.insert(watcher);
                self.remove(path, watcher, ModeSet::of(WatchMode::Standard), true);
            }
        }
        if self.recursive_entry_count == 0 {
            return matched;
        }
        for ancestor in path::self_and_ancestors(path).skip(1) {
            let Some(watchers) = self.watchers_by_path.get(ancestor) else {
                continue;
            };
            for &watcher in watchers {
                if self.modes(ancestor, watcher).contains(WatchMode::PersistentRecursive) {
                    matched.insert(watcher);
                }
            }
        }
        matched
    }

    fn summary(&self) -> WatchSummary {
        WatchSummary {
            watcher_count: self.paths_by_watcher.len(),
            path_count: self.watchers_by_path.len(),
            watch_count: self.entry_count,
        }
    }

    fn check_invariants(&self, name: &str) {
        let mut entries = 0;
        let mut recursive = 0;
        for (watcher, paths) in &self.paths_by_watcher {
            for (path, modes) in paths {
                assert!(!modes.is_empty(), "{name}: empty modes for {watcher} on {path}");
                assert!(
                    self.watchers_by_path.get(path).is_some_and(|watchers| watchers.contains(watcher)),
                    "{name}: {watcher} on {path} missing from the by-path index"
                );
                entries += 1;
                if modes.contains(WatchMode::PersistentRecursive) {
                    recursive += 1;
                }
            }
        }
        let mut indexed = 0;
        for (path, watchers) in &self.watchers_by_path {
            assert!(!watchers.is_empty(), "{name}: empty watcher set on {path}");
            for watcher in watchers {
                assert!(
                    !self.modes(path, *watcher).is_empty(),
                    "{name}: {watcher} on {path} missing from the by-watcher index"
                );
                indexed += 1;
            }
        }
        assert_eq!(entries, indexed, "{name}: the two indexes disagree");
        assert_eq!(entries, self.entry_count, "{name}: entry count drifted");
        assert_eq!(recursive, self.recursive_entry_count, "{name}: recursive count drifted");
    }
}

/// The server's watches: ZooKeeper's data and child tables with their trigger, removal,
/// re-registration and reporting rules (see the module documentation for the calls the
/// tree-applying code must make).
#[derive(Clone, Debug)]
pub struct WatchManager {
    /// The most (path, connection) entries the two tables may hold together. A
    /// registration that would exceed it is refused with [`ErrorCode::ThrottledOp`] and
    /// registers nothing; lowering it below the current count only refuses new entries.
    pub watches_max: usize,
    data: Table,
    child: Table,
}

impl Default for WatchManager {
    /// An empty manager bounded by [`WATCHES_MAX_DEFAULT`].
    fn default() -> WatchManager {
        WatchManager::new(WATCHES_MAX_DEFAULT)
    }
}

fn event(event_type: EventType, path: &str) -> WatcherEvent {
    WatcherEvent { event_type: event_type.code(), state: KeeperState::SyncConnected.code(), path: path.to_owned() }
}

fn notify(
    out: &mut Vec<(WatcherId, WatcherEvent)>,
    watchers: &BTreeSet<WatcherId>,
    suppressed: &BTreeSet<WatcherId>,
    event_type: EventType,
    path: &str,
) {
    for watcher in watchers.difference(suppressed) {
        out.push((*watcher, event(event_type, path)));
    }
}

impl WatchManager {
    /// An empty manager holding at most `watches_max` watches.
    pub fn new(watches_max: usize) -> WatchManager {
        WatchManager { watches_max, data: Table::default(), child: Table::default() }
    }

    fn table(&self, table: WatchTable) -> &Table {
        match table {
            WatchTable::Data => &self.data,
            WatchTable::Child => &self.child,
        }
    }

    fn table_mut(&mut self, table: WatchTable) -> &mut Table {
        match table {
            WatchTable::Data => &mut self.data,
            WatchTable::Child => &mut self.child,
        }
    }

    fn ensure_room_for(&self, new_entries: usize) -> ZkResult<()> {
        if self.watch_count().saturating_add(new_entries) > self.watches_max {
            return Err(ErrorCode::ThrottledOp);
        }
        Ok(())
    }

    /// Registers `(table, path, mode)` triples for `watcher` all together, or none of them
    /// when the new entries they need would pass [`WatchManager::watches_max`].
    fn register(&mut self, watcher: WatcherId, registrations: &[(WatchTable, &str, WatchMode)]) -> ZkResult<()> {
        let new_entries: BTreeSet<(WatchTable, &str)> = registrations
            .iter()
            .filter(|(table, path, _)| self.table(*table).is_new_entry(path, watcher))
            .map(|(table, path, _)| (*table, *path))
            .collect();
        self.ensure_room_for(new_entries.len())?;
        for (table, path, mode) in registrations {
            self.table_mut(*table).add(path, watcher, *mode);
        }
        Ok(())
    }

    /// Leaves a one-time data watch, as getData and exists with `watch` set do. exists
    /// registers it whether or not the node exists (ZooKeeper's `statNode` adds the watch
    /// before looking the node up), so that a create fires it; getData registers it only
    /// when the node exists. Past the limit it fails with ThrottledOp, and the caller must
    /// then answer the read with that error so the client does not believe in a watch the
    /// server does not hold.
    pub fn add_data_watch(&mut self, path: &str, watcher: WatcherId) -> ZkResult<()> {
        self.register(watcher, &[(WatchTable::Data, path, WatchMode::Standard)])
    }

    /// Leaves a one-time child watch, as getChildren and getChildren2 with `watch` set do
    /// (only when the node exists). Past the limit it fails with ThrottledOp, like
    /// [`WatchManager::add_data_watch`].
    pub fn add_child_watch(&mut self, path: &str, watcher: WatcherId) -> ZkResult<()> {
        self.register(watcher, &[(WatchTable::Child, path, WatchMode::Standard)])
    }

    /// Registers an addWatch: a persistent watch goes into both tables, a persistent
    /// recursive one into the data table only (ZooKeeper's `DataTree.addWatch`). The node
    /// need not exist. Past the limit it fails with ThrottledOp and registers nothing.
    pub fn add_persistent_watch(&mut self, path: &str, watcher: WatcherId, mode: AddWatchMode) -> ZkResult<()> {
        match WatchMode::from(mode) {
            WatchMode::PersistentRecursive => {
                self.register(watcher, &[(WatchTable::Data, path, WatchMode::PersistentRecursive)])
            }
            mode => self.register(watcher, &[(WatchTable::Data, path, mode), (WatchTable::Child, path, mode)]),
        }
    }

    /// The notifications for a node created at `path`, to call once the node is in the
    /// tree: `NodeCreated` for the data table on the path (one-time exists watches, the
    /// path's persistent watches, recursive watches on the path and its ancestors), then
    /// `NodeChildrenChanged` for the child table on the parent (one-time getChildren and
    /// persistent watches there; never recursive ones).
    #[must_use]
    pub fn node_created(&mut self, path: &str) -> Vec<(WatcherId, WatcherEvent)> {
        let mut out = Vec::new();
        let created = self.data.trigger(path);
        notify(&mut out, &created, &BTreeSet::new(), EventType::NodeCreated, path);
        self.children_changed(&mut out, path);
        out
    }

    /// The notifications for the node at `path` being deleted, to call once it is gone:
    /// `NodeDeleted` for the data table on the path (with recursive watches above it),
    /// then `NodeDeleted` for the child table on the path to the connections the data
    /// table did not already notify (a connection watching both ways hears it once, but
    /// its one-time child watch is consumed all the same), then `NodeChildrenChanged` for
    /// the child table on the parent.
    #[must_use]
    pub fn node_deleted(&mut self, path: &str) -> Vec<(WatcherId, WatcherEvent)> {
        let mut out = Vec::new();
        let by_data = self.data.trigger(path);
        notify(&mut out, &by_data, &BTreeSet::new(), EventType::NodeDeleted, path);
        let by_child = self.child.trigger(path);
        notify(&mut out, &by_child, &by_data, EventType::NodeDeleted, path);
        self.children_changed(&mut out, path);
        out
    }

    /// The notifications for a setData on `path` (reconfig included):
    /// `NodeDataChanged` for the data table on the path and recursive watches above it.
    /// Child watches never hear of data changes.
    #[must_use]
    pub fn node_data_changed(&mut self, path: &str) -> Vec<(WatcherId, WatcherEvent)> {
        let mut out = Vec::new();
        let changed = self.data.trigger(path);
        notify(&mut out, &changed, &BTreeSet::new(), EventType::NodeDataChanged, path);
        out
    }

    fn children_changed(&mut self, out: &mut Vec<(WatcherId, WatcherEvent)>, path: &str) {
        if let Some(parent) = path::parent(path) {
            let watchers = self.child.trigger(parent);
            notify(out, &watchers, &BTreeSet::new(), EventType::NodeChildrenChanged, parent);
        }
    }

    /// Whether `watcher` has a watch on `path` in `table`, with `mode` or, for `None`, any
    /// mode (ZooKeeper's `containsWatcher`).
    pub fn contains(&self, table: WatchTable, path: &str, watcher: WatcherId, mode: Option<WatchMode>) -> bool {
        let modes = self.table(table).modes(path, watcher);
        match mode {
            Some(mode) => modes.contains(mode),
            None => !modes.is_empty(),
        }
    }

    /// Answers checkWatches: Ok when `watcher` holds a watch of `kind` on `path`,
    /// NoWatcher otherwise. As in `DataTree.containsWatcher`: Children looks for a one-time
    /// child watch, Data for a one-time data watch (getData or exists), Persistent and
    /// PersistentRecursive for that mode in the data table, and Any for any watch in either
    /// table.
    pub fn check_watch(&self, path: &str, kind: WatcherType, watcher: WatcherId) -> ZkResult<()> {
        let found = match kind {
            WatcherType::Children => self.contains(WatchTable::Child, path, watcher, Some(WatchMode::Standard)),
            WatcherType::Data => self.contains(WatchTable::Data, path, watcher, Some(WatchMode::Standard)),
            WatcherType::Persistent => self.contains(WatchTable::Data, path, watcher, Some(WatchMode::Persistent)),
            WatcherType::PersistentRecursive => {
                self.contains(WatchTable::Data, path, watcher, Some(WatchMode::PersistentRecursive))
            }
            WatcherType::Any => {
                self.contains(WatchTable::Child, path, watcher, None)
                    || self.contains(WatchTable::Data, path, watcher, None)
            }
        };
        if found {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// Carries out removeWatches: removes the watches of `kind` that `watcher` holds on
    /// `path`, or fails with NoWatcher when there was none. As in `DataTree.removeWatch`:
    /// Children removes the one-time child watch, Data the one-time data watch, Persistent
    /// the persistent mode from both tables, PersistentRecursive the recursive mode, and
    /// Any every mode from both tables. Other modes on the same entry stay. The server
    /// sends no event for a removal: the client synthesizes the *WatchRemoved events itself.
    pub fn remove_watches(&mut self, path: &str, kind: WatcherType, watcher: WatcherId) -> ZkResult<()> {
        let standard = ModeSet::of(WatchMode::Standard);
        let removed = match kind {
            WatcherType::Children => self.child.remove(path, watcher, standard, false),
            WatcherType::Data => self.data.remove(path, watcher, standard, false),
            WatcherType::Persistent => {
                let persistent = ModeSet::of(WatchMode::Persistent);
                let from_child = self.child.remove(path, watcher, persistent, false);
                let from_data = self.data.remove(path, watcher, persistent, false);
                from_child || from_data
            }
            WatcherType::PersistentRecursive => {
                let recursive = ModeSet::of(WatchMode::PersistentRecursive);
                self.data.remove(path, watcher, recursive, false)
            }
            WatcherType::Any => {
                let from_child = self.child.remove(path, watcher, ModeSet::ALL, false);
                let from_data = self.data.remove(path, watcher, ModeSet::ALL, false);
                from_child || from_data
            }
        };
        if removed {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// Drops every watch of a connection that closed (ZooKeeper's `removeCnxn`). The caller
    /// must not register watches for this id afterwards: ZooKeeper refuses registrations
    /// from a closed connection, and zkd gets the same by never finishing a request of a
    /// connection once it closed.
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        self.data.remove_watcher(watcher);
        self.child.remove_watcher(watcher);
    }

    /// Carries out setWatches or setWatches2 for a connection that reconnected with its
    /// last seen zxid `relative_zxid`, and returns the events to send it now, in the
    /// order ZooKeeper sends them (data list, exist list, child list, each in request
    /// order, with no deduplication). `lookup` gives a node's zxids, or `None` when the
    /// node does not exist. As in `DataTree.setWatches`:
    ///
    /// - data watch: missing node → `NodeDeleted`; `mzxid > relative_zxid` →
    ///   `NodeDataChanged`; otherwise a one-time data watch is registered.
    /// - exist watch: existing node → `NodeCreated` (even one created before
    ///   `relative_zxid`); otherwise a one-time data watch is registered.
    /// - child watch: missing node → `NodeDeleted`; `pzxid > relative_zxid` →
    ///   `NodeChildrenChanged`; otherwise a one-time child watch is registered.
    /// - persistent and persistent recursive watches are registered as addWatch does, with
    ///   no catch-up event even if their nodes changed meanwhile.
    ///
    /// Past the limit the whole request is refused with ThrottledOp: nothing is registered
    /// and no event is returned. Clients ignore the error of a setWatches reply, so the
    /// caller should then close the connection rather than leave the client believing in
    /// watches the server does not hold.
    pub fn set_watches(
        &mut self,
        relative_zxid: i64,
        paths: SetWatchesPaths<'_>,
        watcher: WatcherId,
        mut lookup: impl FnMut(&str) -> Option<NodeZxids>,
    ) -> ZkResult<Vec<WatcherEvent>> {
        let mut events = Vec::new();
        let mut registrations: Vec<(WatchTable, &str, WatchMode)> = Vec::new();
        for path in paths.data {
            match lookup(path) {
                None => events.push(event(EventType::NodeDeleted, path)),
                Some(node) if node.mzxid > relative_zxid => {
                    events.push(event(EventType::NodeDataChanged, path));
                }
                Some(_) => registrations.push((WatchTable::Data, path, WatchMode::Standard)),
            }
        }
        for path in paths.exist {
            match lookup(path) {
                Some(_) => events.push(event(EventType::NodeCreated, path)),
                None => registrations.push((WatchTable::Data, path, WatchMode::Standard)),
            }
        }
        for path in paths.child {
            match lookup(path) {
                None => events.push(event(EventType::NodeDeleted, path)),
                Some(node) if node.pzxid > relative_zxid => {
                    events.push(event(EventType::NodeChildrenChanged, path));
                }
                Some(_) => registrations.push((WatchTable::Child, path, WatchMode::Standard)),
            }
        }
        for path in paths.persistent {
            registrations.push((WatchTable::Child, path, WatchMode::Persistent));
            registrations.push((WatchTable::Data, path, WatchMode::Persistent));
        }
        for path in paths.persistent_recursive {
            registrations.push((WatchTable::Data, path, WatchMode::PersistentRecursive));
        }
        self.register(watcher, &registrations)?;
        Ok(events)
    }

    /// The total number of watches over both tables, which ZooKeeper reports as mntr's
    /// `zk_watch_count` and which [`WatchManager::watches_max`] bounds.
    pub fn watch_count(&self) -> usize {
        self.data.entry_count + self.child.entry_count
    }

    /// The counts of one table; wchs prints those of [`WatchTable::Data`] as
    /// "`<watchers>` connections watching `<paths>` paths" and "Total watches:`<watches>`".
    pub fn summary(&self, table: WatchTable) -> WatchSummary {
        self.table(table).summary()
    }

    /// Each connection's watched paths in one table, sorted (wchc shows
    /// [`WatchTable::Data`], with each connection's session id in hex). A connection whose
    /// one-time watches have all fired appears with no paths, as it does in ZooKeeper.
    pub fn watches_by_watcher(&self, table: WatchTable) -> BTreeMap<WatcherId, BTreeSet<String>> {
        self.table(table)
            .paths_by_watcher
            .iter()
            .map(|(watcher, paths)| (*watcher, paths.keys().cloned().collect()))
            .collect()
    }

    /// Each watched path's connections in one table, sorted (wchp shows
    /// [`WatchTable::Data`]).
    pub fn watches_by_path(&self, table: WatchTable) -> BTreeMap<String, BTreeSet<WatcherId>> {
        self.table(table).watchers_by_path.clone()
    }

    /// Panics with a description when the manager's indexes disagree: every entry is in
    /// both indexes of its table, no entry has an empty mode set, the cached counts match,
    /// and the child table holds no recursive watch. It walks every watch, so the node
    /// calls it after each event in debug builds and tests only.
    pub fn check_invariants(&self) {
        self.data.check_invariants("data table");
        self.child.check_invariants("child table");
        assert_eq!(self.child.recursive_entry_count, 0, "child table: recursive watches belong to the data table only");
    }
}

#[cfg(test)]
mod tests;
