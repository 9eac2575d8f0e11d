//! The sans-IO server: one [`Node`] per zkd server, driven by the simulator or by the tokio
//! runtime through the same methods.
//!
//! A node owns no sockets, files, threads or clocks. Its driver feeds it inputs with the
//! current time (`handle_*`) and carries out what it asks for (`poll_*`). See [`Node`] for
//! the call order.
//!
//! A node is the state every role uses (`shared.rs`: configuration, database, history,
//! persistence, epochs, client connections, outboxes, the clock) plus its current role,
//! each a type with its own handlers that take the shared state as an argument: looking
//! (Fast Leader Election, [`crate::zab::election`]), leading (`leader.rs`: discovery,
//! synchronization of each learner, broadcast; `leader/rounds.rs`: confirmation rounds and
//! the syncs and revalidations that wait for them; `leader/forwarded.rs`: the requests a
//! server's clients make of the leader, taken locally or forwarded by a learner) and learning (`learner.rs`: a follower
//! or an observer in the same three phases). A role's code runs only while the node holds
//! that role; a handler that must leave it (step down, stop) asks through the shared
//! state, and the node makes the change when the handler returns. A leader's and a
//! learner's timers are named ([`timers`]: one enum, one deadline table per role).
//! Client connections (`client.rs`) are served only while the node is in broadcast.

mod client;
mod history;
mod leader;
mod learner;
mod persist;
mod shared;
mod timers;

use core::net::IpAddr;
use std::collections::BTreeSet;

pub use client::{ConnectionStats, RequestLatency};
pub use persist::{Durable, PersistRequest, PersistToken, StorageOp};

use crate::acl::AuthConfig;
use crate::database::Database;
use crate::ondisk::Recovered;
use crate::proto::Id;
use crate::request::PrepareConfig;
use crate::session::{SessionConfig, SESSIONS_MAX_DEFAULT};

use crate::txn::LogEntry;
use crate::watch::WATCHES_MAX_DEFAULT;
use crate::zab::election::{self, Election, ElectionConfig, PeerState, Vote};
use crate::zab::message::{LearnerRole, PeerMessage};
use crate::zab::ServerId;

use leader::Leader;
use learner::Learner;
use shared::{Shared, Transition};

/// Identifies a client connection; chosen by the driver, unique while the connection lives.
pub type ConnectionId = u64;

/// The time, as the driver reads it. `monotonic_ms` drives every timer and session expiry;
/// `wall_ms` (milliseconds since the Unix epoch) is what a leader stamps into txns, so
/// ctime and mtime agree on every replica, and what TTL nodes are judged by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    pub monotonic_ms: u64,
    pub wall_ms: i64,
}

