//! zk-bench: a load generator for ZooKeeper-compatible servers.
//!
//! Many sessions, each keeping many requests in flight, over the real client protocol
//! (encoded with zk-core's jute code, the same for every server), spread round-robin over
//! the servers of the connect string. Reports throughput and latency percentiles
//! (hdrhistogram) per workload, as a human line and a `RESULT` line that scripts parse.
//!
//!     zk-bench --server 127.0.0.1:2181 --workload set --sessions 8 --in-flight 16 --duration-s 10
//!     zk-bench --server 127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183 --workload mixed90
//!     zk-bench --server 127.0.0.1:2181 --workload populate --znodes 1000000 --value-bytes 100
//!     zk-bench responder --listen 127.0.0.1:2181      # the ceiling: answers Ok, does nothing
//!     zk-bench probe --server 127.0.0.1:2181          # when does a (re)started server answer?
//!     zk-bench failover --server <survivors> --kill-pid <leader's pid>
//!
//! `ci/bench.sh` drives it against zkd and Apache ZooKeeper side by side.

// A load generator is a driver: it owns sockets and reads the clock, which zk-core's lints
// forbid in deterministic code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod client;
mod load;
mod probe;
mod responder;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Load generator for ZooKeeper-compatible servers", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Without a subcommand, zk-bench runs a workload.
    #[command(flatten)]
    load: load::LoadArgs,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Run a workload (the default).
    Load(load::LoadArgs),
    /// Serve the client protocol trivially: every request answered Ok, nothing stored.
    Responder(responder::ResponderArgs),
    /// Poll a server until exists(path) succeeds; print when (Unix ns).
    Probe(probe::ProbeArgs),
    /// Write to the survivors, SIGKILL the leader, print when writes are acknowledged again.
    Failover(probe::FailoverArgs),
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let cli = Cli::parse();
    let succeeded = match cli.mode {
        None => load::run(cli.load).await,
        Some(Mode::Load(args)) => load::run(args).await,
        Some(Mode::Responder(args)) => match responder::run(args).await {
            Ok(()) => true,
            Err(error) => {
                eprintln!("zk-bench responder: {error}");
                false
            }
        },
        Some(Mode::Probe(args)) => probe::run(args).await,
        Some(Mode::Failover(args)) => probe::failover(args).await,
    };
    if !succeeded {
        std::process::exit(1);
    }
}
