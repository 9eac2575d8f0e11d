//! The leader's steps, one input at a time, with the exact messages and storage requests
//! they produce (openraft's style). Reference: Zab paper, section III, phase 1.

use std::collections::BTreeSet;

use super::Leader;
use crate::node::shared::{Shared, Transition};
use crate::node::{NodeConfig, Now, PeerTransmit, StorageOp};
use crate::proto::{Request, SyncRequest};
use crate::zab::make_zxid;
use crate::zab::message::{ForwardedRequest, HistorySummary, LearnerRole, PeerMessage};

const NOW: Now = Now { monotonic_ms: 1_000, wall_ms: 1_700_000_000_000 };

/// Server 1 of three voters, fresh from an empty data directory.
fn shared() -> Shared {
    let voters: BTreeSet<u64> = [1, 2, 3].into_iter().collect();
    Shared::new(
        NodeConfig::ensemble(1, voters, BTreeSet::new()),
        crate::ondisk::recover(&crate::ondisk::RecoveryInput::default()).expect("an empty directory"),
        NOW,
    )
}

fn empty_history() -> HistorySummary {
    HistorySummary { base_zxid: 0, epoch_ends: Vec::new() }
}

fn follower_info(accepted_epoch: u32) -> PeerMessage {
    PeerMessage::LearnerInfo { role: LearnerRole::Follower, accepted_epoch, history: empty_history() }
}

fn sent(shared: &mut Shared) -> Vec<PeerTransmit> {
    shared.peer_out.drain(..).collect()
}

/// Seals what the step asked storage for, reports it durable, and returns its operations.
fn persist(shared: &mut Shared) -> Vec<StorageOp> {
    let request = shared.persistence.seal(shared.history.last_zxid()).expect("a storage request");
    assert!(shared.persistence.persisted(request.token), "the request moves the durable watermark");
    request.ops
}

/// A leader that established epoch 1 with follower 2 (server 3 is silent): discovery,
/// synchronization by an empty DIFF, and NEWLEADER acknowledged by 2 and by its own disk.
fn established(shared: &mut Shared) -> Leader {
    let mut leader = Leader::new(shared);
    leader.start(shared);
    leader.message(shared, 2, follower_info(0));
    assert_eq!(persist(shared), vec![StorageOp::AcceptedEpoch(1)]);
    leader.durable(shared);
    leader.message(shared, 2, PeerMessage::AckEpoch { current_epoch: 0, history: empty_history() });
    leader.message(shared, 2, PeerMessage::AckNewLeader { zxid: make_zxid(1, 0), durable_zxid: 0 });
    assert!(!leader.is_established(), "the leader's own currentEpoch is not durable yet");
    assert_eq!(persist(shared), vec![StorageOp::CurrentEpoch(1)]);
    leader.durable(shared);
    assert!(leader.is_established());
    let messages: Vec<PeerMessage> = sent(shared).into_iter().map(|transmit| transmit.message).collect();
    assert!(matches!(
        messages.as_slice(),
        [
            PeerMessage::LeaderInfo { epoch: 1 },
            PeerMessage::Sync { .. },
            PeerMessage::NewLeader { .. },
            PeerMessage::UpToDate
        ]
    ));
    leader
}

fn ping(round: u64) -> PeerMessage {
    PeerMessage::Ping { epoch: 1, round, touched_sessions: Vec::new() }
}

#[test]
fn a_forwarded_sync_is_answered_only_after_a_quorum_confirmed_a_round_that_began_after_it() {
    let mut shared = shared();
    let mut leader = established(&mut shared);
    let frame = crate::proto::encode_request(7, &Request::Sync(SyncRequest { path: "/a".into() }))[4..].to_vec();
    let forwarded = ForwardedRequest::Client { session_id: 5, frame, auth_ids: Vec::new() };
    leader.message(&mut shared, 2, PeerMessage::Request(forwarded));
    // DESIGN.md rule 7: the sync starts a round and waits for a quorum to echo it.
    assert_eq!(sent(&mut shared), vec![PeerTransmit { to: 2, message: ping(1) }]);
    leader.message(&mut shared, 2, ping(1));
    let done = PeerMessage::SyncDone { session_id: 5, cxid: 7, path: "/a".into() };
    assert_eq!(sent(&mut shared), vec![PeerTransmit { to: 2, message: done }]);
    leader.check_invariants(&shared);
}

