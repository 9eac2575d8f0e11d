//! A ZooKeeper client as a state machine: it speaks the real wire protocol (encoded
//! connect requests and request frames out, decoded replies in), pings when idle, gives up
//! on a silent connection, reconnects to another server with the same session and the last
//! zxid it saw, learns that its session expired, and runs a workload drawn from the seed.
//!
//! Like a server, a client owns no I/O: the world feeds it frames, closures and timer
//! expiries and carries out its [`ClientAction`]s. Everything it does and sees goes into
//! the run's [`History`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use zk_core::node::ConnectionId;
use zk_core::proto::{
    self, AddWatchMode, Buffer, ConnectRequest, ConnectResponse, EventType, MultiResult, OpCode, Record, Reply,
    Request, Response, SetWatches, SetWatches2, WatcherEvent, XID_PING, XID_SET_WATCHES,
};
use zk_core::zab::ServerId;
use zk_core::ErrorCode;

use crate::config::PlantedBug;
use crate::history::{ClientId, History, ObservationKind, OpKind, Outcome, RecipeKind, Value, WatchKind};
use crate::recipe::Recipe;
use crate::rng::SimRng;

mod workload;

/// What every client of a run shares.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// The servers a client may connect to (voters and observers).
    pub servers: Vec<ServerId>,
    /// The session timeout a client asks for.
    pub session_timeout_ms: i32,
    /// Operations a client keeps outstanding at once, at most.
    pub pipeline_max: usize,
    /// The number of single-znode registers `/k0..` that the linearizability checker reads.
    pub keys: usize,
    /// The longest pause between two operations of one client.
    pub think_ms_max: u64,
    /// A planted client bug (checker tests only).
    pub planted: Option<PlantedBug>,
    /// Whether clients run the lock and election recipes beside their workload.
    pub recipes: bool,
    pub workload: crate::config::Workload,
}

/// Something the world must do for a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAction {
    /// Open a connection to `server` and send the (length-prefixed) connect request.
    Open { connection: ConnectionId, server: ServerId, frame: Vec<u8> },
    /// Send a length-prefixed frame.
    Send { connection: ConnectionId, frame: Vec<u8> },
    /// Close the connection.
    Close { connection: ConnectionId },
}

/// What the client is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The safety phase: the full workload.
    Work,
    /// The liveness phase: complete a write and a sync+read, then keep working.
    Liveness { since_ms: u64, write_ms: Option<u64>, read_ms: Option<u64> },
    /// The end of the run: keep the session alive, start nothing new.
    Quiet,
}

#[derive(Clone, Debug)]
struct Session {
    id: i64,
    password: Vec<u8>,
}

#[derive(Clone, Debug)]
enum Link {
    Idle { retry_ms: u64 },
    Connecting { connection: ConnectionId, server: ServerId, deadline_ms: u64 },
    Connected { connection: ConnectionId, server: ServerId, timeout_ms: i32, last_heard_ms: u64, last_sent_ms: u64 },
}

/// Why a request was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Ping,
    /// The request of operation `index` (the read half, for a sync+read).
    Op(usize),
    /// The sync half of sync+read operation `index`.
    SyncHalf(usize),
    /// The setWatches that re-registers the client's watches on a new connection.
    SetWatches,
}

#[derive(Clone, Debug)]
struct InFlight {
    xid: i32,
    op: OpCode,
    purpose: Purpose,
    /// The watch the request asks for, registered when its reply allows.
    watch: Option<WatchRequest>,
}

/// A watch asked for by a read (`mode` None) or by addWatch.
#[derive(Clone, Debug)]
struct WatchRequest {
    path: String,
    mode: Option<AddWatchMode>,
}

/// The watches a client holds, in the five tables of ZooKeeper's client (`ZKWatchManager`):
/// what it re-registers with setWatches on a new connection of its session, and what a
/// notification removes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientWatches {
    pub tables: BTreeMap<WatchKind, BTreeSet<String>>,
}

