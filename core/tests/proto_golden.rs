//! Golden byte vectors for the client wire protocol.
//!
//! Every record in `proto/records.rs`, every `Request` (through `encode_request`), every
//! `Response` and `MultiResult` (through `encode_reply`), a notification and the handshake
//! records are pinned as insta snapshots: the value's Debug, then a hex dump of its bytes.
//! A change to any encoding shows up as a snapshot diff. Each vector is also decoded back
//! to the value it came from.
//!
//! The `hand_checked_*` tests compare a few vectors with bytes written out by hand from
//! ZooKeeper's own definitions, so the snapshots are anchored to the real protocol and not
//! only to zkd's past output.

use std::fmt::{Debug, Write as _};

use zk_core::proto::*;
use zk_core::ErrorCode;

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

/// The Debug of `value`, then `bytes` as hex, 16 bytes a line with offsets and ASCII.
fn dump<T: Debug + ?Sized>(value: &T, bytes: &[u8]) -> String {
    let mut out = compact_number_lists(&format!("{value:#?}"));
    writeln!(out, "\n--- {} bytes", bytes.len()).unwrap();
    out.push_str(&hex_lines(bytes));
    out
}

/// Folds the one-number-a-line lists of pretty Debug (byte buffers) onto one line.
fn compact_number_lists(pretty: &str) -> String {
    let lines: Vec<&str> = pretty.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        if line.ends_with('[') {
            let items: Vec<&str> = lines[index + 1..]
                .iter()
                .map(|item| item.trim())
                .take_while(|item| item.strip_suffix(',').is_some_and(|n| n.parse::<i64>().is_ok()))
                .collect();
            let close = lines.get(index + 1 + items.len()).map(|l| l.trim_start());
            if !items.is_empty() && close.is_some_and(|c| c.starts_with(']')) {
                let numbers: Vec<&str> = items.iter().map(|item| item.trim_end_matches(',')).collect();
                let close = close.unwrap_or_default();
                out.push(format!("{}{}{close}", line, numbers.join(", ")));
                index += items.len() + 2;
                continue;
            }
        }
        out.push(line.to_owned());
        index += 1;
    }
    out.join("\n")
}

fn hex_lines(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (line, chunk) in bytes.chunks(16).enumerate() {
        write!(out, "{:04x} ", line * 16).unwrap();
        for column in 0..16 {
            if column == 8 {
                out.push(' ');
            }
            match chunk.get(column) {
                Some(byte) => write!(out, " {byte:02x}").unwrap(),
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        for &byte in chunk {
            out.push(if byte.is_ascii_graphic() || byte == b' ' { byte as char } else { '.' });
        }
        out.push_str("|\n");
    }
    out
}

/// Text shown verbatim as the "Debug" part of a dump.
struct Text(String);

impl Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a hex string with arbitrary whitespace and `|` separators (for hand-written vectors).
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    assert_eq!(digits.len() % 2, 0, "odd number of hex digits in {text:?}");
    digits.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap()).collect()
}

#[test]
fn hex_dump_format_is_offset_hex_and_ascii() {
    assert_eq!(
        hex_lines(b"\x00\x00\x00\x02/a\x01 0123456789ABCDEF"),
        "0000  00 00 00 02 2f 61 01 20  30 31 32 33 34 35 36 37  |..../a. 01234567|\n\
         0010  38 39 41 42 43 44 45 46                           |89ABCDEF|\n"
    );
    assert_eq!(hex("00 0a | ff"), vec![0x00, 0x0a, 0xff]);
    assert_eq!(
        compact_number_lists(&format!("{:#?}", (Some(vec![1u8, 255]), vec![String::new()]))),
        "(\n    Some(\n        [1, 255],\n    ),\n    [\n        \"\",\n    ],\n)"
    );
}

// ---------------------------------------------------------------------------------------
// Sample values: distinct per field, so a swapped field order shows in the bytes.
// ---------------------------------------------------------------------------------------

const PATH: &str = "/zkd/app";
/// Non-ASCII path: its UTF-8 bytes (two and three bytes a char) must travel unchanged.
const UNICODE_PATH: &str = "/zkd/ünï/日本";

fn stat() -> Stat {
    Stat {
        czxid: 0x0000_0001_0000_0001,
        mzxid: 0x0000_0001_0000_0002,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_001,
        version: 3,
        cversion: 4,
        aversion: 5,
        ephemeral_owner: 0x0102_0304_0506_0708,
        data_length: 6,
        num_children: 7,
        pzxid: 0x0000_0001_0000_0003,
    }
}

fn world_anyone() -> Id {
    Id { scheme: "world".into(), id: "anyone".into() }
}

/// `ZooDefs.Ids.OPEN_ACL_UNSAFE`.
fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: world_anyone() }]
}

fn digest_acl() -> Acl {
    Acl {
        perms: perms::READ | perms::ADMIN,
        id: Id { scheme: "digest".into(), id: "bob:zVhs2LYOcpQD6vzAFNm0ZvFJwdA=".into() },
    }
}

fn create_request(path: &str, data: Data, flags: i32) -> CreateRequest {
    CreateRequest { path: path.into(), data, acl: open_acl_unsafe(), flags }
}

