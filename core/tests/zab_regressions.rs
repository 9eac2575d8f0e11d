//! Regression tests named after real ZooKeeper data-loss and inconsistency bugs. Each builds
//! the interleaving the bug needed (a write that is not yet durable, a crash at the wrong
//! moment, successive minority leaders) and checks zkd comes through it: nothing that was
//! acknowledged is lost, and every replica ends with the same history.

mod harness;

use harness::Cluster;
use zk_core::node::{RoleName, StorageOp};
use zk_core::proto::{CreateMode, Request};
use zk_core::zab::make_zxid;
use zk_core::zab::message::{PeerMessage, SyncMode};

const OK: i32 = 0;

fn acked_new_leader(cluster: &Cluster, from: u64) -> bool {
    cluster
        .delivered
        .iter()
        .any(|(sender, _, message)| *sender == from && matches!(message, PeerMessage::AckNewLeader { .. }))
}

fn pending_ops(cluster: &Cluster, id: u64) -> Vec<StorageOp> {
    cluster.servers[&id].disk.pending().flat_map(|request| request.ops.clone()).collect()
}

/// A cluster where `lagging` missed some writes while down and now restarts with its
/// fsyncs held, so the test decides when its disk catches up.
fn restart_lagging_with_fsync_held() -> (Cluster, u64, u64) {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let lagging = if leader == 1 { 2 } else { 1 };
    cluster.crash(lagging);
    let mut session = cluster.connect(leader);
    for i in 0..3 {
        assert_eq!(cluster.create(&mut session, &format!("/missed{i}"), b"", CreateMode::Persistent).0, OK);
    }
    cluster.servers.get_mut(&lagging).unwrap().hold_fsync = true;
    cluster.record_messages = true;
    cluster.start(lagging);
    cluster.run_for(300);
    (cluster, leader, lagging)
}

/// ZOOKEEPER-3911: a follower acknowledged NEWLEADER before the txns of its DIFF sync were
/// durable; a crash then lost txns the leader counted as held by a quorum.
#[test]
fn zookeeper_3911_newleader_is_not_acked_before_the_diff_is_durable() {
    let (mut cluster, _leader, lagging) = restart_lagging_with_fsync_held();
    let diff = cluster.delivered.iter().any(|(_, to, message)| {
        *to == lagging
            && matches!(message, PeerMessage::Sync { mode: SyncMode::Diff, entries, .. } if entries.len() == 4)
    });
    assert!(diff, "the lagging follower got a DIFF of its four missed txns");
    assert!(pending_ops(&cluster, lagging).iter().any(|op| matches!(op, StorageOp::AppendLog { .. })));
    assert!(!acked_new_leader(&cluster, lagging), "NEWLEADER acked while the DIFF is not durable");
    assert!(!cluster.node(lagging).is_serving());
    // The disk catches up (log first, then currentEpoch): only then the acknowledgement.
    cluster.fsync(lagging);
    cluster.drive();
    cluster.fsync(lagging);
    cluster.run_for(100);
    assert!(acked_new_leader(&cluster, lagging));
    assert!(cluster.node(lagging).is_serving());
    cluster.assert_replicas_agree();
}

/// ZOOKEEPER-4643: a follower wrote its new currentEpoch before the synced txns were
/// durable; after a crash it came back claiming the new epoch with an old log and could be
/// elected over servers that held the txns.
#[test]
fn zookeeper_4643_current_epoch_is_written_only_after_the_synced_txns_are_durable() {
    let (mut cluster, leader, lagging) = restart_lagging_with_fsync_held();
    let ops = pending_ops(&cluster, lagging);
    assert!(ops.iter().any(|op| matches!(op, StorageOp::AppendLog { .. })));
    assert!(
        !ops.iter().any(|op| matches!(op, StorageOp::CurrentEpoch(_))),
        "currentEpoch requested while the synced txns are not durable: {ops:?}"
    );
    // Crash now: the pending log append is lost, and so is nothing else: the follower comes
    // back with its old currentEpoch and its old log, consistent with each other.
    let epoch_before = cluster.node(lagging).current_epoch();
    cluster.crash(lagging);
    cluster.servers.get_mut(&lagging).unwrap().hold_fsync = false;
    cluster.start(lagging);
    assert!(cluster.node(lagging).current_epoch() <= epoch_before);
    // It cannot win an election against the servers that hold the txns.
    cluster.crash(leader);
    let new_leader = cluster.settle();
    assert_ne!(new_leader, lagging);
    cluster.run_for(300);
    let mut session = cluster.connect(new_leader);
    assert_eq!(cluster.get_data(&mut session, "/missed2", false), Some(Vec::new()));
    cluster.assert_replicas_agree();
    cluster.assert_no_committed_txn_lost();
}

