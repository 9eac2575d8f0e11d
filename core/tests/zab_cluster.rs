//! Cluster behaviour of the sans-IO `Node`, driven by the virtual-time harness: elections,
//! failover, forwarding, observers, sync, session expiry, and the three ways a learner is
//! brought up to date (DIFF, TRUNC, SNAP).

mod harness;

use harness::Cluster;
use zk_core::node::RoleName;
use zk_core::proto::{CreateMode, Request, SetDataRequest, SyncRequest};
use zk_core::ErrorCode;

const OK: i32 = 0;

#[test]
fn standalone_serves_as_an_ensemble_of_one() {
    let mut cluster = Cluster::new(1, 0);
    cluster.start_all();
    let leader = cluster.settle();
    assert_eq!(leader, 1);
    assert_eq!(cluster.node(1).current_epoch(), 1);
    let mut session = cluster.connect(1);
    assert_eq!(cluster.create(&mut session, "/a", b"one", CreateMode::Persistent), (OK, "/a".into()));
    assert_eq!(cluster.get_data(&mut session, "/a", false), Some(b"one".to_vec()));
    // A restart recovers the tree from the log and elects itself in a new epoch.
    cluster.crash(1);
    cluster.start(1);
    cluster.settle();
    assert_eq!(cluster.node(1).current_epoch(), 2);
    let mut session = cluster.connect(1);
    assert_eq!(cluster.get_data(&mut session, "/a", false), Some(b"one".to_vec()));
}

#[test]
fn three_servers_elect_the_highest_id_when_histories_tie() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    assert_eq!(cluster.settle(), 3);
    for id in [1, 2] {
        assert_eq!(cluster.node(id).role(), RoleName::Following);
        assert_eq!(cluster.node(id).leader(), Some(3));
        assert_eq!(cluster.node(id).current_epoch(), 1);
    }
}

#[test]
fn staggered_starts_join_the_established_leader() {
    let mut cluster = Cluster::new(5, 0);
    for id in [1, 2, 3] {
        cluster.start(id);
    }
    let leader = cluster.settle();
    assert_eq!(leader, 3, "the highest id among the quorum that started");
    cluster.run_for(1_000);
    // Late servers with higher ids do not take over: they join the existing leader.
    cluster.start(5);
    cluster.run_for(500);
    cluster.start(4);
    cluster.run_for(500);
    assert_eq!(cluster.leader(), Some(3));
    for id in [4, 5] {
        assert_eq!(cluster.node(id).role(), RoleName::Following, "server {id}");
        assert!(cluster.node(id).is_serving());
    }
}

#[test]
fn writes_through_followers_are_forwarded_and_replicated() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let follower = if leader == 1 { 2 } else { 1 };
    let mut session = cluster.connect(follower);
    for i in 0..20 {
        let path = format!("/n{i}");
        assert_eq!(cluster.create(&mut session, &path, b"x", CreateMode::Persistent).0, OK);
    }
    cluster.run_for(100);
    cluster.assert_replicas_agree();
    assert_eq!(cluster.node(leader).database().tree.children("/").unwrap().len(), 21);
    // The leader counts the sizes of its proposals (srvr, mntr); followers never propose.
    let sizes = cluster.node(leader).proposal_sizes();
    assert!(0 < sizes.min && sizes.min <= sizes.last && sizes.last <= sizes.max, "{sizes:?}");
    assert_eq!(cluster.node(follower).proposal_sizes(), zk_core::node::ProposalSizes::default());
}

#[test]
fn pipelined_writes_keep_client_order() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let follower = if leader == 1 { 2 } else { 1 };
    let mut session = cluster.connect(follower);
    assert_eq!(cluster.create(&mut session, "/c", b"0", CreateMode::Persistent).0, OK);
    // Many writes and reads in flight at once: replies come back in the order sent, and
    // each read sees the write before it.
    let mut xids = Vec::new();
    for i in 1..=30 {
        xids.push(cluster.send(
            &mut session,
            Request::SetData(SetDataRequest {
                path: "/c".into(),
                data: Some(format!("{i}").into_bytes()),
                version: -1,
            }),
        ));
        xids.push(
            cluster.send(
                &mut session,
                Request::GetData(zk_core::proto::GetDataRequest { path: "/c".into(), watch: false }),
            ),
        );
    }
    cluster.run_for(200);
    let replies = cluster.receive(&mut session);
    assert_eq!(replies.len(), 60);
    let mut last_zxid = 0;
    for (index, xid) in xids.iter().enumerate() {
        let (header, response) = &replies[xid];
        assert_eq!(header.err, OK);
        assert!(header.zxid >= last_zxid);
        last_zxid = header.zxid;
        if let zk_core::proto::Response::GetData(data) = response {
            assert_eq!(data.data.as_deref(), Some(format!("{}", index / 2 + 1).as_bytes()));
        }
    }
}