/// The 16-byte session password shape, with recognisable bytes.
fn passwd() -> Buffer {
    Buffer((0xa0..0xb0).collect())
}

fn reply_header(xid: i32) -> ReplyHeader {
    ReplyHeader { xid, zxid: 0x0000_0002_0000_002a, err: 0 }
}

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

/// Declares one golden test per record and the list of record type names covered.
macro_rules! golden_records {
    ($($test:ident: $ty:ident = $value:expr;)*) => {
        $(
            #[test]
            fn $test() {
                let value: $ty = $value;
                let bytes = value.to_bytes();
                assert_eq!(<$ty as Record>::from_bytes(&bytes).as_ref(), Ok(&value));
                insta::assert_snapshot!(stringify!($test), dump(&value, &bytes));
            }
        )*

        /// The record types that have a golden vector above.
        const GOLDEN_RECORD_TYPES: &[&str] = &[$(stringify!($ty)),*];
    };
}

golden_records! {
    record_id: Id = world_anyone();
    record_acl: Acl = digest_acl();
    record_stat: Stat = stat();
    record_client_info: ClientInfo =
        ClientInfo { auth_scheme: "digest".into(), user: "bob".into() };
    record_connect_request_with_read_only: ConnectRequest = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0x0000_0001_0000_0010,
        time_out: 30_000,
        session_id: 0x0100_0a3b_5c6d_0001,
        passwd: passwd(),
        read_only: Some(true),
    };
    record_connect_request_without_read_only: ConnectRequest = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id: 0,
        passwd: Buffer(vec![0; 16]),
        read_only: None,
    };
    record_connect_response_with_read_only: ConnectResponse = ConnectResponse {
        protocol_version: 0,
        time_out: 20_000,
        session_id: 0x0100_0a3b_5c6d_0001,
        passwd: passwd(),
        read_only: Some(false),
    };
    record_connect_response_without_read_only: ConnectResponse = ConnectResponse {
        protocol_version: 0,
        time_out: 0,
        session_id: 0,
        passwd: Buffer(vec![0; 16]),
        read_only: None,
    };
    record_set_watches: SetWatches = SetWatches {
        relative_zxid: 0x0000_0001_0000_00ff,
        data_watches: vec!["/d1".into(), "/d2".into()],
        exist_watches: vec!["/e".into()],
        child_watches: vec![],
    };
    record_set_watches2: SetWatches2 = SetWatches2 {
        relative_zxid: -1,
        data_watches: vec!["/d".into()],
        exist_watches: vec![],
        child_watches: vec!["/c".into()],
        persistent_watches: vec!["/p".into()],
        persistent_recursive_watches: vec!["/r".into(), UNICODE_PATH.into()],
    };
    record_request_header: RequestHeader =
        RequestHeader { xid: 0x0102_0304, op_type: OpCode::Create2.code() };
    record_multi_header: MultiHeader = MultiHeader { op_type: -1, done: true, err: -1 };
    record_auth_packet: AuthPacket =
        AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Buffer(b"bob:secret".to_vec()) };
    record_reply_header: ReplyHeader =
        ReplyHeader { xid: 7, zxid: 0x0000_0002_0000_002a, err: ErrorCode::NoNode.code() };
    record_get_data_request: GetDataRequest = GetDataRequest { path: PATH.into(), watch: true };
    record_set_data_request: SetDataRequest =
        SetDataRequest { path: PATH.into(), data: Some(b"hello".to_vec()), version: -1 };
    record_reconfig_request: ReconfigRequest = ReconfigRequest {
        joining_servers: Some("server.4=10.0.0.4:2888:3888;2181".into()),
        leaving_servers: None,
        new_members: Some(String::new()),
        cur_config_id: -1,
    };
    record_set_data_response: SetDataResponse = SetDataResponse { stat: stat() };
    record_get_sasl_request: GetSaslRequest = GetSaslRequest { token: Buffer(vec![0x60, 0x82, 0x01]) };
    record_set_sasl_request: SetSaslRequest = SetSaslRequest { token: Buffer(vec![]) };
    record_set_sasl_response: SetSaslResponse = SetSaslResponse { token: Buffer(vec![0xde, 0xad]) };
    record_create_request: CreateRequest = CreateRequest {
        path: UNICODE_PATH.into(),
        data: Some(vec![0x00, 0xff]),
        acl: vec![Acl { perms: perms::ALL, id: world_anyone() }, digest_acl()],
        flags: CreateMode::EphemeralSequential.code(),
    };
    record_create_ttl_request: CreateTtlRequest = CreateTtlRequest {
        path: PATH.into(),
        data: None,
        acl: open_acl_unsafe(),
        flags: CreateMode::PersistentWithTtl.code(),
        ttl: 60_000,
    };
    record_delete_request: DeleteRequest = DeleteRequest { path: PATH.into(), version: 3 };
    record_get_children_request: GetChildrenRequest =
        GetChildrenRequest { path: "/".into(), watch: false };
    record_get_all_children_number_request: GetAllChildrenNumberRequest =
        GetAllChildrenNumberRequest { path: PATH.into() };
    record_get_children2_request: GetChildren2Request =
        GetChildren2Request { path: PATH.into(), watch: true };
    record_check_version_request: CheckVersionRequest =
        CheckVersionRequest { path: PATH.into(), version: i32::MAX };
    record_sync_request: SyncRequest = SyncRequest { path: PATH.into() };
    record_sync_response: SyncResponse = SyncResponse { path: PATH.into() };
    record_get_acl_request: GetAclRequest = GetAclRequest { path: PATH.into() };
    record_set_acl_request: SetAclRequest =
        SetAclRequest { path: PATH.into(), acl: vec![digest_acl()], version: 0 };
    record_set_acl_response: SetAclResponse = SetAclResponse { stat: stat() };
    record_add_watch_request: AddWatchRequest =
        AddWatchRequest { path: PATH.into(), mode: AddWatchMode::PersistentRecursive.code() };
    record_watcher_event: WatcherEvent = WatcherEvent {
        event_type: EventType::NodeChildrenChanged.code(),
        state: KeeperState::SyncConnected.code(),
        path: PATH.into(),
    };
    record_error_response: ErrorResponse = ErrorResponse { err: ErrorCode::NotEmpty.code() };
    record_create_response: CreateResponse =
        CreateResponse { path: "/zkd/lock-0000000042".into() };
    record_create2_response: Create2Response =
        Create2Response { path: "/zkd/lock-0000000042".into(), stat: stat() };
    record_exists_request: ExistsRequest = ExistsRequest { path: PATH.into(), watch: true };
    record_exists_response: ExistsResponse = ExistsResponse { stat: stat() };
    record_get_data_response: GetDataResponse =
        GetDataResponse { data: Some(b"v1".to_vec()), stat: stat() };
    record_get_children_response: GetChildrenResponse =
        GetChildrenResponse { children: vec!["a".into(), "日本".into(), String::new()] };
    record_get_all_children_number_response: GetAllChildrenNumberResponse =
        GetAllChildrenNumberResponse { total_number: 1_000_000 };
    record_get_children2_response: GetChildren2Response =
        GetChildren2Response { children: vec!["x".into()], stat: stat() };
    record_get_acl_response: GetAclResponse =
        GetAclResponse { acl: open_acl_unsafe(), stat: stat() };
    record_check_watches_request: CheckWatchesRequest =
        CheckWatchesRequest { path: PATH.into(), watcher_type: WatcherType::Data.code() };
    record_remove_watches_request: RemoveWatchesRequest =
        RemoveWatchesRequest { path: PATH.into(), watcher_type: WatcherType::Any.code() };
    record_get_ephemerals_request: GetEphemeralsRequest =
        GetEphemeralsRequest { prefix_path: "/zkd".into() };
    record_get_ephemerals_response: GetEphemeralsResponse =
        GetEphemeralsResponse { ephemerals: vec!["/zkd/e1".into(), "/zkd/e2".into()] };
    record_who_am_i_response: WhoAmIResponse = WhoAmIResponse {
        client_info: vec![
            ClientInfo { auth_scheme: "ip".into(), user: "127.0.0.1".into() },
            ClientInfo { auth_scheme: "digest".into(), user: "bob".into() },
        ],
    };
}

