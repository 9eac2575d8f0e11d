//! Fast Leader Election (FLE): how LOOKING servers agree on who should lead.
//!
//! This is ZooKeeper's `FastLeaderElection.lookForLeader` as a pure state machine. Every voter
//! proposes the best credentials it knows, judged by the total order (peer epoch, last zxid,
//! server id), and tells every other server whenever its proposal changes. Once a quorum of
//! voters agrees with its proposal, a server waits `finalize_wait_ms` for a better proposal and,
//! if none arrives, decides. A server that arrives late learns the leader from the notifications
//! of servers that already settled ("joining an ensemble that already has a leader").
//!
//! FLE only proposes a leader; it does not make leadership safe. Two servers can still decide
//! differently when messages are slow, and Discovery (the new epoch must be accepted by a
//! quorum) is what keeps a wrongly elected leader from ever establishing itself.
//!
//! Call order for a driver (the node): [`Election::start`] and send what it returns; then feed
//! [`Election::handle_notification`], [`Election::handle_link_up`] and, at the instant given by
//! [`Election::poll_timeout`], [`Election::handle_timeout`], sending every output in order.
//! After each call, check [`Election::decision`]; once it is `Some` the election is over, every
//! further input is ignored, and the node answers looking peers with [`settled_reply`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::zab::ServerId;

/// A vote: who should lead, and the credentials it was judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub leader: ServerId,
    pub zxid: i64,
    pub peer_epoch: u32,
}

impl Vote {
    /// ZooKeeper's `totalOrderPredicate`: (peer_epoch, zxid, leader) compared lexicographically.
    pub fn is_better_than(&self, other: &Vote) -> bool {
        (self.peer_epoch, self.zxid, self.leader) > (other.peer_epoch, other.zxid, other.leader)
    }
}

/// The state a server reports in its notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
    Observing,
}

/// What servers exchange during election (the sender is known from the link).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub vote: Vote,
    pub election_epoch: u64,
    pub state: PeerState,
}

/// Who takes part, and the election's timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionConfig {
    pub my_id: ServerId,
    /// The participants: only their votes count, and only they can lead.
    pub voters: BTreeSet<ServerId>,
    /// Servers that learn the leader but never vote.
    pub observers: BTreeSet<ServerId>,
    /// ZooKeeper's `finalizeWait` (200 ms): how long a quorum must hold before deciding.
    pub finalize_wait_ms: u64,
    /// The first resend interval; it doubles at each resend up to `resend_interval_ms_max`.
    pub resend_interval_ms: u64,
    /// ZooKeeper's `maxNotificationInterval` (60 s).
    pub resend_interval_ms_max: u64,
}

/// What the election asks the node to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionOutput {
    Send { to: ServerId, notification: Notification },
}

/// How an election ended for this server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Lead { election_epoch: u64, vote: Vote },
    Follow { leader: ServerId, election_epoch: u64, vote: Vote },
    Observe { leader: ServerId, election_epoch: u64, vote: Vote },
}

impl Decision {
    /// The elected leader.
    pub fn leader(&self) -> ServerId {
        self.vote().leader
    }

    /// The vote the election ended with.
    pub fn vote(&self) -> Vote {
        self.parts().1
    }

    /// The election round (logical clock) the decision belongs to.
    pub fn election_epoch(&self) -> u64 {
        self.parts().0
    }

    fn parts(&self) -> (u64, Vote) {
        match *self {
            Decision::Lead { election_epoch, vote }
            | Decision::Follow { election_epoch, vote, .. }
            | Decision::Observe { election_epoch, vote, .. } => (election_epoch, vote),
        }
    }

    /// The state this server reports once settled.
    pub fn state(&self) -> PeerState {
        match self {
            Decision::Lead { .. } => PeerState::Leading,
            Decision::Follow { .. } => PeerState::Following,
            Decision::Observe { .. } => PeerState::Observing,
        }
    }
}

/// What a server that is not looking answers a looking peer with. ZooKeeper replies with its
/// current vote and state so that the peer can join an ensemble that already has a leader.
#[must_use]
pub fn settled_reply(vote: Vote, election_epoch: u64, state: PeerState) -> Notification {
    debug_assert!(state != PeerState::Looking, "a settled reply comes from a server that is not looking");
    Notification { vote, election_epoch, state }
}

/// A pending decision: the quorum for `vote` in round `election_epoch` must hold until the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Finalize {
    deadline_ms: u64,
    election_epoch: u64,
    vote: Vote,
}

/// One server's run of Fast Leader Election. See the module documentation for the call order.
#[derive(Clone, Debug)]
pub struct Election {
    config: ElectionConfig,
    logical_clock: u64,
    /// The vote this server started the round with (a placeholder for an observer).
    initial_vote: Vote,
    /// The current proposal, ZooKeeper's (proposedLeader, proposedZxid, proposedEpoch).
    vote: Vote,
    /// ZooKeeper's `recvset`: the latest notification of each other voter in this round.
    received: BTreeMap<ServerId, Notification>,
    /// ZooKeeper's `outofelection`: FOLLOWING and LEADING notifications of any round.
    out_of_election: BTreeMap<ServerId, Notification>,
    finalize: Option<Finalize>,
    resend_deadline_ms: u64,
    resend_interval_ms: u64,
    decision: Option<Decision>,
}

