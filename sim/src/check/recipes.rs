//! The guarantees of the lock and leader-election recipes ([`crate::recipe`]), read from
//! what the clients believed (when each learned it held, and when it let go) against the
//! committed ledger:
//!
//! - **lock**: no two clients hold the lock at the same time while both their sessions are
//!   live. A client holds from the moment it learns it is lowest until it sends the delete
//!   of its node, or its session ends, whichever comes first; a session counts as live until
//!   the leader's closeSession txn for it commits (the first moment any server holds it
//!   committed). A client may go on believing it holds after that, until it hears that its
//!   session expired: that is the recipe's known limit, not a violation, since the next
//!   holder can only learn it holds after the deletion of the old node is applied.
//! - **leader election**: the same, for leaders; besides, at most one leader per term, and
//!   terms rise with each new leader (each claimed its term by a conditional write of
//!   `/election` at the version it read).

use std::collections::BTreeMap;

use zk_core::txn::Txn;

use crate::check::zab::ZabChecker;
use crate::history::{ClientId, Observation, ObservationKind, RecipeKind};
use crate::trace;

/// One tenure: a client holding the lock, or leading.
#[derive(Clone, Debug)]
struct Tenure {
    client: ClientId,
    session_id: i64,
    node: String,
    term: Option<u64>,
    start_ms: u64,
    /// `u64::MAX` while it lasts to the end of the run.
    end_ms: u64,
}

/// Checks both recipes; returns (checker name, message) pairs, the checker being `lock` or
/// `election`.
pub fn check(observations: &[Observation], zab: &ZabChecker) -> Vec<(&'static str, String)> {
    // When each session's closeSession txn was first seen committed.
    let mut session_end_ms: BTreeMap<i64, u64> = BTreeMap::new();
    for (zxid, entry) in zab.committed() {
        if let Txn::CloseSession { .. } = entry.txn {
            if let Some(at_ms) = zab.committed_at_ms(*zxid) {
                session_end_ms.entry(entry.header.session_id).or_insert(at_ms);
            }
        }
    }
    let mut tenures: BTreeMap<RecipeKind, Vec<Tenure>> = BTreeMap::new();
    let mut open: BTreeMap<(ClientId, RecipeKind), usize> = BTreeMap::new();
    for observation in observations {
        match &observation.kind {
            ObservationKind::RecipeHeld { recipe, session_id, node, term } => {
                let list = tenures.entry(*recipe).or_default();
                open.insert((observation.client, *recipe), list.len());
                let end_ms = session_end_ms.get(session_id).copied().unwrap_or(u64::MAX);
                list.push(Tenure {
                    client: observation.client,
                    session_id: *session_id,
                    node: node.clone(),
                    term: *term,
                    start_ms: observation.time_ms,
                    end_ms,
                });
            }
            ObservationKind::RecipeReleased { recipe, .. } => {
                if let Some(index) = open.remove(&(observation.client, *recipe)) {
                    let tenure = &mut tenures.get_mut(recipe).expect("opened above")[index];
                    tenure.end_ms = tenure.end_ms.min(observation.time_ms);
                }
            }
            _ => {}
        }
    }
    let mut violations = Vec::new();
    for (recipe, list) in &tenures {
        let checker = match recipe {
            RecipeKind::Lock => "lock",
            RecipeKind::Election => "election",
        };
        for message in check_tenures(*recipe, list) {
            violations.push((checker, message));
        }
    }
    violations
}

fn describe(tenure: &Tenure) -> String {
    let end = if tenure.end_ms == u64::MAX { String::from("the end") } else { trace::time(tenure.end_ms) };
    let term = tenure.term.map(|term| format!(" for term {term}")).unwrap_or_default();
    format!(
        "client {} (session {:#x}, node {}){term} from {} until {end}",
        tenure.client,
        tenure.session_id,
        tenure.node,
        trace::time(tenure.start_ms)
    )
}

