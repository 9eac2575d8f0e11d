//! Every error code zk-core can hand a client, each triggered at least once through the
//! public API, and a check that the list is complete: a code the server side can return
//! that no case here triggers fails the test.

use std::collections::BTreeSet;

use zk_core::acl::{self, AuthConfig};
use zk_core::database::{Database, Reader};
use zk_core::proto::{
    self, perms, Acl, AddWatchRequest, CheckVersionRequest, CheckWatchesRequest, CreateRequest, CreateTtlRequest,
    DeleteRequest, GetDataRequest, Id, MultiOp, OpCode, ReconfigRequest, RemoveWatchesRequest, Request, RequestHeader,
    SetAclRequest, SetDataRequest, Writer,
};
use zk_core::request::{PrepareConfig, Preparer, RequestContext};
use zk_core::session::SessionTable;
use zk_core::tree::QuotaTrack;
use zk_core::txn::{Txn, TxnHeader};
use zk_core::watch::WatchManager;
use zk_core::ErrorCode;

struct Harness {
    database: Database,
    preparer: Preparer,
    zxid: i64,
}

impl Harness {
    fn new(config: PrepareConfig) -> Self {
        Harness { database: Database::default(), preparer: Preparer::new(config), zxid: 0 }
    }

    /// Prepares and applies a write; returns the error of the reply (or of the first failed
    /// op of a multi).
    fn write(&mut self, request: &Request) -> ErrorCode {
        self.write_as(&[], request)
    }

    fn write_as(&mut self, ids: &[Id], request: &Request) -> ErrorCode {
        self.zxid += 1;
        let context = RequestContext { session_id: 0x77, auth_ids: ids, zxid: self.zxid };
        let txn = self.preparer.prepare(&self.database.tree, &context, request.clone());
        let first_op_error = match &txn {
            Txn::Multi(txns) => txns.iter().find_map(|txn| match txn {
                Txn::Error(err) => Some(*err),
                _ => None,
            }),
            _ => None,
        };
        let header = TxnHeader { session_id: 0x77, cxid: 1, zxid: self.zxid, time_ms: 0 };
        let outcome = self.database.apply(&header, &txn, &|_, _| true);
        self.preparer.committed(self.zxid);
        first_op_error.unwrap_or(outcome.err)
    }

    fn read(&mut self, request: &Request) -> ErrorCode {
        let reader = Reader { watcher: 1, session_id: 0x77, auth_ids: &[] };
        self.database.read(&reader, request).err
    }
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(CreateRequest { path: path.into(), data: None, acl: acl::open_acl_unsafe(), flags })
}