/// ZOOKEEPER-4646: a follower acknowledged NEWLEADER and then logged the synced txns
/// asynchronously; a crash in between lost txns a quorum was counted as holding. Here the
/// leader counts nothing from a follower whose log is not durable, so a write that only
/// such a follower could have made a quorum for is never acknowledged to the client.
#[test]
fn zookeeper_4646_no_write_is_acknowledged_on_a_follower_log_that_is_not_durable() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let followers = cluster.others(leader);
    let (slow, down) = (followers[0], followers[1]);
    let mut session = cluster.connect(leader);
    cluster.crash(down);
    cluster.servers.get_mut(&slow).unwrap().hold_fsync = true;
    let xid = cluster.send(&mut session, harness::create_request("/needs-two", b"v", CreateMode::Persistent));
    cluster.run_for(200);
    assert!(!cluster.receive(&mut session).contains_key(&xid), "acknowledged with one durable copy");
    assert!(cluster.node(leader).committed_zxid() < cluster.node(leader).last_logged_zxid());
    // The slow follower crashes before its disk caught up; the leader dies too. The write
    // was never acknowledged, and the survivors agree without it.
    cluster.crash(slow);
    cluster.crash(leader);
    cluster.servers.get_mut(&slow).unwrap().hold_fsync = false;
    cluster.start(slow);
    cluster.start(down);
    let new_leader = cluster.settle();
    let mut session = cluster.connect(new_leader);
    assert_eq!(cluster.get_data(&mut session, "/needs-two", false), None);
    cluster.start(leader);
    cluster.settle();
    cluster.run_for(300);
    cluster.assert_replicas_agree();
    cluster.assert_no_committed_txn_lost();
}

/// ZOOKEEPER-3642: the leader crashed after sending a SNAP sync and before NEWLEADER; the
/// follower had the snapshot only in memory, yet took part in the next election as if it
/// held it. zkd's follower writes the snapshot through storage before any acknowledgement,
/// and a leader-elect establishes its epoch only once its own history is durable.
#[test]
fn zookeeper_3642_snap_sync_then_leader_crash_before_newleader() {
    let mut cluster = Cluster::new_with(3, 0, |config| {
        config.snapshot_txn_count = 5;
        config.history_entries_max = 2;
    });
    cluster.start_all();
    let leader = cluster.settle();
    let behind = if leader == 1 { 2 } else { 1 };
    let third = 6 - leader - behind;
    cluster.crash(behind);
    let mut session = cluster.connect(leader);
    for i in 0..12 {
        assert_eq!(cluster.create(&mut session, &format!("/snap{i}"), b"", CreateMode::Persistent).0, OK);
    }
    cluster.servers.get_mut(&behind).unwrap().hold_fsync = true;
    cluster.record_messages = true;
    cluster.start(behind);
    let snap_delivered = cluster.deliver_until(|_, to, message| {
        to == behind && matches!(message, PeerMessage::Sync { mode: SyncMode::Snap { .. }, .. })
    });
    let mut waited = 0;
    let mut snap_delivered = snap_delivered;
    while !snap_delivered && waited < 100 {
        cluster.run_for(5);
        waited += 1;
        snap_delivered = cluster.delivered.iter().any(|(_, to, message)| {
            *to == behind && matches!(message, PeerMessage::Sync { mode: SyncMode::Snap { .. }, .. })
        });
    }
    assert!(snap_delivered, "the follower was sent a SNAP");
    assert!(!acked_new_leader(&cluster, behind));
    // The leader dies before NEWLEADER reaches the follower.
    cluster.crash(leader);
    assert!(
        cluster.node(behind).durable().zxid < cluster.node(behind).last_logged_zxid()
            || cluster.servers[&behind].disk.pending_len() != 0
    );
    cluster.run_for(2_000);
    // Whatever the follower holds in memory, it does not lead an established epoch on it
    // before its disk holds it.
    if cluster.node(behind).role() == RoleName::Leading {
        assert_eq!(cluster.servers[&behind].disk.pending_len(), 0);
    }
    cluster.fsync(behind);
    cluster.servers.get_mut(&behind).unwrap().hold_fsync = false;
    cluster.fsync(behind);
    let new_leader = cluster.settle();
    assert!(new_leader == behind || new_leader == third);
    cluster.start(leader);
    cluster.settle();
    cluster.run_for(300);
    cluster.assert_replicas_agree();
    cluster.assert_no_committed_txn_lost();
    let mut session = cluster.connect(new_leader);
    assert_eq!(cluster.get_data(&mut session, "/snap11", false), Some(Vec::new()));
}

