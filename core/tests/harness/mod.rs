//! A small virtual-time harness for zk-core's `Node` (in the style of quinn-proto's
//! `Pair`): 1, 3 or 5 nodes passing messages directly, each with an in-memory disk whose
//! writes become durable only when the harness "fsyncs" them, and clients speaking the real
//! wire protocol. Time moves only when a test says so, to the next deadline a node asked
//! for; nothing here is random, so every run is the same run.
//!
//! After every delivered input the harness checks the cluster: no two nodes ever commit
//! different txns at the same zxid, and every node's own invariants hold (they are
//! asserted inside the node in debug builds).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use zk_core::node::{ClientOutput, ConnectionId, Node, NodeConfig, Now, RoleName};
use zk_core::proto::{
    self, Buffer, ConnectRequest, ConnectResponse, CreateMode, CreateRequest, GetDataRequest, OpCode, Record, Reply,
    ReplyHeader, Request, Response, WatcherEvent,
};

use zk_core::txn::LogEntry;
use zk_core::zab::message;
use zk_core::zab::ServerId;
pub use zk_test_support::{test_config, Disk};

pub struct Server {
    pub node: Option<Node>,
    pub disk: Disk,
    /// When set, persist requests wait in `disk`'s pending requests until `fsync` is called.
    pub hold_fsync: bool,
}

/// An input that reached a paused server, kept until it resumes.
#[derive(Clone, Debug)]
enum Held {
    Peer { from: ServerId, bytes: Vec<u8> },
    Frame { connection: ConnectionId, body: Vec<u8> },
}

/// A client connection as the harness sees it.
#[derive(Clone, Debug, Default)]
pub struct Inbox {
    pub frames: VecDeque<Vec<u8>>,
    pub closed: bool,
}

pub struct Cluster {
    pub now: Now,
    pub servers: BTreeMap<ServerId, Server>,
    configs: BTreeMap<ServerId, NodeConfig>,
    /// Links cut by a partition (pairs stored low id first).
    cut: BTreeSet<(ServerId, ServerId)>,
    /// Links that silently drop everything.
    blackholed: BTreeSet<(ServerId, ServerId)>,
    /// Messages on the wire, in send order (which keeps every link FIFO).
    wire: VecDeque<(ServerId, ServerId, Vec<u8>)>,
    /// Every txn any node holds as committed, by zxid: two different txns at one zxid is
    /// the worst thing a consensus protocol can do.
    pub committed: BTreeMap<i64, LogEntry>,
    pub inboxes: BTreeMap<ConnectionId, Inbox>,
    /// Which server each connection is on.
    pub connection_server: BTreeMap<ConnectionId, ServerId>,
    next_connection: ConnectionId,
    /// Messages delivered, for tests that look at the protocol's traffic.
    pub delivered: Vec<(ServerId, ServerId, message::PeerMessage)>,
    pub record_messages: bool,
    /// Servers frozen by `pause` (a GC pause): what reaches them waits here, in order.
    paused: BTreeMap<ServerId, VecDeque<Held>>,
}

fn pair(a: ServerId, b: ServerId) -> (ServerId, ServerId) {
    (a.min(b), a.max(b))
}

impl Cluster {
    /// `voters` voting servers (ids 1..) and `observers` observers (ids after them).
    pub fn new(voters: u64, observers: u64) -> Cluster {
        Cluster::new_with(voters, observers, |_| {})
    }

    /// Like [`Cluster::new`], with every server's config adjusted by `tweak`.
    pub fn new_with(voters: u64, observers: u64, tweak: impl Fn(&mut NodeConfig)) -> Cluster {
        let voter_ids: Vec<ServerId> = (1..=voters).collect();
        let observer_ids: Vec<ServerId> = (voters + 1..=voters + observers).collect();
        let configs = voter_ids
            .iter()
            .chain(observer_ids.iter())
            .map(|&id| {
                let mut config = test_config(id, &voter_ids, &observer_ids);
                tweak(&mut config);
                (id, config)
            })
            .collect();
        Cluster::with_configs(configs)
    }

