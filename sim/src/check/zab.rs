//! ZAB's safety properties, checked after every event that touched a server:
//!
//! - agreement: no two servers ever hold different committed txns at one zxid;
//! - one established leader per epoch;
//! - nothing committed is ever lost: at the end, every server's log holds every txn any
//!   server ever held as committed (above its snapshot), and reaches the last of them.
//!
//! Reference: Zab paper (DSN 2011), section IV, properties "agreement", "primary order"
//! and "integrity"; ZooKeeper's guarantee that a committed txn survives any failure of a
//! minority.

use std::collections::BTreeMap;
use std::ops::Bound;

use zk_core::txn::LogEntry;
use zk_core::zab::ServerId;

use crate::trace;

/// What the ZAB checker has learned so far.
#[derive(Clone, Debug, Default)]
pub struct ZabChecker {
    /// Every txn some server held as committed, by zxid.
    committed: BTreeMap<i64, LogEntry>,
    /// When each txn was first seen committed: the txn took effect no later.
    committed_ms: BTreeMap<i64, u64>,
    /// The server that established each epoch.
    leaders: BTreeMap<u32, ServerId>,
    /// Per server, the committed zxid up to which its history was compared, and its
    /// history's count of rewrites then (a truncation or a reset since means its history
    /// must be compared again; trimming its oldest entries changes none it still holds).
    compared: BTreeMap<ServerId, (i64, u64)>,
    /// The epoch whose leader was reported last, for the trace.
    last_reported_epoch: Option<u32>,
}

impl ZabChecker {
    /// The committed ledger: every txn known committed, by zxid.
    pub fn committed(&self) -> &BTreeMap<i64, LogEntry> {
        &self.committed
    }

    /// Whether the ledger holds every committed txn: each txn's `prev_zxid` names the txn
    /// before it, from the first txn ever. A txn committed and trimmed from every history
    /// between two looks would leave a gap.
    pub fn ledger_is_complete(&self) -> bool {
        let mut previous = 0;
        for entry in self.committed.values() {
            if entry.prev_zxid != previous {
                return false;
            }
            previous = entry.zxid();
        }
        true
    }

    /// When the txn at `zxid` was first seen committed.
    pub fn committed_at_ms(&self, zxid: i64) -> Option<u64> {
        self.committed_ms.get(&zxid).copied()
    }

    /// The server restarted with a history read from disk: compare all of it again.
    pub fn restarted(&mut self, server: ServerId) {
        self.compared.remove(&server);
    }

    /// Whether `epoch` is a newly seen established epoch (once per epoch, for the trace).
    pub fn leader_is_new(&mut self, epoch: u32) -> bool {
        let new = self.last_reported_epoch != Some(epoch);
        self.last_reported_epoch = Some(epoch);
        new
    }

    /// Looks at one server after an event: `leading_epoch` is its epoch when it leads an
    /// established epoch; `history_after(zxid)` its in-memory log from the first entry after
    /// `zxid` on, so only what is new since the last look is walked; `rewrites` how many
    /// times that log was truncated or reset ([`zk_core::node::Node::history_rewrites`]);
    /// `committed_zxid` how far it holds that log committed.
    pub fn observe<'a, I: Iterator<Item = &'a LogEntry>>(
        &mut self,
        now_ms: u64,
        server: ServerId,
        leading_epoch: Option<u32>,
        rewrites: u64,
        history_after: impl FnOnce(i64) -> I,
        committed_zxid: i64,
    ) -> Result<(), String> {
        if let Some(epoch) = leading_epoch {
            let leader = *self.leaders.entry(epoch).or_insert(server);
            if leader != server {
                return Err(format!("servers {leader} and {server} both established epoch {epoch} as leader"));
            }
        }
        let (compared_zxid, compared_rewrites) = self.compared.get(&server).copied().unwrap_or((i64::MIN, rewrites));
        let from = if compared_rewrites == rewrites { compared_zxid } else { i64::MIN };
        if committed_zxid <= from {
            return Ok(());
        }
        // The ledger's txns in the same zxid range, walked in step with the history (both
        // ascend) rather than looked up one by one; txns new to the ledger are added after.
        let mut known = self.committed.range((Bound::Excluded(from), Bound::Included(committed_zxid))).peekable();
        let mut new: Vec<&LogEntry> = Vec::new();
        let mut problem = None;
        let history = history_after(from).skip_while(|entry| entry.zxid() <= from);
        for entry in history.take_while(|entry| entry.zxid() <= committed_zxid) {
            let zxid = entry.zxid();
            while known.next_if(|(&known_zxid, _)| known_zxid < zxid).is_some() {}
            match known.peek() {
                Some((&known_zxid, known)) if known_zxid == zxid => {
                    if *known != entry {
                        problem = Some(format!(
                            "server {server} holds committed txn {} as {:?} from session {:#x}, but another server \
                             committed {:?} from session {:#x} there",
                            trace::zxid(zxid),
                            entry.txn,
                            entry.header.session_id,
                            known.txn,
                            known.header.session_id
                        ));
                        break;
                    }
                }
                _ => new.push(entry),
            }
        }
        for entry in new {
            self.committed.insert(entry.zxid(), entry.clone());
            self.committed_ms.insert(entry.zxid(), now_ms);
        }
        if let Some(problem) = problem {
            return Err(problem);
        }
        self.compared.insert(server, (committed_zxid, rewrites));
        Ok(())
    }

