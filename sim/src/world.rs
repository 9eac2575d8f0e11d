//! The world: servers, their disks, the network between them, clients, and one event queue
//! in virtual time.
//!
//! Every event sits in one queue ordered by (time in milliseconds, sequence number), so
//! two events at the same instant run in the order they were scheduled. Every random
//! choice (latencies, fsync times, faults, workloads) is drawn from the run's one
//! [`SimRng`] as events run, so a seed replays the same run event for event.
//!
//! Servers are `zk_core::node::Node`s driven exactly as the `Node` doc prescribes: after
//! every input the world drains persist requests (to the simulated disk, completing after
//! a sampled fsync latency), peer messages (encoded, onto TCP-like links) and client
//! outputs (frames onto client connections), then schedules the node's next deadline.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use zk_core::node::{ClientOutput, ConnectionId, Node, NodeConfig, Now, PersistToken, RoleName};
use zk_core::proto;
use zk_core::storage::Recovered;
use zk_core::txn::Txn;
use zk_core::zab::message::{self, PeerMessage};
use zk_core::zab::ServerId;

use crate::check::zab::ZabChecker;
use crate::check::Violation;
use crate::client::{Client, ClientAction, ClientSettings};
pub use crate::clock::Clock;
use crate::config::{PlantedBug, SimConfig};
use crate::disk::Disk;
use crate::faults::{FaultEvent, Faults};
use crate::history::{ClientId, History};
use crate::rng::SimRng;
use crate::trace;

/// The wall clock at virtual time 0 (what leaders stamp into txns).
pub const WALL_CLOCK_START_MS: i64 = 1_700_000_000_000;

/// Events the whole run may hold before it is declared a livelock.
pub const EVENTS_MAX: u64 = 20_000_000;

/// An input for one server. While the server's process is paused these wait in its inbox.
#[derive(Clone, Debug)]
pub enum ServerInput {
    Peer {
        from: ServerId,
        generation: u64,
        bytes: Vec<u8>,
    },
    LinkUp {
        peer: ServerId,
    },
    LinkDown {
        peer: ServerId,
    },
    Persisted {
        token: PersistToken,
    },
    /// The disk refused a persist request (it is full).
    PersistFailed {
        token: PersistToken,
    },
    /// A client opened a connection and sent its connect request.
    ClientOpen {
        connection: ConnectionId,
        frame: Vec<u8>,
    },
    ClientFrame {
        connection: ConnectionId,
        frame: Vec<u8>,
    },
    ClientClose {
        connection: ConnectionId,
    },
    Timer,
}

/// An input for one client.
#[derive(Clone, Debug)]
pub enum ClientInput {
    Frame { connection: ConnectionId, frame: Vec<u8> },
    Closed { connection: ConnectionId },
    Timer,
}

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

#[derive(Clone, Debug)]
pub enum Event {
    Server {
        server: ServerId,
        incarnation: u64,
        input: ServerInput,
    },
    /// An fsync completed: the writes are durable now, whether or not the process hears
    /// of it yet.
    FsyncDone {
        server: ServerId,
        incarnation: u64,
        token: PersistToken,
    },
    Client {
        client: ClientId,
        input: ClientInput,
    },
    Fault(FaultEvent),
    /// The reading end of a link that has been silently dropping frames gives up on it (its
    /// socket read timeout), unless the link broke meanwhile (`generation` changed).
    LinkReadTimeout {
        a: ServerId,
        b: ServerId,
        generation: u64,
    },
    /// Checks the liveness phase's progress.
    LivenessCheck,
    /// The end of the quiet period: final checks.
    QuiesceCheck,
}

struct Scheduled {
    time_ms: u64,
    sequence: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time_ms, self.sequence) == (other.time_ms, other.sequence)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Reversed, so the standard max-heap pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time_ms, other.sequence).cmp(&(self.time_ms, self.sequence))
    }
}

/// One server: its process (when running), its disk, and what the faults did to it.
pub struct Server {
    pub id: ServerId,
    pub config: NodeConfig,
    pub node: Option<Node>,
    pub disk: Disk,
    /// Bumped by every crash: events for an earlier process are dropped.
    pub incarnation: u64,
    /// A paused process receives nothing and fires no timers until it resumes.
    pub paused: bool,
    inbox: VecDeque<ServerInput>,
    /// The time of the timer event scheduled for the node's deadline.
    timer_at: Option<u64>,
    /// fsync latency bounds; raised by the slow-fsync fault.
    pub fsync_ms: (u64, u64),
    /// Extra delay on every message to and from this server (latency-spike fault).
    pub spike_ms: (u64, u64),
    /// The server's clocks (skewed and jumped by the clock-skew fault).
    pub clock: Clock,
    /// Persist requests fail while the disk is full.
    pub disk_full: bool,
}

