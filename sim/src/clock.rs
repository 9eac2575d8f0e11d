//! A server's clocks: a monotonic clock that drives its timers and session expiry, and a
//! wall clock that a leader stamps into txns. Without the clock-skew fault both follow
//! virtual time exactly; with it, the wall clock jumps (forward or back) and the monotonic
//! clock runs faster or slower than virtual time, but never backwards.

/// A server's view of time. Its monotonic clock runs at `rate_permille` of virtual time
/// (and never goes back); its wall clock is virtual time plus `wall_offset_ms` from the
/// run's wall-clock start, and jumps when the offset changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// The monotonic reading at virtual time `virtual_base_ms`.
    mono_base_ms: u64,
    virtual_base_ms: u64,
    pub rate_permille: u64,
    pub wall_offset_ms: i64,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock { mono_base_ms: 0, virtual_base_ms: 0, rate_permille: 1000, wall_offset_ms: 0 }
    }
}

impl Clock {
    /// The monotonic reading at virtual time `virtual_ms`.
    pub fn monotonic_ms(&self, virtual_ms: u64) -> u64 {
        debug_assert!(virtual_ms >= self.virtual_base_ms);
        self.mono_base_ms + (virtual_ms - self.virtual_base_ms) * self.rate_permille / 1000
    }

    /// The first virtual time at which the monotonic clock reads at least `monotonic_ms`.
    pub fn virtual_ms(&self, monotonic_ms: u64) -> u64 {
        if monotonic_ms <= self.mono_base_ms {
            return self.virtual_base_ms;
        }
        let ahead = monotonic_ms - self.mono_base_ms;
        self.virtual_base_ms + (ahead * 1000).div_ceil(self.rate_permille)
    }

    /// From virtual time `now_ms` on, the monotonic clock runs at `rate_permille`.
    pub fn set_rate(&mut self, now_ms: u64, rate_permille: u64) {
        assert!(rate_permille > 0, "a clock that stops is not a clock");
        self.mono_base_ms = self.monotonic_ms(now_ms);
        self.virtual_base_ms = now_ms;
        self.rate_permille = rate_permille;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unskewed_clock_is_virtual_time() {
        let clock = Clock::default();
        assert_eq!(clock.monotonic_ms(1234), 1234);
        assert_eq!(clock.virtual_ms(1234), 1234);
    }

    #[test]
    fn a_skewed_clock_stays_monotonic_and_timers_fire_no_earlier_than_their_deadline() {
        let mut clock = Clock::default();
        clock.set_rate(1000, 1100);
        let mut last = clock.monotonic_ms(1000);
        assert_eq!(last, 1000, "a rate change does not jump the monotonic clock");
        for now in 1000..3000 {
            let reading = clock.monotonic_ms(now);
            assert!(reading >= last, "monotonic at {now}");
            last = reading;
        }
        clock.set_rate(3000, 900);
        for deadline in last..last + 500 {
            let at = clock.virtual_ms(deadline);
            assert!(clock.monotonic_ms(at) >= deadline, "a timer at {at} sees its deadline {deadline}");
            assert!(at == 3000 || clock.monotonic_ms(at - 1) < deadline, "and not a millisecond later than needed");
        }
    }
}
