//! Durable storage: carries out the node's [`PersistRequest`]s on files, in order, with
//! group commit, and recovers the node's state at start-up.
//!
//! # Layout
//!
//! zkd keeps its files in a `zkd` folder of ZooKeeper's directories, so a ZooKeeper
//! `version-2` folder beside it is never mistaken for zkd's (zkd's formats are its own):
//!
//! - `<dataLogDir>/zkd/log.<first zxid, hex>`: txn log segments, named like ZooKeeper's
//!   after the zxid of their first record; preallocated with zeros in `preAllocSize` steps.
//! - `<dataDir>/zkd/snapshot.<zxid, hex>`: snapshots (written to `.tmp`, fsynced, renamed).
//! - `<dataDir>/zkd/acceptedEpoch` and `<dataDir>/zkd/currentEpoch`.
//!
//! The byte formats and recovery itself are zk-core's ([`zk_core::storage`]); this module
//! only moves bytes between files and the core.
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

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use zk_core::node::{PersistRequest, PersistToken, StorageOp};
use zk_core::storage::{self as formats, LogSegment, Recovered, RecoveryInput, StorageError};

/// The folder, inside dataDir and dataLogDir, that holds zkd's files.
pub const ZKD_FOLDER: &str = "zkd";
/// A log segment is closed and a new one started once it is this large.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 << 20;
/// The most requests one group commit takes, so one batch cannot grow without bound.
pub const BATCH_REQUESTS_MAX: usize = 10_000;
/// A group commit that carried this many log records earns the next one the whole
/// [`StorageOptions::commit_wait_max`]; fewer, a share of it ([`commit_wait`]).
pub const COMMIT_WAIT_FULL_RECORDS: u64 = 25;

const LOG_PREFIX: &str = "log.";
const SNAPSHOT_PREFIX: &str = "snapshot.";
const TEMP_SUFFIX: &str = ".tmp";
const ACCEPTED_EPOCH: &str = "acceptedEpoch";
const CURRENT_EPOCH: &str = "currentEpoch";

// ---- the filesystem, behind a trait ----

/// The few filesystem operations storage needs, so the same code runs on real files and
/// on memory (tests now, madsim later).
pub trait FileSystem: Send + Sync + 'static {
    type File: LogFile;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// A file's bytes, or `None` when it does not exist.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// Replaces a file durably: write a temporary file, fsync it, rename it over `path`,
    /// fsync the directory.
    fn write_durable(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Removes a file (absent is fine).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Creates (or empties) a file for appending log records.
    fn create_log(&self, path: &Path) -> io::Result<Self::File>;
    /// Cuts a file to `len` bytes durably.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Makes creations and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Total bytes of the files in `dir` (for `dirs` and `conf`).
    fn dir_size(&self, dir: &Path) -> u64;
}

/// An open log segment.
pub trait LogFile: Send + 'static {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
    /// Called once the file is closed, every byte of it synced: its pages may leave the page
    /// cache (only recovery reads a closed segment again). Advice: nothing fails for it.
    fn forget_cached(&mut self);
}

/// Real files.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFileSystem;

impl FileSystem for RealFileSystem {
    type File = std::fs::File;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn write_durable(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let temp = temp_path(path);
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)?;
        self.sync_dir(path.parent().unwrap_or(Path::new(".")))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        match std::fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    fn create_log(&self, path: &Path) -> io::Result<std::fs::File> {
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    fn dir_size(&self, dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        entries.filter_map(Result::ok).filter_map(|entry| entry.metadata().ok()).map(|meta| meta.len()).sum()
    }
}

impl LogFile for std::fs::File {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, bytes, offset)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        std::fs::File::set_len(self, len)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }

    fn forget_cached(&mut self) {
        // Kept, a day's log would fill the page cache (pushing out what is read), and on a
        // virtual machine new page cache pages may be memory the host has never backed: a
        // copy into such pages cost 12x once a few GB of log had been written (zk-bench
        // setData 145k -> 125k/s after ~2 GB, back to 145k/s once the cache was dropped).
        let _ = rustix::fs::fadvise(&*self, 0, None, rustix::fs::Advice::DontNeed);
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

/// Files in memory that remember what was made durable: [`MemoryFileSystem::crash`] throws
/// away whatever was written and not fsynced, as a power cut would.
#[derive(Debug, Default)]
pub struct MemoryFileSystem {
    files: Arc<Mutex<BTreeMap<PathBuf, MemoryFile>>>,
    log_calls: Arc<LogCalls>,
}

/// What was asked of the log files of a [`MemoryFileSystem`], for tests to check.
#[derive(Debug, Default)]
struct LogCalls {
    /// `sync_data` calls.
    syncs: AtomicU64,
    /// `write_at` calls: offset and length.
    writes: Mutex<Vec<(u64, u64)>>,
    /// `forget_cached` calls: the file, and whether all of it was durable then.
    forgotten: Mutex<Vec<(PathBuf, bool)>>,
}

#[derive(Clone, Debug, Default)]
struct MemoryFile {
    data: Vec<u8>,
    /// What survives a crash; `None`: the file itself would not.
    durable: Option<Vec<u8>>,
}

/// An open log segment in a [`MemoryFileSystem`].
#[derive(Debug)]
pub struct MemoryLogFile {
    path: PathBuf,
    files: Arc<Mutex<BTreeMap<PathBuf, MemoryFile>>>,
    calls: Arc<LogCalls>,
}

impl MemoryFileSystem {
    /// A power cut: every file loses what was not fsynced; files never fsynced vanish.
    pub fn crash(&self) {
        let mut files = self.files.lock().unwrap();
        files.retain(|_, file| file.durable.is_some());
        for file in files.values_mut() {
            file.data = file.durable.clone().unwrap_or_default();
        }
    }

    /// How many times a log file was fsynced.
    pub fn log_syncs(&self) -> u64 {
        self.log_calls.syncs.load(Ordering::Relaxed)
    }

    /// Every write to a log file so far, as (offset, length).
    pub fn log_writes(&self) -> Vec<(u64, u64)> {
        self.log_calls.writes.lock().unwrap().clone()
    }

    /// Every log file let out of the page cache so far, and whether all of it was durable
    /// at the time.
    pub fn log_forgotten(&self) -> Vec<(PathBuf, bool)> {
        self.log_calls.forgotten.lock().unwrap().clone()
    }

    /// Replaces a file's bytes (durably), to damage it in tests.
    pub fn put(&self, path: &Path, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_owned(), MemoryFile { durable: Some(bytes.clone()), data: bytes });
    }
}

