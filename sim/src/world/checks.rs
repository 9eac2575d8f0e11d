//! The checks the world runs: after every event that touched a server (sessions' ephemerals,
//! ZAB), and at the end of a run (nothing lost, replicas agree, and every history checker).

use std::collections::BTreeSet;

use zk_core::node::{Node, RoleName};
use zk_core::zab::ServerId;

use crate::client::Client;

use super::World;

impl World {
    /// The checks that run after every event that touched a server.
    pub(super) fn check_server(&mut self, id: ServerId) {
        let Some(node) = self.servers[&id].node.as_ref() else { return };
        let applied = node.applied_zxid();
        if self.ephemerals_checked_zxid.get(&id) != Some(&applied) {
            let problem = crate::check::sessions::check_ephemeral_owners(id, node.database());
            self.ephemerals_checked_zxid.insert(id, applied);
            if let Some(message) = problem {
                self.violation("sessions", message);
            }
        }
        let Some(node) = self.servers[&id].node.as_ref() else { return };
        let result = self.zab.observe(
            self.now_ms,
            id,
            (node.role() == RoleName::Leading).then(|| node.current_epoch()),
            node.history_rewrites(),
            |zxid| node.history_after(zxid),
            node.committed_zxid(),
        );
        if node.role() == RoleName::Leading && self.trace.is_some() {
            let epoch = node.current_epoch();
            if self.zab.leader_is_new(epoch) {
                self.record(|| format!("s{id} LEADS epoch {epoch}"));
            }
        }
        if let Err(message) = result {
            self.violation("zab", message);
        }
    }

    pub(super) fn final_checks(&mut self) {
        let mut found: Vec<(&'static str, String)> = Vec::new();
        for server in self.servers.values() {
            let node = server.node.as_ref().expect("converged: every server runs");
            if let Err(message) = self.zab.check_nothing_lost(
                server.id,
                node.history_base_zxid(),
                node.history(),
                node.last_logged_zxid(),
            ) {
                found.push(("zab", message));
            }
        }
        let nodes: Vec<&Node> = self.servers.values().filter_map(|server| server.node.as_ref()).collect();
        if let Some(first) = nodes.first() {
            for node in &nodes[1..] {
                if node.database().tree != first.database().tree
                    || node.database().sessions() != first.database().sessions()
                {
                    found.push((
                        "zab",
                        format!(
                            "servers {} and {} applied the same zxid {:#x} into different states",
                            first.server_id(),
                            node.server_id(),
                            node.applied_zxid()
                        ),
                    ));
                }
            }
        }
        let live_sessions: BTreeSet<i64> = self.clients.iter().filter_map(Client::session_id).collect();
        for message in crate::check::sessions::check_end_state(&nodes, &live_sessions, &self.history) {
            found.push(("sessions", message));
        }
        for message in crate::check::sessions::check_ledger(self.zab.committed(), &self.history) {
            found.push(("sessions", message));
        }
        for message in crate::check::client_order::check(&self.history.observations) {
            found.push(("client-order", message));
        }
        let ledger_complete = self.zab.ledger_is_complete();
        for message in crate::check::watches::check(&self.history.observations, self.zab.committed(), ledger_complete) {
            found.push(("watches", message));
        }
        found.extend(crate::check::recipes::check(&self.history.observations, &self.zab));
        let linearizability = crate::check::linearizability::check(&self.history.operations, &self.zab);
        self.linearizability = linearizability.summary;
        for message in linearizability.violations {
            found.push(("linearizability", message));
        }
        for (checker, message) in found {
            self.violation(checker, message);
        }
    }
}