/// Every `pub struct` declared in records.rs has a golden vector above.
#[test]
fn every_record_in_records_rs_has_a_golden_vector() {
    let source = include_str!("../src/proto/records.rs");
    let declared: Vec<&str> = source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub struct "))
        .map(|rest| rest.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap())
        .collect();
    assert_eq!(declared.len(), 48, "records.rs changed: {declared:?}");
    let missing: Vec<&&str> = declared.iter().filter(|name| !GOLDEN_RECORD_TYPES.contains(name)).collect();
    assert!(missing.is_empty(), "records without a golden vector: {missing:?}");
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// The position of a request's variant; the match has no wildcard, so a new variant stops
/// this file from compiling until it gets a golden vector.
fn request_variant(request: &Request) -> usize {
    match request {
        Request::Create(_) => 0,
        Request::Create2(_) => 1,
        Request::CreateContainer(_) => 2,
        Request::CreateTtl(_) => 3,
        Request::Delete(_) => 4,
        Request::Exists(_) => 5,
        Request::GetData(_) => 6,
        Request::SetData(_) => 7,
        Request::GetAcl(_) => 8,
        Request::SetAcl(_) => 9,
        Request::GetChildren(_) => 10,
        Request::GetChildren2(_) => 11,
        Request::GetAllChildrenNumber(_) => 12,
        Request::GetEphemerals(_) => 13,
        Request::Sync(_) => 14,
        Request::Check(_) => 15,
        Request::Multi(_) => 16,
        Request::MultiRead(_) => 17,
        Request::Reconfig(_) => 18,
        Request::CheckWatches(_) => 19,
        Request::RemoveWatches(_) => 20,
        Request::AddWatch(_) => 21,
        Request::SetWatches(_) => 22,
        Request::SetWatches2(_) => 23,
        Request::Auth(_) => 24,
        Request::Sasl(_) => 25,
        Request::WhoAmI => 26,
        Request::Ping => 27,
        Request::CloseSession => 28,
    }
}
const REQUEST_VARIANTS: usize = 29;

fn multi_op_variant(op: &MultiOp) -> usize {
    match op {
        MultiOp::Create { .. } => 0,
        MultiOp::CreateTtl(_) => 1,
        MultiOp::Delete(_) => 2,
        MultiOp::SetData(_) => 3,
        MultiOp::Check(_) => 4,
        MultiOp::GetChildren(_) => 5,
        MultiOp::GetData(_) => 6,
    }
}
const MULTI_OP_VARIANTS: usize = 7;

/// Declares one golden test per request frame and a list of every request covered.
macro_rules! golden_requests {
    ($($test:ident: xid $xid:expr, $request:expr;)*) => {
        $(
            #[test]
            fn $test() {
                let xid: i32 = $xid;
                let request: Request = $request;
                let frame = encode_request(xid, &request);
                let decoded = decode_request(&frame[FRAME_PREFIX_LEN..]).unwrap();
                assert_eq!(
                    decoded,
                    ClientFrame {
                        header: RequestHeader { xid, op_type: request.op_code().code() },
                        body: Ok(request.clone()),
                    }
                );
                let shown = format!("xid {xid}\n{request:#?}");
                insta::assert_snapshot!(stringify!($test), dump(&Text(shown), &frame));
            }
        )*

        fn golden_requests() -> Vec<Request> {
            vec![$($request),*]
        }
    };
}

golden_requests! {
    request_create: xid 1, Request::Create(create_request(PATH, Some(b"v".to_vec()), 0));
    request_create2: xid 2, Request::Create2(create_request(UNICODE_PATH, None, 3));
    request_create_container: xid 3,
        Request::CreateContainer(create_request(PATH, Some(vec![]), CreateMode::Container.code()));
    request_create_ttl: xid 4, Request::CreateTtl(CreateTtlRequest {
        path: PATH.into(),
        data: Some(b"t".to_vec()),
        acl: open_acl_unsafe(),
        flags: CreateMode::PersistentSequentialWithTtl.code(),
        ttl: 1,
    });
    request_delete: xid 5, Request::Delete(DeleteRequest { path: PATH.into(), version: -1 });
    request_exists: xid 6, Request::Exists(ExistsRequest { path: PATH.into(), watch: true });
    request_get_data: xid 7, Request::GetData(GetDataRequest { path: PATH.into(), watch: false });
    request_set_data: xid 8,
        Request::SetData(SetDataRequest { path: PATH.into(), data: None, version: 2 });
    request_get_acl: xid 9, Request::GetAcl(GetAclRequest { path: PATH.into() });
    request_set_acl: xid 10, Request::SetAcl(SetAclRequest {
        path: PATH.into(),
        acl: vec![digest_acl()],
        version: -1,
    });
    request_get_children: xid 11,
        Request::GetChildren(GetChildrenRequest { path: "/".into(), watch: true });
    request_get_children2: xid 12,
        Request::GetChildren2(GetChildren2Request { path: "/".into(), watch: false });
    request_get_all_children_number: xid 13,
        Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: "/".into() });
    request_get_ephemerals: xid 14,
        Request::GetEphemerals(GetEphemeralsRequest { prefix_path: "/".into() });
    request_sync: xid 15, Request::Sync(SyncRequest { path: PATH.into() });
    request_check: xid 16,
        Request::Check(CheckVersionRequest { path: PATH.into(), version: 0 });
    request_multi_of_every_write_op: xid 17, Request::Multi(vec![
        MultiOp::Create { op: OpCode::Create, request: create_request("/m/a", None, 0) },
        MultiOp::Create { op: OpCode::Create2, request: create_request("/m/b", Some(vec![1]), 1) },
        MultiOp::Create {
            op: OpCode::CreateContainer,
            request: create_request("/m/c", Some(vec![]), CreateMode::Container.code()),
        },
        MultiOp::CreateTtl(CreateTtlRequest {
            path: "/m/d".into(),
            data: None,
            acl: vec![],
            flags: CreateMode::PersistentWithTtl.code(),
            ttl: 500,
        }),
        MultiOp::Delete(DeleteRequest { path: "/m/e".into(), version: 1 }),
        MultiOp::SetData(SetDataRequest { path: "/m/f".into(), data: Some(vec![2]), version: -1 }),
        MultiOp::Check(CheckVersionRequest { path: "/m".into(), version: 9 }),
    ]);
    request_multi_empty: xid 18, Request::Multi(vec![]);
    request_multi_read: xid 19, Request::MultiRead(vec![
        MultiOp::GetChildren(GetChildrenRequest { path: "/m".into(), watch: false }),
        MultiOp::GetData(GetDataRequest { path: "/m/f".into(), watch: false }),
    ]);
    request_reconfig: xid 20, Request::Reconfig(ReconfigRequest {
        joining_servers: None,
        leaving_servers: Some("3".into()),
        new_members: None,
        cur_config_id: 0x0000_0001_0000_0000,
    });
    request_check_watches: xid 21, Request::CheckWatches(CheckWatchesRequest {
        path: PATH.into(),
        watcher_type: WatcherType::Children.code(),
    });
    request_remove_watches: xid 22, Request::RemoveWatches(RemoveWatchesRequest {
        path: PATH.into(),
        watcher_type: WatcherType::PersistentRecursive.code(),
    });
    request_add_watch: xid 23, Request::AddWatch(AddWatchRequest {
        path: PATH.into(),
        mode: AddWatchMode::Persistent.code(),
    });
    request_set_watches: xid XID_SET_WATCHES, Request::SetWatches(SetWatches {
        relative_zxid: 0x0000_0001_0000_0020,
        data_watches: vec![PATH.into()],
        exist_watches: vec!["/missing".into()],
        child_watches: vec!["/".into()],
    });
    request_set_watches2: xid XID_SET_WATCHES, Request::SetWatches2(SetWatches2 {
        relative_zxid: 0x0000_0001_0000_0020,
        data_watches: vec![],
        exist_watches: vec![],
        child_watches: vec![],
        persistent_watches: vec![PATH.into()],
        persistent_recursive_watches: vec!["/".into()],
    });
    request_auth: xid XID_AUTH, Request::Auth(AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Buffer(b"bob:secret".to_vec()),
    });
    request_sasl: xid 24, Request::Sasl(GetSaslRequest { token: Buffer(vec![0x60, 0x01]) });
    request_who_am_i: xid 25, Request::WhoAmI;
    request_ping: xid XID_PING, Request::Ping;
    request_close_session: xid 26, Request::CloseSession;
}