    pub fn with_configs(configs: BTreeMap<ServerId, NodeConfig>) -> Cluster {
        let servers =
            configs.keys().map(|&id| (id, Server { node: None, disk: Disk::default(), hold_fsync: false })).collect();
        Cluster {
            now: Now { monotonic_ms: 1_000, wall_ms: 1_700_000_000_000 },
            servers,
            configs,
            cut: BTreeSet::new(),
            blackholed: BTreeSet::new(),
            wire: VecDeque::new(),
            committed: BTreeMap::new(),
            inboxes: BTreeMap::new(),
            connection_server: BTreeMap::new(),
            next_connection: 1,
            delivered: Vec::new(),
            record_messages: false,
            paused: BTreeMap::new(),
        }
    }

    pub fn ids(&self) -> Vec<ServerId> {
        self.servers.keys().copied().collect()
    }

    /// Every server but `id`.
    pub fn others(&self, id: ServerId) -> Vec<ServerId> {
        self.servers.keys().copied().filter(|&other| other != id).collect()
    }

    pub fn node(&self, id: ServerId) -> &Node {
        self.servers[&id].node.as_ref().expect("server is up")
    }

    pub fn node_mut(&mut self, id: ServerId) -> &mut Node {
        self.servers.get_mut(&id).unwrap().node.as_mut().expect("server is up")
    }

    pub fn is_up(&self, id: ServerId) -> bool {
        self.servers[&id].node.is_some()
    }

    pub fn link_up(&self, a: ServerId, b: ServerId) -> bool {
        a != b && self.is_up(a) && self.is_up(b) && !self.cut.contains(&pair(a, b))
    }

    /// Starts every server (in id order, all at the same instant).
    pub fn start_all(&mut self) {
        for id in self.ids() {
            self.start(id);
        }
    }

    /// Starts (or restarts) a server from what its disk holds.
    pub fn start(&mut self, id: ServerId) {
        assert!(!self.is_up(id), "server {id} is already up");
        let recovered = self.servers.get_mut(&id).unwrap().disk.recover().expect("the harness disk always recovers");
        let node = Node::new(self.configs[&id].clone(), recovered, self.now);
        self.servers.get_mut(&id).unwrap().node = Some(node);
        for peer in self.ids() {
            if self.link_up(id, peer) {
                let now = self.now;
                self.node_mut(id).handle_peer_link_up(peer, now);
                self.node_mut(peer).handle_peer_link_up(id, now);
            }
        }
        self.flush_all();
    }

    /// Kills a server: writes not yet fsynced are lost, its links break, its clients'
    /// connections close.
    pub fn crash(&mut self, id: ServerId) {
        let peers: Vec<ServerId> = self.ids().into_iter().filter(|&peer| self.link_up(id, peer)).collect();
        let server = self.servers.get_mut(&id).unwrap();
        server.node = None;
        server.disk.crash(None).expect("dropping pending writes cannot fail");
        self.wire.retain(|(from, to, _)| *from != id && *to != id);
        for peer in peers {
            let now = self.now;
            self.node_mut(peer).handle_peer_link_down(id, now);
        }
        for (connection, server) in &self.connection_server {
            if *server == id {
                self.inboxes.get_mut(connection).unwrap().closed = true;
            }
        }
        self.flush_all();
    }

    /// Cuts the links between the two groups.
    pub fn partition(&mut self, group: &[ServerId], rest: &[ServerId]) {
        for &a in group {
            for &b in rest {
                self.cut_link(a, b);
            }
        }
    }

    pub fn cut_link(&mut self, a: ServerId, b: ServerId) {
        self.blackholed.remove(&pair(a, b));
        let was_up = self.link_up(a, b);
        self.cut.insert(pair(a, b));
        if was_up {
            self.wire.retain(|(from, to, _)| pair(*from, *to) != pair(a, b));
            let now = self.now;
            self.node_mut(a).handle_peer_link_down(b, now);
            self.node_mut(b).handle_peer_link_down(a, now);
            self.flush_all();
        }
    }

