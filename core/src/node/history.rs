//! A server's history: the txns in its log that it still keeps in memory, in zxid order,
//! each chained to the one before it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::txn::LogEntry;
use crate::zab::message::HistorySummary;
use crate::zab::{epoch_of, make_zxid};

/// The log since `base_zxid` (a snapshot point, or the zxid before the oldest entry kept).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct History {
    base_zxid: i64,
    /// Shared, so applying committed entries does not copy them.
    entries: VecDeque<Arc<LogEntry>>,
    /// The entries' approximate size ([`crate::txn::Txn::approximate_bytes`]).
    bytes: usize,
    /// How many times entries were replaced or dropped from the end (a truncation or a
    /// reset); trimming the oldest ones does not count. While it stays the same, an entry
    /// once seen stays the same entry as long as it is held, so a checker need only look
    /// at what was appended since.
    rewrites: u64,
}

impl History {
    pub(crate) fn new(base_zxid: i64, entries: Vec<LogEntry>) -> History {
        let mut history = History { base_zxid, entries: VecDeque::new(), bytes: 0, rewrites: 0 };
        for entry in entries {
            history.append(entry);
        }
        history
    }

    pub(crate) fn base_zxid(&self) -> i64 {
        self.base_zxid
    }

    pub(crate) fn rewrites(&self) -> u64 {
        self.rewrites
    }