/// A server's settings (the parts of zoo.cfg the core needs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// This server's id (`myid`).
    pub server_id: ServerId,
    /// The participants (`server.N=...:participant`), this server included if it votes.
    pub voters: BTreeSet<ServerId>,
    /// The observers (`server.N=...:observer`).
    pub observers: BTreeSet<ServerId>,
    /// `tickTime`, `minSessionTimeout`, `maxSessionTimeout`.
    pub session: SessionConfig,
    /// `initLimit`: ticks a learner may take to connect and sync with its leader.
    pub init_limit_ticks: u64,
    /// `syncLimit`: ticks a learner may stay silent before it is dropped (and a leader
    /// without a quorum of learners heard within it steps down).
    pub sync_limit_ticks: u64,
    pub prepare: PrepareConfig,
    pub auth: AuthConfig,
    pub sessions_max: usize,
    pub watches_max: usize,
    /// Proposals a leader keeps in flight (proposed, not committed) before it holds new
    /// requests back.
    pub proposals_in_flight_max: usize,
    /// Requests a leader holds back while the pipeline is full; beyond this a request is
    /// refused with ThrottledOp.
    pub requests_queued_max: usize,
    /// Requests one connection may have waiting for earlier writes; beyond this the
    /// connection is closed (a driver should stop reading well before: see
    /// [`Node::connection_requests_pending`]).
    pub connection_requests_pending_max: usize,
    /// The largest client frame accepted (jute.maxbuffer plus the request header).
    pub client_frame_bytes_max: usize,
    /// `snapCount`: a snapshot is written after this many applied txns.
    pub snapshot_txn_count: u64,
    /// Txns kept in memory for DIFF syncs; learners further behind get a SNAP. 25,000 by
    /// default: a learner that missed a few seconds of writes at tens of thousands a second
    /// still gets a DIFF, and a server holding 1M small znodes spends ~10 MB on them
    /// rather than ~40 MB (a decoded create of 100 B takes ~420 B).
    pub history_entries_max: usize,
    /// ... and at most about this many bytes of them (ZooKeeper keeps 500 txns).
    pub history_bytes_max: usize,
    /// ZooKeeper's `finalizeWait`: how long an election waits for a better vote after a
    /// quorum agrees (unless every voter has answered). ZooKeeper waits 200 ms; zkd's
    /// default is 50 ms, since a vote crosses a LAN in well under a millisecond and the wait
    /// only guards against electing a leader that a slower vote would have displaced (never
    /// safety: a leader agreed by a quorum holds every committed txn). It is most of the
    /// time from a leader's loss to the next acknowledged write.
    pub election_finalize_wait_ms: u64,
    /// ZooKeeper's `maxNotificationInterval`.
    pub election_resend_interval_ms_max: u64,
    /// How often a leader looks for empty containers and expired TTL nodes.
    pub container_check_interval_ms: u64,
    /// Whether a leader waits for a quorum to confirm its rounds before it answers a sync
    /// or revalidates a session (see [`Node`]'s leases and rounds). Always true in zkd; no
    /// configuration key sets it. False is a planted bug for the simulator's checker
    /// tests: every round counts as confirmed the moment it starts.
    pub confirm_rounds: bool,
    /// Whether the lease is checked before every input (see [`Node`]). Always true in zkd;
    /// no configuration key sets it. False is a planted bug for the simulator's checker
    /// tests: the lease is checked only when the node's timer fires, so a server resumed
    /// from a pause handles its queued inputs first and notices later.
    pub lease_checked_first: bool,
}

impl NodeConfig {
    /// A standalone server: an ensemble of one.
    pub fn standalone(server_id: ServerId) -> NodeConfig {
        NodeConfig::ensemble(server_id, [server_id].into_iter().collect(), BTreeSet::new())
    }

    /// A member of an ensemble with ZooKeeper's defaults (tickTime 2000, initLimit 10,
    /// syncLimit 5).
    pub fn ensemble(server_id: ServerId, voters: BTreeSet<ServerId>, observers: BTreeSet<ServerId>) -> NodeConfig {
        NodeConfig {
            server_id,
            voters,
            observers,
            session: SessionConfig::default(),
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            prepare: PrepareConfig::default(),
            auth: AuthConfig::default(),
            sessions_max: SESSIONS_MAX_DEFAULT,
            watches_max: WATCHES_MAX_DEFAULT,
            proposals_in_flight_max: 1000,
            requests_queued_max: 10_000,
            connection_requests_pending_max: 1000,
            client_frame_bytes_max: crate::proto::JUTE_MAXBUFFER_DEFAULT + crate::proto::JUTE_MAXBUFFER_EXTRA_SIZE,
            snapshot_txn_count: 100_000,
            history_entries_max: 25_000,
            history_bytes_max: 32 << 20,
            election_finalize_wait_ms: 50,
            election_resend_interval_ms_max: 60_000,
            container_check_interval_ms: 60_000,
            confirm_rounds: true,
            lease_checked_first: true,
        }
    }

    pub fn tick_ms(&self) -> u64 {
        self.session.tick_time_ms.max(1) as u64
    }

    fn quorum_size(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    fn is_quorum<'a>(&self, servers: impl IntoIterator<Item = &'a ServerId>) -> bool {
        servers.into_iter().filter(|server| self.voters.contains(server)).count() >= self.quorum_size()
    }