#[test]
fn golden_requests_cover_every_request_and_multi_op_variant() {
    let requests = golden_requests();
    let mut seen = [false; REQUEST_VARIANTS];
    let mut ops_seen = [false; MULTI_OP_VARIANTS];
    for request in &requests {
        seen[request_variant(request)] = true;
        if let Request::Multi(ops) | Request::MultiRead(ops) = request {
            for op in ops {
                ops_seen[multi_op_variant(op)] = true;
            }
        }
    }
    assert_eq!(seen, [true; REQUEST_VARIANTS]);
    assert_eq!(ops_seen, [true; MULTI_OP_VARIANTS]);
}

// ---------------------------------------------------------------------------------------
// Responses and multi results
// ---------------------------------------------------------------------------------------

fn response_variant(response: &Response) -> usize {
    match response {
        Response::Empty => 0,
        Response::Create(_) => 1,
        Response::Create2(_) => 2,
        Response::Exists(_) => 3,
        Response::GetData(_) => 4,
        Response::SetData(_) => 5,
        Response::GetAcl(_) => 6,
        Response::SetAcl(_) => 7,
        Response::GetChildren(_) => 8,
        Response::GetChildren2(_) => 9,
        Response::GetAllChildrenNumber(_) => 10,
        Response::GetEphemerals(_) => 11,
        Response::Sync(_) => 12,
        Response::Multi(_) => 13,
        Response::AddWatch(_) => 14,
        Response::WhoAmI(_) => 15,
        Response::Sasl(_) => 16,
    }
}
const RESPONSE_VARIANTS: usize = 17;

