use super::*;

fn open() -> Vec<Acl> {
    crate::acl::open_acl_unsafe()
}

fn create(tree: &mut DataTree, node_path: &str, zxid: i64) -> Stat {
    tree.create_node(node_path, Some(b"x".to_vec()), &open(), NodeKind::Persistent, -1, zxid, 1000 + zxid)
        .expect("create")
}

#[test]
fn fresh_tree_matches_zookeeper() {
    let tree = DataTree::new();
    assert_eq!(tree.node_count(), 4);
    let root = tree.stat("/").unwrap();
    // Stored cversion 0 with one child: ZooKeeper reports cversion -1 for a fresh root.
    assert_eq!(root.cversion, -1);
    assert_eq!(root.num_children, 1);
    assert_eq!(tree.children("/zookeeper").unwrap(), vec!["config", "quota"]);
    assert_eq!(tree.stat(CONFIG_PATH).unwrap().aversion, -1);
    assert_eq!(tree.acl_of(CONFIG_PATH).unwrap(), &crate::acl::read_acl_unsafe()[..]);
    assert_eq!(tree.get("/").unwrap().data, Some(Vec::new()));
    tree.check_invariants().unwrap();
}

#[test]
fn create_sets_stat_and_moves_parent_cversion_and_pzxid() {
    let mut tree = DataTree::new();
    let stat = create(&mut tree, "/a", 5);
    assert_eq!(
        stat,
        Stat {
            czxid: 5,
            mzxid: 5,
            ctime: 1005,
            mtime: 1005,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: 1,
            num_children: 0,
            pzxid: 5
        }
    );
    let root = tree.get("/").unwrap();
    assert_eq!(root.stat.cversion, 1);
    assert_eq!(root.stat.pzxid, 5);
    assert_eq!(tree.create_node("/a", None, &open(), NodeKind::Persistent, -1, 6, 0), Err(ErrorCode::NodeExists));
    assert_eq!(tree.create_node("/b/c", None, &open(), NodeKind::Persistent, -1, 6, 0), Err(ErrorCode::NoNode));
}

#[test]
fn client_cversion_counts_deletes_too() {
    let mut tree = DataTree::new();
    create(&mut tree, "/p", 1);
    create(&mut tree, "/p/a", 2);
    create(&mut tree, "/p/b", 3);
    assert_eq!(tree.stat("/p").unwrap().cversion, 2);
    tree.delete_node("/p/a", 4).unwrap();
    let stat = tree.stat("/p").unwrap();
    assert_eq!(stat.cversion, 3);
    assert_eq!(stat.pzxid, 4);
    // The stored count of creations is what sequential names come from.
    assert_eq!(tree.get("/p").unwrap().stat.cversion, 2);
}

#[test]
fn replayed_create_does_not_move_cversion_backwards() {
    let mut tree = DataTree::new();
    create(&mut tree, "/p", 1);
    tree.create_node("/p/a", None, &open(), NodeKind::Persistent, 5, 2, 0).unwrap();
    tree.create_node("/p/b", None, &open(), NodeKind::Persistent, 3, 3, 0).unwrap();
    let parent = tree.get("/p").unwrap();
    assert_eq!(parent.stat.cversion, 5);
    assert_eq!(parent.stat.pzxid, 2);
}

#[test]
fn set_data_and_set_acl_update_versions() {
    let mut tree = DataTree::new();
    create(&mut tree, "/a", 1);
    let stat = tree.set_data("/a", None, 1, 7, 2000).unwrap();
    assert_eq!((stat.version, stat.mzxid, stat.mtime, stat.data_length), (1, 7, 2000, 0));
    assert_eq!(tree.get("/a").unwrap().data, None);
    let stat = tree.set_acl("/a", &crate::acl::read_acl_unsafe(), 1).unwrap();
    assert_eq!(stat.aversion, 1);
    assert_eq!(tree.acl_of("/a").unwrap(), &crate::acl::read_acl_unsafe()[..]);
    assert_eq!(tree.set_data("/nope", None, 1, 8, 0), Err(ErrorCode::NoNode));
    assert_eq!(tree.set_acl("/nope", &open(), 1), Err(ErrorCode::NoNode));
}