    fn is_voter(&self) -> bool {
        self.voters.contains(&self.server_id)
    }
}

/// Something for a client connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// Bytes to write, a whole length-prefixed frame.
    Frame { connection: ConnectionId, bytes: Vec<u8> },
    /// Close the connection once earlier frames are written.
    Close { connection: ConnectionId },
}

/// A message for a peer. Links are FIFO while up; a message for a peer whose link is down
/// is dropped (the protocol recovers through timeouts and re-election).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerTransmit {
    pub to: ServerId,
    pub message: PeerMessage,
}

/// What a node is doing, for operators and checkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleName {
    Looking,
    /// Leading, in discovery or synchronization: not serving yet.
    LeaderElect,
    /// Leading an established epoch.
    Leading,
    Following,
    Observing,
    /// Stopped after a storage failure; the driver must restart it from disk.
    Stopped,
}

/// The node's role, each with its own state.
#[derive(Debug)]
enum Role {
    Looking(Box<Election>),
    Leading(Box<Leader>),
    Learning(Box<Learner>),
    Stopped { reason: String },
}

/// One zkd server, sans IO.
///
/// # Driving a node
///
/// Methods come in three kinds: getters; `handle_*`, which take an input and the current
/// time; and `poll_*`, which return outputs. After every `handle_*` call (and after
/// `handle_timeout` when [`Node::poll_timeout`]'s deadline has passed), a driver drains:
///
/// 1. [`Node::poll_persist`] until `None`, handing each request to storage; when a request
///    (and every earlier one) is durable, it calls [`Node::handle_persisted`];
/// 2. [`Node::poll_peer`] until `None`, sending each message on its peer link;
/// 3. [`Node::poll_client`] until `None`, writing frames and closing connections;
/// 4. [`Node::poll_timeout`], to know when to call [`Node::handle_timeout`] next.
///
/// Persist first: a leader's proposal may leave before its own log write is durable
/// (the leader only counts its own vote after `handle_persisted`), but a driver that
/// persists first gives storage a head start. Nothing that must wait for durability is
/// ever returned early: acknowledgements are computed from the durable watermark.
///
/// A spurious `handle_timeout` is harmless. Inputs for unknown connections or peers are
/// ignored.
///
/// # Leases and confirmed syncs
///
/// Two rules keep a server that was paused, cut off or deposed from answering with stale
/// state (Jepsen found ZooKeeper's sync+read not strictly linearizable for want of them):
///
/// - **No server serves past its lease.** Every `handle_*` first checks its lease against
///   the `now` it is given, before it looks at the input. A leader's lease runs for
///   `syncLimit` ticks from the *start* of the last confirmation round a quorum of voters
///   (itself included) echoed — it starts one every half tick — so echoes handled late, after
///   a pause, do not renew it (a leader-elect's lease lasts `initLimit` ticks from its start;
///   a leader that is a quorum by itself holds it for good). A learner's lease holds while
///   its leader was heard within `syncLimit` ticks (`initLimit` before it is up to date). A
///   server whose lease ran out goes back to election, closing every client connection, and
///   only then handles the input: a leader resumed from a GC pause with inputs queued
///   answers none of them. The lease narrows the window in which a deposed server serves
///   reads; it is not what makes `sync` safe (clocks can drift): the next rule is.
/// - **A sync is confirmed by a quorum.** The leader answers a `sync` (its own clients' or a
///   learner's) only once every proposal before it committed *and* a quorum of voters echoed,
///   in the leader's epoch, a confirmation round that began after the sync arrived. A
///   deposed leader's followers have moved to a newer epoch and echo nothing, so it never
///   answers a sync; a reconnecting session is revalidated behind the same barrier. One
///   round serves every waiter that arrived before it began (ReadIndex's batching).
#[derive(Debug)]
pub struct Node {
    /// The state every role uses.
    shared: Shared,
    role: Role,
}