fn multi_result_variant(result: &MultiResult) -> usize {
    match result {
        MultiResult::Create(_) => 0,
        MultiResult::Create2(_) => 1,
        MultiResult::Delete => 2,
        MultiResult::SetData(_) => 3,
        MultiResult::Check => 4,
        MultiResult::GetChildren(_) => 5,
        MultiResult::GetData(_) => 6,
        MultiResult::Error(_) => 7,
    }
}
const MULTI_RESULT_VARIANTS: usize = 8;

/// Declares one golden test per reply frame (given the request's opcode) and a list of
/// every response covered.
macro_rules! golden_responses {
    ($($test:ident: $op:ident, $header:expr, $response:expr;)*) => {
        $(
            #[test]
            fn $test() {
                let header: ReplyHeader = $header;
                let response: Response = $response;
                let frame = encode_reply(header, &response);
                let decoded = decode_reply(&frame[FRAME_PREFIX_LEN..], |xid| {
                    assert_eq!(xid, header.xid);
                    Some(OpCode::$op)
                });
                assert_eq!(decoded, Ok((header, Reply::Response(OpCode::$op, response.clone()))));
                let shown = format!("reply to {:?}\n{header:#?}\n{response:#?}", OpCode::$op);
                insta::assert_snapshot!(stringify!($test), dump(&Text(shown), &frame));
            }
        )*

        fn golden_responses() -> Vec<Response> {
            vec![$($response),*]
        }
    };
}

fn failed(header: ReplyHeader, code: ErrorCode) -> ReplyHeader {
    ReplyHeader { err: code.code(), ..header }
}

