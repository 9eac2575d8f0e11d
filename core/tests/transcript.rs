//! A scripted client conversation with zk-core standing in as a standalone server, kept as
//! an insta snapshot: connect, create (plain, sequential, ephemeral), watches of every
//! kind, multi (successful and failed), ACL denial with and without digest auth, and
//! session expiry removing ephemerals and firing watches.
//!
//! Every request and reply goes through the real wire encoding: the client side encodes
//! with `encode_request` and decodes replies with `decode_reply`; the server side decodes
//! with `decode_request` and encodes with `encode_reply` / `encode_notification`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use zk_core::acl::{self, AuthConfig};
use zk_core::database::{Database, Reader};
use zk_core::proto::{
    self, perms, Acl, AuthPacket, Buffer, ConnectRequest, ConnectResponse, CreateRequest, DeleteRequest, ExistsRequest,
    GetChildrenRequest, GetDataRequest, Id, MultiOp, OpCode, Record, Reply, ReplyHeader, Request, SetDataRequest,
};
use zk_core::request::{PrepareConfig, Preparer, RequestContext};
use zk_core::session::{SessionConfig, SessionTable};
use zk_core::txn::{Txn, TxnHeader};
use zk_core::ErrorCode;

/// zk-core wired up as a standalone server, just enough for the transcript.
struct Server {
    database: Database,
    preparer: Preparer,
    sessions: SessionTable,
    session_config: SessionConfig,
    /// Connection id → (session id, identities).
    connections: BTreeMap<u64, (i64, Vec<Id>)>,
    zxid: i64,
    now_ms: i64,
    /// Frames sent to each connection, in order.
    outbox: BTreeMap<u64, Vec<Vec<u8>>>,
}

impl Server {
    fn new() -> Self {
        Server {
            database: Database::default(),
            preparer: Preparer::new(PrepareConfig::default()),
            sessions: SessionTable::new(2000, 0x0100_0000_0000_0000, 1000),
            session_config: SessionConfig::default(),
            connections: BTreeMap::new(),
            zxid: 0,
            now_ms: 1_700_000_000_000,
            outbox: BTreeMap::new(),
        }
    }

    fn send(&mut self, connection: u64, frame: Vec<u8>) {
        self.outbox.entry(connection).or_default().push(frame);
    }

    fn next_header(&mut self, session_id: i64, cxid: i32) -> TxnHeader {
        self.zxid += 1;
        TxnHeader { session_id, cxid, zxid: self.zxid, time_ms: self.now_ms }
    }

    /// Applies a txn and delivers its notifications; returns the reply fields.
    fn commit(&mut self, header: TxnHeader, txn: &Txn) -> (ErrorCode, proto::Response) {
        let connections = self.connections.clone();
        let can_read = |watcher: u64, acl: &[Acl]| {
            let ids = connections.get(&watcher).map_or(&[][..], |(_, ids)| ids.as_slice());
            acl::check_acl(acl, perms::READ, ids).is_ok()
        };
        let outcome = self.database.apply(&header, txn, &can_read);
        self.preparer.committed(header.zxid);
        for (watcher, event) in outcome.notifications {
            let frame = proto::encode_notification(header.zxid, &event);
            self.send(watcher, frame);
        }
        (outcome.err, outcome.response)
    }

    fn handle_connect(&mut self, connection: u64, frame: &[u8]) {
        let (body, _) = proto::split_frame(frame, 1 << 20).unwrap().unwrap();
        let request = ConnectRequest::from_bytes(body).unwrap();
        let timeout_ms = self.session_config.negotiate_timeout(request.time_out);
        let session_id = self.sessions.create(timeout_ms, self.now_ms).unwrap();
        let header = self.next_header(session_id, 0);
        self.commit(header, &Txn::CreateSession { timeout_ms });
        self.connections.insert(connection, (session_id, acl::connection_ids(None)));
        let response = ConnectResponse {
            protocol_version: 0,
            time_out: timeout_ms,
            session_id,
            passwd: Buffer(self.sessions.password(session_id).to_vec()),
            read_only: request.read_only.map(|_| false),
        };
        self.send(connection, proto::encode_framed(&response));
    }