#[test]
fn acls_are_interned_and_released() {
    let mut tree = DataTree::new();
    let before = tree.acl_count();
    create(&mut tree, "/a", 1);
    create(&mut tree, "/b", 2);
    assert_eq!(tree.acl_count(), before);
    tree.set_acl("/a", &[Acl { perms: 1, id: Id { scheme: "digest".into(), id: "u:h".into() } }], 1).unwrap();
    assert_eq!(tree.acl_count(), before + 1);
    tree.delete_node("/a", 3).unwrap();
    assert_eq!(tree.acl_count(), before);
}

#[test]
fn ephemerals_containers_and_ttls_are_indexed() {
    let mut tree = DataTree::new();
    tree.create_node("/e", None, &open(), NodeKind::Ephemeral { owner: 42 }, -1, 1, 0).unwrap();
    tree.create_node("/c", None, &open(), NodeKind::Container, -1, 2, 0).unwrap();
    tree.create_node("/t", None, &open(), NodeKind::Ttl { ttl_ms: 100 }, -1, 3, 0).unwrap();
    assert_eq!(tree.ephemerals(42).into_iter().collect::<Vec<_>>(), vec!["/e"]);
    assert_eq!(tree.stat("/e").unwrap().ephemeral_owner, 42);
    assert_eq!(tree.stat("/c").unwrap().ephemeral_owner, 0);
    assert_eq!(tree.stat("/t").unwrap().ephemeral_owner, 0);
    assert!(tree.containers().contains("/c"));
    assert!(tree.ttls().contains("/t"));
    tree.check_invariants().unwrap();
    tree.delete_node("/e", 4).unwrap();
    tree.delete_node("/c", 5).unwrap();
    tree.delete_node("/t", 6).unwrap();
    assert!(tree.all_ephemerals().is_empty());
    assert!(tree.containers().is_empty() && tree.ttls().is_empty());
    tree.check_invariants().unwrap();
}

#[test]
fn all_children_number_counts_descendants() {
    let mut tree = DataTree::new();
    create(&mut tree, "/a", 1);
    create(&mut tree, "/a/b", 2);
    create(&mut tree, "/a/b/c", 3);
    create(&mut tree, "/ab", 4);
    assert_eq!(tree.all_children_number("/a"), Some(2));
    assert_eq!(tree.all_children_number("/"), Some(tree.node_count() - 1));
    assert_eq!(tree.all_children_number("/x"), None);
}

#[test]
fn quota_stats_follow_the_subtree() {
    let mut tree = DataTree::new();
    create(&mut tree, "/q", 1);
    create(&mut tree, "/q/a", 2);
    create(&mut tree, "/zookeeper/quota/q", 3);
    tree.create_node(
        "/zookeeper/quota/q/zookeeper_limits",
        Some(b"count=3,bytes=-1".to_vec()),
        &open(),
        NodeKind::Persistent,
        -1,
        4,
        0,
    )
    .unwrap();
    tree.create_node(
        "/zookeeper/quota/q/zookeeper_stats",
        Some(b"count=0,bytes=0".to_vec()),
        &open(),
        NodeKind::Persistent,
        -1,
        5,
        0,
    )
    .unwrap();
    let (prefix, limits, usage) = tree.quota_of("/q/a").unwrap();
    assert_eq!(prefix, "/q");
    assert_eq!((limits.count, limits.bytes), (3, -1));
    assert_eq!((usage.count, usage.bytes), (2, 2));
    create(&mut tree, "/q/b", 6);
    tree.set_data("/q/b", Some(b"hello".to_vec()), 1, 7, 0).unwrap();
    let (_, _, usage) = tree.quota_of("/q").unwrap();
    assert_eq!((usage.count, usage.bytes), (3, 7));
    assert_eq!(tree.get("/zookeeper/quota/q/zookeeper_stats").unwrap().data.as_deref(), Some(&b"count=3,bytes=7"[..]));
    // A soft limit never refuses.
    assert_eq!(tree.check_quota("/q/c", 0, 1), Ok(()));
    tree.delete_node("/q/b", 8).unwrap();
    let (_, _, usage) = tree.quota_of("/q").unwrap();
    assert_eq!((usage.count, usage.bytes), (2, 2));
}

