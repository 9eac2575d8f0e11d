//! The leader: discovery (choose a new epoch above every acceptedEpoch of a quorum),
//! synchronization (bring each learner's log level with its own), broadcast (propose,
//! count durable acknowledgements, commit in order).
//!
//! Every handler is a method of [`Leader`] that takes the node's [`Shared`] state; the
//! confirmation rounds, and the syncs and revalidations waiting for them, are in
//! `leader/rounds.rs`; unit tests of single steps in `leader/tests.rs`.
//!
//! Reference: Zab paper, section III ("phases"); ZooKeeper's `Leader` and
//! `LearnerHandler`.

use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::Arc;

mod forwarded;
mod rounds;
#[cfg(test)]
mod tests;

use super::history::divergence_point;
use super::shared::Shared;
use super::timers::{Deadlines, Timer};
use super::{Submission, SubmissionKind};
use crate::ondisk;
use crate::proto::Request;
use crate::request::{Preparer, RequestContext};
use crate::session::SessionTable;

use crate::tree::NodeKind;
use crate::txn::LogEntry;
use crate::txn::{Txn, TxnHeader};
use crate::zab::message::{HistorySummary, LearnerRole, PeerMessage, SyncMode};
use crate::zab::{make_zxid, ServerId};
use crate::ErrorCode;
pub(super) use forwarded::ForLeader;
use rounds::{OriginAnswer, PendingRevalidation, PendingSync, Rounds};

/// Where the leader is in establishing its epoch.
#[derive(Debug)]
enum Phase {
    /// Waiting for a quorum of learners to report their acceptedEpoch; what each reported.
    Discovery { epochs: BTreeMap<ServerId, u32> },
    /// The new epoch is chosen and being written as this server's acceptedEpoch.
    EpochPersisting { epoch: u32 },
    /// LEADERINFO sent; waiting for a quorum of ACKEPOCH.
    EpochAcking { epoch: u32 },
    /// Learners are being synced; waiting for a quorum to acknowledge NEWLEADER.
    Synchronization { epoch: u32, tip_zxid: i64 },
    /// The epoch is established: serving.
    Broadcast(Box<Broadcast>),
}

/// What a leader keeps only while its epoch is established (Zab, phase 3): the session
/// table, the request pipeline and the confirmation rounds with their waiters.
#[derive(Debug)]
struct Broadcast {
    epoch: u32,
    sessions: SessionTable,
    preparer: Preparer,
    /// The counter of the next proposal's zxid.
    next_counter: u32,
    queued: VecDeque<Submission>,
    syncs: VecDeque<PendingSync>,
    revalidations: VecDeque<PendingRevalidation>,
    rounds: Rounds,
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
    Syncing(NewLeaderAck),
    /// UPTODATE sent.
    UpToDate,
}

/// Whether a syncing learner acknowledged NEWLEADER (its synced log and its new
/// currentEpoch are durable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NewLeaderAck {
    Awaited,
    Received,
}

#[derive(Clone, Debug)]
struct Link {
    role: LearnerRole,
    state: LinkState,
    last_heard_ms: u64,
    /// The learner's log is durable up to here (counted once it acknowledged NEWLEADER).
    acked_zxid: i64,
    /// The highest confirmation round it echoed in this epoch.
    round_acked: u64,
}

impl Link {
    fn receives_broadcast(&self) -> bool {
        matches!(self.state, LinkState::Syncing { .. } | LinkState::UpToDate)
    }

    /// Whether this learner's acknowledgements count: it is a follower whose currentEpoch
    /// and synced log are durable.
    fn votes(&self) -> bool {
        self.role == LearnerRole::Follower
            && matches!(self.state, LinkState::Syncing(NewLeaderAck::Received) | LinkState::UpToDate)
    }
}

#[derive(Debug)]
pub(super) struct Leader {
    phase: Phase,
    links: BTreeMap<ServerId, Link>,
    /// [`Timer::Ping`], [`Timer::InitLimit`] and [`Timer::ContainerCheck`]; session
    /// expiry is read from the session table.
    timers: Deadlines,
}

