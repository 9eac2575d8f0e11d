//! Client connections: the handshake, sessions, request order and replies.
//!
//! Every connection keeps its requests in arrival order. A read is served at once unless an
//! earlier write (or `sync`) of the same connection is still waiting for its commit; then it
//! waits behind it, so a client always sees its own writes in the order it made them
//! (ZooKeeper's FIFO client order, kept by its `CommitProcessor`).

use core::net::IpAddr;
use std::collections::{BTreeMap, VecDeque};

use super::leader::ForLeader;
use super::shared::Shared;
use super::{ClientOutput, ConnectionId, Node, NodeConfig, Now, Role};
use crate::acl::{self, AuthConfig};
use crate::database::{ApplyOutcome, Database, Reader};
use crate::proto::{
    self, perms, Acl, Buffer, ConnectRequest, ConnectResponse, Id, OpCode, Record, ReplyHeader, Request, Response,
    SyncResponse, XID_PING,
};
use crate::request::Preparer;
use crate::sasl::Step;
use crate::session::{self, SessionConfig, SessionTable};
use crate::txn::LogEntry;
use crate::txn::Txn;
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

/// A reply, kept structured until it is encoded once for the wire (and its xid and zxid
/// recorded for `cons`).
#[derive(Clone, Debug)]
struct Reply {
    xid: i32,
    /// The zxid its header carries; `None` for an answer that carries no txn of its own (a
    /// finished sync, a refusal): it takes the last applied zxid when it leaves, so it is
    /// never older than a reply that left before it.
    zxid: Option<i64>,
    err: ErrorCode,
    response: Response,
}

/// A request waiting its turn on a connection.
#[derive(Clone, Debug)]
enum Pending {
    /// A write or sync whose outcome has not arrived.
    Waiting { xid: i32 },
    /// Ready to go once everything before it has gone.
    Answered(Answered),
}

/// A request whose answer is known, or a read that is answered when its turn comes.
#[derive(Clone, Debug)]
enum Answered {
    Reply(Reply),
    Read { xid: i32, request: Request },
}

#[derive(Clone, Debug)]
struct Connection {
    remote_ip: Option<IpAddr>,
    state: ConnectionState,
    auth_ids: Vec<Id>,
    /// The connection's SASL exchange.
    sasl: crate::sasl::DigestMd5,
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
                sasl: crate::sasl::DigestMd5::default(),
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