impl Election {
    /// Starts a round: the logical clock is `logical_clock_previous + 1` (the node keeps the
    /// clock between rounds), a voter votes for itself with (`current_epoch`, `last_zxid`,
    /// `my_id`), and the returned notifications go to every other server.
    ///
    /// An observer does not vote for itself: it announces a placeholder vote for its own id with
    /// the lowest possible credentials (no voter adopts it, because only voters can lead) and
    /// learns the leader from the voters' answers. It reports `Looking`, as ZooKeeper's observers
    /// do, so that settled servers answer it.
    ///
    /// # Panics
    /// If the configuration is inconsistent: `my_id` must be exactly one of a voter or an
    /// observer, the voters must not be empty, and the intervals must be positive and ordered.
    #[must_use]
    pub fn start(
        config: ElectionConfig,
        logical_clock_previous: u64,
        current_epoch: u32,
        last_zxid: i64,
        now_ms: u64,
    ) -> (Election, Vec<ElectionOutput>) {
        assert!(!config.voters.is_empty(), "an ensemble needs at least one voter");
        assert!(config.voters.is_disjoint(&config.observers), "a server is either a voter or an observer");
        assert!(
            config.voters.contains(&config.my_id) || config.observers.contains(&config.my_id),
            "server {} is neither a voter nor an observer",
            config.my_id
        );
        assert!(config.finalize_wait_ms > 0 && config.resend_interval_ms > 0);
        assert!(config.resend_interval_ms <= config.resend_interval_ms_max);

        let initial_vote = if config.voters.contains(&config.my_id) {
            Vote { leader: config.my_id, zxid: last_zxid, peer_epoch: current_epoch }
        } else {
            Vote { leader: config.my_id, zxid: i64::MIN, peer_epoch: 0 }
        };
        let mut election = Election {
            logical_clock: logical_clock_previous + 1,
            initial_vote,
            vote: initial_vote,
            received: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            finalize: None,
            resend_deadline_ms: now_ms.saturating_add(config.resend_interval_ms),
            resend_interval_ms: config.resend_interval_ms,
            decision: None,
            config,
        };
        // An ensemble of one is its own quorum and only waits out the finalize window.
        election.update_finalize(now_ms);
        election.check_invariants();
        let outputs = election.send_to_all();
        (election, outputs)
    }

    /// The round this election is in (ZooKeeper's `logicalclock`).
    pub fn logical_clock(&self) -> u64 {
        self.logical_clock
    }

    /// The current proposal (after a decision, the vote decided on).
    pub fn vote(&self) -> Vote {
        self.vote
    }

    /// The notification this server sends while looking.
    pub fn notification(&self) -> Notification {
        Notification { vote: self.vote, election_epoch: self.logical_clock, state: PeerState::Looking }
    }

    /// `Some` once decided; it never changes afterwards.
    pub fn decision(&self) -> Option<Decision> {
        self.decision
    }

