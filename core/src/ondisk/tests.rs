use super::*;
use crate::proto::Id;
use crate::txn::{Txn, TxnHeader};
use proptest::prelude::*;

fn entry(prev_zxid: i64, zxid: i64) -> LogEntry {
    LogEntry {
        prev_zxid,
        header: TxnHeader { session_id: 7, cxid: zxid as i32, zxid, time_ms: 1_000 + zxid },
        txn: Txn::SetData { path: "/a".into(), data: Some(vec![zxid as u8; 3]), version: 1 },
    }
}

/// Entries with these zxids, each chained to the one before, the first to `prev_zxid`.
fn chain(prev_zxid: i64, zxids: &[i64]) -> Vec<LogEntry> {
    let mut prev = prev_zxid;
    zxids
        .iter()
        .map(|&zxid| {
            let entry = entry(prev, zxid);
            prev = zxid;
            entry
        })
        .collect()
}

/// Where each record of `entries` ends once encoded.
fn record_ends(entries: &[LogEntry]) -> Vec<usize> {
    entries
        .iter()
        .scan(0, |end, entry| {
            *end += encode_log_record(entry).len();
            Some(*end)
        })
        .collect()
}

#[test]
fn log_record_byte_layout() {
    let entry = LogEntry {
        prev_zxid: 0,
        header: TxnHeader { session_id: 0, cxid: 0, zxid: 1, time_ms: 0 },
        txn: Txn::CreateSession { timeout_ms: 4000 },
    };
    let record = encode_log_record(&entry);
    // Varints: prev 0, session 0, cxid 0, zxid 1 (zigzag 2), time 0, variant 6,
    // timeout 4000 (zigzag 8000: marker 0xfb then u16 LE).
    let payload = [0, 0, 0, 2, 0, 6, 0xfb, 0x40, 0x1f];
    assert_eq!(&record[..4], b"ZKDL");
    assert_eq!(&record[4..8], &[9, 0, 0, 0]);
    assert_eq!(&record[8..12], &crc32c::crc32c(&payload).to_le_bytes());
    assert_eq!(&record[8..12], &[0xef, 0x68, 0xad, 0x1a]);
    assert_eq!(&record[12..], &payload);
    assert_eq!(scan_log(&record).unwrap(), LogScan { entries: vec![entry], valid_len: 21, torn_tail: false });
    assert_eq!(scan_log(&[]).unwrap(), LogScan { entries: vec![], valid_len: 0, torn_tail: false });
}

#[test]
fn a_cut_at_every_byte_keeps_the_records_before_it() {
    let entries = chain(0, &[1, 2, 3]);
    let bytes = encode_log_records(&entries);
    let ends = record_ends(&entries);
    for cut in 0..=bytes.len() {
        let scanned = scan_log(&bytes[..cut]).unwrap();
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        assert_eq!(scanned.entries, entries[..whole], "cut at {cut}");
        let valid_len = if whole == 0 { 0 } else { ends[whole - 1] };
        assert_eq!(scanned.valid_len, valid_len, "cut at {cut}");
        assert_eq!(scanned.torn_tail, cut != valid_len, "cut at {cut}");
    }
}

#[test]
fn zero_padding_after_the_records_is_a_tail_but_not_torn() {
    let entries = chain(0, &[1, 2, 3]);
    let mut bytes = encode_log_records(&entries);
    let valid_len = bytes.len();
    bytes.resize(valid_len + 4096, 0);
    assert_eq!(scan_log(&bytes).unwrap(), LogScan { entries, valid_len, torn_tail: false });
    // A record cut short and then zeros is torn.
    let mut torn = encode_log_records(&chain(0, &[1, 2]));
    torn.truncate(torn.len() - 3);
    torn.resize(torn.len() + 100, 0);
    assert!(scan_log(&torn).unwrap().torn_tail);
}

#[test]
fn a_flipped_byte_in_the_middle_record_is_corruption_naming_its_offset() {
    let entries = chain(0, &[1, 2, 3]);
    let ends = record_ends(&entries);
    let clean = encode_log_records(&entries);
    // Every byte of the middle record: magic, length, checksum and payload.
    for position in ends[0]..ends[1] {
        let mut bytes = clean.clone();
        bytes[position] ^= 0x10;
        match scan_log(&bytes) {
            Err(StorageError::LogCorrupt { offset, .. }) => assert_eq!(offset, ends[0], "flip at {position}"),
            other => panic!("flip at {position}: {other:?}"),
        }
    }
}