    /// Whether a connection may send requests under `enforce.auth`: always when it is off,
    /// else once it holds an identity of a required scheme.
    fn authentication_enforced_ok(&self, connection: ConnectionId) -> bool {
        let Some(schemes) = &self.auth.enforce_schemes else { return true };
        self.connections.get(&connection).is_some_and(|c| c.auth_ids.iter().any(|id| schemes.contains(&id.scheme)))
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

/// A DIGEST-MD5 nonce: unguessable without the server's secret, distinct per connection.
fn sasl_nonce(secret: u128, connection: ConnectionId) -> String {
    use base64::Engine;
    use sha1::{Digest, Sha1};
    let digest = Sha1::new().chain_update(secret.to_be_bytes()).chain_update(connection.to_be_bytes()).finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// A SASL reply as ZooKeeper writes it: zxid 0 and a token that may be null (length -1),
/// which a [`Buffer`] cannot say.
fn sasl_reply_frame(xid: i32, err: ErrorCode, token: Option<&[u8]>) -> Vec<u8> {
    let token_len = token.map_or(0, <[u8]>::len);
    let body_len = 4 + 8 + 4 + 4 + token_len;
    let mut frame = Vec::with_capacity(4 + body_len);
    frame.extend_from_slice(&(body_len as i32).to_be_bytes());
    frame.extend_from_slice(&xid.to_be_bytes());
    frame.extend_from_slice(&0i64.to_be_bytes());
    frame.extend_from_slice(&err.code().to_be_bytes());
    match token {
        Some(token) => {
            frame.extend_from_slice(&(token.len() as i32).to_be_bytes());
            frame.extend_from_slice(token);
        }
        None => frame.extend_from_slice(&(-1i32).to_be_bytes()),
    }
    frame
}

fn reply_frame(xid: i32, zxid: i64, err: ErrorCode, response: &Response) -> Vec<u8> {
    proto::encode_reply(ReplyHeader { xid, zxid, err: err.code() }, response)
}

impl Shared {
    fn output(&mut self, connection: ConnectionId, bytes: Vec<u8>) {
        self.client_out.push_back(ClientOutput::Frame { connection, bytes });
    }

    /// Encodes a reply, sends it and remembers its xid and zxid for `cons`.
    fn output_reply(&mut self, connection: ConnectionId, xid: i32, zxid: i64, err: ErrorCode, response: &Response) {
        if let Some(entry) = self.clients.connections.get_mut(&connection) {
            entry.stats.last_cxid = i64::from(xid);
            entry.stats.last_zxid = zxid;
        }
        self.output(connection, reply_frame(xid, zxid, err, response));
    }

    fn close_connection(&mut self, connection: ConnectionId) {
        if self.clients.connections.contains_key(&connection) {
            self.clients.disconnected(connection, &mut self.database);
            self.client_out.push_back(ClientOutput::Close { connection });
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
        sessions: Option<&mut SessionTable>,
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
        self.touch_session(sessions, session_id, timeout_ms);
        self.output(connection, session_granted(session_id, timeout_ms, read_only));
    }

    /// A session was used here: the leader's session table (`sessions`, on the leader) is
    /// touched at once; a learner tells its leader with its next ping.
    fn touch_session(&mut self, sessions: Option<&mut SessionTable>, session_id: i64, timeout_ms: i32) {
        match sessions {
            Some(sessions) => {
                sessions.touch_with_timeout(session_id, timeout_ms, self.now.monotonic_ms as i64);
            }
            None => {
                self.clients.touched.insert(session_id, timeout_ms);
            }
        }
    }

    /// The leader answered a revalidation: every connection waiting on it gets its answer.
    /// `sessions` is the leader's session table when this server leads.
    pub(super) fn revalidated(&mut self, session_id: i64, valid: bool, mut sessions: Option<&mut SessionTable>) {
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
                let sessions = sessions.as_deref_mut();
                self.session_revalidated(connection, session_id, timeout_ms, read_only, valid, sessions);
            }
        }
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
            let Some(Pending::Answered(_)) = entry.pending.front() else { return };
            let Some(Pending::Answered(answered)) = entry.pending.pop_front() else { return };
            let (arrived_ms, op) = entry.arrived_ms.pop_front().expect("in step with pending");
            let latency_ms = self.now.monotonic_ms.saturating_sub(arrived_ms);
            self.clients.latency.record(latency_ms);
            entry.stats.last_op = op;
            entry.stats.last_latency_ms = latency_ms;
            entry.stats.last_response_ms = self.now.wall_ms;
            entry.stats.latency.record(latency_ms);
            match answered {
                Answered::Reply(Reply { xid, zxid, err, response }) => {
                    let zxid = zxid.unwrap_or_else(|| self.database.last_processed_zxid());
                    self.output_reply(connection, xid, zxid, err, &response);
                }
                Answered::Read { xid, request } => {
                    let zxid = self.database.last_processed_zxid();
                    if matches!(request, Request::Ping) {
                        self.output_reply(connection, XID_PING, zxid, ErrorCode::Ok, &Response::Empty);
                        continue;
                    }
                    let auth_ids = entry.auth_ids.clone();
                    let reader = Reader { watcher: connection, session_id, auth_ids: &auth_ids };
                    let outcome = self.database.read(&reader, &request);
                    for event in outcome.events {
                        self.output(connection, proto::encode_notification(-1, &event));
                    }
                    self.output_reply(connection, xid, zxid, outcome.err, &outcome.response);
                }
            }
        }
    }

    /// Marks the waiting request `xid` of `session_id`'s connection answered.
    fn answer(&mut self, session_id: i64, reply: Reply) {
        let Some(&connection) = self.clients.by_session.get(&session_id) else { return };
        let Some(entry) = self.clients.connections.get_mut(&connection) else { return };
        let waiting =
            entry.pending.iter_mut().find(|pending| matches!(pending, Pending::Waiting { xid } if *xid == reply.xid));
        if let Some(slot) = waiting {
            *slot = Pending::Answered(Answered::Reply(reply));
            self.drain(connection);
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
                let reply =
                    Reply { xid: header.cxid, zxid: Some(header.zxid), err: outcome.err, response: outcome.response };
                self.answer(session_id, reply);
                self.close_connection(connection);
            }
            _ => {
                let reply =
                    Reply { xid: header.cxid, zxid: Some(header.zxid), err: outcome.err, response: outcome.response };
                self.answer(session_id, reply);
            }
        }
    }

    /// A `sync` finished: every commit the leader had made when it arrived is applied.
    pub(super) fn sync_done(&mut self, session_id: i64, cxid: i32, path: String) {
        let reply =
            Reply { xid: cxid, zxid: None, err: ErrorCode::Ok, response: Response::Sync(SyncResponse { path }) };
        self.answer(session_id, reply);
    }