impl ClientWatches {
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(BTreeSet::is_empty)
    }

    fn insert(&mut self, kind: WatchKind, path: &str) {
        self.tables.entry(kind).or_default().insert(path.to_owned());
    }

    fn paths(&self, kind: WatchKind) -> Vec<String> {
        self.tables.get(&kind).map(|paths| paths.iter().cloned().collect()).unwrap_or_default()
    }

    /// Every watch, as (kind, path).
    pub fn all(&self) -> Vec<(WatchKind, String)> {
        self.tables.iter().flat_map(|(kind, paths)| paths.iter().map(move |path| (*kind, path.clone()))).collect()
    }

    /// A notification consumes the one-time watches it answers, as `ZKWatchManager`'s
    /// `materialize` does: created and data-changed events the data and exist watches on
    /// the path, children-changed events the child watch, a deletion all three.
    /// Persistent watches stay.
    fn fired(&mut self, event_type: EventType, path: &str) {
        let kinds: &[WatchKind] = match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => &[WatchKind::Data, WatchKind::Exist],
            EventType::NodeChildrenChanged => &[WatchKind::Child],
            EventType::NodeDeleted => &[WatchKind::Data, WatchKind::Exist, WatchKind::Child],
            _ => &[],
        };
        for kind in kinds {
            if let Some(paths) = self.tables.get_mut(kind) {
                paths.remove(path);
            }
        }
    }

    /// The setWatches request that re-registers every watch: the old setWatches (opcode
    /// 101) when no persistent watch is held, setWatches2 (105) otherwise, as ZooKeeper's
    /// client chooses (`ClientCnxn.primeConnection`).
    fn set_watches_request(&self, relative_zxid: i64) -> Request {
        let persistent_watches = self.paths(WatchKind::Persistent);
        let persistent_recursive_watches = self.paths(WatchKind::PersistentRecursive);
        let (data_watches, exist_watches, child_watches) =
            (self.paths(WatchKind::Data), self.paths(WatchKind::Exist), self.paths(WatchKind::Child));
        if persistent_watches.is_empty() && persistent_recursive_watches.is_empty() {
            Request::SetWatches(SetWatches { relative_zxid, data_watches, exist_watches, child_watches })
        } else {
            Request::SetWatches2(SetWatches2 {
                relative_zxid,
                data_watches,
                exist_watches,
                child_watches,
                persistent_watches,
                persistent_recursive_watches,
            })
        }
    }
}

/// One client.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: ClientId,
    settings: ClientSettings,
    link: Link,
    session: Option<Session>,
    last_zxid_seen: i64,
    next_xid: i32,
    in_flight: VecDeque<InFlight>,
    /// sync+read operations whose sync failed, with the error.
    syncs_failed: BTreeMap<usize, ErrorCode>,
    /// The operation closing the session, while its reply is awaited.
    closing: Option<usize>,
    next_op_ms: u64,
    connections_opened: u64,
    actions: VecDeque<ClientAction>,
    pub mode: Mode,
    values_written: u64,
    /// The last version seen of each register, for conditional writes.
    known_versions: BTreeMap<String, i32>,
    /// Operations of this client not yet complete.
    open_ops: BTreeSet<usize>,
    /// The watches the client holds (dropped with its session).
    pub watches: ClientWatches,
    /// The recipe the client runs beside its workload, if any.
    pub recipe: Option<Recipe>,
    /// The operation the recipe is waiting on.
    recipe_op: Option<usize>,
}

/// Replies with these errors say something definite about the state they were decided in.
pub fn is_state_error(err: ErrorCode) -> bool {
    matches!(err, ErrorCode::NoNode | ErrorCode::NodeExists | ErrorCode::BadVersion | ErrorCode::NotEmpty)
}

impl Client {
    pub fn new(id: ClientId, settings: ClientSettings, now_ms: u64, rng: &mut SimRng) -> Client {
        assert!(!settings.servers.is_empty(), "a client needs servers to talk to");
        assert!(settings.pipeline_max > 0);
        let retry_ms = now_ms + rng.range(0, 50);
        // Even clients take part in the lock, odd ones in the election.
        let recipe = settings.recipes.then(|| {
            let kind = if id % 2 == 0 { RecipeKind::Lock } else { RecipeKind::Election };
            Recipe::new(kind, id, now_ms, rng, settings.planted == Some(PlantedBug::RecipeOrderByName))
        });
        Client {
            id,
            settings,
            link: Link::Idle { retry_ms },
            session: None,
            last_zxid_seen: 0,
            next_xid: 1,
            in_flight: VecDeque::new(),
            syncs_failed: BTreeMap::new(),
            closing: None,
            next_op_ms: now_ms,
            connections_opened: 0,
            actions: VecDeque::new(),
            mode: Mode::Work,
            values_written: 0,
            known_versions: BTreeMap::new(),
            open_ops: BTreeSet::new(),
            watches: ClientWatches::default(),
            recipe,
            recipe_op: None,
        }
    }

    // ---- getters ----