#[test]
fn leader_crash_elects_a_new_leader_and_keeps_every_acknowledged_write() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let follower = if leader == 1 { 2 } else { 1 };
    let mut session = cluster.connect(follower);
    for i in 0..10 {
        assert_eq!(cluster.create(&mut session, &format!("/before{i}"), b"x", CreateMode::Persistent).0, OK);
    }
    cluster.crash(leader);
    let new_leader = cluster.settle();
    assert_ne!(new_leader, leader);
    assert!(cluster.node(new_leader).current_epoch() >= 2);
    let mut session = cluster.connect(follower);
    for i in 0..10 {
        assert_eq!(cluster.get_data(&mut session, &format!("/before{i}"), false), Some(b"x".to_vec()));
    }
    assert_eq!(cluster.create(&mut session, "/after", b"y", CreateMode::Persistent).0, OK);
    // The old leader comes back as a follower and catches up.
    cluster.start(leader);
    cluster.settle();
    cluster.run_for(200);
    assert_eq!(cluster.node(leader).role(), RoleName::Following);
    cluster.assert_replicas_agree();
}

#[test]
fn a_minority_partition_stops_serving_and_the_majority_goes_on() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let others = cluster.others(leader);
    let mut session = cluster.connect(leader);
    cluster.partition(&[leader], &others);
    cluster.run_for(2_000);
    // The isolated leader lost its quorum and stepped down; its client was disconnected.
    assert_ne!(cluster.node(leader).role(), RoleName::Leading);
    assert!(cluster.inboxes[&session.connection].closed);
    assert_eq!(cluster.call(&mut session, Request::Sync(SyncRequest { path: "/".into() })), None);
    let new_leader = cluster.settle();
    assert!(others.contains(&new_leader));
    cluster.heal();
    cluster.settle();
    cluster.run_for(500);
    assert!(cluster.node(leader).is_serving());
    cluster.assert_replicas_agree();
}

#[test]
fn observers_replicate_but_never_vote() {
    let mut cluster = Cluster::new(3, 1);
    cluster.start_all();
    let leader = cluster.settle();
    assert_eq!(cluster.node(4).role(), RoleName::Observing);
    let mut session = cluster.connect(4);
    assert_eq!(cluster.create(&mut session, "/via-observer", b"o", CreateMode::Persistent).0, OK);
    assert_eq!(cluster.get_data(&mut session, "/via-observer", false), Some(b"o".to_vec()));
    // With two voters down, the observer does not make a quorum with the third.
    let down: Vec<u64> = [1, 2, 3].into_iter().filter(|&id| id != leader).collect();
    for id in &down {
        cluster.crash(*id);
    }
    cluster.run_for(3_000);
    assert_eq!(cluster.leader(), None);
    assert!(!cluster.node(4).is_serving());
}

#[test]
fn sync_makes_a_lagging_follower_read_the_latest_write() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let follower = if leader == 1 { 2 } else { 1 };
    let mut writer = cluster.connect(leader);
    let mut reader = cluster.connect(follower);
    assert_eq!(cluster.create(&mut writer, "/s", b"v1", CreateMode::Persistent).0, OK);
    let reply = cluster.call(&mut reader, Request::Sync(SyncRequest { path: "/s".into() })).unwrap();
    assert_eq!(reply.0.err, OK);
    assert_eq!(cluster.get_data(&mut reader, "/s", false), Some(b"v1".to_vec()));
}

