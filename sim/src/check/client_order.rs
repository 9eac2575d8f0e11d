//! Per-client guarantees, read from what each client saw on the wire:
//!
//! - FIFO client order: on a connection, replies come back in the order the requests were
//!   sent (ZooKeeper's "FIFO client order", kept by its `CommitProcessor`);
//! - a client never sees zxid go backwards, within a connection or across reconnects (a
//!   server refuses a client that has seen a newer zxid than it has applied; ZooKeeper's
//!   Java client sets its `lastZxid` from every reply header, so a reply with an older
//!   zxid would let it fail over to a server with an older view). Seeds 246 and 51 once
//!   caught a learner answering a write pipelined behind a `sync` with the write's own txn
//!   zxid after the sync's reply had carried a newer one;
//! - every frame a server sends decodes as a reply to something outstanding.
//!
//! Notifications are not replies and do not count.

use std::collections::{BTreeMap, VecDeque};

use zk_core::node::ConnectionId;
use zk_core::proto::OpCode;

use crate::history::{ClientId, Observation, ObservationKind};
use crate::trace;

/// Checks the observations, in the order they happened.
pub fn check(observations: &[Observation]) -> Vec<String> {
    let mut violations = Vec::new();
    let mut sent: BTreeMap<ConnectionId, VecDeque<(i32, OpCode)>> = BTreeMap::new();
    // Per client: the highest zxid seen, and when.
    let mut last_zxid: BTreeMap<ClientId, (i64, u64)> = BTreeMap::new();
    for observation in observations {
        let client = observation.client;
        let at = trace::Time(observation.time_ms);
        match &observation.kind {
            ObservationKind::Sent { connection, xid, op } => {
                sent.entry(*connection).or_default().push_back((*xid, *op))
            }
            ObservationKind::Reply { connection, xid, zxid, .. } => {
                let queue = sent.entry(*connection).or_default();
                let op = match queue.front() {
                    Some(&(expected, op)) if expected == *xid => {
                        queue.pop_front();
                        Some(op)
                    }
                    expected => {
                        violations.push(format!(
                            "client {client} at {at}: reply to xid {xid} on connection {connection:#x} while the \
                             oldest outstanding request is {expected:?} (FIFO order broken)"
                        ));
                        let position = queue.iter().position(|(pending, _)| pending == xid);
                        position.and_then(|position| queue.remove(position)).map(|(_, op)| op)
                    }
                };
                if *zxid <= 0 {
                    continue;
                }
                let (seen, seen_ms) = last_zxid.get(&client).copied().unwrap_or((0, 0));
                if *zxid >= seen {
                    last_zxid.insert(client, (*zxid, observation.time_ms));
                    continue;
                }
                violations.push(format!(
                    "client {client} at {at}: reply to xid {xid} ({op:?}) carries zxid {} after it saw {} at {} \
                     (zxid went backwards)",
                    trace::zxid(*zxid),
                    trace::zxid(seen),
                    trace::time(seen_ms)
                ));
            }
            ObservationKind::Undecodable { connection, problem } => violations.push(format!(
                "client {client} at {at}: a frame on connection {connection:#x} does not decode: {problem}"
            )),
            ObservationKind::ConnectionLost { connection } => {
                sent.remove(connection);
            }
            ObservationKind::Connected { .. }
            | ObservationKind::SessionExpired { .. }
            | ObservationKind::SessionClosed { .. }
            | ObservationKind::WatchRegistered { .. }
            | ObservationKind::WatchEvent { .. }
            | ObservationKind::WatchesReset { .. }
            | ObservationKind::RecipeHeld { .. }
            | ObservationKind::RecipeReleased { .. } => {}
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time_ms: u64, client: ClientId, kind: ObservationKind) -> Observation {
        Observation { time_ms, client, kind }
    }

    fn sent(time_ms: u64, connection: ConnectionId, xid: i32, op: OpCode) -> Observation {
        at(time_ms, 0, ObservationKind::Sent { connection, xid, op })
    }

    fn reply(time_ms: u64, connection: ConnectionId, xid: i32, zxid: i64) -> Observation {
        at(time_ms, 0, ObservationKind::Reply { connection, xid, zxid, err: 0 })
    }

    #[test]
    fn in_order_replies_with_rising_zxids_across_a_reconnect_pass() {
        let observations = vec![
            sent(1, 1, 1, OpCode::GetData),
            sent(1, 1, 2, OpCode::SetData),
            reply(2, 1, 1, 5),
            reply(3, 1, 2, 5),
            sent(4, 1, 3, OpCode::GetData),
            at(5, 0, ObservationKind::ConnectionLost { connection: 1 }),
            sent(6, 2, 4, OpCode::GetData),
            reply(7, 2, 4, 9),
        ];
        assert_eq!(check(&observations), Vec::<String>::new());
    }

    #[test]
    fn planted_bug_replies_out_of_order() {
        let observations =
            vec![sent(1, 1, 1, OpCode::GetData), sent(1, 1, 2, OpCode::GetData), reply(2, 1, 2, 5), reply(3, 1, 1, 5)];
        let violations = check(&observations);
        assert!(violations[0].contains("FIFO order broken"), "{violations:?}");
    }

    #[test]
    fn planted_bug_zxid_goes_backwards_after_reconnecting_to_a_lagging_server() {
        let observations = vec![
            sent(1, 1, 1, OpCode::GetData),
            reply(2, 1, 1, 9),
            at(3, 0, ObservationKind::ConnectionLost { connection: 1 }),
            sent(4, 2, 2, OpCode::GetData),
            reply(5, 2, 2, 7),
        ];
        let violations = check(&observations);
        assert_eq!(violations.len(), 1);
        assert!(violations[0].contains("zxid went backwards"), "{violations:?}");
    }

    /// What seeds 246 and 51 caught on a learner: a write pipelined behind a sync (and a
    /// read) answered with its own txn zxid after the sync and the read carried a newer one.
    #[test]
    fn planted_bug_a_write_answered_after_a_sync_carries_an_older_zxid() {
        let observations = vec![
            sent(1, 1, 1, OpCode::Sync),
            sent(1, 1, 2, OpCode::GetData),
            sent(1, 1, 3, OpCode::Create),
            reply(2, 1, 1, 9),
            reply(2, 1, 2, 9),
            reply(2, 1, 3, 8),
        ];
        let violations = check(&observations);
        assert_eq!(violations.len(), 1);
        assert!(violations[0].contains("reply to xid 3 "), "{violations:?}");
        assert!(violations[0].contains("zxid went backwards"), "{violations:?}");
    }
}
