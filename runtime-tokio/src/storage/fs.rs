//! The file system behind a trait: the few operations storage needs, on real files
//! ([`RealFileSystem`]) or in memory ([`MemoryFileSystem`], which remembers what was made
//! durable, for tests and madsim).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

/// The suffix of the temporary file a durable write goes to before its rename: one left
/// behind is a write a crash interrupted.
pub(super) const TEMP_SUFFIX: &str = ".tmp";

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
