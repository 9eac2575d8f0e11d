//! The leader: discovery (choose a new epoch above every acceptedEpoch of a quorum),
//! synchronization (bring each learner's log level with its own), broadcast (propose,
//! count durable acknowledgements, commit in order).
//!
//! Reference: Zab paper, section III ("phases"); ZooKeeper's `Leader` and
//! `LearnerHandler`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::history::divergence_point;
use super::{Node, Now, Role, Submission, SubmissionKind};
use crate::proto::Request;
use crate::request::{Preparer, RequestContext};
use crate::session::SessionTable;
use crate::storage::{self, LogEntry};
use crate::tree::NodeKind;
use crate::txn::{Txn, TxnHeader};
use crate::zab::message::{ForwardedRequest, HistorySummary, LearnerRole, PeerMessage, SyncMode};
use crate::zab::{make_zxid, ServerId};
use crate::ErrorCode;

/// Where the leader is in establishing its epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for a quorum of learners to report their acceptedEpoch.
    Discovery,
    /// The new epoch is chosen and being written as this server's acceptedEpoch.
    EpochPersisting { epoch: u32 },
    /// LEADERINFO sent; waiting for a quorum of ACKEPOCH.
    EpochAcking { epoch: u32 },
    /// Learners are being synced; waiting for a quorum to acknowledge NEWLEADER.
    Synchronization { epoch: u32, tip_zxid: i64 },
    /// The epoch is established: serving.
    Broadcast { epoch: u32 },
}

/// Where one learner is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LinkState {
    /// FOLLOWERINFO/OBSERVERINFO received.
    Info,
    /// LEADERINFO sent.
    EpochSent,
    /// ACKEPOCH received; waiting for the epoch to be established before syncing.
    EpochAcked { history: HistorySummary },
    /// SYNC and NEWLEADER sent; proposals flow to it from here on.
    Syncing { acked_new_leader: bool },
    /// UPTODATE sent.
    UpToDate,
}

#[derive(Clone, Debug)]
struct Link {
    role: LearnerRole,
    state: LinkState,
    last_heard_ms: u64,
    /// The learner's log is durable up to here (counted once it acknowledged NEWLEADER).
    acked_zxid: i64,
}

impl Link {
    fn receives_broadcast(&self) -> bool {
        matches!(self.state, LinkState::Syncing { .. } | LinkState::UpToDate)
    }

    /// Whether this learner's acknowledgements count: it is a follower whose currentEpoch
    /// and synced log are durable.
    fn votes(&self) -> bool {
        self.role == LearnerRole::Follower
            && matches!(self.state, LinkState::Syncing { acked_new_leader: true } | LinkState::UpToDate)
    }
}

/// A `sync` waiting for every proposal before it to commit.
#[derive(Clone, Debug)]
struct PendingSync {
    zxid: i64,
    origin: ServerId,
    session_id: i64,
    cxid: i32,
    path: String,
}

#[derive(Debug)]
pub(super) struct Leader {
    phase: Phase,
    links: BTreeMap<ServerId, Link>,
    started_ms: u64,
    next_ping_ms: u64,
    pub(super) sessions: SessionTable,
    preparer: Preparer,
    /// The counter of the next proposal's zxid.
    next_counter: u32,
    queued: VecDeque<Submission>,
    syncs: VecDeque<PendingSync>,
    next_container_check_ms: u64,
    /// The acceptedEpoch each learner reported during discovery.
    discovery_epochs: BTreeMap<ServerId, u32>,
}