#[test]
fn session_expiry_removes_ephemerals_on_every_replica() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let follower = if leader == 1 { 2 } else { 1 };
    let mut session = cluster.connect(follower);
    assert_eq!(cluster.create(&mut session, "/eph", b"e", CreateMode::Ephemeral).0, OK);
    cluster.run_for(100);
    for id in cluster.ids() {
        assert!(cluster.node(id).database().tree.contains("/eph"), "server {id}");
    }
    // The client goes silent: no pings, so the leader expires the session.
    let connection = session.connection;
    let now = cluster.now;
    cluster.node_mut(follower).handle_client_disconnected(connection, now);
    cluster.run_for(3_000);
    for id in cluster.ids() {
        assert!(!cluster.node(id).database().tree.contains("/eph"), "server {id} still holds the ephemeral");
        assert!(cluster.node(id).database().sessions().is_empty());
    }
    cluster.assert_replicas_agree();
}

#[test]
fn pings_keep_a_session_alive_through_a_follower() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let follower = if leader == 1 { 2 } else { 1 };
    let mut session = cluster.connect(follower);
    assert_eq!(cluster.create(&mut session, "/alive", b"", CreateMode::Ephemeral).0, OK);
    for i in 0..30 {
        let reply = cluster.call(&mut session, Request::Ping);
        let reply = reply.unwrap_or_else(|| {
            panic!(
                "ping {i} at {:?} unanswered; sessions {:?}",
                cluster.now,
                cluster.node(leader).database().sessions()
            )
        });
        assert_eq!(reply.0.err, OK);
        cluster.run_for(200);
    }
    assert!(cluster.node(leader).database().tree.contains("/alive"));
}

#[test]
fn a_lagging_follower_catches_up_by_diff() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let lagging = if leader == 1 { 2 } else { 1 };
    cluster.crash(lagging);
    let mut session = cluster.connect(leader);
    for i in 0..5 {
        assert_eq!(cluster.create(&mut session, &format!("/lag{i}"), b"", CreateMode::Persistent).0, OK);
    }
    cluster.record_messages = true;
    cluster.start(lagging);
    cluster.settle();
    let sync = cluster.delivered.iter().find_map(|(_, to, message)| match message {
        zk_core::zab::message::PeerMessage::Sync { mode, entries, .. } if *to == lagging => {
            Some((mode.clone(), entries.len()))
        }
        _ => None,
    });
    // Five creates and the session that made them.
    assert_eq!(sync, Some((zk_core::zab::message::SyncMode::Diff, 6)));
    cluster.run_for(100);
    cluster.assert_replicas_agree();
}

#[test]
fn an_unknown_session_is_told_it_expired() {
    let mut cluster = Cluster::new(1, 0);
    cluster.start_all();
    cluster.settle();
    let connection = cluster.open(1, Some((0x1234, vec![0; 16])), 0);
    cluster.run_for(10);
    assert!(cluster.inboxes[&connection].closed);
    let frame = cluster.inboxes.get_mut(&connection).unwrap().frames.pop_front().unwrap();
    use zk_core::proto::Record;
    let response = zk_core::proto::ConnectResponse::from_bytes(&frame[4..]).unwrap();
    assert_eq!((response.time_out, response.session_id), (0, 0));
    let _ = ErrorCode::SessionExpired;
}

fn sync_mode_sent_to(cluster: &Cluster, learner: u64) -> Option<(zk_core::zab::message::SyncMode, usize)> {
    cluster.delivered.iter().rev().find_map(|(_, to, message)| match message {
        zk_core::zab::message::PeerMessage::Sync { mode, entries, .. } if *to == learner => {
            let mode = match mode {
                zk_core::zab::message::SyncMode::Snap { zxid, .. } => zk_core::zab::message::SyncMode::Snap {
                    zxid: *zxid,
                    snapshot: zk_core::ondisk::SnapshotPayload::Bytes(Vec::new()),
                },
                other => other.clone(),
            };
            Some((mode, entries.len()))
        }
        _ => None,
    })
}

/// Makes the followers' links to the leader silently stop delivering (as a network that
/// drops packets without resetting connections), so the leader keeps leading for a while
/// and takes a write it can never commit.
fn cut_links_keep_leading(cluster: &mut Cluster, leader: u64, others: &[u64]) {
    for &other in others {
        cluster.blackhole(leader, other);
    }
}

