//! What a run looks like: the ensemble's shape, the clients, the phases' lengths and the
//! faults that may be injected.

use std::fmt;

use crate::timeline::TimedFault;

/// A kind of fault: what random injection draws (by weight) and what the report counts.
/// Scripted steps are counted under the kind they inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Splits the servers into two random groups that cannot talk.
    Partition,
    /// Cuts one random server off from every other.
    IsolateOne,
    /// Cuts the current leader off from every other server.
    IsolateLeader,
    /// A link (or a server's links) going down and up several times in a row.
    Flapping,
    /// Kills a server (pending writes lost or torn) and restarts it from disk later.
    Crash,
    /// Freezes a server's process (a GC pause), sometimes for longer than the session
    /// timeout.
    Pause,
    /// Makes a server's fsyncs slow.
    SlowFsync,
    /// Adds a large delay to every message to and from a server.
    LatencySpike,
    /// Crashes every server at once (pending writes lost or torn on each), then restarts
    /// them one by one.
    PowerLoss,
    /// Frames from one group of servers to another are silently dropped while the other
    /// way still delivers, until the link's reading end times out and breaks it.
    AsymmetricPartition,
    /// A server's wall clock jumps (forward or back) and its clocks run at a skewed rate.
    ClockSkew,
    /// A crashed server's first restart reads a flipped bit in one of its files; recovery
    /// must refuse it by CRC, and a later restart reads clean bytes.
    CorruptRead,
    /// A server's disk is full for a while: persistence fails, the server stops, and it is
    /// restarted from disk once there is room again.
    DiskFull,
}

impl FaultKind {
    /// How many kinds of fault there are.
    pub const COUNT: usize = 13;

    /// Every kind, in declaration order (the order of weights, counts and reports).
    pub const ALL: [FaultKind; FaultKind::COUNT] = [
        FaultKind::Partition,
        FaultKind::IsolateOne,
        FaultKind::IsolateLeader,
        FaultKind::Flapping,
        FaultKind::Crash,
        FaultKind::Pause,
        FaultKind::SlowFsync,
        FaultKind::LatencySpike,
        FaultKind::PowerLoss,
        FaultKind::AsymmetricPartition,
        FaultKind::ClockSkew,
        FaultKind::CorruptRead,
        FaultKind::DiskFull,
    ];

    /// The kind's name in `--faults` lists, scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::IsolateOne => "isolate_one",
            FaultKind::IsolateLeader => "isolate_leader",
            FaultKind::Flapping => "flapping",
            FaultKind::Crash => "crash",
            FaultKind::Pause => "pause",
            FaultKind::SlowFsync => "slow_fsync",
            FaultKind::LatencySpike => "latency_spike",
            FaultKind::PowerLoss => "power_loss",
            FaultKind::AsymmetricPartition => "asymmetric_partition",
            FaultKind::ClockSkew => "clock_skew",
            FaultKind::CorruptRead => "corrupt_read",
            FaultKind::DiskFull => "disk_full",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The kind's position in [`FaultKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds of fault the simulator injects at random, each with a weight (0 switches it
/// off), and how often and how many at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultConfig {
    /// Each kind's weight, in [`FaultKind::ALL`] order.
    weights: [u32; FaultKind::COUNT],
    /// The mean time between two fault injections.
    pub interval_ms_mean: u64,
    /// Faults active at the same time, at most.
    pub active_max: usize,
}

impl FaultConfig {
    /// Every kind of fault, with default weights.
    pub fn all() -> FaultConfig {
        FaultConfig { weights: [3, 2, 3, 2, 3, 2, 2, 2, 1, 2, 2, 1, 1], interval_ms_mean: 600, active_max: 2 }
    }

    /// No faults: a healthy network and healthy processes.
    pub fn none() -> FaultConfig {
        FaultConfig { weights: [0; FaultKind::COUNT], interval_ms_mean: 600, active_max: 2 }
    }

    /// The weight of `kind` (0: never injected at random).
    pub fn weight(&self, kind: FaultKind) -> u32 {
        self.weights[kind.index()]
    }

    /// This configuration with `kind` weighted `weight`.
    pub fn with_weight(mut self, kind: FaultKind, weight: u32) -> FaultConfig {
        self.weights[kind.index()] = weight;
        self
    }