    pub fn session_id(&self) -> Option<i64> {
        self.session.as_ref().map(|session| session.id)
    }

    pub fn last_zxid_seen(&self) -> i64 {
        self.last_zxid_seen
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.link, Link::Connected { .. })
    }

    /// The connection the client is using or opening.
    pub fn connection(&self) -> Option<ConnectionId> {
        match self.link {
            Link::Idle { .. } => None,
            Link::Connecting { connection, .. } | Link::Connected { connection, .. } => Some(connection),
        }
    }

    // ---- outputs ----

    #[must_use]
    pub fn poll_action(&mut self) -> Option<ClientAction> {
        self.actions.pop_front()
    }

    /// When [`Client::handle_timeout`] should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> u64 {
        match self.link {
            Link::Idle { retry_ms } => retry_ms,
            Link::Connecting { deadline_ms, .. } => deadline_ms,
            Link::Connected { timeout_ms, last_heard_ms, last_sent_ms, .. } => {
                let mut deadline =
                    (last_heard_ms + read_timeout_ms(timeout_ms)).min(last_sent_ms + ping_interval_ms(timeout_ms));
                if self.may_issue() {
                    deadline = deadline.min(self.next_op_ms);
                }
                deadline
            }
        }
    }

    // ---- inputs ----

    /// Timers: reconnecting, giving up on a connection attempt or a silent server, pings,
    /// and the next operation of the workload.
    pub fn handle_timeout(&mut self, now_ms: u64, rng: &mut SimRng, history: &mut History) {
        match self.link.clone() {
            Link::Idle { retry_ms } if now_ms >= retry_ms => self.connect(now_ms, rng),
            Link::Idle { .. } => {}
            Link::Connecting { connection, deadline_ms, .. } if now_ms >= deadline_ms => {
                self.actions.push_back(ClientAction::Close { connection });
                self.lose_connection(now_ms, rng, history);
            }
            Link::Connecting { .. } => {}
            Link::Connected { connection, timeout_ms, last_heard_ms, last_sent_ms, .. } => {
                if now_ms >= last_heard_ms + read_timeout_ms(timeout_ms) {
                    // ZooKeeper's client gives up on a server it has not heard from in two
                    // thirds of the session timeout, and tries another.
                    self.actions.push_back(ClientAction::Close { connection });
                    self.lose_connection(now_ms, rng, history);
                    return;
                }
                if now_ms >= last_sent_ms + ping_interval_ms(timeout_ms) {
                    self.send(Request::Ping, Purpose::Ping, None, now_ms, history);
                }
                if self.may_issue() && now_ms >= self.next_op_ms {
                    self.issue(now_ms, rng, history);
                    self.next_op_ms = now_ms + rng.range(1, self.settings.think_ms_max);
                }
            }
        }
    }

    /// A frame (with its length prefix) arrived on `connection`.
    pub fn handle_frame(
        &mut self,
        connection: ConnectionId,
        frame: &[u8],
        now_ms: u64,
        rng: &mut SimRng,
        history: &mut History,
    ) {
        if self.connection() != Some(connection) {
            return;
        }
        let body = match proto::split_frame(frame, usize::MAX >> 1) {
            Ok(Some((body, used))) if used == frame.len() => body,
            other => {
                let problem = format!("not one whole frame: {other:?}");
                self.protocol_error(connection, problem, now_ms, rng, history);
                return;
            }
        };
        match self.link.clone() {
            Link::Connecting { server, .. } => self.connect_response(connection, server, body, now_ms, rng, history),
            Link::Connected { .. } => self.reply(connection, body, now_ms, rng, history),
            Link::Idle { .. } => unreachable!("no connection while idle"),
        }
    }

    /// The connection closed (the server closed it, or it broke).
    pub fn handle_closed(&mut self, connection: ConnectionId, now_ms: u64, rng: &mut SimRng, history: &mut History) {
        if self.connection() == Some(connection) {
            self.lose_connection(now_ms, rng, history);
        }
    }

    // ---- the connection ----

    fn connect(&mut self, now_ms: u64, rng: &mut SimRng) {
        let server = *rng.pick(&self.settings.servers);
        self.connections_opened += 1;
        let connection = ((self.id as u64 + 1) << 32) | self.connections_opened;
        let (session_id, password) = match &self.session {
            Some(session) => (session.id, session.password.clone()),
            None => (0, vec![0; 16]),
        };
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid_seen,
            time_out: self.settings.session_timeout_ms,
            session_id,
            passwd: Buffer(password),
            read_only: Some(false),
        };
        self.actions.push_back(ClientAction::Open { connection, server, frame: proto::encode_framed(&request) });
        // ZooKeeper's connect timeout: the session timeout shared among the servers.
        let servers = self.settings.servers.len() as u64;
        let connect_timeout_ms = (self.settings.session_timeout_ms as u64 / servers).max(100);
        self.link = Link::Connecting { connection, server, deadline_ms: now_ms + connect_timeout_ms };
    }

    fn connect_response(
        &mut self,
        connection: ConnectionId,
        server: ServerId,
        body: &[u8],
        now_ms: u64,
        rng: &mut SimRng,
        history: &mut History,
    ) {
        let response = match ConnectResponse::from_bytes(body) {
            Ok(response) => response,
            Err(error) => {
                self.protocol_error(connection, format!("connect response: {error}"), now_ms, rng, history);
                return;
            }
        };
        if response.time_out <= 0 || response.session_id == 0 {
            // The session is gone: ZooKeeper's client reports SESSION_EXPIRED. This one
            // starts a new session, as an application would.
            if let Some(session) = self.session.take() {
                history.observe(now_ms, self.id, ObservationKind::SessionExpired { session_id: session.id });
                self.session_ended(now_ms, rng, history);
            }
            self.actions.push_back(ClientAction::Close { connection });
            self.lose_connection(now_ms, rng, history);
            return;
        }
        if let Some(session) = &self.session {
            if session.id != response.session_id {
                let problem = format!("asked for session {:#x}, got {:#x}", session.id, response.session_id);
                self.protocol_error(connection, problem, now_ms, rng, history);
                return;
            }
        }
        let resumed = self.session.is_some();
        self.session = Some(Session { id: response.session_id, password: response.passwd.0 });
        history.observe(
            now_ms,
            self.id,
            ObservationKind::Connected {
                connection,
                server,
                session_id: response.session_id,
                last_zxid_seen: self.last_zxid_seen,
            },
        );
        self.link = Link::Connected {
            connection,
            server,
            timeout_ms: response.time_out,
            last_heard_ms: now_ms,
            last_sent_ms: now_ms,
        };
        self.next_op_ms = self.next_op_ms.max(now_ms);
        // ZooKeeper's clients re-register their watches on every new connection of a session
        // before anything else goes out (the C client right after the connect response, as
        // here), relative to the last zxid they saw, so that the server fires at once the
        // watches whose nodes changed meanwhile.
        if resumed && !self.watches.is_empty() && self.settings.planted != Some(PlantedBug::WatchesNotReRegistered) {
            let relative_zxid = self.last_zxid_seen;
            let watches = self.watches.all();
            history.observe(now_ms, self.id, ObservationKind::WatchesReset { connection, relative_zxid, watches });
            let request = self.watches.set_watches_request(relative_zxid);
            self.send(request, Purpose::SetWatches, None, now_ms, history);
        }
    }

    /// The session is gone: its watches with it, and whatever its recipe held.
    fn session_ended(&mut self, now_ms: u64, rng: &mut SimRng, history: &mut History) {
        self.watches = ClientWatches::default();
        self.recipe_op = None;
        if let Some(recipe) = &mut self.recipe {
            recipe.session_ended(now_ms, rng, history);
        }
    }

    fn protocol_error(
        &mut self,
        connection: ConnectionId,
        problem: String,
        now_ms: u64,
        rng: &mut SimRng,
        history: &mut History,
    ) {
        history.observe(now_ms, self.id, ObservationKind::Undecodable { connection, problem });
        self.actions.push_back(ClientAction::Close { connection });
        self.lose_connection(now_ms, rng, history);
    }

    /// Everything outstanding on the connection has an unknown outcome now; try another
    /// server after a short back-off.
    fn lose_connection(&mut self, now_ms: u64, rng: &mut SimRng, history: &mut History) {
        if let Some(connection) = self.connection() {
            history.observe(now_ms, self.id, ObservationKind::ConnectionLost { connection });
        }
        for in_flight in std::mem::take(&mut self.in_flight) {
            if let Purpose::Op(index) = in_flight.purpose {
                self.finish(index, Outcome::Unknown, None, now_ms, rng, history);
            }
        }
        // A sync+read whose read was never sent is unknown too.
        for index in std::mem::take(&mut self.open_ops) {
            history.complete(index, Outcome::Unknown, None, now_ms);
        }
        if self.recipe_op.take().is_some() {
            if let Some(recipe) = &mut self.recipe {
                recipe.handle_lost_reply();
            }
        }
        self.syncs_failed.clear();
        self.closing = None;
        self.link = Link::Idle { retry_ms: now_ms + rng.range(5, 100) };
    }

    // ---- requests and replies ----

    fn may_issue(&self) -> bool {
        let outstanding = self.in_flight.iter().filter(|in_flight| in_flight.purpose != Purpose::Ping).count();
        matches!(self.link, Link::Connected { .. })
            && self.session.is_some()
            && self.closing.is_none()
            && self.mode != Mode::Quiet
            && outstanding < self.settings.pipeline_max
    }

    fn send(
        &mut self,
        request: Request,
        purpose: Purpose,
        watch: Option<WatchRequest>,
        now_ms: u64,
        history: &mut History,
    ) -> i32 {
        let Link::Connected { connection, ref mut last_sent_ms, .. } = self.link else {
            unreachable!("requests go out on a connected link only")
        };
        *last_sent_ms = now_ms;
        let xid = if purpose == Purpose::Ping {
            XID_PING
        } else if purpose == Purpose::SetWatches {
            XID_SET_WATCHES
        } else {
            let xid = self.next_xid;
            self.next_xid += 1;
            xid
        };
        let op = request.op_code();
        self.in_flight.push_back(InFlight { xid, op, purpose, watch });
        history.observe(now_ms, self.id, ObservationKind::Sent { connection, xid, op });
        self.actions.push_back(ClientAction::Send { connection, frame: proto::encode_request(xid, &request) });
        xid
    }

    fn reply(&mut self, connection: ConnectionId, body: &[u8], now_ms: u64, rng: &mut SimRng, history: &mut History) {
        let in_flight = &self.in_flight;
        let decoded = proto::decode_reply(body, |xid| {
            in_flight.iter().find(|pending| pending.xid == xid).map(|pending| pending.op)
        });
        let (header, reply) = match decoded {
            Ok(decoded) => decoded,
            Err(error) => {
                self.protocol_error(connection, format!("reply: {error}"), now_ms, rng, history);
                return;
            }
        };
        if let Link::Connected { ref mut last_heard_ms, .. } = self.link {
            *last_heard_ms = now_ms;
        }
        let response = match reply {
            Reply::Notification(event) => {
                self.notification(connection, header.zxid, event, now_ms, history);
                return;
            }
            Reply::Response(_, response) => response,
        };
        history.observe(
            now_ms,
            self.id,
            ObservationKind::Reply { connection, xid: header.xid, zxid: header.zxid, err: header.err },
        );
        if header.zxid > 0 {
            self.last_zxid_seen = self.last_zxid_seen.max(header.zxid);
        }
        let Some(position) = self.in_flight.iter().position(|pending| pending.xid == header.xid) else {
            // A ping reply nobody waits for (pings are not always outstanding).
            return;
        };
        let answered = self.in_flight.remove(position).expect("position is in range");
        let err = ErrorCode::from_code(header.err).unwrap_or(ErrorCode::SystemError);
        self.register_watch(connection, &answered, err, header.zxid, now_ms, history);
        match answered.purpose {
            Purpose::Ping | Purpose::SetWatches => {}
            Purpose::SyncHalf(index) => {
                if err != ErrorCode::Ok {
                    self.syncs_failed.insert(index, err);
                }
            }
            Purpose::Op(index) => {
                let outcome = self.outcome(index, err, response, history);
                self.finish(index, outcome, Some(header.zxid), now_ms, rng, history);
                if self.closing == Some(index) {
                    self.closing = None;
                    if err == ErrorCode::Ok {
                        if let Some(session) = self.session.take() {
                            history.observe(now_ms, self.id, ObservationKind::SessionClosed { session_id: session.id });
                            self.session_ended(now_ms, rng, history);
                        }
                        self.actions.push_back(ClientAction::Close { connection });
                        self.lose_connection(now_ms, rng, history);
                    }
                }
            }
        }
    }

    /// A watch notification: it consumes the one-time watches it answers, and may be what
    /// the recipe waits for.
    fn notification(
        &mut self,
        connection: ConnectionId,
        zxid: i64,
        event: WatcherEvent,
        now_ms: u64,
        history: &mut History,
    ) {
        let Some(event_type) = EventType::from_code(event.event_type) else {
            let problem = format!("a notification of unknown type {}", event.event_type);
            history.observe(now_ms, self.id, ObservationKind::Undecodable { connection, problem });
            return;
        };
        let path = event.path;
        history.observe(
            now_ms,
            self.id,
            ObservationKind::WatchEvent { connection, zxid, event_type, path: path.clone() },
        );
        self.watches.fired(event_type, &path);
        if let Some(recipe) = &mut self.recipe {
            recipe.handle_event(event_type, &path);
        }
    }

    /// Registers the watch a reply leaves, as ZooKeeper's client does
    /// (`WatchRegistration.register`): on success, and for exists also when the node is
    /// missing (an exist watch, which its creation fires).
    fn register_watch(
        &mut self,
        connection: ConnectionId,
        answered: &InFlight,
        err: ErrorCode,
        zxid: i64,
        now_ms: u64,
        history: &mut History,
    ) {
        let Some(watch) = &answered.watch else { return };
        let kind = match (answered.op, err) {
            (OpCode::GetData | OpCode::Exists, ErrorCode::Ok) => WatchKind::Data,
            (OpCode::Exists, ErrorCode::NoNode) => WatchKind::Exist,
            (OpCode::GetChildren | OpCode::GetChildren2, ErrorCode::Ok) => WatchKind::Child,
            (OpCode::AddWatch, ErrorCode::Ok) => match watch.mode {
                Some(AddWatchMode::PersistentRecursive) => WatchKind::PersistentRecursive,
                _ => WatchKind::Persistent,
            },
            _ => return,
        };
        self.watches.insert(kind, &watch.path);
        history.observe(
            now_ms,
            self.id,
            ObservationKind::WatchRegistered { connection, kind, path: watch.path.clone(), zxid },
        );
    }

    fn outcome(&mut self, index: usize, err: ErrorCode, response: Response, history: &History) -> Outcome {
        let kind = &history.operations[index].kind;
        if let Some(sync_err) = self.syncs_failed.remove(&index) {
            return Outcome::Err(sync_err);
        }
        if err != ErrorCode::Ok {
            return Outcome::Err(err);
        }
        let value = match response {
            Response::Create(created) => Value::Path(created.path),
            Response::Create2(created) => Value::Path(created.path),
            Response::SetData(set) => {
                if let Some(path) = kind.path() {
                    self.known_versions.insert(path.to_owned(), set.stat.version);
                }
                Value::Version(set.stat.version)
            }
            Response::GetData(data) => {
                if let Some(path) = kind.path() {
                    self.known_versions.insert(path.to_owned(), data.stat.version);
                }
                Value::Data { data: data.data.unwrap_or_default(), version: data.stat.version }
            }
            Response::Exists(exists) => Value::Exists { version: exists.stat.version },
            Response::GetChildren(children) => Value::Children(children.children),
            Response::Multi(results) => Value::Multi(
                results
                    .iter()
                    .map(|result| match result {
                        MultiResult::Error(code) => code.code(),
                        _ => 0,
                    })
                    .collect(),
            ),
            _ => Value::None,
        };
        Outcome::Ok(value)
    }

    fn finish(
        &mut self,
        index: usize,
        outcome: Outcome,
        zxid: Option<i64>,
        now_ms: u64,
        rng: &mut SimRng,
        history: &mut History,
    ) {
        if !self.open_ops.remove(&index) {
            return;
        }
        if self.recipe_op == Some(index) {
            self.recipe_op = None;
            if let Some(recipe) = &mut self.recipe {
                recipe.handle_reply(&outcome, now_ms, rng, history);
            }
        }
        if let Mode::Liveness { since_ms, ref mut write_ms, ref mut read_ms } = self.mode {
            let operation = &history.operations[index];
            let definite = match &outcome {
                Outcome::Ok(_) => true,
                Outcome::Err(err) => is_state_error(*err),
                Outcome::Pending | Outcome::Unknown => false,
            };
            if definite && operation.invoke_ms >= since_ms {
                match operation.kind {
                    OpKind::SyncRead { .. } => *read_ms = read_ms.or(Some(now_ms)),
                    ref kind if kind.is_write() => *write_ms = write_ms.or(Some(now_ms)),
                    _ => {}
                }
            }
        }
        history.complete(index, outcome, zxid, now_ms);
    }
}

/// ZooKeeper's client read timeout: two thirds of the session timeout.
fn read_timeout_ms(timeout_ms: i32) -> u64 {
    (timeout_ms.max(3) as u64) * 2 / 3
}

/// A client pings when it has sent nothing for a third of the session timeout.
fn ping_interval_ms(timeout_ms: i32) -> u64 {
    (timeout_ms.max(3) as u64) / 3
}