/// The sizes of the leader's proposals in bytes (ZooKeeper's `BufferStats`, shown by
/// `srvr` and `mntr` on a leader): -1 until the first proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProposalSizes {
    pub last: i64,
    pub min: i64,
    pub max: i64,
}

impl Default for ProposalSizes {
    fn default() -> Self {
        ProposalSizes { last: -1, min: -1, max: -1 }
    }
}

impl ProposalSizes {
    fn record(&mut self, size: usize) {
        let size = size as i64;
        self.last = size;
        self.min = if self.min == -1 { size } else { self.min.min(size) };
        self.max = self.max.max(size);
    }
}

/// A request the leader will prepare, from a local connection or a learner.
#[derive(Clone, Debug)]
struct Submission {
    origin: ServerId,
    session_id: i64,
    cxid: i32,
    kind: SubmissionKind,
}

#[derive(Clone, Debug)]
enum SubmissionKind {
    CreateSession {
        timeout_ms: i32,
    },
    Request {
        request: crate::proto::Request,
        auth_ids: Vec<crate::proto::Id>,
    },
    /// The leader closes a session that expired.
    ExpireSession,
    /// The leader deletes an empty container or an expired TTL node.
    DeleteContainer {
        path: String,
    },
}

impl Node {
    /// A node starting from what recovery found on disk (an empty data directory recovers
    /// to an empty database). It starts looking for a leader; a standalone node leads at
    /// once.
    pub fn new(config: NodeConfig, recovered: Recovered, now: Now) -> Node {
        assert!(
            config.voters.contains(&config.server_id) || config.observers.contains(&config.server_id),
            "server {} is neither a voter nor an observer",
            config.server_id
        );
        assert!(config.voters.is_disjoint(&config.observers), "a server is a voter or an observer, not both");
        let shared = Shared::new(config, recovered, now);
        let mut node = Node { shared, role: Role::Stopped { reason: String::from("starting") } };
        node.become_looking();
        node.apply_transition();
        node.check_invariants();
        node
    }

    // ---- getters ----

    pub fn config(&self) -> &NodeConfig {
        &self.shared.config
    }

    pub fn server_id(&self) -> ServerId {
        self.shared.config.server_id
    }

    pub fn role(&self) -> RoleName {
        match &self.role {
            Role::Looking(_) => RoleName::Looking,
            Role::Leading(leader) if leader.is_established() => RoleName::Leading,
            Role::Leading(_) => RoleName::LeaderElect,
            Role::Learning(learner) if learner.is_observer() => RoleName::Observing,
            Role::Learning(_) => RoleName::Following,
            Role::Stopped { .. } => RoleName::Stopped,
        }
    }

    /// The leader this node follows or is, once an election settled.
    pub fn leader(&self) -> Option<ServerId> {
        match &self.role {
            Role::Leading(_) => Some(self.shared.config.server_id),
            Role::Learning(learner) => Some(learner.leader),
            _ => None,
        }
    }

    /// Whether client requests are being served (broadcast phase).
    pub fn is_serving(&self) -> bool {
        match &self.role {
            Role::Leading(leader) => leader.is_established(),
            Role::Learning(learner) => learner.is_up_to_date(),
            _ => false,
        }
    }

    /// Why the node stopped, if it did.
    pub fn stop_reason(&self) -> Option<&str> {
        match &self.role {
            Role::Stopped { reason } => Some(reason),
            _ => None,
        }
    }

    pub fn accepted_epoch(&self) -> u32 {
        self.shared.accepted_epoch
    }

    pub fn current_epoch(&self) -> u32 {
        self.shared.current_epoch
    }

    /// The zxid of the last txn in this node's log.
    pub fn last_logged_zxid(&self) -> i64 {
        self.shared.history.last_zxid()
    }

    /// The last txn known committed.
    pub fn committed_zxid(&self) -> i64 {
        self.shared.committed_zxid
    }

    /// The last txn applied to the database.
    pub fn applied_zxid(&self) -> i64 {
        self.shared.database.last_processed_zxid()
    }

