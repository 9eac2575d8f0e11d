//! A deposed leader never answers `sync` with stale data (issue: the simulator's seed
//! 103033, where a leader paused past an election answered a queued sync and read from
//! its old epoch). Each test builds the schedule directly: the leader is cut off or
//! paused, the others elect a new leader and commit a newer value, and the old leader is
//! handed a sync and a read. The sync must not be answered, or be answered only with data
//! at least as new as the value committed before it was sent.

mod harness;

use harness::{Cluster, Session};
use zk_core::node::RoleName;
use zk_core::proto::{GetDataRequest, Request, Response, SetDataRequest, SyncRequest};
use zk_core::zab::ServerId;

/// Sends `sync` then `getData(/k)` on `session` without waiting; returns their xids.
fn send_sync_and_read(cluster: &mut Cluster, session: &mut Session) -> (i32, i32) {
    let sync = cluster.send(session, Request::Sync(SyncRequest { path: "/k".into() }));
    let read = cluster.send(session, Request::GetData(GetDataRequest { path: "/k".into(), watch: false }));
    (sync, read)
}

fn set(cluster: &mut Cluster, session: &mut Session, value: &[u8]) {
    let request = Request::SetData(SetDataRequest { path: "/k".into(), data: Some(value.to_vec()), version: -1 });
    let (header, _) = cluster.call(session, request).expect("the write is answered");
    assert_eq!(header.err, 0, "the write succeeds");
}

/// Everything the old leader answered on `session` for the sync and the read, after
/// `ms` more of virtual time: the read's data, if the sync was answered.
fn answered_read(cluster: &mut Cluster, session: &mut Session, (sync, read): (i32, i32), ms: u64) -> Option<Vec<u8>> {
    let mut replies = std::collections::BTreeMap::new();
    let deadline = cluster.now.monotonic_ms + ms;
    while cluster.now.monotonic_ms < deadline {
        replies.extend(cluster.receive(session));
        cluster.run_for(10);
    }
    replies.extend(cluster.receive(session));
    let sync_answered = replies.get(&sync).is_some_and(|(header, _)| header.err == 0);
    match replies.get(&read) {
        Some((header, Response::GetData(data))) if header.err == 0 => {
            assert!(sync_answered, "a read queued behind a sync is answered only after the sync");
            Some(data.data.clone().unwrap_or_default())
        }
        _ => None,
    }
}

/// A 3-server cluster with `/k` = "old", a session on the leader and one on a follower.
fn cluster_with_sessions(tweak: impl Fn(&mut zk_core::node::NodeConfig)) -> (Cluster, ServerId, Session, Session) {
    let mut cluster = Cluster::new_with(3, 0, tweak);
    cluster.start_all();
    let leader = cluster.settle();
    let mut on_leader = cluster.connect(leader);
    let follower = cluster.others(leader)[0];
    let on_follower = cluster.connect(follower);
    let created = cluster.create(&mut on_leader, "/k", b"old", zk_core::proto::CreateMode::Persistent);
    assert_eq!(created.0, 0);
    (cluster, leader, on_leader, on_follower)
}

#[test]
fn a_leader_resumed_after_a_pause_past_an_election_answers_no_queued_sync_with_old_data() {
    let (mut cluster, old_leader, mut on_old, _) = cluster_with_sessions(|_| {});
    let old_epoch = cluster.node(old_leader).current_epoch();
    cluster.pause(old_leader);
    let others = cluster.others(old_leader);
    cluster.run_until(5_000, "the others elect a new leader", |cluster| {
        others.iter().any(|&id| cluster.node(id).role() == RoleName::Leading)
    });
    assert!(cluster.node(others[0]).current_epoch() > old_epoch);
    // The follower closed its clients when it went looking; a new session writes.
    let new_leader = *others.iter().find(|&&id| cluster.node(id).role() == RoleName::Leading).expect("found above");
    let mut writer = cluster.connect(new_leader);
    set(&mut cluster, &mut writer, b"new");
    // The client of the paused leader sends its sync and read; they wait in the paused
    // server's queue and are the first inputs it handles when it wakes.
    let xids = send_sync_and_read(&mut cluster, &mut on_old);
    cluster.resume(old_leader);
    assert_ne!(cluster.node(old_leader).role(), RoleName::Leading, "its lease ran out while it was paused");
    if let Some(data) = answered_read(&mut cluster, &mut on_old, xids, 2_000) {
        assert_eq!(data, b"new", "a sync+read after a committed write sees it");
    }
}