impl FileSystem for MemoryFileSystem {
    type File = MemoryLogFile;

    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let files = self.files.lock().unwrap();
        Ok(files
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name().map(|name| name.to_string_lossy().into_owned()))
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files.lock().unwrap().get(path).map(|file| file.data.clone()))
    }

    fn write_durable(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.put(path, bytes.to_vec());
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.files.lock().unwrap().remove(path);
        Ok(())
    }

    fn create_log(&self, path: &Path) -> io::Result<MemoryLogFile> {
        self.files.lock().unwrap().insert(path.to_owned(), MemoryFile::default());
        Ok(MemoryLogFile { path: path.to_owned(), files: self.files.clone(), calls: self.log_calls.clone() })
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut files = self.files.lock().unwrap();
        let file = files.get_mut(path).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        file.data.resize(len as usize, 0);
        file.durable = Some(file.data.clone());
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // A directory fsync makes files in it exist after a crash, with what of their data
        // was fsynced (nothing, for a file never fsynced).
        for (path, file) in self.files.lock().unwrap().iter_mut() {
            if path.parent() == Some(dir) && file.durable.is_none() {
                file.durable = Some(Vec::new());
            }
        }
        Ok(())
    }

    fn dir_size(&self, dir: &Path) -> u64 {
        let files = self.files.lock().unwrap();
        files.iter().filter(|(path, _)| path.parent() == Some(dir)).map(|(_, file)| file.data.len() as u64).sum()
    }
}

impl MemoryLogFile {
    fn with<T>(&self, action: impl FnOnce(&mut MemoryFile) -> T) -> io::Result<T> {
        let mut files = self.files.lock().unwrap();
        let file = files.get_mut(&self.path).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(action(file))
    }
}

impl LogFile for MemoryLogFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.calls.writes.lock().unwrap().push((offset, bytes.len() as u64));
        self.with(|file| {
            let end = offset as usize + bytes.len();
            if file.data.len() < end {
                file.data.resize(end, 0);
            }
            file.data[offset as usize..end].copy_from_slice(bytes);
        })
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.with(|file| file.data.resize(len as usize, 0))
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.calls.syncs.fetch_add(1, Ordering::Relaxed);
        self.with(|file| file.durable = Some(file.data.clone()))
    }

    fn forget_cached(&mut self) {
        let clean = self.with(|file| file.durable.as_ref() == Some(&file.data)).unwrap_or(false);
        self.calls.forgotten.lock().unwrap().push((self.path.clone(), clean));
    }
}

// ---- where files live ----

/// The paths of a server's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `<dataDir>/zkd`: snapshots and epoch files.
    pub snapshot_dir: PathBuf,
    /// `<dataLogDir>/zkd`: log segments.
    pub log_dir: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path, data_log_dir: &Path) -> Layout {
        Layout { snapshot_dir: data_dir.join(ZKD_FOLDER), log_dir: data_log_dir.join(ZKD_FOLDER) }
    }

    fn log_path(&self, first_zxid: i64) -> PathBuf {
        self.log_dir.join(format!("{LOG_PREFIX}{first_zxid:x}"))
    }

    fn snapshot_path(&self, zxid: i64) -> PathBuf {
        self.snapshot_dir.join(format!("{SNAPSHOT_PREFIX}{zxid:x}"))
    }
}

/// The zxid in a file name `<prefix><hex>`, if the name is exactly that.
fn parse_zxid_name(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.is_empty() || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|zxid| zxid as i64)
}

/// The zxids named by files with `prefix` in `dir`, ascending.
fn list_zxids<F: FileSystem>(fs: &F, dir: &Path, prefix: &str) -> io::Result<Vec<i64>> {
    let mut zxids: Vec<i64> = fs.list(dir)?.iter().filter_map(|name| parse_zxid_name(name, prefix)).collect();
    zxids.sort_unstable();
    Ok(zxids)
}

/// What autopurge deletes: every snapshot but the `retain` newest, and every log segment
/// that only holds txns the oldest kept snapshot already covers. A segment is kept when it
/// starts after that snapshot, or when it is the last one starting at or before it (its
/// tail may follow the snapshot). Both lists ascending.
pub fn purge_plan(snapshots: &[i64], logs: &[i64], retain: usize) -> (Vec<i64>, Vec<i64>) {
    debug_assert!(snapshots.windows(2).all(|pair| pair[0] < pair[1]) && logs.windows(2).all(|pair| pair[0] < pair[1]));
    if retain == 0 || snapshots.len() <= retain {
        return (Vec::new(), Vec::new());
    }
    let deleted_snapshots = snapshots[..snapshots.len() - retain].to_vec();
    let oldest_kept = snapshots[snapshots.len() - retain];
    let covering = logs.iter().rposition(|&first| first <= oldest_kept);
    let deleted_logs = match covering {
        Some(index) => logs[..index].to_vec(),
        None => Vec::new(),
    };
    (deleted_snapshots, deleted_logs)
}

// ---- storage ----

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

/// The log segment being appended to.
struct Segment<L> {
    file: L,
    /// Where the next record goes (records in `unwritten` included).
    write_offset: u64,
    /// The file's length: preallocated in steps of `pre_alloc_bytes`, a hole until written.
    allocated: u64,
    /// Bytes from the start actually written, records or zeros: at least `write_offset`
    /// once `unwritten` is written.
    zeroed: u64,
    /// Records appended since the last write, written at once before the fsync: one
    /// write for a group commit, however many requests it holds.
    unwritten: Vec<u8>,
    /// Written since the last fsync.
    dirty: bool,
}

/// Zeros written ahead of the records, in steps of this many bytes. Writing into a hole
/// makes the filesystem allocate blocks, and fdatasync must then commit that metadata
/// too (a journal commit on ext4): on this project's machines it doubled the fsync of a
/// 1 KiB record (about 250 µs against 130). Zeros written ahead allocate the blocks in
/// one go, so only one fsync in a step pays for it.
const ZERO_FILL_STEP: u64 = 64 << 10;

/// `unwritten` keeps its capacity between group commits, up to this much.
const UNWRITTEN_CAPACITY_KEPT: usize = 4 << 20;

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

/// The log segments from `start` on, as read (a segment not read is empty).
fn log_segments<'a>(names: &'a [String], bytes: &'a [Option<Vec<u8>>], start: usize) -> Vec<LogSegment<'a>> {
    (start..names.len())
        .map(|index| LogSegment { name: &names[index], bytes: bytes[index].as_deref().unwrap_or_default() })
        .collect()
}