    /// The leader refused a request without making it a txn. `ConnectionLoss` means the
    /// leader could not take it at all: the connection is closed, so the client reports
    /// CONNECTIONLOSS and reconnects, with its session, to a server that can serve it.
    pub(super) fn refused(&mut self, session_id: i64, cxid: i32, err: ErrorCode) {
        // A refused createSession leaves the client without a session: close it so it
        // retries, rather than letting it wait for an answer that will not come.
        if let Some(&connection) = self.clients.by_session.get(&session_id) {
            let state = &self.clients.connections[&connection].state;
            if err == ErrorCode::ConnectionLoss || matches!(state, ConnectionState::AwaitingSession { .. }) {
                self.close_connection(connection);
                return;
            }
        }
        self.answer(session_id, Reply { xid: cxid, zxid: None, err, response: Response::Empty });
    }
}

impl Node {
    pub(super) fn client_frame(&mut self, connection: ConnectionId, frame: &[u8]) {
        let Some(state) = self.shared.clients.connections.get(&connection).map(|c| c.state.clone()) else { return };
        match state {
            ConnectionState::AwaitingConnect => self.client_connect(connection, frame),
            // Clients wait for the handshake's answer before sending anything else.
            ConnectionState::AwaitingSession { .. } | ConnectionState::AwaitingRevalidation { .. } => {
                self.shared.close_connection(connection)
            }
            ConnectionState::Active { session_id, timeout_ms } => {
                self.client_request(connection, session_id, timeout_ms, frame);
            }
        }
    }

    fn client_connect(&mut self, connection: ConnectionId, frame: &[u8]) {
        let Ok(request) = ConnectRequest::from_bytes(frame) else {
            self.shared.close_connection(connection);
            return;
        };
        // Only a serving server takes sessions; a client that has seen a newer zxid than
        // this server has applied must try another (ZooKeeper refuses it the same way), or
        // it would see time go backwards.
        if !self.is_serving() || request.last_zxid_seen > self.shared.database.last_processed_zxid() {
            self.shared.close_connection(connection);
            return;
        }
        let timeout_ms = self.shared.clients.session_config.negotiate_timeout(request.time_out);
        let read_only = request.read_only.map(|_| false);
        if request.session_id == 0 {
            let session_id = self.shared.clients.next_session_id;
            self.shared.clients.next_session_id += 1;
            let entry = self.shared.clients.connections.get_mut(&connection).expect("checked above");
            entry.state = ConnectionState::AwaitingSession { session_id, timeout_ms, read_only };
            self.shared.clients.by_session.insert(session_id, connection);
            self.ask_leader(ForLeader::CreateSession { session_id, timeout_ms });
            return;
        }
        let session_id = request.session_id;
        let password = session::session_password(session::ZOOKEEPER_SUPER_SECRET, session_id);
        if request.passwd.0 != password {
            self.shared.session_refused(connection, read_only);
            return;
        }
        // The leader's session table decides, once the leader has confirmed it still leads.
        let entry = self.shared.clients.connections.get_mut(&connection).expect("checked above");
        entry.state = ConnectionState::AwaitingRevalidation { session_id, timeout_ms, read_only };
        self.ask_leader(ForLeader::Revalidate { session_id });
    }

    fn touch_session(&mut self, session_id: i64, timeout_ms: i32) {
        let sessions = match &mut self.role {
            Role::Leading(leader) => leader.sessions_mut(),
            _ => None,
        };
        self.shared.touch_session(sessions, session_id, timeout_ms);
    }

    /// One SASL token (opcode 102), answered at once with the request's xid and zxid 0, as
    /// ZooKeeper's processSasl: a challenge, the final token with the identity added, or on
    /// failure AuthFailed (SessionClosedRequireSaslAuth when SASL is required) and the
    /// connection closed, unless `allowSaslFailedClients` lets it stay without an identity.
    fn client_sasl(&mut self, connection: ConnectionId, xid: i32, token: &[u8]) {
        let clients = &mut self.shared.clients;
        let Some(config) = &clients.auth.sasl else {
            self.shared.output(connection, sasl_reply_frame(xid, ErrorCode::Ok, None));
            return;
        };
        let nonce = sasl_nonce(clients.auth.nonce_secret, connection);
        let required = clients.auth.enforce_schemes.as_ref().is_some_and(|schemes| schemes.iter().any(|s| s == "sasl"));
        let Some(entry) = clients.connections.get_mut(&connection) else { return };
        let (err, token) = match entry.sasl.step(&config.users, token, nonce) {
            Step::Challenge(challenge) => (ErrorCode::Ok, Some(challenge)),
            Step::Success { token, user } => {
                let id = crate::sasl::authorization_id(config, &user);
                let mut ids = vec![Id { scheme: acl::SCHEME_SASL.to_owned(), id: id.clone() }];
                if config.super_users.contains(&id) {
                    ids.push(Id { scheme: acl::SCHEME_SUPER.to_owned(), id: String::new() });
                }
                match acl::add_auth_ids(&mut entry.auth_ids, ids) {
                    Ok(()) => (ErrorCode::Ok, Some(token)),
                    Err(err) => (err, None),
                }
            }
            Step::Failure(_) if config.allow_failed_clients && !required => (ErrorCode::Ok, None),
            Step::Failure(_) if required => (ErrorCode::SessionClosedRequireSaslAuth, None),
            Step::Failure(_) => (ErrorCode::AuthFailed, None),
        };
        self.shared.output(connection, sasl_reply_frame(xid, err, token.as_deref()));
        if err != ErrorCode::Ok {
            self.shared.close_connection(connection);
        }
    }

