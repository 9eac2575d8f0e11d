//! Start-up: the files are listed and read, handed to zk-core's recovery, and the log tail
//! it found invalid is cut.
//!
//! Log segments are read only from the one holding the first txn after the snapshot being
//! tried (zxids increase across segments), and only when that snapshot is tried: a long
//! log that autopurge never trimmed, or the older snapshots kept as fallbacks, cost
//! nothing at start-up.

use std::io;
use std::path::Path;
use std::sync::Arc;

use zk_core::database::Database;
use zk_core::ondisk::{
    self as formats, LogSegment, Recovered, RecoveryAttempt, RecoveryInput, ScannedLog, SnapshotFallback, StorageError,
};

use super::fs::{FileSystem, TEMP_SUFFIX};
use super::layout::{list_zxids, snapshot_name, Layout, ACCEPTED_EPOCH, CURRENT_EPOCH, LOG_PREFIX, SNAPSHOT_PREFIX};
use super::{StartError, Storage, StorageOptions, OS_THREADS};

impl<F: FileSystem> Storage<F> {
    /// Opens a server's files and recovers its state: the newest snapshot that decodes
    /// (older ones if it is damaged), the log after it, and the epoch files. A torn or
    /// zero-padded log tail is cut; corruption before the end refuses to start.
    pub fn open(fs: Arc<F>, layout: Layout, options: StorageOptions) -> Result<(Storage<F>, Recovered), StartError> {
        remove_interrupted_writes(&*fs, &layout)?;
        let epochs = Epochs::read(&*fs, &layout)?;
        let mut files = StartupFiles::list(&*fs, &layout)?;
        let recovered = files.recover_from_newest_usable_snapshot(&epochs)?;
        files.cut_log_tail(recovered.truncate)?;
        log_recovered(&recovered);
        Ok((Storage::new(fs, layout, options), recovered))
    }
}

/// How an I/O error on `path` stops start-up.
fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StartError {
    let path = path.to_owned();
    move |error| StartError::Io { path, error }
}

/// Creates both folders and removes the temporary files in them: a temporary file is a
/// snapshot or epoch write that a crash interrupted.
fn remove_interrupted_writes<F: FileSystem>(fs: &F, layout: &Layout) -> Result<(), StartError> {
    for dir in [&layout.snapshot_dir, &layout.log_dir] {
        fs.create_dir_all(dir).map_err(io_error(dir))?;
        for name in fs.list(dir).map_err(io_error(dir))?.iter().filter(|name| name.ends_with(TEMP_SUFFIX)) {
            tracing::info!(file = %dir.join(name).display(), "removing an interrupted write");
            fs.remove(&dir.join(name)).map_err(io_error(dir))?;
        }
    }
    Ok(())
}

/// The epoch files' bytes, `None` when absent.
struct Epochs {
    accepted: Option<Vec<u8>>,
    current: Option<Vec<u8>>,
}

impl Epochs {
    fn read<F: FileSystem>(fs: &F, layout: &Layout) -> Result<Epochs, StartError> {
        let read = |name: &str| {
            let path = layout.snapshot_dir.join(name);
            fs.read(&path).map_err(io_error(&path))
        };
        Ok(Epochs { accepted: read(ACCEPTED_EPOCH)?, current: read(CURRENT_EPOCH)? })
    }
}

/// A snapshot file read and decoded.
struct DecodedSnapshot {
    /// The file's bytes (`None` without a snapshot).
    bytes: Option<Vec<u8>>,
    database: Result<Database, StorageError>,
}

/// A snapshot read and decoded, and the log after it read and scanned.
struct Loaded {
    snapshot: DecodedSnapshot,
    scanned: Result<ScannedLog, StorageError>,
}

/// The files start-up found, and the log segments read so far.
struct StartupFiles<'a, F> {
    fs: &'a F,
    layout: &'a Layout,
    /// The snapshots' zxids, ascending.
    snapshot_zxids: Vec<i64>,
    /// The log segments' first zxids, ascending, and their file names.
    log_zxids: Vec<i64>,
    log_names: Vec<String>,
    /// Each segment's bytes once read (a segment is read only when a snapshot tried needs it).
    log_bytes: Vec<Option<Vec<u8>>>,
}

