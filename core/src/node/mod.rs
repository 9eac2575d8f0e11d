//! The sans-IO server: one [`Node`] per zkd server, driven by the simulator or by the tokio
//! runtime through the same methods.
//!
//! A node owns no sockets, files, threads or clocks. Its driver feeds it inputs with the
//! current time (`handle_*`) and carries out what it asks for (`poll_*`). See [`Node`] for
//! the call order.
//!
//! The node runs ZooKeeper Atomic Broadcast in one of these roles, each a type with its
//! own handlers: looking (Fast Leader Election, [`crate::zab::election`]), leading
//! (`leader.rs`: discovery, synchronization of each learner, broadcast) and learning
//! (`learner.rs`: a follower or an observer in the same three phases). Client connections
//! (`client.rs`) are served only while the node is in broadcast.

mod client;
mod history;
mod leader;
mod learner;
mod persist;

use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

pub use client::{ConnectionStats, RequestLatency};
pub use persist::{Durable, PersistRequest, PersistToken, StorageOp};

use crate::acl::AuthConfig;
use crate::database::Database;
use crate::proto::Acl;
use crate::request::PrepareConfig;
use crate::session::{SessionConfig, SESSIONS_MAX_DEFAULT};
use crate::storage::{LogEntry, Recovered};
use crate::watch::WATCHES_MAX_DEFAULT;
use crate::zab::election::{self, Election, ElectionConfig, PeerState, Vote};
use crate::zab::message::PeerMessage;
use crate::zab::ServerId;