    /// Identities the driver established (see [`Node::handle_client_identified`]).
    pub(super) fn client_identified(&mut self, connection: ConnectionId, ids: Vec<Id>) {
        if let Some(entry) = self.shared.clients.connections.get_mut(&connection) {
            if acl::add_auth_ids(&mut entry.auth_ids, ids).is_err() {
                self.shared.close_connection(connection);
            }
        }
    }

    fn client_request(&mut self, connection: ConnectionId, session_id: i64, timeout_ms: i32, frame: &[u8]) {
        let Ok(decoded) = proto::decode_request(frame) else {
            self.shared.close_connection(connection);
            return;
        };
        self.touch_session(session_id, timeout_ms);
        let xid = decoded.header.xid;
        let request = match decoded.body {
            Ok(request) => request,
            Err(error) => {
                let zxid = Some(self.shared.database.last_processed_zxid());
                let reply = Reply { xid, zxid, err: error.error_code(), response: Response::Empty };
                self.shared.enqueue(connection, "NA", Pending::Answered(Answered::Reply(reply)));
                return;
            }
        };
        if let Request::Sasl(sasl) = &request {
            self.client_sasl(connection, xid, &sasl.token.0);
            return;
        }
        if !matches!(request, Request::Auth(_)) && !self.shared.clients.authentication_enforced_ok(connection) {
            // ZooKeeper's AuthenticationHelper: the header alone, then the connection closes.
            let header = ReplyHeader { xid, zxid: 0, err: ErrorCode::SessionClosedRequireSaslAuth.code() };
            self.shared.output(connection, proto::encode_reply(header, &Response::Empty));
            self.shared.close_connection(connection);
            return;
        }
        if let Request::Auth(packet) = &request {
            // Auth is answered at once, outside the request order, with the request's own
            // xid, as ZooKeeper does (the Java and C clients send -4, go-zookeeper an
            // ordinary xid it waits on); a failed login closes the connection.
            let remote_ip = self.shared.clients.connections[&connection].remote_ip;
            match acl::authenticate(&self.shared.clients.auth, &packet.scheme, &packet.auth.0, remote_ip) {
                Ok(ids) => {
                    let entry = self.shared.clients.connections.get_mut(&connection).expect("checked above");
                    let err = match acl::add_auth_ids(&mut entry.auth_ids, ids) {
                        Ok(()) => ErrorCode::Ok,
                        Err(err) => err,
                    };
                    self.shared.output(connection, reply_frame(xid, 0, err, &Response::Empty));
                }
                Err(err) => {
                    self.shared.output(connection, reply_frame(xid, 0, err, &Response::Empty));
                    self.shared.close_connection(connection);
                }
            }
            return;
        }
        if Preparer::is_write(&request) || matches!(request, Request::Sync(_)) {
            if !self.shared.enqueue(connection, op_name(request.op_code()), Pending::Waiting { xid }) {
                return;
            }
            let auth_ids = self.shared.clients.connections[&connection].auth_ids.clone();
            self.ask_leader(ForLeader::Client { session_id, xid, request, frame, auth_ids });
            return;
        }
        self.shared.enqueue(connection, op_name(request.op_code()), Pending::Answered(Answered::Read { xid, request }));
    }

    /// The one way a client's request reaches the leader: a leader takes it at once
    /// ([`super::leader::Leader::request`]); a learner sends it to its leader, which takes it in
    /// `Leader::forwarded`. A node with no leader drops it.
    fn ask_leader(&mut self, request: ForLeader<'_>) {
        match &mut self.role {
            Role::Leading(leader) => leader.request(&mut self.shared, request),
            Role::Learning(learner) => {
                let leader = learner.leader;
                self.shared.send(leader, request.into_message());
            }
            Role::Looking(_) | Role::Stopped { .. } => {}
        }
    }
}
