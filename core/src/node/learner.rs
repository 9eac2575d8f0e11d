//! A learner: a follower (votes) or an observer (does not), through discovery,
//! synchronization and broadcast with its leader.
//!
//! Every acknowledgement it sends is computed from the durable watermark
//! ([`super::Durable`]): ACKEPOCH after the new acceptedEpoch is on disk; the NEWLEADER
//! acknowledgement after everything synced *and then* the new currentEpoch are on disk
//! (ZOOKEEPER-3911, -4643, -4646); ACK after the proposals are on disk.
//!
//! Reference: Zab paper, section III; ZooKeeper's `Learner`, `Follower`, `Observer`.

use super::{Node, Role};
use crate::storage::{self, LogEntry};
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
    /// The leader is given up on if silent until here.
    pub(super) deadline_ms: u64,
    /// During discovery, when to say hello again: the first FOLLOWERINFO may have been lost
    /// (a link that broke and came back, a leader-elect that had to elect again).
    info_resend_ms: u64,
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

    pub(super) fn poll_timeout(&self) -> u64 {
        if self.phase == Phase::Discovery {
            self.deadline_ms.min(self.info_resend_ms)
        } else {
            self.deadline_ms
        }
    }
}

impl Node {
    /// How often a learner in discovery repeats FOLLOWERINFO. A leader-elect still finishing
    /// its election keeps a hello that arrives early, so a repeat is only for one that was
    /// lost; it decides within about one finalize wait of its learners, so waiting a whole
    /// tick would add up to a tick to a failover that needs one.
    fn discovery_resend_ms(&self) -> u64 {
        self.config.tick_ms().min(self.config.election_finalize_wait_ms.max(1))
    }

    pub(super) fn become_learner(&mut self, leader: ServerId, observer: bool) {
        self.early_hellos.clear();
        let role = if observer { LearnerRole::Observer } else { LearnerRole::Follower };
        let deadline_ms = self.now.monotonic_ms + self.config.init_limit_ticks * self.config.tick_ms();
        let info_resend_ms = self.now.monotonic_ms + self.discovery_resend_ms();
        self.role = Role::Learning(Box::new(Learner {
            leader,
            role,
            phase: Phase::Discovery,
            deadline_ms,
            info_resend_ms,
            acked_zxid: 0,
        }));
        self.learner_send_info();
    }

    fn learner(&mut self) -> &mut Learner {
        match &mut self.role {
            Role::Learning(learner) => learner,
            _ => unreachable!("called only while learning"),
        }
    }

    fn learner_ref(&self) -> &Learner {
        match &self.role {
            Role::Learning(learner) => learner,
            _ => unreachable!("called only while learning"),
        }
    }

    fn learner_send_info(&mut self) {
        let learner = self.learner_ref();
        let message = PeerMessage::LearnerInfo {
            role: learner.role,
            accepted_epoch: self.accepted_epoch,
            history: self.history.summary(),
        };
        let leader = learner.leader;
        self.send(leader, message);
    }

    pub(super) fn learner_link_up(&mut self, peer: ServerId) {
        let learner = self.learner_ref();
        // The decision may have come before the link to the leader was up; say hello now.
        if learner.leader == peer && learner.phase == Phase::Discovery {
            self.learner_send_info();
        }
    }

    pub(super) fn learner_timeout(&mut self) {
        let now_ms = self.now.monotonic_ms;
        if now_ms >= self.learner_ref().deadline_ms {
            // The leader went silent for longer than the limit: elect again.
            self.become_looking();
            return;
        }
        if self.learner_ref().phase == Phase::Discovery && now_ms >= self.learner_ref().info_resend_ms {
            self.learner().info_resend_ms = now_ms + self.discovery_resend_ms();
            self.learner_send_info();
        }
    }

    /// A protocol step the learner cannot take (an epoch older than one it accepted, a
    /// sync that does not fit its log): go back to election rather than guess.
    fn learner_give_up(&mut self) {
        self.become_looking();
    }

