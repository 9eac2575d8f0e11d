//! zk-sim: zkd's deterministic cluster simulator.
//!
//! A run is one seed: an ensemble of `zk_core::node::Node`s with simulated disks, a
//! simulated network and clients speaking the real wire protocol, all in virtual time with
//! every random choice drawn from one ChaCha stream seeded by the seed. A safety phase
//! injects faults (partitions symmetric and asymmetric, crashes, pauses, slow disks,
//! latency spikes, clock skew and jumps, corrupt reads at restart, full disks) while
//! checkers watch the ZAB invariants after every event; then a liveness phase heals
//! everything and requires every client to make progress; then the clients' histories are
//! checked (linearizability per znode, FIFO order and monotonic zxids per client, session
//! guarantees, watch guarantees, and the safety of the lock and election recipes some
//! clients run).
//!
//! ```
//! let report = zk_sim::run(zk_sim::SimConfig::new(7));
//! assert!(!report.failed(), "{}", report.describe_failure());
//! ```
//!
//! Every failure names its seed and a command that replays it.
//!
//! Besides the random faults, a run may follow a scripted timeline
//! ([`SimConfig::timeline`]): "crash the leader at 2 s, restart it at 6 s". The
//! `zk-scenarios` crate reads such timelines from readable scenario files.

pub mod apply;
pub mod check;
pub mod client;
pub mod clock;
pub mod config;
pub mod disk;
pub mod faults;
pub mod history;
pub mod recipe;
pub mod rng;
pub mod timeline;
pub mod trace;
pub mod world;

use std::panic::{self, AssertUnwindSafe};

pub use check::Violation;
pub use config::{FaultConfig, FaultKind, SimConfig};
pub use timeline::{FaultStep, RestartOrder, Target, Tear, TimedFault};
pub use world::{Clock, Stats, World};

use history::Outcome;

/// What one run did and found.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub config: SimConfig,
    /// Virtual time simulated.
    pub sim_ms: u64,
    pub stats: Stats,
    pub operations: usize,
    /// Operations with a definite outcome (a reply came).
    pub operations_completed: usize,
    pub linearizability: check::linearizability::Summary,
    pub faults: String,
    /// What the scripted timeline did (all zero without one).
    pub timeline: timeline::TimelineStats,
    pub violations: Vec<Violation>,
    /// The trace, when the run recorded one.
    pub trace: Option<Vec<String>>,
    /// What the clients' watches and recipes did.
    pub clients: ClientFigures,
}

/// Counts of what the clients' watches and recipes did in a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientFigures {
    /// Watches registered (one-time and persistent).
    pub watches_registered: usize,
    /// Watch notifications received.
    pub watch_events: usize,
    /// setWatches sent on reconnecting.
    pub watches_reset: usize,
    /// Times a client learned it held the lock.
    pub lock_tenures: usize,
    /// Times a client took office as the elected leader.
    pub leader_terms: usize,
}

impl RunReport {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }

    /// The seed, the command that replays it, and what went wrong.
    pub fn describe_failure(&self) -> String {
        let mut text = format!(
            "seed {} FAILED after {} of virtual time\n  replay: {}\n  or:     ZK_SIM_SEED={} cargo test -p zk-sim replay -- --nocapture\n",
            self.config.seed,
            trace::time(self.sim_ms),
            self.config.replay_command(),
            self.config.seed,
        );
        for violation in &self.violations {
            text.push_str(&format!("  {violation}\n"));
        }
        text
    }

    /// The trace as one text, if recorded.
    pub fn trace_text(&self) -> Option<String> {
        self.trace.as_ref().map(|lines| {
            let mut text = lines.join("\n");
            text.push('\n');
            text
        })
    }
}

/// Runs one seed to the end, catching a panic (a failed assertion in a node or in the
/// simulator) as a violation.
pub fn run(config: SimConfig) -> RunReport {
    let mut world = World::new(config.clone());
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| world.run()));
    if let Err(payload) = outcome {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|text| (*text).to_owned()))
            .unwrap_or_else(|| String::from("a panic without a message"));
        let time_ms = world.now_ms;
        world.record(|| format!("PANIC {message}"));
        world.violations.push(Violation { time_ms, checker: "panic", message });
    }
    report(world)
}

fn client_figures(history: &history::History) -> ClientFigures {
    use history::{ObservationKind, RecipeKind};
    let mut figures = ClientFigures::default();
    for observation in &history.observations {
        match observation.kind {
            ObservationKind::WatchRegistered { .. } => figures.watches_registered += 1,
            ObservationKind::WatchEvent { .. } => figures.watch_events += 1,
            ObservationKind::WatchesReset { .. } => figures.watches_reset += 1,
            ObservationKind::RecipeHeld { recipe: RecipeKind::Lock, .. } => figures.lock_tenures += 1,
            ObservationKind::RecipeHeld { recipe: RecipeKind::Election, .. } => figures.leader_terms += 1,
            _ => {}
        }
    }
    figures
}

fn report(world: World) -> RunReport {
    let operations_completed = world
        .history
        .operations
        .iter()
        .filter(|operation| matches!(operation.outcome, Outcome::Ok(_) | Outcome::Err(_)))
        .count();
    RunReport {
        config: world.config.clone(),
        sim_ms: world.now_ms,
        stats: world.stats,
        operations: world.history.operations.len(),
        operations_completed,
        linearizability: world.linearizability,
        faults: world.faults.summary(),
        timeline: world.timeline.stats,
        clients: client_figures(&world.history),
        violations: world.violations,
        trace: world.trace,
    }
}
