//! Client connections: the handshake, sessions, request order and replies.
//!
//! Every connection keeps its requests in arrival order. A read is served at once unless an
//! earlier write (or `sync`) of the same connection is still waiting for its commit; then it
//! waits behind it, so a client always sees its own writes in the order it made them
//! (ZooKeeper's FIFO client order, kept by its `CommitProcessor`).

use core::net::IpAddr;
use std::collections::{BTreeMap, VecDeque};

use super::{ClientOutput, ConnectionId, Node, NodeConfig, Now, Role, Submission, SubmissionKind};
use crate::acl::{self, AuthConfig};
use crate::database::{ApplyOutcome, Database, Reader};
use crate::proto::{
    self, perms, Acl, Buffer, ConnectRequest, ConnectResponse, Id, OpCode, Record, ReplyHeader, Request, Response,
    SyncResponse, XID_AUTH, XID_PING,
};
use crate::request::Preparer;
use crate::session::{self, SessionConfig};
use crate::storage::LogEntry;
use crate::txn::Txn;
use crate::zab::message::{ForwardedRequest, PeerMessage};
use crate::ErrorCode;

/// Where a connection is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ConnectionState {
    /// Waiting for the ConnectRequest.
    AwaitingConnect,
    /// A new session was asked of the leader; the reply waits for its createSession txn.
    AwaitingSession {
        session_id: i64,
        timeout_ms: i32,
        read_only: Option<bool>,
    },
    /// An existing session was presented; the leader is asked whether it is alive.
    AwaitingRevalidation {
        session_id: i64,
        timeout_ms: i32,
        read_only: Option<bool>,
    },
    Active {
        session_id: i64,
        timeout_ms: i32,
    },
}

/// A request waiting its turn on a connection.
#[derive(Clone, Debug)]
enum Pending {
    /// A write or sync whose outcome has not arrived.
    Waiting { xid: i32 },
    /// A reply ready to go once everything before it has gone.
    Ready(Vec<u8>),
    /// An answer that carries no txn of its own (a finished sync, a refusal): its header
    /// takes the last applied zxid when it leaves, so it is never older than a reply
    /// that left before it.
    Answer { xid: i32, err: ErrorCode, response: Response },
    /// A read to serve once everything before it has gone.
    Read { xid: i32, request: Request },
}

#[derive(Clone, Debug)]
struct Connection {
    remote_ip: Option<IpAddr>,
    state: ConnectionState,
    auth_ids: Vec<Id>,
    pending: VecDeque<Pending>,
    /// When each pending request arrived (monotonic ms) and what it was, in step with
    /// `pending`.
    arrived_ms: VecDeque<(u64, &'static str)>,
    stats: ConnectionStats,
}

impl Connection {
    fn session_id(&self) -> Option<i64> {
        match self.state {
            ConnectionState::AwaitingConnect | ConnectionState::AwaitingRevalidation { .. } => None,
            ConnectionState::AwaitingSession { session_id, .. } | ConnectionState::Active { session_id, .. } => {
                Some(session_id)
            }
        }
    }
}

/// All client connections of a node.
#[derive(Clone, Debug)]
pub(crate) struct Clients {
    connections: BTreeMap<ConnectionId, Connection>,
    /// The connection each session is attached to on this server.
    by_session: BTreeMap<i64, ConnectionId>,
    /// Sessions touched since the leader last heard about them (id → timeout).
    touched: BTreeMap<i64, i32>,
    next_session_id: i64,
    session_config: SessionConfig,
    auth: AuthConfig,
    pending_max: usize,
    pub(crate) latency: RequestLatency,
}

/// One connection's counters, as ZooKeeper's `cons` prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionStats {
    /// The connection's session and its negotiated timeout (0 before the handshake ends).
    pub session_id: i64,
    pub session_timeout_ms: i32,
    /// When the connection was opened (wall-clock ms).
    pub established_ms: i64,
    /// The last request answered, as ZooKeeper abbreviates it ("GETD", "SETD", ...; "NA").
    pub last_op: &'static str,
    /// The xid and reply zxid of the last answer (-1 before the first).
    pub last_cxid: i64,
    pub last_zxid: i64,
    /// When the last answer left (wall-clock ms; 0 before the first).
    pub last_response_ms: i64,
    pub last_latency_ms: u64,
    pub latency: RequestLatency,
}