/// ZOOKEEPER-2832: successive minority leaders each logged a write nobody else saw; when
/// the ensemble healed, servers resolved the divergent tails differently. zkd finds the
/// exact point where each learner's history parts from the leader's and truncates there.
#[test]
fn zookeeper_2832_divergent_uncommitted_writes_are_resolved_identically() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let first = cluster.settle();
    let mut session = cluster.connect(first);
    assert_eq!(cluster.create(&mut session, "/base", b"", CreateMode::Persistent).0, OK);
    // The first leader, cut off without noticing, logs a write alone.
    let others = cluster.others(first);
    for &other in &others {
        cluster.blackhole(first, other);
    }
    cluster.send(&mut session, harness::create_request("/minority-1", b"v", CreateMode::Persistent));
    let divergent_1 = cluster.node(first).last_logged_zxid();
    cluster.partition(&[first], &others);
    let second = cluster.settle();
    assert_ne!(second, first);
    // The second leader, cut off in turn, logs another write alone in its own epoch.
    let mut session = cluster.connect(second);
    let rest = cluster.others(second);
    for &other in &rest {
        cluster.blackhole(second, other);
    }
    cluster.send(&mut session, harness::create_request("/minority-2", b"v", CreateMode::Persistent));
    let divergent_2 = cluster.node(second).last_logged_zxid();
    assert!(zk_core::zab::epoch_of(divergent_2) > zk_core::zab::epoch_of(divergent_1));
    cluster.partition(&[second], &rest);
    // The first leader and the third server now form the quorum.
    cluster.heal();
    cluster.partition(&[second], &rest);
    let third = cluster.settle();
    assert_ne!(third, second);
    let mut session = cluster.connect(third);
    assert_eq!(cluster.create(&mut session, "/majority", b"", CreateMode::Persistent).0, OK);
    cluster.heal();
    cluster.settle();
    cluster.run_for(500);
    for id in cluster.ids() {
        let tree = &cluster.node(id).database().tree;
        assert!(tree.contains("/base") && tree.contains("/majority"), "server {id}");
        assert!(!tree.contains("/minority-1") && !tree.contains("/minority-2"), "server {id} kept a divergent write");
        let zxids: Vec<i64> = cluster.node(id).history().map(|entry| entry.zxid()).collect();
        assert!(!zxids.contains(&divergent_1) || cluster.committed.contains_key(&divergent_1));
        assert!(!zxids.contains(&divergent_2), "server {id} kept the second minority write");
    }
    cluster.assert_replicas_agree();
    cluster.assert_no_committed_txn_lost();
    assert!(make_zxid(1, 0) > 0);
}

/// ZOOKEEPER-2355: a follower failed while receiving the proposal that created an
/// ephemeral; after it came back, the ephemeral outlived its session on that replica
/// forever. In zkd the follower's unacknowledged tail is resolved by sync, and the
/// session's close removes the ephemeral on every replica.
#[test]
fn zookeeper_2355_ephemeral_is_deleted_everywhere_after_a_follower_fails_mid_proposal() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let followers = cluster.others(leader);
    let failing = followers[0];
    let mut session = cluster.connect(leader);
    cluster.servers.get_mut(&failing).unwrap().hold_fsync = true;
    assert_eq!(cluster.create(&mut session, "/eph", b"", CreateMode::Ephemeral).0, OK);
    assert_ne!(cluster.servers[&failing].disk.pending_len(), 0, "the proposal is not durable on the failing follower");
    // The follower fails mid-proposal; its unfsynced copy is lost.
    cluster.crash(failing);
    cluster.servers.get_mut(&failing).unwrap().hold_fsync = false;
    // The session ends while it is down.
    let reply = cluster.call(&mut session, Request::CloseSession).expect("close acknowledged");
    assert_eq!(reply.0.err, OK);
    cluster.start(failing);
    cluster.settle();
    cluster.run_for(300);
    for id in cluster.ids() {
        assert!(!cluster.node(id).database().tree.contains("/eph"), "server {id} kept the ephemeral");
        assert!(cluster.node(id).database().tree.ephemerals(session.session_id).is_empty());
    }
    cluster.assert_replicas_agree();

    // The other order: the follower logged the create durably, then failed before the
    // commit reached it, and the session expired while it was down.
    let mut session = cluster.connect(leader);
    assert_eq!(cluster.create(&mut session, "/eph2", b"", CreateMode::Ephemeral).0, OK);
    cluster.crash(failing);
    let connection = session.connection;
    let now = cluster.now;
    cluster.node_mut(leader).handle_client_disconnected(connection, now);
    cluster.run_for(3_000);
    cluster.start(failing);
    cluster.settle();
    cluster.run_for(300);
    for id in cluster.ids() {
        assert!(!cluster.node(id).database().tree.contains("/eph2"), "server {id} kept the expired ephemeral");
    }
    cluster.assert_replicas_agree();
    cluster.assert_no_committed_txn_lost();
}