#[test]
fn a_flipped_byte_in_the_last_record_is_a_torn_tail() {
    let entries = chain(0, &[1, 2, 3]);
    let ends = record_ends(&entries);
    let clean = encode_log_records(&entries);
    for position in ends[1]..ends[2] {
        let mut bytes = clean.clone();
        bytes[position] ^= 0x01;
        let scanned = scan_log(&bytes).unwrap();
        assert_eq!((scanned.entries.len(), scanned.valid_len, scanned.torn_tail), (2, ends[1], true));
    }
}

#[test]
fn an_oversized_length_is_a_bad_record() {
    let mut bytes = encode_log_records(&chain(0, &[1]));
    let valid_len = bytes.len();
    bytes.extend_from_slice(b"ZKDL");
    bytes.extend_from_slice(&(LOG_RECORD_BYTES_MAX as u32 + 1).to_le_bytes());
    bytes.extend_from_slice(&[0xff; 8]);
    assert_eq!(scan_log(&bytes).unwrap().valid_len, valid_len);
    assert!(scan_log(&bytes).unwrap().torn_tail);
}

#[test]
fn a_zxid_that_does_not_increase_is_corruption() {
    let entries = vec![entry(0, 1), entry(1, 5), entry(5, 5)];
    let ends = record_ends(&entries);
    let error = scan_log(&encode_log_records(&entries)).unwrap_err();
    assert_eq!(error, StorageError::LogZxidOrder { file: String::new(), offset: ends[1], zxid: 5, previous_zxid: 5 });
}

#[test]
fn truncation_offset_keeps_records_up_to_the_zxid() {
    let entries = chain(0, &[10, 20, 30]);
    let ends = record_ends(&entries);
    let mut bytes = encode_log_records(&entries);
    for (zxid, offset) in [(0, 0), (10, ends[0]), (15, ends[0]), (20, ends[1]), (30, ends[2]), (99, ends[2])] {
        assert_eq!(log_truncation_offset(&bytes, zxid), Ok(offset), "zxid {zxid}");
    }
    bytes.extend_from_slice(b"ZKDL\x05");
    assert_eq!(log_truncation_offset(&bytes, 99), Ok(ends[2]));
    bytes[ends[0] + 1] ^= 1;
    assert!(log_truncation_offset(&bytes, 99).is_err());
}

fn open() -> Vec<Acl> {
    crate::acl::open_acl_unsafe()
}

/// A database with every kind of node, quota nodes, several ACLs (one released, so the
/// cache's next ref is past its largest) and sessions.
fn rich_database() -> Database {
    let mut tree = DataTree::new();
    let digest = vec![Acl { perms: 31, id: Id { scheme: "digest".into(), id: "u:h".into() } }];
    let ip = vec![Acl { perms: 1, id: Id { scheme: "ip".into(), id: "10.0.0.0/8".into() } }];
    let mut zxid = 0;
    let mut create = |tree: &mut DataTree, path: &str, data: &[u8], acl: &[Acl], kind: NodeKind| {
        zxid += 1;
        tree.create_node(path, Some(data.to_vec()), acl, kind, -1, zxid, 500 + zxid).unwrap();
    };
    create(&mut tree, "/app", b"v", &open(), NodeKind::Persistent);
    create(&mut tree, "/app/e1", b"", &digest, NodeKind::Ephemeral { owner: 5 });
    create(&mut tree, "/app/e2", b"xy", &open(), NodeKind::Ephemeral { owner: 6 });
    create(&mut tree, "/app/c", b"", &ip, NodeKind::Container);
    create(&mut tree, "/app/c/t", b"ttl", &open(), NodeKind::Ttl { ttl_ms: 60_000 });
    let released = [Acl { perms: 1, id: Id { scheme: "x".into(), id: "y".into() } }];
    create(&mut tree, "/tmp", b"", &released, NodeKind::Persistent);
    create(&mut tree, "/zookeeper/quota/app", b"", &open(), NodeKind::Persistent);
    create(&mut tree, "/zookeeper/quota/app/zookeeper_limits", b"count=10,bytes=-1", &open(), NodeKind::Persistent);
    create(&mut tree, "/zookeeper/quota/app/zookeeper_stats", b"", &open(), NodeKind::Persistent);
    tree.set_data("/app", None, 1, 20, 900).unwrap();
    tree.delete_node("/tmp", 21).unwrap();
    tree.check_invariants().unwrap();
    assert!(tree.quota_of("/app/c").is_some());
    let sessions = [(5, 4_000), (6, 30_000), (-3, 10_000)].into_iter().collect();
    Database::from_parts(tree, sessions, 21, WATCHES_MAX_DEFAULT)
}