    /// Drops every message between `a` and `b` from now on without either end noticing a
    /// broken link (a silent network failure); `partition` or `heal` ends it.
    pub fn blackhole(&mut self, a: ServerId, b: ServerId) {
        self.blackholed.insert(pair(a, b));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.blackholed.clear();
        let cut: Vec<(ServerId, ServerId)> = std::mem::take(&mut self.cut).into_iter().collect();
        for (a, b) in cut {
            if self.link_up(a, b) {
                let now = self.now;
                self.node_mut(a).handle_peer_link_up(b, now);
                self.node_mut(b).handle_peer_link_up(a, now);
            }
        }
        self.flush_all();
    }

    /// Makes every pending write of a server durable and tells it.
    pub fn fsync(&mut self, id: ServerId) {
        let server = self.servers.get_mut(&id).unwrap();
        if let Some(token) = server.disk.complete_all().expect("harness log is valid") {
            let now = self.now;
            self.node_mut(id).handle_persisted(token, now);
        }
        self.flush_all();
    }

    fn flush(&mut self, id: ServerId) -> bool {
        let mut progress = false;
        let now = self.now;
        loop {
            let server = self.servers.get_mut(&id).unwrap();
            let Some(node) = server.node.as_mut() else { return progress };
            let Some(request) = node.poll_persist() else { break };
            progress = true;
            if server.hold_fsync {
                server.disk.submit(request);
            } else {
                for op in &request.ops {
                    server.disk.write(op).expect("harness log is valid");
                }
                node.handle_persisted(request.token, now);
            }
        }
        while let Some(transmit) = self.node_mut(id).poll_peer() {
            progress = true;
            if self.link_up(id, transmit.to) && !self.blackholed.contains(&pair(id, transmit.to)) {
                self.wire.push_back((id, transmit.to, message::encode(&transmit.message)));
            }
        }
        while let Some(output) = self.node_mut(id).poll_client() {
            progress = true;
            match output {
                ClientOutput::Frame { connection, bytes } => {
                    self.inboxes.entry(connection).or_default().frames.push_back(bytes)
                }
                ClientOutput::Close { connection } => self.inboxes.entry(connection).or_default().closed = true,
            }
        }
        progress
    }

    fn flush_all(&mut self) {
        loop {
            let mut progress = false;
            for id in self.ids() {
                progress |= self.flush(id);
            }
            if !progress {
                break;
            }
        }
        self.check();
    }

    /// Delivers messages until nothing is left to deliver at this instant.
    pub fn drive(&mut self) {
        self.flush_all();
        let mut steps = 0;
        while let Some((from, to, bytes)) = self.wire.pop_front() {
            steps += 1;
            assert!(steps < 1_000_000, "messages never stop: livelock at {:?}", self.now);
            if !self.link_up(from, to) {
                continue;
            }
            if let Some(held) = self.paused.get_mut(&to) {
                held.push_back(Held::Peer { from, bytes });
                continue;
            }
            let decoded = message::decode(&bytes).expect("peer messages decode");
            if self.record_messages {
                self.delivered.push((from, to, decoded.clone()));
            }
            let now = self.now;
            self.node_mut(to).handle_peer_message(from, decoded, now);
            self.flush_all();
        }
    }

    /// Freezes a server as a GC pause does: it handles nothing and its timers do not fire
    /// while time moves on; its links stay up, and what reaches it waits in order.
    pub fn pause(&mut self, id: ServerId) {
        self.paused.entry(id).or_default();
    }

    /// Wakes a paused server: it is handed everything that reached it meanwhile, in
    /// arrival order, at the current time (the driver's queue drained after a pause).
    pub fn resume(&mut self, id: ServerId) {
        let held = self.paused.remove(&id).unwrap_or_default();
        for input in held {
            if !self.is_up(id) {
                return;
            }
            let now = self.now;
            match input {
                Held::Peer { from, bytes } => {
                    if !self.link_up(from, id) {
                        continue;
                    }
                    let decoded = message::decode(&bytes).expect("peer messages decode");
                    self.node_mut(id).handle_peer_message(from, decoded, now);
                }
                Held::Frame { connection, body } => self.node_mut(id).handle_client_frame(connection, &body, now),
            }
            self.flush_all();
        }
    }