    pub fn durable(&self) -> Durable {
        self.shared.persistence.durable
    }

    pub fn database(&self) -> &Database {
        &self.shared.database
    }

    /// The txns held in memory (the log since `history_base_zxid`).
    pub fn history(&self) -> impl Iterator<Item = &LogEntry> {
        self.shared.history.entries()
    }

    /// The in-memory log's entries after `zxid`, found by search rather than a walk from the
    /// oldest (for checkers that look at the log incrementally).
    pub fn history_after(&self, zxid: i64) -> impl Iterator<Item = &LogEntry> {
        self.shared.history.entries_after(zxid)
    }

    /// How many times the in-memory log was truncated or reset (trimming its oldest entries
    /// does not count): while it stays the same, entries once seen are unchanged.
    pub fn history_rewrites(&self) -> u64 {
        self.shared.history.rewrites()
    }

    pub fn history_base_zxid(&self) -> i64 {
        self.shared.history.base_zxid()
    }

    /// Requests on a connection waiting behind earlier writes; a driver should pause
    /// reading from a connection with many (backpressure).
    pub fn connection_requests_pending(&self, connection: ConnectionId) -> usize {
        self.shared.clients.requests_pending(connection)
    }

    /// Open client connections.
    pub fn connection_count(&self) -> usize {
        self.shared.clients.len()
    }

    /// Client request latency since start (or the last reset).
    pub fn request_latency(&self) -> RequestLatency {
        self.shared.clients.latency
    }

    /// A connection's counters (for `cons`).
    pub fn connection_stats(&self, connection: ConnectionId) -> Option<ConnectionStats> {
        self.shared.clients.stats(connection)
    }

    /// An established leader's session expiry buckets (what ZooKeeper's leader prints in
    /// `dump`): each deadline, on the wall clock, with the sessions that expire then. `None`
    /// elsewhere (a leader-elect tracks sessions only once its epoch is established).
    pub fn session_expiry(&self) -> Option<Vec<(i64, Vec<i64>)>> {
        let Role::Leading(leader) = &self.role else { return None };
        let sessions = leader.sessions()?;
        let to_wall_ms = |deadline_ms: i64| deadline_ms - self.shared.now.monotonic_ms as i64 + self.shared.now.wall_ms;
        Some(sessions.buckets().map(|(deadline, ids)| (to_wall_ms(deadline), ids.iter().copied().collect())).collect())
    }

    /// The sizes of this server's proposals while it led.
    pub fn proposal_sizes(&self) -> ProposalSizes {
        self.shared.proposal_sizes
    }

    /// Starts the latency and proposal-size figures afresh (`srst`).
    pub fn reset_statistics(&mut self) {
        self.shared.clients.latency = RequestLatency::default();
        self.shared.proposal_sizes = ProposalSizes::default();
    }

    /// The session of each connection that has one (for `cons`, `wchc`, `wchp`, `dump`).
    pub fn connection_sessions(&self) -> std::collections::BTreeMap<ConnectionId, i64> {
        self.shared.clients.sessions()
    }

    // ---- outputs ----

    /// The next storage request. Seals everything queued since the last call into one
    /// request, so one fsync covers many txns.
    #[must_use]
    pub fn poll_persist(&mut self) -> Option<PersistRequest> {
        let tip = self.shared.history.last_zxid();
        self.shared.persistence.seal(tip)
    }

    /// The next message for a peer.
    #[must_use]
    pub fn poll_peer(&mut self) -> Option<PeerTransmit> {
        self.shared.peer_out.pop_front()
    }

    /// The next frame or close for a client connection.
    #[must_use]
    pub fn poll_client(&mut self) -> Option<ClientOutput> {
        self.shared.client_out.pop_front()
    }

