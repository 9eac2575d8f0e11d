//! A scripted fault timeline: steps applied at exact virtual times, in addition to the
//! faults drawn at random from [`crate::FaultConfig`] (or instead of them, when that is
//! `none`).
//!
//! Targets such as "the leader" or "a follower" are resolved when the step runs, against
//! the ensemble as it is at that instant; a step whose target does not exist then (no
//! established leader, say) is skipped and counted, never guessed. When a step needs a
//! choice ("a follower" of several) it is drawn from the run's one random stream, so a
//! seed still replays its run exactly. A run without a timeline draws nothing extra and
//! schedules nothing extra: it is byte for byte the run it always was.

use zk_core::zab::ServerId;

use crate::config::FaultKind;
use crate::faults::FaultEvent;
use crate::world::{Event, Phase, World};

/// One scripted step and when it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedFault {
    /// Virtual time of the step, from the start of the run.
    pub at_ms: u64,
    pub step: FaultStep,
}

/// Which servers a step acts on, resolved when it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// These servers, by id.
    Servers(Vec<ServerId>),
    /// The server leading an established epoch (the step is skipped if none does).
    Leader,
    /// One server following the leader, chosen from the seed.
    Follower,
    /// A majority of the voters: the leader (if any) and others chosen from the seed.
    Quorum,
    /// Every server.
    All,
    /// Every server a scripted crash took down and nothing has restarted yet, in the order
    /// they crashed.
    Crashed,
}

/// The order in which a group of crashed servers comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartOrder {
    /// The order the servers were resolved in (the leader first, when it is among them).
    Forward,
    Reverse,
}

/// What a crash does to the writes a server had not yet made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tear {
    /// Pending writes are lost whole.
    Clean,
    /// A torn prefix of the pending writes is kept: the disk lost its tail mid-write.
    Torn,
    /// Drawn from the seed, as random crashes do.
    Random,
}

/// A scripted fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultStep {
    /// Cuts every link between `group` and `from` (`None`: every other server).
    Partition { group: Target, from: Option<Target>, duration_ms: u64 },
    /// Brings the links between `a` and `b` (`None`: every other server) down and up
    /// `times` times, each state lasting `period_ms`.
    Flap { a: Target, b: Option<Target>, times: u32, period_ms: u64 },
    /// Kills the servers' processes; with `restart_after_ms` they come back from disk that
    /// long after, one every `restart_gap_ms`, in `order`; without it they stay down until a
    /// [`FaultStep::Restart`] (or the liveness phase).
    Crash { target: Target, tear: Tear, restart_after_ms: Option<u64>, order: RestartOrder, restart_gap_ms: u64 },
    /// Restarts servers that are down, one every `gap_ms`, in `order`.
    Restart { target: Target, order: RestartOrder, gap_ms: u64 },
    /// Freezes the servers' processes (a GC pause).
    Pause { target: Target, duration_ms: u64 },
    /// Makes the servers' fsyncs take `fsync_ms` (low, high).
    SlowFsync { target: Target, duration_ms: u64, fsync_ms: (u64, u64) },
    /// Adds `spike_ms` (low, high) to every message to and from the servers.
    LatencySpike { target: Target, duration_ms: u64, spike_ms: (u64, u64) },
    /// Drops every frame from `group` to `to` (`None`: every other server) while the other
    /// way still delivers, until the links' reading ends time out and break them.
    AsymmetricPartition { group: Target, to: Option<Target>, duration_ms: u64 },
    /// Jumps the servers' wall clocks by `jump_ms` (negative: back) and runs their monotonic
    /// clocks at `rate_permille` of real time, for `duration_ms`; then both are set right.
    ClockSkew { target: Target, duration_ms: u64, jump_ms: i64, rate_permille: u64 },
    /// Crashes the servers; their restart `restart_after_ms` later reads a flipped bit,
    /// which recovery must refuse by CRC; a later attempt reads clean bytes.
    CorruptRead { target: Target, restart_after_ms: u64 },
    /// The servers' disks are full for `duration_ms`: a server that persists anything stops,
    /// and comes back from its disk when the time is up.
    DiskFull { target: Target, duration_ms: u64 },
}

/// What the timeline did in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimelineStats {
    /// Steps carried out.
    pub applied: u64,
    /// Steps skipped: their target did not exist when they ran (no leader, no follower,
    /// nothing crashed), or the safety phase was over.
    pub skipped: u64,
}

/// The timeline's state in a run.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Servers a scripted crash took down, not restarted yet, in crash order.
    pub crashed: Vec<ServerId>,
    pub stats: TimelineStats,
}

/// The fault kind a step is counted under.
fn kind_of(step: &FaultStep) -> FaultKind {
    match step {
        FaultStep::Partition { .. } => FaultKind::Partition,
        FaultStep::Flap { .. } => FaultKind::Flapping,
        FaultStep::Crash { .. } | FaultStep::Restart { .. } => FaultKind::Crash,
        FaultStep::Pause { .. } => FaultKind::Pause,
        FaultStep::SlowFsync { .. } => FaultKind::SlowFsync,
        FaultStep::LatencySpike { .. } => FaultKind::LatencySpike,
        FaultStep::AsymmetricPartition { .. } => FaultKind::AsymmetricPartition,
        FaultStep::ClockSkew { .. } => FaultKind::ClockSkew,
        FaultStep::CorruptRead { .. } => FaultKind::CorruptRead,
        FaultStep::DiskFull { .. } => FaultKind::DiskFull,
    }
}

impl World {
    /// Queues every scripted step at its time.
    pub(crate) fn timeline_begin(&mut self) {
        for index in 0..self.config.timeline.len() {
            let at_ms = self.config.timeline[index].at_ms;
            self.schedule(at_ms, Event::Fault(FaultEvent::Scripted { index }));
        }
    }

    /// Carries out scripted step `index`.
    pub(crate) fn timeline_step(&mut self, index: usize) {
        let step = self.config.timeline[index].step.clone();
        if self.phase != Phase::Safety {
            self.timeline.stats.skipped += 1;
            self.record(|| format!("SCRIPT skipped (the safety phase is over): {step:?}"));
            return;
        }
        self.record(|| format!("SCRIPT {step:?}"));
        let applied = self.apply_step(kind_of(&step), &step);
        if applied {
            self.timeline.stats.applied += 1;
        } else {
            self.timeline.stats.skipped += 1;
            self.record(|| format!("SCRIPT skipped (no such target now): {step:?}"));
        }
    }
}