impl Leader {
    pub(super) fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Broadcast { .. })
    }

    pub(super) fn poll_timeout(&self) -> u64 {
        let mut deadline = self.next_ping_ms;
        if let Phase::Broadcast { .. } = self.phase {
            if let Some(expiry) = self.sessions.next_expiry_ms() {
                deadline = deadline.min(expiry.max(0) as u64);
            }
            deadline = deadline.min(self.next_container_check_ms);
        }
        deadline
    }

    /// Whether a session is alive (not expired or closing); a live one is touched.
    pub(super) fn revalidate(&mut self, session_id: i64, now: Now) -> bool {
        let valid = self.sessions.check_session(session_id).is_ok();
        if valid {
            self.sessions.touch(session_id, now.monotonic_ms as i64);
        }
        valid
    }

    pub(super) fn touch_session(&mut self, session_id: i64, timeout_ms: i32, now: Now) {
        self.sessions.touch_with_timeout(session_id, timeout_ms, now.monotonic_ms as i64);
    }

    /// A committed txn was applied: forget its outstanding change records and, for a
    /// closed session, the session.
    pub(super) fn applied(&mut self, entry: &LogEntry) {
        self.preparer.committed(entry.zxid());
        if let Txn::CloseSession { .. } = entry.txn {
            self.sessions.remove(entry.header.session_id);
        }
    }

    pub(super) fn check_invariants(&self, node: &Node) {
        if let Phase::Broadcast { epoch } = self.phase {
            let outstanding = node.history.last_zxid() - node.committed_zxid;
            assert!(outstanding >= 0, "committed never passes the log");
            assert!(
                node.history.last_zxid() < make_zxid(epoch, self.next_counter),
                "every proposal's zxid is below the next counter"
            );
            assert_eq!(node.current_epoch, epoch, "an established leader's currentEpoch is its epoch");
        }
        for sync in &self.syncs {
            assert!(sync.zxid > node.committed_zxid, "a pending sync waits for an uncommitted proposal");
        }
    }
}

impl Node {
    pub(super) fn become_leader(&mut self) {
        let now_ms = self.now.monotonic_ms;
        let tick_ms = self.config.tick_ms();
        let mut sessions = SessionTable::new(tick_ms as i32, 1, self.config.sessions_max);
        for (&session_id, &timeout_ms) in self.database.sessions() {
            let _ = sessions.add(session_id, timeout_ms, now_ms as i64);
        }
        self.role = Role::Leading(Box::new(Leader {
            phase: Phase::Discovery,
            links: BTreeMap::new(),
            started_ms: now_ms,
            next_ping_ms: now_ms + tick_ms / 2,
            sessions,
            preparer: Preparer::new(self.config.prepare.clone()),
            next_counter: 1,
            queued: VecDeque::new(),
            syncs: VecDeque::new(),
            next_container_check_ms: now_ms + self.config.container_check_interval_ms,
            discovery_epochs: BTreeMap::new(),
        }));
        self.leader_check_discovery();
        for (from, hello) in std::mem::take(&mut self.early_hellos) {
            self.leader_message(from, hello);
        }
    }

    fn leading(&mut self) -> &mut Leader {
        match &mut self.role {
            Role::Leading(leader) => leader,
            _ => unreachable!("called only while leading"),
        }
    }

    fn leading_ref(&self) -> &Leader {
        match &self.role {
            Role::Leading(leader) => leader,
            _ => unreachable!("called only while leading"),
        }
    }

