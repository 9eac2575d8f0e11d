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
mod tests {
    use super::*;

    const A: WatcherId = 1;
    const B: WatcherId = 2;
    const C: WatcherId = 3;

    fn ev(event_type: EventType, path: &str) -> WatcherEvent {
        WatcherEvent { event_type: event_type.code(), state: KeeperState::SyncConnected.code(), path: path.to_owned() }
    }

    fn to(watcher: WatcherId, event_type: EventType, path: &str) -> (WatcherId, WatcherEvent) {
        (watcher, ev(event_type, path))
    }

    fn strings(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|path| (*path).to_owned()).collect()
    }

    fn manager() -> WatchManager {
        WatchManager::new(100)
    }

    #[test]
    fn data_watch_fires_once_on_set_data_then_is_gone() {
        // DataTree.setData triggers the data table with NodeDataChanged; a standard watch
        // loses its only mode and leaves the table.
        let mut watches = manager();
        watches.add_data_watch("/a", A).unwrap();
        assert_eq!(watches.node_data_changed("/a"), vec![to(A, EventType::NodeDataChanged, "/a")]);
        assert_eq!(watches.node_data_changed("/a"), vec![]);
        assert_eq!(watches.watch_count(), 0);
        watches.check_invariants();
    }

    #[test]
    fn exists_watch_on_missing_node_fires_node_created() {
        // statNode registers the data watch before looking the node up; createNode fires
        // the data table on the new path with NodeCreated.
        let mut watches = manager();
        watches.add_data_watch("/a/b", A).unwrap();
        assert_eq!(watches.node_created("/a/b"), vec![to(A, EventType::NodeCreated, "/a/b")]);
        assert_eq!(watches.node_created("/a/b"), vec![]);
        watches.check_invariants();
    }

    #[test]
    fn create_fires_child_watch_on_parent_including_root() {
        // createNode fires the child table on the parent ("/" for a top-level node) with
        // NodeChildrenChanged, naming the parent.
        let mut watches = manager();
        watches.add_child_watch("/", A).unwrap();
        watches.add_child_watch("/a", B).unwrap();
        assert_eq!(watches.node_created("/a"), vec![to(A, EventType::NodeChildrenChanged, "/")]);
        assert_eq!(watches.node_created("/a/b"), vec![to(B, EventType::NodeChildrenChanged, "/a")]);
        assert_eq!(watches.watch_count(), 0);
        watches.check_invariants();
    }

    #[test]
    fn child_watch_ignores_data_changes_and_data_watch_ignores_children() {
        // setData touches only the data table; createNode fires the parent's child table
        // only.
        let mut watches = manager();
        watches.add_child_watch("/a", A).unwrap();
        watches.add_data_watch("/a", B).unwrap();
        assert_eq!(watches.node_data_changed("/a"), vec![to(B, EventType::NodeDataChanged, "/a")]);
        assert_eq!(watches.node_created("/a/x"), vec![to(A, EventType::NodeChildrenChanged, "/a")]);
        watches.check_invariants();
    }

    #[test]
    fn delete_notifies_a_connection_watching_both_tables_once_and_consumes_both() {
        // deleteNode fires the data table, then the child table with the data table's
        // watchers suppressed (their child watch is still consumed), then the parent's
        // child table.
        let mut watches = manager();
        watches.add_data_watch("/a/b", A).unwrap();
        watches.add_child_watch("/a/b", A).unwrap();
        watches.add_child_watch("/a", A).unwrap();
        assert_eq!(
            watches.node_deleted("/a/b"),
            vec![to(A, EventType::NodeDeleted, "/a/b"), to(A, EventType::NodeChildrenChanged, "/a"),]
        );
        assert_eq!(watches.check_watch("/a/b", WatcherType::Children, A), Err(ErrorCode::NoWatcher));
        assert_eq!(watches.check_watch("/a/b", WatcherType::Data, A), Err(ErrorCode::NoWatcher));
        assert_eq!(watches.watch_count(), 0);
        watches.check_invariants();
    }

    #[test]
    fn delete_orders_data_watchers_then_child_watchers_then_parent() {
        // The child table's NodeDeleted is suppressed only for connections the data table
        // matched; others hear it after the data table's connections.
        let mut watches = manager();
        watches.add_child_watch("/a", A).unwrap();
        watches.add_data_watch("/a", C).unwrap();
        watches.add_child_watch("/", B).unwrap();
        assert_eq!(
            watches.node_deleted("/a"),
            vec![
                to(C, EventType::NodeDeleted, "/a"),
                to(A, EventType::NodeDeleted, "/a"),
                to(B, EventType::NodeChildrenChanged, "/"),
            ]
        );
        watches.check_invariants();
    }

    #[test]
    fn notifications_of_one_trigger_are_ordered_by_connection() {
        // ZooKeeper delivers one trigger's watchers in hash-set order; zkd sorts them.
        let mut watches = manager();
        for watcher in [30, 10, 20] {
            watches.add_data_watch("/a", watcher).unwrap();
        }
        assert_eq!(
            watches.node_data_changed("/a"),
            vec![
                to(10, EventType::NodeDataChanged, "/a"),
                to(20, EventType::NodeDataChanged, "/a"),
                to(30, EventType::NodeDataChanged, "/a"),
            ]
        );
    }

    #[test]
    fn persistent_watch_stays_and_hears_its_own_path_only() {
        // addWatch mode 0 registers PERSISTENT in both tables; triggerWatch removes only
        // the STANDARD mode, so it keeps firing: data changes, child changes, deletion
        // (once), re-creation.
        let mut watches = manager();
        watches.add_persistent_watch("/a", A, AddWatchMode::Persistent).unwrap();
        assert_eq!(watches.watch_count(), 2);
        for _ in 0..2 {
            assert_eq!(watches.node_data_changed("/a"), vec![to(A, EventType::NodeDataChanged, "/a")]);
        }
        assert_eq!(watches.node_created("/a/b"), vec![to(A, EventType::NodeChildrenChanged, "/a")]);
        assert_eq!(watches.node_data_changed("/a/b"), vec![]);
        assert_eq!(watches.node_deleted("/a/b"), vec![to(A, EventType::NodeChildrenChanged, "/a")]);
        assert_eq!(watches.node_deleted("/a"), vec![to(A, EventType::NodeDeleted, "/a")]);
        assert_eq!(watches.node_created("/a"), vec![to(A, EventType::NodeCreated, "/a")]);
        assert_eq!(watches.watch_count(), 2);
        assert_eq!(watches.check_watch("/a", WatcherType::Persistent, A), Ok(()));
        watches.check_invariants();
    }

    #[test]
    fn recursive_watch_fires_for_deep_descendants_but_never_children_changed() {
        // addWatch mode 1 registers PERSISTENT_RECURSIVE in the data table only; the data
        // table walks the ancestors, the child table (which fires NodeChildrenChanged)
        // holds no recursive watch.
        let mut watches = manager();
        watches.add_persistent_watch("/a", A, AddWatchMode::PersistentRecursive).unwrap();
        assert_eq!(watches.summary(WatchTable::Child), WatchSummary::default());
        assert_eq!(watches.node_created("/a/b/c/d"), vec![to(A, EventType::NodeCreated, "/a/b/c/d")]);
        assert_eq!(watches.node_data_changed("/a/b/c/d"), vec![to(A, EventType::NodeDataChanged, "/a/b/c/d")]);
        assert_eq!(watches.node_deleted("/a/b/c/d"), vec![to(A, EventType::NodeDeleted, "/a/b/c/d")]);
        assert_eq!(watches.node_created("/a"), vec![to(A, EventType::NodeCreated, "/a")]);
        assert_eq!(watches.node_deleted("/a"), vec![to(A, EventType::NodeDeleted, "/a")]);
        assert_eq!(watches.node_created("/ab"), vec![], "a sibling prefix is not below /a");
        assert_eq!(watches.node_data_changed("/"), vec![]);
        assert_eq!(watches.watch_count(), 1);
        watches.check_invariants();
    }

    #[test]
    fn recursive_watch_on_root_sees_everything() {
        let mut watches = manager();
        watches.add_persistent_watch("/", A, AddWatchMode::PersistentRecursive).unwrap();
        assert_eq!(watches.node_created("/x"), vec![to(A, EventType::NodeCreated, "/x")]);
        assert_eq!(watches.node_data_changed("/"), vec![to(A, EventType::NodeDataChanged, "/")]);
    }

    #[test]
    fn one_event_per_connection_per_trigger_and_ancestor_standard_watches_survive() {
        // triggerWatch collects watchers into a set, so several matching watches of one
        // connection make one event; at an ancestor only the recursive mode matches and
        // the ancestor's standard watch is not consumed.
        let mut watches = manager();
        watches.add_persistent_watch("/", A, AddWatchMode::PersistentRecursive).unwrap();
        watches.add_persistent_watch("/a", A, AddWatchMode::PersistentRecursive).unwrap();
        watches.add_data_watch("/a", A).unwrap();
        watches.add_data_watch("/a/b", A).unwrap();
        watches.add_persistent_watch("/a/b", A, AddWatchMode::Persistent).unwrap();
        assert_eq!(watches.node_data_changed("/a/b"), vec![to(A, EventType::NodeDataChanged, "/a/b")]);
        assert_eq!(watches.check_watch("/a", WatcherType::Data, A), Ok(()));
        assert_eq!(watches.check_watch("/a/b", WatcherType::Data, A), Err(ErrorCode::NoWatcher));
        assert_eq!(watches.check_watch("/a/b", WatcherType::Persistent, A), Ok(()));
        assert_eq!(watches.node_data_changed("/a"), vec![to(A, EventType::NodeDataChanged, "/a")]);
        assert_eq!(watches.check_watch("/a", WatcherType::Data, A), Err(ErrorCode::NoWatcher));
        assert_eq!(watches.check_watch("/a", WatcherType::PersistentRecursive, A), Ok(()));
        watches.check_invariants();
    }

    #[test]
    fn standard_and_persistent_modes_share_one_entry() {
        // WatchStats keeps several modes on one (path, watcher) entry; firing removes the
        // standard mode and leaves the entry with the persistent one.
        let mut watches = manager();
        watches.add_data_watch("/a", A).unwrap();
        watches.add_persistent_watch("/a", A, AddWatchMode::Persistent).unwrap();
        assert_eq!(watches.summary(WatchTable::Data).watch_count, 1);
        assert_eq!(watches.watch_count(), 2);
        let _ = watches.node_data_changed("/a");
        assert!(!watches.contains(WatchTable::Data, "/a", A, Some(WatchMode::Standard)));
        assert!(watches.contains(WatchTable::Data, "/a", A, Some(WatchMode::Persistent)));
        assert_eq!(watches.watch_count(), 2);
        watches.check_invariants();
    }

    #[test]
    fn check_watch_maps_watcher_types_like_data_tree() {
        let mut watches = manager();
        watches.add_data_watch("/d", A).unwrap();
        watches.add_child_watch("/c", A).unwrap();
        watches.add_persistent_watch("/p", A, AddWatchMode::Persistent).unwrap();
        watches.add_persistent_watch("/r", A, AddWatchMode::PersistentRecursive).unwrap();
        let kinds = [
            WatcherType::Children,
            WatcherType::Data,
            WatcherType::Any,
            WatcherType::Persistent,
            WatcherType::PersistentRecursive,
        ];
        // Expected outcome per path, in the order of `kinds`: Data and Children look for
        // the standard mode only, Persistent and PersistentRecursive for their mode in
        // the data table, Any for anything.
        let expected = [
            ("/d", [false, true, true, false, false]),
            ("/c", [true, false, true, false, false]),
            ("/p", [false, false, true, true, false]),
            ("/r", [false, false, true, false, true]),
        ];
        for (path, found) in expected {
            for (kind, found) in kinds.iter().zip(found) {
                let want = if found { Ok(()) } else { Err(ErrorCode::NoWatcher) };
                assert_eq!(watches.check_watch(path, *kind, A), want, "{path} {kind:?}");
                assert_eq!(
                    watches.check_watch(path, *kind, B),
                    Err(ErrorCode::NoWatcher),
                    "another connection's watch is not B's"
                );
            }
        }
    }

    #[test]
    fn remove_watches_removes_only_the_named_kind() {
        let mut watches = manager();
        watches.add_data_watch("/a", A).unwrap();
        watches.add_child_watch("/a", A).unwrap();
        watches.add_persistent_watch("/a", A, AddWatchMode::Persistent).unwrap();
        watches.add_persistent_watch("/a", A, AddWatchMode::PersistentRecursive).unwrap();
        assert_eq!(watches.watch_count(), 2);

        assert_eq!(watches.remove_watches("/a", WatcherType::Data, A), Ok(()));
        assert_eq!(watches.remove_watches("/a", WatcherType::Data, A), Err(ErrorCode::NoWatcher));
        assert_eq!(watches.check_watch("/a", WatcherType::Children, A), Ok(()));

        // Persistent comes out of both tables.
        assert_eq!(watches.remove_watches("/a", WatcherType::Persistent, A), Ok(()));
        assert!(!watches.contains(WatchTable::Child, "/a", A, Some(WatchMode::Persistent)));
        assert!(!watches.contains(WatchTable::Data, "/a", A, Some(WatchMode::Persistent)));
        assert_eq!(watches.check_watch("/a", WatcherType::PersistentRecursive, A), Ok(()));

        assert_eq!(watches.remove_watches("/a", WatcherType::PersistentRecursive, A), Ok(()));
        assert_eq!(watches.summary(WatchTable::Data), WatchSummary::default());
        assert_eq!(watches.remove_watches("/a", WatcherType::Children, A), Ok(()));
        assert_eq!(watches.watch_count(), 0);
        assert_eq!(watches.remove_watches("/a", WatcherType::Any, A), Err(ErrorCode::NoWatcher));
        // The recursive watch is really gone: a descendant change notifies nobody.
        assert_eq!(watches.node_created("/a/b"), vec![]);
        watches.check_invariants();
    }

    #[test]
    fn remove_watches_any_clears_both_tables_and_leaves_other_connections() {
        let mut watches = manager();
        watches.add_data_watch("/a", A).unwrap();
        watches.add_child_watch("/a", A).unwrap();
        watches.add_persistent_watch("/a", A, AddWatchMode::PersistentRecursive).unwrap();
        watches.add_data_watch("/a", B).unwrap();
        assert_eq!(watches.remove_watches("/a", WatcherType::Any, A), Ok(()));
        assert_eq!(watches.check_watch("/a", WatcherType::Any, A), Err(ErrorCode::NoWatcher));
        assert_eq!(watches.watch_count(), 1);
        assert_eq!(watches.node_data_changed("/a"), vec![to(B, EventType::NodeDataChanged, "/a")]);
        assert_eq!(watches.remove_watches("/b", WatcherType::Any, B), Err(ErrorCode::NoWatcher));
        watches.check_invariants();
    }

    #[test]
    fn remove_watcher_drops_every_watch_of_the_connection() {
        // DataTree.removeCnxn clears the connection from both tables.
        let mut watches = manager();
        watches.add_data_watch("/a", A).unwrap();
        watches.add_child_watch("/a", A).unwrap();
        watches.add_persistent_watch("/", A, AddWatchMode::PersistentRecursive).unwrap();
        watches.add_persistent_watch("/p", A, AddWatchMode::Persistent).unwrap();
        watches.add_data_watch("/a", B).unwrap();
        watches.remove_watcher(A);
        assert_eq!(watches.watch_count(), 1);
        assert_eq!(watches.node_deleted("/a"), vec![to(B, EventType::NodeDeleted, "/a")]);
        assert_eq!(watches.node_data_changed("/p"), vec![]);
        assert_eq!(watches.summary(WatchTable::Data).watcher_count, 1);
        watches.remove_watcher(C);
        watches.check_invariants();
    }

    #[test]
    fn set_watches_data_list_covers_every_branch() {
        let mut watches = manager();
        let data = strings(&["/gone", "/changed", "/same"]);
        let lookup = |path: &str| match path {
            "/changed" => Some(NodeZxids { mzxid: 11, pzxid: 1 }),
            "/same" => Some(NodeZxids { mzxid: 10, pzxid: 99 }),
            _ => None,
        };
        let paths = SetWatchesPaths { data: &data, ..SetWatchesPaths::default() };
        assert_eq!(
            watches.set_watches(10, paths, A, lookup),
            Ok(vec![ev(EventType::NodeDeleted, "/gone"), ev(EventType::NodeDataChanged, "/changed")])
        );
        // mzxid equal to relativeZxid is not newer: the watch is registered.
        assert_eq!(watches.check_watch("/same", WatcherType::Data, A), Ok(()));
        assert_eq!(watches.watch_count(), 1);
        watches.check_invariants();
    }

    #[test]
    fn set_watches_exist_list_covers_every_branch() {
        let mut watches = manager();
        let exist = strings(&["/there", "/missing"]);
        let lookup = |path: &str| (path == "/there").then_some(NodeZxids { mzxid: 1, pzxid: 1 });
        let paths = SetWatchesPaths { exist: &exist, ..SetWatchesPaths::default() };
        // A present node reports NodeCreated even though its zxids are older than
        // relativeZxid.
        assert_eq!(watches.set_watches(10, paths, A, lookup), Ok(vec![ev(EventType::NodeCreated, "/there")]));
        assert_eq!(watches.node_created("/missing"), vec![to(A, EventType::NodeCreated, "/missing")]);
        watches.check_invariants();
    }

    #[test]
    fn set_watches_child_list_covers_every_branch() {
        let mut watches = manager();
        let child = strings(&["/gone", "/grew", "/same"]);
        let lookup = |path: &str| match path {
            "/grew" => Some(NodeZxids { mzxid: 1, pzxid: 11 }),
            "/same" => Some(NodeZxids { mzxid: 99, pzxid: 10 }),
            _ => None,
        };
        let paths = SetWatchesPaths { child: &child, ..SetWatchesPaths::default() };
        assert_eq!(
            watches.set_watches(10, paths, A, lookup),
            Ok(vec![ev(EventType::NodeDeleted, "/gone"), ev(EventType::NodeChildrenChanged, "/grew")])
        );
        assert_eq!(watches.check_watch("/same", WatcherType::Children, A), Ok(()));
        assert_eq!(watches.watch_count(), 1);
        watches.check_invariants();
    }

    #[test]
    fn set_watches_registers_persistent_watches_without_catch_up_events() {
        let mut watches = manager();
        let persistent = strings(&["/p"]);
        let recursive = strings(&["/r"]);
        let paths =
            SetWatchesPaths { persistent: &persistent, persistent_recursive: &recursive, ..SetWatchesPaths::default() };
        let changed_long_ago = |_: &str| Some(NodeZxids { mzxid: 50, pzxid: 50 });
        assert_eq!(watches.set_watches(10, paths, A, changed_long_ago), Ok(vec![]));
        assert!(watches.contains(WatchTable::Child, "/p", A, Some(WatchMode::Persistent)));
        assert!(watches.contains(WatchTable::Data, "/p", A, Some(WatchMode::Persistent)));
        assert!(watches.contains(WatchTable::Data, "/r", A, Some(WatchMode::PersistentRecursive)));
        assert!(!watches.contains(WatchTable::Child, "/r", A, None));
        assert_eq!(watches.watch_count(), 3);
        watches.check_invariants();
    }

    #[test]
    fn set_watches_events_follow_list_order_without_dedupe() {
        // DataTree.setWatches walks data, exist, then child paths and sends each event as
        // it goes: a missing path in the data and child lists is reported twice.
        let mut watches = manager();
        let data = strings(&["/x"]);
        let exist = strings(&["/y"]);
        let child = strings(&["/x"]);
        let paths = SetWatchesPaths { data: &data, exist: &exist, child: &child, ..Default::default() };
        let lookup = |path: &str| (path == "/y").then_some(NodeZxids { mzxid: 0, pzxid: 0 });
        assert_eq!(
            watches.set_watches(0, paths, A, lookup),
            Ok(vec![
                ev(EventType::NodeDeleted, "/x"),
                ev(EventType::NodeCreated, "/y"),
                ev(EventType::NodeDeleted, "/x"),
            ])
        );
        assert_eq!(watches.watch_count(), 0);
    }

    #[test]
    fn set_watches_paths_borrow_both_request_versions() {
        let old = SetWatches {
            relative_zxid: 5,
            data_watches: strings(&["/d"]),
            exist_watches: strings(&["/e"]),
            child_watches: strings(&["/c"]),
        };
        let paths = SetWatchesPaths::from(&old);
        assert_eq!(paths.data, strings(&["/d"]).as_slice());
        assert_eq!(paths.exist, strings(&["/e"]).as_slice());
        assert_eq!(paths.child, strings(&["/c"]).as_slice());
        assert!(paths.persistent.is_empty() && paths.persistent_recursive.is_empty());
        let new = SetWatches2 {
            relative_zxid: 5,
            data_watches: vec![],
            exist_watches: vec![],
            child_watches: vec![],
            persistent_watches: strings(&["/p"]),
            persistent_recursive_watches: strings(&["/r"]),
        };
        let paths = SetWatchesPaths::from(&new);
        assert_eq!(paths.persistent, strings(&["/p"]).as_slice());
        assert_eq!(paths.persistent_recursive, strings(&["/r"]).as_slice());
    }

    #[test]
    fn limit_refuses_new_entries_but_not_new_modes() {
        let mut watches = WatchManager::new(3);
        watches.add_data_watch("/a", A).unwrap();
        watches.add_child_watch("/a", A).unwrap();
        // A persistent watch needs a data and a child entry; /b has neither, one fits.
        assert_eq!(watches.add_persistent_watch("/b", A, AddWatchMode::Persistent), Err(ErrorCode::ThrottledOp));
        assert_eq!(watches.watch_count(), 2);
        assert!(!watches.contains(WatchTable::Data, "/b", A, None));
        // On /a both entries exist, so adding the persistent mode costs nothing.
        assert_eq!(watches.add_persistent_watch("/a", A, AddWatchMode::Persistent), Ok(()));
        watches.add_data_watch("/b", A).unwrap();
        assert_eq!(watches.add_data_watch("/c", A), Err(ErrorCode::ThrottledOp));
        assert_eq!(watches.add_child_watch("/c", B), Err(ErrorCode::ThrottledOp));
        // Re-adding an existing watch is free.
        assert_eq!(watches.add_data_watch("/b", A), Ok(()));
        assert_eq!(watches.watch_count(), 3);
        // A fired one-time watch makes room again.
        let _ = watches.node_data_changed("/b");
        assert_eq!(watches.add_data_watch("/c", A), Ok(()));
        watches.check_invariants();
    }

    #[test]
    fn limit_refuses_set_watches_whole() {
        let mut watches = WatchManager::new(2);
        watches.add_data_watch("/a", A).unwrap();
        let data = strings(&["/x", "/y"]);
        let gone = strings(&["/gone"]);
        let paths = SetWatchesPaths { data: &data, child: &gone, ..SetWatchesPaths::default() };
        let lookup = |path: &str| (path != "/gone").then_some(NodeZxids { mzxid: 0, pzxid: 0 });
        assert_eq!(watches.set_watches(0, paths, B, lookup), Err(ErrorCode::ThrottledOp));
        assert_eq!(watches.watch_count(), 1);
        assert!(!watches.contains(WatchTable::Data, "/x", B, None));
        // A path listed twice needs one entry only.
        let twice = strings(&["/x", "/x"]);
        let paths = SetWatchesPaths { data: &twice, child: &gone, ..SetWatchesPaths::default() };
        assert_eq!(watches.set_watches(0, paths, B, lookup), Ok(vec![ev(EventType::NodeDeleted, "/gone")]));
        assert_eq!(watches.watch_count(), 2);
        watches.check_invariants();
    }

    #[test]
    fn reports_count_like_watches_summary() {
        let mut watches = manager();
        watches.add_data_watch("/a", A).unwrap();
        watches.add_data_watch("/a", B).unwrap();
        watches.add_data_watch("/b", B).unwrap();
        watches.add_child_watch("/c", C).unwrap();
        watches.add_persistent_watch("/p", C, AddWatchMode::Persistent).unwrap();
        assert_eq!(watches.watch_count(), 6);
        assert_eq!(watches.summary(WatchTable::Data), WatchSummary { watcher_count: 3, path_count: 3, watch_count: 4 });
        assert_eq!(
            watches.summary(WatchTable::Child),
            WatchSummary { watcher_count: 1, path_count: 2, watch_count: 2 }
        );
        let by_watcher = watches.watches_by_watcher(WatchTable::Data);
        assert_eq!(
            by_watcher,
            BTreeMap::from([
                (A, BTreeSet::from(["/a".to_owned()])),
                (B, BTreeSet::from(["/a".to_owned(), "/b".to_owned()])),
                (C, BTreeSet::from(["/p".to_owned()])),
            ])
        );
        assert_eq!(
            watches.watches_by_path(WatchTable::Child),
            BTreeMap::from([("/c".to_owned(), BTreeSet::from([C])), ("/p".to_owned(), BTreeSet::from([C])),])
        );
        watches.check_invariants();
    }

    #[test]
    fn fired_connection_stays_in_the_report_until_it_closes() {
        // triggerWatch removes the path from the watcher's map but never the watcher's
        // emptied map, so WatchesSummary still counts the connection; an explicit removal
        // (unwatch) or the connection closing drops it.
        let mut watches = manager();
        watches.add_data_watch("/a", A).unwrap();
        let _ = watches.node_data_changed("/a");
        assert_eq!(watches.summary(WatchTable::Data), WatchSummary { watcher_count: 1, path_count: 0, watch_count: 0 });
        assert_eq!(watches.watches_by_watcher(WatchTable::Data), BTreeMap::from([(A, BTreeSet::new())]));
        watches.add_data_watch("/b", A).unwrap();
        watches.remove_watches("/b", WatcherType::Data, A).unwrap();
        assert_eq!(watches.summary(WatchTable::Data), WatchSummary::default());
        watches.add_data_watch("/c", A).unwrap();
        let _ = watches.node_data_changed("/c");
        watches.remove_watcher(A);
        assert_eq!(watches.summary(WatchTable::Data), WatchSummary::default());
        watches.check_invariants();
    }

    #[test]
    fn default_manager_uses_the_default_limit() {
        assert_eq!(WatchManager::default().watches_max, WATCHES_MAX_DEFAULT);
        assert_eq!(WatchMode::from(AddWatchMode::Persistent), WatchMode::Persistent);
        assert_eq!(WatchMode::from(AddWatchMode::PersistentRecursive), WatchMode::PersistentRecursive);
    }
}