/// A TCP-like connection between two servers. It is FIFO while up; when it breaks, what
/// was in flight is lost (the generation changes) and both ends are told.
#[derive(Clone, Debug, Default)]
struct PeerLink {
    up: bool,
    generation: u64,
    /// Partitions currently cutting this link.
    cuts: u32,
    /// The last delivery scheduled in each direction: [low → high, high → low].
    last_delivery_ms: [u64; 2],
    /// Asymmetric partitions currently dropping the frames of each direction.
    one_way_cuts: [u32; 2],
    /// Whether a direction dropped a frame on this connection: a TCP connection cannot
    /// skip a frame, so nothing more gets through that way until the link breaks.
    dead: [bool; 2],
    /// A read timeout broke the link while frames one way were being dropped: it cannot be
    /// re-established (a handshake needs both ways) until no asymmetric partition cuts it.
    broken_by_timeout: bool,
}

/// A client's connection to a server.
#[derive(Clone, Debug)]
struct Connection {
    client: ClientId,
    server: ServerId,
    /// The server process the connection was opened to.
    incarnation: u64,
    c2s_last_ms: u64,
    s2c_last_ms: u64,
    /// Either end closed it; nothing more travels.
    closed: bool,
}

/// Counters for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub peer_messages: u64,
    pub fsyncs: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub pauses: u64,
    pub partitions: u64,
    pub elections_won: u64,
    /// Frames silently dropped by asymmetric partitions.
    pub frames_dropped: u64,
    /// Restarts refused because recovery found corruption (a corrupt read, caught).
    pub corrupt_reads_caught: u64,
    /// Persist requests refused by a full disk.
    pub persists_failed: u64,
}

/// The simulated cluster and its clients.
pub struct World {
    pub config: SimConfig,
    pub now_ms: u64,
    pub rng: SimRng,
    queue: BinaryHeap<Scheduled>,
    next_sequence: u64,
    pub servers: BTreeMap<ServerId, Server>,
    links: BTreeMap<(ServerId, ServerId), PeerLink>,
    pub clients: Vec<Client>,
    client_timer_at: Vec<Option<u64>>,
    connections: BTreeMap<ConnectionId, Connection>,
    pub history: History,
    pub phase: Phase,
    phase_started_ms: u64,
    pub faults: Faults,
    /// The scripted timeline's state.
    pub timeline: crate::timeline::Timeline,
    pub zab: ZabChecker,
    pub violations: Vec<Violation>,
    pub stats: Stats,
    pub linearizability: crate::check::linearizability::Summary,
    pub trace: Option<Vec<String>>,
    traced_operations: usize,
    traced_observations: usize,
    /// The largest session timeout a server grants.
    pub session_timeout_ms_max: u64,
    /// Per server, the applied zxid at which its ephemerals were last checked against its
    /// sessions.
    ephemerals_checked_zxid: BTreeMap<ServerId, i64>,
}

fn pair(a: ServerId, b: ServerId) -> (ServerId, ServerId) {
    (a.min(b), a.max(b))
}

/// Server settings for simulated time: tickTime 100 ms (sessions of 200..=2000 ms),
/// initLimit 10, syncLimit 5, finalizeWait 20 ms; snapshot and history sizes drawn from
/// the seed so that SNAP syncs and recovery from snapshots happen too.
pub fn node_config(id: ServerId, voters: &[ServerId], observers: &[ServerId], rng: &mut SimRng) -> NodeConfig {
    let mut config = NodeConfig::ensemble(id, voters.iter().copied().collect(), observers.iter().copied().collect());
    config.session = zk_core::session::SessionConfig::from_tick_time(100);
    config.election_finalize_wait_ms = 20;
    config.election_resend_interval_ms_max = 400;
    config.container_check_interval_ms = 1000;
    config.snapshot_txn_count = *rng.pick(&[25, 100, 100_000]);
    config.history_entries_max = *rng.pick(&[20, 200, 100_000]);
    config
}