/// The image a node hands its driver is the state at the moment it was taken, however
/// much the tree changes before the driver encodes it.
#[test]
fn an_image_keeps_its_moment_while_the_database_changes() {
    let mut database = rich_database();
    let mut zxid = database.last_processed_zxid();
    let mut apply = |database: &mut Database, session_id: i64, txn: Txn| {
        zxid += 1;
        let header = TxnHeader { zxid, session_id, time_ms: 1_000 + zxid, ..Default::default() };
        database.apply(&header, &txn, &|_, _| true);
    };
    let create = |path: String, kind| Txn::Create {
        op: crate::proto::OpCode::Create,
        path,
        data: Some(vec![7; 40]),
        acl: open(),
        kind,
        parent_cversion: -1,
    };
    // Enough nodes for a tree several levels deep.
    for index in 0..3_000 {
        apply(&mut database, 0, create(format!("/app/n{index:05}"), crate::txn::CreateKind::Persistent));
    }
    let at_capture = encode_snapshot(&database);
    let image = SnapshotImage::of(&database);
    assert_eq!(image.zxid(), database.last_processed_zxid());
    for index in (0..3_000).step_by(7) {
        let path = format!("/app/n{index:05}");
        apply(&mut database, 0, Txn::SetData { path: path.clone(), data: Some(vec![1; 9]), version: 1 });
        if index % 2 == 0 {
            apply(&mut database, 0, Txn::Delete { op: crate::proto::OpCode::Delete, path });
        }
    }
    apply(&mut database, 0, Txn::SetAcl { path: "/app".into(), acl: vec![], version: 1 });
    apply(&mut database, 77, Txn::CreateSession { timeout_ms: 5_000 });
    apply(&mut database, 77, create("/app/e77".into(), crate::txn::CreateKind::Ephemeral));
    apply(&mut database, 5, Txn::CloseSession { paths_to_delete: vec!["/app/e1".into()] });
    database.check_invariants();
    assert_ne!(encode_snapshot(&database), at_capture);
    assert_eq!(image.encode(), at_capture);
    let restored = decode_snapshot(&image.encode()).unwrap();
    assert_eq!(restored.tree.node_count(), image.node_count());
}

#[test]
fn snapshot_round_trips_every_index() {
    let database = rich_database();
    let bytes = encode_snapshot(&database);
    assert_eq!(&bytes[..8], b"ZKDS\x01\x00\x00\x00");
    assert_eq!(&bytes[8..16], &21i64.to_le_bytes());
    let snapshot = decode_snapshot(&bytes).unwrap();
    assert_eq!(snapshot.zxid, 21);
    assert_eq!(snapshot.tree, database.tree);
    assert_eq!(&snapshot.sessions, database.sessions());
    assert_eq!(snapshot.tree.ephemerals(5).len(), 1);
    assert_eq!(snapshot.tree.data_size_approximate(), database.tree.data_size_approximate());
    let restored = snapshot.into_database(WATCHES_MAX_DEFAULT);
    assert_eq!(restored.last_processed_zxid(), 21);
    // Deterministic: the same database, and the database rebuilt from it, give the same bytes.
    assert_eq!(encode_snapshot(&database), bytes);
    assert_eq!(encode_snapshot(&restored), bytes);
    let empty = decode_snapshot(&encode_snapshot(&Database::default())).unwrap();
    assert_eq!((empty.zxid, empty.tree, empty.sessions), (0, DataTree::new(), BTreeMap::new()));
}

#[test]
fn a_damaged_snapshot_is_an_error() {
    let bytes = encode_snapshot(&rich_database());
    for (position, offset) in [(0, 0), (5, 4), (9, 16), (17, 16), (bytes.len() / 2, 16), (bytes.len() - 1, 16)] {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x40;
        match decode_snapshot(&damaged) {
            Err(StorageError::SnapshotCorrupt { offset: at, .. }) => assert_eq!(at, offset, "flip at {position}"),
            other => panic!("flip at {position}: {other:?}"),
        }
    }
    assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
    assert!(decode_snapshot(&bytes[..10]).is_err());
}

