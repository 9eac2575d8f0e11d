//! Single protocol steps, with the exact outputs each must produce (openraft's engine tests
//! are the model): one node, inputs fed by hand, every output asserted.

use zk_core::node::{ClientOutput, Node, NodeConfig, Now, PeerTransmit, PersistRequest, PersistToken, StorageOp};
use zk_core::ondisk::{self, RecoveryInput};
use zk_core::proto::{self, Buffer, ConnectRequest, ConnectResponse, Record};

use zk_core::txn::LogEntry;
use zk_core::txn::{Txn, TxnHeader};
use zk_core::zab::election::{Notification, PeerState, Vote};
use zk_core::zab::make_zxid;
use zk_core::zab::message::{HistorySummary, LearnerRole, PeerMessage, SyncMode};

fn at(ms: u64) -> Now {
    Now { monotonic_ms: ms, wall_ms: 1_700_000_000_000 + ms as i64 }
}

fn fresh() -> zk_core::ondisk::Recovered {
    ondisk::recover(&RecoveryInput::default()).unwrap()
}

fn peers(node: &mut Node) -> Vec<PeerTransmit> {
    std::iter::from_fn(|| node.poll_peer()).collect()
}

fn persists(node: &mut Node) -> Vec<PersistRequest> {
    std::iter::from_fn(|| node.poll_persist()).collect()
}

fn to(to: u64, message: PeerMessage) -> PeerTransmit {
    PeerTransmit { to, message }
}