/// ZooKeeper's abbreviation of an operation in `cons` (FinalRequestProcessor's `lastOp`).
fn op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Ping => "PING",
        OpCode::CreateSession => "SESS",
        OpCode::Multi => "MULT",
        OpCode::MultiRead => "MLTR",
        OpCode::Create | OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => "CREA",
        OpCode::Delete | OpCode::DeleteContainer => "DELE",
        OpCode::SetData => "SETD",
        OpCode::Reconfig => "RECO",
        OpCode::SetAcl => "SETA",
        OpCode::CloseSession => "CLOS",
        OpCode::Sync => "SYNC",
        OpCode::Check => "CHEC",
        OpCode::Exists => "EXIS",
        OpCode::GetData => "GETD",
        OpCode::SetWatches => "SETW",
        OpCode::SetWatches2 => "STW2",
        OpCode::AddWatch => "ADDW",
        OpCode::GetAcl => "GETA",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::GetAllChildrenNumber => "GETACN",
        OpCode::CheckWatches => "CHKW",
        OpCode::RemoveWatches => "REMW",
        OpCode::WhoAmI => "HOMI",
        OpCode::GetEphemerals => "GETE",
        _ => "NA",
    }
}

/// How long requests took from arrival to reply, in milliseconds of the node's clock (what
/// `srvr`, `stat` and `mntr` report as latency min/avg/max).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestLatency {
    pub count: u64,
    pub total_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
}

impl RequestLatency {
    fn record(&mut self, latency_ms: u64) {
        self.min_ms = if self.count == 0 { latency_ms } else { self.min_ms.min(latency_ms) };
        self.max_ms = self.max_ms.max(latency_ms);
        self.count += 1;
        self.total_ms += latency_ms;
    }

    /// The average in milliseconds (0 before the first request).
    pub fn average_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
        }
    }
}

impl Clients {
    pub(crate) fn new(config: &NodeConfig, now: Now) -> Clients {
        Clients {
            connections: BTreeMap::new(),
            by_session: BTreeMap::new(),
            touched: BTreeMap::new(),
            next_session_id: session::initial_session_id(config.server_id as i64, now.wall_ms),
            session_config: config.session,
            auth: config.auth.clone(),
            pending_max: config.connection_requests_pending_max,
            latency: RequestLatency::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.connections.len()
    }

    pub(crate) fn stats(&self, connection: ConnectionId) -> Option<ConnectionStats> {
        self.connections.get(&connection).map(|c| {
            let (session_id, session_timeout_ms) = match c.state {
                ConnectionState::Active { session_id, timeout_ms } => (session_id, timeout_ms),
                _ => (0, 0),
            };
            ConnectionStats { session_id, session_timeout_ms, ..c.stats }
        })
    }

    pub(crate) fn connected(&mut self, connection: ConnectionId, remote_ip: Option<IpAddr>, now_wall_ms: i64) {
        let ids = acl::connection_ids(remote_ip);
        self.connections.insert(
            connection,
            Connection {
                remote_ip,
                state: ConnectionState::AwaitingConnect,
                auth_ids: ids,
                pending: VecDeque::new(),
                arrived_ms: VecDeque::new(),
                stats: ConnectionStats {
                    session_id: 0,
                    session_timeout_ms: 0,
                    established_ms: now_wall_ms,
                    last_op: "NA",
                    last_cxid: -1,
                    last_zxid: -1,
                    last_response_ms: 0,
                    last_latency_ms: 0,
                    latency: RequestLatency::default(),
                },
            },
        );
    }

    pub(crate) fn disconnected(&mut self, connection: ConnectionId, database: &mut Database) {
        if let Some(closed) = self.connections.remove(&connection) {
            if let Some(session_id) = closed.session_id() {
                if self.by_session.get(&session_id) == Some(&connection) {
                    self.by_session.remove(&session_id);
                }
            }
            database.watches.remove_watcher(connection);
        }
    }

    /// Forgets every connection; returns them so the driver closes them.
    pub(crate) fn close_all(&mut self, database: &mut Database) -> Vec<ConnectionId> {
        let all: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for &connection in &all {
            self.disconnected(connection, database);
        }
        self.touched.clear();
        all
    }

    pub(crate) fn sessions(&self) -> BTreeMap<ConnectionId, i64> {
        self.connections
            .iter()
            .filter_map(|(id, connection)| connection.session_id().map(|session| (*id, session)))
            .collect()
    }

    pub(crate) fn requests_pending(&self, connection: ConnectionId) -> usize {
        self.connections.get(&connection).map_or(0, |c| c.pending.len())
    }

    /// Whether a connection may hear of a change to a node with this ACL.
    pub(crate) fn can_read(&self, connection: ConnectionId, acl: &[Acl]) -> bool {
        let ids = self.connections.get(&connection).map_or(&[][..], |c| c.auth_ids.as_slice());
        acl::check_acl(acl, perms::READ, ids).is_ok()
    }

    /// Sessions touched since the last call.
    pub(crate) fn take_touched(&mut self) -> Vec<(i64, i32)> {
        std::mem::take(&mut self.touched).into_iter().collect()
    }

    pub(crate) fn check_invariants(&self) {
        for (session_id, connection) in &self.by_session {
            let attached = self.connections.get(connection).and_then(Connection::session_id);
            assert_eq!(attached, Some(*session_id), "session index points at its connection");
        }
        for connection in self.connections.values() {
            assert!(connection.pending.len() <= self.pending_max + 1, "pending requests are bounded");
            assert_eq!(connection.pending.len(), connection.arrived_ms.len(), "arrival times in step");
        }
    }
}

/// The ConnectResponse frame that grants a session (its password derives from its id).
fn session_granted(session_id: i64, timeout_ms: i32, read_only: Option<bool>) -> Vec<u8> {
    let password = session::session_password(session::ZOOKEEPER_SUPER_SECRET, session_id);
    let response = ConnectResponse {
        protocol_version: 0,
        time_out: timeout_ms,
        session_id,
        passwd: Buffer(password.to_vec()),
        read_only,
    };
    proto::encode_framed(&response)
}

fn reply_frame(xid: i32, zxid: i64, err: ErrorCode, response: &Response) -> Vec<u8> {
    proto::encode_reply(ReplyHeader { xid, zxid, err: err.code() }, response)
}

impl Node {
    fn output(&mut self, connection: ConnectionId, bytes: Vec<u8>) {
        self.client_out.push_back(ClientOutput::Frame { connection, bytes });
    }

