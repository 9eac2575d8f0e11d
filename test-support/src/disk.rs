//! One server's in-memory disk: the files that survive a crash (log, snapshot, epoch
//! files) and the persist requests handed to it that are not durable yet.
//!
//! A persist request stays pending until its fsync completes; completions happen in
//! order. A crash loses what is pending, except that the operating system may already
//! have written a prefix of it, possibly ending in a torn part of a log append: recovery
//! must cope with both (it cuts a torn tail by CRC). Which prefix survives is chosen by
//! the caller's [`Tear`] (the simulator's seeded rng).

use std::collections::VecDeque;
use std::fmt;

use zk_core::node::{PersistRequest, PersistToken, StorageOp};
use zk_core::ondisk::{self, LogSegment, Recovered, RecoveryInput, SnapshotImage, StorageError};

/// What survives a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Files {
    pub log: Vec<u8>,
    /// The snapshot file; read it through [`Files::snapshot`].
    snapshot: Option<SnapshotFile>,
    pub accepted_epoch: Option<Vec<u8>>,
    pub current_epoch: Option<Vec<u8>>,
}

/// A snapshot file's contents: its bytes, or the image they encode. A written image is
/// encoded only when the file is read (at a restart), since most snapshots are replaced by
/// the next before anything reads them; the encoding is a pure function of the image, so
/// when it happens changes nothing.
#[derive(Clone, PartialEq, Eq)]
enum SnapshotFile {
    Bytes(Vec<u8>),
    Image(SnapshotImage),
}

impl fmt::Debug for SnapshotFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotFile::Bytes(bytes) => write!(f, "{} bytes", bytes.len()),
            SnapshotFile::Image(_) => f.write_str("an image, not encoded yet"),
        }
    }
}

impl Files {
    /// The snapshot file's bytes, if there is one.
    pub fn snapshot(&mut self) -> Option<&mut Vec<u8>> {
        let file = self.snapshot.as_mut()?;
        if let SnapshotFile::Image(image) = file {
            *file = SnapshotFile::Bytes(image.encode());
        }
        match file {
            SnapshotFile::Bytes(bytes) => Some(bytes),
            SnapshotFile::Image(_) => unreachable!("encoded above"),
        }
    }

    /// Carries out one storage operation, as a durable write.
    pub fn apply(&mut self, op: &StorageOp) -> Result<(), StorageError> {
        match op {
            StorageOp::AppendLog { bytes, .. } => self.log.extend_from_slice(bytes),
            StorageOp::TruncateLog { after_zxid } => {
                let offset = ondisk::log_truncation_offset(&self.log, *after_zxid)?;
                self.log.truncate(offset);
            }
            StorageOp::InstallSnapshot { bytes, .. } => {
                self.snapshot = Some(SnapshotFile::Bytes(bytes.clone()));
                self.log.clear();
            }
            StorageOp::WriteSnapshot(image) => self.snapshot = Some(SnapshotFile::Image(image.clone())),
            StorageOp::AcceptedEpoch(epoch) => self.accepted_epoch = Some(ondisk::encode_epoch(*epoch)),
            StorageOp::CurrentEpoch(epoch) => self.current_epoch = Some(ondisk::encode_epoch(*epoch)),
        }
        Ok(())
    }

    /// Reads the files back as a restarting server does, and cuts the log where recovery
    /// says its valid part ends.
    pub fn recover(&mut self) -> Result<Recovered, StorageError> {
        self.snapshot();
        let recovered = {
            let segments = [LogSegment { name: "log", bytes: &self.log }];
            let input = RecoveryInput {
                snapshot: match &self.snapshot {
                    Some(SnapshotFile::Bytes(bytes)) => Some(bytes),
                    _ => None,
                },
                log: &segments,
                accepted_epoch: self.accepted_epoch.as_deref(),
                current_epoch: self.current_epoch.as_deref(),
            };
            ondisk::recover(&input)?
        };
        if let Some((segment, offset)) = recovered.truncate {
            assert_eq!(segment, 0, "the in-memory disk has one log segment");
            assert!(offset <= self.log.len(), "recovery cuts inside the log");
            self.log.truncate(offset);
        }
        Ok(recovered)
    }
}

/// The choices a crash makes about the pending writes; the simulator answers them from its
/// seeded rng, in this order: first `ops_kept`, then `torn_len` if a log append follows.
pub trait Tear {
    /// How many of the `ops` pending operations reached the disk (0 ..= `ops`).
    fn ops_kept(&mut self, ops: usize) -> usize;
    /// How many bytes of the next log append of `len` (> 1) bytes reached it (1 .. `len`).
    fn torn_len(&mut self, len: usize) -> usize;
}

/// What a crash did to the pending writes, for the simulator's trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashLoss {
    /// The operations of the requests that were pending (counted as operations).
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
    /// The simulator's planted bug `TruncateIgnored`: TRUNC operations are skipped.
    pub truncate_ignored: bool,
}

impl Disk {
    /// Takes a request; it is durable once [`Disk::complete`] reaches its token.
    pub fn submit(&mut self, request: PersistRequest) {
        debug_assert!(self.pending.back().is_none_or(|last| last.token < request.token), "tokens increase");
        self.pending.push_back(request);
    }

