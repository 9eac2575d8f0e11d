//! Fault injection, drawn from the seed: partitions (random split, one server cut off, the
//! leader cut off, flapping links, asymmetric partitions that drop frames one way only),
//! crashes with restart from disk, process pauses (some longer than the session timeout),
//! slow fsyncs, latency spikes, clock skew and jumps, corrupt reads at restart (which
//! recovery must catch by CRC) and full disks (which stop the server until there is room).
//!
//! During the safety phase a fault is injected at random intervals, while fewer than
//! `active_max` are active; each undoes itself after a random duration. When the liveness
//! phase begins every active fault is undone at once and nothing new is injected.
//!
//! A random fault is drawn as a [`FaultStep`] with its targets resolved to servers, the
//! step a scripted timeline ([`crate::timeline`]) would use, and both go through the one
//! `World::apply_step` ([`crate::apply`]). A timeline adds its steps at exact times, on top
//! of the random ones; a run without one draws and schedules nothing extra.

use std::collections::BTreeMap;

use zk_core::zab::ServerId;

use crate::config::{FaultConfig, FaultKind};
use crate::timeline::{FaultStep, RestartOrder, Target, Tear};
use crate::world::{Event, Phase, World};

/// A fault-related event in the queue.
#[derive(Clone, Debug)]
pub enum FaultEvent {
    /// Time to consider injecting a fault.
    Tick,
    /// Undo fault `id`.
    End { id: u64 },
    /// Flip the links of flapping fault `id`.
    Flap { id: u64 },
    /// Carry out step `index` of the scripted timeline.
    Scripted { index: usize },
}

/// A fault in effect, with what undoing it takes.
#[derive(Clone, Debug)]
pub(crate) enum ActiveFault {
    Cut {
        pairs: Vec<(ServerId, ServerId)>,
    },
    /// A flapping link: down and up in turn, `period_ms` in each state.
    Flap {
        pairs: Vec<(ServerId, ServerId)>,
        down: bool,
        flips_left: u32,
        period_ms: u64,
    },
    Crash {
        server: ServerId,
    },
    Pause {
        server: ServerId,
        incarnation: u64,
    },
    SlowFsync {
        server: ServerId,
    },
    LatencySpike {
        server: ServerId,
    },
    /// Frames from the first server of each pair to the second are dropped.
    OneWay {
        directed: Vec<(ServerId, ServerId)>,
    },
    /// The server's clocks are skewed (its wall clock jumped, its monotonic clock runs at
    /// another rate).
    ClockSkew {
        server: ServerId,
    },
    /// Another attempt to start a server whose restart was refused (a corrupt read caught).
    Restart {
        server: ServerId,
    },
    /// The server's disk is full.
    DiskFull {
        server: ServerId,
    },
}

/// The fault injector's state.
#[derive(Clone, Debug)]
pub struct Faults {
    config: FaultConfig,
    active: BTreeMap<u64, ActiveFault>,
    next_id: u64,
    /// How many faults of each kind were injected, in [`FaultKind::ALL`] order.
    injected: [u64; FaultKind::COUNT],
}

impl Faults {
    pub fn new(config: FaultConfig) -> Faults {
        Faults { config, active: BTreeMap::new(), next_id: 1, injected: [0; FaultKind::COUNT] }
    }

    /// How many faults of `kind` were injected.
    pub fn injected(&self, kind: FaultKind) -> u64 {
        self.injected[kind.index()]
    }

