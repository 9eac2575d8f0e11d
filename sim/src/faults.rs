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
//! A scripted timeline ([`crate::timeline`]) injects the same faults at exact times, on top
//! of the random ones; a run without one is exactly the run it was before timelines existed.

use std::collections::BTreeMap;

use zk_core::zab::ServerId;

use crate::config::{FaultConfig, FAULT_KINDS, FAULT_KIND_COUNT};
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
    Flap {
        pairs: Vec<(ServerId, ServerId)>,
        down: bool,
        flips_left: u32,
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
    PowerLoss {
        servers: Vec<ServerId>,
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
    /// A scripted flapping link: like `Flap`, with a fixed period between flips.
    ScriptedFlap {
        pairs: Vec<(ServerId, ServerId)>,
        down: bool,
        flips_left: u32,
        period_ms: u64,
    },
}

/// The fault injector's state.
#[derive(Clone, Debug)]
pub struct Faults {
    config: FaultConfig,
    active: BTreeMap<u64, ActiveFault>,
    next_id: u64,
    /// How many faults of each kind were injected, in [`FAULT_KINDS`] order.
    pub injected: [u64; FAULT_KIND_COUNT],
}

impl Faults {
    pub fn new(config: FaultConfig) -> Faults {
        Faults { config, active: BTreeMap::new(), next_id: 1, injected: [0; FAULT_KIND_COUNT] }
    }

    pub fn summary(&self) -> String {
        FAULT_KINDS
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
                    if let Some(kind) = self.rng.weighted(&self.faults.config.weights()) {
                        self.inject(kind);
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
            FaultEvent::Flap { id }
                if matches!(self.faults.active.get(&id), Some(ActiveFault::ScriptedFlap { .. })) =>
            {
                let Some(ActiveFault::ScriptedFlap { pairs, down, flips_left, period_ms }) =
                    self.faults.active.get_mut(&id)
                else {
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
            FaultEvent::Flap { id } => {
                let Some(ActiveFault::Flap { pairs, down, flips_left }) = self.faults.active.get_mut(&id) else {
                    return;
                };
                let pairs = pairs.clone();
                let now_down = !*down;
                *down = now_down;
                *flips_left -= 1;
                let flips_left = *flips_left;
                self.record(|| format!("FAULT flap {pairs:?} {}", if now_down { "down" } else { "up" }));
                self.cut_links(&pairs, now_down);
                let delay = self.rng.range(20, 400);
                let next = if flips_left == 0 { FaultEvent::End { id } } else { FaultEvent::Flap { id } };
                self.schedule(self.now_ms + delay, Event::Fault(next));
            }
        }
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
            ActiveFault::Flap { pairs, down, .. } | ActiveFault::ScriptedFlap { pairs, down, .. } => {
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
            ActiveFault::PowerLoss { servers } => {
                for server in servers {
                    if !self.is_up(server) {
                        self.stats.restarts += 1;
                        self.start_server(server);
                    }
                }
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

    pub(crate) fn start_fault(&mut self, kind: usize, fault: ActiveFault, duration_ms: u64) {
        let id = self.faults.next_id;
        self.faults.next_id += 1;
        self.faults.injected[kind] += 1;
        self.record(|| format!("FAULT {} for {duration_ms} ms: {fault:?}", FAULT_KINDS[kind]));
        let first = match fault {
            ActiveFault::Flap { .. } | ActiveFault::ScriptedFlap { .. } => FaultEvent::Flap { id },
            _ => FaultEvent::End { id },
        };
        self.faults.active.insert(id, fault);
        self.schedule(self.now_ms + duration_ms, Event::Fault(first));
    }

    pub(crate) fn pairs_between(group: &[ServerId], rest: &[ServerId]) -> Vec<(ServerId, ServerId)> {
        group.iter().flat_map(|&a| rest.iter().map(move |&b| (a, b))).collect()
    }

    fn isolate(&self, server: ServerId) -> Vec<(ServerId, ServerId)> {
        let rest: Vec<ServerId> = self.server_ids().into_iter().filter(|&id| id != server).collect();
        World::pairs_between(&[server], &rest)
    }

    fn inject(&mut self, kind: usize) {
        let ids = self.server_ids();
        if ids.len() < 2 && kind <= 3 {
            return;
        }
        match kind {
            0 => {
                let mut shuffled = ids.clone();
                for index in (1..shuffled.len()).rev() {
                    let other = self.rng.index(index + 1);
                    shuffled.swap(index, other);
                }
                let size = self.rng.range(1, (ids.len() / 2) as u64) as usize;
                let (group, rest) = shuffled.split_at(size);
                let pairs = World::pairs_between(group, rest);
                self.stats.partitions += 1;
                self.cut_links(&pairs, true);
                let duration = self.rng.range(200, 3000);
                self.start_fault(kind, ActiveFault::Cut { pairs }, duration);
            }
            1 | 2 => {
                let target = if kind == 1 { Some(*self.rng.pick(&ids)) } else { self.leaders().first().copied() };
                let Some(server) = target else { return };
                let pairs = self.isolate(server);
                self.stats.partitions += 1;
                self.cut_links(&pairs, true);
                let duration = self.rng.range(200, 3000);
                self.start_fault(kind, ActiveFault::Cut { pairs }, duration);
            }
            3 => {
                let server = *self.rng.pick(&ids);
                let pairs = if self.rng.percent(50) {
                    self.isolate(server)
                } else {
                    let others: Vec<ServerId> = ids.iter().copied().filter(|&id| id != server).collect();
                    vec![(server, *self.rng.pick(&others))]
                };
                let flips = self.rng.range(3, 10) as u32 * 2;
                let delay = self.rng.range(1, 50);
                self.start_fault(kind, ActiveFault::Flap { pairs, down: false, flips_left: flips }, delay);
            }
            4 => {
                let up: Vec<ServerId> = ids.iter().copied().filter(|&id| self.is_up(id)).collect();
                if up.is_empty() {
                    return;
                }
                let server = *self.rng.pick(&up);
                let tear = self.rng.percent(50);
                self.crash_server(server, tear);
                let duration = self.rng.range(50, 3000);
                self.start_fault(kind, ActiveFault::Crash { server }, duration);
            }
            5 => {
                let candidates: Vec<ServerId> =
                    ids.iter().copied().filter(|&id| self.is_up(id) && !self.servers[&id].paused).collect();
                if candidates.is_empty() {
                    return;
                }
                let server = *self.rng.pick(&candidates);
                let session_max = self.session_timeout_ms_max;
                let duration = if self.rng.percent(50) {
                    self.rng.range(50, 800)
                } else {
                    // Longer than any session timeout: the GC pause that outlives sessions.
                    self.rng.range(session_max + 500, session_max * 2 + 1000)
                };
                if self.pause_server(server) {
                    let incarnation = self.servers[&server].incarnation;
                    self.start_fault(kind, ActiveFault::Pause { server, incarnation }, duration);
                }
            }
            6 => {
                let server = *self.rng.pick(&ids);
                self.servers.get_mut(&server).expect("known server").fsync_ms = (50, 1200);
                let duration = self.rng.range(500, 4000);
                self.start_fault(kind, ActiveFault::SlowFsync { server }, duration);
            }
            7 => {
                let server = *self.rng.pick(&ids);
                self.servers.get_mut(&server).expect("known server").spike_ms = (50, 800);
                let duration = self.rng.range(300, 3000);
                self.start_fault(kind, ActiveFault::LatencySpike { server }, duration);
            }
            8 => {
                let servers: Vec<ServerId> = ids.iter().copied().filter(|&id| self.is_up(id)).collect();
                for &server in &servers {
                    let tear = self.rng.percent(50);
                    self.crash_server(server, tear);
                }
                // Servers come back one at a time, in a random order: the first ones to
                // return may form a quorum with a different history than the last ones.
                let mut order = servers.clone();
                for index in (1..order.len()).rev() {
                    let other = self.rng.index(index + 1);
                    order.swap(index, other);
                }
                let duration = self.rng.range(100, 2000);
                let last = order.pop();
                for server in order {
                    let delay = self.rng.range(20, duration);
                    self.start_fault(4, ActiveFault::Crash { server }, delay);
                }
                let servers = last.into_iter().collect();
                self.start_fault(kind, ActiveFault::PowerLoss { servers }, duration);
            }
            9 => {
                // A random group's frames to the rest are dropped, or the other way round;
                // half of the time the group is the leader.
                let leader = self.leaders().first().copied();
                let group: Vec<ServerId> = match leader {
                    Some(leader) if self.rng.percent(50) => vec![leader],
                    _ => {
                        let mut shuffled = ids.clone();
                        for index in (1..shuffled.len()).rev() {
                            let other = self.rng.index(index + 1);
                            shuffled.swap(index, other);
                        }
                        let size = self.rng.range(1, (ids.len() / 2).max(1) as u64) as usize;
                        shuffled[..size].to_vec()
                    }
                };
                let rest: Vec<ServerId> = ids.iter().copied().filter(|id| !group.contains(id)).collect();
                let outgoing = self.rng.percent(50);
                let directed: Vec<(ServerId, ServerId)> = World::pairs_between(&group, &rest)
                    .into_iter()
                    .map(|(a, b)| if outgoing { (a, b) } else { (b, a) })
                    .collect();
                self.stats.partitions += 1;
                self.cut_one_way(&directed, true);
                let duration = self.rng.range(200, 3000);
                self.start_fault(kind, ActiveFault::OneWay { directed }, duration);
            }
            10 => {
                let server = *self.rng.pick(&ids);
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
                self.skew_clock(server, jump_ms, rate_permille);
                let duration = self.rng.range(500, 4000);
                self.start_fault(kind, ActiveFault::ClockSkew { server }, duration);
            }
            11 => {
                let up: Vec<ServerId> = ids.iter().copied().filter(|&id| self.is_up(id)).collect();
                if up.is_empty() {
                    return;
                }
                let server = *self.rng.pick(&up);
                let tear = self.rng.percent(50);
                self.crash_for_corrupt_read(server, tear);
                let duration = self.rng.range(50, 2000);
                self.start_fault(kind, ActiveFault::Crash { server }, duration);
            }
            12 => {
                let server = *self.rng.pick(&ids);
                self.servers.get_mut(&server).expect("known server").disk_full = true;
                let duration = self.rng.range(300, 3000);
                self.start_fault(kind, ActiveFault::DiskFull { server }, duration);
            }
            _ => unreachable!("thirteen fault kinds"),
        }
    }
}
