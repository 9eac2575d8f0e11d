//! The state every role of a server uses — its configuration, database, history,
//! persistence, epochs, client connections, outboxes and clock — and the machinery they
//! share: sending to peers, logging and applying txns, closing clients. A role's handlers
//! take it as an argument; a role asks the [`super::Node`] for a transition (step down,
//! stop) through it, and the node swaps the role once the handler returns.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::client::Clients;
use super::history::History;
use super::persist::{Durable, PersistToken, Persistence};
use super::{ClientOutput, NodeConfig, Now, PeerTransmit, ProposalSizes};
use crate::database::Database;
use crate::ondisk::Recovered;
use crate::proto::Acl;

use crate::txn::LogEntry;
use crate::zab::election::Vote;
use crate::zab::message::PeerMessage;
use crate::zab::ServerId;

/// A role change a handler asks for; the node makes it once the handler returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Transition {
    /// Back to leader election (a leader that lost its quorum, a learner that gave up).
    Looking,
    /// Stop for good; the driver restarts the server from disk.
    Stopped { reason: String },
}

/// What every role of one server shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: NodeConfig,
    pub(super) database: Database,
    pub(super) history: History,
    /// Everything up to here is known committed (applied when the role allows).
    pub(super) committed_zxid: i64,
    /// The epochs as last written (or being written).
    pub(super) accepted_epoch: u32,
    pub(super) current_epoch: u32,
    pub(super) persistence: Persistence,
    /// The last election's logical clock (ZooKeeper's `logicalclock`).
    pub(super) logical_clock: u64,
    /// The highest acceptedEpoch a learner has reported to this node as leader. A leader
    /// picks its next epoch above it, so a learner that promised a higher epoch to a
    /// leader-elect that never established can join again.
    pub(super) accepted_epoch_seen_max: u32,
    /// The vote the node settled on, and the election epoch, for answering lookers. Once
    /// the node is in broadcast its peer epoch is the established epoch, so every member of
    /// an epoch advertises the same (leader, epoch), however it joined.
    pub(super) settled: Option<(Vote, u64)>,
    /// FOLLOWERINFO and OBSERVERINFO that came while this node was still looking: a learner
    /// may decide a moment before its leader-elect does. Replayed if this node becomes the
    /// leader (ZooKeeper's learners wait in the leader's accept queue meanwhile), dropped
    /// once the sender is seen looking again or its link breaks, and with every new
    /// election. Without it the learner's next hello, a finalize wait later, was what
    /// started the epoch: +50 ms on one failover in two.
    pub(super) early_hellos: BTreeMap<ServerId, PeerMessage>,
    pub(super) clients: Clients,
    pub(super) peer_out: VecDeque<PeerTransmit>,
    pub(super) client_out: VecDeque<ClientOutput>,
    pub(super) now: Now,
    pub(super) applied_since_snapshot: u64,
    pub(super) proposal_sizes: ProposalSizes,
    /// The role change the current handler asked for, if any.
    pub(super) transition: Option<Transition>,
}

impl Shared {
    /// The state of a server starting from what recovery found on disk.
    pub(super) fn new(config: NodeConfig, recovered: Recovered, now: Now) -> Shared {
        let Recovered { database, history, accepted_epoch, current_epoch, .. } = recovered;
        let applied = database.last_processed_zxid();
        let history = History::new(applied, history);
        let durable =
            Durable { zxid: history.last_zxid(), accepted_epoch, current_epoch, token: PersistToken(0), sequence: 0 };
        let clients = Clients::new(&config, now);
        Shared {
            database,
            history,
            committed_zxid: applied,
            accepted_epoch,
            current_epoch,
            persistence: Persistence::new(durable),
            logical_clock: 0,
            accepted_epoch_seen_max: 0,
            settled: None,
            early_hellos: BTreeMap::new(),
            clients,
            peer_out: VecDeque::new(),
            client_out: VecDeque::new(),
            now,
            applied_since_snapshot: 0,
            proposal_sizes: ProposalSizes::default(),
            transition: None,
            config,
        }
    }

    pub(super) fn advance(&mut self, now: Now) {
        // Monotonic time never goes back; a driver bug here would break every timer.
        debug_assert!(now.monotonic_ms >= self.now.monotonic_ms, "monotonic time went back");
        self.now = Now { monotonic_ms: now.monotonic_ms.max(self.now.monotonic_ms), wall_ms: now.wall_ms };
    }

