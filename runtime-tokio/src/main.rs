//! zkd: a ZooKeeper-compatible server.
//!
//! `zkd [-Dname=value ...] [zoo.cfg]`. Without an argument it serves standalone on 127.0.0.1:2181 with its
//! data in `./zkd-data`. Logs go to stderr, at the level RUST_LOG gives (info by default).
//! SIGTERM or SIGINT shuts it down gracefully.

// The daemon's entry point owns the process: its clock, signals and files.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use zk_runtime_tokio::config::{properties, Config};
use zk_runtime_tokio::rt::ShutdownSignals;

/// jemalloc rather than glibc's malloc. Measured with 1M znodes of 100 B and zk-bench
/// (same run, same machine): RSS 400 MB against glibc's 446 MB (glibc keeps the memory a
/// snapshot's copy-on-write frees scattered in its arenas), populate 54k against 40k
/// creates/s, multi of 5 setData ~+13% (perf: malloc and free were 40% of its CPU). mimalloc
/// was faster still on multi but held 610-880 MB for the same tree.
#[cfg(not(madsim))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str = "usage: zkd [-Dname=value ...] [zoo.cfg]

Without a file, zkd serves standalone on 127.0.0.1:2181 with data in ./zkd-data.
-Dname=value sets one of ZooKeeper's system properties, as do SERVER_JVMFLAGS and JVMFLAGS;
zoo.cfg wins where both set a key. docs/CONFIG.md lists every key and property.";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let properties =
        properties::from_environment(|variable| std::env::var(variable).ok()).and_then(|mut properties| {
            let (given, rest) = properties::from_arguments(&arguments)?;
            properties.extend(given);
            Ok((properties, rest))
        });
    let (properties, rest) = match properties {
        Ok(found) => found,
        Err(problem) => {
            tracing::error!("system properties: {problem}");
            return ExitCode::from(2);
        }
    };
    let config = match rest.as_slice() {
        [] => Config::from_sources(None, &properties),
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [path] if !path.starts_with('-') => Config::load(&PathBuf::from(path), &properties),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("configuration: {error}");
            return ExitCode::FAILURE;
        }
    };
    if !config.data_dir_autocreate && !config.data_dir.is_dir() {
        tracing::error!(
            dir = %config.data_dir.display(),
            "the data directory is missing and zookeeper.datadir.autocreate is false: create it by hand"
        );
        return ExitCode::FAILURE;
    }
    if let Err(error) = std::fs::create_dir_all(&config.data_dir) {
        tracing::error!(dir = %config.data_dir.display(), %error, "cannot create the data directory");
        return ExitCode::FAILURE;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut builder = runtime_builder(std::env::var_os("TOKIO_WORKER_THREADS").as_deref(), cores);
    let runtime = match builder.enable_all().thread_name("zkd").build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime: one core is left to the storage thread, which spends its time writing and
/// syncing the log; the node is one task whatever the count, and the runtime's threads only
/// move client and peer bytes. TOKIO_WORKER_THREADS overrides the count (tokio reads it).
///
/// With one thread (two cores) the current-thread scheduler runs the same tasks without the
/// work-stealing one's queues and wake-ups: measured A B A B on two cores, 5 s per workload,
/// standalone ephemeral-churn +3-5%, 3-server 90% reads +4%, setData and multi5 equal.
fn runtime_builder(worker_threads_env: Option<&OsStr>, cores: usize) -> tokio::runtime::Builder {
    let threads = match worker_threads_env {
        // None when it does not parse: tokio itself refuses the value, naming it.
        Some(value) => value.to_str().and_then(|value| value.trim().parse::<usize>().ok()),
        None => Some(cores.saturating_sub(1).max(1)),
    };
    if threads == Some(1) {
        return tokio::runtime::Builder::new_current_thread();
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let (None, Some(threads)) = (worker_threads_env, threads) {
        builder.worker_threads(threads);
    }
    builder
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let mut signals = ShutdownSignals::new()?;
    let mut server = zk_runtime_tokio::start(config).await?;
    tokio::select! {
        signal = signals.recv() => tracing::info!("{signal}: shutting down"),
        stopped = server.stopped() => {
            stopped?;
            return Ok(());
        }
    }
    server.shutdown().await?;
    Ok(())
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    /// The scheduler and its thread count for a TOKIO_WORKER_THREADS value and a core count.
    fn runtime(env: Option<&str>, cores: usize) -> (tokio::runtime::RuntimeFlavor, usize) {
        let runtime = runtime_builder(env.map(OsStr::new), cores).enable_all().build().expect("a runtime");
        (runtime.handle().runtime_flavor(), runtime.metrics().num_workers())
    }

    #[test]
    fn one_runtime_thread_runs_the_current_thread_scheduler() {
        use tokio::runtime::RuntimeFlavor::{CurrentThread, MultiThread};
        assert_eq!(runtime(None, 1), (CurrentThread, 1));
        assert_eq!(runtime(None, 2), (CurrentThread, 1));
        assert_eq!(runtime(Some("1"), 8), (CurrentThread, 1));
        assert_eq!(runtime(None, 4), (MultiThread, 3));
        assert_eq!(runtime(Some(" 3 "), 2).0, MultiThread);
    }
}