    /// Sends a reply frame and remembers its xid and zxid for `cons`.
    fn output_reply(&mut self, connection: ConnectionId, bytes: Vec<u8>) {
        if let (Some(entry), Some(xid), Some(zxid)) = (
            self.clients.connections.get_mut(&connection),
            bytes.get(4..8).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            bytes.get(8..16).map(|b| i64::from_be_bytes(b.try_into().expect("eight bytes"))),
        ) {
            entry.stats.last_cxid = i64::from(xid);
            entry.stats.last_zxid = zxid;
        }
        self.output(connection, bytes);
    }

    fn close_connection(&mut self, connection: ConnectionId) {
        if self.clients.connections.contains_key(&connection) {
            self.clients.disconnected(connection, &mut self.database);
            self.client_out.push_back(ClientOutput::Close { connection });
        }
    }

    pub(super) fn client_frame(&mut self, connection: ConnectionId, frame: &[u8]) {
        let Some(state) = self.clients.connections.get(&connection).map(|c| c.state.clone()) else { return };
        match state {
            ConnectionState::AwaitingConnect => self.client_connect(connection, frame),
            // Clients wait for the handshake's answer before sending anything else.
            ConnectionState::AwaitingSession { .. } | ConnectionState::AwaitingRevalidation { .. } => {
                self.close_connection(connection)
            }
            ConnectionState::Active { session_id, timeout_ms } => {
                self.client_request(connection, session_id, timeout_ms, frame);
            }
        }
    }