/// A snapshot framed with a correct checksum around a body the encoder would never write
/// (the fields of [`SnapshotBodyRef`], with any list of nodes).
fn snapshot_with_nodes(nodes: &[&str], sessions: Vec<(i64, i32)>) -> Vec<u8> {
    #[derive(Serialize)]
    struct AnyBody<'a> {
        acls: &'a [(AclRef, Vec<Acl>)],
        acl_ref_next: AclRef,
        nodes: Vec<SnapshotNodeRef<'a>>,
        sessions: &'a [(i64, i32)],
    }
    let data = Some(Vec::new());
    let stat = PersistedStat::default();
    let nodes = nodes
        .iter()
        .map(|path| SnapshotNodeRef { path, data: &data, acl: 0, stat, kind: NodeKind::Persistent })
        .collect();
    let acls = [(0, open())];
    frame_snapshot(3, &codec::encode(&AnyBody { acls: &acls, acl_ref_next: 1, nodes, sessions: &sessions }))
}

#[test]
fn children_are_counted_whether_or_not_siblings_come_together() {
    let nodes = ["/", "/a", "/b", "/a/x", "/a/y", "/b/y", "/a/z", "/a/x/deep"];
    let tree = decode_snapshot(&snapshot_with_nodes(&nodes, vec![])).unwrap().tree;
    let children = |path: &str| tree.get(path).unwrap().num_children;
    assert_eq!([children("/"), children("/a"), children("/b"), children("/a/x"), children("/a/z")], [2, 3, 1, 1, 0]);
    assert_eq!(tree.check_invariants(), Ok(()));
}

#[test]
fn a_snapshot_whose_tree_could_not_exist_is_an_error() {
    assert!(decode_snapshot(&snapshot_with_nodes(&["/", "/a", "/a/b"], vec![(1, 2), (4, 5)])).is_ok());
    for (nodes, expected) in [
        (&["/", "/a/b"][..], "before its parent"),
        (&["/a"], "before its parent"),
        (&[], "no root"),
        (&["/", "/a", "/a"], "/a appears twice"),
        (&["/", "/a/"], "Invalid path"),
        (&["/", "/"], "/ appears twice"),
    ] {
        let error = decode_snapshot(&snapshot_with_nodes(nodes, vec![])).unwrap_err();
        assert!(error.to_string().contains(expected), "{nodes:?}: {error}");
    }
    assert!(decode_snapshot(&snapshot_with_nodes(&["/"], vec![(4, 5), (4, 6)])).is_err());
}

#[test]
fn epoch_round_trips_and_damage_is_an_error() {
    for epoch in [0, 1, 7, u32::MAX] {
        assert_eq!(decode_epoch(&encode_epoch(epoch)), Ok(epoch));
    }
    let bytes = encode_epoch(3);
    assert_eq!(bytes.len(), EPOCH_FILE_BYTES);
    for position in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x02;
        assert!(decode_epoch(&damaged).is_err(), "flip at {position}");
    }
    assert!(decode_epoch(&bytes[..11]).is_err());
    assert!(decode_epoch(&[bytes.clone(), vec![0]].concat()).is_err());
}

fn snapshot_at(zxid: i64) -> Vec<u8> {
    encode_snapshot(&Database::from_parts(DataTree::new(), BTreeMap::new(), zxid, WATCHES_MAX_DEFAULT))
}

#[test]
fn recover_without_files_is_a_fresh_server() {
    let recovered = recover(&RecoveryInput::default()).unwrap();
    assert_eq!(recovered.database.last_processed_zxid(), 0);
    assert_eq!((recovered.history, recovered.accepted_epoch, recovered.current_epoch), (vec![], 0, 0));
    assert_eq!(recovered.truncate, None);
}

#[test]
fn recover_chains_the_log_after_the_snapshot_across_segments() {
    let old = encode_log_records(&chain(0, &[1, 2, 3]));
    let newer = encode_log_records(&chain(3, &[4, 5]));
    let snapshot = snapshot_at(2);
    let (accepted, current) = (encode_epoch(2), encode_epoch(1));
    let log = [LogSegment { name: "log.1", bytes: &old }, LogSegment { name: "log.4", bytes: &newer }];
    let input = RecoveryInput {
        snapshot: Some(&snapshot),
        log: &log,
        accepted_epoch: Some(&accepted),
        current_epoch: Some(&current),
    };
    let recovered = recover(&input).unwrap();
    assert_eq!(recovered.database.last_processed_zxid(), 2);
    assert_eq!(recovered.history, [chain(2, &[3]), chain(3, &[4, 5])].concat());
    assert_eq!((recovered.accepted_epoch, recovered.current_epoch, recovered.truncate), (2, 1, None));
}