    pub fn is_paused(&self, id: ServerId) -> bool {
        self.paused.contains_key(&id)
    }

    /// Delivers messages one by one until one matching `stop` has been delivered; the rest
    /// stay on the wire. Returns whether it was found.
    pub fn deliver_until(&mut self, stop: impl Fn(ServerId, ServerId, &message::PeerMessage) -> bool) -> bool {
        self.flush_all();
        while let Some((from, to, bytes)) = self.wire.pop_front() {
            if !self.link_up(from, to) {
                continue;
            }
            if let Some(held) = self.paused.get_mut(&to) {
                held.push_back(Held::Peer { from, bytes });
                continue;
            }
            let decoded = message::decode(&bytes).expect("peer messages decode");
            let found = stop(from, to, &decoded);
            if self.record_messages {
                self.delivered.push((from, to, decoded.clone()));
            }
            let now = self.now;
            self.node_mut(to).handle_peer_message(from, decoded, now);
            self.flush_all();
            if found {
                return true;
            }
        }
        false
    }

    /// Messages waiting on the wire.
    pub fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// Moves virtual time forward by `ms`, firing every deadline on the way.
    pub fn run_for(&mut self, ms: u64) {
        let target = self.now.monotonic_ms + ms;
        let mut rounds = 0;
        loop {
            self.drive();
            rounds += 1;
            assert!(rounds < 1_000_000, "timers never stop firing");
            let next = self
                .servers
                .iter()
                .filter(|(id, _)| !self.paused.contains_key(id))
                .filter_map(|(_, server)| server.node.as_ref().and_then(Node::poll_timeout))
                .min()
                .unwrap_or(u64::MAX);
            if next > target {
                self.set_time(target);
                return;
            }
            self.set_time(next.max(self.now.monotonic_ms));
            for id in self.ids() {
                if self.is_paused(id) {
                    continue;
                }
                let due = self.servers[&id]
                    .node
                    .as_ref()
                    .and_then(Node::poll_timeout)
                    .is_some_and(|t| t <= self.now.monotonic_ms);
                if due {
                    let now = self.now;
                    self.node_mut(id).handle_timeout(now);
                    self.flush_all();
                }
            }
        }
    }

    fn set_time(&mut self, monotonic_ms: u64) {
        let elapsed = monotonic_ms - self.now.monotonic_ms;
        self.now.monotonic_ms = monotonic_ms;
        self.now.wall_ms += elapsed as i64;
    }

    /// Runs until `condition` holds, for at most `ms`; panics with `what` otherwise.
    pub fn run_until(&mut self, ms: u64, what: &str, condition: impl Fn(&Cluster) -> bool) {
        let deadline = self.now.monotonic_ms + ms;
        while !condition(self) {
            assert!(self.now.monotonic_ms < deadline, "timed out after {ms} ms waiting for: {what}");
            self.run_for(10);
        }
    }