golden_responses! {
    response_empty_to_delete: Delete, reply_header(5), Response::Empty;
    response_error_no_node_to_get_data: GetData,
        failed(reply_header(7), ErrorCode::NoNode), Response::Empty;
    response_create: Create, reply_header(1),
        Response::Create(CreateResponse { path: "/zkd/app".into() });
    response_create2: Create2, reply_header(2),
        Response::Create2(Create2Response { path: UNICODE_PATH.into(), stat: stat() });
    response_create_ttl: CreateTtl, reply_header(4),
        Response::Create2(Create2Response { path: "/zkd/ttl0000000001".into(), stat: stat() });
    response_exists: Exists, reply_header(6), Response::Exists(ExistsResponse { stat: stat() });
    response_get_data_null: GetData, reply_header(7),
        Response::GetData(GetDataResponse { data: None, stat: stat() });
    response_get_data_empty: GetData, reply_header(7),
        Response::GetData(GetDataResponse { data: Some(vec![]), stat: stat() });
    response_reconfig: Reconfig, reply_header(20), Response::GetData(GetDataResponse {
        data: Some(b"server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=100000000".to_vec()),
        stat: stat(),
    });
    response_set_data: SetData, reply_header(8), Response::SetData(SetDataResponse { stat: stat() });
    response_check: Check, reply_header(16), Response::SetData(SetDataResponse { stat: stat() });
    response_get_acl: GetAcl, reply_header(9),
        Response::GetAcl(GetAclResponse { acl: vec![digest_acl()], stat: stat() });
    response_set_acl: SetAcl, reply_header(10), Response::SetAcl(SetAclResponse { stat: stat() });
    response_get_children: GetChildren, reply_header(11),
        Response::GetChildren(GetChildrenResponse { children: vec!["zkd".into(), "zookeeper".into()] });
    response_get_children2: GetChildren2, reply_header(12), Response::GetChildren2(GetChildren2Response {
        children: vec![],
        stat: stat(),
    });
    response_get_all_children_number: GetAllChildrenNumber, reply_header(13),
        Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 3 });
    response_get_ephemerals: GetEphemerals, reply_header(14),
        Response::GetEphemerals(GetEphemeralsResponse { ephemerals: vec!["/zkd/e".into()] });
    response_sync: Sync, reply_header(15), Response::Sync(SyncResponse { path: PATH.into() });
    response_multi_of_every_success: Multi, reply_header(17), Response::Multi(vec![
        MultiResult::Create(CreateResponse { path: "/m/a".into() }),
        MultiResult::Create2(Create2Response { path: "/m/b".into(), stat: stat() }),
        MultiResult::Delete,
        MultiResult::SetData(SetDataResponse { stat: stat() }),
        MultiResult::Check,
    ]);
    response_multi_failed: Multi, reply_header(17), Response::Multi(vec![
        MultiResult::Error(ErrorCode::Ok),
        MultiResult::Error(ErrorCode::NoNode),
        MultiResult::Error(ErrorCode::RuntimeInconsistency),
    ]);
    response_multi_empty: Multi, reply_header(18), Response::Multi(vec![]);
    response_multi_refused_whole: Multi,
        failed(reply_header(18), ErrorCode::SessionMoved), Response::Empty;
    response_multi_read: MultiRead, reply_header(19), Response::Multi(vec![
        MultiResult::GetChildren(GetChildrenResponse { children: vec!["f".into()] }),
        MultiResult::GetData(GetDataResponse { data: Some(vec![2]), stat: stat() }),
        MultiResult::Error(ErrorCode::NoAuth),
    ]);
    response_add_watch: AddWatch, reply_header(23), Response::AddWatch(ErrorResponse { err: 0 });
    response_who_am_i: WhoAmI, reply_header(25), Response::WhoAmI(WhoAmIResponse {
        client_info: vec![ClientInfo { auth_scheme: "ip".into(), user: "10.1.2.3".into() }],
    });
    response_sasl: Sasl, reply_header(24), Response::Sasl(SetSaslResponse { token: Buffer(vec![0x05]) });
    response_ping: Ping, ReplyHeader { xid: XID_PING, zxid: 0x0000_0002_0000_002a, err: 0 },
        Response::Empty;
    response_auth_failed: Auth, ReplyHeader { xid: XID_AUTH, zxid: 0, err: ErrorCode::AuthFailed.code() },
        Response::Empty;
    response_set_watches: SetWatches,
        ReplyHeader { xid: XID_SET_WATCHES, zxid: 0x0000_0002_0000_002a, err: 0 }, Response::Empty;
    response_close_session: CloseSession, reply_header(26), Response::Empty;
}

#[test]
fn golden_responses_cover_every_response_and_multi_result_variant() {
    let mut seen = [false; RESPONSE_VARIANTS];
    let mut results_seen = [false; MULTI_RESULT_VARIANTS];
    for response in golden_responses() {
        seen[response_variant(&response)] = true;
        if let Response::Multi(results) = &response {
            for result in results {
                results_seen[multi_result_variant(result)] = true;
            }
        }
    }
    assert_eq!(seen, [true; RESPONSE_VARIANTS]);
    assert_eq!(results_seen, [true; MULTI_RESULT_VARIANTS]);
}

/// Each multi result on its own, so a change in one result's encoding names that result.
#[test]
fn multi_result_vectors_one_by_one() {
    let results = [
        ("create", MultiResult::Create(CreateResponse { path: "/m/a".into() })),
        ("create2", MultiResult::Create2(Create2Response { path: "/m/b".into(), stat: stat() })),
        ("delete", MultiResult::Delete),
        ("set_data", MultiResult::SetData(SetDataResponse { stat: stat() })),
        ("check", MultiResult::Check),
        ("get_children", MultiResult::GetChildren(GetChildrenResponse { children: vec!["c".into()] })),
        ("get_data", MultiResult::GetData(GetDataResponse { data: None, stat: stat() })),
        ("error", MultiResult::Error(ErrorCode::BadVersion)),
    ];
    let mut seen = [false; MULTI_RESULT_VARIANTS];
    for (name, result) in results {
        seen[multi_result_variant(&result)] = true;
        let op = OpCode::Multi;
        let header = reply_header(30);
        let response = Response::Multi(vec![result]);
        let frame = encode_reply(header, &response);
        assert_eq!(
            decode_reply(&frame[FRAME_PREFIX_LEN..], |_| Some(op)),
            Ok((header, Reply::Response(op, response.clone())))
        );
        insta::assert_snapshot!(format!("multi_result_{name}"), dump(&response, &frame));
    }
    assert_eq!(seen, [true; MULTI_RESULT_VARIANTS]);
}

