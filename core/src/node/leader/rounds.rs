//! The leader's confirmation rounds and the requests that wait for them: pending syncs
//! and session revalidations, answered where they came from. All of it lives in the
//! broadcast phase ([`Broadcast`]).

use std::collections::BTreeMap;

use super::{quorum_value, Broadcast, Leader, Link, Phase, Shared};
use crate::node::{NodeConfig, Now};
use crate::zab::message::PeerMessage;
use crate::zab::ServerId;
use crate::ErrorCode;

/// A `sync` waiting for every proposal before it to commit and for a quorum to confirm a
/// round that began after it arrived.
#[derive(Clone, Debug)]
pub(super) struct PendingSync {
    pub(super) zxid: i64,
    pub(super) round: u64,
    pub(super) origin: ServerId,
    pub(super) session_id: i64,
    pub(super) cxid: i32,
    pub(super) path: String,
}

/// What a request's origin is told without a txn of its own.
#[derive(Clone, Debug)]
pub(super) enum OriginAnswer {
    /// The leader cannot take the request (`ConnectionLoss`: it cannot serve at all).
    Refused { cxid: i32, err: ErrorCode },
    /// A sync is confirmed.
    SyncDone { cxid: i32, path: String },
    /// Whether a reconnecting session lives.
    Revalidated { valid: bool },
}

/// A reconnecting session's revalidation, waiting for a confirmed round: a leader answers
/// whether a session lives only once it knows it still leads.
#[derive(Clone, Copy, Debug)]
pub(super) struct PendingRevalidation {
    pub(super) round: u64,
    pub(super) origin: ServerId,
    pub(super) session_id: i64,
}

/// Confirmation rounds (a ReadIndex-style barrier, and the leader's lease). A round is
/// started by pinging every follower with its number; it is confirmed once a quorum of
/// voters (this leader included) echoed it in this epoch. At most one round is in flight:
/// whatever arrives meanwhile waits for the next one, which starts when the current one is
/// confirmed, so one round serves every waiter that arrived before it began. The leader
/// also starts one every half tick, and its lease runs from the start of the last round a
/// quorum confirmed: an echo proves its sender followed this leader at some moment after
/// the round began, however late the echo is handled (Raft's leader lease, anchored at the
/// heartbeat's sending, not its answer's arrival).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Rounds {
    /// The last round started (0: none yet), and when.
    pub(super) started: u64,
    pub(super) started_ms: u64,
    /// The last round a quorum confirmed.
    pub(super) confirmed: u64,
    /// When the last confirmed round started (or the epoch was established): the lease
    /// runs from here.
    pub(super) lease_from_ms: u64,
    /// Something waits for a round after `started`.
    pub(super) wanted: bool,
}

impl Broadcast {
    /// The last round waiters may count as confirmed: the confirmed one, or with the
    /// planted bug (`confirm_rounds` off) every round, confirmed or not. The lease always
    /// runs from rounds a quorum really confirmed.
    pub(super) fn waiters_confirmed(&self, config: &NodeConfig) -> u64 {
        if config.confirm_rounds {
            self.rounds.confirmed
        } else {
            u64::MAX
        }
    }

    /// The highest round a quorum of voters confirmed: this leader confirms every round it
    /// started, each voting follower the last round it echoed.
    fn quorum_round(&self, links: &BTreeMap<ServerId, Link>, config: &NodeConfig) -> u64 {
        let started = self.rounds.started;
        quorum_value(links, config, |link| link.round_acked, started)
            .map_or(self.rounds.confirmed, |round| round.min(started))
    }

    /// Whether a session is alive (not expired or closing); a live one is touched.
    fn session_alive(&mut self, session_id: i64, now: Now) -> bool {
        let valid = self.sessions.check_session(session_id).is_ok();
        if valid {
            self.sessions.touch(session_id, now.monotonic_ms as i64);
        }
        valid
    }

    /// The round a waiter arriving now needs: the next one, asked for here and started by
    /// [`Broadcast::update_rounds`] as soon as no round is in flight.
    pub(super) fn next_round(&mut self) -> u64 {
        let rounds = &mut self.rounds;
        rounds.wanted = true;
        rounds.started + 1
    }

