//! A learner: a follower (votes) or an observer (does not), through discovery,
//! synchronization and broadcast with its leader.
//!
//! Every acknowledgement it sends is computed from the durable watermark
//! ([`super::Durable`]): ACKEPOCH after the new acceptedEpoch is on disk; the NEWLEADER
//! acknowledgement after everything synced *and then* the new currentEpoch are on disk
//! (ZOOKEEPER-3911, -4643, -4646); ACK after the proposals are on disk.
//!
//! Reference: Zab paper, section III; ZooKeeper's `Learner`, `Follower`, `Observer`.

use super::shared::Shared;
use super::timers::{Deadlines, Timer};
use super::NodeConfig;
use crate::ondisk;

use crate::txn::LogEntry;
use crate::zab::message::{LearnerRole, PeerMessage, SyncMode};
use crate::zab::{epoch_of, ServerId};
use std::sync::Arc;

/// Where the NEWLEADER acknowledgement stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NewLeader {
    /// Waiting for everything queued up to `sequence` (the synced log) to be durable.
    AwaitingSyncDurable { zxid: i64, sequence: u64 },
    /// The synced log is durable; the new currentEpoch is being written.
    AwaitingEpochDurable { zxid: i64 },
    /// Acknowledged.
    Acked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// FOLLOWERINFO/OBSERVERINFO sent; waiting for LEADERINFO.
    Discovery,
    /// The leader's epoch is being written as this server's acceptedEpoch.
    EpochPersisting { epoch: u32 },
    /// ACKEPOCH sent; waiting for the sync.
    AwaitingSync { epoch: u32 },
    /// Synced; `committed_zxid` is how far the leader says the synced txns are committed.
    Synchronization { epoch: u32, committed_zxid: i64, new_leader: Option<NewLeader> },
    /// Serving clients.
    Broadcast { epoch: u32 },
}

#[derive(Debug)]
pub(super) struct Learner {
    pub(super) leader: ServerId,
    role: LearnerRole,
    phase: Phase,
    /// [`Timer::LeaderSilence`]: the leader is given up on if silent until here.
    /// [`Timer::HelloResend`], during discovery: when to say hello again, as the first
    /// FOLLOWERINFO may have been lost (a link that broke and came back, a leader-elect
    /// that had to elect again).
    timers: Deadlines,
    /// The last ACK sent.
    acked_zxid: i64,
}

impl Learner {
    pub(super) fn is_observer(&self) -> bool {
        self.role == LearnerRole::Observer
    }

    pub(super) fn is_up_to_date(&self) -> bool {
        matches!(self.phase, Phase::Broadcast { .. })
    }

    /// The learner's invariants, checked after every input in debug builds.
    pub(super) fn check_invariants(&self, shared: &Shared) {
        let config = &shared.config;
        assert_ne!(self.leader, config.server_id, "a learner does not follow itself");
        let observes = config.observers.contains(&config.server_id);
        assert_eq!(self.role == LearnerRole::Observer, observes, "observers observe; voters follow");
        let epoch = match self.phase {
            Phase::Discovery => None,
            Phase::EpochPersisting { epoch }
            | Phase::AwaitingSync { epoch }
            | Phase::Synchronization { epoch, .. }
            | Phase::Broadcast { epoch } => Some(epoch),
        };
        if let Some(epoch) = epoch {
            assert!(epoch <= shared.accepted_epoch, "a learner takes no epoch below its acceptedEpoch");
        }
        if let Phase::Broadcast { epoch } = self.phase {
            assert_eq!(shared.current_epoch, epoch, "a learner in broadcast has adopted its leader's epoch");
        }
    }

    /// The timers that wake a learner, in the order [`Learner::timeout`] fires them.
    fn wakers(&self) -> &'static [Timer] {
        if self.phase == Phase::Discovery {
            &[Timer::LeaderSilence, Timer::HelloResend]
        } else {
            &[Timer::LeaderSilence]
        }
    }

    /// The earliest deadline among the timers that wake this learner.
    pub(super) fn poll_timeout(&self) -> u64 {
        let deadline = super::timers::earliest(self.wakers().iter().map(|timer| self.timers.get(*timer)));
        deadline.expect("a learner always watches its leader's silence")
    }

    /// Whether the leader has been silent past its limit at `now_ms`.
    pub(super) fn leader_silent(&self, now_ms: u64) -> bool {
        self.timers.is_due(Timer::LeaderSilence, now_ms)
    }

    /// Gives the leader `limit_ticks` more ticks to be heard from.
    fn hear_from_leader(&mut self, config: &NodeConfig, now_ms: u64, limit_ticks: u64) {
        self.timers.set(Timer::LeaderSilence, now_ms + limit_ticks * config.tick_ms());
    }
}