#[test]
fn recover_drops_a_divergent_leftover_after_the_snapshot() {
    // The server installed a snapshot at 2:5 from a new leader, then crashed before the
    // log caught up: the old log still holds an epoch-1 suffix that never committed.
    let zxid = |epoch: i64, counter: i64| epoch << 32 | counter;
    let snapshot = snapshot_at(zxid(2, 5));
    let old = encode_log_records(&chain(0, &[zxid(1, 1), zxid(1, 2)]));
    let entries = [chain(zxid(2, 5), &[zxid(2, 6), zxid(2, 7)]), chain(zxid(1, 9), &[zxid(3, 1)])].concat();
    let newer = encode_log_records(&entries);
    let log = [LogSegment { name: "a", bytes: &old }, LogSegment { name: "b", bytes: &newer }];
    let recovered = recover(&RecoveryInput { snapshot: Some(&snapshot), log: &log, ..Default::default() }).unwrap();
    assert_eq!(recovered.history, entries[..2]);
    assert_eq!(recovered.truncate, Some((1, record_ends(&entries)[1])));
    // Without a snapshot the history must start from zxid 0.
    let recovered = recover(&RecoveryInput { log: &log[1..], ..Default::default() }).unwrap();
    assert_eq!((recovered.history.len(), recovered.truncate), (0, Some((0, 0))));
}

#[test]
fn recovery_from_halves_computed_apart_is_recovery() {
    let old = encode_log_records(&chain(0, &[1, 2, 3]));
    let newer = encode_log_records(&chain(3, &[4, 5]));
    let snapshot = snapshot_at(2);
    let log = [LogSegment { name: "log.1", bytes: &old }, LogSegment { name: "log.4", bytes: &newer }];
    let input = RecoveryInput { snapshot: Some(&snapshot), log: &log, ..Default::default() };
    let whole = recover(&input).unwrap();
    let halves = recover_scanned(&input, decode_snapshot_database(Some(&snapshot)), scan_log_segments(&log)).unwrap();
    assert_eq!((halves.history, halves.truncate), (whole.history, whole.truncate));
    assert_eq!(halves.database.last_processed_zxid(), whole.database.last_processed_zxid());
    // A damaged snapshot is reported before a damaged log, as by `recover`: the driver
    // then tries an older snapshot instead of refusing to start.
    let mut bad_snapshot = snapshot.clone();
    let last = bad_snapshot.len() - 1;
    bad_snapshot[last] ^= 1;
    let mut bad_log = old.clone();
    bad_log[20] ^= 1;
    let log = [LogSegment { name: "log.1", bytes: &bad_log }, LogSegment { name: "log.4", bytes: &newer }];
    let input = RecoveryInput { snapshot: Some(&bad_snapshot), log: &log, ..Default::default() };
    let error =
        recover_scanned(&input, decode_snapshot_database(Some(&bad_snapshot)), scan_log_segments(&log)).unwrap_err();
    assert!(matches!(error, StorageError::SnapshotCorrupt { .. }), "{error}");
    assert!(matches!(recover(&input).unwrap_err(), StorageError::SnapshotCorrupt { .. }));
    let input = RecoveryInput { snapshot: Some(&snapshot), log: &log, ..Default::default() };
    let error =
        recover_scanned(&input, decode_snapshot_database(Some(&snapshot)), scan_log_segments(&log)).unwrap_err();
    assert!(matches!(error, StorageError::LogCorrupt { .. }), "{error}");
}

#[test]
fn recover_cuts_a_torn_tail_and_trailing_padding() {
    let mut bytes = encode_log_records(&chain(0, &[1, 2]));
    let valid_len = bytes.len();
    bytes.extend_from_slice(&encode_log_record(&entry(2, 3))[..7]);
    let log = [LogSegment { name: "a", bytes: &bytes }];
    let recovered = recover(&RecoveryInput { log: &log, ..Default::default() }).unwrap();
    assert_eq!((recovered.history.len(), recovered.truncate), (2, Some((0, valid_len))));
    // Padding in an older segment stays; at the end of the log it is cut.
    let mut padded = encode_log_records(&chain(0, &[1]));
    let padded_len = padded.len();
    padded.resize(padded_len + 64, 0);
    let second = encode_log_records(&chain(1, &[2]));
    let log = [LogSegment { name: "a", bytes: &padded }, LogSegment { name: "b", bytes: &second }];
    let recovered = recover(&RecoveryInput { log: &log, ..Default::default() }).unwrap();
    assert_eq!((recovered.history.len(), recovered.truncate), (2, None));
    let recovered = recover(&RecoveryInput { log: &log[..1], ..Default::default() }).unwrap();
    assert_eq!((recovered.history.len(), recovered.truncate), (1, Some((0, padded_len))));
}