    pub fn summary(&self) -> String {
        FaultKind::ALL
            .iter()
            .zip(self.injected)
            .filter(|(_, count)| *count > 0)
            .map(|(kind, count)| format!("{kind}={count}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl World {
    pub(crate) fn faults_begin(&mut self) {
        if self.faults.config.any() {
            self.schedule_fault_tick();
        }
        self.timeline_begin();
    }

    fn schedule_fault_tick(&mut self) {
        let mean = self.faults.config.interval_ms_mean.max(4);
        let delay = self.rng.range(mean / 4, mean * 7 / 4);
        self.schedule(self.now_ms + delay, Event::Fault(FaultEvent::Tick));
    }

    pub(crate) fn fault_event(&mut self, event: FaultEvent) {
        match event {
            FaultEvent::Tick => {
                if self.phase != Phase::Safety {
                    return;
                }
                if self.faults.active.len() < self.faults.config.active_max {
                    if let Some(index) = self.rng.weighted(&self.faults.config.weights()) {
                        let kind = FaultKind::ALL[index];
                        if let Some(step) = self.draw_step(kind) {
                            self.apply_step(kind, &step);
                        }
                    }
                }
                self.schedule_fault_tick();
            }
            FaultEvent::End { id } => {
                if let Some(fault) = self.faults.active.remove(&id) {
                    self.undo(fault);
                }
            }
            FaultEvent::Scripted { index } => self.timeline_step(index),
            FaultEvent::Flap { id } => self.flap(id),
        }
    }

    /// Flips the links of flapping fault `id`, and schedules its next flip or its end.
    fn flap(&mut self, id: u64) {
        let Some(ActiveFault::Flap { pairs, down, flips_left, period_ms }) = self.faults.active.get_mut(&id) else {
            return;
        };
        let pairs = pairs.clone();
        let now_down = !*down;
        *down = now_down;
        *flips_left -= 1;
        let (flips_left, period_ms) = (*flips_left, *period_ms);
        self.record(|| format!("FAULT flap {pairs:?} {}", if now_down { "down" } else { "up" }));
        self.cut_links(&pairs, now_down);
        let next = if flips_left == 0 { FaultEvent::End { id } } else { FaultEvent::Flap { id } };
        self.schedule(self.now_ms + period_ms, Event::Fault(next));
    }

    /// Undoes every active fault and makes sure every server runs, unpaused, with healthy
    /// links, disk and network.
    pub(crate) fn faults_stop(&mut self) {
        let active = std::mem::take(&mut self.faults.active);
        for fault in active.into_values() {
            self.undo(fault);
        }
        self.heal_links();
        for id in self.server_ids() {
            let now_ms = self.now_ms;
            let server = self.servers.get_mut(&id).expect("known server");
            server.fsync_ms = (1, 4);
            server.spike_ms = (0, 0);
            server.disk_full = false;
            server.clock.set_rate(now_ms, 1000);
            server.clock.wall_offset_ms = 0;
            if server.paused {
                self.resume_server(id);
            }
            if !self.is_up(id) {
                self.start_server(id);
            }
        }
    }

    fn undo(&mut self, fault: ActiveFault) {
        self.record(|| format!("FAULT ends: {fault:?}"));
        match fault {
            ActiveFault::Cut { pairs } => self.cut_links(&pairs, false),
            ActiveFault::Flap { pairs, down, .. } => {
                if down {
                    self.cut_links(&pairs, false);
                }
            }
            ActiveFault::Crash { server } => {
                if !self.is_up(server) {
                    self.stats.restarts += 1;
                    self.start_server(server);
                }
            }
            ActiveFault::Pause { server, incarnation } => {
                if self.servers[&server].incarnation == incarnation {
                    self.resume_server(server);
                }
            }
            ActiveFault::SlowFsync { server } => self.servers.get_mut(&server).expect("known server").fsync_ms = (1, 4),
            ActiveFault::LatencySpike { server } => {
                self.servers.get_mut(&server).expect("known server").spike_ms = (0, 0)
            }
            ActiveFault::OneWay { directed } => self.cut_one_way(&directed, false),
            ActiveFault::ClockSkew { server } => {
                let now_ms = self.now_ms;
                let clock = &mut self.servers.get_mut(&server).expect("known server").clock;
                clock.set_rate(now_ms, 1000);
                clock.wall_offset_ms = 0;
            }
            ActiveFault::Restart { server } => {
                if !self.is_up(server) {
                    self.stats.restarts += 1;
                    self.start_server(server);
                }
            }
            ActiveFault::DiskFull { server } => {
                self.servers.get_mut(&server).expect("known server").disk_full = false;
                if !self.is_up(server) {
                    self.stats.restarts += 1;
                    self.start_server(server);
                }
            }
        }
    }

    /// Tries to start `server` again after `delay_ms` (not a new fault: the retry of a
    /// restart that was refused).
    pub(crate) fn schedule_restart(&mut self, server: ServerId, delay_ms: u64) {
        let id = self.faults.next_id;
        self.faults.next_id += 1;
        self.faults.active.insert(id, ActiveFault::Restart { server });
        self.schedule(self.now_ms + delay_ms, Event::Fault(FaultEvent::End { id }));
    }

    /// Skews a server's clocks: its wall clock jumps by `jump_ms`, its monotonic clock runs
    /// at `rate_permille` of virtual time.
    pub(crate) fn skew_clock(&mut self, server: ServerId, jump_ms: i64, rate_permille: u64) {
        let now_ms = self.now_ms;
        let clock = &mut self.servers.get_mut(&server).expect("known server").clock;
        clock.wall_offset_ms += jump_ms;
        clock.set_rate(now_ms, rate_permille);
    }

    /// Crashes a running server and arms a corrupt read for its next start.
    pub(crate) fn crash_for_corrupt_read(&mut self, server: ServerId, tear: bool) {
        self.crash_server(server, tear);
        self.servers.get_mut(&server).expect("known server").disk.corrupt_next_read = true;
    }

    /// Starts a fault of `kind`, counted as injected, that ends (or first flips) after
    /// `duration_ms`.
    pub(crate) fn start_fault(&mut self, kind: FaultKind, fault: ActiveFault, duration_ms: u64) {
        self.faults.injected[kind.index()] += 1;
        self.arm_fault(kind, fault, duration_ms);
    }

    /// Counts a fault of `kind` whose effect has no end to schedule.
    pub(crate) fn count_fault(&mut self, kind: FaultKind) {
        self.faults.injected[kind.index()] += 1;
    }

    /// Makes `fault` active until it ends (or first flips) after `duration_ms`, without
    /// counting it: for the end of a fault counted when it happened.
    pub(crate) fn arm_fault(&mut self, kind: FaultKind, fault: ActiveFault, duration_ms: u64) {
        let id = self.faults.next_id;
        self.faults.next_id += 1;
        self.record(|| format!("FAULT {kind} for {duration_ms} ms: {fault:?}"));
        let first = match fault {
            ActiveFault::Flap { .. } => FaultEvent::Flap { id },
            _ => FaultEvent::End { id },
        };
        self.faults.active.insert(id, fault);
        self.schedule(self.now_ms + duration_ms, Event::Fault(first));
    }

    pub(crate) fn pairs_between(group: &[ServerId], rest: &[ServerId]) -> Vec<(ServerId, ServerId)> {
        group.iter().flat_map(|&a| rest.iter().map(move |&b| (a, b))).collect()
    }

    /// Draws a fault of `kind` as a step whose targets are resolved to servers, or `None`
    /// when the ensemble has nothing for it to act on now.
    fn draw_step(&mut self, kind: FaultKind) -> Option<FaultStep> {
        let ids = self.server_ids();
        let up: Vec<ServerId> = ids.iter().copied().filter(|&id| self.is_up(id)).collect();
        let step = match kind {
            FaultKind::Partition | FaultKind::IsolateOne | FaultKind::IsolateLeader | FaultKind::Flapping
                if ids.len() < 2 =>
            {
                return None
            }
            FaultKind::Partition => {
                let mut group = ids.clone();
                self.rng.shuffle(&mut group);
                let size = self.rng.range(1, (ids.len() / 2) as u64) as usize;
                let rest = group.split_off(size);
                let duration_ms = self.rng.range(200, 3000);
                FaultStep::Partition { group: Target::Servers(group), from: Some(Target::Servers(rest)), duration_ms }
            }
            FaultKind::IsolateOne | FaultKind::IsolateLeader => {
                let server =
                    if kind == FaultKind::IsolateOne { *self.rng.pick(&ids) } else { *self.leaders().first()? };
                let duration_ms = self.rng.range(200, 3000);
                FaultStep::Partition { group: Target::Servers(vec![server]), from: None, duration_ms }
            }
            FaultKind::Flapping => {
                let server = *self.rng.pick(&ids);
                let b = if self.rng.percent(50) {
                    None
                } else {
                    let others: Vec<ServerId> = ids.iter().copied().filter(|&id| id != server).collect();
                    Some(Target::Servers(vec![*self.rng.pick(&others)]))
                };
                let times = self.rng.range(3, 10) as u32;
                let period_ms = self.rng.range(20, 400);
                FaultStep::Flap { a: Target::Servers(vec![server]), b, times, period_ms }
            }
            FaultKind::Crash | FaultKind::PowerLoss | FaultKind::CorruptRead => return self.draw_crash(kind, up),
            FaultKind::Pause => {
                let running: Vec<ServerId> = up.into_iter().filter(|id| !self.servers[id].paused).collect();
                if running.is_empty() {
                    return None;
                }
                let server = *self.rng.pick(&running);
                let session_max = self.session_timeout_ms_max;
                let duration_ms = if self.rng.percent(50) {
                    self.rng.range(50, 800)
                } else {
                    // Longer than any session timeout: the GC pause that outlives sessions.
                    self.rng.range(session_max + 500, session_max * 2 + 1000)
                };
                FaultStep::Pause { target: Target::Servers(vec![server]), duration_ms }
            }
            FaultKind::SlowFsync => {
                let target = Target::Servers(vec![*self.rng.pick(&ids)]);
                FaultStep::SlowFsync { target, duration_ms: self.rng.range(500, 4000), fsync_ms: (50, 1200) }
            }
            FaultKind::LatencySpike => {
                let target = Target::Servers(vec![*self.rng.pick(&ids)]);
                FaultStep::LatencySpike { target, duration_ms: self.rng.range(300, 3000), spike_ms: (50, 800) }
            }
            FaultKind::AsymmetricPartition => self.draw_asymmetric_partition(ids),
            FaultKind::ClockSkew => {
                let target = Target::Servers(vec![*self.rng.pick(&ids)]);
                let jump_ms = match self.rng.below(3) {
                    0 => 0,
                    _ => {
                        let size = self.rng.range(1_000, 120_000) as i64;
                        if self.rng.percent(50) {
                            size
                        } else {
                            -size
                        }
                    }
                };
                let rate_permille = if self.rng.percent(30) { 1000 } else { self.rng.range(900, 1100) };
                let duration_ms = self.rng.range(500, 4000);
                FaultStep::ClockSkew { target, duration_ms, jump_ms, rate_permille }
            }
            FaultKind::DiskFull => {
                let target = Target::Servers(vec![*self.rng.pick(&ids)]);
                FaultStep::DiskFull { target, duration_ms: self.rng.range(300, 3000) }
            }
        };
        Some(step)
    }

    /// A crash of one running server (its restart reading a flipped bit, for a corrupt
    /// read), or of every running server at once, which come back one by one in a random
    /// order: the first to return may form a quorum with a different history than the last.
    fn draw_crash(&mut self, kind: FaultKind, mut up: Vec<ServerId>) -> Option<FaultStep> {
        if up.is_empty() {
            return None;
        }
        let step = match kind {
            FaultKind::PowerLoss => {
                self.rng.shuffle(&mut up);
                let restart_after_ms = Some(self.rng.range(20, 1000));
                let restart_gap_ms = self.rng.range(10, 500);
                let order = RestartOrder::Forward;
                FaultStep::Crash {
                    target: Target::Servers(up),
                    tear: Tear::Random,
                    restart_after_ms,
                    order,
                    restart_gap_ms,
                }
            }
            FaultKind::CorruptRead => {
                let target = Target::Servers(vec![*self.rng.pick(&up)]);
                FaultStep::CorruptRead { target, restart_after_ms: self.rng.range(50, 2000) }
            }
            _ => {
                let target = Target::Servers(vec![*self.rng.pick(&up)]);
                let restart_after_ms = Some(self.rng.range(50, 3000));
                let order = RestartOrder::Forward;
                FaultStep::Crash { target, tear: Tear::Random, restart_after_ms, order, restart_gap_ms: 0 }
            }
        };
        Some(step)
    }

    /// A random group's frames to the rest are dropped, or the other way round; half of the
    /// time the group is the leader.
    fn draw_asymmetric_partition(&mut self, ids: Vec<ServerId>) -> FaultStep {
        let leader = self.leaders().first().copied();
        let group: Vec<ServerId> = match leader {
            Some(leader) if self.rng.percent(50) => vec![leader],
            _ => {
                let mut shuffled = ids.clone();
                self.rng.shuffle(&mut shuffled);
                let size = self.rng.range(1, (ids.len() / 2).max(1) as u64) as usize;
                shuffled[..size].to_vec()
            }
        };
        let rest: Vec<ServerId> = ids.iter().copied().filter(|id| !group.contains(id)).collect();
        let outgoing = self.rng.percent(50);
        let (from, to) = if outgoing { (group, rest) } else { (rest, group) };
        let duration_ms = self.rng.range(200, 3000);
        FaultStep::AsymmetricPartition { group: Target::Servers(from), to: Some(Target::Servers(to)), duration_ms }
    }
}