#[test]
fn a_follower_ahead_with_uncommitted_txns_is_truncated() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let old_leader = cluster.settle();
    let mut session = cluster.connect(old_leader);
    assert_eq!(cluster.create(&mut session, "/kept", b"", CreateMode::Persistent).0, OK);
    let others = cluster.others(old_leader);
    // Isolated, the leader still proposes a write: it lands in its own log only.
    cut_links_keep_leading(&mut cluster, old_leader, &others);
    cluster.send(&mut session, harness::create_request("/lost", b"", CreateMode::Persistent));
    let uncommitted = cluster.node(old_leader).last_logged_zxid();
    assert_eq!(cluster.node(old_leader).role(), RoleName::Leading);
    assert!(uncommitted > cluster.node(old_leader).committed_zxid());
    cluster.partition(&[old_leader], &others);
    let new_leader = cluster.settle();
    assert_ne!(new_leader, old_leader);
    let mut session = cluster.connect(new_leader);
    assert_eq!(cluster.create(&mut session, "/new", b"", CreateMode::Persistent).0, OK);
    cluster.record_messages = true;
    cluster.heal();
    cluster.settle();
    cluster.run_for(200);
    let (mode, _) = sync_mode_sent_to(&cluster, old_leader).expect("the old leader was synced");
    assert!(matches!(mode, zk_core::zab::message::SyncMode::Trunc { zxid } if zxid < uncommitted), "{mode:?}");
    assert!(!cluster.node(old_leader).database().tree.contains("/lost"));
    assert!(cluster.node(old_leader).database().tree.contains("/new"));
    assert!(cluster.node(old_leader).history().all(|entry| entry.zxid() != uncommitted));
    cluster.assert_replicas_agree();
    cluster.assert_no_committed_txn_lost();
}

#[test]
fn a_follower_behind_the_leaders_history_gets_a_snapshot() {
    let mut cluster = Cluster::new_with(3, 0, |config| {
        config.snapshot_txn_count = 10;
        config.history_entries_max = 5;
    });
    cluster.start_all();
    let leader = cluster.settle();
    let lagging = if leader == 1 { 2 } else { 1 };
    cluster.crash(lagging);
    let mut session = cluster.connect(leader);
    for i in 0..40 {
        assert_eq!(cluster.create(&mut session, &format!("/s{i}"), b"data", CreateMode::Persistent).0, OK);
    }
    assert!(cluster.node(leader).history_base_zxid() > 0, "the leader trimmed its history");
    cluster.record_messages = true;
    cluster.start(lagging);
    cluster.settle();
    cluster.run_for(200);
    let (mode, _) = sync_mode_sent_to(&cluster, lagging).expect("synced");
    assert!(matches!(mode, zk_core::zab::message::SyncMode::Snap { .. }), "{mode:?}");
    cluster.assert_replicas_agree();
    // The snapshot is on the follower's disk: it restarts from it.
    cluster.crash(lagging);
    cluster.start(lagging);
    cluster.settle();
    cluster.run_for(200);
    cluster.assert_replicas_agree();
    assert!(cluster.node(lagging).database().tree.contains("/s39"));
}