impl<'a, F: FileSystem> StartupFiles<'a, F> {
    fn list(fs: &'a F, layout: &'a Layout) -> Result<StartupFiles<'a, F>, StartError> {
        let log_zxids = list_zxids(fs, &layout.log_dir, LOG_PREFIX).map_err(io_error(&layout.log_dir))?;
        let log_names = log_zxids.iter().map(|zxid| format!("{LOG_PREFIX}{zxid:x}")).collect();
        let snapshot_zxids =
            list_zxids(fs, &layout.snapshot_dir, SNAPSHOT_PREFIX).map_err(io_error(&layout.snapshot_dir))?;
        let log_bytes = vec![None; log_zxids.len()];
        Ok(StartupFiles { fs, layout, snapshot_zxids, log_zxids, log_names, log_bytes })
    }

    /// Tries the snapshots newest first, as zk-core's [`SnapshotFallback`] decides, until
    /// one recovers with the log after it; each attempt reads only what it needs.
    fn recover_from_newest_usable_snapshot(&mut self, epochs: &Epochs) -> Result<Recovered, StartError> {
        let mut fallback = SnapshotFallback::new(&self.snapshot_zxids, &self.log_zxids);
        while let Some(RecoveryAttempt { snapshot_zxid, first_segment }) = fallback.next_attempt() {
            // None: the snapshot file went away since it was listed.
            let Some(loaded) = self.load(snapshot_zxid, first_segment)? else { continue };
            let segments = self.segments_from(first_segment);
            let input = RecoveryInput {
                snapshot: loaded.snapshot.bytes.as_deref(),
                log: &segments,
                accepted_epoch: epochs.accepted.as_deref(),
                current_epoch: epochs.current.as_deref(),
            };
            let name = snapshot_zxid.map(snapshot_name).unwrap_or_default();
            match fallback.judge(&name, &input, loaded.snapshot.database, loaded.scanned) {
                Ok(Some(recovered)) => return Ok(recovered),
                Ok(None) => {
                    let problem = fallback.problems().last().map_or("", String::as_str);
                    let dir = self.layout.snapshot_dir.display();
                    tracing::warn!(%dir, problem, "snapshot is damaged; trying an older one");
                }
                Err(error) => return Err(self.refusal(error)),
            }
        }
        Err(self.refusal(fallback.give_up()))
    }

    /// How zk-core's refusal to recover stops start-up, naming the folder.
    fn refusal(&self, error: StorageError) -> StartError {
        match error {
            StorageError::NoUsableSnapshot { problems } => {
                StartError::NoUsableSnapshot { dir: self.layout.snapshot_dir.clone(), problems }
            }
            error => StartError::Corrupt { dir: self.layout.log_dir.clone(), error },
        }
    }

    /// Reads and decodes the snapshot `zxid` (none: an empty database) while the log from
    /// segment `start` on is read and scanned; `None` when the snapshot file is gone.
    ///
    /// The snapshot is read and decoded on a thread of its own: with a million znodes and
    /// a snapshot's worth of txns after them, the log took ~300 ms of a ~1.2 s start-up
    /// (two segments read, 200k records checked and decoded). madsim has no threads: one
    /// after the other there.
    fn load(&mut self, zxid: Option<i64>, start: usize) -> Result<Option<Loaded>, StartError> {
        let (fs, layout) = (self.fs, self.layout);
        let read_snapshot = move || -> Result<Option<DecodedSnapshot>, StartError> {
            let bytes = match zxid {
                Some(zxid) => {
                    let path = layout.snapshot_path(zxid);
                    let Some(bytes) = fs.read(&path).map_err(io_error(&path))? else { return Ok(None) };
                    Some(bytes)
                }
                None => None,
            };
            Ok(Some(DecodedSnapshot { database: formats::decode_snapshot_database(bytes.as_deref()), bytes }))
        };
        let (snapshot, scanned) = if OS_THREADS {
            std::thread::scope(|scope| {
                let snapshot_thread = std::thread::Builder::new()
                    .name(String::from("zkd-load"))
                    .spawn_scoped(scope, read_snapshot)
                    .map_err(io_error(&layout.snapshot_dir))?;
                let scanned = self.read_and_scan_log(start);
                let snapshot = snapshot_thread.join().expect("decoding the snapshot panicked");
                Ok::<_, StartError>((snapshot?, scanned?))
            })?
        } else {
            let snapshot = read_snapshot()?;
            (snapshot, self.read_and_scan_log(start)?)
        };
        Ok(snapshot.map(|snapshot| Loaded { snapshot, scanned }))
    }

    /// Reads the segments from `start` on that are not read yet, and scans them.
    fn read_and_scan_log(&mut self, start: usize) -> Result<Result<ScannedLog, StorageError>, StartError> {
        for (index, slot) in self.log_bytes.iter_mut().enumerate().skip(start).filter(|(_, slot)| slot.is_none()) {
            let path = self.layout.log_dir.join(&self.log_names[index]);
            *slot = Some(self.fs.read(&path).map_err(io_error(&path))?.unwrap_or_default());
        }
        Ok(formats::scan_log_segments(&self.segments_from(start)))
    }

    /// The log segments from `start` on, as read (a segment not read is empty).
    fn segments_from(&self, start: usize) -> Vec<LogSegment<'_>> {
        (start..self.log_names.len())
            .map(|index| LogSegment {
                name: &self.log_names[index],
                bytes: self.log_bytes[index].as_deref().unwrap_or_default(),
            })
            .collect()
    }

    /// Cuts the tail recovery found (a torn record, zero padding or a divergent leftover)
    /// at (segment index, byte offset), and drops every later segment.
    fn cut_log_tail(&self, truncate: Option<(usize, usize)>) -> Result<(), StartError> {
        let Some((index, offset)) = truncate else { return Ok(()) };
        for (later, &first_zxid) in self.log_zxids.iter().enumerate().skip(index) {
            let path = self.layout.log_path(first_zxid);
            if later == index && offset > 0 {
                tracing::info!(file = %path.display(), offset, "cutting the log tail");
                self.fs.truncate(&path, offset as u64).map_err(io_error(&path))?;
            } else {
                tracing::info!(file = %path.display(), "removing a log segment past the valid log");
                self.fs.remove(&path).map_err(io_error(&path))?;
            }
        }
        self.fs.sync_dir(&self.layout.log_dir).map_err(io_error(&self.layout.log_dir))
    }
}

fn log_recovered(recovered: &Recovered) {
    tracing::info!(
        snapshot_zxid = format_args!("{:#x}", recovered.database.last_processed_zxid()),
        log_txns = recovered.history.len(),
        last_zxid = format_args!("{:#x}", recovered.history.last().map_or(0, |entry| entry.zxid())),
        accepted_epoch = recovered.accepted_epoch,
        current_epoch = recovered.current_epoch,
        "recovered from disk"
    );
}