impl Leader {
    pub(super) fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Broadcast { .. })
    }

    /// The epoch this leader chose, once it chose one.
    fn epoch(&self) -> Option<u32> {
        match self.phase {
            Phase::Discovery { .. } => None,
            Phase::EpochPersisting { epoch } | Phase::EpochAcking { epoch } | Phase::Synchronization { epoch, .. } => {
                Some(epoch)
            }
            Phase::Broadcast(ref broadcast) => Some(broadcast.epoch),
        }
    }

    /// The session table, while the epoch is established.
    pub(super) fn sessions(&self) -> Option<&SessionTable> {
        match &self.phase {
            Phase::Broadcast(broadcast) => Some(&broadcast.sessions),
            _ => None,
        }
    }

    pub(super) fn sessions_mut(&mut self) -> Option<&mut SessionTable> {
        match &mut self.phase {
            Phase::Broadcast(broadcast) => Some(&mut broadcast.sessions),
            _ => None,
        }
    }

    /// Whether this leader's lease ran out at `now_ms`: a leader-elect that did not
    /// establish its epoch within initLimit, or an established leader none of whose rounds
    /// that started within the last syncLimit a quorum of voters confirmed. A leader that
    /// is a quorum by itself holds its lease for good.
    pub(super) fn lease_expired(&self, config: &super::NodeConfig, now_ms: u64) -> bool {
        let tick_ms = config.tick_ms();
        let Phase::Broadcast(broadcast) = &self.phase else {
            return self.timers.is_due(Timer::InitLimit, now_ms);
        };
        if config.is_quorum([config.server_id].iter()) {
            return false;
        }
        now_ms > broadcast.rounds.lease_from_ms + config.sync_limit_ticks * tick_ms
    }

    /// The timers that wake a leader, in the order [`Leader::timeout`] fires them:
    /// [`Timer::InitLimit`] is not among them (the lease check before every input reads
    /// it, and a ping comes at least every half tick).
    fn wakers(&self) -> &'static [Timer] {
        match self.phase {
            Phase::Broadcast(_) => &[Timer::Ping, Timer::SessionExpiry, Timer::ContainerCheck],
            _ => &[Timer::Ping],
        }
    }

    /// `timer`'s deadline, if it has one.
    fn deadline(&self, timer: Timer) -> Option<u64> {
        match (timer, &self.phase) {
            (Timer::SessionExpiry, Phase::Broadcast(broadcast)) => {
                broadcast.sessions.next_expiry_ms().map(|expiry| expiry.max(0) as u64)
            }
            (Timer::SessionExpiry, _) => None,
            _ => self.timers.get(timer),
        }
    }

    /// The earliest deadline among the timers that wake this leader.
    pub(super) fn poll_timeout(&self) -> u64 {
        let deadline = super::timers::earliest(self.wakers().iter().map(|timer| self.deadline(*timer)));
        deadline.expect("a leader always has a ping due")
    }

    pub(super) fn check_invariants(&self, shared: &Shared) {
        if let Phase::Broadcast(broadcast) = &self.phase {
            broadcast.check_invariants(shared);
        }
    }
}

impl Broadcast {
    /// The broadcast phase of `epoch`, entered now: the lease starts now (a quorum just
    /// acknowledged NEWLEADER), and the first round at the next ping confirms it.
    fn new(shared: &Shared, epoch: u32) -> Broadcast {
        let tick_ms = shared.config.tick_ms();
        let rounds = Rounds { lease_from_ms: shared.now.monotonic_ms, ..Rounds::default() };
        Broadcast {
            epoch,
            sessions: SessionTable::new(tick_ms as i32, 1, shared.config.sessions_max),
            preparer: Preparer::new(shared.config.prepare.clone()),
            next_counter: 1,
            queued: VecDeque::new(),
            syncs: VecDeque::new(),
            revalidations: VecDeque::new(),
            rounds,
        }
    }

    /// A committed txn was applied: forget its outstanding change records and, for a
    /// closed session, the session.
    fn applied(&mut self, entry: &LogEntry) {
        self.preparer.committed(entry.zxid());
        if let Txn::CloseSession { .. } = entry.txn {
            self.sessions.remove(entry.header.session_id);
        }
    }

    /// Commits up to `candidate` in steps that end at each pending sync's zxid, answering
    /// the sync right after its step: a learner then applies exactly the commits made
    /// before the sync when it answers it, and the client's following requests (a read
    /// queued behind the sync, a write sent after it) are answered with newer zxids only
    /// (ZooKeeper's leader sends SYNC between the same COMMITs). A sync whose round a
    /// quorum has not confirmed yet holds later commits back until it is; its round began
    /// when it arrived, before any later proposal, so its echoes usually come before their
    /// acknowledgements.
    fn commit_through_syncs(&mut self, links: &BTreeMap<ServerId, Link>, shared: &mut Shared, candidate: i64) {
        loop {
            // Every sync that is ready is answered before anything after it commits.
            self.answer_waiters(shared);
            if shared.committed_zxid >= candidate {
                return;
            }
            let step_end = match self.syncs.front() {
                // Its proposals committed but its round is not confirmed: hold on.
                Some(sync) if sync.zxid <= shared.committed_zxid => return,
                Some(sync) if sync.zxid <= candidate => sync.zxid,
                _ => candidate,
            };
            self.commit_to(links, shared, step_end);
        }
    }