    /// The next instant (absolute ms) at which [`Election::handle_timeout`] has work: the
    /// finalize deadline or the next resend. `None` once decided.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.decision.is_some() {
            return None;
        }
        let finalize_ms = self.finalize.map_or(u64::MAX, |finalize| finalize.deadline_ms);
        Some(finalize_ms.min(self.resend_deadline_ms))
    }

    /// A notification from `from` arrived.
    #[must_use]
    pub fn handle_notification(
        &mut self,
        from: ServerId,
        notification: Notification,
        now_ms: u64,
    ) -> Vec<ElectionOutput> {
        let mut outputs = Vec::new();
        if self.decision.is_some() || !self.is_other_server(from) {
            return outputs;
        }
        if !self.config.voters.contains(&from) {
            // ZooKeeper's WorkerReceiver answers a looking non-voter right away so that it learns
            // the votes. Observers never answer each other, and nobody answers a settled observer,
            // so no two servers can ping-pong.
            if self.is_voter() && notification.state == PeerState::Looking {
                outputs.push(self.send(from));
            }
            return outputs;
        }
        match notification.state {
            PeerState::Looking => self.receive_looking(from, notification, now_ms, &mut outputs),
            PeerState::Following | PeerState::Leading => self.receive_settled(from, notification),
            // A voter never observes; ZooKeeper ignores such a notification too.
            PeerState::Observing => {}
        }
        self.update_finalize(now_ms);
        self.check_invariants();
        outputs
    }

    /// A link to `peer` came up: it may have missed our notification, so send it again.
    #[must_use]
    pub fn handle_link_up(&mut self, peer: ServerId, _now_ms: u64) -> Vec<ElectionOutput> {
        if self.decision.is_some() || !self.is_other_server(peer) {
            return Vec::new();
        }
        vec![self.send(peer)]
    }

    /// Time passed: decide if the finalize window ended with the quorum intact, and resend our
    /// notification to everyone (with exponential backoff) if the resend deadline passed. A
    /// spurious wake-up does nothing.
    #[must_use]
    pub fn handle_timeout(&mut self, now_ms: u64) -> Vec<ElectionOutput> {
        if self.decision.is_some() {
            return Vec::new();
        }
        if let Some(finalize) = self.finalize {
            if now_ms >= finalize.deadline_ms {
                self.decide(finalize.vote);
                self.check_invariants();
                return Vec::new();
            }
        }
        if now_ms < self.resend_deadline_ms {
            return Vec::new();
        }
        // ZooKeeper resends when nothing arrived for `notTimeout` and then doubles it, so that
        // a server cut off from a quorum does not flood the ones it can reach.
        self.resend_interval_ms = (self.resend_interval_ms.saturating_mul(2)).min(self.config.resend_interval_ms_max);
        self.resend_deadline_ms = now_ms.saturating_add(self.resend_interval_ms);
        self.check_invariants();
        self.send_to_all()
    }

    fn is_other_server(&self, id: ServerId) -> bool {
        id != self.config.my_id && (self.config.voters.contains(&id) || self.config.observers.contains(&id))
    }

    fn is_voter(&self) -> bool {
        self.config.voters.contains(&self.config.my_id)
    }

    fn send(&self, to: ServerId) -> ElectionOutput {
        ElectionOutput::Send { to, notification: self.notification() }
    }

    /// Our notification to every other server, in ascending id order.
    fn send_to_all(&self) -> Vec<ElectionOutput> {
        let my_id = self.config.my_id;
        let everyone = self.config.voters.union(&self.config.observers);
        everyone.filter(|&&id| id != my_id).map(|&id| self.send(id)).collect()
    }

    /// The LOOKING case of `lookForLeader`, from a voter.
    fn receive_looking(
        &mut self,
        from: ServerId,
        notification: Notification,
        now_ms: u64,
        outputs: &mut Vec<ElectionOutput>,
    ) {
        let names_voter = self.config.voters.contains(&notification.vote.leader);
        if notification.election_epoch < self.logical_clock {
            // The sender is behind: answer so that it catches up with our round. An observer does
            // not answer, because a voter never learns anything from an observer.
            if self.is_voter() {
                outputs.push(self.send(from));
            }
            // ZooKeeper ends the finalize window on any better vote, whatever its round: the
            // sender will bring that vote into our round once it catches up, so give it the time.
            if let Some(finalize) = self.finalize.as_mut() {
                if names_voter && notification.vote.is_better_than(&self.vote) {
                    finalize.deadline_ms = now_ms.saturating_add(self.config.finalize_wait_ms);
                }
            }
            return;
        }
        if !names_voter {
            return;
        }
        if notification.election_epoch > self.logical_clock {
            // A newer round: join it, forget the votes of ours, and propose the better of its
            // vote and our own credentials.
            self.logical_clock = notification.election_epoch;
            self.received.clear();
            self.vote = if self.is_voter() && !notification.vote.is_better_than(&self.initial_vote) {
                self.initial_vote
            } else {
                notification.vote
            };
            outputs.extend(self.send_to_all());
        } else if self.adopts(&notification.vote) {
            self.vote = notification.vote;
            outputs.extend(self.send_to_all());
        } else if self.is_voter() && self.vote.is_better_than(&notification.vote) {
            // The sender has not heard our vote: it was most likely still following the old
            // leader when we sent it, and a settled server only answers with its own. Tell it
            // now rather than let both wait for a resend (ZooKeeper waits, which costs its
            // failovers 100s of ms). Once it adopts our vote it sends it back, which is no
            // longer worse: this answer cannot ping-pong.
            outputs.push(self.send(from));
        }
        self.received.insert(from, notification);
    }

    /// Whether a vote of our round replaces our proposal. An observer's placeholder loses to any
    /// vote for a voter, even one with the lowest credentials.
    fn adopts(&self, vote: &Vote) -> bool {
        let placeholder = !self.config.voters.contains(&self.vote.leader);
        placeholder || vote.is_better_than(&self.vote)
    }

    /// ZooKeeper's `receivedFollowingNotification`: a FOLLOWING or LEADING voter.
    fn receive_settled(&mut self, from: ServerId, notification: Notification) {
        if !self.config.voters.contains(&notification.vote.leader) {
            return;
        }
        if notification.election_epoch == self.logical_clock {
            // The sender settled in our very round, so its vote counts with the others.
            self.received.insert(from, notification);
            if self.has_quorum(&self.received, &notification, self.is_voter())
                && self.leader_confirmed(&self.received, &notification)
            {
                self.decide(notification.vote);
                return;
            }
        }
        // Joining an ensemble that already has a leader: a quorum of voters must follow it and
        // the leader itself must say it is leading (ZOOKEEPER-1732 keeps votes of every round).
        self.out_of_election.insert(from, notification);
        if self.has_quorum(&self.out_of_election, &notification, false)
            && self.leader_confirmed(&self.out_of_election, &notification)
        {
            self.logical_clock = notification.election_epoch;
            self.decide(notification.vote);
        }
    }

    /// ZooKeeper's `checkLeader`: another server leads only if it said so itself, so that
    /// servers do not keep electing a leader that crashed. If the others think we lead, we do,
    /// provided it is our round.
    fn leader_confirmed(&self, votes: &BTreeMap<ServerId, Notification>, notification: &Notification) -> bool {
        let leader = notification.vote.leader;
        if leader == self.config.my_id {
            return self.logical_clock == notification.election_epoch;
        }
        votes.get(&leader).is_some_and(|vote| vote.state == PeerState::Leading)
    }

    /// Whether a strict majority of the voters agrees with `target`, counting our own current
    /// notification when `include_self` (we are a voter and the set is of our round).
    fn has_quorum(&self, votes: &BTreeMap<ServerId, Notification>, target: &Notification, include_self: bool) -> bool {
        let mut count = votes.values().filter(|vote| agree(vote, target)).count();
        if include_self && agree(&self.notification(), target) {
            count += 1;
        }
        count * 2 > self.config.voters.len()
    }

    /// Starts, keeps or cancels the finalize window after our proposal or our votes changed.
    /// A window belongs to one (round, vote): a better vote that we adopt cancels it.
    fn update_finalize(&mut self, now_ms: u64) {
        if self.decision.is_some() {
            return;
        }
        let own = self.notification();
        let valid = self.config.voters.contains(&self.vote.leader);
        let holds = valid && self.has_quorum(&self.received, &own, self.is_voter());
        self.finalize = match self.finalize {
            Some(finalize) if holds && finalize.vote == self.vote && finalize.election_epoch == self.logical_clock => {
                Some(finalize)
            }
            _ if holds => Some(Finalize {
                deadline_ms: now_ms.saturating_add(self.config.finalize_wait_ms),
                election_epoch: self.logical_clock,
                vote: self.vote,
            }),
            _ => None,
        };
    }

    fn decide(&mut self, vote: Vote) {
        assert!(self.config.voters.contains(&vote.leader), "only a voter can lead");
        let election_epoch = self.logical_clock;
        self.vote = vote;
        self.finalize = None;
        self.decision = Some(if vote.leader == self.config.my_id {
            Decision::Lead { election_epoch, vote }
        } else if self.is_voter() {
            Decision::Follow { leader: vote.leader, election_epoch, vote }
        } else {
            Decision::Observe { leader: vote.leader, election_epoch, vote }
        });
    }

    /// Checked after every event in debug builds.
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let my_id = self.config.my_id;
        for id in self.received.keys().chain(self.out_of_election.keys()) {
            assert!(self.config.voters.contains(id) && *id != my_id, "only other voters' votes are kept");
        }
        if let Some(decision) = self.decision {
            assert!(self.finalize.is_none());
            assert_eq!(decision.vote(), self.vote);
            assert_eq!(decision.election_epoch(), self.logical_clock);
            return;
        }
        if self.is_voter() {
            // Within a round a voter's proposal only improves, starting from its own credentials.
            assert!(!self.initial_vote.is_better_than(&self.vote));
        } else {
            assert!(self.vote == self.initial_vote || self.config.voters.contains(&self.vote.leader));
        }
        if let Some(finalize) = self.finalize {
            assert_eq!((finalize.vote, finalize.election_epoch), (self.vote, self.logical_clock));
            assert!(self.has_quorum(&self.received, &self.notification(), self.is_voter()));
        }
    }
}