impl<F: FileSystem> Storage<F> {
    /// Opens a server's files and recovers its state: the newest snapshot that decodes
    /// (older ones if it is damaged), the log after it, and the epoch files. A torn or
    /// zero-padded log tail is cut; corruption before the end refuses to start.
    pub fn open(fs: Arc<F>, layout: Layout, options: StorageOptions) -> Result<(Storage<F>, Recovered), StartError> {
        let io_error = |path: &Path| {
            let path = path.to_owned();
            move |error| StartError::Io { path, error }
        };
        for dir in [&layout.snapshot_dir, &layout.log_dir] {
            fs.create_dir_all(dir).map_err(io_error(dir))?;
            // A temporary file is a snapshot or epoch write that a crash interrupted.
            for name in fs.list(dir).map_err(io_error(dir))?.iter().filter(|name| name.ends_with(TEMP_SUFFIX)) {
                tracing::info!(file = %dir.join(name).display(), "removing an interrupted write");
                fs.remove(&dir.join(name)).map_err(io_error(dir))?;
            }
        }
        let read = |path: PathBuf| fs.read(&path).map_err(io_error(&path));
        let accepted_epoch = read(layout.snapshot_dir.join(ACCEPTED_EPOCH))?;
        let current_epoch = read(layout.snapshot_dir.join(CURRENT_EPOCH))?;
        let log_zxids = list_zxids(&*fs, &layout.log_dir, LOG_PREFIX).map_err(io_error(&layout.log_dir))?;
        let log_names: Vec<String> = log_zxids.iter().map(|zxid| format!("{LOG_PREFIX}{zxid:x}")).collect();
        // Segments are read only from the one holding the first txn after the snapshot
        // being tried (zxids increase across segments), and only when that snapshot is
        // tried: a long log that autopurge never trimmed, or the older snapshots kept as
        // fallbacks, cost nothing at start-up.
        let mut log_bytes: Vec<Option<Vec<u8>>> = vec![None; log_zxids.len()];
        let load_from = |log_bytes: &mut Vec<Option<Vec<u8>>>, start: usize| -> Result<(), StartError> {
            for (index, slot) in log_bytes.iter_mut().enumerate().skip(start).filter(|(_, slot)| slot.is_none()) {
                *slot = Some(read(layout.log_dir.join(&log_names[index]))?.unwrap_or_default());
            }
            Ok(())
        };
        let first_needed =
            |snapshot_zxid: i64| log_zxids.iter().rposition(|&first| first <= snapshot_zxid).unwrap_or(0);
        let snapshot_zxids =
            list_zxids(&*fs, &layout.snapshot_dir, SNAPSHOT_PREFIX).map_err(io_error(&layout.snapshot_dir))?;
        let mut attempts: Vec<(Option<i64>, usize)> =
            snapshot_zxids.iter().rev().map(|&zxid| (Some(zxid), first_needed(zxid))).collect();
        if attempts.is_empty() {
            attempts.push((None, 0));
        }

        let corrupt = |dir: &Path, error| StartError::Corrupt { dir: dir.to_owned(), error };
        let mut problems = Vec::new();
        let mut recovered = None;
        for (attempt, &(zxid, start)) in attempts.iter().enumerate() {
            // The snapshot is read and decoded on a thread of its own while this one reads
            // and scans the log: with a million znodes and a snapshot's worth of txns after
            // them, the log took ~300 ms of a ~1.2 s start-up (two segments read, 200k
            // records checked and decoded). madsim has no threads: one after the other
            // there.
            let read_snapshot = || match zxid {
                Some(zxid) => read(layout.snapshot_path(zxid)).map(|bytes| bytes.map(Some)),
                None => Ok(Some(None)),
            };
            let decode = |snapshot: &Option<Vec<u8>>| formats::decode_snapshot_database(snapshot.as_deref());
            let read_and_scan_log = |log_bytes: &mut Vec<Option<Vec<u8>>>| {
                load_from(log_bytes, start)?;
                Ok::<_, StartError>(formats::scan_log_segments(&log_segments(&log_names, log_bytes, start)))
            };
            let (snapshot, scanned) = if crate::rt::OS_THREADS {
                std::thread::scope(|scope| {
                    let snapshot_thread = std::thread::Builder::new()
                        .name(String::from("zkd-load"))
                        .spawn_scoped(scope, || {
                            read_snapshot().map(|snapshot| snapshot.map(|bytes| (decode(&bytes), bytes)))
                        })
                        .map_err(io_error(&layout.snapshot_dir))?;
                    let scanned = read_and_scan_log(&mut log_bytes);
                    let snapshot = snapshot_thread.join().expect("decoding the snapshot panicked");
                    Ok::<_, StartError>((snapshot?, scanned?))
                })?
            } else {
                let snapshot = read_snapshot()?.map(|bytes| (decode(&bytes), bytes));
                (snapshot, read_and_scan_log(&mut log_bytes)?)
            };
            // None: the snapshot file went away since it was listed.
            let Some((database, snapshot)) = snapshot else { continue };
            let segments = log_segments(&log_names, &log_bytes, start);
            let input = RecoveryInput {
                snapshot: snapshot.as_deref(),
                log: &segments,
                accepted_epoch: accepted_epoch.as_deref(),
                current_epoch: current_epoch.as_deref(),
            };
            match formats::recover_scanned(&input, database, scanned) {
                Ok(mut result) => {
                    // Falling back to an older snapshot is safe only if it does not cut
                    // the log anywhere but its very end (which a crash can leave torn).
                    if attempt > 0 {
                        if let Some((index, _)) = result.truncate.filter(|(index, _)| index + 1 < segments.len()) {
                            problems.push(format!(
                                "the older snapshot {:#x} does not lead into log file {:?}",
                                zxid.unwrap_or_default(),
                                segments[index].name
                            ));
                            return Err(StartError::NoUsableSnapshot { dir: layout.snapshot_dir.clone(), problems });
                        }
                    }
                    result.truncate = result.truncate.map(|(index, offset)| (index + start, offset));
                    recovered = Some(result);
                    break;
                }
                Err(StorageError::SnapshotCorrupt { offset, problem }) => {
                    let path = layout.snapshot_path(zxid.unwrap_or_default());
                    tracing::warn!(file = %path.display(), offset, problem, "snapshot is damaged; trying an older one");
                    problems.push(format!("{}: byte {offset}: {problem}", path.display()));
                }
                Err(error) => return Err(corrupt(&layout.log_dir, error)),
            }
        }
        let Some(recovered) = recovered else {
            return Err(StartError::NoUsableSnapshot { dir: layout.snapshot_dir.clone(), problems });
        };

        if let Some((index, offset)) = recovered.truncate {
            // Cut the tail the core found (a torn record, zero padding or a divergent
            // leftover) and drop every later segment.
            for (later, &first_zxid) in log_zxids.iter().enumerate().skip(index) {
                let path = layout.log_path(first_zxid);
                if later == index && offset > 0 {
                    tracing::info!(file = %path.display(), offset, "cutting the log tail");
                    fs.truncate(&path, offset as u64).map_err(io_error(&path))?;
                } else {
                    tracing::info!(file = %path.display(), "removing a log segment past the valid log");
                    fs.remove(&path).map_err(io_error(&path))?;
                }
            }
            fs.sync_dir(&layout.log_dir).map_err(io_error(&layout.log_dir))?;
        }
        tracing::info!(
            snapshot_zxid = format_args!("{:#x}", recovered.database.last_processed_zxid()),
            log_txns = recovered.history.len(),
            last_zxid = format_args!("{:#x}", recovered.history.last().map_or(0, |entry| entry.zxid())),
            accepted_epoch = recovered.accepted_epoch,
            current_epoch = recovered.current_epoch,
            "recovered from disk"
        );
        let storage = Storage {
            fs,
            layout,
            options,
            segment: None,
            snapshot_writer: None,
            stats: StorageStats::default(),
            last_commit_records: 0,
        };
        Ok((storage, recovered))
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
            StorageOp::InstallSnapshot { zxid, bytes } => {
                self.finish_snapshot()?;
                self.close_segment()?;
                // A newer snapshot of a history the leader replaced must not win the next
                // recovery: it goes first (a crash right after leaves the older state,
                // which nothing acknowledged depends on).
                let newer: Vec<i64> = list_zxids(&*self.fs, &self.layout.snapshot_dir, SNAPSHOT_PREFIX)?
                    .into_iter()
                    .filter(|newer| newer > zxid)
                    .collect();
                for &newer in &newer {
                    self.fs.remove(&self.layout.snapshot_path(newer))?;
                }
                if !newer.is_empty() {
                    self.sync_dirs()?;
                }
                self.fs.write_durable(&self.layout.snapshot_path(*zxid), bytes)?;
                self.stats.other_syncs += 1;
                self.stats.snapshots_written += 1;
                // The old log is no longer this server's history.
                for first_zxid in list_zxids(&*self.fs, &self.layout.log_dir, LOG_PREFIX)? {
                    self.fs.remove(&self.layout.log_path(first_zxid))?;
                }
                self.sync_dirs()
            }
            StorageOp::WriteSnapshot(image) => {
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
                if crate::rt::OS_THREADS {
                    let writer = std::thread::Builder::new().name(String::from("zkd-snapshot")).spawn(write)?;
                    self.snapshot_writer = Some(writer);
                } else {
                    // madsim: no threads, and in-memory files cost nothing to write.
                    write()?;
                }
                self.stats.snapshots_written += 1;
                Ok(())
            }
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

    fn append(&mut self, bytes: &[u8], first_zxid: i64) -> io::Result<()> {
        let full = self.segment.as_ref().is_some_and(|segment| segment.write_offset >= self.options.segment_bytes_max);
        if full {
            self.close_segment()?;
        }
        if self.segment.is_none() {
            let path = self.layout.log_path(first_zxid);
            let file = self.fs.create_log(&path)?;
            // The new file's name must survive a crash for its records to.
            self.fs.sync_dir(&self.layout.log_dir)?;
            self.stats.other_syncs += 1;
            self.segment =
                Some(Segment { file, write_offset: 0, allocated: 0, zeroed: 0, unwritten: Vec::new(), dirty: false });
        }
        let pre_alloc = self.options.pre_alloc_bytes;
        let segment = self.segment.as_mut().expect("opened above");
        let end = segment.write_offset + bytes.len() as u64;
        if pre_alloc > 0 && end > segment.allocated {
            // Zero-filled growth in big steps: fdatasync then rarely has a file size to
            // flush, and recovery reads the zeros as padding.
            segment.allocated = end.div_ceil(pre_alloc) * pre_alloc;
            segment.file.set_len(segment.allocated)?;
        }
        segment.unwritten.extend_from_slice(bytes);
        segment.write_offset = end;
        segment.dirty = true;
        self.stats.appends += count_records(bytes);
        Ok(())
    }

    /// Writes the records appended since the last write, and zeros after them up to the
    /// next [`ZERO_FILL_STEP`] boundary the first time records reach past the zeros
    /// already written (never past the preallocated length, so the file size stays).
    fn write_unwritten(segment: &mut Segment<F::File>) -> io::Result<()> {
        if segment.unwritten.is_empty() {
            return Ok(());
        }
        let from = segment.write_offset - segment.unwritten.len() as u64;
        let end = segment.write_offset;
        if end > segment.zeroed {
            let zeros_to = end.div_ceil(ZERO_FILL_STEP).saturating_mul(ZERO_FILL_STEP).min(segment.allocated).max(end);
            segment.unwritten.resize(segment.unwritten.len() + (zeros_to - end) as usize, 0);
            segment.zeroed = zeros_to;
        }
        let written = segment.file.write_at(from, &segment.unwritten);
        segment.unwritten.clear();
        if segment.unwritten.capacity() > UNWRITTEN_CAPACITY_KEPT {
            segment.unwritten.shrink_to(UNWRITTEN_CAPACITY_KEPT);
        }
        written
    }

    fn sync_log(&mut self) -> io::Result<()> {
        if let Some(segment) = self.segment.as_mut().filter(|segment| segment.dirty) {
            Self::write_unwritten(segment)?;
            segment.file.sync_data()?;
            segment.dirty = false;
            self.stats.log_syncs += 1;
        }
        Ok(())
    }

    fn close_segment(&mut self) -> io::Result<()> {
        self.sync_log()?;
        if let Some(mut segment) = self.segment.take() {
            segment.file.forget_cached();
        }
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

    /// Waits for the background snapshot, if one is being written.
    fn finish_snapshot(&mut self) -> io::Result<()> {
        match self.snapshot_writer.take() {
            Some(writer) => writer.join().map_err(|_| io::Error::other("the snapshot writer panicked"))?,
            None => Ok(()),
        }
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

/// How many framed log records `bytes` holds (the encoder's output, so well formed).
fn count_records(bytes: &[u8]) -> u64 {
    let mut count = 0;
    let mut offset = 0;
    while let Some(length) = bytes.get(offset + 4..offset + 8) {
        let length = u32::from_le_bytes(length.try_into().expect("four bytes")) as usize;
        offset += formats::LOG_RECORD_HEADER_BYTES + length;
        count += 1;
    }
    count
}

// ---- the storage thread ----

/// What the storage thread tells the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageReport {
    /// Every request up to this token is durable.
    Persisted(PersistToken),
    /// A request could not be made durable; nothing after it will be.
    Failed { token: PersistToken, reason: String },
}

/// How long a group commit waits, once a request is in, for more writes to join it before
/// the flush. The wait follows the load: in proportion to the log records the previous
/// flush carried, the whole `wait_max` for [`COMMIT_WAIT_FULL_RECORDS`] or more, and none
/// after a flush of a lone record (or of none), so a write without company is not held
/// back while many writes in flight fill fewer, larger flushes.
pub fn commit_wait(last_records: u64, wait_max: Duration) -> Duration {
    if last_records < 2 {
        return Duration::ZERO;
    }
    let share = last_records.min(COMMIT_WAIT_FULL_RECORDS) as u32;
    wait_max * share / COMMIT_WAIT_FULL_RECORDS as u32
}

pub(crate) enum Command {
    Persist(PersistRequest),
    Stop,
}

/// The dedicated thread that owns a [`Storage`]: requests go in through [`StorageThread::submit`],
/// reports come out through the callback given to [`StorageThread::spawn`].
pub struct StorageThread {
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<StorageStats>>,
}

impl StorageThread {
    /// Starts the thread. `purge_interval` runs autopurge that often (`None`: never).
    /// `stats` is updated after every group commit.
    pub fn spawn<F: FileSystem>(
        storage: Storage<F>,
        purge_interval: Option<Duration>,
        stats: Arc<Mutex<StorageStats>>,
        report: impl FnMut(StorageReport) + Send + 'static,
    ) -> io::Result<StorageThread> {
        let (commands, receiver) = mpsc::channel();
        StorageThread::spawn_with(storage, purge_interval, stats, (commands, receiver), report, std::thread::sleep)
    }

    /// [`StorageThread::spawn`] on a given queue, waiting out [`Storage::commit_wait`] with
    /// `sleep`.
    fn spawn_with<F: FileSystem>(
        mut storage: Storage<F>,
        purge_interval: Option<Duration>,
        stats: Arc<Mutex<StorageStats>>,
        (commands, receiver): (mpsc::Sender<Command>, mpsc::Receiver<Command>),
        mut report: impl FnMut(StorageReport) + Send + 'static,
        mut sleep: impl FnMut(Duration) + Send + 'static,
    ) -> io::Result<StorageThread> {
        let thread = std::thread::Builder::new().name(String::from("zkd-storage")).spawn(move || {
            run_storage(&mut storage, purge_interval, &stats, &receiver, &mut report, &mut sleep);
            if let Err(error) = storage.close() {
                tracing::error!(%error, "closing storage failed");
            }
            storage.stats()
        })?;
        Ok(StorageThread { commands, thread: Some(thread) })
    }

    /// Queues a request. Requests are carried out in the order submitted.
    pub fn submit(&self, request: PersistRequest) {
        // The thread only goes away after `stop`, or after a failure it has reported.
        let _ = self.commands.send(Command::Persist(request));
    }

    /// Finishes every queued request, stops the thread and returns its counters.
    pub fn stop(mut self) -> StorageStats {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> StorageStats {
        let _ = self.commands.send(Command::Stop);
        self.thread.take().map(|thread| thread.join().unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for StorageThread {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn run_storage<F: FileSystem>(
    storage: &mut Storage<F>,
    purge_interval: Option<Duration>,
    stats: &Mutex<StorageStats>,
    receiver: &mpsc::Receiver<Command>,
    report_to: &mut impl FnMut(StorageReport),
    sleep: &mut impl FnMut(Duration),
) {
    let mut next_purge = purge_interval.map(|interval| std::time::Instant::now() + interval);
    loop {
        let first = match next_purge {
            Some(at) => match receiver.recv_timeout(at.saturating_duration_since(std::time::Instant::now())) {
                Ok(command) => command,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(error) = storage.purge() {
                        tracing::warn!(%error, "autopurge failed");
                    }
                    next_purge = purge_interval.map(|interval| std::time::Instant::now() + interval);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
            None => match receiver.recv() {
                Ok(command) => command,
                Err(_) => return,
            },
        };
        let wait = storage.commit_wait();
        if !wait.is_zero() {
            sleep(wait);
        }
        let (batch, stop) = take_batch(first, || receiver.try_recv().ok());
        if let Some(report) = commit_batch(storage, &batch, stats) {
            let failed = matches!(report, StorageReport::Failed { .. });
            report_to(report);
            if failed {
                return;
            }
        }
        if stop {
            return;
        }
    }
}

/// A group commit's requests: `first` and whatever `next` has queued behind it, up to
/// [`BATCH_REQUESTS_MAX`]; and whether a stop came among them.
pub(crate) fn take_batch(first: Command, mut next: impl FnMut() -> Option<Command>) -> (Vec<PersistRequest>, bool) {
    let mut batch = Vec::new();
    let mut command = Some(first);
    while let Some(this) = command.take() {
        match this {
            Command::Persist(request) => batch.push(request),
            Command::Stop => return (batch, true),
        }
        if batch.len() < BATCH_REQUESTS_MAX {
            command = next();
        }
    }
    (batch, false)
}

/// Carries out a batch with one group commit; returns the report for the node (none for
/// an empty batch). After a failure nothing more may be persisted.
pub(crate) fn commit_batch<F: FileSystem>(
    storage: &mut Storage<F>,
    batch: &[PersistRequest],
    stats: &Mutex<StorageStats>,
) -> Option<StorageReport> {
    let last = batch.last()?;
    let persisted = storage.persist(batch);
    *stats.lock().unwrap() = storage.stats();
    Some(match persisted {
        Ok(()) => StorageReport::Persisted(last.token),
        Err(error) => {
            let token = batch[0].token;
            tracing::error!(%error, token = token.0, "storage failed; the server stops");
            StorageReport::Failed { token, reason: error.to_string() }
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use zk_core::storage::{encode_log_records, LogEntry};
    use zk_core::txn::{Txn, TxnHeader};

    /// A fresh directory under the system's temporary directory.
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = format!("zkd-test-{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = std::env::temp_dir().join(unique);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entry(prev_zxid: i64, zxid: i64) -> LogEntry {
        LogEntry {
            prev_zxid,
            header: TxnHeader { session_id: 1, cxid: zxid as i32, zxid, time_ms: 5 },
            txn: Txn::SetData { path: "/a".into(), data: Some(vec![zxid as u8; 8]), version: 0 },
        }
    }

    fn append(token: u64, prev_zxid: i64, zxids: &[i64]) -> PersistRequest {
        let mut entries = Vec::new();
        let mut prev = prev_zxid;
        for &zxid in zxids {
            entries.push(entry(prev, zxid));
            prev = zxid;
        }
        let bytes = encode_log_records(&entries);
        PersistRequest {
            token: PersistToken(token),
            ops: vec![StorageOp::AppendLog { bytes, first_zxid: zxids[0], last_zxid: *zxids.last().unwrap() }],
        }
    }

    fn options(pre_alloc_bytes: u64) -> StorageOptions {
        StorageOptions { pre_alloc_bytes, snap_retain_count: 3, ..StorageOptions::default() }
    }

    fn layout(dir: &Path) -> Layout {
        Layout::new(&dir.join("data"), &dir.join("log"))
    }

    fn zxids(recovered: &Recovered) -> Vec<i64> {
        recovered.history.iter().map(LogEntry::zxid).collect()
    }

    fn open_real(dir: &Path, pre_alloc: u64) -> Result<(Storage<RealFileSystem>, Recovered), StartError> {
        Storage::open(Arc::new(RealFileSystem), layout(dir), options(pre_alloc))
    }

    #[test]
    fn files_round_trip_through_a_restart() {
        let dir = temp_dir("round-trip");
        let (mut storage, recovered) = open_real(&dir, 4096).unwrap();
        assert!(recovered.history.is_empty());
        storage.persist(&[append(1, 0, &[1, 2]), append(2, 2, &[3])]).unwrap();
        storage
            .persist(&[PersistRequest {
                token: PersistToken(3),
                ops: vec![StorageOp::AcceptedEpoch(4), StorageOp::CurrentEpoch(3)],
            }])
            .unwrap();
        storage.close().unwrap();
        drop(storage);
        let segment = dir.join("log/zkd/log.1");
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), 4096, "preallocated with zeros");
        let (mut storage, recovered) = open_real(&dir, 4096).unwrap();
        assert_eq!(zxids(&recovered), [1, 2, 3]);
        assert_eq!((recovered.accepted_epoch, recovered.current_epoch), (4, 3));
        assert_eq!(recovered.truncate.map(|(index, _)| index), Some(0), "the padding is cut");
        assert!(std::fs::metadata(&segment).unwrap().len() < 4096);
        // Appends after a restart go to a new segment named after their first zxid.
        storage.persist(&[append(1, 3, &[4])]).unwrap();
        drop(storage);
        assert!(dir.join("log/zkd/log.4").exists());
        let (_, recovered) = open_real(&dir, 4096).unwrap();
        assert_eq!(zxids(&recovered), [1, 2, 3, 4]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_cut() {
        let dir = temp_dir("torn-tail");
        let (mut storage, _) = open_real(&dir, 0).unwrap();
        storage.persist(&[append(1, 0, &[1, 2])]).unwrap();
        drop(storage);
        let segment = dir.join("log/zkd/log.1");
        let whole = std::fs::read(&segment).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(&encode_log_records(&[entry(2, 3)])[..10]);
        std::fs::write(&segment, &torn).unwrap();
        let (_, recovered) = open_real(&dir, 0).unwrap();
        assert_eq!(zxids(&recovered), [1, 2]);
        assert_eq!(std::fs::read(&segment).unwrap(), whole, "the torn record is gone from the file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_middle_refuses_to_start_naming_the_file_and_offset() {
        let dir = temp_dir("corrupt-middle");
        let (mut storage, _) = open_real(&dir, 0).unwrap();
        storage.persist(&[append(1, 0, &[1, 2, 3])]).unwrap();
        drop(storage);
        let segment = dir.join("log/zkd/log.1");
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[14] ^= 0xff;
        std::fs::write(&segment, &bytes).unwrap();
        let error = open_real(&dir, 0).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("log file \"log.1\" is corrupt at byte 0"), "{message}");
        assert!(message.contains("refusing to start"), "{message}");
        assert_eq!(std::fs::read(&segment).unwrap(), bytes, "nothing was cut");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_wait_for_company_follows_the_last_flush() {
        let max = Duration::from_micros(500);
        assert_eq!(commit_wait(0, max), Duration::ZERO, "nothing flushed yet");
        assert_eq!(commit_wait(1, max), Duration::ZERO, "a lone write is not held back");
        assert_eq!(commit_wait(2, max), Duration::from_micros(40));
        assert_eq!(commit_wait(COMMIT_WAIT_FULL_RECORDS - 1, max), Duration::from_micros(480));
        assert_eq!(commit_wait(COMMIT_WAIT_FULL_RECORDS, max), max);
        assert_eq!(commit_wait(10_000, max), max);
        assert_eq!(commit_wait(10_000, Duration::ZERO), Duration::ZERO, "waiting off");
    }

    #[test]
    fn a_busy_flush_makes_the_next_one_wait_and_gather_what_arrives_meanwhile() {
        let fs = Arc::new(MemoryFileSystem::default());
        let max = Duration::from_millis(2);
        let options = StorageOptions { commit_wait_max: max, ..options(1 << 16) };
        let (storage, _) = Storage::open(fs.clone(), layout(Path::new("/w")), options).unwrap();
        let (commands, receiver) = mpsc::channel();
        // A first flush of 30 records, queued before the thread starts.
        let thirty: Vec<i64> = (1..=30).collect();
        commands.send(Command::Persist(append(1, 0, &thirty))).unwrap();
        let (reports_tx, reports) = mpsc::channel();
        let report = move |report| reports_tx.send(report).unwrap();
        // The wait: recorded, and the first time a request arrives during it.
        let waits = Arc::new(Mutex::new(Vec::new()));
        let sleep = {
            let (waits, commands) = (waits.clone(), commands.clone());
            move |wait: Duration| {
                let mut waits = waits.lock().unwrap();
                if waits.is_empty() {
                    commands.send(Command::Persist(append(3, 31, &[32]))).unwrap();
                }
                waits.push(wait);
            }
        };
        let shared = Arc::new(Mutex::new(StorageStats::default()));
        let thread =
            StorageThread::spawn_with(storage, None, shared, (commands.clone(), receiver), report, sleep).unwrap();
        let next_report = || reports.recv_timeout(Duration::from_secs(10)).expect("a report");
        assert_eq!(next_report(), StorageReport::Persisted(PersistToken(1)));
        // After 30 records the next flush waits the whole time, and the request that
        // arrives meanwhile shares it.
        commands.send(Command::Persist(append(2, 30, &[31]))).unwrap();
        assert_eq!(next_report(), StorageReport::Persisted(PersistToken(3)));
        // After those two records, a share of it; after a lone record, none.
        commands.send(Command::Persist(append(4, 32, &[33]))).unwrap();
        assert_eq!(next_report(), StorageReport::Persisted(PersistToken(4)));
        commands.send(Command::Persist(append(5, 33, &[34]))).unwrap();
        assert_eq!(next_report(), StorageReport::Persisted(PersistToken(5)));
        let stats = thread.stop();
        assert_eq!(*waits.lock().unwrap(), vec![max, max * 2 / COMMIT_WAIT_FULL_RECORDS as u32]);
        assert_eq!((stats.batches, stats.requests, stats.appends, stats.log_syncs), (4, 5, 34, 4));
    }

    #[test]
    fn group_commit_makes_many_requests_durable_with_one_fsync() {
        let fs = Arc::new(MemoryFileSystem::default());
        let (storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), options(1 << 16)).unwrap();
        // Queue 200 requests before the thread starts: it takes them all as one batch.
        let (commands, receiver) = mpsc::channel();
        let mut prev = 0;
        for token in 1..=200 {
            commands.send(Command::Persist(append(token, prev, &[token as i64]))).unwrap();
            prev = token as i64;
        }
        let (reports_tx, reports) = mpsc::channel();
        let shared = Arc::new(Mutex::new(StorageStats::default()));
        let report = move |report| reports_tx.send(report).unwrap();
        let thread =
            StorageThread::spawn_with(storage, None, shared.clone(), (commands, receiver), report, std::thread::sleep)
                .unwrap();
        assert_eq!(reports.recv().unwrap(), StorageReport::Persisted(PersistToken(200)));
        let stats = thread.stop();
        assert_eq!((stats.batches, stats.requests, stats.appends), (1, 200, 200));
        assert_eq!(stats.log_syncs, 1);
        assert_eq!(count_records(&encode_log_records(&[entry(0, 1), entry(1, 2), entry(2, 3)])), 3);
        assert_eq!(fs.log_syncs(), 1, "one fdatasync for 200 requests");
        assert_eq!(*shared.lock().unwrap(), stats);
        // And what was reported is durable.
        fs.crash();
        let (_, recovered) = Storage::open(fs, layout(Path::new("/m")), options(1 << 16)).unwrap();
        assert_eq!(recovered.history.len(), 200);
    }

    #[test]
    fn a_group_commit_is_one_write_and_zeros_are_written_ahead_of_the_records() {
        fn bytes(request: &PersistRequest) -> u64 {
            match &request.ops[0] {
                StorageOp::AppendLog { bytes, .. } => bytes.len() as u64,
                _ => unreachable!(),
            }
        }
        let fs = Arc::new(MemoryFileSystem::default());
        let step = ZERO_FILL_STEP;
        // Preallocation of 2.5 steps: the zeros stop at the file's length.
        let pre_alloc = step * 5 / 2;
        let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/z")), options(pre_alloc)).unwrap();
        storage.persist(&[append(1, 0, &[1]), append(2, 1, &[2, 3]), append(3, 3, &[4])]).unwrap();
        assert_eq!(fs.log_writes(), vec![(0, step)], "four records and zeros to the step, in one write");
        let mut end: u64 = [append(1, 0, &[1]), append(2, 1, &[2, 3]), append(3, 3, &[4])].iter().map(bytes).sum();
        let mut zxid = 4;
        // Batches write their records only, but the one that crosses into the next step
        // zeros it too; the last step stops at the preallocated length.
        let mut zeroed_to = Vec::new();
        let mut records_only = 0;
        while end + 64 <= pre_alloc {
            let request = append(10 + zxid as u64, zxid, &[zxid + 1]);
            let len = bytes(&request);
            storage.persist(&[request]).unwrap();
            let &(offset, written) = fs.log_writes().last().unwrap();
            assert_eq!(offset, end);
            if written == len {
                records_only += 1;
            } else {
                zeroed_to.push(offset + written);
            }
            end += len;
            zxid += 1;
        }
        assert_eq!(zeroed_to, vec![2 * step, pre_alloc]);
        assert!(records_only > 1000, "{records_only}");
        assert_eq!(fs.log_syncs(), fs.log_writes().len() as u64, "one write per fsync");
        // Past the preallocation: the file grows by another preallocation, zeroed a step
        // at a time again.
        while end <= pre_alloc {
            let request = append(10 + zxid as u64, zxid, &[zxid + 1]);
            end += bytes(&request);
            storage.persist(&[request]).unwrap();
            zxid += 1;
        }
        assert_eq!(fs.log_writes().last().map(|(offset, len)| offset + len), Some(pre_alloc.div_ceil(step) * step));
        // The zeros are padding to recovery: every record comes back.
        fs.crash();
        let (_, recovered) = Storage::open(fs, layout(Path::new("/z")), options(pre_alloc)).unwrap();
        assert_eq!(zxids(&recovered), (1..=zxid).collect::<Vec<_>>());
    }

    #[test]
    fn what_was_not_fsynced_is_lost_in_a_crash_and_the_rest_recovers() {
        let fs = Arc::new(MemoryFileSystem::default());
        let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), options(0)).unwrap();
        storage.persist(&[append(1, 0, &[1, 2])]).unwrap();
        // Written, never fsynced: a crash drops it.
        storage.append(&encode_log_records(&[entry(2, 3)]), 3).unwrap();
        fs.crash();
        let (_, recovered) = Storage::open(fs, layout(Path::new("/m")), options(0)).unwrap();
        assert_eq!(zxids(&recovered), [1, 2]);
    }

    #[test]
    fn epoch_writes_come_after_the_appends_before_them() {
        let fs = Arc::new(MemoryFileSystem::default());
        let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), options(0)).unwrap();
        let mut request = append(1, 0, &[1]);
        request.ops.push(StorageOp::CurrentEpoch(1));
        storage.persist(&[request]).unwrap();
        // The append was fsynced before the epoch file was written, and nothing was left
        // dirty for the end of the batch.
        assert_eq!(storage.stats().log_syncs, 1);
    }

    #[test]
    fn a_closed_segment_leaves_the_page_cache_only_once_it_is_durable() {
        let fs = Arc::new(MemoryFileSystem::default());
        let mut small = options(0);
        small.segment_bytes_max = 1;
        let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/f")), small).unwrap();
        storage.persist(&[append(1, 0, &[1, 2]), append(2, 2, &[3, 4])]).unwrap();
        assert_eq!(
            fs.log_forgotten(),
            vec![(PathBuf::from("/f/log/zkd").join(format!("{LOG_PREFIX}1")), true)],
            "the rolled-over segment, once fsynced; not the open one"
        );
        storage.persist(&[append(3, 4, &[5])]).unwrap();
        storage.close().unwrap();
        let segment = |first: u64| (PathBuf::from("/f/log/zkd").join(format!("{LOG_PREFIX}{first:x}")), true);
        // The open segment stays cached through a clean stop: recovery reads it first.
        assert_eq!(fs.log_forgotten(), vec![segment(1), segment(3)]);
    }

    #[test]
    fn real_segments_are_let_out_of_the_cache_without_losing_a_record() {
        let dir = temp_dir("forget");
        let mut small = options(1 << 20);
        small.segment_bytes_max = 1;
        let (mut storage, _) = Storage::open(Arc::new(RealFileSystem), layout(&dir), small.clone()).unwrap();
        storage.persist(&[append(1, 0, &[1, 2]), append(2, 2, &[3]), append(3, 3, &[4, 5])]).unwrap();
        storage.close().unwrap();
        let (_, recovered) = Storage::open(Arc::new(RealFileSystem), layout(&dir), small).unwrap();
        assert_eq!(zxids(&recovered), [1, 2, 3, 4, 5]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn truncation_and_snapshot_install_rewrite_the_log() {
        let fs = Arc::new(MemoryFileSystem::default());
        let mut small = options(0);
        small.segment_bytes_max = 1;
        let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), small.clone()).unwrap();
        storage.persist(&[append(1, 0, &[1, 2]), append(2, 2, &[3, 4]), append(3, 4, &[5])]).unwrap();
        assert_eq!(list_zxids(&*fs, Path::new("/m/log/zkd"), LOG_PREFIX).unwrap(), [1, 3, 5], "segments roll");
        storage
            .persist(&[
                PersistRequest { token: PersistToken(4), ops: vec![StorageOp::TruncateLog { after_zxid: 3 }] },
                append(5, 3, &[7]),
            ])
            .unwrap();
        let (mut storage, recovered) = Storage::open(fs.clone(), layout(Path::new("/m")), small.clone()).unwrap();
        assert_eq!(zxids(&recovered), [1, 2, 3, 7]);

        let snapshot = formats::encode_snapshot(&zk_core::database::Database::from_parts(
            zk_core::tree::DataTree::new(),
            BTreeMap::new(),
            20,
            16,
        ));
        storage
            .persist(&[
                PersistRequest {
                    token: PersistToken(6),
                    ops: vec![StorageOp::InstallSnapshot { zxid: 20, bytes: snapshot }],
                },
                append(7, 20, &[21]),
            ])
            .unwrap();
        let (_, recovered) = Storage::open(fs.clone(), layout(Path::new("/m")), small).unwrap();
        assert_eq!(recovered.database.last_processed_zxid(), 20);
        assert_eq!(zxids(&recovered), [21]);
        assert_eq!(list_zxids(&*fs, Path::new("/m/log/zkd"), LOG_PREFIX).unwrap(), [21]);
    }

    #[test]
    fn a_damaged_newest_snapshot_falls_back_to_an_older_one() {
        let fs = Arc::new(MemoryFileSystem::default());
        let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), options(0)).unwrap();
        let database_at =
            |zxid| zk_core::database::Database::from_parts(zk_core::tree::DataTree::new(), BTreeMap::new(), zxid, 16);
        storage.persist(&[append(1, 0, &[1, 2])]).unwrap();
        let snapshot = |token, zxid| PersistRequest {
            token: PersistToken(token),
            ops: vec![StorageOp::WriteSnapshot(formats::SnapshotImage::of(&database_at(zxid)))],
        };
        storage.persist(&[snapshot(2, 2), append(3, 2, &[3]), snapshot(4, 3), append(5, 3, &[4])]).unwrap();
        storage.close().unwrap();
        let newest = Path::new("/m/data/zkd/snapshot.3");
        fs.put(newest, b"ZKDS garbage".to_vec());
        let (_, recovered) = Storage::open(fs.clone(), layout(Path::new("/m")), options(0)).unwrap();
        assert_eq!(recovered.database.last_processed_zxid(), 2);
        assert_eq!(zxids(&recovered), [3, 4]);
        // With every snapshot damaged, zkd refuses rather than start from a partial log.
        fs.put(Path::new("/m/data/zkd/snapshot.2"), b"bad".to_vec());
        let error = Storage::open(fs, layout(Path::new("/m")), options(0)).unwrap_err();
        assert!(matches!(error, StartError::NoUsableSnapshot { ref problems, .. } if problems.len() == 2), "{error}");
    }

    #[test]
    fn segments_the_snapshot_covers_are_not_read_at_start_up() {
        let fs = Arc::new(MemoryFileSystem::default());
        let mut small = options(0);
        small.segment_bytes_max = 1;
        let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), small.clone()).unwrap();
        let image = formats::SnapshotImage::of(&zk_core::database::Database::from_parts(
            zk_core::tree::DataTree::new(),
            BTreeMap::new(),
            3,
            16,
        ));
        storage
            .persist(&[
                append(1, 0, &[1]),
                append(2, 1, &[2]),
                append(3, 2, &[3]),
                PersistRequest { token: PersistToken(4), ops: vec![StorageOp::WriteSnapshot(image)] },
                append(5, 3, &[4]),
            ])
            .unwrap();
        storage.close().unwrap();
        // Damage in log.1 (entirely before the snapshot) is never looked at; log.3 holds the
        // snapshot's own txn and is read, log.4 the txn after it.
        fs.put(Path::new("/m/log/zkd/log.1"), b"ZKDL garbage ZKDL".to_vec());
        let (_, recovered) = Storage::open(fs, layout(Path::new("/m")), small).unwrap();
        assert_eq!((recovered.database.last_processed_zxid(), zxids(&recovered)), (3, vec![4]));
    }

    #[test]
    fn purge_keeps_the_newest_snapshots_and_the_logs_they_need() {
        assert_eq!(purge_plan(&[10, 20, 30], &[1, 11, 25], 3), (vec![], vec![]));
        assert_eq!(purge_plan(&[10, 20, 30, 40], &[1, 11, 25, 35], 3), (vec![10], vec![1]));
        // Segment 11 covers txns after snapshot 20 (up to 24), so it stays.
        assert_eq!(purge_plan(&[10, 20, 30, 40, 50], &[1, 11, 25, 35], 3), (vec![10, 20], vec![1, 11]));
        assert_eq!(purge_plan(&[10, 20, 30, 40], &[15, 35], 3), (vec![10], vec![]));
        assert_eq!(purge_plan(&[10, 20, 30, 40], &[21], 3), (vec![10], vec![]));

        let fs = Arc::new(MemoryFileSystem::default());
        let mut few = options(0);
        few.snap_retain_count = 3;
        let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), few.clone()).unwrap();
        let mut prev = 0;
        for zxid in 1..=5 {
            let image = formats::SnapshotImage::of(&zk_core::database::Database::from_parts(
                zk_core::tree::DataTree::new(),
                BTreeMap::new(),
                zxid,
                16,
            ));
            storage
                .persist(&[
                    append(zxid as u64 * 2, prev, &[zxid]),
                    PersistRequest {
                        token: PersistToken(zxid as u64 * 2 + 1),
                        ops: vec![StorageOp::WriteSnapshot(image)],
                    },
                ])
                .unwrap();
            prev = zxid;
        }
        storage.close().unwrap();
        assert_eq!(storage.purge().unwrap(), 4);
        assert_eq!(list_zxids(&*fs, Path::new("/m/data/zkd"), SNAPSHOT_PREFIX).unwrap(), [3, 4, 5]);
        assert_eq!(list_zxids(&*fs, Path::new("/m/log/zkd"), LOG_PREFIX).unwrap(), [3, 4, 5]);
        let (_, recovered) = Storage::open(fs, layout(Path::new("/m")), few).unwrap();
        assert_eq!(recovered.database.last_processed_zxid(), 5);
    }

    #[test]
    fn names_parse_only_when_exact() {
        assert_eq!(parse_zxid_name("log.1a", LOG_PREFIX), Some(0x1a));
        assert_eq!(parse_zxid_name("log.100000001", LOG_PREFIX), Some(0x1_0000_0001));
        for bad in ["log.", "log.1.tmp", "log.xyz", "snapshot.1", "log.+1"] {
            assert_eq!(parse_zxid_name(bad, LOG_PREFIX), None, "{bad}");
        }
    }
}
