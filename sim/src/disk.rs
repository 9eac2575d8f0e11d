//! A server's simulated disk: `zk_test_support::Disk` (the files that survive a crash and
//! the writes not durable yet, shared with zk-core's test harness) plus what only the
//! simulator models: when each fsync completes, and the corrupt-read fault.
//!
//! Fsyncs complete in order. A crash loses what is pending, except that the operating
//! system may already have written a prefix of it, possibly ending in a torn part of a log
//! append; the prefix is drawn from the run's rng.

use zk_core::node::{PersistRequest, PersistToken};
use zk_core::ondisk::{self, Recovered, StorageError};
use zk_test_support::disk::Tear;
pub use zk_test_support::disk::{CrashLoss, Files};

use crate::rng::SimRng;

/// One server's disk.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// The files and the pending requests.
    pub store: zk_test_support::Disk,
    /// When the last fsync handed over completes; fsyncs complete in order.
    last_completion_ms: u64,
    /// The next restart reads one flipped bit (the corrupt-read fault); the bytes on the
    /// disk stay clean.
    pub corrupt_next_read: bool,
}

/// A copy of `files` as a read with one flipped bit returns it, and which file it hit:
/// the snapshot, an epoch file, or the log before its last record (a damaged last record
/// is indistinguishable from a torn append, which recovery cuts by design). `None` when no
/// file has such bytes.
pub fn flip_a_bit(files: &Files, rng: &mut SimRng) -> Option<(Files, String)> {
    let mut corrupt = files.clone();
    let snapshot = corrupt.snapshot().cloned();
    let log_limit = match ondisk::scan_log(&files.log) {
        Ok(scan) if scan.entries.len() >= 2 => {
            let second_last = scan.entries[scan.entries.len() - 2].zxid();
            ondisk::log_truncation_offset(&files.log, second_last).unwrap_or(0)
        }
        _ => 0,
    };
    let mut candidates: Vec<(&str, usize)> = Vec::new();
    if log_limit > 0 {
        candidates.push(("the log", log_limit));
    }
    for (name, file) in
        [("the snapshot", &snapshot), ("acceptedEpoch", &files.accepted_epoch), ("currentEpoch", &files.current_epoch)]
    {
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
    let bytes = match name {
        "the log" => &mut corrupt.log,
        "the snapshot" => corrupt.snapshot().expect("a candidate"),
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
        let mut disk = Disk::default();
        disk.store.truncate_ignored = truncate_ignored;
        disk
    }

    /// Takes a request; returns when its fsync will complete.
    pub fn submit(&mut self, request: PersistRequest, now_ms: u64, latency_ms: u64) -> u64 {
        self.store.submit(request);
        self.last_completion_ms = self.last_completion_ms.max(now_ms + latency_ms);
        self.last_completion_ms
    }

    /// The fsync of every request up to `token` completed: their writes are durable.
    pub fn complete(&mut self, token: PersistToken) -> Result<(), StorageError> {
        self.store.complete(token)
    }

    /// The durable files.
    pub fn files(&self) -> &Files {
        &self.store.files
    }

    pub fn files_mut(&mut self) -> &mut Files {
        &mut self.store.files
    }

    pub fn pending_len(&self) -> usize {
        self.store.pending_len()
    }

    /// The process died: pending writes are lost, except a prefix the operating system
    /// had already written, which may end in a torn log append when `tear` allows.
    pub fn crash(&mut self, rng: &mut SimRng, tear: bool) -> Result<CrashLoss, StorageError> {
        self.store.crash(if tear { Some(rng) } else { None })
    }
}

/// A crash's prefix and torn length, drawn from the run's rng.
impl Tear for SimRng {
    fn ops_kept(&mut self, ops: usize) -> usize {
        self.index(ops + 1)
    }

    fn torn_len(&mut self, len: usize) -> usize {
        self.range(1, len as u64 - 1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_test_support::disk::append_request as append;

    #[test]
    fn writes_become_durable_only_when_their_fsync_completes() {
        let mut disk = Disk::default();
        assert_eq!(disk.submit(append(1, 0, 1), 10, 5), 15);
        assert_eq!(disk.submit(append(2, 1, 2), 11, 1), 15, "fsyncs complete in order");
        assert!(disk.files().log.is_empty());
        disk.complete(PersistToken(1)).unwrap();
        assert_eq!(disk.files().clone().recover().unwrap().history.len(), 1);
        disk.complete(PersistToken(2)).unwrap();
        assert_eq!(disk.files().clone().recover().unwrap().history.len(), 2);
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
            let recovered = disk.files_mut().recover().unwrap();
            assert_eq!(recovered.history.len(), 1 + loss.ops_kept, "seed {seed}: {loss:?}");
            // After the cut, the log ends on a record boundary: recovering again cuts nothing.
            assert_eq!(disk.files_mut().recover().unwrap().truncate, None);
        }
    }
}