    /// The fsync of every request up to `token` completed: their writes are durable.
    pub fn complete(&mut self, token: PersistToken) -> Result<(), StorageError> {
        while self.pending.front().is_some_and(|request| request.token <= token) {
            let request = self.pending.pop_front().expect("checked non-empty");
            for op in &request.ops {
                self.write(op)?;
            }
        }
        Ok(())
    }

    /// Makes every pending request durable; returns the last one's token, if any.
    pub fn complete_all(&mut self) -> Result<Option<PersistToken>, StorageError> {
        let Some(last) = self.pending.back().map(|request| request.token) else { return Ok(None) };
        self.complete(last)?;
        Ok(Some(last))
    }

    /// Writes one operation durably, at once (no fsync to wait for).
    pub fn write(&mut self, op: &StorageOp) -> Result<(), StorageError> {
        if self.truncate_ignored && matches!(op, StorageOp::TruncateLog { .. }) {
            return Ok(());
        }
        self.files.apply(op)
    }

    /// The requests not yet durable, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &PersistRequest> {
        self.pending.iter()
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The process died: pending writes are lost, except (when `tear` is given) a prefix
    /// the operating system had already written, which may end in a torn log append.
    pub fn crash(&mut self, tear: Option<&mut dyn Tear>) -> Result<CrashLoss, StorageError> {
        let ops: Vec<StorageOp> = self.pending.drain(..).flat_map(|request| request.ops).collect();
        let mut loss = CrashLoss { requests_pending: ops.len(), ops_kept: 0, torn_bytes: None };
        let Some(tear) = tear.filter(|_| !ops.is_empty()) else { return Ok(loss) };
        let kept = tear.ops_kept(ops.len());
        for op in &ops[..kept] {
            self.write(op)?;
        }
        loss.ops_kept = kept;
        if let Some(StorageOp::AppendLog { bytes, .. }) = ops.get(kept) {
            if bytes.len() > 1 {
                let torn = tear.torn_len(bytes.len());
                self.files.log.extend_from_slice(&bytes[..torn]);
                loss.torn_bytes = Some(torn);
            }
        }
        Ok(loss)
    }

    /// Reads the durable files back as a restarting server does (see [`Files::recover`]).
    pub fn recover(&mut self) -> Result<Recovered, StorageError> {
        self.files.recover()
    }
}

/// A persist request `token` that appends one small setData txn at `zxid` after
/// `prev_zxid`: what disk tests write.
pub fn append_request(token: u64, prev_zxid: i64, zxid: i64) -> PersistRequest {
    let entry = zk_core::txn::LogEntry {
        prev_zxid,
        header: zk_core::txn::TxnHeader { session_id: 1, cxid: 1, zxid, time_ms: 0 },
        txn: zk_core::txn::Txn::SetData { path: "/a".into(), data: Some(vec![7; 40]), version: 1 },
    };
    PersistRequest {
        token: PersistToken(token),
        ops: vec![StorageOp::AppendLog { bytes: ondisk::encode_log_record(&entry), first_zxid: zxid, last_zxid: zxid }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use append_request as append;

    /// Fixed answers, for a deterministic crash.
    struct Choose(usize, usize);

    impl Tear for Choose {
        fn ops_kept(&mut self, ops: usize) -> usize {
            self.0.min(ops)
        }
        fn torn_len(&mut self, len: usize) -> usize {
            self.1.clamp(1, len - 1)
        }
    }

    #[test]
    fn writes_become_durable_only_when_their_fsync_completes() {
        let mut disk = Disk::default();
        disk.submit(append(1, 0, 1));
        disk.submit(append(2, 1, 2));
        assert!(disk.files.log.is_empty());
        disk.complete(PersistToken(1)).unwrap();
        assert_eq!(disk.files.clone().recover().unwrap().history.len(), 1);
        assert_eq!(disk.complete_all().unwrap(), Some(PersistToken(2)));
        assert_eq!(disk.recover().unwrap().history.len(), 2);
        assert_eq!(disk.complete_all().unwrap(), None);
    }

    #[test]
    fn a_crash_without_tearing_drops_every_pending_write() {
        let mut disk = Disk::default();
        disk.submit(append(1, 0, 1));
        let loss = disk.crash(None).unwrap();
        assert_eq!(loss, CrashLoss { requests_pending: 1, ops_kept: 0, torn_bytes: None });
        assert_eq!(disk.pending_len(), 0);
        assert!(disk.files.log.is_empty());
    }

    #[test]
    fn a_crash_keeps_at_most_a_prefix_and_recovery_cuts_a_torn_tail() {
        for kept in 0..=2 {
            for torn in [1, 10, 1000] {
                let mut disk = Disk::default();
                disk.submit(append(1, 0, 1));
                disk.complete(PersistToken(1)).unwrap();
                disk.submit(append(2, 1, 2));
                disk.submit(append(3, 2, 3));
                let loss = disk.crash(Some(&mut Choose(kept, torn))).unwrap();
                assert_eq!(disk.pending_len(), 0);
                assert_eq!(loss.ops_kept, kept);
                assert_eq!(loss.torn_bytes.is_some(), kept < 2);
                let recovered = disk.recover().unwrap();
                assert_eq!(recovered.history.len(), 1 + kept, "{loss:?}");
                // After the cut, the log ends on a record boundary: recovering again cuts nothing.
                assert_eq!(disk.recover().unwrap().truncate, None);
            }
        }
    }
}