    pub(super) fn leader_message(&mut self, from: ServerId, message: PeerMessage) {
        let now_ms = self.now.monotonic_ms;
        if let Some(link) = self.leading().links.get_mut(&from) {
            link.last_heard_ms = now_ms;
        }
        match message {
            PeerMessage::LearnerInfo { role, accepted_epoch, history } => {
                self.leader_learner_info(from, role, accepted_epoch, history)
            }
            PeerMessage::AckEpoch { current_epoch, history } => self.leader_ack_epoch(from, current_epoch, history),
            PeerMessage::AckNewLeader { zxid, durable_zxid } => self.leader_ack_new_leader(from, zxid, durable_zxid),
            PeerMessage::Ack { zxid } => {
                let Some(link) = self.leading().links.get_mut(&from) else { return };
                if link.votes() {
                    link.acked_zxid = link.acked_zxid.max(zxid);
                    self.leader_try_commit();
                }
            }
            PeerMessage::Request(forwarded) => {
                if !self.leading().links.get(&from).is_some_and(|link| link.state == LinkState::UpToDate) {
                    return;
                }
                let submission = match forwarded {
                    ForwardedRequest::CreateSession { session_id, timeout_ms } => Submission {
                        origin: from,
                        session_id,
                        cxid: 0,
                        kind: SubmissionKind::CreateSession { timeout_ms },
                    },
                    ForwardedRequest::Client { session_id, frame, auth_ids } => {
                        let Ok(decoded) = crate::proto::decode_request(&frame) else { return };
                        let Ok(request) = decoded.body else { return };
                        Submission {
                            origin: from,
                            session_id,
                            cxid: decoded.header.xid,
                            kind: SubmissionKind::Request { request, auth_ids },
                        }
                    }
                };
                self.leader_submit(submission);
            }
            PeerMessage::Revalidate { session_id } => {
                if !self.leading_ref().links.get(&from).is_some_and(|link| link.state == LinkState::UpToDate) {
                    return;
                }
                let now = self.now;
                let valid = self.leading().revalidate(session_id, now);
                self.send(from, PeerMessage::Revalidated { session_id, valid });
            }
            PeerMessage::Ping { touched_sessions } => {
                let now = self.now;
                let leader = self.leading();
                for (session_id, timeout_ms) in touched_sessions {
                    leader.touch_session(session_id, timeout_ms, now);
                }
            }
            // Messages only a learner takes.
            PeerMessage::Notification(_)
            | PeerMessage::LeaderInfo { .. }
            | PeerMessage::Sync { .. }
            | PeerMessage::NewLeader { .. }
            | PeerMessage::UpToDate
            | PeerMessage::Proposal(_)
            | PeerMessage::Commit { .. }
            | PeerMessage::Inform(_)
            | PeerMessage::SyncDone { .. }
            | PeerMessage::Refused { .. }
            | PeerMessage::Revalidated { .. } => {}
        }
    }

    /// FOLLOWERINFO / OBSERVERINFO: a learner joins (or rejoins, after its link broke).
    fn leader_learner_info(
        &mut self,
        from: ServerId,
        role: LearnerRole,
        accepted_epoch: u32,
        _history: HistorySummary,
    ) {
        let expected_role =
            if self.config.voters.contains(&from) { LearnerRole::Follower } else { LearnerRole::Observer };
        if role != expected_role {
            return;
        }
        self.accepted_epoch_seen_max = self.accepted_epoch_seen_max.max(accepted_epoch);
        let now_ms = self.now.monotonic_ms;
        let chosen = match self.leading_ref().phase {
            Phase::Discovery => None,
            Phase::EpochPersisting { epoch }
            | Phase::EpochAcking { epoch }
            | Phase::Synchronization { epoch, .. }
            | Phase::Broadcast { epoch } => Some(epoch),
        };
        if chosen.is_some_and(|epoch| accepted_epoch > epoch) {
            // The learner promised a higher epoch to a leader-elect that never established;
            // it will refuse ours forever. Step down: the next discovery picks an epoch
            // above every one reported (ZooKeeper leaves such a server out until the
            // leader changes for another reason).
            self.become_looking();
            return;
        }
        let leader = self.leading();
        leader.links.insert(from, Link { role, state: LinkState::Info, last_heard_ms: now_ms, acked_zxid: 0 });
        match leader.phase {
            Phase::Discovery => {
                // Remember what it accepted; the epoch is chosen once a quorum reported.
                leader.discovery_epochs.insert(from, accepted_epoch);
                self.leader_check_discovery();
            }
            Phase::EpochPersisting { .. } => {}
            Phase::EpochAcking { epoch } | Phase::Synchronization { epoch, .. } | Phase::Broadcast { epoch } => {
                self.leading().links.get_mut(&from).expect("just inserted").state = LinkState::EpochSent;
                self.send(from, PeerMessage::LeaderInfo { epoch });
            }
        }
    }