    /// Every kind's weight, in [`FaultKind::ALL`] order.
    pub fn weights(&self) -> [u32; FaultKind::COUNT] {
        self.weights
    }

    pub fn any(&self) -> bool {
        self.weights.iter().any(|&weight| weight > 0)
    }

    /// Parses `all`, `none`, or a comma-separated list of kinds, each optionally weighted:
    /// `crash,pause=3,partition`.
    pub fn parse(text: &str) -> Result<FaultConfig, String> {
        match text.trim() {
            "all" => return Ok(FaultConfig::all()),
            "none" | "" => return Ok(FaultConfig::none()),
            _ => {}
        }
        let mut config = FaultConfig::none();
        for item in text.split(',') {
            let (name, weight) = match item.split_once('=') {
                Some((name, weight)) => {
                    (name.trim(), weight.trim().parse::<u32>().map_err(|error| format!("fault {item:?}: {error}"))?)
                }
                None => (item.trim(), 1),
            };
            let kind = FaultKind::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = FaultKind::ALL.iter().map(|kind| kind.name()).collect();
                format!("unknown fault kind {name:?}; known: all, none, {}", known.join(", "))
            })?;
            config = config.with_weight(kind, weight);
        }
        Ok(config)
    }
}

impl fmt::Display for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<String> = FaultKind::ALL
            .iter()
            .zip(self.weights)
            .filter(|(_, weight)| *weight > 0)
            .map(|(kind, weight)| format!("{kind}={weight}"))
            .collect();
        if on.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", on.join(","))
        }
    }
}

/// A deliberate bug the simulator can plant in its own driver or clients (and one through a
/// test-only switch of the node's configuration), to show that the checkers catch that
/// class of bug end to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// The disk reports an fsync complete as soon as it is asked, before the writes are
    /// durable: a crash loses acknowledged txns (the class of ZOOKEEPER-3911, -4643: an
    /// acknowledgement that runs ahead of durability).
    FsyncLies,
    /// Clients send the read of a sync+read without the sync: a follower answers from its
    /// possibly stale state (a read served after sync without waiting for the leader).
    SyncSkipped,
    /// The simulated network lets a server's frames to a client overtake each other (a
    /// connection that is not FIFO), so replies arrive out of order.
    ServerFramesReordered,
    /// The network answers every PROPOSAL a leader sends to a follower with a forged ACK
    /// from that follower, at once: the leader counts votes that no durable log backs and
    /// commits without a real quorum (the Zab paper's rule that a follower acknowledges
    /// only what it has logged, broken on the wire).
    AcksForged,
    /// The disk ignores TRUNC: a learner told to drop the uncommitted tail of an old epoch
    /// drops it in memory but keeps it in its log file, and replays it after a restart.
    TruncateIgnored,
    /// The network rewrites the closeSession proposals a leader sends to its followers so
    /// that they delete none of the session's ephemerals: ephemerals outlive their session
    /// on the followers.
    EphemeralsKept,
    /// Clients skip setWatches when they reconnect with their session: the watches of the
    /// old connection are silently gone (what ZooKeeper's `disableAutoWatchReset` does,
    /// without telling the application).
    WatchesNotReRegistered,
    /// Leaders confirm their rounds without waiting for a quorum's echoes (the node's
    /// test-only `confirm_rounds` switch, off): a deposed leader that still holds its lease
    /// answers `sync`, and vouches for reconnecting sessions, from its stale state. The one
    /// planted bug that lives in core, since the rule it breaks is the node's own.
    SyncRoundsSkipped,
    /// The lock and election recipes order the children by their whole names instead of by
    /// the sequence number ZooKeeper appended (the bug Curator's `fixForSorting` guards
    /// against once names carry a prefix): a newcomer whose prefix sorts first believes it
    /// holds the lock while the true holder still does.
    RecipeOrderByName,
}

/// What the clients' operations lean towards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Workload {
    /// Every kind of operation, writes most (the default).
    #[default]
    Mixed,
    /// Mostly sync+reads and plain reads, a few writes, no recipes: a server rarely has a
    /// proposal in flight, so what a sync waits for besides its proposals is what decides
    /// its answer (the workload of scenarios about stale reads).
    ReadHeavy,
}