    /// The serving leader, if exactly one server leads an established epoch.
    pub fn leader(&self) -> Option<ServerId> {
        let leaders: Vec<ServerId> =
            self.ids().into_iter().filter(|&id| self.is_up(id) && self.node(id).role() == RoleName::Leading).collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Runs until a leader serves and every live server reachable from it serves too.
    pub fn settle(&mut self) -> ServerId {
        self.run_until(30_000, "a serving leader with every reachable server serving", |cluster| {
            let Some(leader) = cluster.leader() else { return false };
            cluster.ids().into_iter().all(|id| {
                !cluster.is_up(id) || (id != leader && !cluster.link_up(id, leader)) || cluster.node(id).is_serving()
            })
        });
        self.leader().unwrap()
    }

    /// Cluster-wide safety checks, after every step.
    pub fn check(&mut self) {
        for server in self.servers.values() {
            let Some(node) = &server.node else { continue };
            let committed = node.committed_zxid();
            for entry in node.history().take_while(|entry| entry.zxid() <= committed) {
                match self.committed.get(&entry.zxid()) {
                    Some(known) => assert_eq!(
                        known,
                        entry,
                        "server {} committed a different txn at zxid {:#x}",
                        node.server_id(),
                        entry.zxid()
                    ),
                    None => {
                        self.committed.insert(entry.zxid(), entry.clone());
                    }
                }
            }
        }
    }

    /// No txn any server ever held as committed is missing from a serving server (where
    /// its in-memory history still reaches back that far).
    pub fn assert_no_committed_txn_lost(&self) {
        for server in self.servers.values() {
            let Some(node) = &server.node else { continue };
            if !node.is_serving() {
                continue;
            }
            let held: BTreeMap<i64, &LogEntry> = node.history().map(|entry| (entry.zxid(), entry)).collect();
            for (zxid, entry) in &self.committed {
                if *zxid > node.history_base_zxid() {
                    assert_eq!(
                        held.get(zxid),
                        Some(&entry),
                        "server {} lost committed zxid {zxid:#x}",
                        node.server_id()
                    );
                }
            }
            let last = self.committed.keys().next_back().copied().unwrap_or(0);
            assert!(node.last_logged_zxid() >= last, "server {} is behind a committed txn", node.server_id());
        }
    }

    /// Every live server that is serving has applied the same txns into the same tree.
    pub fn assert_replicas_agree(&self) {
        let serving: Vec<&Node> =
            self.servers.values().filter_map(|server| server.node.as_ref()).filter(|node| node.is_serving()).collect();
        let first = serving.first().expect("some server serves");
        for node in &serving[1..] {
            assert_eq!(
                node.applied_zxid(),
                first.applied_zxid(),
                "server {} applied a different zxid",
                node.server_id()
            );
            assert!(
                node.database().tree == first.database().tree,
                "server {} holds a different tree than server {}",
                node.server_id(),
                first.server_id()
            );
            assert_eq!(node.database().sessions(), first.database().sessions());
        }
    }

    // ---- clients ----

    /// Opens a connection to `server` and sends a ConnectRequest; returns the connection.
    pub fn open(&mut self, server: ServerId, session: Option<(i64, Vec<u8>)>, last_zxid_seen: i64) -> ConnectionId {
        let connection = self.next_connection;
        self.next_connection += 1;
        self.inboxes.insert(connection, Inbox::default());
        self.connection_server.insert(connection, server);
        let now = self.now;
        self.node_mut(server).handle_client_connected(connection, None, now);
        let (session_id, passwd) = session.unwrap_or((0, vec![0; 16]));
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen,
            time_out: 1000,
            session_id,
            passwd: Buffer(passwd),
            read_only: Some(false),
        };
        self.send_frame(connection, &proto::encode_framed(&request));
        connection
    }

    pub fn send_frame(&mut self, connection: ConnectionId, framed: &[u8]) {
        let server = self.connection_server[&connection];
        if !self.is_up(server) || self.inboxes[&connection].closed {
            return;
        }
        let (body, _) = proto::split_frame(framed, usize::MAX >> 1).unwrap().unwrap();
        let body = body.to_vec();
        if let Some(held) = self.paused.get_mut(&server) {
            held.push_back(Held::Frame { connection, body });
            return;
        }
        let now = self.now;
        self.node_mut(server).handle_client_frame(connection, &body, now);
        self.flush_all();
    }