#[test]
fn hard_quota_refuses_with_quota_exceeded() {
    let mut tree = DataTree::new();
    create(&mut tree, "/q", 1);
    create(&mut tree, "/zookeeper/quota/q", 2);
    let limits = QuotaTrack { count: -1, bytes: -1, count_hard_limit: 2, byte_hard_limit: 4 };
    tree.create_node(
        "/zookeeper/quota/q/zookeeper_limits",
        Some(limits.render().into_bytes()),
        &open(),
        NodeKind::Persistent,
        -1,
        3,
        0,
    )
    .unwrap();
    tree.create_node("/zookeeper/quota/q/zookeeper_stats", None, &open(), NodeKind::Persistent, -1, 4, 0).unwrap();
    assert_eq!(tree.check_quota("/q/a", 1, 1), Ok(()));
    create(&mut tree, "/q/a", 5);
    assert_eq!(tree.check_quota("/q/b", 0, 1), Err(ErrorCode::QuotaExceeded));
    assert_eq!(tree.check_quota("/q/a", 3, 0), Err(ErrorCode::QuotaExceeded));
    assert_eq!(tree.check_quota("/q/a", 2, 0), Ok(()));
    // Deleting the limits node lifts the quota.
    tree.delete_node("/zookeeper/quota/q/zookeeper_limits", 6).unwrap();
    assert_eq!(tree.check_quota("/q/b", 0, 1), Ok(()));
}

#[test]
fn quota_track_text_round_trips() {
    let track = QuotaTrack { count: 5, bytes: 10, count_hard_limit: 7, byte_hard_limit: -1 };
    assert_eq!(track.render(), "count=5,bytes=10=;countHardLimit=7");
    assert_eq!(QuotaTrack::parse(Some(track.render().as_bytes())), track);
    assert_eq!(QuotaTrack::parse(Some(b"count=,bytes=3")).count, -1);
    assert_eq!(QuotaTrack::parse(None), QuotaTrack::UNSET);
}

/// The map's key order is (parent, name) order, a lookup by path compares exactly as
/// the key it stands for, and a key gives its path back.
#[test]
fn map_keys_order_by_parent_then_name() {
    use proptest::prelude::*;
    let path = proptest::collection::vec("[a-c]{1,2}", 0..4).prop_map(|segments| format!("/{}", segments.join("/")));
    proptest!(|(a in path.clone(), b in path)| {
        let parts = |p: &str| match p.rfind('/') {
            Some(0) if p.len() == 1 => (String::new(), String::new()),
            Some(0) => (String::new(), p[1..].to_owned()),
            Some(at) => (p[..at].to_owned(), p[at + 1..].to_owned()),
            None => unreachable!(),
        };
        let expected = parts(&a).cmp(&parts(&b));
        prop_assert_eq!(MapKey::of(&a).cmp(&MapKey::of(&b)), expected);
        prop_assert_eq!(PathQuery::of(&a).compare(&MapKey::of(&b)), expected);
        prop_assert_eq!(MapKey::of(&a).path(), a.clone());
        let key = MapKey::of(&a);
        prop_assert_eq!(key.name(), path::last_segment(&a));
        if path::parent(&b) == Some(a.as_str()) {
            prop_assert!(MapKey::of(&a) < MapKey::of(&b), "a parent sorts before its children");
            prop_assert!(MapKey::of(&b).0.starts_with(&*MapKey::children_prefix(&a).0));
        }
    });
}

#[test]
fn children_and_descendants_come_from_the_map() {
    let mut tree = DataTree::new();
    for (zxid, node_path) in ["/a", "/a/b", "/a/b/c", "/ab", "/a/a", "/b"].into_iter().enumerate() {
        tree.create_node(node_path, None, &crate::acl::open_acl_unsafe(), NodeKind::Persistent, -1, zxid as i64 + 1, 0)
            .unwrap();
    }
    assert_eq!(tree.children("/").unwrap(), ["a", "ab", "b", "zookeeper"]);
    assert_eq!(tree.children("/a").unwrap(), ["a", "b"]);
    assert_eq!(tree.children("/a/b/c").unwrap(), Vec::<String>::new());
    assert_eq!(tree.descendants("/a").count(), 3);
    assert_eq!(tree.get("/a").unwrap().num_children, 2);
    tree.delete_node("/a/a", 9).unwrap();
    assert_eq!(tree.children("/a").unwrap(), ["b"]);
    tree.check_invariants().unwrap();
    let order: Vec<String> = tree.iter().map(|(node_path, _)| node_path).collect();
    assert_eq!(order[..4], ["/", "/a", "/ab", "/b"]);
}