    /// Chooses the new epoch once a quorum (this server included) reported: one above
    /// every acceptedEpoch among them (Zab's discovery, step l.1.1).
    fn leader_check_discovery(&mut self) {
        let Role::Leading(leader) = &self.role else { return };
        if leader.phase != Phase::Discovery {
            return;
        }
        let mut reported: Vec<(ServerId, u32)> = leader
            .discovery_epochs
            .iter()
            .filter(|(id, _)| leader.links.get(id).is_some_and(|link| link.state == LinkState::Info))
            .map(|(id, epoch)| (*id, *epoch))
            .collect();
        reported.push((self.config.server_id, self.accepted_epoch));
        if !self.config.is_quorum(reported.iter().map(|(id, _)| id)) {
            return;
        }
        let highest = reported.iter().map(|(_, epoch)| *epoch).max().unwrap_or(0).max(self.accepted_epoch_seen_max);
        let Some(epoch) = highest.checked_add(1) else {
            self.stop("the epoch space is exhausted");
            return;
        };
        self.leading().discovery_epochs.clear();
        self.accepted_epoch = epoch;
        self.persistence.accepted_epoch(epoch);
        self.leading().phase = Phase::EpochPersisting { epoch };
    }

    fn stop(&mut self, reason: &str) {
        self.close_all_clients();
        self.role = Role::Stopped { reason: reason.to_owned() };
    }

    /// Durability moved: the accepted epoch may now be announced, the leader's own
    /// NEWLEADER acknowledgement may count, its own proposals' votes may count.
    pub(super) fn leader_durable(&mut self) {
        let durable = self.persistence.durable;
        match self.leading_ref().phase {
            Phase::EpochPersisting { epoch } if durable.accepted_epoch >= epoch => {
                let learners: Vec<ServerId> = self
                    .leading_ref()
                    .links
                    .iter()
                    .filter(|(_, link)| link.state == LinkState::Info)
                    .map(|(id, _)| *id)
                    .collect();
                self.leading().phase = Phase::EpochAcking { epoch };
                for id in learners {
                    self.leading().links.get_mut(&id).expect("listed above").state = LinkState::EpochSent;
                    self.send(id, PeerMessage::LeaderInfo { epoch });
                }
                self.leader_check_epoch_acks();
            }
            Phase::Synchronization { .. } => self.leader_check_established(),
            Phase::Broadcast { .. } => self.leader_try_commit(),
            _ => {}
        }
    }

    fn leader_ack_epoch(&mut self, from: ServerId, current_epoch: u32, history: HistorySummary) {
        let Some(link) = self.leading_ref().links.get(&from) else { return };
        if link.state != LinkState::EpochSent {
            return;
        }
        let role = link.role;
        // A voter with a newer history than this leader's means the election picked the
        // wrong server (ZooKeeper: "Follower is ahead of the leader"): start over.
        let ours = (self.current_epoch, self.history.last_zxid());
        if role == LearnerRole::Follower && (current_epoch, history.last_zxid()) > ours {
            self.become_looking();
            return;
        }
        self.leading().links.get_mut(&from).expect("checked above").state = LinkState::EpochAcked { history };
        match self.leading_ref().phase {
            Phase::EpochAcking { .. } => self.leader_check_epoch_acks(),
            Phase::Synchronization { .. } | Phase::Broadcast { .. } => self.leader_sync_learner(from),
            Phase::Discovery | Phase::EpochPersisting { .. } => {}
        }
    }

    /// Once a quorum acknowledged the new epoch (this server, whose acceptedEpoch is
    /// durable, included), the leader adopts it as its currentEpoch and syncs everyone.
    fn leader_check_epoch_acks(&mut self) {
        let Phase::EpochAcking { epoch } = self.leading_ref().phase else { return };
        let mut acked: Vec<ServerId> = self
            .leading_ref()
            .links
            .iter()
            .filter(|(_, link)| matches!(link.state, LinkState::EpochAcked { .. }))
            .map(|(id, _)| *id)
            .collect();
        acked.push(self.config.server_id);
        if !self.config.is_quorum(&acked) {
            return;
        }
        self.current_epoch = epoch;
        self.persistence.current_epoch(epoch);
        let tip_zxid = self.history.last_zxid();
        self.leading().phase = Phase::Synchronization { epoch, tip_zxid };
        for id in acked {
            if id != self.config.server_id {
                self.leader_sync_learner(id);
            }
        }
        self.leader_check_established();
    }