/// How often a learner in discovery repeats FOLLOWERINFO. A leader-elect still finishing
/// its election keeps a hello that arrives early, so a repeat is only for one that was
/// lost; it decides within about one finalize wait of its learners, so waiting a whole
/// tick would add up to a tick to a failover that needs one.
fn discovery_resend_ms(config: &NodeConfig) -> u64 {
    config.tick_ms().min(config.election_finalize_wait_ms.max(1))
}

impl Learner {
    /// A learner of `leader` in discovery (Zab, phase 1), saying hello.
    pub(super) fn start(shared: &mut Shared, leader: ServerId, role: LearnerRole) -> Learner {
        shared.early_hellos.clear();
        let now_ms = shared.now.monotonic_ms;
        let mut timers = Deadlines::default();
        timers.set(Timer::HelloResend, now_ms + discovery_resend_ms(&shared.config));
        let mut learner = Learner { leader, role, phase: Phase::Discovery, timers, acked_zxid: 0 };
        learner.hear_from_leader(&shared.config, now_ms, shared.config.init_limit_ticks);
        learner.send_info(shared);
        learner
    }

    fn send_info(&self, shared: &mut Shared) {
        let message = PeerMessage::LearnerInfo {
            role: self.role,
            accepted_epoch: shared.accepted_epoch,
            history: shared.history.summary(),
        };
        let leader = self.leader;
        shared.send(leader, message);
    }

    pub(super) fn link_up(&mut self, shared: &mut Shared, peer: ServerId) {
        // The decision may have come before the link to the leader was up; say hello now.
        if self.leader == peer && self.phase == Phase::Discovery {
            self.send_info(shared);
        }
    }

    /// Fires the due timers that wake a learner: a hello resent during discovery. A
    /// learner whose leader went silent past its limit never gets here:
    /// [`Node::expire_lease`] runs before every input.
    pub(super) fn timeout(&mut self, shared: &mut Shared) {
        let now_ms = shared.now.monotonic_ms;
        for &timer in self.wakers() {
            if !self.timers.is_due(timer, now_ms) {
                continue;
            }
            match timer {
                Timer::HelloResend => {
                    self.timers.set(Timer::HelloResend, now_ms + discovery_resend_ms(&shared.config));
                    self.send_info(shared);
                }
                // Read by the lease check, not fired; a leader's timers are not a learner's.
                Timer::LeaderSilence
                | Timer::Ping
                | Timer::InitLimit
                | Timer::SessionExpiry
                | Timer::ContainerCheck => {}
            }
        }
    }

    /// A protocol step the learner cannot take (an epoch older than one it accepted, a
    /// sync that does not fit its log): go back to election rather than guess.
    fn give_up(&mut self, shared: &mut Shared) {
        shared.step_down();
    }

