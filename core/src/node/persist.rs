//! Persistence as data: the storage operations a node asks its driver to make durable, and
//! the durable watermark that everything acknowledged is computed from.
//!
//! Outputs that may leave only after an fsync never exist before it: ACK, ACKEPOCH, the
//! NEWLEADER acknowledgement and the leader's own vote are built from [`Durable`], which
//! only [`Persistence::persisted`] moves forward (raft-rs's `persisted_messages`, made
//! structural). Messages that may leave at once (PROPOSAL, COMMIT, pings, election
//! notifications) go straight to the outbox.

use std::collections::VecDeque;

use crate::ondisk;

use crate::txn::LogEntry;
/// Identifies one persist request; tokens increase, and completing one completes every
/// earlier one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersistToken(pub u64);

/// One storage operation. The driver carries out the operations of a request in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageOp {
    /// Appends encoded log records (see [`crate::ondisk::encode_log_records`]) holding the
    /// txns `first_zxid..=last_zxid`.
    AppendLog { bytes: Vec<u8>, first_zxid: i64, last_zxid: i64 },
    /// Drops every log record with a zxid above `after_zxid`.
    TruncateLog { after_zxid: i64 },
    /// Makes this snapshot the node's whole state (a SNAP sync): write it durably, then
    /// delete every log record, before carrying out the next operation. The node's history
    /// starts again after the snapshot; a record of the old log left behind by a crash in
    /// between is an unacknowledged tail that the next sync resolves.
    InstallSnapshot { zxid: i64, bytes: Vec<u8> },
    /// A periodic snapshot of applied state (every `snapshot_txn_count` txns), as an image
    /// the driver encodes ([`ondisk::SnapshotImage::encode`]) and writes in the background:
    /// the log still holds every txn the snapshot covers, so the request may complete before
    /// the snapshot file is durable.
    WriteSnapshot(ondisk::SnapshotImage),
    /// The new `acceptedEpoch` file.
    AcceptedEpoch(u32),
    /// The new `currentEpoch` file.
    CurrentEpoch(u32),
}

/// Storage operations to make durable, then report with `Node::handle_persisted(token)`.
/// Requests must complete in order; a driver may make several durable with one fsync
/// (group commit) and report the last token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistRequest {
    pub token: PersistToken,
    pub ops: Vec<StorageOp>,
}

/// What is known to be on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Durable {
    /// The history is durable up to and including this zxid.
    pub zxid: i64,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// The last request completed.
    pub token: PersistToken,
    /// How many storage operations (appends counted one per txn) are durable, to wait for
    /// "everything queued so far" exactly.
    pub sequence: u64,
}

/// A request handed to the driver and not yet reported durable, with what it will make
/// durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFlight {
    token: PersistToken,
    /// The history tip once this request is durable.
    tip_zxid: i64,
    accepted_epoch: Option<u32>,
    current_epoch: Option<u32>,
    sequence: u64,
}

/// The open batch, the requests in flight and the durable watermark.
#[derive(Clone, Debug, Default)]
pub(crate) struct Persistence {
    open: Vec<StorageOp>,
    open_accepted_epoch: Option<u32>,
    open_current_epoch: Option<u32>,
    /// Encoded log records appended since the open batch began, and their zxid range.
    open_log: Vec<u8>,
    open_log_range: Option<(i64, i64)>,
    next_token: u64,
    /// Storage operations queued so far.
    queued: u64,
    in_flight: VecDeque<InFlight>,
    pub(crate) durable: Durable,
}

impl Persistence {
    pub(crate) fn new(durable: Durable) -> Persistence {
        Persistence { durable, next_token: durable.token.0 + 1, queued: durable.sequence, ..Default::default() }
    }

    fn flush_log(&mut self) {
        if let Some((first_zxid, last_zxid)) = self.open_log_range.take() {
            // The next batch likely needs about as much room.
            let room = self.open_log.len();
            let bytes = std::mem::replace(&mut self.open_log, Vec::with_capacity(room));
            self.open.push(StorageOp::AppendLog { bytes, first_zxid, last_zxid });
        }
    }

    /// Queues a log append; consecutive appends share one `AppendLog`. Returns the size of
    /// the record in bytes.
    pub(crate) fn append(&mut self, entry: &LogEntry) -> usize {
        let size = ondisk::append_log_record(entry, &mut self.open_log);
        let zxid = entry.zxid();
        self.queued += 1;
        self.open_log_range = Some(match self.open_log_range {
            Some((first, _)) => (first, zxid),
            None => (zxid, zxid),
        });
        size
    }

    /// Queues a truncation; nothing above `zxid` counts as durable any more.
    pub(crate) fn truncate(&mut self, zxid: i64) {
        self.flush_log();
        self.queued += 1;
        self.open.push(StorageOp::TruncateLog { after_zxid: zxid });
        self.clamp(zxid);
    }