    fn handle_frame(&mut self, connection: u64, frame: &[u8]) {
        let (body, _) = proto::split_frame(frame, 1 << 20).unwrap().unwrap();
        let decoded = proto::decode_request(body).unwrap();
        let (session_id, ids) = self.connections[&connection].clone();
        self.sessions.touch(session_id, self.now_ms);
        let xid = decoded.header.xid;
        let (zxid, err, response) = match decoded.body {
            Err(error) => (self.zxid, error.error_code(), proto::Response::Empty),
            Ok(Request::Ping) => (self.zxid, ErrorCode::Ok, proto::Response::Empty),
            Ok(Request::Auth(packet)) => {
                match acl::authenticate(&AuthConfig::default(), &packet.scheme, &packet.auth.0, None) {
                    Ok(new_ids) => {
                        let entry = self.connections.get_mut(&connection).unwrap();
                        acl::add_auth_ids(&mut entry.1, new_ids).unwrap();
                        (0, ErrorCode::Ok, proto::Response::Empty)
                    }
                    Err(err) => (0, err, proto::Response::Empty),
                }
            }
            Ok(request) if Preparer::is_write(&request) => {
                let header = self.next_header(session_id, xid);
                let context = RequestContext { session_id, auth_ids: &ids, zxid: header.zxid };
                let txn = self.preparer.prepare(&self.database.tree, &context, request.clone());
                if matches!(request, Request::CloseSession) {
                    self.sessions.remove(session_id);
                }
                let (err, response) = self.commit(header, &txn);
                (header.zxid, err, response)
            }
            Ok(request) => {
                let reader = Reader { watcher: connection, session_id, auth_ids: &ids };
                let outcome = self.database.read(&reader, &request);
                for event in outcome.events {
                    self.send(connection, proto::encode_notification(-1, &event));
                }
                (self.database.last_processed_zxid(), outcome.err, outcome.response)
            }
        };
        let header = ReplyHeader { xid, zxid, err: err.code() };
        let frame = proto::encode_reply(header, &response);
        self.send(connection, frame);
    }

    /// Moves time forward and expires sessions the way a leader does: a closeSession txn
    /// per expired session.
    fn advance(&mut self, elapsed_ms: i64) -> Vec<i64> {
        self.now_ms += elapsed_ms;
        let expired = self.sessions.expired(self.now_ms);
        for &session_id in &expired {
            let header = self.next_header(session_id, 0);
            let context = RequestContext { session_id, auth_ids: &[], zxid: header.zxid };
            let txn = self.preparer.prepare(&self.database.tree, &context, Request::CloseSession);
            self.commit(header, &txn);
            self.sessions.remove(session_id);
            self.connections.retain(|_, (owner, _)| *owner != session_id);
        }
        expired
    }
}

/// A client connection: encodes requests, decodes what the server sent back, and writes
/// both into the transcript.
struct Client {
    name: &'static str,
    connection: u64,
    next_xid: i32,
    pending: BTreeMap<i32, OpCode>,
}

impl Client {
    fn connect(server: &mut Server, transcript: &mut String, name: &'static str, connection: u64) -> Client {
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 5000,
            session_id: 0,
            passwd: Buffer(vec![0; 16]),
            read_only: Some(false),
        };
        writeln!(transcript, "{name} -> connect timeout=5000").unwrap();
        server.handle_connect(connection, &proto::encode_framed(&request));
        let frames = server.outbox.remove(&connection).unwrap_or_default();
        for frame in frames {
            let (body, _) = proto::split_frame(&frame, 1 << 20).unwrap().unwrap();
            let response = ConnectResponse::from_bytes(body).unwrap();
            writeln!(
                transcript,
                "{name} <- connected session=0x{:x} timeout={} passwd_len={}",
                response.session_id,
                response.time_out,
                response.passwd.0.len()
            )
            .unwrap();
        }
        Client { name, connection, next_xid: 1, pending: BTreeMap::new() }
    }

    fn call(&mut self, server: &mut Server, transcript: &mut String, label: &str, request: Request) {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.pending.insert(xid, request.op_code());
        writeln!(transcript, "{} -> xid={xid} {label}", self.name).unwrap();
        server.handle_frame(self.connection, &proto::encode_request(xid, &request));
        self.receive(server, transcript);
    }

    fn receive(&mut self, server: &mut Server, transcript: &mut String) {
        let frames = server.outbox.remove(&self.connection).unwrap_or_default();
        for frame in frames {
            describe(transcript, self.name, &frame, &self.pending);
        }
    }
}

fn describe(transcript: &mut String, name: &str, frame: &[u8], pending: &BTreeMap<i32, OpCode>) {
    let (body, _) = proto::split_frame(frame, 1 << 20).unwrap().unwrap();
    let (header, reply) = proto::decode_reply(body, |xid| pending.get(&xid).copied()).unwrap();
    let err = ErrorCode::from_code(header.err).map_or(header.err.to_string(), |code| code.name().to_owned());
    match reply {
        Reply::Notification(event) => {
            let event_type = proto::EventType::from_code(event.event_type).unwrap();
            writeln!(transcript, "{name} <- watch {event_type:?} {} zxid={:#x}", event.path, header.zxid).unwrap();
        }
        Reply::Response(op, response) => {
            writeln!(transcript, "{name} <- xid={} {op:?} zxid={:#x} err={err} {response:?}", header.xid, header.zxid)
                .unwrap();
        }
    }
}

fn create(path: &str, data: &str, acl: Vec<Acl>, flags: i32) -> Request {
    Request::Create2(CreateRequest { path: path.into(), data: Some(data.as_bytes().to_vec()), acl, flags })
}

fn open() -> Vec<Acl> {
    acl::open_acl_unsafe()
}