/// Follower 1 of {1, 2, 3} through election, discovery, sync and one broadcast round.
#[test]
fn a_follower_acknowledges_each_step_only_once_it_is_durable() {
    let config = NodeConfig::ensemble(1, [1, 2, 3].into_iter().collect(), Default::default());
    let mut node = Node::new(config, fresh(), at(0));

    // Election: it votes for itself and tells everyone.
    let own =
        Notification { vote: Vote { leader: 1, zxid: 0, peer_epoch: 0 }, election_epoch: 1, state: PeerState::Looking };
    assert_eq!(peers(&mut node), vec![to(2, PeerMessage::Notification(own)), to(3, PeerMessage::Notification(own))]);
    assert!(persists(&mut node).is_empty());

    // An ensemble that already has a leader answers; it joins it.
    let leader_vote = Vote { leader: 3, zxid: 0, peer_epoch: 0 };
    let leading = Notification { vote: leader_vote, election_epoch: 1, state: PeerState::Leading };
    let following = Notification { vote: leader_vote, election_epoch: 1, state: PeerState::Following };
    node.handle_peer_message(3, PeerMessage::Notification(leading), at(1));
    node.handle_peer_message(2, PeerMessage::Notification(following), at(2));
    assert_eq!(node.leader(), Some(3));
    let history = HistorySummary { base_zxid: 0, epoch_ends: vec![] };
    assert_eq!(
        peers(&mut node),
        vec![to(
            3,
            PeerMessage::LearnerInfo { role: LearnerRole::Follower, accepted_epoch: 0, history: history.clone() }
        )]
    );

    // Discovery: the new epoch is written before ACKEPOCH leaves.
    node.handle_peer_message(3, PeerMessage::LeaderInfo { epoch: 1 }, at(3));
    assert_eq!(peers(&mut node), vec![]);
    assert_eq!(
        persists(&mut node),
        vec![PersistRequest { token: PersistToken(1), ops: vec![StorageOp::AcceptedEpoch(1)] }]
    );
    node.handle_persisted(PersistToken(1), at(4));
    assert_eq!(peers(&mut node), vec![to(3, PeerMessage::AckEpoch { current_epoch: 0, history })]);

    // Synchronization: an empty DIFF, then NEWLEADER. currentEpoch is written only now,
    // and the acknowledgement waits for it.
    node.handle_peer_message(3, PeerMessage::Sync { mode: SyncMode::Diff, entries: vec![], committed_zxid: 0 }, at(5));
    node.handle_peer_message(3, PeerMessage::NewLeader { zxid: make_zxid(1, 0) }, at(6));
    assert_eq!(peers(&mut node), vec![]);
    assert_eq!(
        persists(&mut node),
        vec![PersistRequest { token: PersistToken(2), ops: vec![StorageOp::CurrentEpoch(1)] }]
    );
    assert_eq!(node.durable().current_epoch, 0);
    node.handle_persisted(PersistToken(2), at(7));
    assert_eq!(peers(&mut node), vec![to(3, PeerMessage::AckNewLeader { zxid: make_zxid(1, 0), durable_zxid: 0 })]);
    assert!(!node.is_serving());
    node.handle_peer_message(3, PeerMessage::UpToDate, at(8));
    assert!(node.is_serving());

    // Broadcast: a proposal is logged; its ACK leaves only after the fsync.
    let entry = LogEntry {
        prev_zxid: 0,
        header: TxnHeader { session_id: 0x77, cxid: 0, zxid: make_zxid(1, 1), time_ms: 9 },
        txn: Txn::CreateSession { timeout_ms: 4000 },
    };
    node.handle_peer_message(3, PeerMessage::Proposal(entry.clone().into()), at(9));
    assert_eq!(peers(&mut node), vec![]);
    let bytes = ondisk::encode_log_record(&entry);
    assert_eq!(
        persists(&mut node),
        vec![PersistRequest {
            token: PersistToken(3),
            ops: vec![StorageOp::AppendLog { bytes, first_zxid: make_zxid(1, 1), last_zxid: make_zxid(1, 1) }]
        }]
    );
    assert_eq!(node.applied_zxid(), 0, "nothing is applied before its commit");
    node.handle_persisted(PersistToken(3), at(10));
    assert_eq!(peers(&mut node), vec![to(3, PeerMessage::Ack { zxid: make_zxid(1, 1) })]);
    node.handle_peer_message(3, PeerMessage::Commit { zxid: make_zxid(1, 1) }, at(11));
    assert_eq!(node.applied_zxid(), make_zxid(1, 1));
    assert_eq!(node.database().sessions().get(&0x77), Some(&4000));

    // The leader pings with its epoch and round; the follower echoes both (no client
    // touched a session). A ping of another epoch is not echoed: echoing it would confirm a
    // round of an epoch this server does not follow.
    let ping = |epoch, round| PeerMessage::Ping { epoch, round, touched_sessions: vec![] };
    node.handle_peer_message(3, ping(1, 4), at(12));
    assert_eq!(peers(&mut node), vec![to(3, ping(1, 4))]);
    node.handle_peer_message(3, ping(2, 5), at(13));
    assert_eq!(peers(&mut node), vec![]);
}

#[test]
fn a_follower_refuses_a_leader_whose_epoch_is_older_than_one_it_accepted() {
    let config = NodeConfig::ensemble(1, [1, 2, 3].into_iter().collect(), Default::default());
    let mut recovered = fresh();
    recovered.accepted_epoch = 5;
    recovered.current_epoch = 5;
    let mut node = Node::new(config, recovered, at(0));
    let vote = Vote { leader: 3, zxid: 0, peer_epoch: 5 };
    node.handle_peer_message(
        3,
        PeerMessage::Notification(Notification { vote, election_epoch: 1, state: PeerState::Leading }),
        at(1),
    );
    node.handle_peer_message(
        2,
        PeerMessage::Notification(Notification { vote, election_epoch: 1, state: PeerState::Following }),
        at(1),
    );
    assert_eq!(node.leader(), Some(3));
    let _ = peers(&mut node);
    node.handle_peer_message(3, PeerMessage::LeaderInfo { epoch: 4 }, at(2));
    assert_eq!(node.role(), zk_core::node::RoleName::Looking, "back to election");
    assert!(persists(&mut node).is_empty(), "nothing written for a stale epoch");
}

