//! The storage thread: the request loop that owns a [`Storage`], takes every request
//! queued as one batch and makes it durable with one fsync (group commit), waiting a
//! little for company when the last batch was busy; autopurge on a timer.

use std::io;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use zk_core::node::{PersistRequest, PersistToken};

use super::fs::FileSystem;
use super::{Storage, StorageStats};

/// The most requests one group commit takes, so one batch cannot grow without bound.
pub const BATCH_REQUESTS_MAX: usize = 10_000;
/// A group commit that carried this many log records earns the next one the whole
/// [`StorageOptions::commit_wait_max`]; fewer, a share of it ([`commit_wait`]).
pub const COMMIT_WAIT_FULL_RECORDS: u64 = 25;

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

/// What the storage thread (or the madsim task in its place) is asked to do.
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
    pub(super) fn spawn_with<F: FileSystem>(
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
