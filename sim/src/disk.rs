//! A server's simulated disk: the files that survive a crash (log, snapshot, epoch files)
//! and the writes handed to it that are not durable yet.
//!
//! A persist request stays pending until its fsync completes; completions happen in
//! order. A crash loses what is pending, except that the operating system may already
//! have written a prefix of it, possibly ending in a torn part of a log append: recovery
//! must cope with both (it cuts a torn tail by CRC).

use std::collections::VecDeque;

use zk_core::node::{PersistRequest, PersistToken, StorageOp};
use zk_core::storage::{self, LogSegment, Recovered, RecoveryInput, StorageError};

use crate::rng::SimRng;

/// What survives a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Files {
    pub log: Vec<u8>,
    pub snapshot: Option<Vec<u8>>,
    pub accepted_epoch: Option<Vec<u8>>,
    pub current_epoch: Option<Vec<u8>>,
}

impl Files {
    /// Carries out one storage operation, as a durable write.
    pub fn apply(&mut self, op: &StorageOp) -> Result<(), StorageError> {
        match op {
            StorageOp::AppendLog { bytes, .. } => self.log.extend_from_slice(bytes),
            StorageOp::TruncateLog { after_zxid } => {
                let offset = storage::log_truncation_offset(&self.log, *after_zxid)?;
                self.log.truncate(offset);
            }
            StorageOp::InstallSnapshot { bytes, .. } => {
                self.snapshot = Some(bytes.clone());
                self.log.clear();
            }
            StorageOp::WriteSnapshot(image) => self.snapshot = Some(image.encode()),
            StorageOp::AcceptedEpoch(epoch) => self.accepted_epoch = Some(storage::encode_epoch(*epoch)),
            StorageOp::CurrentEpoch(epoch) => self.current_epoch = Some(storage::encode_epoch(*epoch)),
        }
        Ok(())
    }

    /// Reads the files back as a restarting server does, and cuts the log where recovery
    /// says its valid part ends.
    pub fn recover(&mut self) -> Result<Recovered, StorageError> {
        let recovered = {
            let segments = [LogSegment { name: "log", bytes: &self.log }];
            let input = RecoveryInput {
                snapshot: self.snapshot.as_deref(),
                log: &segments,
                accepted_epoch: self.accepted_epoch.as_deref(),
                current_epoch: self.current_epoch.as_deref(),
            };
            storage::recover(&input)?
        };
        if let Some((segment, offset)) = recovered.truncate {
            assert_eq!(segment, 0, "the simulated disk has one log segment");
            assert!(offset <= self.log.len(), "recovery cuts inside the log");
            self.log.truncate(offset);
        }
        Ok(recovered)
    }
}

/// What a crash did to the pending writes, for the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashLoss {
    pub requests_pending: usize,
    /// Operations of the pending requests that reached the disk anyway.
    pub ops_kept: usize,
    /// Bytes of a log append that reached the disk although the append was cut short.
    pub torn_bytes: Option<usize>,
}

/// One server's disk.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub files: Files,
    /// Requests handed over and not yet durable, oldest first.
    pending: VecDeque<PersistRequest>,
    /// When the last fsync handed over completes; fsyncs complete in order.
    last_completion_ms: u64,
    /// The planted bug `TruncateIgnored`: TRUNC operations are skipped.
    pub truncate_ignored: bool,
    /// The next restart reads one flipped bit (the corrupt-read fault); the bytes on the
    /// disk stay clean.
    pub corrupt_next_read: bool,
}

/// A copy of `files` as a read with one flipped bit returns it, and which file it hit:
/// the snapshot, an epoch file, or the log before its last record (a damaged last record
/// is indistinguishable from a torn append, which recovery cuts by design). `None` when no
/// file has such bytes.
pub fn flip_a_bit(files: &Files, rng: &mut SimRng) -> Option<(Files, String)> {
    let log_limit = match storage::scan_log(&files.log) {
        Ok(scan) if scan.entries.len() >= 2 => {
            let second_last = scan.entries[scan.entries.len() - 2].zxid();
            storage::log_truncation_offset(&files.log, second_last).unwrap_or(0)
        }
        _ => 0,
    };
    let mut candidates: Vec<(&str, usize)> = Vec::new();
    if log_limit > 0 {
        candidates.push(("the log", log_limit));
    }
    for (name, file) in [
        ("the snapshot", &files.snapshot),
        ("acceptedEpoch", &files.accepted_epoch),
        ("currentEpoch", &files.current_epoch),
    ] {
        if let Some(bytes) = file.as_ref().filter(|bytes| !bytes.is_empty()) {
            candidates.push((name, bytes.len()));
        }
    }
    if candidates.is_empty() {
        return None;
    }
    let (name, limit) = *rng.pick(&candidates);
    let offset = rng.index(limit);
    let bit = 1u8 << rng.below(8);
    let mut corrupt = files.clone();
    let bytes = match name {
        "the log" => &mut corrupt.log,
        "the snapshot" => corrupt.snapshot.as_mut().expect("a candidate"),
        "acceptedEpoch" => corrupt.accepted_epoch.as_mut().expect("a candidate"),
        _ => corrupt.current_epoch.as_mut().expect("a candidate"),
    };
    bytes[offset] ^= bit;
    Some((corrupt, format!("{name} at byte {offset}")))
}