    fn client_connect(&mut self, connection: ConnectionId, frame: &[u8]) {
        let Ok(request) = ConnectRequest::from_bytes(frame) else {
            self.close_connection(connection);
            return;
        };
        // Only a serving server takes sessions; a client that has seen a newer zxid than
        // this server has applied must try another (ZooKeeper refuses it the same way), or
        // it would see time go backwards.
        if !self.is_serving() || request.last_zxid_seen > self.database.last_processed_zxid() {
            self.close_connection(connection);
            return;
        }
        let timeout_ms = self.clients.session_config.negotiate_timeout(request.time_out);
        let read_only = request.read_only.map(|_| false);
        if request.session_id == 0 {
            let session_id = self.clients.next_session_id;
            self.clients.next_session_id += 1;
            let entry = self.clients.connections.get_mut(&connection).expect("checked above");
            entry.state = ConnectionState::AwaitingSession { session_id, timeout_ms, read_only };
            self.clients.by_session.insert(session_id, connection);
            self.submit(Submission {
                origin: self.config.server_id,
                session_id,
                cxid: 0,
                kind: SubmissionKind::CreateSession { timeout_ms },
            });
            return;
        }
        let session_id = request.session_id;
        let password = session::session_password(session::ZOOKEEPER_SUPER_SECRET, session_id);
        if request.passwd.0 != password {
            self.session_refused(connection, read_only);
            return;
        }
        match &mut self.role {
            // The leader's session table decides.
            Role::Leading(leader) => {
                let valid = leader.revalidate(session_id, self.now);
                self.session_revalidated(connection, session_id, timeout_ms, read_only, valid);
            }
            _ => {
                let entry = self.clients.connections.get_mut(&connection).expect("checked above");
                entry.state = ConnectionState::AwaitingRevalidation { session_id, timeout_ms, read_only };
                self.forward(PeerMessage::Revalidate { session_id });
            }
        }
    }

    /// ZooKeeper answers an expired or forged session with a zero timeout, then closes;
    /// the client reports SESSION_EXPIRED.
    fn session_refused(&mut self, connection: ConnectionId, read_only: Option<bool>) {
        let response =
            ConnectResponse { protocol_version: 0, time_out: 0, session_id: 0, passwd: Buffer(vec![0; 16]), read_only };
        self.output(connection, proto::encode_framed(&response));
        self.close_connection(connection);
    }

    fn session_revalidated(
        &mut self,
        connection: ConnectionId,
        session_id: i64,
        timeout_ms: i32,
        read_only: Option<bool>,
        valid: bool,
    ) {
        if !valid {
            self.session_refused(connection, read_only);
            return;
        }
        // A session moves to its newest connection; the old one is closed.
        if let Some(&old) = self.clients.by_session.get(&session_id) {
            if old != connection {
                self.close_connection(old);
            }
        }
        let entry = self.clients.connections.get_mut(&connection).expect("caller checked");
        entry.state = ConnectionState::Active { session_id, timeout_ms };
        self.clients.by_session.insert(session_id, connection);
        self.touch_session(session_id, timeout_ms);
        self.output(connection, session_granted(session_id, timeout_ms, read_only));
    }

    /// The leader answered a revalidation: every connection waiting on it gets its answer.
    pub(super) fn revalidated(&mut self, session_id: i64, valid: bool) {
        let waiting: Vec<(ConnectionId, i32, Option<bool>)> = self
            .clients
            .connections
            .iter()
            .filter_map(|(connection, entry)| match entry.state {
                ConnectionState::AwaitingRevalidation { session_id: awaited, timeout_ms, read_only }
                    if awaited == session_id =>
                {
                    Some((*connection, timeout_ms, read_only))
                }
                _ => None,
            })
            .collect();
        for (connection, timeout_ms, read_only) in waiting {
            if self.clients.connections.contains_key(&connection) {
                self.session_revalidated(connection, session_id, timeout_ms, read_only, valid);
            }
        }
    }

    fn touch_session(&mut self, session_id: i64, timeout_ms: i32) {
        if let Role::Leading(leader) = &mut self.role {
            leader.touch_session(session_id, timeout_ms, self.now);
        } else {
            self.clients.touched.insert(session_id, timeout_ms);
        }
    }

