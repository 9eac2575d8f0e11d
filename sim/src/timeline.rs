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

use zk_core::node::RoleName;
use zk_core::zab::ServerId;

use crate::faults::{ActiveFault, FaultEvent};
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

/// The fault kind index (in [`crate::config::FAULT_KINDS`]) a step is counted under.
fn kind_of(step: &FaultStep) -> usize {
    match step {
        FaultStep::Partition { .. } => 0,
        FaultStep::Flap { .. } => 3,
        FaultStep::Crash { .. } | FaultStep::Restart { .. } => 4,
        FaultStep::Pause { .. } => 5,
        FaultStep::SlowFsync { .. } => 6,
        FaultStep::LatencySpike { .. } => 7,
        FaultStep::AsymmetricPartition { .. } => 9,
        FaultStep::ClockSkew { .. } => 10,
        FaultStep::CorruptRead { .. } => 11,
        FaultStep::DiskFull { .. } => 12,
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

    /// Resolves a target to server ids, now. Empty when it names nothing that exists.
    fn resolve(&mut self, target: &Target) -> Vec<ServerId> {
        let leader = self.leaders().first().copied();
        match target {
            Target::Servers(ids) => ids.iter().copied().filter(|id| self.servers.contains_key(id)).collect(),
            Target::Leader => leader.into_iter().collect(),
            Target::Follower => {
                let followers: Vec<ServerId> = self
                    .servers
                    .values()
                    .filter(|server| server.node.as_ref().is_some_and(|node| node.role() == RoleName::Following))
                    .map(|server| server.id)
                    .collect();
                if followers.is_empty() {
                    Vec::new()
                } else {
                    vec![*self.rng.pick(&followers)]
                }
            }
            Target::Quorum => {
                let voters = self.config.voters as usize;
                let mut chosen: Vec<ServerId> = leader.into_iter().collect();
                let mut others: Vec<ServerId> = (1..=self.config.voters).filter(|id| Some(*id) != leader).collect();
                while chosen.len() < voters / 2 + 1 && !others.is_empty() {
                    let index = self.rng.index(others.len());
                    chosen.push(others.remove(index));
                }
                chosen
            }
            Target::All => self.server_ids(),
            Target::Crashed => self.timeline.crashed.clone(),
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
        let applied = self.apply_step(&step);
        if applied {
            self.timeline.stats.applied += 1;
        } else {
            self.timeline.stats.skipped += 1;
            self.record(|| format!("SCRIPT skipped (no such target now): {step:?}"));
        }
    }

    fn apply_step(&mut self, step: &FaultStep) -> bool {
        let kind = kind_of(step);
        self.record(|| format!("SCRIPT {step:?}"));
        match step {
            FaultStep::Partition { group, from, duration_ms } => {
                let group = self.resolve(group);
                let rest = match from {
                    Some(target) => self.resolve(target),
                    None => self.server_ids(),
                };
                let rest: Vec<ServerId> = rest.into_iter().filter(|id| !group.contains(id)).collect();
                if group.is_empty() || rest.is_empty() {
                    return false;
                }
                let pairs = World::pairs_between(&group, &rest);
                self.stats.partitions += 1;
                self.cut_links(&pairs, true);
                self.start_fault(kind, ActiveFault::Cut { pairs }, *duration_ms);
            }
            FaultStep::Flap { a, b, times, period_ms } => {
                let a = self.resolve(a);
                let b = match b {
                    Some(target) => self.resolve(target),
                    None => self.server_ids(),
                };
                let b: Vec<ServerId> = b.into_iter().filter(|id| !a.contains(id)).collect();
                if a.is_empty() || b.is_empty() || *times == 0 {
                    return false;
                }
                let pairs = World::pairs_between(&a, &b);
                let fault =
                    ActiveFault::ScriptedFlap { pairs, down: false, flips_left: times * 2, period_ms: *period_ms };
                self.start_fault(kind, fault, 0);
            }
            FaultStep::Crash { target, tear, restart_after_ms, order, restart_gap_ms } => {
                let servers: Vec<ServerId> = self.resolve(target).into_iter().filter(|&id| self.is_up(id)).collect();
                if servers.is_empty() {
                    return false;
                }
                for &server in &servers {
                    let tear = match tear {
                        Tear::Clean => false,
                        Tear::Torn => true,
                        Tear::Random => self.rng.percent(50),
                    };
                    self.crash_server(server, tear);
                }
                match restart_after_ms {
                    Some(after_ms) => {
                        let mut order_of_return = servers;
                        if *order == RestartOrder::Reverse {
                            order_of_return.reverse();
                        }
                        for (position, server) in order_of_return.into_iter().enumerate() {
                            let delay = after_ms + position as u64 * restart_gap_ms;
                            self.start_fault(kind, ActiveFault::Crash { server }, delay);
                        }
                    }
                    None => {
                        for server in servers {
                            self.faults.injected[kind] += 1;
                            if !self.timeline.crashed.contains(&server) {
                                self.timeline.crashed.push(server);
                            }
                        }
                    }
                }
            }
            FaultStep::Restart { target, order, gap_ms } => {
                let mut servers: Vec<ServerId> =
                    self.resolve(target).into_iter().filter(|&id| !self.is_up(id)).collect();
                if servers.is_empty() {
                    return false;
                }
                if *order == RestartOrder::Reverse {
                    servers.reverse();
                }
                self.timeline.crashed.retain(|id| !servers.contains(id));
                for (position, server) in servers.into_iter().enumerate() {
                    if position == 0 || *gap_ms == 0 {
                        self.stats.restarts += 1;
                        self.start_server(server);
                    } else {
                        // A crash fault that has already happened, ending when the server
                        // is due back; the crash itself was counted when it happened.
                        self.start_fault(kind, ActiveFault::Crash { server }, position as u64 * gap_ms);
                        self.faults.injected[kind] -= 1;
                    }
                }
            }
            FaultStep::Pause { target, duration_ms } => {
                let servers = self.resolve(target);
                let mut any = false;
                for server in servers {
                    if self.pause_server(server) {
                        let incarnation = self.servers[&server].incarnation;
                        self.start_fault(kind, ActiveFault::Pause { server, incarnation }, *duration_ms);
                        any = true;
                    }
                }
                return any;
            }
            FaultStep::SlowFsync { target, duration_ms, fsync_ms } => {
                let servers = self.resolve(target);
                if servers.is_empty() {
                    return false;
                }
                for server in servers {
                    self.servers.get_mut(&server).expect("known server").fsync_ms = *fsync_ms;
                    self.start_fault(kind, ActiveFault::SlowFsync { server }, *duration_ms);
                }
            }
            FaultStep::LatencySpike { target, duration_ms, spike_ms } => {
                let servers = self.resolve(target);
                if servers.is_empty() {
                    return false;
                }
                for server in servers {
                    self.servers.get_mut(&server).expect("known server").spike_ms = *spike_ms;
                    self.start_fault(kind, ActiveFault::LatencySpike { server }, *duration_ms);
                }
            }
            FaultStep::AsymmetricPartition { group, to, duration_ms } => {
                let group = self.resolve(group);
                let rest = match to {
                    Some(target) => self.resolve(target),
                    None => self.server_ids(),
                };
                let rest: Vec<ServerId> = rest.into_iter().filter(|id| !group.contains(id)).collect();
                if group.is_empty() || rest.is_empty() {
                    return false;
                }
                let directed = World::pairs_between(&group, &rest);
                self.stats.partitions += 1;
                self.cut_one_way(&directed, true);
                self.start_fault(kind, ActiveFault::OneWay { directed }, *duration_ms);
            }
            FaultStep::ClockSkew { target, duration_ms, jump_ms, rate_permille } => {
                let servers = self.resolve(target);
                if servers.is_empty() {
                    return false;
                }
                for server in servers {
                    self.skew_clock(server, *jump_ms, *rate_permille);
                    self.start_fault(kind, ActiveFault::ClockSkew { server }, *duration_ms);
                }
            }
            FaultStep::CorruptRead { target, restart_after_ms } => {
                let servers: Vec<ServerId> = self.resolve(target).into_iter().filter(|&id| self.is_up(id)).collect();
                if servers.is_empty() {
                    return false;
                }
                for server in servers {
                    let tear = self.rng.percent(50);
                    self.crash_for_corrupt_read(server, tear);
                    self.start_fault(kind, ActiveFault::Crash { server }, *restart_after_ms);
                }
            }
            FaultStep::DiskFull { target, duration_ms } => {
                let servers = self.resolve(target);
                if servers.is_empty() {
                    return false;
                }
                for server in servers {
                    self.servers.get_mut(&server).expect("known server").disk_full = true;
                    self.start_fault(kind, ActiveFault::DiskFull { server }, *duration_ms);
                }
            }
        }
        true
    }
}
