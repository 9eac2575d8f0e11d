//! The phases of a run: safety (faults), liveness (everything healed, every client must make
//! progress), quiesce (replicas converge), done.

use std::collections::BTreeSet;

use crate::history::ClientId;
use crate::trace;

use super::{Event, World};

/// The phases of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Faults are injected.
    Safety,
    /// Faults stopped and everything healed; every client must make progress.
    Liveness,
    /// Clients start nothing new; sessions nobody holds expire; replicas converge.
    Quiesce,
    Done,
}

impl World {
    pub(super) fn begin_liveness(&mut self) {
        self.phase = Phase::Liveness;
        self.phase_started_ms = self.now_ms;
        self.record(|| String::from("=== liveness phase: faults stop, everything heals ==="));
        self.faults_stop();
        let now_ms = self.now_ms;
        for client in &mut self.clients {
            client.mode = crate::client::Mode::Liveness { since_ms: now_ms, write_ms: None, read_ms: None };
        }
        self.schedule(now_ms + 100, Event::LivenessCheck);
    }

    pub(super) fn liveness_check(&mut self) {
        let stuck: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|client| {
                !matches!(client.mode, crate::client::Mode::Liveness { write_ms: Some(_), read_ms: Some(_), .. })
            })
            .map(|client| client.id)
            .collect();
        let elapsed = self.now_ms - self.phase_started_ms;
        if !stuck.is_empty() && elapsed < self.config.liveness_ms_max {
            self.schedule(self.now_ms + 100, Event::LivenessCheck);
            return;
        }
        if !stuck.is_empty() {
            let states = self.server_states();
            self.violation(
                "liveness",
                format!(
                    "clients {stuck:?} did not complete a write and a sync+read within {} ms of healing; servers: {}",
                    self.config.liveness_ms_max, states
                ),
            );
            return;
        }
        self.phase = Phase::Quiesce;
        self.phase_started_ms = self.now_ms;
        self.record(|| String::from("=== quiet phase: clients start nothing new ==="));
        for client in &mut self.clients {
            client.mode = crate::client::Mode::Quiet;
        }
        // Long enough for every session that nobody holds to expire.
        let quiet_ms = self.session_timeout_ms_max * 2 + 500;
        self.schedule(self.now_ms + quiet_ms, Event::QuiesceCheck);
    }

    pub(super) fn quiesce_check(&mut self) {
        let converged = self.converged();
        let waited = self.now_ms - self.phase_started_ms;
        if !converged && waited < self.session_timeout_ms_max * 2 + 10_000 {
            self.schedule(self.now_ms + 100, Event::QuiesceCheck);
            return;
        }
        if !converged {
            let states = self.server_states();
            self.violation(
                "liveness",
                format!("replicas did not converge {waited} ms after the clients went quiet; servers: {states}"),
            );
            return;
        }
        self.final_checks();
        self.phase = Phase::Done;
    }

    /// Each server's role, epoch and last applied zxid, for messages.
    pub(super) fn server_states(&self) -> String {
        let states: Vec<String> = self
            .servers
            .values()
            .map(|server| match &server.node {
                Some(node) => format!(
                    "s{}={:?}/e{}/{}",
                    server.id,
                    node.role(),
                    node.current_epoch(),
                    trace::zxid(node.applied_zxid())
                ),
                None => format!("s{}=down", server.id),
            })
            .collect();
        states.join(" ")
    }

    /// Every server runs and serves, with the same last applied zxid.
    pub(super) fn converged(&self) -> bool {
        let mut applied = BTreeSet::new();
        for server in self.servers.values() {
            let Some(node) = &server.node else { return false };
            if !node.is_serving() {
                return false;
            }
            applied.insert(node.applied_zxid());
        }
        applied.len() == 1
    }
}
