//! What a run looks like: the ensemble's shape, the clients, the phases' lengths and the
//! faults that may be injected.

use std::fmt;

use crate::timeline::TimedFault;

/// The kinds of fault the simulator injects, each with a weight (0 switches it off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultConfig {
    /// Splits the servers into two random groups that cannot talk.
    pub partition: u32,
    /// Cuts one random server off from every other.
    pub isolate_one: u32,
    /// Cuts the current leader off from every other server.
    pub isolate_leader: u32,
    /// A link (or a server's links) going down and up several times in a row.
    pub flapping: u32,
    /// Kills a server (pending writes lost or torn) and restarts it from disk later.
    pub crash: u32,
    /// Freezes a server's process (a GC pause), sometimes for longer than the session
    /// timeout.
    pub pause: u32,
    /// Makes a server's fsyncs slow.
    pub slow_fsync: u32,
    /// Adds a large delay to every message to and from a server.
    pub latency_spike: u32,
    /// Crashes every server at once (pending writes lost or torn on each), then restarts
    /// them one by one.
    pub power_loss: u32,
    /// Frames from one group of servers to another are silently dropped while the other
    /// way still delivers, until the link's reading end times out and breaks it.
    pub asymmetric_partition: u32,
    /// A server's wall clock jumps (forward or back) and its clocks run at a skewed rate.
    pub clock_skew: u32,
    /// A crashed server's first restart reads a flipped bit in one of its files; recovery
    /// must refuse it by CRC, and a later restart reads clean bytes.
    pub corrupt_read: u32,
    /// A server's disk is full for a while: persistence fails, the server stops, and it is
    /// restarted from disk once there is room again.
    pub disk_full: u32,
    /// The mean time between two fault injections.
    pub interval_ms_mean: u64,
    /// Faults active at the same time, at most.
    pub active_max: usize,
}

/// The fault kinds by name, in the order of [`FaultConfig::weights`].
pub const FAULT_KINDS: [&str; 13] = [
    "partition",
    "isolate_one",
    "isolate_leader",
    "flapping",
    "crash",
    "pause",
    "slow_fsync",
    "latency_spike",
    "power_loss",
    "asymmetric_partition",
    "clock_skew",
    "corrupt_read",
    "disk_full",
];

/// How many kinds of fault there are.
pub const FAULT_KIND_COUNT: usize = FAULT_KINDS.len();

impl FaultConfig {
    /// Every kind of fault, with default weights.
    pub fn all() -> FaultConfig {
        FaultConfig {
            partition: 3,
            isolate_one: 2,
            isolate_leader: 3,
            flapping: 2,
            crash: 3,
            pause: 2,
            slow_fsync: 2,
            latency_spike: 2,
            power_loss: 1,
            asymmetric_partition: 2,
            clock_skew: 2,
            corrupt_read: 1,
            disk_full: 1,
            interval_ms_mean: 600,
            active_max: 2,
        }
    }

    /// No faults: a healthy network and healthy processes.
    pub fn none() -> FaultConfig {
        FaultConfig { interval_ms_mean: 600, active_max: 2, ..FaultConfig::with_weights([0; FAULT_KIND_COUNT]) }
    }

    fn with_weights(weights: [u32; FAULT_KIND_COUNT]) -> FaultConfig {
        let [partition, isolate_one, isolate_leader, flapping, crash, pause, slow_fsync, latency_spike, power_loss, asymmetric_partition, clock_skew, corrupt_read, disk_full] =
            weights;
        FaultConfig {
            partition,
            isolate_one,
            isolate_leader,
            flapping,
            crash,
            pause,
            slow_fsync,
            latency_spike,
            power_loss,
            asymmetric_partition,
            clock_skew,
            corrupt_read,
            disk_full,
            interval_ms_mean: 600,
            active_max: 2,
        }
    }

    pub fn weights(&self) -> [u32; FAULT_KIND_COUNT] {
        [
            self.partition,
            self.isolate_one,
            self.isolate_leader,
            self.flapping,
            self.crash,
            self.pause,
            self.slow_fsync,
            self.latency_spike,
            self.power_loss,
            self.asymmetric_partition,
            self.clock_skew,
            self.corrupt_read,
            self.disk_full,
        ]
    }

    pub fn any(&self) -> bool {
        self.weights().iter().any(|&weight| weight > 0)
    }

    /// Parses `all`, `none`, or a comma-separated list of kinds, each optionally weighted:
    /// `crash,pause=3,partition`.
    pub fn parse(text: &str) -> Result<FaultConfig, String> {
        match text.trim() {
            "all" => return Ok(FaultConfig::all()),
            "none" | "" => return Ok(FaultConfig::none()),
            _ => {}
        }
        let mut weights = [0u32; FAULT_KIND_COUNT];
        for item in text.split(',') {
            let (name, weight) = match item.split_once('=') {
                Some((name, weight)) => {
                    (name.trim(), weight.trim().parse::<u32>().map_err(|error| format!("fault {item:?}: {error}"))?)
                }
                None => (item.trim(), 1),
            };
            let index = FAULT_KINDS
                .iter()
                .position(|kind| *kind == name)
                .ok_or_else(|| format!("unknown fault kind {name:?}; known: all, none, {}", FAULT_KINDS.join(", ")))?;
            weights[index] = weight;
        }
        Ok(FaultConfig::with_weights(weights))
    }
}

impl fmt::Display for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<String> = FAULT_KINDS
            .iter()
            .zip(self.weights())
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

/// A deliberate bug the simulator can plant in its own driver or clients (never in core),
/// to show that the checkers catch that class of bug end to end.
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
    /// The lock and election recipes order the children by their whole names instead of by
    /// the sequence number ZooKeeper appended (the bug Curator's `fixForSorting` guards
    /// against once names carry a prefix): a newcomer whose prefix sorts first believes it
    /// holds the lock while the true holder still does.
    RecipeOrderByName,
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
    /// beside their workload.
    pub recipes: bool,
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
        assert_eq!((some.crash, some.pause, some.partition), (1, 3, 0));
        assert_eq!(some.to_string(), "crash=1,pause=3");
        assert_eq!(FaultConfig::parse(&some.to_string()).unwrap(), some);
        assert!(FaultConfig::parse("meteor").is_err());
        let new_kinds = FaultConfig::parse("asymmetric_partition=2,clock_skew,corrupt_read=3,disk_full").unwrap();
        assert_eq!(
            (new_kinds.asymmetric_partition, new_kinds.clock_skew, new_kinds.corrupt_read, new_kinds.disk_full),
            (2, 1, 3, 1)
        );
        assert_eq!(new_kinds.to_string(), "asymmetric_partition=2,clock_skew=1,corrupt_read=3,disk_full=1");
        assert_eq!(FaultConfig::parse(&FaultConfig::all().to_string()).unwrap(), FaultConfig::all());
    }
}