    pub(super) fn message(&mut self, shared: &mut Shared, from: ServerId, message: PeerMessage) {
        if from != self.leader {
            return;
        }
        let limit_ticks =
            if self.is_up_to_date() { shared.config.sync_limit_ticks } else { shared.config.init_limit_ticks };
        self.hear_from_leader(&shared.config, shared.now.monotonic_ms, limit_ticks);
        let phase = self.phase;
        match (message, phase) {
            (PeerMessage::LeaderInfo { epoch }, Phase::Discovery) => {
                if epoch < shared.accepted_epoch {
                    // ZooKeeper: "Leaders epoch is less than accepted epoch".
                    self.give_up(shared);
                    return;
                }
                if epoch > shared.accepted_epoch {
                    shared.accepted_epoch = epoch;
                    shared.persistence.accepted_epoch(epoch);
                }
                self.phase = Phase::EpochPersisting { epoch };
                self.durable(shared);
            }
            // A second LEADERINFO answers a repeated FOLLOWERINFO: already handled.
            (
                PeerMessage::LeaderInfo { epoch },
                Phase::EpochPersisting { epoch: current } | Phase::AwaitingSync { epoch: current },
            ) if epoch == current => {}
            (PeerMessage::Sync { mode, entries, committed_zxid }, Phase::AwaitingSync { epoch }) => {
                if !self.apply_sync(shared, mode, entries) {
                    self.give_up(shared);
                    return;
                }
                self.phase = Phase::Synchronization { epoch, committed_zxid, new_leader: None };
            }
            (PeerMessage::NewLeader { zxid }, Phase::Synchronization { epoch, committed_zxid, new_leader: None }) => {
                if epoch_of(zxid) != epoch {
                    self.give_up(shared);
                    return;
                }
                let sequence = shared.persistence.mark();
                let new_leader = Some(NewLeader::AwaitingSyncDurable { zxid, sequence });
                self.phase = Phase::Synchronization { epoch, committed_zxid, new_leader };
                self.durable(shared);
            }
            (PeerMessage::Proposal(entry), Phase::Synchronization { .. } | Phase::Broadcast { .. }) => {
                if self.is_observer() || !self.append(shared, entry) {
                    self.give_up(shared);
                }
            }
            (PeerMessage::Commit { zxid }, Phase::Synchronization { .. } | Phase::Broadcast { .. }) => {
                self.commit(shared, zxid);
            }
            (PeerMessage::Inform(entry), Phase::Synchronization { .. } | Phase::Broadcast { .. }) => {
                let zxid = entry.zxid();
                if !self.is_observer() || !self.append(shared, entry) {
                    self.give_up(shared);
                    return;
                }
                self.commit(shared, zxid);
            }
            (
                PeerMessage::UpToDate,
                Phase::Synchronization { epoch, committed_zxid, new_leader: Some(NewLeader::Acked) },
            ) => {
                self.phase = Phase::Broadcast { epoch };
                shared.settle_epoch(epoch);
                shared.apply_committed(committed_zxid, &mut |_| {});
                self.hear_from_leader(&shared.config, shared.now.monotonic_ms, shared.config.sync_limit_ticks);
            }
            (
                PeerMessage::Ping { epoch, round, .. },
                Phase::Synchronization { epoch: mine, .. } | Phase::Broadcast { epoch: mine },
            ) if epoch == mine => {
                // Echoing the round tells the leader this server still follows it in its
                // epoch (what confirms its syncs).
                let touched_sessions = shared.clients.take_touched();
                shared.send(from, PeerMessage::Ping { epoch, round, touched_sessions });
            }
            (PeerMessage::SyncDone { session_id, cxid, path }, Phase::Broadcast { .. }) => {
                shared.sync_done(session_id, cxid, path);
            }
            (PeerMessage::Refused { session_id, cxid, err }, Phase::Broadcast { .. }) => {
                shared.refused(session_id, cxid, err);
            }
            (PeerMessage::Revalidated { session_id, valid }, Phase::Broadcast { .. }) => {
                shared.revalidated(session_id, valid, None);
            }
            // Anything else is out of place; a leader that sends it is confused or stale.
            // Pings during discovery are harmless and ignored.
            (PeerMessage::Ping { .. }, _) => {}
            _ => self.give_up(shared),
        }
    }

    /// The leader committed up to `zxid`: applied at once in broadcast, remembered until
    /// UPTODATE during synchronization (a learner applies nothing before it is up to date).
    fn commit(&mut self, shared: &mut Shared, zxid: i64) {
        match &mut self.phase {
            Phase::Synchronization { committed_zxid, .. } => *committed_zxid = (*committed_zxid).max(zxid),
            Phase::Broadcast { .. } => shared.apply_committed(zxid, &mut |_| {}),
            Phase::Discovery | Phase::EpochPersisting { .. } | Phase::AwaitingSync { .. } => {}
        }
    }

    /// Levels the log as the leader says, then appends the synced txns. Returns false when
    /// the sync does not fit this log.
    fn apply_sync(&mut self, shared: &mut Shared, mode: SyncMode, entries: Vec<LogEntry>) -> bool {
        match mode {
            SyncMode::Diff => {}
            SyncMode::Trunc { zxid } => {
                let holds = zxid == shared.history.base_zxid() || shared.history.get(zxid).is_some();
                // Applied txns are committed and never truncated; a leader asking for that
                // is wrong about this server's log.
                if !holds || zxid < shared.database.last_processed_zxid() {
                    return false;
                }
                shared.history.truncate_after(zxid);
                shared.persistence.truncate(zxid);
            }
            SyncMode::Snap { zxid, snapshot } => {
                let snapshot = snapshot.into_bytes();
                let Ok(decoded) = ondisk::decode_snapshot(&snapshot) else { return false };
                if decoded.zxid != zxid {
                    return false;
                }
                shared.database = decoded.into_database(shared.config.watches_max);
                shared.history.reset(zxid);
                shared.committed_zxid = zxid;
                shared.applied_since_snapshot = 0;
                shared.persistence.install_snapshot(zxid, snapshot, 0);
            }
        }
        entries.into_iter().all(|entry| self.append(shared, entry))
    }