    /// Sends a learner what it needs to hold the leader's history: DIFF, TRUNC+DIFF or
    /// SNAP, then NEWLEADER. From here on every proposal and commit goes to it too.
    fn leader_sync_learner(&mut self, id: ServerId) {
        let Some(Link { state: LinkState::EpochAcked { history }, .. }) = self.leading_ref().links.get(&id) else {
            return;
        };
        let learner = history.clone();
        let (epoch, committed_zxid) = match self.leading_ref().phase {
            // Before the epoch is established, everything the leader holds will be
            // committed by it; the learner applies it only after UPTODATE.
            Phase::Synchronization { epoch, tip_zxid } => (epoch, tip_zxid),
            Phase::Broadcast { epoch } => (epoch, self.committed_zxid),
            _ => return,
        };
        let ours = self.history.summary();
        let point = divergence_point(&ours, &learner);
        let (mode, start) = if point < self.history.base_zxid() || point < learner.base_zxid {
            // The leader no longer holds the txns after the point (or the learner would have
            // to undo applied state): send the whole state.
            let snapshot_zxid = self.database.last_processed_zxid();
            let snapshot = storage::SnapshotPayload::Image(storage::SnapshotImage::of(&self.database));
            (SyncMode::Snap { zxid: snapshot_zxid, snapshot }, snapshot_zxid)
        } else if point == learner.last_zxid() {
            (SyncMode::Diff, point)
        } else {
            (SyncMode::Trunc { zxid: point }, point)
        };
        let entries = self.history.after(start);
        let link = self.leading().links.get_mut(&id).expect("checked above");
        link.state = LinkState::Syncing { acked_new_leader: false };
        self.send(id, PeerMessage::Sync { mode, entries, committed_zxid });
        self.send(id, PeerMessage::NewLeader { zxid: make_zxid(epoch, 0) });
    }

    fn leader_ack_new_leader(&mut self, from: ServerId, zxid: i64, durable_zxid: i64) {
        let (Phase::Synchronization { epoch, .. } | Phase::Broadcast { epoch }) = self.leading_ref().phase else {
            return;
        };
        if zxid != make_zxid(epoch, 0) {
            return;
        }
        let Some(link) = self.leading().links.get_mut(&from) else { return };
        if link.state != (LinkState::Syncing { acked_new_leader: false }) {
            return;
        }
        link.state = LinkState::Syncing { acked_new_leader: true };
        link.acked_zxid = durable_zxid;
        if self.leading_ref().is_established() {
            self.leading().links.get_mut(&from).expect("checked above").state = LinkState::UpToDate;
            self.send(from, PeerMessage::UpToDate);
            self.leader_try_commit();
        } else {
            self.leader_check_established();
        }
    }

    /// The epoch is established when a quorum acknowledged NEWLEADER: the leader's own
    /// acknowledgement needs its currentEpoch and its whole history durable.
    fn leader_check_established(&mut self) {
        let Phase::Synchronization { epoch, tip_zxid } = self.leading_ref().phase else { return };
        let durable = self.persistence.durable;
        if durable.current_epoch != epoch || durable.zxid < tip_zxid {
            return;
        }
        let mut acked: Vec<ServerId> =
            self.leading_ref().links.iter().filter(|(_, link)| link.votes()).map(|(id, _)| *id).collect();
        acked.push(self.config.server_id);
        if !self.config.is_quorum(&acked) {
            return;
        }
        // Established: everything in the history is committed (Zab, phase 2 → 3).
        self.settle_epoch(epoch);
        let now_ms = self.now.monotonic_ms as i64;
        let leader = self.leading();
        leader.phase = Phase::Broadcast { epoch };
        let ready: Vec<ServerId> = leader
            .links
            .iter_mut()
            .filter(|(_, link)| link.state == LinkState::Syncing { acked_new_leader: true })
            .map(|(id, link)| {
                link.state = LinkState::UpToDate;
                *id
            })
            .collect();
        for id in ready {
            self.send(id, PeerMessage::UpToDate);
        }
        self.apply_committed(tip_zxid);
        // Sessions start their timeouts afresh under the new leader.
        let sessions: Vec<(i64, i32)> = self.database.sessions().iter().map(|(id, timeout)| (*id, *timeout)).collect();
        let leader = self.leading();
        for (session_id, timeout_ms) in sessions {
            let _ = leader.sessions.add(session_id, timeout_ms, now_ms);
        }
    }