#[test]
fn an_established_leader_that_loses_its_quorum_of_links_steps_down() {
    let mut shared = shared();
    let mut leader = established(&mut shared);
    leader.link_down(&mut shared, 2);
    assert_eq!(shared.transition, Some(Transition::Looking));
    assert_eq!(sent(&mut shared), Vec::new());
}

#[test]
fn discovery_waits_for_a_quorum_of_followerinfo() {
    let mut shared = shared();
    let mut leader = Leader::new(&shared);
    leader.start(&mut shared);
    assert_eq!(sent(&mut shared), Vec::new());
    assert_eq!(shared.persistence.seal(shared.history.last_zxid()), None, "no epoch is chosen alone");
    assert_eq!(shared.accepted_epoch, 0);
}

#[test]
fn the_new_epoch_exceeds_every_reported_accepted_epoch_and_is_announced_once_durable() {
    let mut shared = shared();
    let mut leader = Leader::new(&shared);
    leader.start(&mut shared);
    leader.message(&mut shared, 2, follower_info(3));
    // Zab l.1.1: e' above every acceptedEpoch of the quorum; written before LEADERINFO.
    assert_eq!(shared.accepted_epoch, 4);
    assert_eq!(sent(&mut shared), Vec::new(), "LEADERINFO waits for the epoch to be durable");
    assert_eq!(persist(&mut shared), vec![StorageOp::AcceptedEpoch(4)]);
    leader.durable(&mut shared);
    assert_eq!(sent(&mut shared), vec![PeerTransmit { to: 2, message: PeerMessage::LeaderInfo { epoch: 4 } }]);
    assert_eq!(shared.transition, None);
}

#[test]
fn a_follower_with_a_newer_history_than_the_leader_makes_it_step_down() {
    let mut shared = shared();
    let mut leader = Leader::new(&shared);
    leader.start(&mut shared);
    leader.message(&mut shared, 2, follower_info(0));
    let _ = persist(&mut shared);
    leader.durable(&mut shared);
    let _ = sent(&mut shared);
    // ZooKeeper: "Follower is ahead of the leader": the election picked the wrong server.
    let ahead = HistorySummary { base_zxid: 0, epoch_ends: vec![crate::zab::make_zxid(0, 7)] };
    leader.message(&mut shared, 2, PeerMessage::AckEpoch { current_epoch: 0, history: ahead });
    assert_eq!(shared.transition, Some(Transition::Looking));
    assert_eq!(sent(&mut shared), Vec::new(), "nothing is synced by a leader stepping down");
}

#[test]
fn a_forwarded_request_from_a_learner_that_is_not_synced_is_refused_with_connection_loss() {
    let mut shared = shared();
    let mut leader = Leader::new(&shared);
    leader.start(&mut shared);
    let request = crate::zab::message::ForwardedRequest::CreateSession { session_id: 9, timeout_ms: 30_000 };
    leader.message(&mut shared, 2, PeerMessage::Request(request));
    let refusal = PeerMessage::Refused { session_id: 9, cxid: 0, err: crate::ErrorCode::ConnectionLoss };
    assert_eq!(sent(&mut shared), vec![PeerTransmit { to: 2, message: refusal }]);
    assert_eq!(shared.persistence.seal(shared.history.last_zxid()), None, "nothing was proposed");
}

#[test]
fn kth_highest_is_what_a_quorum_holds_at_least() {
    use super::kth_highest;
    // Five voters acked these; a quorum of three holds 7 at least.
    assert_eq!(kth_highest(&mut [3, 9, 7, 1, 8], 3), Some(7));
    assert_eq!(kth_highest(&mut [5, 5, 2], 2), Some(5));
    assert_eq!(kth_highest(&mut [4], 1), Some(4));
    // Fewer values than a quorum: nothing is held by a quorum.
    assert_eq!(kth_highest(&mut [9, 8], 3), None);
    assert_eq!(kth_highest::<u64>(&mut [], 1), None);
}