impl Workload {
    pub fn parse(text: &str) -> Result<Workload, String> {
        match text {
            "mixed" => Ok(Workload::Mixed),
            "read-heavy" => Ok(Workload::ReadHeavy),
            other => Err(format!("unknown workload {other:?}; expected mixed or read-heavy")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Mixed => "mixed",
            Workload::ReadHeavy => "read-heavy",
        }
    }
}

/// One run of the simulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    pub seed: u64,
    /// Voting servers (ids 1..=voters).
    pub voters: u64,
    /// Observers (ids after the voters).
    pub observers: u64,
    pub clients: usize,
    /// How long faults are injected, in virtual milliseconds.
    pub safety_ms: u64,
    /// How long, once faults stop and everything heals, every client has to complete a
    /// write and a sync+read.
    pub liveness_ms_max: u64,
    pub faults: FaultConfig,
    /// Records a readable trace of every event.
    pub trace: bool,
    /// A deliberate bug to plant (tests of the checkers only).
    pub planted: Option<PlantedBug>,
    /// Scripted faults at exact virtual times, on top of the random ones (empty: none).
    pub timeline: Vec<TimedFault>,
    /// Whether clients run the lock (even clients) and election (odd clients) recipes
    /// beside their workload (never with a read-heavy workload).
    pub recipes: bool,
    pub workload: Workload,
}

impl SimConfig {
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            voters: 3,
            observers: 0,
            clients: 4,
            safety_ms: 4_000,
            liveness_ms_max: 20_000,
            faults: FaultConfig::all(),
            trace: false,
            planted: None,
            timeline: Vec::new(),
            recipes: true,
            workload: Workload::Mixed,
        }
    }

    /// The command that replays this run. The CLI cannot express a scripted timeline: a run
    /// with one says so (its scenario runner prints the command that replays it).
    pub fn replay_command(&self) -> String {
        let command = format!(
            "cargo run -p zk-sim --release -- --seeds {seed}..{next} --servers {voters} --observers {observers} \
             --clients {clients} --safety-ms {safety} --faults {faults} --trace trace-{seed}.txt",
            seed = self.seed,
            next = self.seed + 1,
            voters = self.voters,
            observers = self.observers,
            clients = self.clients,
            safety = self.safety_ms,
            faults = self.faults,
        );
        let command = match self.workload {
            Workload::Mixed => command,
            other => format!("{command} --workload {}", other.name()),
        };
        if self.timeline.is_empty() {
            command
        } else {
            format!(
                "{command}  (plus a scripted timeline of {} steps: replay it with zk-scenarios)",
                self.timeline.len()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse_and_print_back() {
        assert_eq!(FaultConfig::parse("all").unwrap(), FaultConfig::all());
        assert!(!FaultConfig::parse("none").unwrap().any());
        let some = FaultConfig::parse("crash,pause=3").unwrap();
        let weights = [FaultKind::Crash, FaultKind::Pause, FaultKind::Partition].map(|kind| some.weight(kind));
        assert_eq!(weights, [1, 3, 0]);
        assert_eq!(some.to_string(), "crash=1,pause=3");
        assert_eq!(FaultConfig::parse(&some.to_string()).unwrap(), some);
        assert!(FaultConfig::parse("meteor").is_err());
        let new_kinds = FaultConfig::parse("asymmetric_partition=2,clock_skew,corrupt_read=3,disk_full").unwrap();
        let weights =
            [FaultKind::AsymmetricPartition, FaultKind::ClockSkew, FaultKind::CorruptRead, FaultKind::DiskFull]
                .map(|kind| new_kinds.weight(kind));
        assert_eq!(weights, [2, 1, 3, 1]);
        assert_eq!(new_kinds.to_string(), "asymmetric_partition=2,clock_skew=1,corrupt_read=3,disk_full=1");
        assert_eq!(FaultConfig::parse(&FaultConfig::all().to_string()).unwrap(), FaultConfig::all());
    }

    #[test]
    fn every_fault_kind_has_a_name_that_parses_back_and_its_place_in_all() {
        for (index, kind) in FaultKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), index);
            assert_eq!(FaultKind::from_name(kind.name()), Some(kind));
            assert_eq!(kind.to_string(), kind.name());
        }
        assert_eq!(FaultKind::from_name("meteor"), None);
    }
}