impl World {
    pub fn new(config: SimConfig) -> World {
        assert!(config.voters >= 1, "an ensemble needs a voter");
        let mut rng = SimRng::new(config.seed);
        let voter_ids: Vec<ServerId> = (1..=config.voters).collect();
        let observer_ids: Vec<ServerId> = (config.voters + 1..=config.voters + config.observers).collect();
        let mut servers = BTreeMap::new();
        for &id in voter_ids.iter().chain(observer_ids.iter()) {
            let node_config = node_config(id, &voter_ids, &observer_ids, &mut rng);
            servers.insert(
                id,
                Server {
                    id,
                    config: node_config,
                    node: None,
                    disk: Disk::new(config.planted == Some(PlantedBug::TruncateIgnored)),
                    incarnation: 0,
                    paused: false,
                    inbox: VecDeque::new(),
                    timer_at: None,
                    fsync_ms: (1, 4),
                    spike_ms: (0, 0),
                    clock: Clock::default(),
                    disk_full: false,
                },
            );
        }
        let ids: Vec<ServerId> = servers.keys().copied().collect();
        let mut links = BTreeMap::new();
        for &a in &ids {
            for &b in &ids {
                if a < b {
                    links.insert((a, b), PeerLink::default());
                }
            }
        }
        let session = servers[&1].config.session;
        let settings = ClientSettings {
            servers: ids.clone(),
            session_timeout_ms: rng.range(session.min_session_timeout_ms as u64, session.max_session_timeout_ms as u64)
                as i32,
            pipeline_max: rng.range(1, 3) as usize,
            keys: rng.range(1, 4) as usize,
            think_ms_max: rng.range(5, 60),
            planted: config.planted,
            recipes: config.recipes,
        };
        let clients: Vec<Client> =
            (0..config.clients).map(|id| Client::new(id, settings.clone(), 0, &mut rng)).collect();
        let trace = config.trace.then(Vec::new);
        let faults = Faults::new(config.faults);
        World {
            now_ms: 0,
            rng,
            queue: BinaryHeap::new(),
            next_sequence: 0,
            servers,
            links,
            client_timer_at: vec![None; clients.len()],
            clients,
            connections: BTreeMap::new(),
            history: History::default(),
            phase: Phase::Safety,
            phase_started_ms: 0,
            faults,
            timeline: Default::default(),
            zab: ZabChecker::default(),
            violations: Vec::new(),
            stats: Stats::default(),
            linearizability: Default::default(),
            trace,
            traced_operations: 0,
            traced_observations: 0,
            session_timeout_ms_max: session.max_session_timeout_ms as u64,
            ephemerals_checked_zxid: BTreeMap::new(),
            config,
        }
    }

    /// The time as server `id` reads it.
    pub fn server_now(&self, id: ServerId) -> Now {
        let clock = &self.servers[&id].clock;
        Now {
            monotonic_ms: clock.monotonic_ms(self.now_ms),
            wall_ms: WALL_CLOCK_START_MS + self.now_ms as i64 + clock.wall_offset_ms,
        }
    }

    pub fn server_ids(&self) -> Vec<ServerId> {
        self.servers.keys().copied().collect()
    }

    pub fn is_up(&self, id: ServerId) -> bool {
        self.servers[&id].node.is_some()
    }

    /// The servers leading an established epoch.
    pub fn leaders(&self) -> Vec<ServerId> {
        self.servers
            .values()
            .filter(|server| server.node.as_ref().is_some_and(|node| node.role() == RoleName::Leading))
            .map(|server| server.id)
            .collect()
    }

