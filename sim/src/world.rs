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
//!
//! The world's parts, one file each: the event queue (`queue`), server processes
//! (`servers`), the network between servers (`network`), clients and their connections
//! (`clients`), the phases of a run (`phases`) and the checks run during and after it
//! (`checks`).

mod checks;
mod clients;
mod network;
mod phases;
mod queue;
mod servers;

use std::collections::{BTreeMap, VecDeque};

use zk_core::node::{ConnectionId, Now, RoleName};
use zk_core::zab::ServerId;

use crate::check::zab::ZabChecker;
use crate::check::Violation;
use crate::client::{Client, ClientSettings};
pub use crate::clock::Clock;
use crate::config::{PlantedBug, SimConfig, Workload};
use crate::disk::Disk;
use crate::faults::Faults;
use crate::history::History;
use crate::rng::SimRng;
use crate::trace;

pub use clients::ClientInput;
use clients::Connection;
use network::Links;
pub use phases::Phase;
pub use queue::Event;
use queue::EventQueue;
pub use servers::{node_config, Server, ServerInput, Servers};

/// The wall clock at virtual time 0 (what leaders stamp into txns).
pub const WALL_CLOCK_START_MS: i64 = 1_700_000_000_000;

/// Events the whole run may hold before it is declared a livelock.
pub const EVENTS_MAX: u64 = 20_000_000;

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
    queue: EventQueue,
    pub servers: Servers,
    links: Links,
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

impl World {
    pub fn new(config: SimConfig) -> World {
        assert!(config.voters >= 1, "an ensemble needs a voter");
        let mut rng = SimRng::new(config.seed);
        let voter_ids: Vec<ServerId> = (1..=config.voters).collect();
        let observer_ids: Vec<ServerId> = (config.voters + 1..=config.voters + config.observers).collect();
        let mut servers = Vec::new();
        for &id in voter_ids.iter().chain(observer_ids.iter()) {
            let mut node_config = node_config(id, &voter_ids, &observer_ids, &mut rng);
            node_config.confirm_rounds = config.planted != Some(PlantedBug::SyncRoundsSkipped);
            servers.push(Server {
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
            });
        }
        let servers = Servers::new(servers);
        let ids: Vec<ServerId> = servers.keys().copied().collect();
        let links = Links::new(ids.len());
        let session = servers[&1].config.session;
        let settings = ClientSettings {
            servers: ids.clone(),
            session_timeout_ms: rng.range(session.min_session_timeout_ms as u64, session.max_session_timeout_ms as u64)
                as i32,
            pipeline_max: rng.range(1, 3) as usize,
            keys: rng.range(1, 4) as usize,
            think_ms_max: rng.range(5, 60),
            planted: config.planted,
            recipes: config.recipes && config.workload != Workload::ReadHeavy,
            workload: config.workload,
        };
        let clients: Vec<Client> =
            (0..config.clients).map(|id| Client::new(id, settings.clone(), 0, &mut rng)).collect();
        let trace = config.trace.then(Vec::new);
        let faults = Faults::new(config.faults);
        World {
            now_ms: 0,
            rng,
            queue: EventQueue::default(),
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
        while let Some((time_ms, event)) = self.queue.pop() {
            debug_assert!(time_ms >= self.now_ms, "time never goes back");
            self.now_ms = time_ms;
            self.stats.events += 1;
            if self.stats.events > EVENTS_MAX {
                self.violation("livelock", format!("more than {EVENTS_MAX} events"));
            }
            if self.phase == Phase::Safety && self.now_ms >= self.config.safety_ms {
                self.begin_liveness();
            }
            self.step(event);
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
            Event::LinkReadTimeout { a, b, generation } => self.link_read_timeout(a, b, generation),
            Event::LivenessCheck => self.liveness_check(),
            Event::QuiesceCheck => self.quiesce_check(),
        }
    }
}
