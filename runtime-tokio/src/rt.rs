//! What differs between the production runtime and madsim: the module with the
//! `cfg(madsim)` switches (storage has one more, `OS_THREADS`, for its own threads).
//!
//! Built normally, `tokio` is tokio: storage runs on a dedicated OS thread (its fsyncs
//! never stall the runtime), snapshots are written on threads of their own, and zkd stops
//! on SIGTERM or SIGINT.
//!
//! Built with `RUSTFLAGS="--cfg madsim"`, `tokio` is madsim-tokio: sockets, time and tasks
//! are simulated, deterministically, per simulated node. madsim allows no OS threads, so
//! storage is a task on the server's node and snapshots are written in line; the files
//! are whatever [`FileSystem`](crate::storage::FileSystem) the caller of
//! `server::start_with_fs` gives (the in-memory one: madsim does
//! not simulate disks, and disk faults are zk-sim's job). Everything else (framing,
//! timers, the node task, reconnects) is the same code in both.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use zk_core::node::PersistRequest;

use crate::input::Input;
use crate::storage::{FileSystem, Storage, StorageStats};

/// A connection's read and write halves, to read and write at once.
pub(crate) fn split(
    stream: TcpStream,
) -> (impl AsyncRead + Unpin + Send + 'static, impl AsyncWrite + Unpin + Send + 'static) {
    // madsim's stream has no `into_split`.
    #[cfg(madsim)]
    return tokio::io::split(stream);
    #[cfg(not(madsim))]
    return stream.into_split();
}

/// Runs blocking work (opening storage) off the runtime's threads; in line under madsim.
pub(crate) async fn blocking<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> Result<R, String> {
    #[cfg(madsim)]
    return Ok(work());
    #[cfg(not(madsim))]
    return tokio::task::spawn_blocking(work).await.map_err(|error| error.to_string());
}

/// Where a server's storage runs: [`StorageThread`](crate::storage::StorageThread) in
/// production, a task under madsim. Reports go to the node task as
/// [`Input::Storage`].
pub(crate) struct StorageWorker {
    #[cfg(not(madsim))]
    thread: crate::storage::StorageThread,
    #[cfg(madsim)]
    commands: mpsc::UnboundedSender<crate::storage::Command>,
    #[cfg(madsim)]
    task: tokio::task::JoinHandle<StorageStats>,
}

impl StorageWorker {
    /// Starts storage. `purge_interval` runs autopurge that often (`None`: never); `stats`
    /// is updated after every group commit.
    pub(crate) fn spawn<F: FileSystem>(
        storage: Storage<F>,
        purge_interval: Option<Duration>,
        stats: Arc<Mutex<StorageStats>>,
        inputs: mpsc::Sender<Input>,
    ) -> io::Result<StorageWorker> {
        #[cfg(not(madsim))]
        {
            let thread = crate::storage::StorageThread::spawn(storage, purge_interval, stats, move |report| {
                // The node task may be gone during shutdown; the report no longer matters then.
                let _ = inputs.blocking_send(Input::Storage(report));
            })?;
            Ok(StorageWorker { thread })
        }
        #[cfg(madsim)]
        {
            let (commands, receiver) = mpsc::unbounded_channel();
            let task = tokio::spawn(sim::run_storage(storage, purge_interval, stats, receiver, inputs));
            Ok(StorageWorker { commands, task })
        }
    }

    /// Queues a request. Requests are carried out in the order submitted.
    pub(crate) fn submit(&self, request: PersistRequest) {
        #[cfg(not(madsim))]
        self.thread.submit(request);
        #[cfg(madsim)]
        let _ = self.commands.send(crate::storage::Command::Persist(request));
    }

    /// Finishes every queued request, stops storage and returns its counters.
    pub(crate) async fn stop(self) -> StorageStats {
        #[cfg(not(madsim))]
        {
            let thread = self.thread;
            tokio::task::spawn_blocking(move || thread.stop()).await.unwrap_or_default()
        }
        #[cfg(madsim)]
        {
            let _ = self.commands.send(crate::storage::Command::Stop);
            self.task.await.unwrap_or_default()
        }
    }
}

/// Waits for the signal to shut down gracefully: SIGTERM or SIGINT in production, the
/// simulated ctrl-c under madsim. Returns the signal's name.
pub struct ShutdownSignals {
    #[cfg(not(madsim))]
    terminate: tokio::signal::unix::Signal,
    #[cfg(not(madsim))]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Installs the handlers (call inside the runtime).
    pub fn new() -> io::Result<ShutdownSignals> {
        #[cfg(not(madsim))]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(ShutdownSignals {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(madsim)]
        Ok(ShutdownSignals {})
    }

    pub async fn recv(&mut self) -> &'static str {
        #[cfg(not(madsim))]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "SIGINT",
            }
        }
        #[cfg(madsim)]
        {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(madsim)]
mod sim {
    use super::*;
    use crate::storage::{self, Command};

    /// The storage thread's loop ([`storage::StorageThread`]) as a task: the same batches
    /// (group commit, with its wait for company), purges and reports.
    pub(super) async fn run_storage<F: FileSystem>(
        mut storage: Storage<F>,
        purge_interval: Option<Duration>,
        stats: Arc<Mutex<StorageStats>>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        inputs: mpsc::Sender<Input>,
    ) -> StorageStats {
        let mut next_purge = purge_interval.map(|interval| tokio::time::Instant::now() + interval);
        loop {
            let purge = async {
                match next_purge {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let first = tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => command,
                    None => break,
                },
                _ = purge => {
                    if let Err(error) = storage.purge() {
                        tracing::warn!(%error, "autopurge failed");
                    }
                    next_purge = purge_interval.map(|interval| tokio::time::Instant::now() + interval);
                    continue;
                }
            };
            let wait = storage.commit_wait();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let (batch, stop) = storage::take_batch(first, || commands.try_recv().ok());
            if let Some(report) = storage::commit_batch(&mut storage, &batch, &stats) {
                let failed = matches!(report, storage::StorageReport::Failed { .. });
                let _ = inputs.send(Input::Storage(report)).await;
                if failed {
                    break;
                }
            }
            if stop {
                break;
            }
        }
        if let Err(error) = storage.close() {
            tracing::error!(%error, "closing storage failed");
        }
        storage.stats()
    }
}