    /// Starts the wanted round when none is in flight and takes in what a quorum
    /// confirmed; returns whether the confirmed round moved.
    pub(super) fn update_rounds(&mut self, links: &BTreeMap<ServerId, Link>, shared: &mut Shared) -> bool {
        let mut moved = false;
        loop {
            if shared.leaving() {
                return moved;
            }
            if self.rounds.wanted && self.rounds.started == self.rounds.confirmed {
                self.rounds.started += 1;
                self.rounds.started_ms = shared.now.monotonic_ms;
                self.rounds.wanted = false;
                let (epoch, round) = (self.epoch, self.rounds.started);
                for id in super::followers(links) {
                    shared.send(id, PeerMessage::Ping { epoch, round, touched_sessions: Vec::new() });
                }
            }
            let confirmed = self.quorum_round(links, &shared.config);
            let rounds = &mut self.rounds;
            if confirmed <= rounds.confirmed {
                return moved;
            }
            if confirmed == rounds.started {
                rounds.lease_from_ms = rounds.started_ms;
            }
            rounds.confirmed = confirmed;
            moved = true;
            if !rounds.wanted {
                return moved;
            }
        }
    }

    /// Answers, in arrival order, the syncs whose proposals committed and whose round a
    /// quorum confirmed, and the revalidations whose round a quorum confirmed.
    pub(super) fn answer_waiters(&mut self, shared: &mut Shared) {
        let confirmed = self.waiters_confirmed(&shared.config);
        while self.syncs.front().is_some_and(|sync| sync.zxid <= shared.committed_zxid && sync.round <= confirmed) {
            let sync = self.syncs.pop_front().expect("checked non-empty");
            let answer = OriginAnswer::SyncDone { cxid: sync.cxid, path: sync.path };
            self.answer_origin(shared, sync.origin, sync.session_id, answer);
        }
        while self.revalidations.front().is_some_and(|waiting| waiting.round <= confirmed) {
            let PendingRevalidation { origin, session_id, .. } =
                self.revalidations.pop_front().expect("checked non-empty");
            let now = shared.now;
            let valid = self.session_alive(session_id, now);
            self.answer_origin(shared, origin, session_id, OriginAnswer::Revalidated { valid });
        }
    }

    /// Answers a request where it came from: a connection of this server, or a learner
    /// that forwarded it (by peer message).
    pub(super) fn answer_origin(
        &mut self,
        shared: &mut Shared,
        origin: ServerId,
        session_id: i64,
        answer: OriginAnswer,
    ) {
        if origin == shared.config.server_id {
            match answer {
                OriginAnswer::Refused { cxid, err } => shared.refused(session_id, cxid, err),
                OriginAnswer::SyncDone { cxid, path } => shared.sync_done(session_id, cxid, path),
                OriginAnswer::Revalidated { valid } => shared.revalidated(session_id, valid, Some(&mut self.sessions)),
            }
            return;
        }
        let message = match answer {
            OriginAnswer::Refused { cxid, err } => PeerMessage::Refused { session_id, cxid, err },
            OriginAnswer::SyncDone { cxid, path } => PeerMessage::SyncDone { session_id, cxid, path },
            OriginAnswer::Revalidated { valid } => PeerMessage::Revalidated { session_id, valid },
        };
        shared.send(origin, message);
    }
}

impl Leader {
    /// Rounds moved on: a confirmed round may release waiters and the commits held back
    /// behind a sync.
    pub(super) fn advance_rounds(&mut self, shared: &mut Shared) {
        let Phase::Broadcast(broadcast) = &mut self.phase else { return };
        if broadcast.update_rounds(&self.links, shared) {
            self.try_commit(shared);
        }
    }

    /// A client reconnects with `session_id` here or at learner `origin`: the session
    /// table answers once a quorum confirmed a round that began after the question, so a
    /// deposed leader never vouches for a session its successor expired.
    pub(in crate::node) fn revalidate(&mut self, shared: &mut Shared, origin: ServerId, session_id: i64) {
        let Phase::Broadcast(broadcast) = &mut self.phase else { return };
        let round = broadcast.next_round();
        broadcast.revalidations.push_back(PendingRevalidation { round, origin, session_id });
        broadcast.update_rounds(&self.links, shared);
        self.try_commit(shared);
    }
}