/// A standalone server: its own fsync is its quorum, so a client hears nothing until it.
#[test]
fn a_standalone_leader_counts_its_own_vote_only_after_its_fsync() {
    let mut node = Node::new(NodeConfig::standalone(1), fresh(), at(0));
    assert_eq!(
        persists(&mut node),
        vec![PersistRequest { token: PersistToken(1), ops: vec![StorageOp::AcceptedEpoch(1)] }]
    );
    node.handle_persisted(PersistToken(1), at(1));
    assert_eq!(
        persists(&mut node),
        vec![PersistRequest { token: PersistToken(2), ops: vec![StorageOp::CurrentEpoch(1)] }]
    );
    assert!(!node.is_serving());
    node.handle_persisted(PersistToken(2), at(2));
    assert!(node.is_serving());
    assert_eq!(node.current_epoch(), 1);

    node.handle_client_connected(7, None, at(3));
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id: 0,
        passwd: Buffer(vec![0; 16]),
        read_only: None,
    };
    node.handle_client_frame(7, &request.to_bytes(), at(4));
    assert_eq!(node.poll_client(), None, "no session before the createSession txn is durable");
    let requests = persists(&mut node);
    assert_eq!(requests.len(), 1);
    assert!(
        matches!(requests[0].ops[..], [StorageOp::AppendLog { first_zxid, last_zxid, .. }] if first_zxid == make_zxid(1, 1) && last_zxid == first_zxid)
    );
    node.handle_persisted(requests[0].token, at(5));
    let Some(ClientOutput::Frame { connection: 7, bytes }) = node.poll_client() else { panic!("a connect response") };
    let response = ConnectResponse::from_bytes(&bytes[4..]).unwrap();
    assert_eq!(response.time_out, 10_000);
    assert_eq!(
        response.passwd.0,
        zk_core::session::session_password(zk_core::session::ZOOKEEPER_SUPER_SECRET, response.session_id).to_vec()
    );
    assert_eq!(node.poll_client(), None);
    let _ = proto::XID_PING;
}

/// The leader may still be finishing its own election when FOLLOWERINFO arrives, and drop
/// it: a learner in discovery says hello again every finalize wait (well under a tick)
/// until LEADERINFO comes, and a second LEADERINFO for the same epoch changes nothing.
#[test]
fn a_learner_repeats_followerinfo_until_the_leader_answers() {
    let config = NodeConfig::ensemble(1, [1, 2, 3].into_iter().collect(), Default::default());
    let resend_ms = config.election_finalize_wait_ms;
    assert!(resend_ms < config.tick_ms());
    let mut node = Node::new(config, fresh(), at(0));
    let vote = Vote { leader: 3, zxid: 0, peer_epoch: 0 };
    node.handle_peer_message(
        3,
        PeerMessage::Notification(Notification { vote, election_epoch: 1, state: PeerState::Leading }),
        at(1),
    );
    node.handle_peer_message(
        2,
        PeerMessage::Notification(Notification { vote, election_epoch: 1, state: PeerState::Following }),
        at(1),
    );
    let _ = peers(&mut node);
    let info =
        PeerMessage::LearnerInfo { role: LearnerRole::Follower, accepted_epoch: 0, history: HistorySummary::default() };
    assert_eq!(node.poll_timeout(), Some(1 + resend_ms));
    node.handle_timeout(at(1 + resend_ms));
    assert_eq!(peers(&mut node), vec![to(3, info.clone())]);
    node.handle_timeout(at(1 + 2 * resend_ms));
    assert_eq!(peers(&mut node), vec![to(3, info)]);
    node.handle_peer_message(3, PeerMessage::LeaderInfo { epoch: 1 }, at(2 + 2 * resend_ms));
    node.handle_peer_message(3, PeerMessage::LeaderInfo { epoch: 1 }, at(2 + 2 * resend_ms));
    assert_eq!(node.role(), zk_core::node::RoleName::Following);
    assert_eq!(
        persists(&mut node),
        vec![PersistRequest { token: PersistToken(1), ops: vec![StorageOp::AcceptedEpoch(1)] }]
    );
    node.handle_timeout(at(3 + 3 * resend_ms));
    assert_eq!(peers(&mut node), vec![], "no more hellos once the leader answered");
}

