//! Server processes: start from disk, crash, pause and resume; every input handed to a
//! node, and its outputs carried out in the order the `Node` doc gives.

use std::collections::VecDeque;

use zk_core::node::{ClientOutput, ConnectionId, Node, NodeConfig, PersistToken};
use zk_core::ondisk::Recovered;
use zk_core::proto;
use zk_core::zab::message::{self};
use zk_core::zab::ServerId;

use crate::clock::Clock;
use crate::config::PlantedBug;
use crate::disk::Disk;
use crate::rng::SimRng;
use crate::trace;

use super::network::pair;
use super::{Event, World};

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

/// The servers, by id (numbered 1..=n), in a table rather than a map: the world looks a
/// server up several times per event. Iteration is in id order, as a map's would be.
pub struct Servers {
    slots: Vec<Server>,
}

impl Servers {
    /// `servers` in id order, numbered 1..=n.
    pub(super) fn new(servers: Vec<Server>) -> Servers {
        assert!(servers.iter().map(|server| server.id).eq(1..=servers.len() as ServerId), "servers are numbered 1..=n");
        Servers { slots: servers }
    }

    fn slot(id: ServerId) -> usize {
        (id as usize).wrapping_sub(1)
    }

    pub fn get(&self, id: &ServerId) -> Option<&Server> {
        self.slots.get(Servers::slot(*id))
    }

    pub fn get_mut(&mut self, id: &ServerId) -> Option<&mut Server> {
        self.slots.get_mut(Servers::slot(*id))
    }

    pub fn contains_key(&self, id: &ServerId) -> bool {
        self.get(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &ServerId> {
        self.slots.iter().map(|server| &server.id)
    }

    pub fn values(&self) -> impl Iterator<Item = &Server> {
        self.slots.iter()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Server> {
        self.slots.iter_mut()
    }
}

impl std::ops::Index<&ServerId> for Servers {
    type Output = Server;

    fn index(&self, id: &ServerId) -> &Server {
        self.get(id).expect("known server")
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
    pub(super) inbox: VecDeque<ServerInput>,
    /// The time of the timer event scheduled for the node's deadline.
    pub(super) timer_at: Option<u64>,
    /// fsync latency bounds; raised by the slow-fsync fault.
    pub fsync_ms: (u64, u64),
    /// Extra delay on every message to and from this server (latency-spike fault).
    pub spike_ms: (u64, u64),
    /// The server's clocks (skewed and jumped by the clock-skew fault).
    pub clock: Clock,
    /// Persist requests fail while the disk is full.
    pub disk_full: bool,
}

/// Server settings for simulated time: the timings of `zk_test_support::test_config`
/// (tickTime 100 ms, finalizeWait 20 ms, …); snapshot and history sizes drawn from the
/// seed so that SNAP syncs and recovery from snapshots happen too.
pub fn node_config(id: ServerId, voters: &[ServerId], observers: &[ServerId], rng: &mut SimRng) -> NodeConfig {
    let mut config = zk_test_support::test_config(id, voters, observers);
    config.snapshot_txn_count = *rng.pick(&[25, 100, 100_000]);
    config.history_entries_max = *rng.pick(&[20, 200, 100_000]);
    config
}

impl World {
    /// Starts (or restarts) a server's process from what its disk holds.
    pub fn start_server(&mut self, id: ServerId) {
        let now = self.server_now(id);
        let slot = self.servers.get_mut(&id).expect("known server");
        assert!(slot.node.is_none(), "server {id} is already running");
        if std::mem::take(&mut slot.disk.corrupt_next_read) && !self.start_reads_corrupt(id) {
            return;
        }
        let slot = self.servers.get_mut(&id).expect("known server");
        let recovered: Recovered = match slot.disk.files_mut().recover() {
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
    pub(super) fn start_reads_corrupt(&mut self, id: ServerId) -> bool {
        let files = self.servers[&id].disk.files().clone();
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

    pub(super) fn server_input(&mut self, id: ServerId, input: ServerInput) {
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
    pub(super) fn drain(&mut self, id: ServerId) {
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

    pub(super) fn schedule_server_timer(&mut self, id: ServerId) {
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
}