use client::Clients;
use history::History;
use leader::Leader;
use learner::Learner;
use persist::Persistence;

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
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    database: Database,
    history: History,
    /// Everything up to here is known committed (applied when the role allows).
    committed_zxid: i64,
    /// The epochs as last written (or being written).
    accepted_epoch: u32,
    current_epoch: u32,
    persistence: Persistence,
    role: Role,
    /// The last election's logical clock (ZooKeeper's `logicalclock`).
    logical_clock: u64,
    /// The highest acceptedEpoch a learner has reported to this node as leader. A leader
    /// picks its next epoch above it, so a learner that promised a higher epoch to a
    /// leader-elect that never established can join again.
    accepted_epoch_seen_max: u32,
    /// The vote the node settled on, and the election epoch, for answering lookers. Once
    /// the node is in broadcast its peer epoch is the established epoch, so every member of
    /// an epoch advertises the same (leader, epoch), however it joined.
    settled: Option<(Vote, u64)>,
    /// FOLLOWERINFO and OBSERVERINFO that came while this node was still looking: a learner
    /// may decide a moment before its leader-elect does. Replayed if this node becomes the
    /// leader (ZooKeeper's learners wait in the leader's accept queue meanwhile), dropped
    /// once the sender is seen looking again or its link breaks, and with every new
    /// election. Without it the learner's next hello, a finalize wait later, was what
    /// started the epoch: +50 ms on one failover in two.
    early_hellos: BTreeMap<ServerId, PeerMessage>,
    clients: Clients,
    peer_out: VecDeque<PeerTransmit>,
    client_out: VecDeque<ClientOutput>,
    now: Now,
    applied_since_snapshot: u64,
    proposal_sizes: ProposalSizes,
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
    /// A node starting from what recovery found on disk (or [`Recovered::default`] on a
    /// fresh data directory). It starts looking for a leader; a standalone node leads at
    /// once.
    pub fn new(config: NodeConfig, recovered: Recovered, now: Now) -> Node {
        assert!(
            config.voters.contains(&config.server_id) || config.observers.contains(&config.server_id),
            "server {} is neither a voter nor an observer",
            config.server_id
        );
        assert!(config.voters.is_disjoint(&config.observers), "a server is a voter or an observer, not both");
        let Recovered { database, history, accepted_epoch, current_epoch, .. } = recovered;
        let applied = database.last_processed_zxid();
        let history = History::new(applied, history);
        let durable =
            Durable { zxid: history.last_zxid(), accepted_epoch, current_epoch, token: PersistToken(0), sequence: 0 };
        let clients = Clients::new(&config, now);
        let mut node = Node {
            database,
            history,
            committed_zxid: applied,
            accepted_epoch,
            current_epoch,
            persistence: Persistence::new(durable),
            role: Role::Stopped { reason: String::from("starting") },
            logical_clock: 0,
            accepted_epoch_seen_max: 0,
            settled: None,
            early_hellos: BTreeMap::new(),
            clients,
            peer_out: VecDeque::new(),
            client_out: VecDeque::new(),
            now,
            applied_since_snapshot: 0,
            proposal_sizes: ProposalSizes::default(),
            config,
        };
        node.become_looking();
        node.check_invariants();
        node
    }

    // ---- getters ----

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub fn server_id(&self) -> ServerId {
        self.config.server_id
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
            Role::Leading(_) => Some(self.config.server_id),
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
        self.accepted_epoch
    }

    pub fn current_epoch(&self) -> u32 {
        self.current_epoch
    }

    /// The zxid of the last txn in this node's log.
    pub fn last_logged_zxid(&self) -> i64 {
        self.history.last_zxid()
    }

    /// The last txn known committed.
    pub fn committed_zxid(&self) -> i64 {
        self.committed_zxid
    }

    /// The last txn applied to the database.
    pub fn applied_zxid(&self) -> i64 {
        self.database.last_processed_zxid()
    }

    pub fn durable(&self) -> Durable {
        self.persistence.durable
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The txns held in memory (the log since `history_base_zxid`).
    pub fn history(&self) -> impl Iterator<Item = &LogEntry> {
        self.history.entries()
    }

    pub fn history_base_zxid(&self) -> i64 {
        self.history.base_zxid()
    }

    /// Requests on a connection waiting behind earlier writes; a driver should pause
    /// reading from a connection with many (backpressure).
    pub fn connection_requests_pending(&self, connection: ConnectionId) -> usize {
        self.clients.requests_pending(connection)
    }

    /// Open client connections.
    pub fn connection_count(&self) -> usize {
        self.clients.len()
    }

    /// Client request latency since start (or the last reset).
    pub fn request_latency(&self) -> RequestLatency {
        self.clients.latency
    }

    /// A connection's counters (for `cons`).
    pub fn connection_stats(&self, connection: ConnectionId) -> Option<ConnectionStats> {
        self.clients.stats(connection)
    }

    /// A leader's session expiry buckets (what ZooKeeper's leader prints in `dump`): each
    /// deadline, on the wall clock, with the sessions that expire then. `None` elsewhere.
    pub fn session_expiry(&self) -> Option<Vec<(i64, Vec<i64>)>> {
        let Role::Leading(leader) = &self.role else { return None };
        let to_wall_ms = |deadline_ms: i64| deadline_ms - self.now.monotonic_ms as i64 + self.now.wall_ms;
        Some(
            leader
                .sessions
                .buckets()
                .map(|(deadline, ids)| (to_wall_ms(deadline), ids.iter().copied().collect()))
                .collect(),
        )
    }

    /// The sizes of this server's proposals while it led.
    pub fn proposal_sizes(&self) -> ProposalSizes {
        self.proposal_sizes
    }

    /// Starts the latency and proposal-size figures afresh (`srst`).
    pub fn reset_statistics(&mut self) {
        self.clients.latency = RequestLatency::default();
        self.proposal_sizes = ProposalSizes::default();
    }

    /// The session of each connection that has one (for `cons`, `wchc`, `wchp`, `dump`).
    pub fn connection_sessions(&self) -> std::collections::BTreeMap<ConnectionId, i64> {
        self.clients.sessions()
    }

    // ---- outputs ----

    /// The next storage request. Seals everything queued since the last call into one
    /// request, so one fsync covers many txns.
    #[must_use]
    pub fn poll_persist(&mut self) -> Option<PersistRequest> {
        let tip = self.history.last_zxid();
        self.persistence.seal(tip)
    }

    /// The next message for a peer.
    #[must_use]
    pub fn poll_peer(&mut self) -> Option<PeerTransmit> {
        self.peer_out.pop_front()
    }

    /// The next frame or close for a client connection.
    #[must_use]
    pub fn poll_client(&mut self) -> Option<ClientOutput> {
        self.client_out.pop_front()
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
        self.advance(now);
        match &mut self.role {
            Role::Looking(election) => {
                let outputs = election.handle_timeout(now.monotonic_ms);
                self.send_election(outputs);
                self.check_decision();
            }
            Role::Leading(_) => self.leader_timeout(),
            Role::Learning(_) => self.learner_timeout(),
            Role::Stopped { .. } => {}
        }
        self.check_invariants();
    }

    /// A message from a peer (decoded with [`crate::zab::message::decode`]).
    pub fn handle_peer_message(&mut self, from: ServerId, message: PeerMessage, now: Now) {
        self.advance(now);
        if from == self.config.server_id
            || !(self.config.voters.contains(&from) || self.config.observers.contains(&from))
        {
            return;
        }
        if let PeerMessage::Notification(notification) = message {
            self.handle_notification(from, notification);
        } else {
            match &self.role {
                Role::Leading(_) => self.leader_message(from, message),
                Role::Learning(_) => self.learner_message(from, message),
                Role::Looking(_) => {
                    if matches!(message, PeerMessage::LearnerInfo { .. }) {
                        self.early_hellos.insert(from, message);
                    }
                }
                Role::Stopped { .. } => {}
            }
        }
        self.check_invariants();
    }

    /// The link to a peer came up.
    pub fn handle_peer_link_up(&mut self, peer: ServerId, now: Now) {
        self.advance(now);
        match &mut self.role {
            Role::Looking(election) => {
                let outputs = election.handle_link_up(peer, now.monotonic_ms);
                self.send_election(outputs);
            }
            Role::Learning(_) => self.learner_link_up(peer),
            Role::Leading(_) | Role::Stopped { .. } => {}
        }
        self.check_invariants();
    }

    /// The link to a peer broke: what was in flight on it is lost.
    pub fn handle_peer_link_down(&mut self, peer: ServerId, now: Now) {
        self.advance(now);
        self.early_hellos.remove(&peer);
        match &self.role {
            Role::Leading(_) => self.leader_link_down(peer),
            Role::Learning(learner) if learner.leader == peer => self.become_looking(),
            _ => {}
        }
        self.check_invariants();
    }

    /// Storage made every request up to `token` durable.
    pub fn handle_persisted(&mut self, token: PersistToken, now: Now) {
        self.advance(now);
        if self.persistence.persisted(token) {
            match &self.role {
                Role::Leading(_) => self.leader_durable(),
                Role::Learning(_) => self.learner_durable(),
                Role::Looking(_) | Role::Stopped { .. } => {}
            }
        }
        self.check_invariants();
    }

    /// Storage failed (disk full, I/O error). ZooKeeper stops the server; so does zkd: the
    /// node closes every connection and stops, and the driver restarts it from disk.
    pub fn handle_persist_failed(&mut self, token: PersistToken, reason: &str, now: Now) {
        self.advance(now);
        self.close_all_clients();
        self.role = Role::Stopped { reason: format!("storage request {} failed: {reason}", token.0) };
    }

    /// A client connected from `remote_ip`.
    pub fn handle_client_connected(&mut self, connection: ConnectionId, remote_ip: Option<IpAddr>, now: Now) {
        self.advance(now);
        self.clients.connected(connection, remote_ip, now.wall_ms);
    }

    /// One frame from a client, without its 4-byte length prefix (see
    /// [`crate::proto::split_frame`], with `config().client_frame_bytes_max`).
    pub fn handle_client_frame(&mut self, connection: ConnectionId, frame: &[u8], now: Now) {
        self.advance(now);
        self.client_frame(connection, frame);
        self.check_invariants();
    }

    /// The client's connection closed (or the driver closed it).
    pub fn handle_client_disconnected(&mut self, connection: ConnectionId, now: Now) {
        self.advance(now);
        self.clients.disconnected(connection, &mut self.database);
    }

    // ---- shared machinery ----

    fn advance(&mut self, now: Now) {
        // Monotonic time never goes back; a driver bug here would break every timer.
        debug_assert!(now.monotonic_ms >= self.now.monotonic_ms, "monotonic time went back");
        self.now = Now { monotonic_ms: now.monotonic_ms.max(self.now.monotonic_ms), wall_ms: now.wall_ms };
    }

    fn send(&mut self, to: ServerId, message: PeerMessage) {
        debug_assert_ne!(to, self.config.server_id);
        self.peer_out.push_back(PeerTransmit { to, message });
    }

    fn send_election(&mut self, outputs: Vec<election::ElectionOutput>) {
        for output in outputs {
            let election::ElectionOutput::Send { to, notification } = output;
            self.send(to, PeerMessage::Notification(notification));
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
            self.early_hellos.remove(&from);
        }
        match &mut self.role {
            Role::Looking(election) => {
                let outputs = election.handle_notification(from, notification, self.now.monotonic_ms);
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
                    if let Some((vote, election_epoch)) = self.settled {
                        let reply = election::settled_reply(vote, election_epoch, self.peer_state());
                        self.send(from, PeerMessage::Notification(reply));
                    }
                }
            }
        }
    }

    /// Starts (or restarts) leader election: every client is disconnected, as ZooKeeper
    /// does when a server leaves broadcast, so clients reconnect to a serving server.
    fn become_looking(&mut self) {
        self.close_all_clients();
        self.settled = None;
        self.early_hellos.clear();
        if self.config.voters.len() == 1 && self.config.is_voter() {
            // An ensemble of one needs no election: it votes for itself and that is a quorum.
            self.logical_clock += 1;
            let vote =
                Vote { leader: self.config.server_id, zxid: self.history.last_zxid(), peer_epoch: self.current_epoch };
            self.settled = Some((vote, self.logical_clock));
            self.become_leader();
            return;
        }
        let config = ElectionConfig {
            my_id: self.config.server_id,
            voters: self.config.voters.clone(),
            observers: self.config.observers.clone(),
            finalize_wait_ms: self.config.election_finalize_wait_ms,
            resend_interval_ms: self.config.election_finalize_wait_ms.max(1) * 2,
            resend_interval_ms_max: self.config.election_resend_interval_ms_max,
        };
        let (election, outputs) = Election::start(
            config,
            self.logical_clock,
            self.current_epoch,
            self.history.last_zxid(),
            self.now.monotonic_ms,
        );
        self.logical_clock = election.logical_clock();
        self.role = Role::Looking(Box::new(election));
        self.send_election(outputs);
        self.check_decision();
    }

    fn check_decision(&mut self) {
        let Role::Looking(election) = &self.role else { return };
        self.logical_clock = self.logical_clock.max(election.logical_clock());
        let Some(decision) = election.decision() else { return };
        match decision {
            election::Decision::Lead { election_epoch, vote } => {
                self.logical_clock = election_epoch;
                self.settled = Some((vote, election_epoch));
                self.become_leader();
            }
            election::Decision::Follow { leader, election_epoch, vote } => {
                self.logical_clock = election_epoch;
                self.settled = Some((vote, election_epoch));
                self.become_learner(leader, false);
            }
            election::Decision::Observe { leader, election_epoch, vote } => {
                self.logical_clock = election_epoch;
                self.settled = Some((vote, election_epoch));
                self.become_learner(leader, true);
            }
        }
    }

    /// The node reached broadcast in `epoch`: advertise the epoch in its settled vote.
    fn settle_epoch(&mut self, epoch: u32) {
        if let Some((vote, election_epoch)) = self.settled {
            self.settled = Some((Vote { peer_epoch: epoch, ..vote }, election_epoch));
        }
    }

    fn close_all_clients(&mut self) {
        for connection in self.clients.close_all(&mut self.database) {
            self.client_out.push_back(ClientOutput::Close { connection });
        }
    }

    /// Appends a txn to the history and queues it for the log; returns the size of its log
    /// record.
    fn log_entry(&mut self, entry: impl Into<Arc<LogEntry>>) -> usize {
        let entry = entry.into();
        let size = self.persistence.append(&entry);
        self.history.append(entry);
        size
    }

    /// Applies committed txns up to `zxid` (never past the history), replying to local
    /// clients and firing watches.
    fn apply_committed(&mut self, zxid: i64) {
        let zxid = zxid.min(self.history.last_zxid());
        self.committed_zxid = self.committed_zxid.max(zxid);
        let applied = self.database.last_processed_zxid();
        if zxid <= applied {
            return;
        }
        for entry in self.history.shared_range(applied, zxid) {
            self.apply_entry(&entry);
        }
        // Only `history_entries_max` txns stay in memory for DIFF syncs (learners further
        // behind get a SNAP), whatever the snapshot interval.
        let (entries_max, bytes_max) = (self.config.history_entries_max, self.config.history_bytes_max);
        self.history.trim(self.database.last_processed_zxid(), entries_max, bytes_max);
        self.maybe_snapshot();
    }

    fn apply_entry(&mut self, entry: &LogEntry) {
        let clients = &self.clients;
        let can_read = |watcher: u64, acl: &[Acl]| clients.can_read(watcher, acl);
        let outcome = self.database.apply(&entry.header, &entry.txn, &can_read);
        self.applied_since_snapshot += 1;
        if let Role::Leading(leader) = &mut self.role {
            leader.applied(entry);
        }
        self.client_applied(entry, outcome);
    }

    fn maybe_snapshot(&mut self) {
        if self.applied_since_snapshot < self.config.snapshot_txn_count {
            return;
        }
        self.applied_since_snapshot = 0;
        self.persistence.write_snapshot(crate::storage::SnapshotImage::of(&self.database));
    }

    /// Checks the node's invariants after every input in debug builds (TigerBeetle's
    /// `invariants()`): the history chains, nothing is applied that is not committed and
    /// logged, durability never runs ahead of the log, the database is consistent.
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let applied = self.database.last_processed_zxid();
        assert!(applied <= self.committed_zxid, "applied {applied:#x} beyond committed {:#x}", self.committed_zxid);
        assert!(
            applied == self.history.base_zxid() || applied >= self.history.base_zxid(),
            "the history starts at or before what is applied"
        );
        assert!(
            self.persistence.durable.zxid <= self.history.last_zxid(),
            "durable {:#x} beyond the log {:#x}",
            self.persistence.durable.zxid,
            self.history.last_zxid()
        );
        assert!(
            self.persistence.durable.current_epoch <= self.persistence.durable.accepted_epoch.max(self.current_epoch)
        );
        assert!(self.current_epoch <= self.accepted_epoch, "currentEpoch never passes acceptedEpoch");
        if let Role::Leading(leader) = &self.role {
            leader.check_invariants(self);
        }
        self.clients.check_invariants();
    }
}
