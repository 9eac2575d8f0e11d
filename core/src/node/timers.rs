//! The node's timers: one named enum and one deadline table per role.
//!
//! A role keeps its deadlines in a [`Deadlines`] table keyed by [`Timer`]; its
//! `poll_timeout` is the earliest deadline among the timers that wake it, and its
//! `timeout` handler fires the due ones by name, in a fixed order. The election keeps its
//! own timers inside [`crate::zab::election::Election`]. A leader's session expiry is not
//! stored here: its deadline is the session table's next expiry, read when asked.

/// A named timer of a leader or a learner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// Leader: the next ping to the learners (which also drops silent ones and renews the
    /// lease through a confirmation round).
    Ping,
    /// Leader: a leader-elect that has not established its epoch by here steps down.
    InitLimit,
    /// Leader in broadcast: the next session expiry (read from the session table).
    SessionExpiry,
    /// Leader in broadcast: the next sweep for empty containers and expired TTL nodes.
    ContainerCheck,
    /// Learner: the leader is given up on if silent until here.
    LeaderSilence,
    /// Learner in discovery: when to say hello (FOLLOWERINFO) again.
    HelloResend,
}

impl Timer {
    const COUNT: usize = 6;

    fn index(self) -> usize {
        match self {
            Timer::Ping => 0,
            Timer::InitLimit => 1,
            Timer::SessionExpiry => 2,
            Timer::ContainerCheck => 3,
            Timer::LeaderSilence => 4,
            Timer::HelloResend => 5,
        }
    }
}

/// Deadlines (monotonic milliseconds) keyed by [`Timer`]; a timer without one is unset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Deadlines {
    at_ms: [Option<u64>; Timer::COUNT],
}

impl Deadlines {
    pub(super) fn set(&mut self, timer: Timer, at_ms: u64) {
        self.at_ms[timer.index()] = Some(at_ms);
    }

    pub(super) fn get(&self, timer: Timer) -> Option<u64> {
        self.at_ms[timer.index()]
    }

    /// Whether `timer` is set and its deadline is at or before `now_ms`.
    pub(super) fn is_due(&self, timer: Timer, now_ms: u64) -> bool {
        self.get(timer).is_some_and(|at_ms| now_ms >= at_ms)
    }
}

/// The earliest of `deadlines` that are set.
pub(super) fn earliest(deadlines: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    deadlines.into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_keeps_one_deadline_per_timer() {
        let mut deadlines = Deadlines::default();
        assert_eq!(deadlines.get(Timer::Ping), None);
        assert!(!deadlines.is_due(Timer::Ping, u64::MAX));
        deadlines.set(Timer::Ping, 500);
        deadlines.set(Timer::ContainerCheck, 300);
        deadlines.set(Timer::Ping, 700);
        assert_eq!(deadlines.get(Timer::Ping), Some(700));
        assert!(deadlines.is_due(Timer::ContainerCheck, 300));
        assert!(!deadlines.is_due(Timer::Ping, 699));
        let timers = [Timer::Ping, Timer::ContainerCheck, Timer::HelloResend];
        assert_eq!(earliest(timers.map(|timer| deadlines.get(timer))), Some(300));
        assert_eq!(earliest([None, None]), None);
    }
}