    /// Appends a txn that must chain from the log's last one.
    fn append(&mut self, shared: &mut Shared, entry: impl Into<Arc<LogEntry>>) -> bool {
        let entry = entry.into();
        if entry.prev_zxid != shared.history.last_zxid() || entry.zxid() <= shared.history.last_zxid() {
            return false;
        }
        let _ = shared.log_entry(entry);
        true
    }

    /// Durability moved: send whatever acknowledgement it now allows.
    pub(super) fn durable(&mut self, shared: &mut Shared) {
        let durable = shared.persistence.durable;
        let leader = self.leader;
        match self.phase {
            Phase::EpochPersisting { epoch } if durable.accepted_epoch >= epoch => {
                self.phase = Phase::AwaitingSync { epoch };
                let message =
                    PeerMessage::AckEpoch { current_epoch: shared.current_epoch, history: shared.history.summary() };
                shared.send(leader, message);
            }
            Phase::Synchronization { epoch, committed_zxid, new_leader: Some(step) } => match step {
                NewLeader::AwaitingSyncDurable { zxid, sequence } if durable.sequence >= sequence => {
                    // Only now, with every synced txn on disk, may the new epoch become
                    // this server's currentEpoch (ZOOKEEPER-4643).
                    shared.current_epoch = epoch;
                    shared.persistence.current_epoch(epoch);
                    let new_leader = Some(NewLeader::AwaitingEpochDurable { zxid });
                    self.phase = Phase::Synchronization { epoch, committed_zxid, new_leader };
                }
                NewLeader::AwaitingEpochDurable { zxid } if durable.current_epoch == epoch => {
                    let new_leader = Some(NewLeader::Acked);
                    self.phase = Phase::Synchronization { epoch, committed_zxid, new_leader };
                    self.acked_zxid = durable.zxid;
                    shared.send(leader, PeerMessage::AckNewLeader { zxid, durable_zxid: durable.zxid });
                }
                NewLeader::Acked => self.ack(shared),
                _ => {}
            },
            Phase::Broadcast { .. } => self.ack(shared),
            _ => {}
        }
    }

    /// ACK every proposal that is now durable (one cumulative ACK).
    fn ack(&mut self, shared: &mut Shared) {
        let durable_zxid = shared.persistence.durable.zxid;
        if self.role == LearnerRole::Follower && durable_zxid > self.acked_zxid {
            self.acked_zxid = durable_zxid;
            let leader = self.leader;
            shared.send(leader, PeerMessage::Ack { zxid: durable_zxid });
        }
    }
}

#[cfg(test)]
mod tests {
    //! The learner's steps, one input at a time, with the exact messages and storage
    //! requests they produce. Reference: Zab paper, section III; ZOOKEEPER-3911, -4643.

    use std::collections::BTreeSet;

    use super::Learner;
    use crate::node::shared::Shared;
    use crate::node::{NodeConfig, Now, PeerTransmit, StorageOp};
    use crate::txn::LogEntry;
    use crate::txn::{Txn, TxnHeader};
    use crate::zab::make_zxid;
    use crate::zab::message::{HistorySummary, LearnerRole, PeerMessage, SyncMode};

    const NOW: Now = Now { monotonic_ms: 1_000, wall_ms: 1_700_000_000_000 };

    /// Server 2 of three voters, fresh from an empty data directory.
    fn shared() -> Shared {
        let voters: BTreeSet<u64> = [1, 2, 3].into_iter().collect();
        Shared::new(
            NodeConfig::ensemble(2, voters, BTreeSet::new()),
            crate::ondisk::recover(&crate::ondisk::RecoveryInput::default()).expect("an empty directory"),
            NOW,
        )
    }

    fn sent(shared: &mut Shared) -> Vec<PeerTransmit> {
        shared.peer_out.drain(..).collect()
    }