    pub(super) fn learner_message(&mut self, from: ServerId, message: PeerMessage) {
        if from != self.learner_ref().leader {
            return;
        }
        let limit_ticks = if self.learner_ref().is_up_to_date() {
            self.config.sync_limit_ticks
        } else {
            self.config.init_limit_ticks
        };
        let deadline_ms = self.now.monotonic_ms + limit_ticks * self.config.tick_ms();
        self.learner().deadline_ms = deadline_ms;
        let phase = self.learner_ref().phase;
        match (message, phase) {
            (PeerMessage::LeaderInfo { epoch }, Phase::Discovery) => {
                if epoch < self.accepted_epoch {
                    // ZooKeeper: "Leaders epoch is less than accepted epoch".
                    self.learner_give_up();
                    return;
                }
                if epoch > self.accepted_epoch {
                    self.accepted_epoch = epoch;
                    self.persistence.accepted_epoch(epoch);
                }
                self.learner().phase = Phase::EpochPersisting { epoch };
                self.learner_durable();
            }
            // A second LEADERINFO answers a repeated FOLLOWERINFO: already handled.
            (
                PeerMessage::LeaderInfo { epoch },
                Phase::EpochPersisting { epoch: current } | Phase::AwaitingSync { epoch: current },
            ) if epoch == current => {}
            (PeerMessage::Sync { mode, entries, committed_zxid }, Phase::AwaitingSync { epoch }) => {
                if !self.learner_apply_sync(mode, entries) {
                    self.learner_give_up();
                    return;
                }
                self.learner().phase = Phase::Synchronization { epoch, committed_zxid, new_leader: None };
            }
            (PeerMessage::NewLeader { zxid }, Phase::Synchronization { epoch, committed_zxid, new_leader: None }) => {
                if epoch_of(zxid) != epoch {
                    self.learner_give_up();
                    return;
                }
                let sequence = self.persistence.mark();
                let new_leader = Some(NewLeader::AwaitingSyncDurable { zxid, sequence });
                self.learner().phase = Phase::Synchronization { epoch, committed_zxid, new_leader };
                self.learner_durable();
            }
            (PeerMessage::Proposal(entry), Phase::Synchronization { .. } | Phase::Broadcast { .. }) => {
                if self.learner_ref().is_observer() || !self.learner_append(entry) {
                    self.learner_give_up();
                }
            }
            (PeerMessage::Commit { zxid }, Phase::Synchronization { epoch, committed_zxid, new_leader }) => {
                let committed_zxid = committed_zxid.max(zxid);
                self.learner().phase = Phase::Synchronization { epoch, committed_zxid, new_leader };
            }
            (PeerMessage::Commit { zxid }, Phase::Broadcast { .. }) => self.apply_committed(zxid),
            (PeerMessage::Inform(entry), Phase::Synchronization { epoch, committed_zxid, new_leader }) => {
                let zxid = entry.zxid();
                if !self.learner_ref().is_observer() || !self.learner_append(entry) {
                    self.learner_give_up();
                    return;
                }
                let committed_zxid = committed_zxid.max(zxid);
                self.learner().phase = Phase::Synchronization { epoch, committed_zxid, new_leader };
            }
            (PeerMessage::Inform(entry), Phase::Broadcast { .. }) => {
                let zxid = entry.zxid();
                if !self.learner_ref().is_observer() || !self.learner_append(entry) {
                    self.learner_give_up();
                    return;
                }
                self.apply_committed(zxid);
            }
            (
                PeerMessage::UpToDate,
                Phase::Synchronization { epoch, committed_zxid, new_leader: Some(NewLeader::Acked) },
            ) => {
                self.learner().phase = Phase::Broadcast { epoch };
                self.settle_epoch(epoch);
                self.apply_committed(committed_zxid);
                let deadline_ms = self.now.monotonic_ms + self.config.sync_limit_ticks * self.config.tick_ms();
                self.learner().deadline_ms = deadline_ms;
            }
            (PeerMessage::Ping { .. }, Phase::Synchronization { .. } | Phase::Broadcast { .. }) => {
                let touched_sessions = self.clients.take_touched();
                self.send(from, PeerMessage::Ping { touched_sessions });
            }
            (PeerMessage::SyncDone { session_id, cxid, path }, Phase::Broadcast { .. }) => {
                self.sync_done(session_id, cxid, path);
            }
            (PeerMessage::Refused { session_id, cxid, err }, Phase::Broadcast { .. }) => {
                self.refused(session_id, cxid, err);
            }
            (PeerMessage::Revalidated { session_id, valid }, Phase::Broadcast { .. }) => {
                self.revalidated(session_id, valid);
            }
            // Anything else is out of place; a leader that sends it is confused or stale.
            // Pings during discovery are harmless and ignored.
            (PeerMessage::Ping { .. }, _) => {}
            _ => self.learner_give_up(),
        }
    }