/// Server 3 of {1, 2, 3}, looking, with its own vote sent; and server 1's LOOKING vote for 3
/// and its FOLLOWERINFO to 3, the two messages the early-hello tests feed it.
fn leader_elect_to_be() -> (Node, u64, PeerMessage, PeerMessage) {
    let config = NodeConfig::ensemble(3, [1, 2, 3].into_iter().collect(), Default::default());
    let finalize_ms = config.election_finalize_wait_ms;
    let mut node = Node::new(config, fresh(), at(0));
    let _ = peers(&mut node);
    let for_3 = Vote { leader: 3, zxid: 0, peer_epoch: 0 };
    let looking = PeerMessage::Notification(Notification { vote: for_3, election_epoch: 1, state: PeerState::Looking });
    let hello =
        PeerMessage::LearnerInfo { role: LearnerRole::Follower, accepted_epoch: 0, history: HistorySummary::default() };
    (node, finalize_ms, looking, hello)
}

/// What a leader-elect sends once each storage request it made is durable, at `now`.
fn sent_through_discovery(node: &mut Node, now: u64) -> Vec<PeerTransmit> {
    let mut sent = peers(node);
    for request in persists(node) {
        node.handle_persisted(request.token, at(now));
        sent.extend(peers(node));
    }
    sent
}

/// A learner may decide a moment before its leader-elect does, so its FOLLOWERINFO reaches
/// a server that is still looking. The leader-elect keeps that hello and answers it as soon
/// as it leads: the epoch starts without waiting for the learner to say hello again (a
/// finalize wait later, which was half of every such failover).
#[test]
fn a_leader_elect_answers_a_followerinfo_that_came_while_it_was_still_looking() {
    let (mut node, finalize_ms, looking, hello) = leader_elect_to_be();
    node.handle_peer_message(1, looking, at(1));
    assert_eq!(node.role(), zk_core::node::RoleName::Looking, "a quorum, but the finalize wait runs");
    node.handle_peer_message(1, hello, at(finalize_ms));
    assert_eq!(node.role(), zk_core::node::RoleName::Looking);

    node.handle_timeout(at(1 + finalize_ms));
    assert_eq!(node.role(), zk_core::node::RoleName::LeaderElect);
    let sent = sent_through_discovery(&mut node, 2 + finalize_ms);
    assert!(
        sent.contains(&to(1, PeerMessage::LeaderInfo { epoch: 1 })),
        "LEADERINFO goes to the learner that said hello early, without a second hello: {sent:?}"
    );
}

/// An early hello is forgotten once its sender is looking again: it no longer follows this
/// server, and counting it would start an epoch with a quorum that is not there.
#[test]
fn an_early_followerinfo_is_dropped_when_its_sender_looks_again() {
    let (mut node, finalize_ms, looking, hello) = leader_elect_to_be();
    node.handle_peer_message(1, looking.clone(), at(1));
    node.handle_peer_message(1, hello, at(2));
    node.handle_peer_message(1, looking, at(3));
    node.handle_timeout(at(3 + finalize_ms));
    assert_eq!(node.role(), zk_core::node::RoleName::LeaderElect);
    let sent = sent_through_discovery(&mut node, 4 + finalize_ms);
    assert!(
        !sent.iter().any(|transmit| matches!(transmit.message, PeerMessage::LeaderInfo { .. })),
        "no epoch from a hello its sender took back: {sent:?}"
    );
}
