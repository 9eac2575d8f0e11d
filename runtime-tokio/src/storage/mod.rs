//! Durable storage: carries out the node's [`PersistRequest`]s on files, in order, with
//! group commit, and recovers the node's state at start-up.
//!
//! The byte formats and recovery itself are zk-core's ([`zk_core::ondisk`]); this module
//! only moves bytes between files and the core. Its parts:
//!
//! - `fs`: the file system behind a trait ([`FileSystem`]): real files, or memory.
//! - `layout`: where the files live and what they are called ([`Layout`]), and what
//!   autopurge deletes ([`purge_plan`]).
//! - `segment`: log segments: appends, preallocation and zeros written ahead, rolling over,
//!   closed segments leaving the page cache.
//! - `snapshot`: snapshot files: written in the background, or installed from a leader.
//! - `recovery`: start-up ([`Storage::open`]): the files read and handed to zk-core's
//!   recovery, and the log tail it found cut.
//! - `thread`: the storage thread ([`StorageThread`]): the request loop and group commit.
//!
//! # Group commit
//!
//! The storage thread takes every request queued, carries out all their operations, then
//! makes them durable with one `fdatasync` of the log and reports the last token: one
//! fsync covers as many txns as arrived while the previous fsync ran.
//!
//! Operations are carried out in order: before an epoch file, a snapshot installed from a
//! leader or a truncation, the log appended so far is fsynced, so a crash never leaves a
//! later operation durable and an earlier one lost. Periodic snapshots are written on a
//! background thread: nothing waits for them, because the log still holds every txn they
//! cover until autopurge, which only counts snapshots that are complete.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use zk_core::node::{PersistRequest, StorageOp};
use zk_core::ondisk::{self as formats, StorageError};

mod fs;
mod layout;
mod recovery;
mod segment;
mod snapshot;
mod thread;

#[cfg(test)]
mod tests;

pub use fs::{FileSystem, LogFile, MemoryFileSystem, MemoryLogFile, RealFileSystem};
pub use layout::{purge_plan, Layout, ZKD_FOLDER};
pub use segment::SEGMENT_BYTES_MAX_DEFAULT;
/// What the madsim task that stands in for the storage thread needs (see `rt.rs`).
#[cfg(madsim)]
pub(crate) use thread::{commit_batch, take_batch, Command};
pub use thread::{commit_wait, StorageReport, StorageThread, BATCH_REQUESTS_MAX, COMMIT_WAIT_FULL_RECORDS};

use layout::{list_zxids, ACCEPTED_EPOCH, CURRENT_EPOCH, LOG_PREFIX, SNAPSHOT_PREFIX};
use segment::Segment;

/// Whether storage may start OS threads of its own (to decode a snapshot while the log is
/// read, to write snapshots in the background). Not under madsim, which allows none: the
/// same work runs in line there (see `rt.rs`).
pub(crate) const OS_THREADS: bool = cfg!(not(madsim));

/// Settings from zoo.cfg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageOptions {
    /// `preAllocSize`: log segments grow in steps of this many zero bytes; 0 disables it.
    pub pre_alloc_bytes: u64,
    pub segment_bytes_max: u64,
    /// `autopurge.snapRetainCount`.
    pub snap_retain_count: usize,
    /// The longest a group commit waits for more writes to join it ([`commit_wait`]);
    /// zero flushes as soon as a request is in.
    pub commit_wait_max: Duration,
}

impl Default for StorageOptions {
    fn default() -> StorageOptions {
        StorageOptions {
            pre_alloc_bytes: crate::config::PRE_ALLOC_SIZE_KB_DEFAULT * 1024,
            segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT,
            snap_retain_count: crate::config::SNAP_RETAIN_COUNT_MIN,
            commit_wait_max: Duration::ZERO,
        }
    }
}

/// Counters, for tests and `mntr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Group commits carried out.
    pub batches: u64,
    pub requests: u64,
    /// Log records (txns) appended.
    pub appends: u64,
    /// fsyncs of log segments.
    pub log_syncs: u64,
    /// Other fsyncs: epoch files, snapshots, directories, truncations.
    pub other_syncs: u64,
    pub snapshots_written: u64,
}

/// Why storage cannot start.
#[derive(Debug)]
pub enum StartError {
    Io {
        path: PathBuf,
        error: io::Error,
    },
    /// Stored bytes that cannot be used: zk-core's error, which names the file and offset,
    /// and the folder it was found in.
    Corrupt {
        dir: PathBuf,
        error: StorageError,
    },
    /// Every snapshot is damaged; starting from the log alone could lose what they held.
    NoUsableSnapshot {
        dir: PathBuf,
        problems: Vec<String>,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            StartError::Corrupt { dir, error } => {
                write!(
                    f,
                    "refusing to start: {error} (in {}); restore the file or remove the server's data",
                    dir.display()
                )
            }
            StartError::NoUsableSnapshot { dir, problems } => {
                write!(f, "refusing to start: every snapshot in {} is damaged: {}", dir.display(), problems.join("; "))
            }
        }
    }
}

impl std::error::Error for StartError {}