    pub(super) fn send(&mut self, to: ServerId, message: PeerMessage) {
        debug_assert_ne!(to, self.config.server_id);
        self.peer_out.push_back(PeerTransmit { to, message });
    }

    /// Asks the node to go back to election once the current handler returns. The
    /// handler returns at once: nothing a role does after stepping down may reach a peer
    /// or a client.
    pub(super) fn step_down(&mut self) {
        if self.transition.is_none() {
            self.transition = Some(Transition::Looking);
        }
    }

    /// Asks the node to stop once the current handler returns.
    pub(super) fn stop(&mut self, reason: &str) {
        self.transition = Some(Transition::Stopped { reason: reason.to_owned() });
    }

    /// Whether the current role is on its way out (a handler asked for a transition).
    pub(super) fn leaving(&self) -> bool {
        self.transition.is_some()
    }

    /// The node reached broadcast in `epoch`: advertise the epoch in its settled vote.
    pub(super) fn settle_epoch(&mut self, epoch: u32) {
        if let Some((vote, election_epoch)) = self.settled {
            self.settled = Some((Vote { peer_epoch: epoch, ..vote }, election_epoch));
        }
    }

    pub(super) fn close_all_clients(&mut self) {
        for connection in self.clients.close_all(&mut self.database) {
            self.client_out.push_back(ClientOutput::Close { connection });
        }
    }

    /// Appends a txn to the history and queues it for the log; returns the size of its log
    /// record.
    pub(super) fn log_entry(&mut self, entry: impl Into<Arc<LogEntry>>) -> usize {
        let entry = entry.into();
        let size = self.persistence.append(&entry);
        self.history.append(entry);
        size
    }

    /// Applies committed txns up to `zxid` (never past the history), replying to local
    /// clients and firing watches. `applied` sees each txn first (the leader forgets its
    /// outstanding changes and closed sessions there).
    pub(super) fn apply_committed(&mut self, zxid: i64, applied: &mut dyn FnMut(&LogEntry)) {
        let zxid = zxid.min(self.history.last_zxid());
        self.committed_zxid = self.committed_zxid.max(zxid);
        let applied_zxid = self.database.last_processed_zxid();
        if zxid <= applied_zxid {
            return;
        }
        for entry in self.history.shared_range(applied_zxid, zxid) {
            self.apply_entry(&entry, applied);
        }
        // Only `history_entries_max` txns stay in memory for DIFF syncs (learners further
        // behind get a SNAP), whatever the snapshot interval.
        let (entries_max, bytes_max) = (self.config.history_entries_max, self.config.history_bytes_max);
        self.history.trim(self.database.last_processed_zxid(), entries_max, bytes_max);
        self.maybe_snapshot();
    }

    fn apply_entry(&mut self, entry: &LogEntry, applied: &mut dyn FnMut(&LogEntry)) {
        let clients = &self.clients;
        let can_read = |watcher: u64, acl: &[Acl]| clients.can_read(watcher, acl);
        let outcome = self.database.apply(&entry.header, &entry.txn, &can_read);
        self.applied_since_snapshot += 1;
        applied(entry);
        self.client_applied(entry, outcome);
    }

    fn maybe_snapshot(&mut self) {
        if self.applied_since_snapshot < self.config.snapshot_txn_count {
            return;
        }
        self.applied_since_snapshot = 0;
        self.persistence.write_snapshot(crate::ondisk::SnapshotImage::of(&self.database));
    }

    /// The invariants of the state every role shares (see [`super::Node`]'s
    /// `check_invariants`): the history chains, nothing is applied that is not committed
    /// and logged, durability never runs ahead of the log, the database is consistent.
    pub(super) fn check_invariants(&self) {
        let applied = self.database.last_processed_zxid();
        assert!(applied <= self.committed_zxid, "applied {applied:#x} beyond committed {:#x}", self.committed_zxid);
        assert!(applied >= self.history.base_zxid(), "the history starts at or before what is applied");
        assert!(
            self.persistence.durable.zxid <= self.history.last_zxid(),
            "durable {:#x} beyond the log {:#x}",
            self.persistence.durable.zxid,
            self.history.last_zxid()
        );
        assert!(
            self.persistence.durable.current_epoch <= self.persistence.durable.accepted_epoch.max(self.current_epoch)
        );
        assert!(self.current_epoch <= self.accepted_epoch, "currentEpoch never passes acceptedEpoch");
        assert!(self.transition.is_none(), "every transition a handler asked for is made");
        self.clients.check_invariants();
        self.database.check_invariants();
    }
}