    /// Commits everything a quorum (this server's durable log included) holds durably,
    /// in zxid order; only proposals of this epoch are committed by counting.
    fn leader_try_commit(&mut self) {
        let Phase::Broadcast { epoch } = self.leading_ref().phase else { return };
        let mut acks: Vec<i64> = self
            .leading_ref()
            .links
            .iter()
            .filter(|(id, link)| link.votes() && self.config.voters.contains(id))
            .map(|(_, link)| link.acked_zxid)
            .collect();
        if self.config.is_voter() {
            acks.push(self.persistence.durable.zxid);
        }
        let quorum = self.config.quorum_size();
        if acks.len() < quorum {
            return;
        }
        acks.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = acks[quorum - 1].min(self.history.last_zxid());
        if candidate <= self.committed_zxid || candidate < make_zxid(epoch, 1) {
            return;
        }
        // Commit in steps that end at each pending sync's zxid, answering the sync right
        // after its step: a learner then applies exactly the commits made before the sync
        // when it answers it, and the client's following requests are answered with newer
        // zxids only (ZooKeeper's leader sends SYNC between the same COMMITs).
        while self.committed_zxid < candidate {
            let step_end = match self.leading_ref().syncs.front() {
                Some(sync) if sync.zxid <= candidate => sync.zxid,
                _ => candidate,
            };
            self.leader_commit_to(step_end);
            while self.leading_ref().syncs.front().is_some_and(|sync| sync.zxid <= self.committed_zxid) {
                let sync = self.leading().syncs.pop_front().expect("checked non-empty");
                self.leader_answer_sync(sync);
            }
        }
        self.leader_process_queue();
    }

    /// Sends COMMIT (followers) or INFORM (observers) up to `zxid` and applies it here.
    fn leader_commit_to(&mut self, zxid: i64) {
        let from = self.committed_zxid;
        let links: Vec<(ServerId, LearnerRole)> = self
            .leading_ref()
            .links
            .iter()
            .filter(|(_, link)| link.receives_broadcast())
            .map(|(id, link)| (*id, link.role))
            .collect();
        // Shared with the history, and gathered only when an observer will be told.
        let informs = if links.iter().any(|(_, role)| *role == LearnerRole::Observer) {
            self.history.shared_range(from, zxid)
        } else {
            Vec::new()
        };
        for (id, role) in links {
            match role {
                LearnerRole::Follower => self.send(id, PeerMessage::Commit { zxid }),
                LearnerRole::Observer => {
                    for entry in &informs {
                        self.send(id, PeerMessage::Inform(entry.clone()));
                    }
                }
            }
        }
        self.apply_committed(zxid);
    }

    fn leader_answer_sync(&mut self, sync: PendingSync) {
        if sync.origin == self.config.server_id {
            self.sync_done(sync.session_id, sync.cxid, sync.path);
        } else {
            self.send(
                sync.origin,
                PeerMessage::SyncDone { session_id: sync.session_id, cxid: sync.cxid, path: sync.path },
            );
        }
    }

    /// A request enters the leader's pipeline; it is held back (boundedly) while the
    /// maximum number of proposals is in flight.
    pub(super) fn leader_submit(&mut self, submission: Submission) {
        if !self.leading_ref().is_established() {
            return;
        }
        if self.leading_ref().queued.len() >= self.config.requests_queued_max {
            let (origin, session_id, cxid) = (submission.origin, submission.session_id, submission.cxid);
            if origin == self.config.server_id {
                self.refused(session_id, cxid, ErrorCode::ThrottledOp);
            } else {
                self.send(origin, PeerMessage::Refused { session_id, cxid, err: ErrorCode::ThrottledOp });
            }
            return;
        }
        self.leading().queued.push_back(submission);
        self.leader_process_queue();
    }