#[test]
fn client_session_transcript() {
    let mut server = Server::new();
    let mut transcript = String::new();
    let t = &mut transcript;
    let mut alice = Client::connect(&mut server, t, "alice", 1);
    let mut bob = Client::connect(&mut server, t, "bob", 2);

    alice.call(&mut server, t, "create /app", create("/app", "config", open(), 0));
    alice.call(&mut server, t, "create /app again", create("/app", "x", open(), 0));
    alice.call(&mut server, t, "create -s /app/job-", create("/app/job-", "", open(), 2));
    alice.call(&mut server, t, "create -s /app/job-", create("/app/job-", "", open(), 2));
    bob.call(
        &mut server,
        t,
        "getChildren /app watch",
        Request::GetChildren(GetChildrenRequest { path: "/app".into(), watch: true }),
    );
    bob.call(
        &mut server,
        t,
        "getData /app watch",
        Request::GetData(GetDataRequest { path: "/app".into(), watch: true }),
    );
    bob.call(
        &mut server,
        t,
        "exists /app/leader watch",
        Request::Exists(ExistsRequest { path: "/app/leader".into(), watch: true }),
    );
    alice.call(&mut server, t, "create -e /app/leader", create("/app/leader", "alice", open(), 1));
    bob.receive(&mut server, t);
    alice.call(&mut server, t, "create /app/leader/child", create("/app/leader/child", "", open(), 0));
    alice.call(
        &mut server,
        t,
        "setData /app version 3 (stale)",
        Request::SetData(SetDataRequest { path: "/app".into(), data: Some(b"v2".to_vec()), version: 3 }),
    );
    alice.call(
        &mut server,
        t,
        "setData /app version 0",
        Request::SetData(SetDataRequest { path: "/app".into(), data: Some(b"v2".to_vec()), version: 0 }),
    );
    bob.receive(&mut server, t);

    alice.call(
        &mut server,
        t,
        "multi [create /app/a, delete /app/missing, setData /app]",
        Request::Multi(vec![
            MultiOp::Create {
                op: OpCode::Create,
                request: CreateRequest { path: "/app/a".into(), data: None, acl: open(), flags: 0 },
            },
            MultiOp::Delete(DeleteRequest { path: "/app/missing".into(), version: -1 }),
            MultiOp::SetData(SetDataRequest { path: "/app".into(), data: None, version: -1 }),
        ]),
    );
    alice.call(
        &mut server,
        t,
        "multi [create /app/a, create2 /app/b, check /app v1]",
        Request::Multi(vec![
            MultiOp::Create {
                op: OpCode::Create,
                request: CreateRequest { path: "/app/a".into(), data: None, acl: open(), flags: 0 },
            },
            MultiOp::Create {
                op: OpCode::Create2,
                request: CreateRequest { path: "/app/b".into(), data: None, acl: open(), flags: 0 },
            },
            MultiOp::Check(proto::CheckVersionRequest { path: "/app".into(), version: 1 }),
        ]),
    );

    let secret =
        vec![Acl { perms: perms::ALL, id: Id { scheme: "digest".into(), id: acl::generate_digest("alice:s3cret") } }];
    alice.call(&mut server, t, "create /secret with digest ACL", create("/secret", "hidden", secret, 0));
    bob.call(
        &mut server,
        t,
        "getData /secret (no auth)",
        Request::GetData(GetDataRequest { path: "/secret".into(), watch: false }),
    );
    bob.call(
        &mut server,
        t,
        "addauth digest alice:wrong",
        Request::Auth(AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Buffer(b"alice:wrong".to_vec()) }),
    );
    bob.call(
        &mut server,
        t,
        "getData /secret (wrong password)",
        Request::GetData(GetDataRequest { path: "/secret".into(), watch: false }),
    );
    bob.call(
        &mut server,
        t,
        "addauth digest alice:s3cret",
        Request::Auth(AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Buffer(b"alice:s3cret".to_vec()) }),
    );
    bob.call(
        &mut server,
        t,
        "getData /secret (authenticated)",
        Request::GetData(GetDataRequest { path: "/secret".into(), watch: false }),
    );
    bob.call(&mut server, t, "whoami", Request::WhoAmI);

    bob.call(
        &mut server,
        t,
        "exists /app/leader watch",
        Request::Exists(ExistsRequest { path: "/app/leader".into(), watch: true }),
    );
    // Bob keeps pinging; alice goes silent until her session expires.
    for _ in 0..4 {
        let expired = server.advance(3000);
        writeln!(t, "-- 3000 ms pass; expired sessions: {expired:x?}").unwrap();
        bob.call(&mut server, t, "ping", Request::Ping);
    }
    bob.call(
        &mut server,
        t,
        "getChildren /app",
        Request::GetChildren(GetChildrenRequest { path: "/app".into(), watch: false }),
    );
    let mut frame = proto::encode_request(99, &Request::Ping);
    frame[8..12].copy_from_slice(&999i32.to_be_bytes());
    bob.pending.insert(99, OpCode::Ping);
    writeln!(t, "bob -> xid=99 opcode 999").unwrap();
    server.handle_frame(2, &frame);
    bob.receive(&mut server, t);
    bob.call(&mut server, t, "closeSession", Request::CloseSession);

    server.database.tree.check_invariants().unwrap();
    insta::assert_snapshot!(transcript);
}
