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
        Ok(vec![ev(EventType::NodeDeleted, "/x"), ev(EventType::NodeCreated, "/y"), ev(EventType::NodeDeleted, "/x"),])
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
    assert_eq!(watches.summary(WatchTable::Child), WatchSummary { watcher_count: 1, path_count: 2, watch_count: 2 });
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