// ---------------------------------------------------------------------------------------
// Notifications and the handshake, framed
// ---------------------------------------------------------------------------------------

#[test]
fn notification_frame() {
    let event = WatcherEvent {
        event_type: EventType::NodeDeleted.code(),
        state: KeeperState::SyncConnected.code(),
        path: UNICODE_PATH.into(),
    };
    let zxid = 0x0000_0002_0000_002b;
    let frame = encode_notification(zxid, &event);
    assert_eq!(
        decode_reply(&frame[FRAME_PREFIX_LEN..], |_| None),
        Ok((ReplyHeader { xid: XID_NOTIFICATION, zxid, err: 0 }, Reply::Notification(event.clone())))
    );
    insta::assert_snapshot!("notification_node_deleted", dump(&event, &frame));
}

#[test]
fn connect_frames_with_and_without_read_only() {
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0x0000_0001_0000_0010,
        time_out: 30_000,
        session_id: 0,
        passwd: Buffer(vec![0; 16]),
        read_only: Some(false),
    };
    let response = ConnectResponse {
        protocol_version: 0,
        time_out: 30_000,
        session_id: 0x0100_0a3b_5c6d_0001,
        passwd: passwd(),
        read_only: Some(false),
    };
    let old_request = ConnectRequest { read_only: None, ..request.clone() };
    let old_response = ConnectResponse { read_only: None, ..response.clone() };

    let mut shown = String::new();
    for (value, frame) in [
        (format!("{request:#?}"), encode_framed(&request)),
        (format!("{old_request:#?}"), encode_framed(&old_request)),
        (format!("{response:#?}"), encode_framed(&response)),
        (format!("{old_response:#?}"), encode_framed(&old_response)),
    ] {
        shown.push_str(&dump(&Text(value), &frame));
        shown.push('\n');
    }
    insta::assert_snapshot!("connect_frames", shown);

    for (record, framed) in [(&request, 45), (&old_request, 44)] {
        let frame = encode_framed(record);
        assert_eq!(frame.len(), FRAME_PREFIX_LEN + framed);
        assert_eq!(ConnectRequest::from_bytes(&frame[FRAME_PREFIX_LEN..]).as_ref(), Ok(record));
    }
    for (record, framed) in [(&response, 37), (&old_response, 36)] {
        let frame = encode_framed(record);
        assert_eq!(frame.len(), FRAME_PREFIX_LEN + framed);
        assert_eq!(ConnectResponse::from_bytes(&frame[FRAME_PREFIX_LEN..]).as_ref(), Ok(record));
    }
}

// ---------------------------------------------------------------------------------------
// Hand-checked against ZooKeeper's definitions
// ---------------------------------------------------------------------------------------

/// ClientCnxn sends a ping as RequestHeader{xid -2, type 11} with no body: a 12-byte frame.
#[test]
fn hand_checked_ping_frame_is_twelve_bytes() {
    assert_eq!(encode_request(XID_PING, &Request::Ping), hex("00 00 00 08 ff ff ff fe 00 00 00 0b"));
}

/// A 3.x client's ConnectRequest: 4+8+4+8+(4+16) = 44 bytes, 45 with the readOnly byte.
#[test]
fn hand_checked_connect_request_is_45_bytes_with_read_only_and_44_without() {
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 30_000,
        session_id: 0,
        passwd: Buffer(vec![0; 16]),
        read_only: Some(false),
    };
    let body = hex("00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 75 30 | 00 00 00 00 00 00 00 00
         00 00 00 10 | 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 | 00");
    assert_eq!(body.len(), 45);
    assert_eq!(request.to_bytes(), body);
    let mut frame = hex("00 00 00 2d");
    frame.extend_from_slice(&body);
    assert_eq!(encode_framed(&request), frame);

    let old = ConnectRequest { read_only: None, ..request };
    assert_eq!(old.to_bytes(), body[..44]);
    assert_eq!(encode_framed(&old)[..4], hex("00 00 00 2c"));
    assert_eq!(ConnectRequest::from_bytes(&body[..44]), Ok(old));
}