#[test]
fn recover_refuses_corruption_and_names_the_file() {
    let first = encode_log_records(&chain(0, &[1, 2]));
    let mut torn = first.clone();
    torn.truncate(first.len() - 1);
    let second = encode_log_records(&chain(2, &[3]));
    let log = [LogSegment { name: "log.1", bytes: &torn }, LogSegment { name: "log.3", bytes: &second }];
    let error = recover(&RecoveryInput { log: &log, ..Default::default() }).unwrap_err();
    assert!(error.to_string().starts_with("log file \"log.1\" is corrupt at byte"), "{error}");
    let mut flipped = encode_log_records(&chain(0, &[1, 2, 3]));
    flipped[20] ^= 1;
    let log = [LogSegment { name: "log.9", bytes: &flipped }];
    let error = recover(&RecoveryInput { log: &log, ..Default::default() }).unwrap_err();
    assert!(matches!(&error, StorageError::LogCorrupt { file, offset: 0, .. } if file == "log.9"), "{error}");
    let bad_epoch = vec![0; EPOCH_FILE_BYTES];
    let error = recover(&RecoveryInput { current_epoch: Some(&bad_epoch), ..Default::default() }).unwrap_err();
    assert!(error.to_string().contains("currentEpoch"), "{error}");
    let bad_snapshot = b"ZKDS".to_vec();
    assert!(recover(&RecoveryInput { snapshot: Some(&bad_snapshot), ..Default::default() }).is_err());
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_older_one_and_the_log_after_it() {
    // log.1 holds 1 and 2, snapshot.2 follows; log.3 holds 3, snapshot.3 follows; log.4 holds 4.
    let (log1, log3, log4) = (
        encode_log_records(&chain(0, &[1, 2])),
        encode_log_records(&chain(2, &[3])),
        encode_log_records(&chain(3, &[4])),
    );
    let log = [
        LogSegment { name: "log.1", bytes: &log1 },
        LogSegment { name: "log.3", bytes: &log3 },
        LogSegment { name: "log.4", bytes: &log4 },
    ];
    let damage = |mut bytes: Vec<u8>| {
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        bytes
    };
    let (older, newest) = (snapshot_at(2), damage(snapshot_at(3)));
    let snapshots = [
        SnapshotFile { name: "snapshot.2", zxid: 2, bytes: &older },
        SnapshotFile { name: "snapshot.3", zxid: 3, bytes: &newest },
    ];
    let input = FallbackInput { snapshots: &snapshots, log: &log, log_first_zxids: &[1, 3, 4], ..Default::default() };
    let recovered = recover_with_fallback(&input).unwrap();
    assert_eq!(recovered.database.last_processed_zxid(), 2);
    assert_eq!(recovered.history, [chain(2, &[3]), chain(3, &[4])].concat());
    assert_eq!(recovered.truncate, None);

    // The newest first, reading the log from log.3; then the older one, from log.1.
    let mut fallback = SnapshotFallback::new(&[2, 3], &[1, 3, 4]);
    assert_eq!(fallback.next_attempt(), Some(RecoveryAttempt { snapshot_zxid: Some(3), first_segment: 1 }));
    let newest_input = RecoveryInput { snapshot: Some(&newest), log: &log[1..], ..Default::default() };
    let judged = fallback.judge(
        "snapshot.3",
        &newest_input,
        decode_snapshot_database(Some(&newest)),
        scan_log_segments(&log[1..]),
    );
    assert_eq!(judged.map(|recovered| recovered.is_some()), Ok(false), "damaged: try the next");
    assert!(fallback.problems()[0].starts_with("snapshot.3: byte "), "{:?}", fallback.problems());
    assert_eq!(fallback.next_attempt(), Some(RecoveryAttempt { snapshot_zxid: Some(2), first_segment: 0 }));
    assert_eq!(fallback.next_attempt(), None);
    // Without snapshots: one attempt, from an empty database and the whole log.
    let mut fresh = SnapshotFallback::new(&[], &[1, 3, 4]);
    assert_eq!(fresh.next_attempt(), Some(RecoveryAttempt { snapshot_zxid: None, first_segment: 0 }));
    let recovered = recover_with_fallback(&FallbackInput { snapshots: &[], ..input }).unwrap();
    assert_eq!(recovered.history.len(), 4);
}

#[test]
fn without_a_usable_snapshot_recovery_refuses_naming_the_files() {
    let (log1, log4) = (encode_log_records(&chain(0, &[1, 2])), encode_log_records(&chain(3, &[4])));
    // log.3 holds a record that does not chain from snapshot.2's history.
    let divergent = encode_log_records(&chain(1, &[3]));
    let log = [
        LogSegment { name: "log.1", bytes: &log1 },
        LogSegment { name: "log.3", bytes: &divergent },
        LogSegment { name: "log.4", bytes: &log4 },
    ];
    let mut newest = snapshot_at(3);
    newest[SNAPSHOT_HEADER_BYTES] ^= 1;
    let older = snapshot_at(2);
    let snapshots = [
        SnapshotFile { name: "snapshot.2", zxid: 2, bytes: &older },
        SnapshotFile { name: "snapshot.3", zxid: 3, bytes: &newest },
    ];
    let input = FallbackInput { snapshots: &snapshots, log: &log, log_first_zxids: &[1, 3, 4], ..Default::default() };
    let error = recover_with_fallback(&input).unwrap_err();
    let message = error.to_string();
    assert!(matches!(&error, StorageError::NoUsableSnapshot { problems } if problems.len() == 2), "{message}");
    assert!(message.contains("snapshot.3: byte "), "{message}");
    assert!(message.contains("the older snapshot \"snapshot.2\" does not lead into log file \"log.3\""), "{message}");
    // Every snapshot damaged: refused, each one named, rather than a start from the log alone.
    let damaged_older = snapshot_at(2)[..SNAPSHOT_HEADER_BYTES].to_vec();
    let snapshots = [
        SnapshotFile { name: "snapshot.2", zxid: 2, bytes: &damaged_older },
        SnapshotFile { name: "snapshot.3", zxid: 3, bytes: &newest },
    ];
    let error = recover_with_fallback(&FallbackInput { snapshots: &snapshots, ..input }).unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("no snapshot can be used: snapshot.3: byte "), "{message}");
    assert!(message.contains("; snapshot.2: byte "), "{message}");
}