    pub(crate) fn last_zxid(&self) -> i64 {
        self.entries.back().map_or(self.base_zxid, |entry| entry.zxid())
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &LogEntry> {
        self.entries.iter().map(|entry| &**entry)
    }

    fn position(&self, zxid: i64) -> Result<usize, usize> {
        // Zxids of one epoch are consecutive, so an entry of the last one's epoch sits at its
        // distance from the end: one look, where a search of 25,000 shared entries misses
        // the cache a dozen times (it was ~1% of a session churn's CPU).
        if let Some(last) = self.entries.back() {
            let distance = last.zxid().wrapping_sub(zxid);
            if (0..self.entries.len() as i64).contains(&distance) {
                let index = self.entries.len() - 1 - distance as usize;
                if self.entries[index].zxid() == zxid {
                    return Ok(index);
                }
            }
        }
        self.entries.binary_search_by_key(&zxid, |entry| entry.zxid())
    }

    /// The index of the first entry after `zxid`.
    fn index_after(&self, zxid: i64) -> usize {
        match self.position(zxid) {
            Ok(index) => index + 1,
            Err(index) => index,
        }
    }

    pub(crate) fn get(&self, zxid: i64) -> Option<&LogEntry> {
        self.position(zxid).ok().map(|index| &*self.entries[index])
    }

    /// Appends an entry that chains from the current last one.
    pub(crate) fn append(&mut self, entry: impl Into<Arc<LogEntry>>) {
        let entry = entry.into();
        assert_eq!(entry.prev_zxid, self.last_zxid(), "history entries chain");
        assert!(entry.zxid() > self.last_zxid(), "history zxids increase");
        self.bytes += entry.txn.approximate_bytes();
        self.entries.push_back(entry);
    }

    /// Entries after `zxid`, which must be the base or an entry.
    pub(crate) fn after(&self, zxid: i64) -> Vec<LogEntry> {
        debug_assert!(zxid == self.base_zxid || self.get(zxid).is_some());
        let start = self.index_after(zxid);
        self.entries.range(start..).map(|entry| LogEntry::clone(entry)).collect()
    }

    /// Entries after `zxid` (any zxid: a position is found by search, not by a walk).
    pub(crate) fn entries_after(&self, zxid: i64) -> impl Iterator<Item = &LogEntry> {
        let start = self.index_after(zxid);
        self.entries.range(start..).map(|entry| &**entry)
    }

    /// Entries in (from, to].
    pub(crate) fn range(&self, from: i64, to: i64) -> impl Iterator<Item = &LogEntry> {
        let start = self.index_after(from);
        self.entries.range(start..).take_while(move |entry| entry.zxid() <= to).map(|entry| &**entry)
    }

    /// Entries in (from, to], shared (no copy of the txns).
    pub(crate) fn shared_range(&self, from: i64, to: i64) -> Vec<Arc<LogEntry>> {
        let start = self.index_after(from);
        self.entries.range(start..).take_while(|entry| entry.zxid() <= to).cloned().collect()
    }

    /// Drops every entry after `zxid` (which must not be below the base).
    pub(crate) fn truncate_after(&mut self, zxid: i64) {
        assert!(zxid >= self.base_zxid, "cannot truncate below the snapshot");
        self.rewrites += 1;
        while self.entries.back().is_some_and(|entry| entry.zxid() > zxid) {
            let entry = self.entries.pop_back().expect("checked non-empty");
            self.bytes -= entry.txn.approximate_bytes();
        }
    }

    /// Replaces everything with an empty history after `base_zxid` (a SNAP sync).
    pub(crate) fn reset(&mut self, base_zxid: i64) {
        self.entries.clear();
        self.bytes = 0;
        self.rewrites += 1;
        self.base_zxid = base_zxid;
    }

    /// Forgets the oldest entries at or below `applied_zxid` while more than `keep_max`
    /// are held or they take more than `bytes_max`; the base moves up to the last one
    /// forgotten.
    pub(crate) fn trim(&mut self, applied_zxid: i64, keep_max: usize, bytes_max: usize) {
        while (self.entries.len() > keep_max || self.bytes > bytes_max)
            && self.entries.front().is_some_and(|entry| entry.zxid() <= applied_zxid)
        {
            let entry = self.entries.pop_front().expect("checked non-empty");
            self.bytes -= entry.txn.approximate_bytes();
            self.base_zxid = entry.zxid();
        }
    }

    /// The base and the last zxid held in each epoch: what the leader needs to find where
    /// two histories part.
    pub(crate) fn summary(&self) -> HistorySummary {
        let mut epoch_ends: Vec<i64> = Vec::new();
        for entry in &self.entries {
            match epoch_ends.last_mut() {
                Some(last) if epoch_of(*last) == epoch_of(entry.zxid()) => *last = entry.zxid(),
                _ => epoch_ends.push(entry.zxid()),
            }
        }
        HistorySummary { base_zxid: self.base_zxid, epoch_ends }
    }
}

/// Where a learner's history and the leader's part: the last zxid both hold as the same
/// txn. Within one epoch every server's txns are a prefix of the one sequence that epoch's
/// leader proposed, and two servers that both hold txns of an epoch hold identical
/// histories before it; so the divergence point lies in the latest epoch both have txns
/// in, at the smaller of their last zxids there. A snapshot base counts as the end of its
/// epoch's prefix.
pub(crate) fn divergence_point(leader: &HistorySummary, learner: &HistorySummary) -> i64 {
    fn ends(summary: &HistorySummary) -> BTreeMap<u32, i64> {
        let mut ends = BTreeMap::new();
        if summary.base_zxid > 0 {
            ends.insert(epoch_of(summary.base_zxid), summary.base_zxid);
        }
        for &zxid in &summary.epoch_ends {
            ends.insert(epoch_of(zxid), zxid);
        }
        ends
    }
    let leader_ends = ends(leader);
    let learner_ends = ends(learner);
    for (epoch, learner_end) in learner_ends.iter().rev() {
        if let Some(leader_end) = leader_ends.get(epoch) {
            return (*leader_end).min(*learner_end);
        }
    }
    // No epoch in common: only the empty history is shared.
    make_zxid(0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Txn, TxnHeader};

    fn entry(prev_zxid: i64, zxid: i64) -> LogEntry {
        LogEntry { prev_zxid, header: TxnHeader { zxid, ..Default::default() }, txn: Txn::Error(crate::ErrorCode::Ok) }
    }

    fn history(base: i64, zxids: &[i64]) -> History {
        let mut history = History::new(base, Vec::new());
        for &zxid in zxids {
            history.append(entry(history.last_zxid(), zxid));
        }
        history
    }

    const fn z(epoch: u32, counter: u32) -> i64 {
        ((epoch as i64) << 32) | counter as i64
    }

    #[test]
    fn positions_are_found_across_epochs_and_gaps() {
        // Consecutive counters at the end (the quick look), an epoch change, a gap in the
        // counters (a history cut and rejoined), zxids outside and between.
        let zxids = [z(1, 1), z(1, 2), z(1, 3), z(2, 7), z(2, 9), z(3, 1), z(3, 2), z(3, 3), z(3, 4)];
        let history = history(0, &zxids);
        for probe in [0, z(1, 0), z(1, 4), z(2, 1), z(2, 8), z(3, 0), z(3, 5), z(4, 0), i64::MAX, i64::MIN]
            .into_iter()
            .chain(zxids)
        {
            let expected = zxids.binary_search(&probe);
            assert_eq!(history.position(probe), expected, "zxid {probe:#x}");
        }
        assert_eq!(History::new(5, Vec::new()).position(5), Err(0));
    }

    #[test]
    fn summary_lists_the_end_of_each_epoch() {
        let history = history(z(1, 2), &[z(1, 3), z(1, 4), z(3, 1), z(4, 1), z(4, 2)]);
        assert_eq!(
            history.summary(),
            HistorySummary { base_zxid: z(1, 2), epoch_ends: vec![z(1, 4), z(3, 1), z(4, 2)] }
        );
        assert_eq!(history.summary().last_zxid(), z(4, 2));
    }

    #[test]
    fn divergence_of_a_lagging_learner_is_its_last_zxid() {
        let leader = history(0, &[z(1, 1), z(1, 2), z(2, 1)]).summary();
        let learner = history(0, &[z(1, 1)]).summary();
        assert_eq!(divergence_point(&leader, &learner), z(1, 1));
    }

    #[test]
    fn divergence_of_a_learner_ahead_in_the_same_epoch_is_the_leaders_last_zxid() {
        let leader = history(0, &[z(1, 1)]).summary();
        let learner = history(0, &[z(1, 1), z(1, 2), z(1, 3)]).summary();
        assert_eq!(divergence_point(&leader, &learner), z(1, 1));
    }

    /// ZOOKEEPER-2832's shape: epoch 2's leader logged 2:1 alone and died; epoch 3's
    /// leader has 1:2, which the learner never saw. TRUNC must go back to 1:1, not to the
    /// leader's zxid just below the learner's (1:2), which the learner does not hold.
    #[test]
    fn divergence_across_a_minority_epoch_goes_back_to_the_shared_epoch() {
        let leader = history(0, &[z(1, 1), z(1, 2), z(3, 1)]).summary();
        let learner = history(0, &[z(1, 1), z(2, 1)]).summary();
        assert_eq!(divergence_point(&leader, &learner), z(1, 1));
    }

    #[test]
    fn divergence_with_snapshot_bases() {
        // The leader's log starts after a snapshot at 1:5; the learner only reached 1:3.
        let leader = history(z(1, 5), &[z(2, 1)]).summary();
        let learner = history(0, &[z(1, 1), z(1, 2), z(1, 3)]).summary();
        assert_eq!(divergence_point(&leader, &learner), z(1, 3));
        // Nothing in common at all.
        let learner = history(0, &[z(7, 1)]).summary();
        assert_eq!(divergence_point(&leader, &learner), 0);
    }

    #[test]
    fn truncate_range_and_trim() {
        let mut history = history(0, &[z(1, 1), z(1, 2), z(1, 3), z(1, 4)]);
        assert_eq!(history.range(z(1, 1), z(1, 3)).map(LogEntry::zxid).collect::<Vec<_>>(), vec![z(1, 2), z(1, 3)]);
        assert_eq!(history.after(0).len(), 4);
        history.truncate_after(z(1, 2));
        assert_eq!(history.last_zxid(), z(1, 2));
        history.trim(z(1, 1), 1, usize::MAX);
        assert_eq!((history.base_zxid(), history.entries().count()), (z(1, 1), 1));
        history.trim(z(1, 2), 0, usize::MAX);
        assert_eq!((history.base_zxid(), history.entries().count(), history.last_zxid()), (z(1, 2), 0, z(1, 2)));
        assert_eq!(history.bytes, 0);
    }

    /// The history is bounded by bytes too: big txns leave it sooner.
    #[test]
    fn trim_keeps_the_bytes_under_the_bound() {
        let mut history = history(0, &[z(1, 1), z(1, 2), z(1, 3), z(1, 4)]);
        let each = entry(z(1, 1), z(1, 2)).txn.approximate_bytes();
        assert_eq!(history.bytes, 4 * each);
        history.trim(z(1, 4), 100, 2 * each);
        assert_eq!((history.base_zxid(), history.entries().count(), history.bytes), (z(1, 2), 2, 2 * each));
        history.trim(z(1, 3), 0, 0);
        assert_eq!(history.entries().count(), 1, "never past what is applied");
    }

    #[test]
    #[should_panic(expected = "chain")]
    fn an_unchained_entry_is_refused() {
        let mut history = history(0, &[z(1, 1)]);
        history.append(entry(z(1, 5), z(1, 6)));
    }
}