/// The ConnectResponse a server sends: protocolVersion, timeOut, sessionId, passwd, readOnly.
#[test]
fn hand_checked_connect_response_field_order() {
    let response = ConnectResponse {
        protocol_version: 0,
        time_out: 4_000,
        session_id: 0x0100_0000_0000_0001,
        passwd: Buffer(vec![0x11; 16]),
        read_only: Some(true),
    };
    assert_eq!(
        response.to_bytes(),
        hex("00 00 00 00 | 00 00 0f a0 | 01 00 00 00 00 00 00 01 | 00 00 00 10
             11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 | 01")
    );
}

/// MultiOperationRecord ends with MultiHeader{type -1, done true, err -1}.
#[test]
fn hand_checked_empty_multi_is_header_and_terminator() {
    assert_eq!(
        encode_request(7, &Request::Multi(vec![])),
        hex("00 00 00 11 | 00 00 00 07 00 00 00 0e | ff ff ff ff 01 ff ff ff ff")
    );
}

/// Each op in a multi is MultiHeader{type, done false, err -1} then the op's record.
#[test]
fn hand_checked_multi_op_header_precedes_each_op() {
    let frame =
        encode_request(1, &Request::Multi(vec![MultiOp::Delete(DeleteRequest { path: "/a".into(), version: -1 })]));
    assert_eq!(
        frame,
        hex("00 00 00 24 | 00 00 00 01 00 00 00 0e
             00 00 00 02 00 ff ff ff ff | 00 00 00 02 2f 61 ff ff ff ff
             ff ff ff ff 01 ff ff ff ff")
    );
}

/// MultiResponse writes MultiHeader{type, false, err} with err 0 on success and the code on
/// an ErrorResult (type -1), then ErrorResponse{err}.
#[test]
fn hand_checked_multi_results_carry_err_in_header_and_body() {
    let frame = encode_reply(
        ReplyHeader { xid: 1, zxid: 2, err: 0 },
        &Response::Multi(vec![MultiResult::Check, MultiResult::Error(ErrorCode::BadVersion)]),
    );
    assert_eq!(
        frame,
        hex("00 00 00 2f | 00 00 00 01 00 00 00 00 00 00 00 02 00 00 00 00
             00 00 00 0d 00 00 00 00 00
             ff ff ff ff 00 ff ff ff 99 | ff ff ff 99
             ff ff ff ff 01 ff ff ff ff")
    );
}

/// A notification is ReplyHeader{xid -1, zxid, err 0} then WatcherEvent{type, state, path}.
#[test]
fn hand_checked_notification_frame() {
    let event = WatcherEvent {
        event_type: EventType::NodeDataChanged.code(),
        state: KeeperState::SyncConnected.code(),
        path: "/a".into(),
    };
    assert_eq!(
        encode_notification(-1, &event),
        hex("00 00 00 1e | ff ff ff ff | ff ff ff ff ff ff ff ff | 00 00 00 00
             00 00 00 03 | 00 00 00 03 | 00 00 00 02 2f 61")
    );
}

/// Stat is 6 longs and 5 ints: 68 bytes, in zookeeper.jute order.
#[test]
fn hand_checked_stat_is_68_bytes_in_jute_order() {
    let bytes = stat().to_bytes();
    assert_eq!(bytes.len(), 68);
    assert_eq!(
        bytes,
        hex("00 00 00 01 00 00 00 01 | 00 00 00 01 00 00 00 02
             00 00 01 8b cf e5 68 00 | 00 00 01 8b cf e5 68 01
             00 00 00 03 | 00 00 00 04 | 00 00 00 05 | 01 02 03 04 05 06 07 08
             00 00 00 06 | 00 00 00 07 | 00 00 00 01 00 00 00 03")
    );
}

/// A null buffer is length -1, an empty one length 0; znode data keeps them apart.
#[test]
fn hand_checked_null_and_empty_data_differ_on_the_wire() {
    let null = SetDataRequest { path: "/a".into(), data: None, version: -1 };
    let empty = SetDataRequest { data: Some(vec![]), ..null.clone() };
    assert_eq!(null.to_bytes(), hex("00 00 00 02 2f 61 | ff ff ff ff | ff ff ff ff"));
    assert_eq!(empty.to_bytes(), hex("00 00 00 02 2f 61 | 00 00 00 00 | ff ff ff ff"));
    assert_eq!(SetDataRequest::from_bytes(&null.to_bytes()), Ok(null));
    assert_eq!(SetDataRequest::from_bytes(&empty.to_bytes()), Ok(empty));
}

/// create("/a", null, OPEN_ACL_UNSAFE, EPHEMERAL) as the Java client frames it.
#[test]
fn hand_checked_create_with_open_acl_unsafe() {
    let frame = encode_request(3, &Request::Create(create_request("/a", None, CreateMode::Ephemeral.code())));
    assert_eq!(
        frame,
        hex("00 00 00 31 | 00 00 00 03 00 00 00 01
             00 00 00 02 2f 61 | ff ff ff ff
             00 00 00 01 | 00 00 00 1f | 00 00 00 05 77 6f 72 6c 64 | 00 00 00 06 61 6e 79 6f 6e 65
             00 00 00 01")
    );
}

/// The ping reply: ReplyHeader{xid -2, zxid, err 0} and nothing else.
#[test]
fn hand_checked_ping_reply_is_sixteen_bytes() {
    assert_eq!(
        encode_reply(ReplyHeader { xid: XID_PING, zxid: 0x10, err: 0 }, &Response::Empty),
        hex("00 00 00 10 | ff ff ff fe | 00 00 00 00 00 00 00 10 | 00 00 00 00")
    );
}
