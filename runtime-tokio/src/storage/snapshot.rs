//! Snapshot files: the node's periodic snapshots, encoded and written on a background
//! thread while writes go on, and snapshots installed from a leader, which replace the
//! log.

use std::io;

use zk_core::ondisk::SnapshotImage;

use super::fs::FileSystem;
use super::layout::{list_zxids, LOG_PREFIX, SNAPSHOT_PREFIX};
use super::{Storage, OS_THREADS};

impl<F: FileSystem> Storage<F> {
    /// Installs a snapshot a leader sent: it replaces every newer snapshot and the whole
    /// log, once the log appended so far is durable.
    pub(super) fn install_snapshot(&mut self, zxid: i64, bytes: &[u8]) -> io::Result<()> {
        self.finish_snapshot()?;
        self.close_segment()?;
        // A newer snapshot of a history the leader replaced must not win the next
        // recovery: it goes first (a crash right after leaves the older state,
        // which nothing acknowledged depends on).
        let newer: Vec<i64> = list_zxids(&*self.fs, &self.layout.snapshot_dir, SNAPSHOT_PREFIX)?
            .into_iter()
            .filter(|&newer| newer > zxid)
            .collect();
        for &newer in &newer {
            self.fs.remove(&self.layout.snapshot_path(newer))?;
        }
        if !newer.is_empty() {
            self.sync_dirs()?;
        }
        self.fs.write_durable(&self.layout.snapshot_path(zxid), bytes)?;
        self.stats.other_syncs += 1;
        self.stats.snapshots_written += 1;
        // The old log is no longer this server's history.
        for first_zxid in list_zxids(&*self.fs, &self.layout.log_dir, LOG_PREFIX)? {
            self.fs.remove(&self.layout.log_path(first_zxid))?;
        }
        self.sync_dirs()
    }

    /// Writes the node's snapshot on a thread of its own (in line under madsim); the next
    /// snapshot, a truncation, an installed snapshot or [`Storage::close`] waits for it.
    pub(super) fn write_snapshot(&mut self, image: &SnapshotImage) -> io::Result<()> {
        // Later appends start a new segment, so autopurge can drop the older ones
        // once enough snapshots follow them.
        self.close_segment()?;
        self.finish_snapshot()?;
        let fs = self.fs.clone();
        let path = self.layout.snapshot_path(image.zxid());
        // The image shares the node's tree; encoding it here, on the writer's own
        // thread, is what keeps a snapshot from stopping writes.
        let image = image.clone();
        let write = move || {
            let bytes = image.encode();
            let written = fs.write_durable(&path, &bytes);
            match &written {
                Ok(()) => tracing::info!(file = %path.display(), bytes = bytes.len(), "snapshot written"),
                Err(error) => tracing::error!(file = %path.display(), %error, "snapshot write failed"),
            }
            written
        };
        if OS_THREADS {
            let writer = std::thread::Builder::new().name(String::from("zkd-snapshot")).spawn(write)?;
            self.snapshot_writer = Some(writer);
        } else {
            // madsim: no threads, and in-memory files cost nothing to write.
            write()?;
        }
        self.stats.snapshots_written += 1;
        Ok(())
    }

    /// Waits for the background snapshot, if one is being written.
    pub(super) fn finish_snapshot(&mut self) -> io::Result<()> {
        match self.snapshot_writer.take() {
            Some(writer) => writer.join().map_err(|_| io::Error::other("the snapshot writer panicked"))?,
            None => Ok(()),
        }
    }
}