/// Whether two notifications support the same leader, as ZooKeeper's `Vote.equals`: while
/// either is looking, everything must match; between settled servers only the leader and its
/// epoch, because their zxids and rounds may legitimately differ (ZOOKEEPER-1805).
fn agree(a: &Notification, b: &Notification) -> bool {
    if a.state == PeerState::Looking || b.state == PeerState::Looking {
        a.vote == b.vote && a.election_epoch == b.election_epoch
    } else {
        a.vote.leader == b.vote.leader && a.vote.peer_epoch == b.vote.peer_epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FINALIZE_MS: u64 = 200;
    const RESEND_MS: u64 = 400;
    const RESEND_MS_MAX: u64 = 3_000;

    fn config(my_id: ServerId, voters: &[ServerId], observers: &[ServerId]) -> ElectionConfig {
        ElectionConfig {
            my_id,
            voters: voters.iter().copied().collect(),
            observers: observers.iter().copied().collect(),
            finalize_wait_ms: FINALIZE_MS,
            resend_interval_ms: RESEND_MS,
            resend_interval_ms_max: RESEND_MS_MAX,
        }
    }

    fn vote(leader: ServerId, zxid: i64, peer_epoch: u32) -> Vote {
        Vote { leader, zxid, peer_epoch }
    }

    fn looking(vote: Vote, election_epoch: u64) -> Notification {
        Notification { vote, election_epoch, state: PeerState::Looking }
    }

    fn sends(to: &[ServerId], notification: Notification) -> Vec<ElectionOutput> {
        to.iter().map(|&to| ElectionOutput::Send { to, notification }).collect()
    }

    /// A tiny linear congruential generator, so the simulation needs no `rand`.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % bound
        }
    }

    /// A virtual-time cluster: messages arrive in a seeded order (FIFO per link, as over TCP)
    /// with no delay, and time only moves once nothing is in flight, so timers never race
    /// messages. Settled servers answer looking ones with `settled_reply`, as the node does.
    struct Cluster {
        voters: Vec<ServerId>,
        observers: Vec<ServerId>,
        /// Per server: (start time, previous logical clock, current epoch, last zxid).
        starts: BTreeMap<ServerId, (u64, u64, u32, i64)>,
        elections: BTreeMap<ServerId, Election>,
        in_flight: Vec<(ServerId, ServerId, Notification)>,
        now_ms: u64,
        order: Lcg,
    }

    impl Cluster {
        fn new(voters: &[ServerId], observers: &[ServerId], seed: u64) -> Cluster {
            let (voters, observers) = (voters.to_vec(), observers.to_vec());
            let (starts, elections, in_flight) = (BTreeMap::new(), BTreeMap::new(), Vec::new());
            Cluster { voters, observers, starts, elections, in_flight, now_ms: 0, order: Lcg(seed) }
        }

        fn start(&mut self, id: ServerId) {
            let (_, clock_previous, epoch, zxid) = self.starts[&id];
            let config = config(id, &self.voters, &self.observers);
            let (election, outputs) = Election::start(config, clock_previous, epoch, zxid, self.now_ms);
            self.elections.insert(id, election);
            self.enqueue(id, outputs);
            let others: Vec<ServerId> = self.elections.keys().copied().filter(|&other| other != id).collect();
            for other in others {
                let outputs = self.elections.get_mut(&other).unwrap().handle_link_up(id, self.now_ms);
                self.enqueue(other, outputs);
            }
        }

        fn enqueue(&mut self, from: ServerId, outputs: Vec<ElectionOutput>) {
            for ElectionOutput::Send { to, notification } in outputs {
                self.in_flight.push((from, to, notification));
            }
        }

        fn deliver_all(&mut self) {
            for _ in 0..100_000 {
                if self.in_flight.is_empty() {
                    return;
                }
                let picked = self.in_flight[self.order.below(self.in_flight.len() as u64) as usize];
                let index = self.in_flight.iter().position(|m| (m.0, m.1) == (picked.0, picked.1)).unwrap();
                let (from, to, notification) = self.in_flight.remove(index);
                let Some(election) = self.elections.get_mut(&to) else { continue };
                match election.decision() {
                    None => {
                        let outputs = election.handle_notification(from, notification, self.now_ms);
                        self.enqueue(to, outputs);
                    }
                    Some(decision) if notification.state == PeerState::Looking => {
                        let reply = settled_reply(decision.vote(), decision.election_epoch(), decision.state());
                        self.in_flight.push((to, from, reply));
                    }
                    Some(_) => {}
                }
            }
            panic!("messages must die out");
        }

        /// Runs until nothing is left to do before `until_ms`: due timers fire before due starts.
        fn run(&mut self, until_ms: u64) {
            loop {
                self.deliver_all();
                let now_ms = self.now_ms;
                let due = |election: &&Election| election.poll_timeout().is_some_and(|at_ms| at_ms <= now_ms);
                let due: Vec<ServerId> = self.elections.iter().filter(|(_, e)| due(e)).map(|(&id, _)| id).collect();
                if !due.is_empty() {
                    let id = due[self.order.below(due.len() as u64) as usize];
                    let outputs = self.elections.get_mut(&id).unwrap().handle_timeout(self.now_ms);
                    self.enqueue(id, outputs);
                    continue;
                }
                let pending = self.starts.iter().filter(|(id, _)| !self.elections.contains_key(id));
                let pending: Vec<(ServerId, u64)> = pending.map(|(&id, start)| (id, start.0)).collect();
                if let Some(&(id, _)) = pending.iter().find(|(_, at_ms)| *at_ms <= self.now_ms) {
                    self.start(id);
                    continue;
                }
                let next_timeout = self.elections.values().filter_map(Election::poll_timeout);
                match pending.iter().map(|(_, at_ms)| *at_ms).chain(next_timeout).min() {
                    Some(next_ms) if next_ms <= until_ms => self.now_ms = next_ms,
                    _ => return,
                }
            }
        }

        fn decisions(&self) -> BTreeMap<ServerId, Decision> {
            self.elections.iter().filter_map(|(&id, election)| Some((id, election.decision()?))).collect()
        }

        fn leader_of(&self, id: ServerId) -> Option<ServerId> {
            self.elections[&id].decision().map(|decision| decision.leader())
        }
    }

    #[test]
    fn votes_are_ordered_by_epoch_then_zxid_then_id() {
        assert!(vote(1, 5, 2).is_better_than(&vote(3, 9, 1)), "a higher epoch beats a higher zxid");
        assert!(vote(1, 9, 1).is_better_than(&vote(3, 5, 1)), "a higher zxid beats a higher id");
        assert!(vote(3, 5, 1).is_better_than(&vote(1, 5, 1)), "ties are broken by id");
        assert!(!vote(3, 5, 1).is_better_than(&vote(3, 5, 1)), "a vote is not better than itself");
    }

    #[test]
    fn start_votes_for_itself_and_tells_every_other_server() {
        let (election, outputs) = Election::start(config(2, &[1, 2, 3], &[9]), 4, 7, 70, 1_000);
        let notification = looking(vote(2, 70, 7), 5);
        assert_eq!(outputs, sends(&[1, 3, 9], notification));
        assert_eq!((election.logical_clock(), election.vote(), election.decision()), (5, vote(2, 70, 7), None));
        assert_eq!(election.poll_timeout(), Some(1_000 + RESEND_MS));
    }

    #[test]
    fn three_voters_starting_together_elect_the_highest_zxid() {
        let mut cluster = Cluster::new(&[1, 2, 3], &[], 7);
        for (id, zxid) in [(1, 30), (2, 50), (3, 40)] {
            cluster.starts.insert(id, (0, 0, 1, zxid));
        }
        cluster.run(10_000);
        let expected_vote = vote(2, 50, 1);
        let decisions = cluster.decisions();
        assert_eq!(decisions[&2], Decision::Lead { election_epoch: 1, vote: expected_vote });
        assert_eq!(decisions[&1], Decision::Follow { leader: 2, election_epoch: 1, vote: expected_vote });
        assert_eq!(decisions[&3], Decision::Follow { leader: 2, election_epoch: 1, vote: expected_vote });
        assert_eq!(cluster.now_ms, FINALIZE_MS, "nobody decides before the finalize window ends");
    }

    #[test]
    fn equal_credentials_elect_the_highest_id_and_a_higher_epoch_beats_a_higher_zxid() {
        let mut cluster = Cluster::new(&[1, 2, 3], &[], 1);
        for id in [1, 2, 3] {
            cluster.starts.insert(id, (0, 0, 1, 10));
        }
        cluster.run(10_000);
        assert_eq!([1, 2, 3].map(|id| cluster.leader_of(id)), [Some(3); 3]);

        let mut cluster = Cluster::new(&[1, 2, 3], &[], 2);
        cluster.starts.insert(1, (0, 0, 2, 5));
        cluster.starts.insert(2, (0, 0, 1, 500));
        cluster.starts.insert(3, (0, 0, 1, 400));
        cluster.run(10_000);
        assert_eq!([1, 2, 3].map(|id| cluster.leader_of(id)), [Some(1); 3]);
    }

    #[test]
    fn a_late_server_joins_the_newer_round_and_keeps_its_better_vote() {
        let (mut election, _) = Election::start(config(3, &[1, 2, 3], &[]), 0, 1, 90, 0);
        let outputs = election.handle_notification(1, looking(vote(2, 50, 1), 5), 10);
        let own = looking(vote(3, 90, 1), 5);
        assert_eq!(outputs, sends(&[1, 2], own));
        assert_eq!(election.logical_clock(), 5);

        // In a cluster: 1 and 2 are in round 5 and already agree when 3 starts in round 1.
        let mut cluster = Cluster::new(&[1, 2, 3], &[], 3);
        cluster.starts.insert(1, (0, 4, 1, 30));
        cluster.starts.insert(2, (0, 4, 1, 50));
        cluster.starts.insert(3, (100, 0, 1, 90));
        cluster.run(10_000);
        let expected = vote(3, 90, 1);
        assert_eq!(cluster.decisions()[&3], Decision::Lead { election_epoch: 5, vote: expected });
        assert_eq!(cluster.decisions()[&1], Decision::Follow { leader: 3, election_epoch: 5, vote: expected });
        assert_eq!(cluster.now_ms, 100 + FINALIZE_MS, "the better vote cancelled the window that began at 0");
    }

    #[test]
    fn a_notification_from_an_older_round_gets_our_notification_back_and_is_not_counted() {
        let (mut election, _) = Election::start(config(1, &[1, 2, 3], &[]), 6, 1, 10, 0);
        let outputs = election.handle_notification(2, looking(vote(2, 50, 1), 3), 5);
        assert_eq!(outputs, sends(&[2], looking(vote(1, 10, 1), 7)));
        assert_eq!((election.vote(), election.logical_clock()), (vote(1, 10, 1), 7));
        // 3 agrees with 1 in round 7, but 2's vote was not counted, so 1's quorum is {1, 3}.
        assert!(election.handle_notification(3, looking(vote(1, 10, 1), 7), 6).is_empty());
        assert_eq!(election.poll_timeout(), Some(6 + FINALIZE_MS));
    }

    #[test]
    fn a_better_vote_inside_the_finalize_window_cancels_the_decision() {
        let (mut election, _) = Election::start(config(3, &[1, 2, 3], &[]), 0, 1, 40, 0);
        assert!(election.handle_notification(1, looking(vote(3, 40, 1), 1), 10).is_empty());
        assert_eq!(election.poll_timeout(), Some(10 + FINALIZE_MS));
        let better = vote(2, 60, 1);
        let outputs = election.handle_notification(2, looking(better, 1), 100);
        assert_eq!(outputs, sends(&[1, 2], looking(better, 1)));
        // 2 and 3 now agree on 2, a quorum of a new vote, so a new window starts.
        assert_eq!(election.poll_timeout(), Some(100 + FINALIZE_MS));
        assert!(election.handle_timeout(10 + FINALIZE_MS).is_empty());
        assert_eq!(election.decision(), None, "the first window was cancelled");
        assert!(election.handle_timeout(100 + FINALIZE_MS).is_empty());
        assert_eq!(election.decision(), Some(Decision::Follow { leader: 2, election_epoch: 1, vote: better }));
        assert_eq!(election.poll_timeout(), None);
    }

    #[test]
    fn a_looker_answers_a_worse_vote_of_its_round_so_its_sender_need_not_wait_for_a_resend() {
        // The leader died. 2 started looking first and told 1, which was still following and
        // only answered with its old vote; then 1 started looking too, voting for itself.
        let (mut two, _) = Election::start(config(2, &[1, 2, 3], &[]), 0, 1, 40, 0);
        let outputs = two.handle_notification(1, looking(vote(1, 40, 1), 1), 1);
        assert_eq!(outputs, sends(&[1], looking(vote(2, 40, 1), 1)));
        let (mut one, _) = Election::start(config(1, &[1, 2, 3], &[]), 0, 1, 40, 1);
        let outputs = one.handle_notification(2, looking(vote(2, 40, 1), 1), 2);
        assert_eq!(outputs, sends(&[2, 3], looking(vote(2, 40, 1), 1)));
        // 1's agreement makes a quorum for 2 at once, and earns no answer: no ping-pong.
        assert!(two.handle_notification(1, looking(vote(2, 40, 1), 1), 3).is_empty());
        assert_eq!(two.poll_timeout(), Some(3 + FINALIZE_MS), "the window, not a resend at {RESEND_MS} ms");
    }

    #[test]
    fn a_quorum_decides_only_when_the_window_ends() {
        let (mut election, _) = Election::start(config(2, &[1, 2, 3], &[]), 0, 1, 40, 0);
        assert!(election.handle_notification(1, looking(vote(2, 40, 1), 1), 50).is_empty());
        // A worse vote inside the window neither cancels nor extends it; its sender hears ours.
        let outputs = election.handle_notification(3, looking(vote(3, 20, 1), 1), 100);
        assert_eq!(outputs, sends(&[3], looking(vote(2, 40, 1), 1)));
        assert!(election.handle_timeout(50 + FINALIZE_MS - 1).is_empty());
        assert_eq!(election.decision(), None);
        assert!(election.handle_timeout(50 + FINALIZE_MS).is_empty());
        let decided = Decision::Lead { election_epoch: 1, vote: vote(2, 40, 1) };
        assert_eq!(election.decision(), Some(decided));
        // Decided is final: later inputs are ignored.
        assert!(election.handle_notification(3, looking(vote(3, 99, 9), 1), 300).is_empty());
        assert!(election.handle_link_up(3, 300).is_empty());
        assert_eq!(election.decision(), Some(decided));
    }

    #[test]
    fn an_ensemble_of_one_leads_after_the_window() {
        let (mut election, outputs) = Election::start(config(1, &[1], &[]), 0, 3, 7, 20);
        assert!(outputs.is_empty());
        assert_eq!(election.poll_timeout(), Some(20 + FINALIZE_MS));
        assert!(election.handle_timeout(20 + FINALIZE_MS).is_empty());
        assert_eq!(election.decision(), Some(Decision::Lead { election_epoch: 1, vote: vote(1, 7, 3) }));
    }

    #[test]
    fn joining_an_established_ensemble_decides_at_once() {
        let leader_vote = vote(3, 500, 4);
        // We start round 2; the ensemble settled in round 1 and tells us so.
        let (mut election, _) = Election::start(config(1, &[1, 2, 3, 4, 5], &[]), 1, 4, 900, 0);
        assert!(election.handle_notification(2, settled_reply(leader_vote, 1, PeerState::Following), 1).is_empty());
        assert!(election.handle_notification(3, settled_reply(leader_vote, 1, PeerState::Leading), 2).is_empty());
        assert_eq!(election.decision(), None, "two of five are not a quorum");
        assert!(election.handle_notification(4, settled_reply(leader_vote, 1, PeerState::Following), 3).is_empty());
        let expected = Decision::Follow { leader: 3, election_epoch: 1, vote: leader_vote };
        assert_eq!(election.decision(), Some(expected), "a quorum follows 3 and 3 says it leads");
        assert_eq!(election.logical_clock(), 1, "we adopt the ensemble's round");

        // Settled votes of our own round count together with our own vote.
        let (mut election, _) = Election::start(config(1, &[1, 2, 3], &[]), 0, 1, 10, 0);
        assert_eq!(
            election.handle_notification(3, looking(leader_vote, 1), 1),
            sends(&[2, 3], looking(leader_vote, 1))
        );
        assert_eq!(election.decision(), None);
        assert!(election.handle_notification(3, settled_reply(leader_vote, 1, PeerState::Leading), 2).is_empty());
        assert_eq!(election.decision(), Some(Decision::Follow { leader: 3, election_epoch: 1, vote: leader_vote }));
    }

    #[test]
    fn joining_needs_the_leaders_own_word_and_a_voter_as_leader() {
        let (mut election, _) = Election::start(config(1, &[1, 2, 3, 4, 5], &[9]), 5, 4, 900, 0);
        for from in [2, 4, 5] {
            assert!(election
                .handle_notification(from, settled_reply(vote(9, 1, 1), 2, PeerState::Following), 1)
                .is_empty());
        }
        assert_eq!(election.decision(), None, "9 is not a voter, so its leadership is not adopted");
        for from in [2, 4, 5] {
            assert!(election
                .handle_notification(from, settled_reply(vote(3, 1, 1), 2, PeerState::Following), 2)
                .is_empty());
        }
        assert_eq!(election.decision(), None, "a quorum follows 3, but 3 never said it leads (checkLeader)");
        assert!(election.handle_notification(3, settled_reply(vote(3, 1, 1), 2, PeerState::Leading), 3).is_empty());
        assert_eq!(election.decision().map(|decision| decision.leader()), Some(3));
    }

    #[test]
    fn an_observer_learns_the_leader_and_never_counts() {
        let (mut observer, outputs) = Election::start(config(9, &[1, 2, 3], &[8, 9]), 0, 1, 5, 0);
        let placeholder = looking(vote(9, i64::MIN, 0), 1);
        assert_eq!(outputs, sends(&[1, 2, 3, 8], placeholder));

        // A voter answers a looking observer, ignores its vote, and does not count it.
        let (mut voter, _) = Election::start(config(1, &[1, 2, 3], &[8, 9]), 0, 1, 10, 0);
        let own = looking(vote(1, 10, 1), 1);
        assert_eq!(voter.handle_notification(9, placeholder, 1), sends(&[9], own));
        assert_eq!(voter.handle_notification(8, own, 1), sends(&[8], own));
        assert_eq!(voter.poll_timeout(), Some(RESEND_MS), "observers' agreement is no quorum");
        assert!(voter.handle_notification(9, settled_reply(own.vote, 1, PeerState::Observing), 1).is_empty());

        // The observer adopts the first voter's vote, and decides once a quorum of voters agrees.
        let leader_vote = vote(2, 50, 1);
        let adopted = looking(leader_vote, 1);
        assert_eq!(observer.handle_notification(1, own, 1), sends(&[1, 2, 3, 8], own));
        assert_eq!(observer.handle_notification(2, adopted, 2), sends(&[1, 2, 3, 8], adopted));
        assert!(observer.handle_notification(8, adopted, 3).is_empty(), "an observer does not answer observers");
        assert_eq!(observer.poll_timeout(), Some(RESEND_MS), "one voter is not a quorum");
        assert!(observer.handle_notification(1, adopted, 4).is_empty());
        assert_eq!(observer.poll_timeout(), Some(4 + FINALIZE_MS));
        assert!(observer.handle_timeout(4 + FINALIZE_MS).is_empty());
        assert_eq!(observer.decision(), Some(Decision::Observe { leader: 2, election_epoch: 1, vote: leader_vote }));
    }

    #[test]
    fn three_of_five_reachable_decide_and_two_of_five_never_do() {
        let mut cluster = Cluster::new(&[1, 2, 3, 4, 5], &[], 5);
        for id in [1, 3, 4] {
            cluster.starts.insert(id, (0, 0, 1, 10));
        }
        cluster.run(60_000);
        assert_eq!([1, 3, 4].map(|id| cluster.leader_of(id)), [Some(4); 3]);

        let mut cluster = Cluster::new(&[1, 2, 3, 4, 5], &[], 5);
        for id in [2, 5] {
            cluster.starts.insert(id, (0, 0, 1, 10));
        }
        cluster.run(600_000);
        assert!(cluster.decisions().is_empty());
        assert_eq!(cluster.elections[&2].vote(), vote(5, 10, 1), "they agree, but two are no quorum");
    }

    #[test]
    fn resends_back_off_by_doubling_up_to_the_maximum() {
        let (mut election, _) = Election::start(config(1, &[1, 2, 3], &[]), 0, 1, 10, 0);
        let all = sends(&[2, 3], looking(vote(1, 10, 1), 1));
        assert!(election.handle_timeout(RESEND_MS - 1).is_empty(), "a spurious wake-up does nothing");
        let mut now_ms = 0;
        let mut intervals = Vec::new();
        for _ in 0..6 {
            let deadline_ms = election.poll_timeout().unwrap();
            intervals.push(deadline_ms - now_ms);
            now_ms = deadline_ms;
            assert_eq!(election.handle_timeout(now_ms), all);
        }
        assert_eq!(intervals, [400, 800, 1_600, 3_000, 3_000, 3_000]);
        assert_eq!(election.handle_link_up(3, now_ms), sends(&[3], looking(vote(1, 10, 1), 1)));
    }

    #[test]
    fn unknown_senders_and_leaders_who_are_not_voters_are_ignored() {
        let (mut election, _) = Election::start(config(1, &[1, 2, 3], &[9]), 0, 1, 10, 0);
        assert!(election.handle_notification(7, looking(vote(7, 99, 9), 1), 1).is_empty());
        assert!(election.handle_notification(2, looking(vote(9, 99, 9), 1), 1).is_empty());
        assert!(election.handle_notification(2, looking(vote(9, 99, 9), 4), 1).is_empty());
        assert!(election.handle_link_up(7, 1).is_empty());
        assert_eq!((election.vote(), election.logical_clock()), (vote(1, 10, 1), 1));
        assert_eq!(election.poll_timeout(), Some(RESEND_MS));
    }

    /// Reference: the FLE guarantee that once every message is delivered, the servers that are
    /// looking converge on one vote, so all who decide follow the same leader.
    #[test]
    fn simulated_elections_agree_on_one_leader_under_shuffled_delivery() {
        for seed in 0..2_000u64 {
            let mut draw = Lcg(seed ^ 0x5eed);
            let voter_count = [1, 3, 4, 5][draw.below(4) as usize];
            let voters: Vec<ServerId> = (1..=voter_count).collect();
            let observers: Vec<ServerId> = (10..10 + draw.below(3)).collect();
            let together = seed % 2 == 0;
            let mut cluster = Cluster::new(&voters, &observers, seed);
            let mut best: Option<Vote> = None;
            for &id in voters.iter().chain(&observers) {
                let at_ms = if together { 0 } else { draw.below(8) * 100 };
                let (epoch, zxid) = (1 + draw.below(2) as u32, draw.below(3) as i64);
                cluster.starts.insert(id, (at_ms, draw.below(3), epoch, zxid));
                let own = vote(id, zxid, epoch);
                if voters.contains(&id) && best.is_none_or(|best| own.is_better_than(&best)) {
                    best = Some(own);
                }
            }
            cluster.run(300_000);
            let decisions = cluster.decisions();
            assert_eq!(decisions.len(), voters.len() + observers.len(), "seed {seed}: everyone decides");
            let leader = decisions[&voters[0]].leader();
            for (id, decision) in &decisions {
                assert_eq!(decision.leader(), leader, "seed {seed}: server {id} disagrees");
                let expected_state = if *id == leader {
                    PeerState::Leading
                } else if voters.contains(id) {
                    PeerState::Following
                } else {
                    PeerState::Observing
                };
                assert_eq!(decision.state(), expected_state, "seed {seed}: server {id}");
            }
            if together {
                assert_eq!(Some(decisions[&leader].vote()), best, "seed {seed}: the best credentials lead");
            }
        }
    }
}