/// A leader cut off while its lease is still long (its syncLimit is ten times the
/// followers'): the followers elect a new leader and commit while the old one still holds
/// a lease. Only the quorum round stands between its client's sync and stale data.
#[test]
fn a_deposed_leader_within_its_lease_never_confirms_a_sync() {
    let (mut cluster, old_leader, mut on_old, _) = cluster_with_sessions(|config| {
        // The highest id leads the first epoch; its lease outlasts the followers' patience.
        config.sync_limit_ticks = if config.server_id == 3 { 50 } else { 2 };
    });
    assert_eq!(old_leader, 3);
    for other in cluster.others(old_leader) {
        cluster.blackhole(old_leader, other);
    }
    let others = cluster.others(old_leader);
    cluster.run_until(5_000, "the others elect a new leader", |cluster| {
        others.iter().any(|&id| cluster.node(id).role() == RoleName::Leading)
    });
    let new_leader = *others.iter().find(|&&id| cluster.node(id).role() == RoleName::Leading).expect("found above");
    let mut writer = cluster.connect(new_leader);
    set(&mut cluster, &mut writer, b"new");
    // The network heals: the old leader's pings reach servers that follow another leader
    // in a newer epoch, and none of them echoes its round.
    cluster.heal();
    assert_eq!(cluster.node(old_leader).role(), RoleName::Leading, "the old leader still holds its lease");
    let xids = send_sync_and_read(&mut cluster, &mut on_old);
    if let Some(data) = answered_read(&mut cluster, &mut on_old, xids, 8_000) {
        assert_eq!(data, b"new", "a sync+read after a committed write sees it");
    }
    assert_ne!(cluster.node(old_leader).role(), RoleName::Leading, "its lease ran out");
}

/// Syncs on a healthy leader and its followers are still answered, in order, and many
/// syncs arriving together share confirmation rounds.
#[test]
fn syncs_are_answered_in_order_and_share_rounds() {
    let (mut cluster, leader, mut on_leader, mut on_follower) = cluster_with_sessions(|_| {});
    set(&mut cluster, &mut on_follower, b"v1");
    cluster.record_messages = true;
    let mut xids = Vec::new();
    for _ in 0..20 {
        xids.push(send_sync_and_read(&mut cluster, &mut on_leader));
        xids.push(send_sync_and_read(&mut cluster, &mut on_follower));
    }
    cluster.run_for(200);
    let mut replies = cluster.receive(&mut on_leader);
    let mut previous: Option<i64> = None;
    let on_follower_replies = cluster.receive(&mut on_follower);
    for (index, (sync, read)) in xids.into_iter().enumerate() {
        let replies = if index % 2 == 0 { &mut replies } else { &mut on_follower_replies.clone() };
        let (sync_header, _) = replies.remove(&sync).expect("every sync is answered");
        assert_eq!(sync_header.err, 0);
        match replies.remove(&read) {
            Some((header, Response::GetData(data))) => {
                assert_eq!(data.data.as_deref(), Some(&b"v1"[..]));
                assert!(header.zxid >= sync_header.zxid, "the read is no older than its sync");
            }
            other => panic!("the read after sync {sync} is answered: {other:?}"),
        }
        if index % 2 == 0 {
            assert!(previous.is_none_or(|zxid| sync_header.zxid >= zxid));
            previous = Some(sync_header.zxid);
        }
    }
    let rounds_started = cluster
        .delivered
        .iter()
        .filter_map(|(from, _, message)| match message {
            zk_core::zab::message::PeerMessage::Ping { round, .. } if *from == leader => Some(*round),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<u64>>();
    assert!(!rounds_started.is_empty(), "syncs start confirmation rounds");
    assert!(rounds_started.len() < 40, "40 syncs share rounds: {} rounds", rounds_started.len());
}

#[test]
fn a_standalone_server_answers_sync_at_once() {
    let mut cluster = Cluster::new(1, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let mut session = cluster.connect(leader);
    let reply = cluster.call(&mut session, Request::Sync(SyncRequest { path: "/".into() }));
    assert!(matches!(reply, Some((header, Response::Sync(_))) if header.err == 0));
}