    /// Sends COMMIT (followers) or INFORM (observers) up to `zxid` and applies it here.
    fn commit_to(&mut self, links: &BTreeMap<ServerId, Link>, shared: &mut Shared, zxid: i64) {
        let from = shared.committed_zxid;
        let links: Vec<(ServerId, LearnerRole)> =
            links.iter().filter(|(_, link)| link.receives_broadcast()).map(|(id, link)| (*id, link.role)).collect();
        // Shared with the history, and gathered only when an observer will be told.
        let informs = if links.iter().any(|(_, role)| *role == LearnerRole::Observer) {
            shared.history.shared_range(from, zxid)
        } else {
            Vec::new()
        };
        for (id, role) in links {
            match role {
                LearnerRole::Follower => shared.send(id, PeerMessage::Commit { zxid }),
                LearnerRole::Observer => {
                    for entry in &informs {
                        shared.send(id, PeerMessage::Inform(entry.clone()));
                    }
                }
            }
        }
        shared.apply_committed(zxid, &mut |entry| self.applied(entry));
    }

    /// Prepares a request into a txn and proposes it (Zab, phase 3: the leader assigns
    /// zxid = epoch << 32 | counter and sends PROPOSAL to every follower).
    fn propose(&mut self, links: &BTreeMap<ServerId, Link>, shared: &mut Shared, submission: Submission) {
        let epoch = self.epoch;
        let Submission { origin, session_id, cxid, kind } = submission;
        if let SubmissionKind::Request { request: Request::Sync(sync), .. } = kind {
            // `sync` is not a txn: it waits for every proposal made so far to commit, and
            // for a quorum to confirm a round that began after it arrived.
            let zxid = shared.history.last_zxid();
            let round = self.next_round();
            let pending = PendingSync { zxid, round, origin, session_id, cxid, path: sync.path };
            self.syncs.push_back(pending);
            // Only an ensemble of one confirms a round here, and it never holds commits
            // back; so answering is enough (committing from here would recurse into the
            // queue this request came from).
            self.update_rounds(links, shared);
            self.answer_waiters(shared);
            return;
        }
        let counter = self.next_counter;
        let zxid = make_zxid(epoch, counter);
        let now = shared.now;
        let database = &shared.database;
        let txn = match kind {
            SubmissionKind::CreateSession { timeout_ms } => {
                match self.sessions.add(session_id, timeout_ms, now.monotonic_ms as i64) {
                    Ok(_) => Txn::CreateSession { timeout_ms },
                    Err(_) => {
                        let refusal = OriginAnswer::Refused { cxid, err: ErrorCode::ThrottledOp };
                        self.answer_origin(shared, origin, session_id, refusal);
                        return;
                    }
                }
            }
            SubmissionKind::Request { request, auth_ids } => {
                let context = RequestContext { session_id, auth_ids: &auth_ids, zxid };
                match self.sessions.check_session(session_id) {
                    Err(err) => Txn::Error(err),
                    Ok(()) => {
                        if matches!(request, Request::CloseSession) {
                            self.sessions.set_closing(session_id);
                        }
                        self.preparer.prepare(&database.tree, &context, request)
                    }
                }
            }
            SubmissionKind::ExpireSession => {
                let context = RequestContext { session_id, auth_ids: &[], zxid };
                self.preparer.prepare(&database.tree, &context, Request::CloseSession)
            }
            SubmissionKind::DeleteContainer { path } => {
                match self.preparer.prepare_delete_container(&database.tree, &path, zxid) {
                    Ok(txn) => txn,
                    Err(_) => return,
                }
            }
        };
        self.next_counter = counter + 1;
        // One entry shared by the proposals, the log record and the history.
        let entry = Arc::new(LogEntry {
            prev_zxid: shared.history.last_zxid(),
            header: TxnHeader { session_id, cxid, zxid, time_ms: now.wall_ms },
            txn,
        });
        for id in followers(links) {
            shared.send(id, PeerMessage::Proposal(Arc::clone(&entry)));
        }
        let size = shared.log_entry(entry);
        shared.proposal_sizes.record(size);
        // The counter must not wrap inside an epoch: ZooKeeper forces a new election
        // when it would, and so does zkd.
        if counter == u32::MAX - 1 {
            shared.step_down();
        }
    }

    pub(super) fn check_invariants(&self, shared: &Shared) {
        {
            let epoch = self.epoch;
            let outstanding = shared.history.last_zxid() - shared.committed_zxid;
            assert!(outstanding >= 0, "committed never passes the log");
            assert!(
                shared.history.last_zxid() < make_zxid(epoch, self.next_counter),
                "every proposal's zxid is below the next counter"
            );
            assert_eq!(shared.current_epoch, epoch, "an established leader's currentEpoch is its epoch");
        }
        assert!(self.rounds.confirmed <= self.rounds.started, "only a started round is confirmed");
        for sync in &self.syncs {
            assert!(
                sync.zxid > shared.committed_zxid || sync.round > self.waiters_confirmed(&shared.config),
                "a pending sync waits for an uncommitted proposal or an unconfirmed round"
            );
            assert!(sync.round <= self.rounds.started + 1, "a sync waits for at most the next round");
        }
        for waiting in &self.revalidations {
            assert!(
                waiting.round > self.waiters_confirmed(&shared.config),
                "a pending revalidation waits for its round"
            );
        }
        assert!(
            !self.rounds.wanted || self.rounds.started > self.rounds.confirmed,
            "the next round is wanted only while one is in flight"
        );
    }
}