/// Tenures, in the order they began, must not overlap; terms must rise.
fn check_tenures(recipe: RecipeKind, tenures: &[Tenure]) -> Vec<String> {
    let mut violations = Vec::new();
    // A tenure that begins after its session ended is no tenure: the client read a server
    // that had not yet applied its closeSession (the recipe's known limit, not a violation).
    let mut ordered: Vec<&Tenure> = tenures.iter().filter(|tenure| tenure.start_ms < tenure.end_ms).collect();
    ordered.sort_by_key(|tenure| tenure.start_ms);
    let what = match recipe {
        RecipeKind::Lock => "held the lock",
        RecipeKind::Election => "led",
    };
    for (index, later) in ordered.iter().enumerate() {
        for earlier in &ordered[..index] {
            if earlier.end_ms > later.start_ms {
                violations.push(format!(
                    "two clients {what} at once with live sessions: {} and {}",
                    describe(earlier),
                    describe(later)
                ));
            }
        }
    }
    if recipe == RecipeKind::Election {
        let mut last: Option<&Tenure> = None;
        for tenure in &ordered {
            let Some(term) = tenure.term else {
                violations.push(format!("a leader without a term: {}", describe(tenure)));
                continue;
            };
            if let Some(previous) = last {
                if previous.term.is_some_and(|previous_term| previous_term >= term) {
                    violations.push(format!(
                        "term {term} does not follow term {}: {} after {}",
                        previous.term.unwrap_or_default(),
                        describe(tenure),
                        describe(previous)
                    ));
                }
            }
            last = Some(tenure);
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenure(client: ClientId, term: Option<u64>, start_ms: u64, end_ms: u64) -> Tenure {
        Tenure { client, session_id: client as i64 + 100, node: format!("/lock/c{client}"), term, start_ms, end_ms }
    }

    #[test]
    fn successive_holders_pass() {
        let tenures = [tenure(0, None, 10, 20), tenure(1, None, 21, 30), tenure(0, None, 31, u64::MAX)];
        assert!(check_tenures(RecipeKind::Lock, &tenures).is_empty());
        let leaders = [tenure(0, Some(1), 10, 20), tenure(1, Some(2), 21, 30)];
        assert!(check_tenures(RecipeKind::Election, &leaders).is_empty());
    }

    #[test]
    fn a_tenure_learned_after_the_session_ended_is_none() {
        // Client 1 read a lagging server after its closeSession had committed at 20.
        let tenures = [tenure(0, None, 15, 40), tenure(1, None, 30, 20)];
        assert!(check_tenures(RecipeKind::Lock, &tenures).is_empty());
    }

    #[test]
    fn planted_bug_two_holders_at_once() {
        let tenures = [tenure(0, None, 10, 25), tenure(1, None, 21, 30)];
        let violations = check_tenures(RecipeKind::Lock, &tenures);
        assert_eq!(violations.len(), 1);
        assert!(violations[0].contains("held the lock at once"), "{violations:?}");
    }

    #[test]
    fn planted_bug_two_leaders_for_one_term() {
        let leaders = [tenure(0, Some(4), 10, 20), tenure(1, Some(4), 21, 30)];
        let violations = check_tenures(RecipeKind::Election, &leaders);
        assert!(violations[0].contains("term 4 does not follow term 4"), "{violations:?}");
    }

    #[test]
    fn a_holder_whose_session_closed_ends_there_and_the_next_may_start() {
        use crate::history::Observation;
        let held = |client, time_ms, session_id| Observation {
            time_ms,
            client,
            kind: ObservationKind::RecipeHeld {
                recipe: RecipeKind::Lock,
                session_id,
                node: format!("/lock/c{client}"),
                term: None,
            },
        };
        // Client 0 never lets go (it did not hear that its session ended); client 1 takes
        // the lock later. With no closeSession committed, the tenures overlap.
        let observations = vec![held(0, 10, 7), held(1, 50, 8)];
        let violations = check(&observations, &ZabChecker::default());
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].0, "lock");
    }
}