/// Whether two recoveries found the same durable state.
pub fn same_recovery(a: &Recovered, b: &Recovered) -> bool {
    a.history == b.history
        && a.accepted_epoch == b.accepted_epoch
        && a.current_epoch == b.current_epoch
        && a.database.last_processed_zxid() == b.database.last_processed_zxid()
        && a.database.sessions() == b.database.sessions()
        && a.database.tree == b.database.tree
}

impl Disk {
    /// An empty disk; `truncate_ignored` plants the bug of that name.
    pub fn new(truncate_ignored: bool) -> Disk {
        Disk { truncate_ignored, ..Disk::default() }
    }

    /// Takes a request; returns when its fsync will complete.
    pub fn submit(&mut self, request: PersistRequest, now_ms: u64, latency_ms: u64) -> u64 {
        debug_assert!(self.pending.back().is_none_or(|last| last.token < request.token), "tokens increase");
        self.pending.push_back(request);
        self.last_completion_ms = self.last_completion_ms.max(now_ms + latency_ms);
        self.last_completion_ms
    }

    /// The fsync of every request up to `token` completed: their writes are durable.
    pub fn complete(&mut self, token: PersistToken) -> Result<(), StorageError> {
        while self.pending.front().is_some_and(|request| request.token <= token) {
            let request = self.pending.pop_front().expect("checked non-empty");
            for op in &request.ops {
                self.apply(op)?;
            }
        }
        Ok(())
    }

    fn apply(&mut self, op: &StorageOp) -> Result<(), StorageError> {
        if self.truncate_ignored && matches!(op, StorageOp::TruncateLog { .. }) {
            return Ok(());
        }
        self.files.apply(op)
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The process died: pending writes are lost, except a prefix the operating system
    /// had already written, which may end in a torn log append when `tear` allows.
    pub fn crash(&mut self, rng: &mut SimRng, tear: bool) -> Result<CrashLoss, StorageError> {
        let ops: Vec<StorageOp> = self.pending.drain(..).flat_map(|request| request.ops).collect();
        let requests_pending = ops.len();
        let mut loss = CrashLoss { requests_pending, ops_kept: 0, torn_bytes: None };
        if !tear || ops.is_empty() {
            return Ok(loss);
        }
        let kept = rng.index(ops.len() + 1);
        for op in &ops[..kept] {
            self.apply(op)?;
        }
        loss.ops_kept = kept;
        if let Some(StorageOp::AppendLog { bytes, .. }) = ops.get(kept) {
            if bytes.len() > 1 {
                let torn = rng.range(1, bytes.len() as u64 - 1) as usize;
                self.files.log.extend_from_slice(&bytes[..torn]);
                loss.torn_bytes = Some(torn);
            }
        }
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_core::storage::LogEntry;
    use zk_core::txn::{Txn, TxnHeader};

    fn append(token: u64, prev_zxid: i64, zxid: i64) -> PersistRequest {
        let entry = LogEntry {
            prev_zxid,
            header: TxnHeader { session_id: 1, cxid: 1, zxid, time_ms: 0 },
            txn: Txn::SetData { path: "/a".into(), data: Some(vec![7; 40]), version: 1 },
        };
        PersistRequest {
            token: PersistToken(token),
            ops: vec![StorageOp::AppendLog {
                bytes: storage::encode_log_record(&entry),
                first_zxid: zxid,
                last_zxid: zxid,
            }],
        }
    }

    #[test]
    fn writes_become_durable_only_when_their_fsync_completes() {
        let mut disk = Disk::default();
        assert_eq!(disk.submit(append(1, 0, 1), 10, 5), 15);
        assert_eq!(disk.submit(append(2, 1, 2), 11, 1), 15, "fsyncs complete in order");
        assert!(disk.files.log.is_empty());
        disk.complete(PersistToken(1)).unwrap();
        assert_eq!(disk.files.clone().recover().unwrap().history.len(), 1);
        disk.complete(PersistToken(2)).unwrap();
        assert_eq!(disk.files.clone().recover().unwrap().history.len(), 2);
    }

    #[test]
    fn a_crash_keeps_at_most_a_prefix_and_recovery_cuts_a_torn_tail() {
        for seed in 0..50 {
            let mut rng = SimRng::new(seed);
            let mut disk = Disk::default();
            disk.submit(append(1, 0, 1), 0, 1);
            disk.complete(PersistToken(1)).unwrap();
            disk.submit(append(2, 1, 2), 0, 1);
            disk.submit(append(3, 2, 3), 0, 1);
            let loss = disk.crash(&mut rng, true).unwrap();
            assert_eq!(disk.pending_len(), 0);
            let recovered = disk.files.recover().unwrap();
            assert_eq!(recovered.history.len(), 1 + loss.ops_kept, "seed {seed}: {loss:?}");
            // After the cut, the log ends on a record boundary: recovering again cuts nothing.
            assert_eq!(disk.files.recover().unwrap().truncate, None);
        }
    }
}