    /// Levels the log as the leader says, then appends the synced txns. Returns false when
    /// the sync does not fit this log.
    fn learner_apply_sync(&mut self, mode: SyncMode, entries: Vec<LogEntry>) -> bool {
        match mode {
            SyncMode::Diff => {}
            SyncMode::Trunc { zxid } => {
                let holds = zxid == self.history.base_zxid() || self.history.get(zxid).is_some();
                // Applied txns are committed and never truncated; a leader asking for that
                // is wrong about this server's log.
                if !holds || zxid < self.database.last_processed_zxid() {
                    return false;
                }
                self.history.truncate_after(zxid);
                self.persistence.truncate(zxid);
            }
            SyncMode::Snap { zxid, snapshot } => {
                let snapshot = snapshot.into_bytes();
                let Ok(decoded) = storage::decode_snapshot(&snapshot) else { return false };
                if decoded.zxid != zxid {
                    return false;
                }
                self.database = decoded.into_database(self.config.watches_max);
                self.history.reset(zxid);
                self.committed_zxid = zxid;
                self.applied_since_snapshot = 0;
                self.persistence.install_snapshot(zxid, snapshot, 0);
            }
        }
        entries.into_iter().all(|entry| self.learner_append(entry))
    }

    /// Appends a txn that must chain from the log's last one.
    fn learner_append(&mut self, entry: impl Into<Arc<LogEntry>>) -> bool {
        let entry = entry.into();
        if entry.prev_zxid != self.history.last_zxid() || entry.zxid() <= self.history.last_zxid() {
            return false;
        }
        let _ = self.log_entry(entry);
        true
    }

    /// Durability moved: send whatever acknowledgement it now allows.
    pub(super) fn learner_durable(&mut self) {
        let durable = self.persistence.durable;
        let leader = self.learner_ref().leader;
        match self.learner_ref().phase {
            Phase::EpochPersisting { epoch } if durable.accepted_epoch >= epoch => {
                self.learner().phase = Phase::AwaitingSync { epoch };
                let message =
                    PeerMessage::AckEpoch { current_epoch: self.current_epoch, history: self.history.summary() };
                self.send(leader, message);
            }
            Phase::Synchronization { epoch, committed_zxid, new_leader: Some(step) } => match step {
                NewLeader::AwaitingSyncDurable { zxid, sequence } if durable.sequence >= sequence => {
                    // Only now, with every synced txn on disk, may the new epoch become
                    // this server's currentEpoch (ZOOKEEPER-4643).
                    self.current_epoch = epoch;
                    self.persistence.current_epoch(epoch);
                    let new_leader = Some(NewLeader::AwaitingEpochDurable { zxid });
                    self.learner().phase = Phase::Synchronization { epoch, committed_zxid, new_leader };
                }
                NewLeader::AwaitingEpochDurable { zxid } if durable.current_epoch == epoch => {
                    let new_leader = Some(NewLeader::Acked);
                    self.learner().phase = Phase::Synchronization { epoch, committed_zxid, new_leader };
                    self.learner().acked_zxid = durable.zxid;
                    self.send(leader, PeerMessage::AckNewLeader { zxid, durable_zxid: durable.zxid });
                }
                NewLeader::Acked => self.learner_ack(),
                _ => {}
            },
            Phase::Broadcast { .. } => self.learner_ack(),
            _ => {}
        }
    }

    /// ACK every proposal that is now durable (one cumulative ACK).
    fn learner_ack(&mut self) {
        let durable_zxid = self.persistence.durable.zxid;
        let learner = self.learner();
        if learner.role == LearnerRole::Follower && durable_zxid > learner.acked_zxid {
            learner.acked_zxid = durable_zxid;
            let leader = learner.leader;
            self.send(leader, PeerMessage::Ack { zxid: durable_zxid });
        }
    }
}