    fn to_leader(message: PeerMessage) -> PeerTransmit {
        PeerTransmit { to: 1, message }
    }

    /// Seals what the step asked storage for, reports it durable, and returns its
    /// operations.
    fn persist(shared: &mut Shared) -> Vec<StorageOp> {
        let request = shared.persistence.seal(shared.history.last_zxid()).expect("a storage request");
        assert!(shared.persistence.persisted(request.token), "the request moves the durable watermark");
        request.ops
    }

    /// A follower of server 1 that has acknowledged epoch 1.
    fn follower_in_epoch_1(shared: &mut Shared) -> Learner {
        let mut learner = Learner::start(shared, 1, LearnerRole::Follower);
        learner.message(shared, 1, PeerMessage::LeaderInfo { epoch: 1 });
        let _ = persist(shared);
        learner.durable(shared);
        let _ = sent(shared);
        learner
    }

    #[test]
    fn a_follower_says_hello_and_acks_the_new_epoch_only_once_it_is_durable() {
        let mut shared = shared();
        let mut learner = Learner::start(&mut shared, 1, LearnerRole::Follower);
        let empty = HistorySummary { base_zxid: 0, epoch_ends: Vec::new() };
        let hello = PeerMessage::LearnerInfo { role: LearnerRole::Follower, accepted_epoch: 0, history: empty.clone() };
        assert_eq!(sent(&mut shared), vec![to_leader(hello)]);
        learner.message(&mut shared, 1, PeerMessage::LeaderInfo { epoch: 1 });
        assert_eq!(sent(&mut shared), Vec::new(), "ACKEPOCH waits for acceptedEpoch to be durable");
        assert_eq!(persist(&mut shared), vec![StorageOp::AcceptedEpoch(1)]);
        learner.durable(&mut shared);
        let ack = PeerMessage::AckEpoch { current_epoch: 0, history: empty };
        assert_eq!(sent(&mut shared), vec![to_leader(ack)]);
        assert_eq!(shared.transition, None);
        learner.check_invariants(&shared);
    }

    #[test]
    fn newleader_is_acked_only_after_the_synced_log_and_then_the_new_epoch_are_durable() {
        let mut shared = shared();
        let mut learner = follower_in_epoch_1(&mut shared);
        let zxid = make_zxid(0, 1);
        let header = TxnHeader { session_id: 5, cxid: 0, zxid, time_ms: NOW.wall_ms };
        let entry = LogEntry { prev_zxid: 0, header, txn: Txn::CreateSession { timeout_ms: 30_000 } };
        let sync = PeerMessage::Sync { mode: SyncMode::Diff, entries: vec![entry], committed_zxid: zxid };
        learner.message(&mut shared, 1, sync);
        learner.message(&mut shared, 1, PeerMessage::NewLeader { zxid: make_zxid(1, 0) });
        assert_eq!(sent(&mut shared), Vec::new());
        // ZOOKEEPER-4643: the synced txns are durable before currentEpoch is written...
        let ops = persist(&mut shared);
        assert!(
            matches!(ops.as_slice(), [StorageOp::AppendLog { first_zxid, last_zxid, .. }] if *first_zxid == zxid && *last_zxid == zxid),
            "{ops:?}"
        );
        learner.durable(&mut shared);
        assert_eq!(sent(&mut shared), Vec::new(), "NEWLEADER is not acked before currentEpoch is durable");
        assert_eq!(shared.current_epoch, 1);
        // ... and NEWLEADER is acked only once both are (ZOOKEEPER-3911).
        assert_eq!(persist(&mut shared), vec![StorageOp::CurrentEpoch(1)]);
        learner.durable(&mut shared);
        let ack = PeerMessage::AckNewLeader { zxid: make_zxid(1, 0), durable_zxid: zxid };
        assert_eq!(sent(&mut shared), vec![to_leader(ack)]);
        learner.check_invariants(&shared);
    }

    #[test]
    fn a_leaderinfo_below_the_accepted_epoch_makes_the_learner_give_up() {
        let mut shared = shared();
        shared.accepted_epoch = 3;
        let mut learner = Learner::start(&mut shared, 1, LearnerRole::Follower);
        let _ = sent(&mut shared);
        learner.message(&mut shared, 1, PeerMessage::LeaderInfo { epoch: 2 });
        assert_eq!(shared.transition, Some(crate::node::shared::Transition::Looking));
        assert_eq!(sent(&mut shared), Vec::new());
    }
}