    fn client_request(&mut self, connection: ConnectionId, session_id: i64, timeout_ms: i32, frame: &[u8]) {
        let Ok(decoded) = proto::decode_request(frame) else {
            self.close_connection(connection);
            return;
        };
        self.touch_session(session_id, timeout_ms);
        let xid = decoded.header.xid;
        let request = match decoded.body {
            Ok(request) => request,
            Err(error) => {
                let bytes = reply_frame(xid, self.database.last_processed_zxid(), error.error_code(), &Response::Empty);
                self.enqueue(connection, "NA", Pending::Ready(bytes));
                return;
            }
        };
        if let Request::Auth(packet) = &request {
            // Auth is answered at once, outside the request order, as ZooKeeper does; a
            // failed login closes the connection.
            let remote_ip = self.clients.connections[&connection].remote_ip;
            match acl::authenticate(&self.clients.auth, &packet.scheme, &packet.auth.0, remote_ip) {
                Ok(ids) => {
                    let entry = self.clients.connections.get_mut(&connection).expect("checked above");
                    let err = match acl::add_auth_ids(&mut entry.auth_ids, ids) {
                        Ok(()) => ErrorCode::Ok,
                        Err(err) => err,
                    };
                    self.output(connection, reply_frame(XID_AUTH, 0, err, &Response::Empty));
                }
                Err(err) => {
                    self.output(connection, reply_frame(XID_AUTH, 0, err, &Response::Empty));
                    self.close_connection(connection);
                }
            }
            return;
        }
        if Preparer::is_write(&request) || matches!(request, Request::Sync(_)) {
            if !self.enqueue(connection, op_name(request.op_code()), Pending::Waiting { xid }) {
                return;
            }
            let auth_ids = self.clients.connections[&connection].auth_ids.clone();
            if matches!(self.role, Role::Leading(_)) {
                self.submit(Submission {
                    origin: self.config.server_id,
                    session_id,
                    cxid: xid,
                    kind: SubmissionKind::Request { request, auth_ids },
                });
            } else {
                let forwarded = ForwardedRequest::Client { session_id, frame: frame.to_vec(), auth_ids };
                self.forward(PeerMessage::Request(forwarded));
            }
            return;
        }
        self.enqueue(connection, op_name(request.op_code()), Pending::Read { xid, request });
    }

    /// Queues a request on its connection and sends whatever is ready. Returns false (and
    /// closes the connection) when the connection has too many requests waiting.
    fn enqueue(&mut self, connection: ConnectionId, op: &'static str, pending: Pending) -> bool {
        let entry = self.clients.connections.get_mut(&connection).expect("caller checked");
        if entry.pending.len() >= self.clients.pending_max {
            self.close_connection(connection);
            return false;
        }
        entry.pending.push_back(pending);
        entry.arrived_ms.push_back((self.now.monotonic_ms, op));
        self.drain(connection);
        true
    }

    /// Sends replies from the front of a connection's queue until a request that is
    /// still waiting.
    fn drain(&mut self, connection: ConnectionId) {
        loop {
            let Some(entry) = self.clients.connections.get_mut(&connection) else { return };
            let session_id = entry.session_id().unwrap_or(0);
            match entry.pending.front() {
                None | Some(Pending::Waiting { .. }) => return,
                Some(_) => {
                    let (arrived_ms, op) = entry.arrived_ms.pop_front().expect("in step with pending");
                    let latency_ms = self.now.monotonic_ms.saturating_sub(arrived_ms);
                    self.clients.latency.record(latency_ms);
                    entry.stats.last_op = op;
                    entry.stats.last_latency_ms = latency_ms;
                    entry.stats.last_response_ms = self.now.wall_ms;
                    entry.stats.latency.record(latency_ms);
                }
            }
            let Some(entry) = self.clients.connections.get_mut(&connection) else { return };
            match entry.pending.front() {
                None | Some(Pending::Waiting { .. }) => return,
                Some(Pending::Ready(_)) => {
                    let Some(Pending::Ready(bytes)) = entry.pending.pop_front() else { unreachable!() };
                    self.output_reply(connection, bytes);
                }
                Some(Pending::Answer { .. }) => {
                    let Some(Pending::Answer { xid, err, response }) = entry.pending.pop_front() else {
                        unreachable!()
                    };
                    let zxid = self.database.last_processed_zxid();
                    self.output_reply(connection, reply_frame(xid, zxid, err, &response));
                }
                Some(Pending::Read { .. }) => {
                    let Some(Pending::Read { xid, request }) = entry.pending.pop_front() else { unreachable!() };
                    let zxid = self.database.last_processed_zxid();
                    if matches!(request, Request::Ping) {
                        self.output_reply(connection, reply_frame(XID_PING, zxid, ErrorCode::Ok, &Response::Empty));
                        continue;
                    }
                    let auth_ids = entry.auth_ids.clone();
                    let reader = Reader { watcher: connection, session_id, auth_ids: &auth_ids };
                    let outcome = self.database.read(&reader, &request);
                    for event in outcome.events {
                        self.output(connection, proto::encode_notification(-1, &event));
                    }
                    self.output_reply(connection, reply_frame(xid, zxid, outcome.err, &outcome.response));
                }
            }
        }
    }