    /// Connects a new session to `server` and waits for it.
    pub fn connect(&mut self, server: ServerId) -> Session {
        let connection = self.open(server, None, 0);
        self.run_until(5_000, "the session to be created", |cluster| {
            !cluster.inboxes[&connection].frames.is_empty() || cluster.inboxes[&connection].closed
        });
        let roles: Vec<_> = self
            .ids()
            .into_iter()
            .filter(|id| self.is_up(*id))
            .map(|id| (id, self.node(id).role(), self.node(id).current_epoch()))
            .collect();
        let frame =
            self.inboxes.get_mut(&connection).unwrap().frames.pop_front().unwrap_or_else(|| {
                panic!("no connect response from server {server} at {:?}; roles {roles:?}", self.now)
            });
        let (body, _) = proto::split_frame(&frame, usize::MAX >> 1).unwrap().unwrap();
        let response = ConnectResponse::from_bytes(body).unwrap();
        assert_ne!(response.session_id, 0, "session refused");
        Session {
            connection,
            session_id: response.session_id,
            passwd: response.passwd.0,
            next_xid: 1,
            pending: BTreeMap::new(),
            events: Vec::new(),
            last_zxid: 0,
        }
    }

    /// Sends a request without waiting.
    pub fn send(&mut self, session: &mut Session, request: Request) -> i32 {
        // Pings travel with their own xid, as every ZooKeeper client sends them.
        let xid = if matches!(request, Request::Ping) { proto::XID_PING } else { session.next_xid };
        session.next_xid += 1;
        session.pending.insert(xid, request.op_code());
        self.send_frame(session.connection, &proto::encode_request(xid, &request));
        xid
    }

    /// Collects what arrived for the session: replies by xid, notifications in `events`.
    pub fn receive(&mut self, session: &mut Session) -> BTreeMap<i32, (ReplyHeader, Response)> {
        let mut replies = BTreeMap::new();
        let inbox = self.inboxes.get_mut(&session.connection).unwrap();
        while let Some(frame) = inbox.frames.pop_front() {
            let (body, _) = proto::split_frame(&frame, usize::MAX >> 1).unwrap().unwrap();
            let pending = &session.pending;
            let (header, reply) = proto::decode_reply(body, |xid| pending.get(&xid).copied()).unwrap();
            if header.zxid > 0 {
                assert!(header.zxid >= session.last_zxid || header.xid == -1, "a client saw zxid go backwards");
                session.last_zxid = session.last_zxid.max(header.zxid);
            }
            match reply {
                Reply::Notification(event) => session.events.push(event),
                Reply::Response(_, response) => {
                    session.pending.remove(&header.xid);
                    replies.insert(header.xid, (header, response));
                }
            }
        }
        replies
    }

    /// Sends a request and waits for its reply (or for the connection to close: `None`).
    pub fn call(&mut self, session: &mut Session, request: Request) -> Option<(ReplyHeader, Response)> {
        let xid = self.send(session, request);
        let mut got = None;
        let deadline = self.now.monotonic_ms + 5_000;
        loop {
            got = got.or_else(|| self.receive(session).remove(&xid));
            if got.is_some() || self.inboxes[&session.connection].closed || self.now.monotonic_ms >= deadline {
                return got;
            }
            self.run_for(5);
        }
    }

    pub fn create(&mut self, session: &mut Session, path: &str, data: &[u8], mode: CreateMode) -> (i32, String) {
        match self.call(session, create_request(path, data, mode)) {
            Some((header, Response::Create(created))) => (header.err, created.path),
            Some((header, _)) => (header.err, String::new()),
            None => (i32::MIN, String::new()),
        }
    }

    pub fn get_data(&mut self, session: &mut Session, path: &str, watch: bool) -> Option<Vec<u8>> {
        match self.call(session, Request::GetData(GetDataRequest { path: path.into(), watch })) {
            Some((_, Response::GetData(data))) => Some(data.data.unwrap_or_default()),
            _ => None,
        }
    }
}

/// A create request with an open ACL.
pub fn create_request(path: &str, data: &[u8], mode: CreateMode) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: zk_core::acl::open_acl_unsafe(),
        flags: mode.code(),
    })
}

/// A client session in the harness.
#[derive(Clone, Debug)]
pub struct Session {
    pub connection: ConnectionId,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub next_xid: i32,
    pub pending: BTreeMap<i32, OpCode>,
    pub events: Vec<WatcherEvent>,
    pub last_zxid: i64,
}
