//! Session guarantees:
//!
//! - no write from a session succeeds after the txn that closed (or expired) it was
//!   committed: in the committed ledger no state-changing txn of a session follows its
//!   closeSession, and no client was told a write succeeded at a later zxid;
//! - ephemerals vanish with their session: at the end, no server holds an ephemeral whose
//!   owner is not a session some client still holds, nor a session a client saw end; and
//!   after every txn a server applies, each of its ephemerals belongs to a session it still
//!   tracks (closeSession removes the session and its ephemerals in one txn).

use std::collections::{BTreeMap, BTreeSet};

use zk_core::node::Node;
use zk_core::txn::LogEntry;
use zk_core::txn::Txn;

use crate::history::{History, ObservationKind, Outcome};
use crate::trace;

fn changes_state(txn: &Txn) -> bool {
    match txn {
        Txn::Create { .. } | Txn::Delete { .. } | Txn::SetData { .. } | Txn::SetAcl { .. } => true,
        Txn::Multi(txns) => txns.iter().any(changes_state),
        Txn::Check { .. } | Txn::CreateSession { .. } | Txn::CloseSession { .. } | Txn::Error(_) => false,
    }
}

/// Checks the committed ledger, and the clients' successful writes against it.
pub fn check_ledger(committed: &BTreeMap<i64, LogEntry>, history: &History) -> Vec<String> {
    let mut violations = Vec::new();
    let mut closed_at: BTreeMap<i64, i64> = BTreeMap::new();
    for (zxid, entry) in committed {
        let session_id = entry.header.session_id;
        if let Txn::CloseSession { .. } = entry.txn {
            closed_at.entry(session_id).or_insert(*zxid);
        } else if let Some(&closed) = closed_at.get(&session_id) {
            if changes_state(&entry.txn) {
                violations.push(format!(
                    "txn {} ({:?}) of session {session_id:#x} committed after the session was closed at {}",
                    trace::zxid(*zxid),
                    entry.txn,
                    trace::zxid(closed)
                ));
            }
        }
    }
    for operation in &history.operations {
        let (Outcome::Ok(_), Some(zxid)) = (&operation.outcome, operation.zxid) else { continue };
        if !operation.kind.is_write() {
            continue;
        }
        if let Some(&closed) = closed_at.get(&operation.session_id) {
            if zxid > closed {
                violations.push(format!(
                    "client {} was told {:?} succeeded at {} although its session {:#x} was closed at {}",
                    operation.client,
                    operation.kind,
                    trace::zxid(zxid),
                    operation.session_id,
                    trace::zxid(closed)
                ));
            }
        }
    }
    violations
}

/// After every applied txn: every ephemeral a server holds belongs to a session in its
/// session table.
pub fn check_ephemeral_owners(server: u64, database: &zk_core::database::Database) -> Option<String> {
    let sessions = database.sessions();
    let ephemerals = database.tree.all_ephemerals();
    let orphaned = |(owner, paths): &(&i64, &BTreeSet<String>)| !paths.is_empty() && !sessions.contains_key(*owner);
    // Checked after every txn a server applies: nothing is built unless something is wrong.
    if !ephemerals.iter().any(|entry| orphaned(&entry)) {
        return None;
    }
    let orphans: Vec<String> =
        ephemerals.iter().filter(orphaned).map(|(owner, paths)| format!("{paths:?} of session {owner:#x}")).collect();
    (!orphans.is_empty()).then(|| {
        format!(
            "server {server} at {} holds ephemerals of sessions it no longer tracks: {}",
            trace::zxid(database.last_processed_zxid()),
            orphans.join(", ")
        )
    })
}

/// Checks the servers' final state: `live_sessions` are the sessions clients hold at the
/// end (after a quiet period longer than any session timeout).
pub fn check_end_state(nodes: &[&Node], live_sessions: &BTreeSet<i64>, history: &History) -> Vec<String> {
    let ended: BTreeSet<i64> = history
        .observations
        .iter()
        .filter_map(|observation| match observation.kind {
            ObservationKind::SessionExpired { session_id } | ObservationKind::SessionClosed { session_id } => {
                Some(session_id)
            }
            _ => None,
        })
        .collect();
    let mut violations = Vec::new();
    for node in nodes {
        let database = node.database();
        let owners: BTreeMap<i64, &BTreeSet<String>> =
            database.tree.all_ephemerals().iter().map(|(owner, paths)| (*owner, paths)).collect();
        violations.extend(check_ephemerals(node.server_id(), &owners, database.sessions(), live_sessions, &ended));
    }
    violations
}