proptest! {
    #[test]
    fn recover_never_panics_on_random_bytes(
        snapshot in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        segments in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..128), 0..3),
        accepted in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
    ) {
        let log: Vec<LogSegment<'_>> = segments.iter().map(|bytes| LogSegment { name: "x", bytes }).collect();
        let input = RecoveryInput {
            snapshot: snapshot.as_deref(),
            log: &log,
            accepted_epoch: accepted.as_deref(),
            current_epoch: None,
        };
        let _ = recover(&input);
    }

    #[test]
    fn damage_to_a_log_keeps_a_prefix_or_is_refused(
        count in 1usize..6,
        position in any::<prop::sample::Index>(),
        mask in 1u8..,
        cut in any::<prop::sample::Index>(),
    ) {
        let entries = chain(0, &(1..=count as i64).collect::<Vec<_>>());
        let mut bytes = encode_log_records(&entries);
        let flipped = position.index(bytes.len());
        bytes[flipped] ^= mask;
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(scanned) = scan_log(&bytes) {
            prop_assert!(entries.starts_with(&scanned.entries));
            prop_assert!(scanned.valid_len <= bytes.len());
            let log = [LogSegment { name: "x", bytes: &bytes }];
            let recovered = recover(&RecoveryInput { log: &log, ..Default::default() }).unwrap();
            prop_assert_eq!(recovered.history, scanned.entries);
        }
    }

    #[test]
    fn checksummed_garbage_never_panics(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..48), 0..4)) {
        let mut bytes = Vec::new();
        for payload in &payloads {
            bytes.extend_from_slice(&LOG_RECORD_MAGIC);
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
            bytes.extend_from_slice(payload);
        }
        let _ = scan_log(&bytes);
        let _ = decode_snapshot(&frame_snapshot(1, &payloads.concat()));
    }
}