    /// When `handle_timeout` should next be called (monotonic milliseconds).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.role {
            Role::Looking(election) => election.poll_timeout(),
            Role::Leading(leader) => Some(leader.poll_timeout()),
            Role::Learning(learner) => Some(learner.poll_timeout()),
            Role::Stopped { .. } => None,
        }
    }

    // ---- inputs ----

    /// Timers: election resends and finalization, pings, liveness limits, session expiry,
    /// container clean-up. Calling it early does nothing harmful.
    pub fn handle_timeout(&mut self, now: Now) {
        self.shared.advance(now);
        self.expire_lease(true);
        match &mut self.role {
            Role::Looking(election) => {
                let outputs = election.handle_timeout(now.monotonic_ms);
                self.send_election(outputs);
                self.check_decision();
            }
            Role::Leading(leader) => leader.timeout(&mut self.shared),
            Role::Learning(learner) => learner.timeout(&mut self.shared),
            Role::Stopped { .. } => {}
        }
        self.apply_transition();
        self.check_invariants();
    }

    /// A message from a peer (decoded with [`crate::zab::message::decode`]).
    pub fn handle_peer_message(&mut self, from: ServerId, message: PeerMessage, now: Now) {
        self.shared.advance(now);
        self.expire_lease(false);
        let config = &self.shared.config;
        let known = config.voters.contains(&from) || config.observers.contains(&from);
        if from != config.server_id && known {
            self.peer_message(from, message);
        }
        self.apply_transition();
        self.check_invariants();
    }

    /// The link to a peer came up.
    pub fn handle_peer_link_up(&mut self, peer: ServerId, now: Now) {
        self.shared.advance(now);
        self.expire_lease(false);
        match &mut self.role {
            Role::Looking(election) => {
                let outputs = election.handle_link_up(peer, now.monotonic_ms);
                self.send_election(outputs);
            }
            Role::Learning(learner) => learner.link_up(&mut self.shared, peer),
            Role::Leading(_) | Role::Stopped { .. } => {}
        }
        self.apply_transition();
        self.check_invariants();
    }

    /// The link to a peer broke: what was in flight on it is lost.
    pub fn handle_peer_link_down(&mut self, peer: ServerId, now: Now) {
        self.shared.advance(now);
        self.expire_lease(false);
        self.shared.early_hellos.remove(&peer);
        match &mut self.role {
            Role::Leading(leader) => leader.link_down(&mut self.shared, peer),
            Role::Learning(learner) if learner.leader == peer => self.become_looking(),
            _ => {}
        }
        self.apply_transition();
        self.check_invariants();
    }

    /// Storage made every request up to `token` durable.
    pub fn handle_persisted(&mut self, token: PersistToken, now: Now) {
        self.shared.advance(now);
        self.expire_lease(false);
        if self.shared.persistence.persisted(token) {
            match &mut self.role {
                Role::Leading(leader) => leader.durable(&mut self.shared),
                Role::Learning(learner) => learner.durable(&mut self.shared),
                Role::Looking(_) | Role::Stopped { .. } => {}
            }
        }
        self.apply_transition();
        self.check_invariants();
    }

    /// Storage failed (disk full, I/O error). ZooKeeper stops the server; so does zkd: the
    /// node closes every connection and stops, and the driver restarts it from disk.
    pub fn handle_persist_failed(&mut self, token: PersistToken, reason: &str, now: Now) {
        self.shared.advance(now);
        self.shared.stop(&format!("storage request {} failed: {reason}", token.0));
        self.apply_transition();
        self.check_invariants();
    }

    /// A client connected from `remote_ip`.
    pub fn handle_client_connected(&mut self, connection: ConnectionId, remote_ip: Option<IpAddr>, now: Now) {
        self.shared.advance(now);
        self.expire_lease(false);
        self.shared.clients.connected(connection, remote_ip, now.wall_ms);
        self.check_invariants();
    }

    /// The driver authenticated a connection outside the client protocol (a TLS client
    /// certificate: `x509` ids, and `super` for the configured superuser). The identities
    /// join the connection's as an `auth` packet's would; a connection that would hold more
    /// than [`crate::acl::AUTH_IDS_MAX`] keeps what it has and is closed, as a failed login.
    pub fn handle_client_identified(&mut self, connection: ConnectionId, ids: Vec<Id>, now: Now) {
        self.shared.advance(now);
        self.expire_lease(false);
        self.client_identified(connection, ids);
        self.apply_transition();
        self.check_invariants();
    }

    /// One frame from a client, without its 4-byte length prefix (see
    /// [`crate::proto::split_frame`], with `config().client_frame_bytes_max`).
    pub fn handle_client_frame(&mut self, connection: ConnectionId, frame: &[u8], now: Now) {
        self.shared.advance(now);
        self.expire_lease(false);
        self.client_frame(connection, frame);
        self.apply_transition();
        self.check_invariants();
    }

    /// The client's connection closed (or the driver closed it).
    pub fn handle_client_disconnected(&mut self, connection: ConnectionId, now: Now) {
        self.shared.advance(now);
        self.expire_lease(false);
        self.shared.clients.disconnected(connection, &mut self.shared.database);
        self.check_invariants();
    }

    // ---- roles ----

    /// The lease rule (see [`Node`]): a leader that has not heard from a quorum within its
    /// limit, or a learner whose leader went silent past its limit, goes back to election
    /// before it handles anything else.
    fn expire_lease(&mut self, on_timer: bool) {
        if !on_timer && !self.shared.config.lease_checked_first {
            return;
        }
        let now_ms = self.shared.now.monotonic_ms;
        let expired = match &self.role {
            Role::Leading(leader) => leader.lease_expired(&self.shared.config, now_ms),
            Role::Learning(learner) => learner.leader_silent(now_ms),
            Role::Looking(_) | Role::Stopped { .. } => false,
        };
        if expired {
            self.become_looking();
        }
    }

    /// A message from a known peer: election notifications go to the election (or are
    /// answered with the settled vote); the rest to the role.
    fn peer_message(&mut self, from: ServerId, message: PeerMessage) {
        if let PeerMessage::Notification(notification) = message {
            self.handle_notification(from, notification);
            return;
        }
        match &mut self.role {
            Role::Leading(leader) => leader.message(&mut self.shared, from, message),
            Role::Learning(learner) => learner.message(&mut self.shared, from, message),
            Role::Looking(_) => {
                if matches!(message, PeerMessage::LearnerInfo { .. }) {
                    self.shared.early_hellos.insert(from, message);
                }
            }
            Role::Stopped { .. } => {}
        }
    }

    fn send_election(&mut self, outputs: Vec<election::ElectionOutput>) {
        for output in outputs {
            let election::ElectionOutput::Send { to, notification } = output;
            self.shared.send(to, PeerMessage::Notification(notification));
        }
    }

    fn peer_state(&self) -> PeerState {
        match &self.role {
            Role::Leading(_) => PeerState::Leading,
            Role::Learning(learner) if learner.is_observer() => PeerState::Observing,
            Role::Learning(_) => PeerState::Following,
            Role::Looking(_) | Role::Stopped { .. } => PeerState::Looking,
        }
    }

    fn handle_notification(&mut self, from: ServerId, notification: election::Notification) {
        if notification.state == PeerState::Looking {
            self.shared.early_hellos.remove(&from);
        }
        match &mut self.role {
            Role::Looking(election) => {
                let outputs = election.handle_notification(from, notification, self.shared.now.monotonic_ms);
                self.send_election(outputs);
                self.check_decision();
            }
            Role::Stopped { .. } => {}
            Role::Learning(learner) if learner.leader == from && notification.state == PeerState::Looking => {
                // Our leader is electing again: it stepped down, and its epoch is over.
                // ZooKeeper's followers learn this when the leader closes their sockets;
                // here the link may stay up, so its LOOKING notification is the signal.
                // Following it into the election keeps every settled vote current.
                self.become_looking();
                self.handle_notification(from, notification);
            }
            _ => {
                // A server that has settled answers a looking peer with its vote, so the
                // peer can join the ensemble that already has a leader.
                if notification.state == PeerState::Looking {
                    if let Some((vote, election_epoch)) = self.shared.settled {
                        let reply = election::settled_reply(vote, election_epoch, self.peer_state());
                        self.shared.send(from, PeerMessage::Notification(reply));
                    }
                }
            }
        }
    }

    /// Makes the role change a handler asked for (see [`Shared::step_down`]).
    fn apply_transition(&mut self) {
        match self.shared.transition.take() {
            None => {}
            Some(Transition::Looking) => self.become_looking(),
            Some(Transition::Stopped { reason }) => {
                self.shared.close_all_clients();
                self.role = Role::Stopped { reason };
            }
        }
    }

    /// Starts (or restarts) leader election: every client is disconnected, as ZooKeeper
    /// does when a server leaves broadcast, so clients reconnect to a serving server.
    fn become_looking(&mut self) {
        let shared = &mut self.shared;
        shared.close_all_clients();
        shared.settled = None;
        shared.early_hellos.clear();
        if shared.config.voters.len() == 1 && shared.config.is_voter() {
            // An ensemble of one needs no election: it votes for itself and that is a quorum.
            shared.logical_clock += 1;
            let vote = Vote {
                leader: shared.config.server_id,
                zxid: shared.history.last_zxid(),
                peer_epoch: shared.current_epoch,
            };
            shared.settled = Some((vote, shared.logical_clock));
            self.become_leader();
            return;
        }
        let config = ElectionConfig {
            my_id: shared.config.server_id,
            voters: shared.config.voters.clone(),
            observers: shared.config.observers.clone(),
            finalize_wait_ms: shared.config.election_finalize_wait_ms,
            resend_interval_ms: shared.config.election_finalize_wait_ms.max(1) * 2,
            resend_interval_ms_max: shared.config.election_resend_interval_ms_max,
        };
        let (election, outputs) = Election::start(
            config,
            shared.logical_clock,
            shared.current_epoch,
            shared.history.last_zxid(),
            shared.now.monotonic_ms,
        );
        shared.logical_clock = election.logical_clock();
        self.role = Role::Looking(Box::new(election));
        self.send_election(outputs);
        self.check_decision();
    }

    fn check_decision(&mut self) {
        let Role::Looking(election) = &self.role else { return };
        let shared = &mut self.shared;
        shared.logical_clock = shared.logical_clock.max(election.logical_clock());
        let Some(decision) = election.decision() else { return };
        let (election_epoch, vote, learns) = match decision {
            election::Decision::Lead { election_epoch, vote } => (election_epoch, vote, None),
            election::Decision::Follow { leader, election_epoch, vote } => {
                (election_epoch, vote, Some((leader, LearnerRole::Follower)))
            }
            election::Decision::Observe { leader, election_epoch, vote } => {
                (election_epoch, vote, Some((leader, LearnerRole::Observer)))
            }
        };
        shared.logical_clock = election_epoch;
        shared.settled = Some((vote, election_epoch));
        match learns {
            Some((leader, role)) => self.become_learner(leader, role),
            None => self.become_leader(),
        }
    }

    /// Leads: discovery starts (Zab, phase 1).
    fn become_leader(&mut self) {
        let mut leader = Box::new(Leader::new(&self.shared));
        leader.start(&mut self.shared);
        self.role = Role::Leading(leader);
        self.apply_transition();
    }

    /// Follows or observes `leader`: discovery starts with a hello.
    fn become_learner(&mut self, leader: ServerId, role: LearnerRole) {
        let learner = Learner::start(&mut self.shared, leader, role);
        self.role = Role::Learning(Box::new(learner));
    }

    /// Checks the node's invariants after every input in debug builds (TigerBeetle's
    /// `invariants()`): the shared state's (history, commits, durability, epochs, clients,
    /// database) and the role's.
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        self.shared.check_invariants();
        match &self.role {
            Role::Leading(leader) => leader.check_invariants(&self.shared),
            Role::Learning(learner) => learner.check_invariants(&self.shared),
            Role::Looking(_) | Role::Stopped { .. } => {}
        }
    }
}