/// The ephemerals (by owner) and sessions one server holds, against what the clients know.
pub fn check_ephemerals(
    server: u64,
    ephemerals: &BTreeMap<i64, &BTreeSet<String>>,
    sessions: &BTreeMap<i64, i32>,
    live_sessions: &BTreeSet<i64>,
    ended: &BTreeSet<i64>,
) -> Vec<String> {
    let mut violations = Vec::new();
    for (owner, paths) in ephemerals {
        if paths.is_empty() {
            continue;
        }
        if ended.contains(owner) {
            violations.push(format!(
                "server {server} still holds ephemerals {paths:?} of session {owner:#x}, which a client saw end"
            ));
        } else if !live_sessions.contains(owner) {
            violations.push(format!(
                "server {server} holds ephemerals {paths:?} of session {owner:#x}, which no client holds \
                 (it should have expired)"
            ));
        } else if !sessions.contains_key(owner) {
            violations.push(format!("server {server} holds ephemerals {paths:?} of unknown session {owner:#x}"));
        }
    }
    for session in sessions.keys() {
        if ended.contains(session) {
            violations.push(format!("server {server} still tracks session {session:#x}, which a client saw end"));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpKind, Operation, Value};
    use zk_core::proto::{CreateMode, OpCode};
    use zk_core::txn::{CreateKind, TxnHeader};

    fn txn(session_id: i64, zxid: i64, txn: Txn) -> (i64, LogEntry) {
        (zxid, LogEntry { prev_zxid: zxid - 1, header: TxnHeader { session_id, cxid: 1, zxid, time_ms: 0 }, txn })
    }

    fn create(path: &str) -> Txn {
        Txn::Create {
            op: OpCode::Create,
            path: path.into(),
            data: None,
            acl: vec![],
            kind: CreateKind::Ephemeral,
            parent_cversion: 1,
        }
    }

    #[test]
    fn planted_bug_a_write_of_an_expired_session_commits() {
        let ledger: BTreeMap<i64, LogEntry> = [
            txn(7, 1, Txn::CreateSession { timeout_ms: 1000 }),
            txn(7, 2, create("/e/a")),
            txn(7, 3, Txn::CloseSession { paths_to_delete: vec!["/e/a".into()] }),
            txn(7, 4, Txn::Error(zk_core::ErrorCode::SessionExpired)),
        ]
        .into_iter()
        .collect();
        assert!(check_ledger(&ledger, &History::default()).is_empty(), "an error txn after the close is fine");
        let mut doctored = ledger.clone();
        doctored.extend([txn(7, 5, create("/e/b"))]);
        let violations = check_ledger(&doctored, &History::default());
        assert_eq!(violations.len(), 1);
        assert!(violations[0].contains("after the session was closed"), "{violations:?}");

        let mut history = History::default();
        history.operations.push(Operation {
            client: 0,
            session_id: 7,
            server: 1,
            kind: OpKind::Create { path: "/e/b".into(), data: vec![], mode: CreateMode::Ephemeral },
            invoke_ms: 10,
            complete_ms: Some(11),
            outcome: Outcome::Ok(Value::Path("/e/b".into())),
            zxid: Some(5),
            xid: Some(3),
        });
        let violations = check_ledger(&ledger, &history);
        assert!(violations[0].contains("was told"), "{violations:?}");
    }

    #[test]
    fn planted_bug_an_ephemeral_outlives_its_session() {
        let paths: BTreeSet<String> = ["/e/a".to_owned()].into_iter().collect();
        let ephemerals: BTreeMap<i64, &BTreeSet<String>> = [(7, &paths)].into_iter().collect();
        let sessions: BTreeMap<i64, i32> = [(7, 1000)].into_iter().collect();
        let live: BTreeSet<i64> = [7].into_iter().collect();
        assert!(check_ephemerals(1, &ephemerals, &sessions, &live, &BTreeSet::new()).is_empty());
        let ended: BTreeSet<i64> = [7].into_iter().collect();
        let violations = check_ephemerals(1, &ephemerals, &BTreeMap::new(), &BTreeSet::new(), &ended);
        assert!(violations[0].contains("which a client saw end"), "{violations:?}");
        let orphaned = check_ephemerals(1, &ephemerals, &sessions, &BTreeSet::new(), &BTreeSet::new());
        assert!(orphaned[0].contains("should have expired"), "{orphaned:?}");
    }
}