impl Leader {
    /// A leader-elect in discovery (Zab, phase 1).
    pub(super) fn new(shared: &Shared) -> Leader {
        let now_ms = shared.now.monotonic_ms;
        let tick_ms = shared.config.tick_ms();
        let mut timers = Deadlines::default();
        timers.set(Timer::Ping, now_ms + tick_ms / 2);
        timers.set(Timer::InitLimit, now_ms + shared.config.init_limit_ticks * tick_ms);
        timers.set(Timer::ContainerCheck, now_ms + shared.config.container_check_interval_ms);
        Leader { phase: Phase::Discovery { epochs: BTreeMap::new() }, links: BTreeMap::new(), timers }
    }

    /// Starts discovery: an ensemble of one chooses its epoch at once; the hellos that
    /// came while this server was still looking are taken now.
    pub(super) fn start(&mut self, shared: &mut Shared) {
        self.check_discovery(shared);
        for (from, hello) in std::mem::take(&mut shared.early_hellos) {
            if shared.leaving() {
                return;
            }
            self.message(shared, from, hello);
        }
    }

    pub(super) fn message(&mut self, shared: &mut Shared, from: ServerId, message: PeerMessage) {
        let now_ms = shared.now.monotonic_ms;
        if let Some(link) = self.links.get_mut(&from) {
            link.last_heard_ms = now_ms;
        }
        match message {
            PeerMessage::LearnerInfo { role, accepted_epoch, history } => {
                self.learner_info(shared, from, role, accepted_epoch, history)
            }
            PeerMessage::AckEpoch { current_epoch, history } => self.ack_epoch(shared, from, current_epoch, history),
            PeerMessage::AckNewLeader { zxid, durable_zxid } => self.ack_new_leader(shared, from, zxid, durable_zxid),
            PeerMessage::Ack { zxid } => {
                let Some(link) = self.links.get_mut(&from) else { return };
                if link.votes() {
                    link.acked_zxid = link.acked_zxid.max(zxid);
                    self.try_commit(shared);
                }
            }
            PeerMessage::Request(_) | PeerMessage::Revalidate { .. } => self.forwarded(shared, from, message),
            PeerMessage::Ping { epoch, round, touched_sessions } => {
                let now_ms = shared.now.monotonic_ms as i64;
                let current = self.epoch() == Some(epoch);
                let Some(link) = self.links.get_mut(&from) else { return };
                if current {
                    link.round_acked = link.round_acked.max(round);
                }
                // Sessions are tracked from the establishment of the epoch; a learner
                // touches them only while it serves clients, after that.
                if let Some(sessions) = self.sessions_mut() {
                    for (session_id, timeout_ms) in touched_sessions {
                        sessions.touch_with_timeout(session_id, timeout_ms, now_ms);
                    }
                }
                if current {
                    self.advance_rounds(shared);
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
    fn learner_info(
        &mut self,
        shared: &mut Shared,
        from: ServerId,
        role: LearnerRole,
        accepted_epoch: u32,
        _history: HistorySummary,
    ) {
        let expected_role =
            if shared.config.voters.contains(&from) { LearnerRole::Follower } else { LearnerRole::Observer };
        if role != expected_role {
            return;
        }
        shared.accepted_epoch_seen_max = shared.accepted_epoch_seen_max.max(accepted_epoch);
        let now_ms = shared.now.monotonic_ms;
        let chosen = match self.phase {
            Phase::Discovery { .. } => None,
            Phase::EpochPersisting { epoch } | Phase::EpochAcking { epoch } | Phase::Synchronization { epoch, .. } => {
                Some(epoch)
            }
            Phase::Broadcast(ref broadcast) => Some(broadcast.epoch),
        };
        if chosen.is_some_and(|epoch| accepted_epoch > epoch) {
            // The learner promised a higher epoch to a leader-elect that never established;
            // it will refuse ours forever. Step down: the next discovery picks an epoch
            // above every one reported (ZooKeeper leaves such a server out until the
            // leader changes for another reason).
            shared.step_down();
            return;
        }
        let link = Link { role, state: LinkState::Info, last_heard_ms: now_ms, acked_zxid: 0, round_acked: 0 };
        self.links.insert(from, link);
        match &mut self.phase {
            Phase::Discovery { epochs } => {
                // Remember what it accepted; the epoch is chosen once a quorum reported.
                epochs.insert(from, accepted_epoch);
                self.check_discovery(shared);
            }
            Phase::EpochPersisting { .. } => {}
            Phase::EpochAcking { .. } | Phase::Synchronization { .. } | Phase::Broadcast(_) => {
                let epoch = chosen.expect("an epoch is chosen past discovery");
                self.links.get_mut(&from).expect("just inserted").state = LinkState::EpochSent;
                shared.send(from, PeerMessage::LeaderInfo { epoch });
            }
        }
    }

    /// Chooses the new epoch once a quorum (this server included) reported: one above
    /// every acceptedEpoch among them (Zab's discovery, step l.1.1).
    fn check_discovery(&mut self, shared: &mut Shared) {
        let Phase::Discovery { epochs } = &self.phase else { return };
        let mut reported: Vec<(ServerId, u32)> = epochs
            .iter()
            .filter(|(id, _)| self.links.get(id).is_some_and(|link| link.state == LinkState::Info))
            .map(|(id, epoch)| (*id, *epoch))
            .collect();
        reported.push((shared.config.server_id, shared.accepted_epoch));
        if !shared.config.is_quorum(reported.iter().map(|(id, _)| id)) {
            return;
        }
        let highest = reported.iter().map(|(_, epoch)| *epoch).max().unwrap_or(0).max(shared.accepted_epoch_seen_max);
        let Some(epoch) = highest.checked_add(1) else {
            shared.stop("the epoch space is exhausted");
            return;
        };
        shared.accepted_epoch = epoch;
        shared.persistence.accepted_epoch(epoch);
        self.phase = Phase::EpochPersisting { epoch };
    }

    /// Durability moved: the accepted epoch may now be announced, the leader's own
    /// NEWLEADER acknowledgement may count, its own proposals' votes may count.
    pub(super) fn durable(&mut self, shared: &mut Shared) {
        let durable = shared.persistence.durable;
        match self.phase {
            Phase::EpochPersisting { epoch } if durable.accepted_epoch >= epoch => {
                let learners: Vec<ServerId> =
                    self.links.iter().filter(|(_, link)| link.state == LinkState::Info).map(|(id, _)| *id).collect();
                self.phase = Phase::EpochAcking { epoch };
                for id in learners {
                    self.links.get_mut(&id).expect("listed above").state = LinkState::EpochSent;
                    shared.send(id, PeerMessage::LeaderInfo { epoch });
                }
                self.check_epoch_acks(shared);
            }
            Phase::Synchronization { .. } => self.check_established(shared),
            Phase::Broadcast(_) => self.try_commit(shared),
            _ => {}
        }
    }

    fn ack_epoch(&mut self, shared: &mut Shared, from: ServerId, current_epoch: u32, history: HistorySummary) {
        let Some(link) = self.links.get(&from) else { return };
        if link.state != LinkState::EpochSent {
            return;
        }
        let role = link.role;
        // A voter with a newer history than this leader's means the election picked the
        // wrong server (ZooKeeper: "Follower is ahead of the leader"): start over.
        let ours = (shared.current_epoch, shared.history.last_zxid());
        if role == LearnerRole::Follower && (current_epoch, history.last_zxid()) > ours {
            shared.step_down();
            return;
        }
        self.links.get_mut(&from).expect("checked above").state = LinkState::EpochAcked { history };
        match self.phase {
            Phase::EpochAcking { .. } => self.check_epoch_acks(shared),
            Phase::Synchronization { .. } | Phase::Broadcast(_) => self.sync_learner(shared, from),
            Phase::Discovery { .. } | Phase::EpochPersisting { .. } => {}
        }
    }

    /// Once a quorum acknowledged the new epoch (this server, whose acceptedEpoch is
    /// durable, included), the leader adopts it as its currentEpoch and syncs everyone.
    fn check_epoch_acks(&mut self, shared: &mut Shared) {
        let Phase::EpochAcking { epoch } = self.phase else { return };
        let mut acked: Vec<ServerId> = self
            .links
            .iter()
            .filter(|(_, link)| matches!(link.state, LinkState::EpochAcked { .. }))
            .map(|(id, _)| *id)
            .collect();
        acked.push(shared.config.server_id);
        if !shared.config.is_quorum(&acked) {
            return;
        }
        shared.current_epoch = epoch;
        shared.persistence.current_epoch(epoch);
        let tip_zxid = shared.history.last_zxid();
        self.phase = Phase::Synchronization { epoch, tip_zxid };
        for id in acked {
            if id != shared.config.server_id {
                self.sync_learner(shared, id);
            }
        }
        self.check_established(shared);
    }

    /// Sends a learner what it needs to hold the leader's history: DIFF, TRUNC+DIFF or
    /// SNAP, then NEWLEADER. From here on every proposal and commit goes to it too.
    fn sync_learner(&mut self, shared: &mut Shared, id: ServerId) {
        let Some(Link { state: LinkState::EpochAcked { history }, .. }) = self.links.get(&id) else {
            return;
        };
        let learner = history.clone();
        let (epoch, committed_zxid) = match self.phase {
            // Before the epoch is established, everything the leader holds will be
            // committed by it; the learner applies it only after UPTODATE.
            Phase::Synchronization { epoch, tip_zxid } => (epoch, tip_zxid),
            Phase::Broadcast(ref broadcast) => (broadcast.epoch, shared.committed_zxid),
            _ => return,
        };
        let ours = shared.history.summary();
        let point = divergence_point(&ours, &learner);
        let (mode, start) = if point < shared.history.base_zxid() || point < learner.base_zxid {
            // The leader no longer holds the txns after the point (or the learner would have
            // to undo applied state): send the whole state.
            let snapshot_zxid = shared.database.last_processed_zxid();
            let snapshot = ondisk::SnapshotPayload::Image(ondisk::SnapshotImage::of(&shared.database));
            (SyncMode::Snap { zxid: snapshot_zxid, snapshot }, snapshot_zxid)
        } else if point == learner.last_zxid() {
            (SyncMode::Diff, point)
        } else {
            (SyncMode::Trunc { zxid: point }, point)
        };
        let entries = shared.history.after(start);
        let link = self.links.get_mut(&id).expect("checked above");
        link.state = LinkState::Syncing(NewLeaderAck::Awaited);
        shared.send(id, PeerMessage::Sync { mode, entries, committed_zxid });
        shared.send(id, PeerMessage::NewLeader { zxid: make_zxid(epoch, 0) });
    }

    fn ack_new_leader(&mut self, shared: &mut Shared, from: ServerId, zxid: i64, durable_zxid: i64) {
        let epoch = match self.phase {
            Phase::Synchronization { epoch, .. } => epoch,
            Phase::Broadcast(ref broadcast) => broadcast.epoch,
            _ => return,
        };
        if zxid != make_zxid(epoch, 0) {
            return;
        }
        let Some(link) = self.links.get_mut(&from) else { return };
        if link.state != LinkState::Syncing(NewLeaderAck::Awaited) {
            return;
        }
        link.state = LinkState::Syncing(NewLeaderAck::Received);
        link.acked_zxid = durable_zxid;
        if self.is_established() {
            self.links.get_mut(&from).expect("checked above").state = LinkState::UpToDate;
            shared.send(from, PeerMessage::UpToDate);
            self.try_commit(shared);
        } else {
            self.check_established(shared);
        }
    }

    /// The epoch is established when a quorum acknowledged NEWLEADER: the leader's own
    /// acknowledgement needs its currentEpoch and its whole history durable.
    fn check_established(&mut self, shared: &mut Shared) {
        let Phase::Synchronization { epoch, tip_zxid } = self.phase else { return };
        let durable = shared.persistence.durable;
        if durable.current_epoch != epoch || durable.zxid < tip_zxid {
            return;
        }
        let mut acked: Vec<ServerId> = self.links.iter().filter(|(_, link)| link.votes()).map(|(id, _)| *id).collect();
        acked.push(shared.config.server_id);
        if !shared.config.is_quorum(&acked) {
            return;
        }
        // Established: everything in the history is committed (Zab, phase 2 → 3).
        shared.settle_epoch(epoch);
        let now_ms = shared.now.monotonic_ms as i64;
        let mut broadcast = Box::new(Broadcast::new(shared, epoch));
        let ready: Vec<ServerId> = self
            .links
            .iter_mut()
            .filter(|(_, link)| link.state == LinkState::Syncing(NewLeaderAck::Received))
            .map(|(id, link)| {
                link.state = LinkState::UpToDate;
                *id
            })
            .collect();
        for id in ready {
            shared.send(id, PeerMessage::UpToDate);
        }
        shared.apply_committed(tip_zxid, &mut |entry| broadcast.applied(entry));
        // Sessions start their timeouts afresh under the new leader (ZooKeeper's leader
        // loads its session table from the database it synced).
        for (&session_id, &timeout_ms) in shared.database.sessions() {
            let _ = broadcast.sessions.add(session_id, timeout_ms, now_ms);
        }
        self.phase = Phase::Broadcast(broadcast);
    }

    /// Commits everything a quorum (this server's durable log included) holds durably,
    /// in zxid order; only proposals of this epoch are committed by counting. Then answers
    /// the waiters that are ready and feeds the pipeline.
    /// Commits everything a quorum (this server's durable log included) holds durably,
    /// in zxid order; only proposals of this epoch are committed by counting. Then answers
    /// the waiters that are ready and feeds the pipeline.
    fn try_commit(&mut self, shared: &mut Shared) {
        let Phase::Broadcast(broadcast) = &mut self.phase else { return };
        if let Some(candidate) = commit_candidate(&self.links, shared) {
            if candidate >= make_zxid(broadcast.epoch, 1) {
                broadcast.commit_through_syncs(&self.links, shared, candidate);
            }
        }
        broadcast.answer_waiters(shared);
        self.process_queue(shared);
    }

    /// A request enters the leader's pipeline; it is held back (boundedly) while the
    /// maximum number of proposals is in flight.
    pub(super) fn submit(&mut self, shared: &mut Shared, submission: Submission) {
        let (origin, session_id, cxid) = (submission.origin, submission.session_id, submission.cxid);
        let Phase::Broadcast(broadcast) = &mut self.phase else {
            // Not serving yet: the client reconnects to a server that can take it.
            refuse_for_connection_loss(shared, origin, &submission);
            return;
        };
        if broadcast.queued.len() >= shared.config.requests_queued_max {
            let refusal = OriginAnswer::Refused { cxid, err: ErrorCode::ThrottledOp };
            broadcast.answer_origin(shared, origin, session_id, refusal);
            return;
        }
        broadcast.queued.push_back(submission);
        self.process_queue(shared);
    }

    fn process_queue(&mut self, shared: &mut Shared) {
        loop {
            // Within one epoch, counters are consecutive: the difference is the count.
            let (last, committed) = (shared.history.last_zxid(), shared.committed_zxid);
            let in_flight = if crate::zab::epoch_of(last) == crate::zab::epoch_of(committed) {
                (last - committed) as usize
            } else {
                shared.history.range(committed, i64::MAX).count()
            };
            if in_flight >= shared.config.proposals_in_flight_max {
                return;
            }
            if shared.leaving() {
                return;
            }
            let Phase::Broadcast(broadcast) = &mut self.phase else { return };
            let Some(submission) = broadcast.queued.pop_front() else { return };
            broadcast.propose(&self.links, shared, submission);
        }
    }

    /// Fires the due timers that wake a leader, in [`Leader::wakers`]' order: pings
    /// (dropping silent learners), session expiry, container clean-up. A leader whose
    /// lease ran out never gets here: [`Node::expire_lease`] runs before every input.
    pub(super) fn timeout(&mut self, shared: &mut Shared) {
        for &timer in self.wakers() {
            let due = self.deadline(timer).is_some_and(|at_ms| shared.now.monotonic_ms >= at_ms);
            if due && self.fire(shared, timer).is_break() {
                return;
            }
        }
    }

    /// Runs `timer`'s action; `Break` when the leader is leaving and must stop there.
    fn fire(&mut self, shared: &mut Shared, timer: Timer) -> ControlFlow<()> {
        let now_ms = shared.now.monotonic_ms;
        match timer {
            Timer::Ping => return self.ping(shared),
            Timer::SessionExpiry => {
                let Phase::Broadcast(broadcast) = &mut self.phase else { return ControlFlow::Continue(()) };
                let expired = broadcast.sessions.expired(now_ms as i64);
                for session_id in expired {
                    let expiry = Submission {
                        origin: shared.config.server_id,
                        session_id,
                        cxid: 0,
                        kind: SubmissionKind::ExpireSession,
                    };
                    self.submit(shared, expiry);
                }
            }
            Timer::ContainerCheck => {
                self.timers.set(Timer::ContainerCheck, now_ms + shared.config.container_check_interval_ms);
                for path in Leader::container_candidates(shared) {
                    let cleanup = Submission {
                        origin: shared.config.server_id,
                        session_id: 0,
                        cxid: 0,
                        kind: SubmissionKind::DeleteContainer { path },
                    };
                    self.submit(shared, cleanup);
                }
            }
            // Read by the lease check, not fired; a learner's timers are not a leader's.
            Timer::InitLimit | Timer::LeaderSilence | Timer::HelloResend => {}
        }
        ControlFlow::Continue(())
    }

    /// A ping to the learners: drops those silent past syncLimit, starts a confirmation
    /// round when none is in flight, and repeats the round to the rest.
    fn ping(&mut self, shared: &mut Shared) -> ControlFlow<()> {
        let now_ms = shared.now.monotonic_ms;
        let tick_ms = shared.config.tick_ms();
        self.timers.set(Timer::Ping, now_ms + (tick_ms / 2).max(1));
        let silence_ms_max = shared.config.sync_limit_ticks * tick_ms;
        // Learners silent for longer than syncLimit are dropped (ZooKeeper's
        // LearnerHandler gives up on them the same way).
        self.links.retain(|_, link| now_ms.saturating_sub(link.last_heard_ms) <= silence_ms_max);
        // Each ping starts a round when none is in flight (what renews the lease); the
        // followers hear of it from there. Otherwise, and for observers, a ping repeats
        // the round in flight, for a learner that joined after it began.
        let round_in_flight = |phase: &Phase| match phase {
            Phase::Broadcast(broadcast) => Some(broadcast.rounds.started),
            _ => None,
        };
        let fresh = match &mut self.phase {
            Phase::Broadcast(broadcast) if broadcast.rounds.started == broadcast.rounds.confirmed => {
                broadcast.rounds.wanted = true;
                true
            }
            _ => false,
        };
        if fresh {
            self.advance_rounds(shared);
            if shared.leaving() {
                return ControlFlow::Break(());
            }
        }
        let targets: Vec<ServerId> = self
            .links
            .iter()
            .filter(|(_, link)| link.receives_broadcast() && !(fresh && link.role == LearnerRole::Follower))
            .map(|(id, _)| *id)
            .collect();
        let (epoch, round) = (self.epoch().unwrap_or(0), round_in_flight(&self.phase).unwrap_or(0));
        for id in targets {
            shared.send(id, PeerMessage::Ping { epoch, round, touched_sessions: Vec::new() });
        }
        ControlFlow::Continue(())
    }

    /// Empty containers that once had children, and TTL nodes without children whose
    /// time since their last change passed their TTL (ZooKeeper's `ContainerManager`).
    fn container_candidates(shared: &Shared) -> Vec<String> {
        let tree = &shared.database.tree;
        let wall_ms = shared.now.wall_ms;
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

    pub(super) fn link_down(&mut self, shared: &mut Shared, peer: ServerId) {
        self.links.remove(&peer);
        if let Phase::Discovery { epochs } = &mut self.phase {
            epochs.remove(&peer);
        }
        // An established leader whose remaining links no longer make a quorum steps down
        // now rather than at the next ping: its clients move sooner to servers that can
        // still commit.
        if self.is_established() {
            let mut connected: Vec<ServerId> =
                self.links.iter().filter(|(_, link)| link.votes()).map(|(id, _)| *id).collect();
            connected.push(shared.config.server_id);
            if !shared.config.is_quorum(&connected) {
                shared.step_down();
            }
        }
    }
}

/// The highest zxid a quorum holds durably, if a quorum of voters is linked.
/// The followers that receive the broadcast (proposals, confirmation rounds), in id order.
fn followers(links: &BTreeMap<ServerId, Link>) -> Vec<ServerId> {
    let receiving = links.iter().filter(|(_, link)| link.receives_broadcast() && link.role == LearnerRole::Follower);
    receiving.map(|(id, _)| *id).collect()
}

fn commit_candidate(links: &BTreeMap<ServerId, Link>, shared: &Shared) -> Option<i64> {
    let durable = shared.persistence.durable.zxid;
    let acked = quorum_value(links, &shared.config, |link| link.acked_zxid, durable)?;
    Some(acked.min(shared.history.last_zxid()))
}

/// What a quorum of voters holds at least: the quorum-th highest of each voting follower's
/// `of_link` and this leader's `own` (when it votes); `None` while fewer than a quorum vote.
fn quorum_value<T: Ord + Copy>(
    links: &BTreeMap<ServerId, Link>,
    config: &super::NodeConfig,
    of_link: impl Fn(&Link) -> T,
    own: T,
) -> Option<T> {
    let mut values: Vec<T> = Vec::with_capacity(links.len() + 1);
    values.extend(
        links.iter().filter(|(id, link)| link.votes() && config.voters.contains(id)).map(|(_, link)| of_link(link)),
    );
    if config.is_voter() {
        values.push(own);
    }
    kth_highest(&mut values, config.quorum_size())
}

/// The `k`-th highest of `values` (`k` from 1), or `None` when there are fewer than `k`;
/// `values` is left reordered.
fn kth_highest<T: Ord + Copy>(values: &mut [T], k: usize) -> Option<T> {
    debug_assert!(k >= 1, "a quorum has a member");
    if values.len() < k {
        return None;
    }
    let (_, kth, _) = values.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
    Some(*kth)
}

/// Answers a request this leader cannot take at all (it is not established, or the
/// learner that forwarded it is not synced with it) with `ConnectionLoss`: the server
/// that holds the client's connection closes it, as a ZooKeeper server closes the socket
/// of a client it cannot serve, and the client reconnects, with its session, elsewhere.
fn refuse_for_connection_loss(shared: &mut Shared, origin: ServerId, submission: &Submission) {
    let (session_id, cxid, err) = (submission.session_id, submission.cxid, ErrorCode::ConnectionLoss);
    if origin == shared.config.server_id {
        shared.refused(session_id, cxid, err);
    } else {
        shared.send(origin, PeerMessage::Refused { session_id, cxid, err });
    }
}
