//! The run's one source of randomness: a ChaCha stream seeded by the run's seed. Every
//! random choice in a run (latencies, faults, workloads) is drawn from it in event order,
//! so the same seed replays the same run.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Seeded randomness with the few shapes the simulator needs.
#[derive(Clone, Debug)]
pub struct SimRng {
    stream: ChaCha8Rng,
}

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng { stream: ChaCha8Rng::seed_from_u64(seed) }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.stream.next_u64()
    }

    /// Uniform in `0..count`; `count` must be positive.
    pub fn below(&mut self, count: u64) -> u64 {
        assert!(count > 0, "below(0) has no value to return");
        // Lemire's multiply-shift; the bias for the small ranges used here is negligible
        // and, more to the point, deterministic.
        ((u128::from(self.next_u64()) * u128::from(count)) >> 64) as u64
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "empty range {low}..={high}");
        low + self.below(high - low + 1)
    }

    /// True with probability `numerator / denominator`.
    pub fn ratio(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// True with probability `percent / 100`.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.ratio(percent, 100)
    }

    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// Shuffles `items` in place (Fisher–Yates, from the back): every order is equally
    /// likely, and the draws are one `index` per position, so a seed replays the order.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for index in (1..items.len()).rev() {
            let other = self.index(index + 1);
            items.swap(index, other);
        }
    }

    /// An index chosen with probability proportional to its weight; `None` when every
    /// weight is zero.
    pub fn weighted(&mut self, weights: &[u32]) -> Option<usize> {
        let total: u64 = weights.iter().map(|&weight| u64::from(weight)).sum();
        if total == 0 {
            return None;
        }
        let mut roll = self.below(total);
        for (index, &weight) in weights.iter().enumerate() {
            if roll < u64::from(weight) {
                return Some(index);
            }
            roll -= u64::from(weight);
        }
        unreachable!("the roll is below the total weight")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream_and_another_seed_another() {
        let first: Vec<u64> = (0..8)
            .map({
                let mut rng = SimRng::new(7);
                move |_| rng.next_u64()
            })
            .collect();
        let again: Vec<u64> = (0..8)
            .map({
                let mut rng = SimRng::new(7);
                move |_| rng.next_u64()
            })
            .collect();
        let other: Vec<u64> = (0..8)
            .map({
                let mut rng = SimRng::new(8);
                move |_| rng.next_u64()
            })
            .collect();
        assert_eq!(first, again);
        assert_ne!(first, other);
    }

    #[test]
    fn ranges_and_weights_stay_in_bounds() {
        let mut rng = SimRng::new(1);
        for _ in 0..1000 {
            let value = rng.range(3, 5);
            assert!((3..=5).contains(&value));
            assert_ne!(rng.weighted(&[0, 2, 0, 1]), Some(0));
        }
        assert_eq!(rng.weighted(&[0, 0]), None);
    }

    #[test]
    fn a_shuffle_keeps_every_item_and_replays_with_the_seed() {
        let shuffled = |seed| {
            let mut items: Vec<u32> = (0..10).collect();
            SimRng::new(seed).shuffle(&mut items);
            items
        };
        let mut sorted = shuffled(3);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<u32>>());
        assert_eq!(shuffled(3), shuffled(3));
        assert_ne!(shuffled(3), (0..10).collect::<Vec<u32>>());
        let mut empty: [u32; 0] = [];
        SimRng::new(3).shuffle(&mut empty);
    }
}
