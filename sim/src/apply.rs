//! The one path that applies a fault step, whether random injection drew it
//! ([`crate::faults`]) or a scenario's timeline scripted it ([`crate::timeline`]).
//!
//! A step names its servers through [`Target`]s, resolved here against the ensemble as it
//! is at that instant; random injection resolves its own choices first and passes
//! [`Target::Servers`]. A step whose target does not exist then is not applied, and
//! `World::apply_step` says so. Every fault it starts is counted under the kind the
//! caller gives and undone by [`crate::faults`] when its time is up.

use zk_core::node::RoleName;
use zk_core::zab::ServerId;

use crate::config::FaultKind;
use crate::faults::ActiveFault;
use crate::timeline::{FaultStep, RestartOrder, Target, Tear};
use crate::world::World;

impl World {
    /// Applies `step`, counting what it starts under `kind`. Returns whether it acted on
    /// anything (false: its targets did not exist now).
    pub(crate) fn apply_step(&mut self, kind: FaultKind, step: &FaultStep) -> bool {
        match step {
            FaultStep::Partition { group, from, duration_ms } => {
                self.apply_partition(kind, group, from.as_ref(), *duration_ms, false)
            }
            FaultStep::AsymmetricPartition { group, to, duration_ms } => {
                self.apply_partition(kind, group, to.as_ref(), *duration_ms, true)
            }
            FaultStep::Flap { a, b, times, period_ms } => self.apply_flap(kind, a, b.as_ref(), *times, *period_ms),
            FaultStep::Crash { target, tear, restart_after_ms, order, restart_gap_ms } => {
                self.apply_crash(kind, target, *tear, *restart_after_ms, *order, *restart_gap_ms)
            }
            FaultStep::Restart { target, order, gap_ms } => self.apply_restart(kind, target, *order, *gap_ms),
            FaultStep::Pause { target, duration_ms } => {
                let mut any = false;
                for server in self.resolve(target) {
                    if self.pause_server(server) {
                        let incarnation = self.servers[&server].incarnation;
                        self.start_fault(kind, ActiveFault::Pause { server, incarnation }, *duration_ms);
                        any = true;
                    }
                }
                any
            }
            FaultStep::SlowFsync { target, duration_ms, fsync_ms } => {
                self.apply_to_each(kind, target, *duration_ms, |world, server| {
                    world.servers.get_mut(&server).expect("known server").fsync_ms = *fsync_ms;
                    ActiveFault::SlowFsync { server }
                })
            }
            FaultStep::LatencySpike { target, duration_ms, spike_ms } => {
                self.apply_to_each(kind, target, *duration_ms, |world, server| {
                    world.servers.get_mut(&server).expect("known server").spike_ms = *spike_ms;
                    ActiveFault::LatencySpike { server }
                })
            }
            FaultStep::ClockSkew { target, duration_ms, jump_ms, rate_permille } => {
                self.apply_to_each(kind, target, *duration_ms, |world, server| {
                    world.skew_clock(server, *jump_ms, *rate_permille);
                    ActiveFault::ClockSkew { server }
                })
            }
            FaultStep::CorruptRead { target, restart_after_ms } => {
                let up = Target::Servers(self.resolve(target).into_iter().filter(|&id| self.is_up(id)).collect());
                self.apply_to_each(kind, &up, *restart_after_ms, |world, server| {
                    let tear = world.rng.percent(50);
                    world.crash_for_corrupt_read(server, tear);
                    ActiveFault::Crash { server }
                })
            }
            FaultStep::DiskFull { target, duration_ms } => {
                self.apply_to_each(kind, target, *duration_ms, |world, server| {
                    world.servers.get_mut(&server).expect("known server").disk_full = true;
                    ActiveFault::DiskFull { server }
                })
            }
        }
    }