    /// Queues a snapshot that replaces the node's state (a SNAP sync).
    pub(crate) fn install_snapshot(&mut self, zxid: i64, bytes: Vec<u8>, keep_durable_zxid: i64) {
        self.flush_log();
        self.queued += 1;
        self.open.push(StorageOp::InstallSnapshot { zxid, bytes });
        self.clamp(keep_durable_zxid);
    }

    pub(crate) fn write_snapshot(&mut self, image: ondisk::SnapshotImage) {
        self.flush_log();
        self.queued += 1;
        self.open.push(StorageOp::WriteSnapshot(image));
    }

    pub(crate) fn accepted_epoch(&mut self, epoch: u32) {
        self.flush_log();
        self.queued += 1;
        self.open.push(StorageOp::AcceptedEpoch(epoch));
        self.open_accepted_epoch = Some(epoch);
    }

    pub(crate) fn current_epoch(&mut self, epoch: u32) {
        self.flush_log();
        self.queued += 1;
        self.open.push(StorageOp::CurrentEpoch(epoch));
        self.open_current_epoch = Some(epoch);
    }

    fn clamp(&mut self, zxid: i64) {
        self.durable.zxid = self.durable.zxid.min(zxid);
        for in_flight in &mut self.in_flight {
            in_flight.tip_zxid = in_flight.tip_zxid.min(zxid);
        }
    }

    /// Seals the open batch into a request; `tip_zxid` is the history's last zxid now.
    pub(crate) fn seal(&mut self, tip_zxid: i64) -> Option<PersistRequest> {
        self.flush_log();
        if self.open.is_empty() {
            return None;
        }
        let token = PersistToken(self.next_token);
        self.next_token += 1;
        self.in_flight.push_back(InFlight {
            token,
            tip_zxid,
            accepted_epoch: self.open_accepted_epoch.take(),
            current_epoch: self.open_current_epoch.take(),
            sequence: self.queued,
        });
        Some(PersistRequest { token, ops: std::mem::take(&mut self.open) })
    }

    /// Every request up to `token` is durable. Returns whether the watermark moved.
    pub(crate) fn persisted(&mut self, token: PersistToken) -> bool {
        let before = self.durable;
        while self.in_flight.front().is_some_and(|in_flight| in_flight.token <= token) {
            let done = self.in_flight.pop_front().expect("checked non-empty");
            self.durable.zxid = done.tip_zxid;
            if let Some(epoch) = done.accepted_epoch {
                self.durable.accepted_epoch = epoch;
            }
            if let Some(epoch) = done.current_epoch {
                self.durable.current_epoch = epoch;
            }
            self.durable.token = done.token;
            self.durable.sequence = done.sequence;
        }
        self.durable != before
    }

    /// The sequence number that, once durable, covers everything queued so far.
    pub(crate) fn mark(&self) -> u64 {
        self.queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Txn, TxnHeader};

    fn entry(prev_zxid: i64, zxid: i64) -> LogEntry {
        LogEntry {
            prev_zxid,
            header: TxnHeader { zxid, ..Default::default() },
            txn: Txn::Check { path: "/".into(), version: 0 },
        }
    }

    #[test]
    fn appends_coalesce_and_durability_follows_tokens_in_order() {
        let mut persistence = Persistence::new(Durable::default());
        persistence.append(&entry(0, 1));
        persistence.append(&entry(1, 2));
        persistence.accepted_epoch(3);
        let first = persistence.seal(2).unwrap();
        assert_eq!(first.token, PersistToken(1));
        assert!(matches!(first.ops[0], StorageOp::AppendLog { first_zxid: 1, last_zxid: 2, .. }));
        assert_eq!(first.ops[1], StorageOp::AcceptedEpoch(3));
        assert!(persistence.seal(2).is_none(), "nothing open, nothing to persist");
        persistence.current_epoch(3);
        let second = persistence.seal(2).unwrap();
        assert_eq!(persistence.durable, Durable::default(), "nothing is durable before it is reported");
        assert!(persistence.persisted(second.token));
        assert_eq!(
            persistence.durable,
            Durable { zxid: 2, accepted_epoch: 3, current_epoch: 3, token: PersistToken(2), sequence: 4 }
        );
        assert_eq!(persistence.mark(), 4);
    }

    #[test]
    fn truncation_lowers_the_watermark_of_requests_in_flight() {
        let mut persistence = Persistence::new(Durable::default());
        persistence.append(&entry(0, 5));
        let request = persistence.seal(5).unwrap();
        persistence.truncate(3);
        assert!(persistence.persisted(request.token));
        assert_eq!(persistence.durable.zxid, 3);
    }
}