    /// Marks the waiting request `xid` of `session_id`'s connection answered.
    fn answer(&mut self, session_id: i64, xid: i32, answer: Pending) {
        let Some(&connection) = self.clients.by_session.get(&session_id) else { return };
        let Some(entry) = self.clients.connections.get_mut(&connection) else { return };
        let waiting =
            entry.pending.iter_mut().find(|pending| matches!(pending, Pending::Waiting { xid: w } if *w == xid));
        if let Some(slot) = waiting {
            *slot = answer;
            self.drain(connection);
        }
    }

    /// A learner passes a request to its leader.
    fn forward(&mut self, message: PeerMessage) {
        if let Some(leader) = self.leader() {
            self.send(leader, message);
        }
    }

    /// A new txn was applied: wake its client and deliver watch notifications.
    pub(super) fn client_applied(&mut self, entry: &LogEntry, outcome: ApplyOutcome) {
        let header = entry.header;
        for (watcher, event) in &outcome.notifications {
            if self.clients.connections.contains_key(watcher) {
                self.output(*watcher, proto::encode_notification(header.zxid, event));
            }
        }
        let session_id = header.session_id;
        let Some(&connection) = self.clients.by_session.get(&session_id) else { return };
        match &entry.txn {
            Txn::CreateSession { .. } => {
                let Some(state) = self.clients.connections.get(&connection).map(|c| c.state.clone()) else { return };
                if let ConnectionState::AwaitingSession { session_id: awaited, timeout_ms, read_only } = state {
                    if awaited == session_id {
                        self.output(connection, session_granted(session_id, timeout_ms, read_only));
                        let entry = self.clients.connections.get_mut(&connection).expect("checked above");
                        entry.state = ConnectionState::Active { session_id, timeout_ms };
                    }
                }
            }
            Txn::CloseSession { .. } => {
                // The client that asked for the close gets its reply first; a session that
                // expired just loses its connection.
                let bytes = reply_frame(header.cxid, header.zxid, outcome.err, &outcome.response);
                self.answer(session_id, header.cxid, Pending::Ready(bytes));
                self.close_connection(connection);
            }
            _ => {
                let bytes = reply_frame(header.cxid, header.zxid, outcome.err, &outcome.response);
                self.answer(session_id, header.cxid, Pending::Ready(bytes));
            }
        }
    }

    /// A `sync` finished: every commit the leader had made when it arrived is applied.
    pub(super) fn sync_done(&mut self, session_id: i64, cxid: i32, path: String) {
        let answer = Pending::Answer { xid: cxid, err: ErrorCode::Ok, response: Response::Sync(SyncResponse { path }) };
        self.answer(session_id, cxid, answer);
    }

    /// The leader refused a request without making it a txn.
    pub(super) fn refused(&mut self, session_id: i64, cxid: i32, err: ErrorCode) {
        // A refused createSession leaves the client without a session: close it so it
        // retries, rather than letting it wait for an answer that will not come.
        if let Some(&connection) = self.clients.by_session.get(&session_id) {
            if matches!(self.clients.connections[&connection].state, ConnectionState::AwaitingSession { .. }) {
                self.close_connection(connection);
                return;
            }
        }
        self.answer(session_id, cxid, Pending::Answer { xid: cxid, err, response: Response::Empty });
    }

    /// A request from a local client or a learner goes to the leader's pipeline.
    pub(super) fn submit(&mut self, submission: Submission) {
        match &self.role {
            Role::Leading(_) => self.leader_submit(submission),
            Role::Learning(_) => {
                let message = match submission.kind {
                    SubmissionKind::CreateSession { timeout_ms } => {
                        PeerMessage::Request(ForwardedRequest::CreateSession {
                            session_id: submission.session_id,
                            timeout_ms,
                        })
                    }
                    // Only the leader submits other kinds; learners forward client frames.
                    SubmissionKind::Request { .. }
                    | SubmissionKind::ExpireSession
                    | SubmissionKind::DeleteContainer { .. } => return,
                };
                self.forward(message);
            }
            Role::Looking(_) | Role::Stopped { .. } => {}
        }
    }
}