#[test]
fn every_error_code_zk_core_returns_is_triggered() {
    let mut seen: Vec<(ErrorCode, &str)> = Vec::new();
    let mut harness = Harness::new(PrepareConfig { enforce_quota: true, ..PrepareConfig::default() });
    let expect = |seen: &mut Vec<(ErrorCode, &'static str)>, got: ErrorCode, want: ErrorCode, what: &'static str| {
        assert_eq!(got, want, "{what}");
        seen.push((want, what));
    };

    assert_eq!(harness.write(&create("/a", 0)), ErrorCode::Ok);
    assert_eq!(harness.write(&create("/e", 1)), ErrorCode::Ok);
    assert_eq!(harness.write(&create("/a/child", 0)), ErrorCode::Ok);

    let got = harness.write(&create("/a", 0));
    expect(&mut seen, got, ErrorCode::NodeExists, "create of an existing node");
    let got = harness.write(&create("/missing/x", 0));
    expect(&mut seen, got, ErrorCode::NoNode, "create under a missing parent");
    let got = harness.write(&create("/e/x", 0));
    expect(&mut seen, got, ErrorCode::NoChildrenForEphemerals, "create under an ephemeral");
    let got = harness.write(&Request::Delete(DeleteRequest { path: "/a".into(), version: -1 }));
    expect(&mut seen, got, ErrorCode::NotEmpty, "delete of a node with children");
    let got = harness.write(&Request::SetData(SetDataRequest { path: "/a".into(), data: None, version: 9 }));
    expect(&mut seen, got, ErrorCode::BadVersion, "setData with a stale version");
    let got = harness.write(&create("/bad\u{1}name", 0));
    expect(&mut seen, got, ErrorCode::BadArguments, "create with a control character in the name");
    let got =
        harness.write(&Request::Create(CreateRequest { path: "/noacl".into(), data: None, acl: Vec::new(), flags: 0 }));
    expect(&mut seen, got, ErrorCode::InvalidAcl, "create with an empty ACL");
    let got = harness.write(&Request::CreateTtl(CreateTtlRequest {
        path: "/ttl".into(),
        data: None,
        acl: acl::open_acl_unsafe(),
        flags: 5,
        ttl: 1000,
    }));
    expect(&mut seen, got, ErrorCode::Unimplemented, "TTL node without extendedTypesEnabled");
    let got = harness.write(&Request::Reconfig(ReconfigRequest::default()));
    expect(&mut seen, got, ErrorCode::ReconfigDisabled, "reconfig with reconfigEnabled=false");

    let read_only = vec![Acl { perms: perms::READ, id: acl::anyone_id_unsafe() }];
    let got = harness.write(&Request::SetAcl(SetAclRequest { path: "/a".into(), acl: read_only, version: -1 }));
    assert_eq!(got, ErrorCode::Ok);
    let got = harness.write(&Request::SetData(SetDataRequest { path: "/a".into(), data: None, version: -1 }));
    expect(&mut seen, got, ErrorCode::NoAuth, "setData without WRITE");

    let got = harness.write(&Request::Multi(vec![
        MultiOp::Check(CheckVersionRequest { path: "/e".into(), version: 5 }),
        MultiOp::Delete(DeleteRequest { path: "/e".into(), version: -1 }),
    ]));
    assert_eq!(got, ErrorCode::BadVersion);
    let Txn::Multi(txns) = harness.preparer.prepare(
        &harness.database.tree,
        &RequestContext { session_id: 0x77, auth_ids: &[], zxid: 1000 },
        Request::Multi(vec![
            MultiOp::Check(CheckVersionRequest { path: "/e".into(), version: 5 }),
            MultiOp::Delete(DeleteRequest { path: "/e".into(), version: -1 }),
        ]),
    ) else {
        panic!("a multi prepares into a multi txn");
    };
    expect(
        &mut seen,
        *match &txns[1] {
            Txn::Error(err) => err,
            other => panic!("{other:?}"),
        },
        ErrorCode::RuntimeInconsistency,
        "multi op after the failing one",
    );
    harness.preparer.clear();

    // Quota: a hard count limit of 2 nodes under /q.
    assert_eq!(harness.write(&create("/q", 0)), ErrorCode::Ok);
    assert_eq!(harness.write(&create("/zookeeper/quota/q", 0)), ErrorCode::Ok);
    let limits = QuotaTrack { count: -1, bytes: -1, count_hard_limit: 2, byte_hard_limit: -1 };
    let got = harness.write(&Request::Create(CreateRequest {
        path: "/zookeeper/quota/q/zookeeper_limits".into(),
        data: Some(limits.render().into_bytes()),
        acl: acl::open_acl_unsafe(),
        flags: 0,
    }));
    assert_eq!(got, ErrorCode::Ok);
    assert_eq!(harness.write(&create("/zookeeper/quota/q/zookeeper_stats", 0)), ErrorCode::Ok);
    assert_eq!(harness.write(&create("/q/one", 0)), ErrorCode::Ok);
    let got = harness.write(&create("/q/two", 0));
    expect(&mut seen, got, ErrorCode::QuotaExceeded, "create past a hard count quota");

    let got = harness.read(&Request::CheckWatches(CheckWatchesRequest { path: "/a".into(), watcher_type: 2 }));
    expect(&mut seen, got, ErrorCode::NoWatcher, "checkWatches with no watch");
    let got = harness.read(&Request::RemoveWatches(RemoveWatchesRequest { path: "/a".into(), watcher_type: 3 }));
    assert_eq!(got, ErrorCode::NoWatcher);
    let got = harness.read(&Request::GetData(GetDataRequest { path: "/nope".into(), watch: false }));
    assert_eq!(got, ErrorCode::NoNode);

    // The watch limit throttles instead of growing without bound.
    let mut tiny = Database::new(1);
    let reader = Reader { watcher: 1, session_id: 1, auth_ids: &[] };
    tiny.read(&reader, &Request::AddWatch(AddWatchRequest { path: "/x".into(), mode: 1 }));
    let got = tiny.read(&reader, &Request::AddWatch(AddWatchRequest { path: "/y".into(), mode: 1 }));
    expect(&mut seen, got.err, ErrorCode::ThrottledOp, "a watch past watches_max");
    assert!(WatchManager::new(0).add_data_watch("/z", 1).is_err());

    let got = acl::authenticate(&AuthConfig::default(), "kerberos", b"x", None).unwrap_err();
    expect(&mut seen, got, ErrorCode::AuthFailed, "auth with an unknown scheme");

    // Body decoding: an unknown opcode and a truncated body.
    let mut writer = Writer::new();
    proto::Record::write(&RequestHeader { xid: 1, op_type: 999 }, &mut writer);
    let frame = proto::decode_request(writer.as_bytes()).unwrap();
    expect(&mut seen, frame.body.unwrap_err().error_code(), ErrorCode::Unimplemented, "unknown opcode");
    let mut writer = Writer::new();
    proto::Record::write(&RequestHeader { xid: 1, op_type: OpCode::Create.code() }, &mut writer);
    writer.write_i32(100);
    let frame = proto::decode_request(writer.as_bytes()).unwrap();
    expect(&mut seen, frame.body.unwrap_err().error_code(), ErrorCode::MarshallingError, "truncated create body");

    // Sessions: unknown and closing.
    let mut sessions = SessionTable::new(2000, 1, 10);
    expect(&mut seen, sessions.check_session(42).unwrap_err(), ErrorCode::UnknownSession, "unknown session");
    let id = sessions.create(4000, 0).unwrap();
    sessions.set_closing(id);
    expect(&mut seen, sessions.check_session(id).unwrap_err(), ErrorCode::SessionExpired, "closing session");

    // The server-side codes zk-core returns, and nothing else: ConnectionLoss,
    // OperationTimeout, SessionMoved and the rest belong to clients or to the replication
    // layer, which is not part of this crate yet.
    let expected: BTreeSet<ErrorCode> = [
        ErrorCode::NodeExists,
        ErrorCode::NoNode,
        ErrorCode::NoChildrenForEphemerals,
        ErrorCode::NotEmpty,
        ErrorCode::BadVersion,
        ErrorCode::BadArguments,
        ErrorCode::InvalidAcl,
        ErrorCode::Unimplemented,
        ErrorCode::ReconfigDisabled,
        ErrorCode::NoAuth,
        ErrorCode::RuntimeInconsistency,
        ErrorCode::QuotaExceeded,
        ErrorCode::NoWatcher,
        ErrorCode::ThrottledOp,
        ErrorCode::AuthFailed,
        ErrorCode::MarshallingError,
        ErrorCode::UnknownSession,
        ErrorCode::SessionExpired,
    ]
    .into_iter()
    .collect();
    let triggered: BTreeSet<ErrorCode> = seen.iter().map(|(code, _)| *code).collect();
    assert_eq!(triggered, expected);
}