    /// Resolves a target to server ids, now. Empty when it names nothing that exists.
    pub(crate) fn resolve(&mut self, target: &Target) -> Vec<ServerId> {
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

    /// `group` and the servers of `other` outside it (`None`: every other server).
    fn resolve_sides(&mut self, group: &Target, other: Option<&Target>) -> (Vec<ServerId>, Vec<ServerId>) {
        let group = self.resolve(group);
        let rest = match other {
            Some(target) => self.resolve(target),
            None => self.server_ids(),
        };
        let rest = rest.into_iter().filter(|id| !group.contains(id)).collect();
        (group, rest)
    }

    /// Cuts the links between `group` and `other` both ways, or (`one_way`) drops only the
    /// frames from `group` to `other`.
    fn apply_partition(
        &mut self,
        kind: FaultKind,
        group: &Target,
        other: Option<&Target>,
        duration_ms: u64,
        one_way: bool,
    ) -> bool {
        let (group, rest) = self.resolve_sides(group, other);
        if group.is_empty() || rest.is_empty() {
            return false;
        }
        let pairs = World::pairs_between(&group, &rest);
        self.stats.partitions += 1;
        if one_way {
            self.cut_one_way(&pairs, true);
            self.start_fault(kind, ActiveFault::OneWay { directed: pairs }, duration_ms);
        } else {
            self.cut_links(&pairs, true);
            self.start_fault(kind, ActiveFault::Cut { pairs }, duration_ms);
        }
        true
    }

    fn apply_flap(&mut self, kind: FaultKind, a: &Target, b: Option<&Target>, times: u32, period_ms: u64) -> bool {
        let (a, b) = self.resolve_sides(a, b);
        if a.is_empty() || b.is_empty() || times == 0 {
            return false;
        }
        let pairs = World::pairs_between(&a, &b);
        self.start_fault(kind, ActiveFault::Flap { pairs, down: false, flips_left: times * 2, period_ms }, 0);
        true
    }

    fn apply_crash(
        &mut self,
        kind: FaultKind,
        target: &Target,
        tear: Tear,
        restart_after_ms: Option<u64>,
        order: RestartOrder,
        restart_gap_ms: u64,
    ) -> bool {
        let mut servers: Vec<ServerId> = self.resolve(target).into_iter().filter(|&id| self.is_up(id)).collect();
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
        let Some(after_ms) = restart_after_ms else {
            for server in servers {
                self.count_fault(kind);
                if !self.timeline.crashed.contains(&server) {
                    self.timeline.crashed.push(server);
                }
            }
            return true;
        };
        if order == RestartOrder::Reverse {
            servers.reverse();
        }
        for (position, server) in servers.into_iter().enumerate() {
            let delay = after_ms + position as u64 * restart_gap_ms;
            self.start_fault(kind, ActiveFault::Crash { server }, delay);
        }
        true
    }

    fn apply_restart(&mut self, kind: FaultKind, target: &Target, order: RestartOrder, gap_ms: u64) -> bool {
        let mut servers: Vec<ServerId> = self.resolve(target).into_iter().filter(|&id| !self.is_up(id)).collect();
        if servers.is_empty() {
            return false;
        }
        if order == RestartOrder::Reverse {
            servers.reverse();
        }
        self.timeline.crashed.retain(|id| !servers.contains(id));
        for (position, server) in servers.into_iter().enumerate() {
            if position == 0 || gap_ms == 0 {
                self.stats.restarts += 1;
                self.start_server(server);
            } else {
                // A crash fault that has already happened, ending when the server is due
                // back; the crash itself was counted when it happened.
                self.arm_fault(kind, ActiveFault::Crash { server }, position as u64 * gap_ms);
            }
        }
        true
    }

    /// Applies `effect` to each server of `target` and starts the fault it returns, for
    /// `duration_ms`.
    fn apply_to_each(
        &mut self,
        kind: FaultKind,
        target: &Target,
        duration_ms: u64,
        mut effect: impl FnMut(&mut World, ServerId) -> ActiveFault,
    ) -> bool {
        let servers = self.resolve(target);
        if servers.is_empty() {
            return false;
        }
        for server in servers {
            let fault = effect(self, server);
            self.start_fault(kind, fault, duration_ms);
        }
        true
    }
}