    fn leader_process_queue(&mut self) {
        loop {
            // Within one epoch, counters are consecutive: the difference is the count.
            let (last, committed) = (self.history.last_zxid(), self.committed_zxid);
            let in_flight = if crate::zab::epoch_of(last) == crate::zab::epoch_of(committed) {
                (last - committed) as usize
            } else {
                self.history.range(committed, i64::MAX).count()
            };
            if in_flight >= self.config.proposals_in_flight_max {
                return;
            }
            let Role::Leading(leader) = &mut self.role else { return };
            if !leader.is_established() {
                return;
            }
            let Some(submission) = leader.queued.pop_front() else { return };
            self.leader_propose(submission);
        }
    }

    /// Prepares a request into a txn and proposes it (Zab, phase 3: the leader assigns
    /// zxid = epoch << 32 | counter and sends PROPOSAL to every follower).
    fn leader_propose(&mut self, submission: Submission) {
        let Phase::Broadcast { epoch } = self.leading_ref().phase else { return };
        let Submission { origin, session_id, cxid, kind } = submission;
        let counter = self.leading_ref().next_counter;
        let zxid = make_zxid(epoch, counter);
        let now = self.now;
        let database = &self.database;
        let Role::Leading(leader) = &mut self.role else { return };
        let txn = match kind {
            SubmissionKind::Request { request: Request::Sync(sync), .. } => {
                // `sync` is not a txn: it waits for every proposal made so far.
                let pending = PendingSync { zxid: self.history.last_zxid(), origin, session_id, cxid, path: sync.path };
                if pending.zxid <= self.committed_zxid {
                    self.leader_answer_sync(pending);
                } else {
                    leader.syncs.push_back(pending);
                }
                return;
            }
            SubmissionKind::CreateSession { timeout_ms } => {
                match leader.sessions.add(session_id, timeout_ms, now.monotonic_ms as i64) {
                    Ok(_) => Txn::CreateSession { timeout_ms },
                    Err(_) => {
                        if origin == self.config.server_id {
                            self.refused(session_id, cxid, ErrorCode::ThrottledOp);
                        } else {
                            let refusal = PeerMessage::Refused { session_id, cxid, err: ErrorCode::ThrottledOp };
                            self.send(origin, refusal);
                        }
                        return;
                    }
                }
            }
            SubmissionKind::Request { request, auth_ids } => {
                let context = RequestContext { session_id, auth_ids: &auth_ids, zxid };
                match leader.sessions.check_session(session_id) {
                    Err(err) => Txn::Error(err),
                    Ok(()) => {
                        if matches!(request, Request::CloseSession) {
                            leader.sessions.set_closing(session_id);
                        }
                        leader.preparer.prepare(&database.tree, &context, request)
                    }
                }
            }
            SubmissionKind::ExpireSession => {
                let context = RequestContext { session_id, auth_ids: &[], zxid };
                leader.preparer.prepare(&database.tree, &context, Request::CloseSession)
            }
            SubmissionKind::DeleteContainer { path } => {
                match leader.preparer.prepare_delete_container(&database.tree, &path, zxid) {
                    Ok(txn) => txn,
                    Err(_) => return,
                }
            }
        };
        leader.next_counter = counter + 1;
        // One entry shared by the proposals, the log record and the history.
        let entry = Arc::new(LogEntry {
            prev_zxid: self.history.last_zxid(),
            header: TxnHeader { session_id, cxid, zxid, time_ms: now.wall_ms },
            txn,
        });
        let followers: Vec<ServerId> = leader
            .links
            .iter()
            .filter(|(_, link)| link.receives_broadcast() && link.role == LearnerRole::Follower)
            .map(|(id, _)| *id)
            .collect();
        for id in followers {
            self.send(id, PeerMessage::Proposal(Arc::clone(&entry)));
        }
        let size = self.log_entry(entry);
        self.proposal_sizes.record(size);
        // The counter must not wrap inside an epoch: ZooKeeper forces a new election
        // when it would, and so does zkd.
        if counter == u32::MAX - 1 {
            self.become_looking();
        }
    }