    pub(crate) fn record(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            let line = line();
            trace.push(format!("{:>9} {line}", trace::time(self.now_ms)));
        }
    }

    pub(crate) fn violation(&mut self, checker: &'static str, message: String) {
        let time_ms = self.now_ms;
        self.record(|| format!("VIOLATION [{checker}] {message}"));
        self.violations.push(Violation { time_ms, checker, message });
    }

    pub(crate) fn schedule(&mut self, time_ms: u64, event: Event) {
        debug_assert!(time_ms >= self.now_ms, "events are never scheduled in the past");
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.queue.push(Scheduled { time_ms, sequence, event });
    }

    // ---- the run ----

    /// Starts every server and client, then runs the phases to the end.
    pub fn run(&mut self) {
        for id in self.server_ids() {
            self.start_server(id);
        }
        for client in 0..self.clients.len() {
            self.schedule_client_timer(client);
        }
        self.faults_begin();
        while let Some(scheduled) = self.queue.pop() {
            debug_assert!(scheduled.time_ms >= self.now_ms, "time never goes back");
            self.now_ms = scheduled.time_ms;
            self.stats.events += 1;
            if self.stats.events > EVENTS_MAX {
                self.violation("livelock", format!("more than {EVENTS_MAX} events"));
            }
            if self.phase == Phase::Safety && self.now_ms >= self.config.safety_ms {
                self.begin_liveness();
            }
            self.step(scheduled.event);
            if !self.violations.is_empty() || self.phase == Phase::Done {
                break;
            }
        }
    }

    fn step(&mut self, event: Event) {
        match event {
            Event::Server { server, incarnation, input } => {
                if self.servers[&server].incarnation == incarnation {
                    self.server_input(server, input);
                } else if let ServerInput::ClientOpen { connection, .. } = input {
                    self.refuse_connection(connection);
                }
            }
            Event::FsyncDone { server, incarnation, token } => {
                if self.servers[&server].incarnation != incarnation {
                    return;
                }
                self.stats.fsyncs += 1;
                let slot = self.servers.get_mut(&server).expect("known server");
                if let Err(error) = slot.disk.complete(token) {
                    self.violation("storage", format!("server {server}: a durable write failed: {error}"));
                    return;
                }
                if self.config.planted != Some(PlantedBug::FsyncLies) {
                    self.server_input(server, ServerInput::Persisted { token });
                }
            }
            Event::Client { client, input } => self.client_input(client, input),
            Event::Fault(fault) => self.fault_event(fault),
            Event::LinkReadTimeout { a, b, generation } => {
                let link = self.links.get_mut(&(a, b)).expect("known link");
                if link.up && link.generation == generation {
                    link.broken_by_timeout = true;
                    let healed = link.one_way_cuts == [0; 2];
                    self.record(|| format!("link s{a}-s{b} read timeout: the silent direction breaks it"));
                    self.refresh_links();
                    if healed {
                        // The partition ended before the timeout: the link reconnects at once.
                        self.links.get_mut(&(a, b)).expect("known link").broken_by_timeout = false;
                        self.refresh_links();
                    }
                }
            }
            Event::LivenessCheck => self.liveness_check(),
            Event::QuiesceCheck => self.quiesce_check(),
        }
    }

    // ---- servers ----

    /// Starts (or restarts) a server's process from what its disk holds.
    pub fn start_server(&mut self, id: ServerId) {
        let now = self.server_now(id);
        let slot = self.servers.get_mut(&id).expect("known server");
        assert!(slot.node.is_none(), "server {id} is already running");
        if std::mem::take(&mut slot.disk.corrupt_next_read) && !self.start_reads_corrupt(id) {
            return;
        }
        let slot = self.servers.get_mut(&id).expect("known server");
        let recovered: Recovered = match slot.disk.files.recover() {
            Ok(recovered) => recovered,
            Err(error) => {
                self.violation("recovery", format!("server {id} cannot recover its disk: {error}"));
                return;
            }
        };
        let history_len = recovered.history.len();
        let snapshot_zxid = recovered.database.last_processed_zxid();
        slot.node = Some(Node::new(slot.config.clone(), recovered, now));
        slot.timer_at = None;
        slot.paused = false;
        slot.inbox.clear();
        self.record(|| format!("s{id} starts: snapshot {snapshot_zxid:#x}, {history_len} log records"));
        self.zab.restarted(id);
        self.ephemerals_checked_zxid.remove(&id);
        self.refresh_links();
        self.drain(id);
        self.check_server(id);
    }

    /// A restart whose read of one file returns a flipped bit: recovery must refuse it by
    /// CRC, and the server stays down for this attempt. Returns whether the start may go on
    /// (with clean bytes): only when the flip changed nothing recovery reads.
    fn start_reads_corrupt(&mut self, id: ServerId) -> bool {
        let files = self.servers[&id].disk.files.clone();
        let Some((corrupt, what)) = crate::disk::flip_a_bit(&files, &mut self.rng) else {
            return true;
        };
        let mut corrupt = corrupt;
        match corrupt.recover() {
            Err(error) => {
                self.stats.corrupt_reads_caught += 1;
                self.record(|| format!("s{id} refuses to start: a corrupt read of {what} caught: {error}"));
                // A supervisor tries again; the read is clean then.
                let delay_ms = self.rng.range(50, 500);
                self.schedule_restart(id, delay_ms);
                false
            }
            Ok(loaded) => {
                let clean = files.clone().recover();
                let same = clean.as_ref().is_ok_and(|clean| crate::disk::same_recovery(clean, &loaded));
                if !same {
                    self.violation(
                        "recovery",
                        format!("server {id} loaded corrupt data: a flipped bit in {what} passed recovery unnoticed"),
                    );
                }
                same
            }
        }
    }

    /// Kills a server's process: pending writes are lost (or a torn prefix of them kept),
    /// its links break and its client connections are reset.
    pub fn crash_server(&mut self, id: ServerId, tear: bool) {
        let slot = self.servers.get_mut(&id).expect("known server");
        if slot.node.is_none() {
            return;
        }
        slot.node = None;
        slot.incarnation += 1;
        slot.paused = false;
        slot.inbox.clear();
        slot.timer_at = None;
        self.stats.crashes += 1;
        let loss = match slot.disk.crash(&mut self.rng, tear) {
            Ok(loss) => loss,
            Err(error) => {
                self.violation("storage", format!("server {id}: a write kept by the crash failed: {error}"));
                return;
            }
        };
        self.record(|| format!("s{id} CRASH: {loss:?}"));
        let connections: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, connection)| connection.server == id && !connection.closed)
            .map(|(&id, _)| id)
            .collect();
        for connection in connections {
            self.server_closes_connection(connection);
        }
        self.refresh_links();
    }

    /// Freezes a server's process until [`World::resume_server`].
    pub fn pause_server(&mut self, id: ServerId) -> bool {
        let slot = self.servers.get_mut(&id).expect("known server");
        if slot.node.is_none() || slot.paused {
            return false;
        }
        slot.paused = true;
        slot.timer_at = None;
        self.stats.pauses += 1;
        self.record(|| format!("s{id} PAUSE"));
        true
    }

    /// The process runs again: what arrived meanwhile is handled in order, then its
    /// timers, which see the clock jumped forward.
    pub fn resume_server(&mut self, id: ServerId) {
        let slot = self.servers.get_mut(&id).expect("known server");
        if !slot.paused {
            return;
        }
        slot.paused = false;
        let inbox: Vec<ServerInput> = slot.inbox.drain(..).collect();
        self.record(|| format!("s{id} RESUME with {} inputs waiting", inbox.len()));
        for input in inbox {
            if !self.servers[&id].paused && self.is_up(id) {
                self.server_input(id, input);
            }
        }
        self.server_input(id, ServerInput::Timer);
    }

    fn server_input(&mut self, id: ServerId, input: ServerInput) {
        let now = self.server_now(id);
        let slot = self.servers.get_mut(&id).expect("known server");
        if slot.node.is_none() {
            if let ServerInput::ClientOpen { connection, .. } = input {
                self.refuse_connection(connection);
            }
            return;
        }
        if slot.paused {
            if !matches!(input, ServerInput::Timer) {
                slot.inbox.push_back(input);
            }
            return;
        }
        match input {
            ServerInput::Peer { from, generation, bytes } => {
                let link = &self.links[&pair(from, id)];
                if !link.up || link.generation != generation {
                    return;
                }
                let decoded = match message::decode(&bytes) {
                    Ok(decoded) => decoded,
                    Err(error) => {
                        self.violation("protocol", format!("s{id} cannot decode a message from s{from}: {error}"));
                        return;
                    }
                };
                self.record(|| format!("s{id} <- s{from} {}", trace::peer_message(&decoded)));
                let node = self.servers.get_mut(&id).and_then(|slot| slot.node.as_mut()).expect("checked above");
                node.handle_peer_message(from, decoded, now);
            }
            ServerInput::LinkUp { peer } => {
                let node = slot.node.as_mut().expect("checked above");
                node.handle_peer_link_up(peer, now);
            }
            ServerInput::LinkDown { peer } => {
                let node = slot.node.as_mut().expect("checked above");
                node.handle_peer_link_down(peer, now);
            }
            ServerInput::Persisted { token } => {
                let node = slot.node.as_mut().expect("checked above");
                node.handle_persisted(token, now);
            }
            ServerInput::PersistFailed { token } => {
                let node = slot.node.as_mut().expect("checked above");
                node.handle_persist_failed(token, "no space left on device", now);
                self.drain(id);
                // The node stopped; the process exits, as ZooKeeper's does, and an operator
                // restarts it once there is room on the disk.
                self.record(|| format!("s{id} stops: its disk is full"));
                let tear = self.rng.percent(50);
                self.crash_server(id, tear);
                if !self.servers[&id].disk_full {
                    // The disk had room again by the time the failure was handled: the
                    // operator restarts the server at once.
                    let delay_ms = self.rng.range(50, 500);
                    self.schedule_restart(id, delay_ms);
                }
                return;
            }
            ServerInput::ClientOpen { connection, frame } => {
                let node = slot.node.as_mut().expect("checked above");
                node.handle_client_connected(connection, None, now);
                match proto::split_frame(&frame, usize::MAX >> 1) {
                    Ok(Some((body, _))) => node.handle_client_frame(connection, body, now),
                    _ => unreachable!("clients send whole frames"),
                }
            }
            ServerInput::ClientFrame { connection, frame } => {
                let node = slot.node.as_mut().expect("checked above");
                match proto::split_frame(&frame, node.config().client_frame_bytes_max) {
                    Ok(Some((body, _))) => node.handle_client_frame(connection, body, now),
                    _ => unreachable!("clients send whole frames under the limit"),
                }
            }
            ServerInput::ClientClose { connection } => {
                let node = slot.node.as_mut().expect("checked above");
                node.handle_client_disconnected(connection, now);
            }
            ServerInput::Timer => {
                if slot.timer_at == Some(self.now_ms) {
                    slot.timer_at = None;
                }
                let node = slot.node.as_mut().expect("checked above");
                if node.poll_timeout().is_some_and(|deadline| deadline <= now.monotonic_ms) {
                    node.handle_timeout(now);
                }
            }
        }
        self.drain(id);
        self.check_server(id);
    }

    /// Carries out everything the node asked for, in the order the `Node` doc gives.
    fn drain(&mut self, id: ServerId) {
        let now_ms = self.now_ms;
        loop {
            let slot = self.servers.get_mut(&id).expect("known server");
            let Some(node) = slot.node.as_mut() else { return };
            let Some(request) = node.poll_persist() else { break };
            if slot.disk_full {
                self.stats.persists_failed += 1;
                let (token, incarnation) = (request.token, slot.incarnation);
                let input = ServerInput::PersistFailed { token };
                self.schedule(now_ms + 1, Event::Server { server: id, incarnation, input });
                continue;
            }
            let latency_ms = self.rng.range(slot.fsync_ms.0, slot.fsync_ms.1);
            let token = request.token;
            let done_ms = slot.disk.submit(request, now_ms, latency_ms);
            let incarnation = slot.incarnation;
            self.schedule(done_ms, Event::FsyncDone { server: id, incarnation, token });
            if self.config.planted == Some(PlantedBug::FsyncLies) {
                // The planted bug: durability reported at once, long before the fsync.
                let input = ServerInput::Persisted { token };
                self.schedule(now_ms, Event::Server { server: id, incarnation, input });
            }
        }
        loop {
            let Some(node) = self.servers.get_mut(&id).and_then(|slot| slot.node.as_mut()) else { return };
            let Some(transmit) = node.poll_peer() else { break };
            self.send_peer(id, transmit.to, &transmit.message);
        }
        loop {
            let Some(node) = self.servers.get_mut(&id).and_then(|slot| slot.node.as_mut()) else { return };
            let Some(output) = node.poll_client() else { break };
            match output {
                ClientOutput::Frame { connection, bytes } => self.server_sends_frame(connection, bytes),
                ClientOutput::Close { connection } => self.server_closes_connection(connection),
            }
        }
        self.schedule_server_timer(id);
    }

    fn schedule_server_timer(&mut self, id: ServerId) {
        let now_ms = self.now_ms;
        let slot = self.servers.get_mut(&id).expect("known server");
        let Some(deadline) = slot.node.as_ref().and_then(Node::poll_timeout) else { return };
        if slot.paused {
            return;
        }
        let at = slot.clock.virtual_ms(deadline).max(now_ms);
        if slot.timer_at.is_none_or(|scheduled| at < scheduled) {
            slot.timer_at = Some(at);
            let incarnation = slot.incarnation;
            self.schedule(at, Event::Server { server: id, incarnation, input: ServerInput::Timer });
        }
    }

    /// The checks that run after every event that touched a server.
    fn check_server(&mut self, id: ServerId) {
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
            node.history_base_zxid(),
            node.history(),
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

    // ---- the network between servers ----

    fn link_should_be_up(&self, a: ServerId, b: ServerId) -> bool {
        let link = &self.links[&pair(a, b)];
        self.is_up(a) && self.is_up(b) && link.cuts == 0 && !link.broken_by_timeout
    }

    /// Brings every link to the state that crashes and partitions call for; both ends of a
    /// link that changed are told.
    pub fn refresh_links(&mut self) {
        let pairs: Vec<(ServerId, ServerId)> = self.links.keys().copied().collect();
        for (a, b) in pairs {
            let should = self.link_should_be_up(a, b);
            let link = self.links.get_mut(&(a, b)).expect("known link");
            if link.up == should {
                continue;
            }
            link.up = should;
            link.generation += 1;
            link.dead = [false; 2];
            self.record(|| format!("link s{a}-s{b} {}", if should { "up" } else { "DOWN" }));
            for (end, peer) in [(a, b), (b, a)] {
                if self.is_up(end) {
                    let input = if should { ServerInput::LinkUp { peer } } else { ServerInput::LinkDown { peer } };
                    self.server_input(end, input);
                }
            }
        }
    }

    /// Cuts (or, with `cut` false, restores) the links between every pair.
    pub fn cut_links(&mut self, pairs: &[(ServerId, ServerId)], cut: bool) {
        for &(a, b) in pairs {
            let link = self.links.get_mut(&pair(a, b)).expect("known link");
            if cut {
                link.cuts += 1;
            } else {
                assert!(link.cuts > 0, "a link is restored only after it was cut");
                link.cuts -= 1;
            }
        }
        self.refresh_links();
    }

    /// Starts (or, with `cut` false, stops) dropping the frames from the first server of
    /// each pair to the second, while the other way still delivers.
    pub fn cut_one_way(&mut self, directed: &[(ServerId, ServerId)], cut: bool) {
        for &(from, to) in directed {
            let link = self.links.get_mut(&pair(from, to)).expect("known link");
            let direction = usize::from(from > to);
            if cut {
                link.one_way_cuts[direction] += 1;
            } else {
                assert!(link.one_way_cuts[direction] > 0, "a direction is restored only after it was cut");
                link.one_way_cuts[direction] -= 1;
                if link.one_way_cuts == [0; 2] {
                    link.broken_by_timeout = false;
                }
            }
        }
        self.refresh_links();
    }

    /// Restores every link.
    pub fn heal_links(&mut self) {
        for link in self.links.values_mut() {
            link.cuts = 0;
            link.one_way_cuts = [0; 2];
            link.broken_by_timeout = false;
        }
        self.refresh_links();
    }

    fn latency_ms(&mut self, a: ServerId, b: ServerId) -> u64 {
        let mut latency = self.rng.range(1, 5);
        if self.rng.percent(2) {
            latency += self.rng.range(10, 100);
        }
        for end in [a, b] {
            let (low, high) = self.servers[&end].spike_ms;
            if high > 0 {
                latency += self.rng.range(low, high);
            }
        }
        latency
    }

    fn send_peer(&mut self, from: ServerId, to: ServerId, message: &PeerMessage) {
        let key = pair(from, to);
        if !self.links[&key].up {
            return;
        }
        let planted = self.config.planted;
        let rewritten;
        let message = match (planted, message) {
            (Some(PlantedBug::EphemeralsKept), PeerMessage::Proposal(entry))
                if matches!(entry.txn, Txn::CloseSession { .. }) =>
            {
                // The planted bug: the follower is told to close the session but to delete
                // none of its ephemerals.
                let mut entry = zk_core::storage::LogEntry::clone(entry);
                entry.txn = Txn::CloseSession { paths_to_delete: Vec::new() };
                rewritten = PeerMessage::Proposal(entry.into());
                &rewritten
            }
            _ => message,
        };
        let direction = usize::from(from > to);
        let link = &self.links[&key];
        if link.one_way_cuts[direction] > 0 || link.dead[direction] {
            // An asymmetric partition: the frame is lost, and with it everything after it on
            // this connection, until the reading end's timeout breaks the link.
            self.stats.frames_dropped += 1;
            if !link.dead[direction] {
                let generation = link.generation;
                self.links.get_mut(&key).expect("known link").dead[direction] = true;
                // The reading end's socket read timeout: ZooKeeper sets syncLimit × tickTime
                // on quorum sockets. It runs from the last frame that end received, some
                // time before this first lost one.
                let config = &self.servers[&to].config;
                let read_timeout_ms = config.sync_limit_ticks * config.session.tick_time_ms.max(1) as u64;
                let timeout_ms = self.rng.range(read_timeout_ms / 2, read_timeout_ms);
                let (a, b) = key;
                self.schedule(self.now_ms + timeout_ms, Event::LinkReadTimeout { a, b, generation });
            }
            return;
        }
        let latency = self.latency_ms(from, to);
        let link = self.links.get_mut(&key).expect("known link");
        let at = link.last_delivery_ms[direction].max(self.now_ms + latency);
        link.last_delivery_ms[direction] = at;
        let generation = link.generation;
        self.stats.peer_messages += 1;
        let bytes = message::encode(message);
        let incarnation = self.servers[&to].incarnation;
        self.schedule(
            at,
            Event::Server { server: to, incarnation, input: ServerInput::Peer { from, generation, bytes } },
        );
        if let (Some(PlantedBug::AcksForged), PeerMessage::Proposal(entry)) = (planted, message) {
            // The planted bug: an ACK the follower never sent, as if its log were durable.
            self.send_peer(to, from, &PeerMessage::Ack { zxid: entry.zxid() });
        }
    }

    // ---- client connections ----

    fn client_latency_ms(&mut self, server: ServerId) -> u64 {
        let mut latency = self.rng.range(1, 4);
        let (low, high) = self.servers[&server].spike_ms;
        if high > 0 {
            latency += self.rng.range(low, high);
        }
        latency
    }

    fn client_action(&mut self, client: ClientId, action: ClientAction) {
        match action {
            ClientAction::Open { connection, server, frame } => {
                let latency = self.client_latency_ms(server);
                let at = self.now_ms + latency;
                let incarnation = self.servers[&server].incarnation;
                self.connections.insert(
                    connection,
                    Connection { client, server, incarnation, c2s_last_ms: at, s2c_last_ms: 0, closed: false },
                );
                self.record(|| format!("c{client} connects to s{server} (connection {connection:#x})"));
                self.schedule(
                    at,
                    Event::Server { server, incarnation, input: ServerInput::ClientOpen { connection, frame } },
                );
            }
            ClientAction::Send { connection, frame } => {
                let Some(&Connection { server, incarnation, closed: false, .. }) = self.connections.get(&connection)
                else {
                    return;
                };
                let latency = self.client_latency_ms(server);
                let entry = self.connections.get_mut(&connection).expect("checked above");
                let at = entry.c2s_last_ms.max(self.now_ms + latency);
                entry.c2s_last_ms = at;
                self.schedule(
                    at,
                    Event::Server { server, incarnation, input: ServerInput::ClientFrame { connection, frame } },
                );
            }
            ClientAction::Close { connection } => {
                let Some(&Connection { server, incarnation, closed: false, .. }) = self.connections.get(&connection)
                else {
                    return;
                };
                let latency = self.client_latency_ms(server);
                let entry = self.connections.get_mut(&connection).expect("checked above");
                entry.closed = true;
                let at = entry.c2s_last_ms.max(self.now_ms + latency);
                self.schedule(
                    at,
                    Event::Server { server, incarnation, input: ServerInput::ClientClose { connection } },
                );
            }
        }
    }

    fn server_sends_frame(&mut self, connection: ConnectionId, frame: Vec<u8>) {
        let Some(&Connection { client, server, closed: false, .. }) = self.connections.get(&connection) else {
            return;
        };
        let latency = self.client_latency_ms(server);
        let reorder = self.config.planted == Some(PlantedBug::ServerFramesReordered);
        let entry = self.connections.get_mut(&connection).expect("checked above");
        // A TCP connection is FIFO: a frame never arrives before one sent earlier (unless
        // the planted bug makes the connection forget that).
        let at = if reorder { self.now_ms + latency } else { entry.s2c_last_ms.max(self.now_ms + latency) };
        entry.s2c_last_ms = entry.s2c_last_ms.max(at);
        self.schedule(at, Event::Client { client, input: ClientInput::Frame { connection, frame } });
    }

    fn server_closes_connection(&mut self, connection: ConnectionId) {
        let Some(&Connection { client, server, closed: false, .. }) = self.connections.get(&connection) else {
            return;
        };
        let latency = self.client_latency_ms(server);
        let entry = self.connections.get_mut(&connection).expect("checked above");
        entry.closed = true;
        let at = entry.s2c_last_ms.max(self.now_ms + latency);
        self.schedule(at, Event::Client { client, input: ClientInput::Closed { connection } });
    }

    /// A connection attempt to a server whose process is gone: reset.
    fn refuse_connection(&mut self, connection: ConnectionId) {
        self.server_closes_connection(connection);
    }

    // ---- clients ----

    fn client_input(&mut self, id: ClientId, input: ClientInput) {
        let now_ms = self.now_ms;
        let client = &mut self.clients[id];
        match input {
            ClientInput::Frame { connection, frame } => {
                client.handle_frame(connection, &frame, now_ms, &mut self.rng, &mut self.history)
            }
            ClientInput::Closed { connection } => {
                let was_current = client.connection() == Some(connection);
                client.handle_closed(connection, now_ms, &mut self.rng, &mut self.history);
                if was_current {
                    self.record(|| format!("c{id} lost connection {connection:#x}"));
                }
            }
            ClientInput::Timer => {
                if self.client_timer_at[id] == Some(now_ms) {
                    self.client_timer_at[id] = None;
                }
                if client.poll_timeout() <= now_ms {
                    client.handle_timeout(now_ms, &mut self.rng, &mut self.history);
                }
            }
        }
        while let Some(action) = self.clients[id].poll_action() {
            self.client_action(id, action);
        }
        self.schedule_client_timer(id);
        if self.trace.is_some() {
            self.trace_client_history();
        }
    }

    /// Writes what the clients invoked and observed since the last call into the trace.
    fn trace_client_history(&mut self) {
        let operations = self.history.operations.len();
        for index in self.traced_operations..operations {
            let operation = self.history.operations[index].clone();
            self.record(|| {
                format!("c{} invokes op #{index} on s{}: {:?}", operation.client, operation.server, operation.kind)
            });
        }
        self.traced_operations = operations;
        let observations = self.history.observations.len();
        for index in self.traced_observations..observations {
            let observation = self.history.observations[index].clone();
            self.record(|| format!("c{} {:?}", observation.client, observation.kind));
        }
        self.traced_observations = observations;
    }

    fn schedule_client_timer(&mut self, id: ClientId) {
        let at = self.clients[id].poll_timeout().max(self.now_ms);
        if self.client_timer_at[id].is_none_or(|scheduled| at < scheduled) {
            self.client_timer_at[id] = Some(at);
            self.schedule(at, Event::Client { client: id, input: ClientInput::Timer });
        }
    }

    // ---- phases ----

    fn begin_liveness(&mut self) {
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

    fn liveness_check(&mut self) {
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

    fn quiesce_check(&mut self) {
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
    fn server_states(&self) -> String {
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
    fn converged(&self) -> bool {
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

    fn final_checks(&mut self) {
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