    /// At the end: the server's log holds every committed txn above its snapshot, and
    /// reaches the last txn ever committed.
    pub fn check_nothing_lost<'a>(
        &self,
        server: ServerId,
        base_zxid: i64,
        history: impl Iterator<Item = &'a LogEntry>,
        last_logged_zxid: i64,
    ) -> Result<(), String> {
        let held: BTreeMap<i64, &LogEntry> = history.map(|entry| (entry.zxid(), entry)).collect();
        for (zxid, entry) in self.committed.range(base_zxid + 1..) {
            match held.get(zxid) {
                Some(&mine) if mine == entry => {}
                Some(mine) => {
                    return Err(format!(
                        "server {server} replaced committed txn {} ({:?}) with {:?}",
                        trace::zxid(*zxid),
                        entry.txn,
                        mine.txn
                    ))
                }
                None => {
                    return Err(format!(
                        "server {server} lost committed txn {} ({:?}); its log holds {} txns after {}",
                        trace::zxid(*zxid),
                        entry.txn,
                        held.len(),
                        trace::zxid(base_zxid)
                    ))
                }
            }
        }
        let last = self.committed.keys().next_back().copied().unwrap_or(0);
        if last_logged_zxid < last {
            return Err(format!(
                "server {server}'s log ends at {}, before the last committed txn {}",
                trace::zxid(last_logged_zxid),
                trace::zxid(last)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_core::txn::{Txn, TxnHeader};

    fn entry(prev_zxid: i64, zxid: i64, data: u8) -> LogEntry {
        LogEntry {
            prev_zxid,
            header: TxnHeader { session_id: 1, cxid: 1, zxid, time_ms: 0 },
            txn: Txn::SetData { path: "/k0".into(), data: Some(vec![data]), version: 1 },
        }
    }

    #[test]
    fn agreeing_servers_pass() {
        let log = [entry(0, 1, 1), entry(1, 2, 2), entry(2, 3, 3)];
        let mut checker = ZabChecker::default();
        checker.observe(0, 1, Some(1), 0, |_| log.iter(), 2).unwrap();
        checker.observe(0, 2, None, 0, |_| log.iter(), 3).unwrap();
        checker.observe(0, 1, Some(1), 0, |_| log.iter(), 3).unwrap();
        checker.check_nothing_lost(3, 0, log.iter(), 3).unwrap();
    }

    #[test]
    fn planted_bug_two_servers_commit_different_txns_at_one_zxid() {
        let mut checker = ZabChecker::default();
        let (one, two) = ([entry(0, 1, 1), entry(1, 2, 2)], [entry(0, 1, 1), entry(1, 2, 9)]);
        checker.observe(0, 1, None, 0, |_| one.iter(), 2).unwrap();
        let error = checker.observe(0, 2, None, 0, |_| two.iter(), 2).unwrap_err();
        assert!(error.contains("committed txn 0:2"), "{error}");
    }

    #[test]
    fn an_uncommitted_divergent_tail_is_allowed() {
        let mut checker = ZabChecker::default();
        let (one, two) = ([entry(0, 1, 1), entry(1, 2, 2)], [entry(0, 1, 1), entry(1, 2, 9)]);
        checker.observe(0, 1, None, 0, |_| one.iter(), 1).unwrap();
        checker.observe(0, 2, None, 0, |_| two.iter(), 1).unwrap();
    }

    #[test]
    fn planted_bug_two_leaders_in_one_epoch() {
        let mut checker = ZabChecker::default();
        checker.observe(0, 1, Some(4), 0, |_| [].iter(), 0).unwrap();
        checker.observe(0, 2, Some(5), 0, |_| [].iter(), 0).unwrap();
        let error = checker.observe(0, 3, Some(4), 0, |_| [].iter(), 0).unwrap_err();
        assert!(error.contains("both established epoch 4"), "{error}");
    }

    #[test]
    fn planted_bug_a_committed_txn_lost_after_a_restart() {
        let mut checker = ZabChecker::default();
        let log = [entry(0, 1, 1), entry(1, 2, 2)];
        checker.observe(0, 1, None, 0, |_| log.iter(), 2).unwrap();
        // Server 2 came back with only the first txn and nothing else: the second is lost.
        let error = checker.check_nothing_lost(2, 0, log[..1].iter(), 1).unwrap_err();
        assert!(error.contains("lost committed txn 0:2"), "{error}");
        // A server whose snapshot covers the txns is fine.
        checker.check_nothing_lost(3, 2, [].iter(), 2).unwrap();
    }
}