    pub(super) fn leader_timeout(&mut self) {
        let now_ms = self.now.monotonic_ms;
        let tick_ms = self.config.tick_ms();
        let established = self.leading_ref().is_established();
        if !established && now_ms >= self.leading_ref().started_ms + self.config.init_limit_ticks * tick_ms {
            // No quorum joined within initLimit: elect again.
            self.become_looking();
            return;
        }
        if now_ms >= self.leading_ref().next_ping_ms {
            self.leading().next_ping_ms = now_ms + (tick_ms / 2).max(1);
            let silence_ms_max = self.config.sync_limit_ticks * tick_ms;
            // Learners silent for longer than syncLimit are dropped (ZooKeeper's
            // LearnerHandler gives up on them the same way).
            let leader = self.leading();
            leader.links.retain(|_, link| now_ms.saturating_sub(link.last_heard_ms) <= silence_ms_max);
            let targets: Vec<ServerId> =
                leader.links.iter().filter(|(_, link)| link.receives_broadcast()).map(|(id, _)| *id).collect();
            for id in targets {
                self.send(id, PeerMessage::Ping { touched_sessions: Vec::new() });
            }
            if established {
                let mut alive: Vec<ServerId> =
                    self.leading_ref().links.iter().filter(|(_, link)| link.votes()).map(|(id, _)| *id).collect();
                alive.push(self.config.server_id);
                if !self.config.is_quorum(&alive) {
                    // Lost the quorum: step down so clients move to a server that has one.
                    self.become_looking();
                    return;
                }
            }
        }
        if !established {
            return;
        }
        let expired = self.leading().sessions.expired(now_ms as i64);
        for session_id in expired {
            let expiry =
                Submission { origin: self.config.server_id, session_id, cxid: 0, kind: SubmissionKind::ExpireSession };
            self.leader_submit(expiry);
        }
        if now_ms >= self.leading_ref().next_container_check_ms {
            self.leading().next_container_check_ms = now_ms + self.config.container_check_interval_ms;
            for path in self.container_candidates() {
                let cleanup = Submission {
                    origin: self.config.server_id,
                    session_id: 0,
                    cxid: 0,
                    kind: SubmissionKind::DeleteContainer { path },
                };
                self.leader_submit(cleanup);
            }
        }
    }

    /// Empty containers that once had children, and TTL nodes without children whose
    /// time since their last change passed their TTL (ZooKeeper's `ContainerManager`).
    fn container_candidates(&self) -> Vec<String> {
        let tree = &self.database.tree;
        let wall_ms = self.now.wall_ms;
        let mut candidates = Vec::new();
        for path in tree.containers() {
            if let Some(node) = tree.get(path) {
                if node.num_children == 0 && node.stat.cversion > 0 {
                    candidates.push(path.clone());
                }
            }
        }
        for path in tree.ttls() {
            if let Some(node) = tree.get(path) {
                if let NodeKind::Ttl { ttl_ms } = node.kind {
                    if node.num_children == 0 && wall_ms.saturating_sub(node.stat.mtime) > ttl_ms {
                        candidates.push(path.clone());
                    }
                }
            }
        }
        candidates
    }

    pub(super) fn leader_link_down(&mut self, peer: ServerId) {
        let leader = self.leading();
        leader.links.remove(&peer);
        leader.discovery_epochs.remove(&peer);
        // An established leader whose remaining links no longer make a quorum steps down
        // now rather than at the next ping: its clients move sooner to servers that can
        // still commit.
        if self.leading_ref().is_established() {
            let mut connected: Vec<ServerId> =
                self.leading_ref().links.iter().filter(|(_, link)| link.votes()).map(|(id, _)| *id).collect();
            connected.push(self.config.server_id);
            if !self.config.is_quorum(&connected) {
                self.become_looking();
            }
        }
    }
}