/// One server's files.
pub struct Storage<F: FileSystem> {
    fs: Arc<F>,
    layout: Layout,
    options: StorageOptions,
    segment: Option<Segment<F::File>>,
    snapshot_writer: Option<JoinHandle<io::Result<()>>>,
    stats: StorageStats,
    /// Log records the last group commit appended ([`Storage::commit_wait`]).
    last_commit_records: u64,
}

impl<F: FileSystem> fmt::Debug for Storage<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").field("layout", &self.layout).field("stats", &self.stats).finish()
    }
}

impl<F: FileSystem> Storage<F> {
    /// Storage over files [`Storage::open`] has recovered.
    fn new(fs: Arc<F>, layout: Layout, options: StorageOptions) -> Storage<F> {
        Storage {
            fs,
            layout,
            options,
            segment: None,
            snapshot_writer: None,
            stats: StorageStats::default(),
            last_commit_records: 0,
        }
    }

    pub fn stats(&self) -> StorageStats {
        self.stats
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Carries out requests in order and makes them all durable (group commit): one fsync
    /// of the log at the end, plus those that keep operations of different files in order.
    pub fn persist(&mut self, requests: &[PersistRequest]) -> io::Result<()> {
        let appended_before = self.stats.appends;
        for request in requests {
            for op in &request.ops {
                self.carry_out(op)?;
            }
        }
        self.sync_log()?;
        self.stats.batches += 1;
        self.stats.requests += requests.len() as u64;
        self.last_commit_records = self.stats.appends - appended_before;
        Ok(())
    }

    /// How long the next group commit waits for company once its first request is in
    /// ([`commit_wait`] of the records the last one carried).
    pub fn commit_wait(&self) -> Duration {
        commit_wait(self.last_commit_records, self.options.commit_wait_max)
    }

    fn carry_out(&mut self, op: &StorageOp) -> io::Result<()> {
        match op {
            StorageOp::AppendLog { bytes, first_zxid, last_zxid } => {
                debug_assert!(first_zxid <= last_zxid);
                self.append(bytes, *first_zxid)
            }
            StorageOp::TruncateLog { after_zxid } => {
                self.finish_snapshot()?;
                self.close_segment()?;
                self.truncate_after(*after_zxid)
            }
            StorageOp::InstallSnapshot { zxid, bytes } => self.install_snapshot(*zxid, bytes),
            StorageOp::WriteSnapshot(image) => self.write_snapshot(image),
            StorageOp::AcceptedEpoch(epoch) => self.write_epoch(ACCEPTED_EPOCH, *epoch),
            StorageOp::CurrentEpoch(epoch) => self.write_epoch(CURRENT_EPOCH, *epoch),
        }
    }

    fn write_epoch(&mut self, name: &str, epoch: u32) -> io::Result<()> {
        self.sync_log()?;
        self.fs.write_durable(&self.layout.snapshot_dir.join(name), &formats::encode_epoch(epoch))?;
        self.stats.other_syncs += 1;
        Ok(())
    }

    fn sync_dirs(&mut self) -> io::Result<()> {
        self.fs.sync_dir(&self.layout.log_dir)?;
        self.fs.sync_dir(&self.layout.snapshot_dir)?;
        self.stats.other_syncs += 2;
        Ok(())
    }

    /// Drops every log record above `after_zxid`.
    fn truncate_after(&mut self, after_zxid: i64) -> io::Result<()> {
        for first_zxid in list_zxids(&*self.fs, &self.layout.log_dir, LOG_PREFIX)?.into_iter().rev() {
            let path = self.layout.log_path(first_zxid);
            if first_zxid > after_zxid {
                self.fs.remove(&path)?;
                continue;
            }
            let bytes = self.fs.read(&path)?.unwrap_or_default();
            let offset = formats::log_truncation_offset(&bytes, after_zxid)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
            if offset == 0 {
                self.fs.remove(&path)?;
            } else {
                self.fs.truncate(&path, offset as u64)?;
            }
            break;
        }
        self.sync_dirs()
    }

    /// Autopurge: keeps the `snap_retain_count` newest complete snapshots and the log
    /// segments they need. Returns how many files were removed.
    pub fn purge(&mut self) -> io::Result<usize> {
        let snapshots = list_zxids(&*self.fs, &self.layout.snapshot_dir, SNAPSHOT_PREFIX)?;
        let logs = list_zxids(&*self.fs, &self.layout.log_dir, LOG_PREFIX)?;
        let (old_snapshots, old_logs) = purge_plan(&snapshots, &logs, self.options.snap_retain_count);
        for &zxid in &old_snapshots {
            self.fs.remove(&self.layout.snapshot_path(zxid))?;
        }
        for &first_zxid in &old_logs {
            self.fs.remove(&self.layout.log_path(first_zxid))?;
        }
        let removed = old_snapshots.len() + old_logs.len();
        if removed > 0 {
            tracing::info!(snapshots = old_snapshots.len(), logs = old_logs.len(), "autopurge removed old files");
        }
        Ok(removed)
    }

    /// Finishes background work before the process exits.
    pub fn close(&mut self) -> io::Result<()> {
        self.sync_log()?;
        self.finish_snapshot()
    }
}