#[test]
fn five_servers_survive_two_crashes_and_a_leader_loss() {
    let mut cluster = Cluster::new(5, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let mut session = cluster.connect(leader);
    assert_eq!(cluster.create(&mut session, "/five", b"1", CreateMode::Persistent).0, OK);
    let followers = cluster.others(leader);
    cluster.crash(followers[0]);
    cluster.crash(leader);
    let new_leader = cluster.settle();
    let mut session = cluster.connect(new_leader);
    assert_eq!(cluster.get_data(&mut session, "/five", false), Some(b"1".to_vec()));
    assert_eq!(cluster.create(&mut session, "/five-again", b"2", CreateMode::Persistent).0, OK);
    cluster.start(leader);
    cluster.start(followers[0]);
    cluster.settle();
    cluster.run_for(300);
    cluster.assert_replicas_agree();
    cluster.assert_no_committed_txn_lost();
}

#[test]
fn proposals_in_flight_are_bounded_by_the_named_limit() {
    let mut cluster = Cluster::new_with(3, 0, |config| config.proposals_in_flight_max = 3);
    cluster.start_all();
    let leader = cluster.settle();
    let mut session = cluster.connect(leader);
    // No follower can make anything durable, so nothing commits.
    for id in cluster.ids() {
        if id != leader {
            cluster.servers.get_mut(&id).unwrap().hold_fsync = true;
        }
    }
    let xids: Vec<i32> = (0..10)
        .map(|i| cluster.send(&mut session, harness::create_request(&format!("/q{i}"), b"", CreateMode::Persistent)))
        .collect();
    cluster.run_for(50);
    let node = cluster.node(leader);
    assert_eq!(node.last_logged_zxid() - node.committed_zxid(), 3, "three proposals in flight, the rest held back");
    for id in cluster.ids() {
        if id != leader {
            cluster.servers.get_mut(&id).unwrap().hold_fsync = false;
            cluster.fsync(id);
        }
    }
    cluster.run_for(200);
    let replies = cluster.receive(&mut session);
    for xid in xids {
        assert_eq!(replies[&xid].0.err, OK);
    }
    cluster.assert_replicas_agree();
}

#[test]
fn proposals_in_flight_during_a_sync_are_neither_lost_nor_applied_twice() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let followers = cluster.others(leader);
    let (late, slow) = (followers[0], followers[1]);
    let mut session = cluster.connect(leader);
    cluster.crash(late);
    // Proposals stay in flight: the only other voter cannot make them durable yet.
    cluster.servers.get_mut(&slow).unwrap().hold_fsync = true;
    let xids: Vec<i32> = (0..5)
        .map(|i| {
            cluster.send(
                &mut session,
                Request::SetData(SetDataRequest { path: "/".into(), data: Some(vec![i]), version: -1 }),
            )
        })
        .collect();
    cluster.run_for(20);
    assert!(cluster.node(leader).last_logged_zxid() > cluster.node(leader).committed_zxid());
    // The late follower syncs while they are in flight, and its acknowledgements commit them.
    cluster.record_messages = true;
    cluster.start(late);
    cluster.run_for(500);
    let replies = cluster.receive(&mut session);
    for xid in &xids {
        assert_eq!(replies[xid].0.err, OK);
    }
    assert_eq!(cluster.node(late).database().tree.get("/").unwrap().stat.version, 5);
    cluster.servers.get_mut(&slow).unwrap().hold_fsync = false;
    cluster.fsync(slow);
    cluster.run_for(200);
    cluster.assert_replicas_agree();
    cluster.assert_no_committed_txn_lost();
}

#[test]
fn a_session_moves_to_another_server_with_its_ephemerals() {
    let mut cluster = Cluster::new(3, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let followers = cluster.others(leader);
    let mut session = cluster.connect(followers[0]);
    assert_eq!(cluster.create(&mut session, "/mine", b"", CreateMode::Ephemeral).0, OK);
    cluster.crash(followers[0]);
    // The client reconnects elsewhere with its session id and password, and with the last
    // zxid it saw, which the other follower has applied.
    let connection = cluster.open(followers[1], Some((session.session_id, session.passwd.clone())), session.last_zxid);
    cluster.run_for(10);
    let frame = cluster.inboxes.get_mut(&connection).unwrap().frames.pop_front().expect("a connect response");
    use zk_core::proto::Record;
    let response = zk_core::proto::ConnectResponse::from_bytes(&frame[4..]).unwrap();
    assert_eq!(response.session_id, session.session_id);
    session.connection = connection;
    assert_eq!(cluster.get_data(&mut session, "/mine", false), Some(Vec::new()));
    // Its session lives on through the new server's pings past the old timeout.
    for _ in 0..10 {
        assert!(cluster.call(&mut session, Request::Ping).is_some());
        cluster.run_for(200);
    }
    assert!(cluster.node(leader).database().tree.contains("/mine"));
    // Closing it deletes the ephemeral everywhere.
    assert_eq!(cluster.call(&mut session, Request::CloseSession).unwrap().0.err, OK);
    cluster.run_for(50);
    assert!(!cluster.node(leader).database().tree.contains("/mine"));
}
