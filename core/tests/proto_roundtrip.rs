//! Property tests for the client wire protocol: every record, request, response and
//! notification survives an encode/decode round trip, and decoding hostile bytes never
//! panics, never over-reads and never allocates more than the frame justifies.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use zk_core::proto::*;
use zk_core::ErrorCode;

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Any unicode string (including the empty one and multi-byte chars), or a path-like one.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        3 => any::<String>(),
        2 => "(/[a-zA-Z0-9._ü日-]{1,8}){1,4}",
        1 => Just("/".to_owned()),
    ]
}

fn opt_string() -> impl Strategy<Value = Option<String>> {
    prop_oneof![1 => Just(None), 3 => string().prop_map(Some)]
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(string(), 0..5)
}

fn int() -> impl Strategy<Value = i32> {
    prop_oneof![
        3 => any::<i32>(),
        1 => select(vec![0, -1, 1, i32::MIN, i32::MAX]),
    ]
}

fn long() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => any::<i64>(),
        1 => select(vec![0, -1, 1, i64::MIN, i64::MAX, 0x0000_0001_0000_0000]),
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![1 => Just(Vec::new()), 3 => vec(any::<u8>(), 0..64)]
}

fn buffer() -> impl Strategy<Value = Buffer> {
    bytes().prop_map(Buffer)
}

/// Znode data: null, empty and non-empty are three different values.
fn data() -> impl Strategy<Value = Data> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        3 => bytes().prop_map(Some),
    ]
}

fn id() -> impl Strategy<Value = Id> {
    (string(), string()).prop_map(|(scheme, id)| Id { scheme, id })
}

fn acl() -> impl Strategy<Value = Acl> {
    (int(), id()).prop_map(|(perms, id)| Acl { perms, id })
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(acl(), 0..4)
}

fn stat() -> impl Strategy<Value = Stat> {
    ((long(), long(), long(), long()), (int(), int(), int()), long(), (int(), int()), long()).prop_map(
        |(
            (czxid, mzxid, ctime, mtime),
            (version, cversion, aversion),
            ephemeral_owner,
            (data_length, num_children),
            pzxid,
        )| Stat {
            czxid,
            mzxid,
            ctime,
            mtime,
            version,
            cversion,
            aversion,
            ephemeral_owner,
            data_length,
            num_children,
            pzxid,
        },
    )
}

fn client_info() -> impl Strategy<Value = ClientInfo> {
    (string(), string()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
}

fn connect_request() -> impl Strategy<Value = ConnectRequest> {
    (int(), long(), int(), long(), buffer(), proptest::option::of(any::<bool>())).prop_map(
        |(protocol_version, last_zxid_seen, time_out, session_id, passwd, read_only)| ConnectRequest {
            protocol_version,
            last_zxid_seen,
            time_out,
            session_id,
            passwd,
            read_only,
        },
    )
}

fn connect_response() -> impl Strategy<Value = ConnectResponse> {
    (int(), int(), long(), buffer(), proptest::option::of(any::<bool>())).prop_map(
        |(protocol_version, time_out, session_id, passwd, read_only)| ConnectResponse {
            protocol_version,
            time_out,
            session_id,
            passwd,
            read_only,
        },
    )
}

fn set_watches() -> impl Strategy<Value = SetWatches> {
    (long(), strings(), strings(), strings()).prop_map(|(relative_zxid, data_watches, exist_watches, child_watches)| {
        SetWatches { relative_zxid, data_watches, exist_watches, child_watches }
    })
}

fn set_watches2() -> impl Strategy<Value = SetWatches2> {
    (long(), strings(), strings(), strings(), strings(), strings()).prop_map(
        |(relative_zxid, data_watches, exist_watches, child_watches, persistent, recursive)| SetWatches2 {
            relative_zxid,
            data_watches,
            exist_watches,
            child_watches,
            persistent_watches: persistent,
            persistent_recursive_watches: recursive,
        },
    )
}

fn request_header() -> impl Strategy<Value = RequestHeader> {
    (int(), int()).prop_map(|(xid, op_type)| RequestHeader { xid, op_type })
}

fn multi_header() -> impl Strategy<Value = MultiHeader> {
    (int(), any::<bool>(), int()).prop_map(|(op_type, done, err)| MultiHeader { op_type, done, err })
}

fn auth_packet() -> impl Strategy<Value = AuthPacket> {
    (int(), string(), buffer()).prop_map(|(auth_type, scheme, auth)| AuthPacket { auth_type, scheme, auth })
}

fn reply_header() -> impl Strategy<Value = ReplyHeader> {
    (int(), long(), int()).prop_map(|(xid, zxid, err)| ReplyHeader { xid, zxid, err })
}

fn path_watch<T: std::fmt::Debug>(make: fn(String, bool) -> T) -> impl Strategy<Value = T> {
    (string(), any::<bool>()).prop_map(move |(path, watch)| make(path, watch))
}

fn path_int<T: std::fmt::Debug>(make: fn(String, i32) -> T) -> impl Strategy<Value = T> {
    (string(), int()).prop_map(move |(path, value)| make(path, value))
}

fn path_only<T: std::fmt::Debug>(make: fn(String) -> T) -> impl Strategy<Value = T> {
    string().prop_map(make)
}

fn get_data_request() -> impl Strategy<Value = GetDataRequest> {
    path_watch(|path, watch| GetDataRequest { path, watch })
}

fn set_data_request() -> impl Strategy<Value = SetDataRequest> {
    (string(), data(), int()).prop_map(|(path, data, version)| SetDataRequest { path, data, version })
}

fn reconfig_request() -> impl Strategy<Value = ReconfigRequest> {
    (opt_string(), opt_string(), opt_string(), long()).prop_map(
        |(joining_servers, leaving_servers, new_members, cur_config_id)| ReconfigRequest {
            joining_servers,
            leaving_servers,
            new_members,
            cur_config_id,
        },
    )
}

fn create_request() -> impl Strategy<Value = CreateRequest> {
    (string(), data(), acls(), int()).prop_map(|(path, data, acl, flags)| CreateRequest { path, data, acl, flags })
}

fn create_ttl_request() -> impl Strategy<Value = CreateTtlRequest> {
    (string(), data(), acls(), int(), long()).prop_map(|(path, data, acl, flags, ttl)| CreateTtlRequest {
        path,
        data,
        acl,
        flags,
        ttl,
    })
}

fn delete_request() -> impl Strategy<Value = DeleteRequest> {
    path_int(|path, version| DeleteRequest { path, version })
}

fn get_children_request() -> impl Strategy<Value = GetChildrenRequest> {
    path_watch(|path, watch| GetChildrenRequest { path, watch })
}

fn check_version_request() -> impl Strategy<Value = CheckVersionRequest> {
    path_int(|path, version| CheckVersionRequest { path, version })
}

fn set_acl_request() -> impl Strategy<Value = SetAclRequest> {
    (string(), acls(), int()).prop_map(|(path, acl, version)| SetAclRequest { path, acl, version })
}

fn watcher_event() -> impl Strategy<Value = WatcherEvent> {
    (int(), int(), string()).prop_map(|(event_type, state, path)| WatcherEvent { event_type, state, path })
}

fn create2_response() -> impl Strategy<Value = Create2Response> {
    (string(), stat()).prop_map(|(path, stat)| Create2Response { path, stat })
}

fn get_data_response() -> impl Strategy<Value = GetDataResponse> {
    (data(), stat()).prop_map(|(data, stat)| GetDataResponse { data, stat })
}

fn get_children_response() -> impl Strategy<Value = GetChildrenResponse> {
    strings().prop_map(|children| GetChildrenResponse { children })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    select(ErrorCode::ALL.to_vec())
}

fn write_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        (select(vec![OpCode::Create, OpCode::Create2, OpCode::CreateContainer]), create_request())
            .prop_map(|(op, request)| MultiOp::Create { op, request }),
        create_ttl_request().prop_map(MultiOp::CreateTtl),
        delete_request().prop_map(MultiOp::Delete),
        set_data_request().prop_map(MultiOp::SetData),
        check_version_request().prop_map(MultiOp::Check),
    ]
}

fn read_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![get_children_request().prop_map(MultiOp::GetChildren), get_data_request().prop_map(MultiOp::GetData),]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        create_request().prop_map(Request::Create),
        create_request().prop_map(Request::Create2),
        create_request().prop_map(Request::CreateContainer),
        create_ttl_request().prop_map(Request::CreateTtl),
        delete_request().prop_map(Request::Delete),
        path_watch(|path, watch| Request::Exists(ExistsRequest { path, watch })),
        get_data_request().prop_map(Request::GetData),
        set_data_request().prop_map(Request::SetData),
        path_only(|path| Request::GetAcl(GetAclRequest { path })),
        set_acl_request().prop_map(Request::SetAcl),
        get_children_request().prop_map(Request::GetChildren),
        path_watch(|path, watch| Request::GetChildren2(GetChildren2Request { path, watch })),
        path_only(|path| Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path })),
        path_only(|prefix_path| Request::GetEphemerals(GetEphemeralsRequest { prefix_path })),
        path_only(|path| Request::Sync(SyncRequest { path })),
        check_version_request().prop_map(Request::Check),
        vec(write_op(), 0..6).prop_map(Request::Multi),
        vec(read_op(), 0..6).prop_map(Request::MultiRead),
        reconfig_request().prop_map(Request::Reconfig),
        path_int(|path, watcher_type| Request::CheckWatches(CheckWatchesRequest { path, watcher_type })),
        path_int(|path, watcher_type| Request::RemoveWatches(RemoveWatchesRequest { path, watcher_type })),
        path_int(|path, mode| Request::AddWatch(AddWatchRequest { path, mode })),
        set_watches().prop_map(Request::SetWatches),
        set_watches2().prop_map(Request::SetWatches2),
        auth_packet().prop_map(Request::Auth),
        buffer().prop_map(|token| Request::Sasl(GetSaslRequest { token })),
        Just(Request::WhoAmI),
        Just(Request::Ping),
        Just(Request::CloseSession),
    ]
}

fn multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        string().prop_map(|path| MultiResult::Create(CreateResponse { path })),
        create2_response().prop_map(MultiResult::Create2),
        Just(MultiResult::Delete),
        stat().prop_map(|stat| MultiResult::SetData(SetDataResponse { stat })),
        Just(MultiResult::Check),
        get_children_response().prop_map(MultiResult::GetChildren),
        get_data_response().prop_map(MultiResult::GetData),
        error_code().prop_map(MultiResult::Error),
    ]
}

/// Opcodes whose successful reply has no body.
const EMPTY_REPLY_OPS: &[OpCode] = &[
    OpCode::Delete,
    OpCode::DeleteContainer,
    OpCode::Ping,
    OpCode::SetWatches,
    OpCode::SetWatches2,
    OpCode::CheckWatches,
    OpCode::RemoveWatches,
    OpCode::Auth,
    OpCode::CloseSession,
    OpCode::CreateSession,
    OpCode::Notification,
    OpCode::Error,
];

/// A response with a request opcode it answers and the header err it carries: a body
/// travels only with err 0 (a multi whose ops failed has err 0 and per-op errors).
fn op_and_response() -> impl Strategy<Value = (OpCode, i32, Response)> {
    prop_oneof![
        (select(EMPTY_REPLY_OPS.to_vec()), int()).prop_map(|(op, err)| (op, err, Response::Empty)),
        // Any request that failed, a multi refused as a whole included: no body.
        (select(OpCode::ALL.to_vec()), int())
            .prop_filter("a failed reply has a non-zero err", |(_, err)| *err != 0)
            .prop_map(|(op, err)| (op, err, Response::Empty)),
        string().prop_map(|path| (OpCode::Create, 0, Response::Create(CreateResponse { path }))),
        (select(vec![OpCode::Create2, OpCode::CreateTtl, OpCode::CreateContainer]), create2_response())
            .prop_map(|(op, r)| (op, 0, Response::Create2(r))),
        stat().prop_map(|stat| (OpCode::Exists, 0, Response::Exists(ExistsResponse { stat }))),
        (select(vec![OpCode::GetData, OpCode::Reconfig]), get_data_response()).prop_map(|(op, r)| (
            op,
            0,
            Response::GetData(r)
        )),
        (select(vec![OpCode::SetData, OpCode::Check]), stat()).prop_map(|(op, stat)| (
            op,
            0,
            Response::SetData(SetDataResponse { stat })
        )),
        (acls(), stat()).prop_map(|(acl, stat)| (OpCode::GetAcl, 0, Response::GetAcl(GetAclResponse { acl, stat }))),
        stat().prop_map(|stat| (OpCode::SetAcl, 0, Response::SetAcl(SetAclResponse { stat }))),
        get_children_response().prop_map(|r| (OpCode::GetChildren, 0, Response::GetChildren(r))),
        (strings(), stat()).prop_map(|(children, stat)| {
            (OpCode::GetChildren2, 0, Response::GetChildren2(GetChildren2Response { children, stat }))
        }),
        int().prop_map(|total_number| {
            (
                OpCode::GetAllChildrenNumber,
                0,
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number }),
            )
        }),
        strings().prop_map(|ephemerals| {
            (OpCode::GetEphemerals, 0, Response::GetEphemerals(GetEphemeralsResponse { ephemerals }))
        }),
        string().prop_map(|path| (OpCode::Sync, 0, Response::Sync(SyncResponse { path }))),
        (select(vec![OpCode::Multi, OpCode::MultiRead]), vec(multi_result(), 0..6)).prop_map(|(op, results)| (
            op,
            0,
            Response::Multi(results)
        )),
        int().prop_map(|err| (OpCode::AddWatch, 0, Response::AddWatch(ErrorResponse { err }))),
        vec(client_info(), 0..4).prop_map(|client_info| (
            OpCode::WhoAmI,
            0,
            Response::WhoAmI(WhoAmIResponse { client_info })
        )),
        buffer().prop_map(|token| (OpCode::Sasl, 0, Response::Sasl(SetSaslResponse { token }))),
    ]
}

/// An xid that is not one of the special ones decode_reply recognises by value.
fn plain_xid() -> impl Strategy<Value = i32> {
    int().prop_filter("special xid", |xid| ![XID_NOTIFICATION, XID_PING, XID_AUTH, XID_SET_WATCHES].contains(xid))
}

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

fn is_truncated<T>(result: &Result<T, DecodeError>) -> bool {
    matches!(result, Err(DecodeError::Truncated { .. }))
}

/// Encodes, decodes and compares; then checks that every strict prefix is `Truncated`.
fn check_record<R: Record + PartialEq + std::fmt::Debug>(value: &R) -> Result<(), TestCaseError> {
    let bytes = value.to_bytes();
    let decoded = R::from_bytes(&bytes);
    prop_assert_eq!(decoded.as_ref(), Ok(value));
    for len in 0..bytes.len() {
        prop_assert!(
            matches!(R::from_bytes(&bytes[..len]), Err(DecodeError::Truncated { .. })),
            "prefix of {} of {} bytes did not fail as truncated: {:?}",
            len,
            bytes.len(),
            R::from_bytes(&bytes[..len])
        );
    }
    // One byte more is refused as trailing.
    let mut longer = bytes;
    longer.push(0);
    prop_assert_eq!(R::from_bytes(&longer), Err(DecodeError::TrailingBytes(1)));
    Ok(())
}

macro_rules! record_round_trips {
    ($($test:ident: $strategy:expr;)*) => {
        proptest! {
            $(
                #[test]
                fn $test(value in $strategy) {
                    check_record(&value)?;
                }
            )*
        }
    };
}

record_round_trips! {
    id_round_trips: id();
    acl_round_trips: acl();
    stat_round_trips: stat();
    client_info_round_trips: client_info();
    set_watches_round_trips: set_watches();
    set_watches2_round_trips: set_watches2();
    request_header_round_trips: request_header();
    multi_header_round_trips: multi_header();
    auth_packet_round_trips: auth_packet();
    reply_header_round_trips: reply_header();
    get_data_request_round_trips: get_data_request();
    set_data_request_round_trips: set_data_request();
    reconfig_request_round_trips: reconfig_request();
    set_data_response_round_trips: stat().prop_map(|stat| SetDataResponse { stat });
    get_sasl_request_round_trips: buffer().prop_map(|token| GetSaslRequest { token });
    set_sasl_request_round_trips: buffer().prop_map(|token| SetSaslRequest { token });
    set_sasl_response_round_trips: buffer().prop_map(|token| SetSaslResponse { token });
    create_request_round_trips: create_request();
    create_ttl_request_round_trips: create_ttl_request();
    delete_request_round_trips: delete_request();
    get_children_request_round_trips: get_children_request();
    get_all_children_number_request_round_trips:
        path_only(|path| GetAllChildrenNumberRequest { path });
    get_children2_request_round_trips: path_watch(|path, watch| GetChildren2Request { path, watch });
    check_version_request_round_trips: check_version_request();
    sync_request_round_trips: path_only(|path| SyncRequest { path });
    sync_response_round_trips: path_only(|path| SyncResponse { path });
    get_acl_request_round_trips: path_only(|path| GetAclRequest { path });
    set_acl_request_round_trips: set_acl_request();
    set_acl_response_round_trips: stat().prop_map(|stat| SetAclResponse { stat });
    add_watch_request_round_trips: path_int(|path, mode| AddWatchRequest { path, mode });
    watcher_event_round_trips: watcher_event();
    error_response_round_trips: int().prop_map(|err| ErrorResponse { err });
    create_response_round_trips: path_only(|path| CreateResponse { path });
    create2_response_round_trips: create2_response();
    exists_request_round_trips: path_watch(|path, watch| ExistsRequest { path, watch });
    exists_response_round_trips: stat().prop_map(|stat| ExistsResponse { stat });
    get_data_response_round_trips: get_data_response();
    get_children_response_round_trips: get_children_response();
    get_all_children_number_response_round_trips:
        int().prop_map(|total_number| GetAllChildrenNumberResponse { total_number });
    get_children2_response_round_trips:
        (strings(), stat()).prop_map(|(children, stat)| GetChildren2Response { children, stat });
    get_acl_response_round_trips: (acls(), stat()).prop_map(|(acl, stat)| GetAclResponse { acl, stat });
    check_watches_request_round_trips:
        path_int(|path, watcher_type| CheckWatchesRequest { path, watcher_type });
    remove_watches_request_round_trips:
        path_int(|path, watcher_type| RemoveWatchesRequest { path, watcher_type });
    get_ephemerals_request_round_trips: path_only(|prefix_path| GetEphemeralsRequest { prefix_path });
    get_ephemerals_response_round_trips:
        strings().prop_map(|ephemerals| GetEphemeralsResponse { ephemerals });
    who_am_i_response_round_trips:
        vec(client_info(), 0..4).prop_map(|client_info| WhoAmIResponse { client_info });
}

proptest! {
    /// With readOnly the last byte is optional: dropping it decodes as an old client's
    /// request; every shorter prefix is truncated. Without it, every prefix is truncated.
    #[test]
    fn connect_request_round_trips_with_and_without_read_only(value in connect_request()) {
        let bytes = value.to_bytes();
        prop_assert_eq!(bytes.len(), 28 + value.passwd.0.len() + usize::from(value.read_only.is_some()));
        let decoded = ConnectRequest::from_bytes(&bytes);
        prop_assert_eq!(decoded.as_ref(), Ok(&value));
        let fixed_end = bytes.len() - usize::from(value.read_only.is_some());
        for len in 0..fixed_end {
            prop_assert!(is_truncated(&ConnectRequest::from_bytes(&bytes[..len])), "not truncated: {:?}", ConnectRequest::from_bytes(&bytes[..len]));
        }
        if value.read_only.is_some() {
            let old = ConnectRequest { read_only: None, ..value.clone() };
            prop_assert_eq!(ConnectRequest::from_bytes(&bytes[..fixed_end]), Ok(old));
        }
        let mut longer = bytes.clone();
        longer.push(1);
        match value.read_only {
            None => prop_assert_eq!(
                ConnectRequest::from_bytes(&longer),
                Ok(ConnectRequest { read_only: Some(true), ..value.clone() })
            ),
            Some(_) => prop_assert_eq!(ConnectRequest::from_bytes(&longer), Err(DecodeError::TrailingBytes(1))),
        }
        // Framed, the prefix holds the body length.
        let frame = encode_framed(&value);
        prop_assert_eq!(split_frame(&frame, usize::MAX), Ok(Some((&bytes[..], frame.len()))));
    }

    #[test]
    fn connect_response_round_trips_with_and_without_read_only(value in connect_response()) {
        let bytes = value.to_bytes();
        prop_assert_eq!(bytes.len(), 20 + value.passwd.0.len() + usize::from(value.read_only.is_some()));
        let decoded = ConnectResponse::from_bytes(&bytes);
        prop_assert_eq!(decoded.as_ref(), Ok(&value));
        let fixed_end = bytes.len() - usize::from(value.read_only.is_some());
        for len in 0..fixed_end {
            prop_assert!(is_truncated(&ConnectResponse::from_bytes(&bytes[..len])), "not truncated: {:?}", ConnectResponse::from_bytes(&bytes[..len]));
        }
        if value.read_only.is_some() {
            let old = ConnectResponse { read_only: None, ..value.clone() };
            prop_assert_eq!(ConnectResponse::from_bytes(&bytes[..fixed_end]), Ok(old));
        }
    }

    /// Null, empty and non-empty data are three values on the wire and after decoding.
    #[test]
    fn data_null_and_empty_are_preserved(data in data(), stat in stat()) {
        let response = GetDataResponse { data: data.clone(), stat };
        let bytes = response.to_bytes();
        let expected_prefix: [u8; 4] = match &data {
            None => [0xff; 4],
            Some(bytes) => (bytes.len() as i32).to_be_bytes(),
        };
        prop_assert_eq!(&bytes[..4], &expected_prefix[..]);
        prop_assert_eq!(GetDataResponse::from_bytes(&bytes).map(|r| r.data), Ok(data));
    }
}

// ---------------------------------------------------------------------------------------
// Requests, responses, notifications
// ---------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn request_round_trips_through_encode_request(xid in int(), request in request()) {
        let frame = encode_request(xid, &request);
        let (body, used) = split_frame(&frame, usize::MAX).unwrap().unwrap();
        prop_assert_eq!(used, frame.len());
        let header = RequestHeader { xid, op_type: request.op_code().code() };
        prop_assert_eq!(
            decode_request(body),
            Ok(ClientFrame { header, body: Ok(request.clone()) })
        );
        // Every strict prefix: the header truncated, or the body malformed as truncated.
        for len in 0..body.len() {
            match decode_request(&body[..len]) {
                Err(DecodeError::Truncated { .. }) => prop_assert!(len < 8),
                Ok(ClientFrame { header: got, body: Err(RequestError::Malformed(DecodeError::Truncated { .. })) }) => {
                    prop_assert!(len >= 8);
                    prop_assert_eq!(got, header);
                }
                other => prop_assert!(false, "prefix of {} bytes decoded as {:?}", len, other),
            }
        }
    }

    /// Multis of any mix of write ops (including create2/createContainer/createTTL) and
    /// multiReads of any mix of reads keep their ops, in order.
    #[test]
    fn multi_and_multi_read_keep_every_op_in_order(
        writes in vec(write_op(), 1..10),
        reads in vec(read_op(), 1..10),
    ) {
        let multi = Request::Multi(writes);
        let frame = encode_request(1, &multi);
        prop_assert_eq!(decode_request(&frame[4..]).unwrap().body, Ok(multi));
        let multi_read = Request::MultiRead(reads);
        let frame = encode_request(2, &multi_read);
        prop_assert_eq!(decode_request(&frame[4..]).unwrap().body, Ok(multi_read));
    }

    /// ZooKeeper refuses a multi that mixes reads and writes ("Mixing different kind of ops").
    #[test]
    fn multi_mixing_reads_and_writes_is_refused(
        writes in vec(write_op(), 1..4),
        reads in vec(read_op(), 1..4),
        as_multi_read in any::<bool>(),
        reads_first in any::<bool>(),
    ) {
        let ops: Vec<MultiOp> = if reads_first {
            reads.into_iter().chain(writes).collect()
        } else {
            writes.into_iter().chain(reads).collect()
        };
        let request = if as_multi_read { Request::MultiRead(ops) } else { Request::Multi(ops) };
        let frame = encode_request(9, &request);
        prop_assert_eq!(
            decode_request(&frame[4..]).unwrap().body,
            Err(RequestError::Malformed(DecodeError::InvalidValue("mixing different kind of ops in multi")))
        );
    }

    #[test]
    fn response_round_trips_through_encode_reply(
        xid in plain_xid(),
        zxid in long(),
        (op, err, response) in op_and_response(),
    ) {
        let header = ReplyHeader { xid, zxid, err };
        let frame = encode_reply(header, &response);
        let (body, used) = split_frame(&frame, usize::MAX).unwrap().unwrap();
        prop_assert_eq!(used, frame.len());
        let mut asked = None;
        let decoded = decode_reply(body, |asked_xid| {
            asked = Some(asked_xid);
            Some(op)
        });
        prop_assert_eq!(asked, Some(xid));
        prop_assert_eq!(decoded, Ok((header, Reply::Response(op, response.clone()))));
        // Every strict prefix is truncated: replies have a fixed end once the opcode is known.
        for len in 0..body.len() {
            let got = decode_reply(&body[..len], |_| Some(op));
            prop_assert!(
                matches!(got, Err(DecodeError::Truncated { .. })),
                "prefix of {} of {} bytes of {:?} decoded as {:?}", len, body.len(), response, got
            );
        }
    }

    #[test]
    fn notification_round_trips(zxid in long(), event in watcher_event()) {
        let frame = encode_notification(zxid, &event);
        let (body, _) = split_frame(&frame, usize::MAX).unwrap().unwrap();
        prop_assert_eq!(
            decode_reply(body, |_| None),
            Ok((ReplyHeader { xid: XID_NOTIFICATION, zxid, err: 0 }, Reply::Notification(event)))
        );
        for len in 0..body.len() {
            prop_assert!(is_truncated(&decode_reply(&body[..len], |_| None)), "not truncated: {:?}", decode_reply(&body[..len], |_| None));
        }
    }

    /// The special xids are recognised without asking for the request's opcode.
    #[test]
    fn special_xid_replies_need_no_opcode(zxid in long(), err in int()) {
        for (xid, op) in [(XID_PING, OpCode::Ping), (XID_AUTH, OpCode::Auth), (XID_SET_WATCHES, OpCode::SetWatches)] {
            let frame = encode_reply(ReplyHeader { xid, zxid, err }, &Response::Empty);
            prop_assert_eq!(
                decode_reply(&frame[4..], |_| None),
                Ok((ReplyHeader { xid, zxid, err }, Reply::Response(op, Response::Empty)))
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Robustness: hostile bytes
// ---------------------------------------------------------------------------------------

/// Random bytes, or a random header followed by random bytes so bodies get exercised.
fn hostile_request_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..128),
        (int(), select(OpCode::ALL.to_vec()), vec(any::<u8>(), 0..128)).prop_map(|(xid, op, rest)| {
            let mut frame = RequestHeader { xid, op_type: op.code() }.to_bytes();
            frame.extend(rest);
            frame
        }),
    ]
}

/// A valid request frame body with one byte changed and maybe cut short.
fn mutated_request_frame() -> impl Strategy<Value = Vec<u8>> {
    (int(), request(), any::<prop::sample::Index>(), any::<u8>(), any::<prop::sample::Index>()).prop_map(
        |(xid, request, at, byte, cut)| {
            let mut body = encode_request(xid, &request).split_off(FRAME_PREFIX_LEN);
            let at = at.index(body.len());
            body[at] = byte;
            let cut = cut.index(body.len() + 1);
            body.truncate(cut.max(at + 1));
            body
        },
    )
}

/// A valid reply frame body (with its opcode) with one byte changed and maybe cut short.
fn mutated_reply_frame() -> impl Strategy<Value = (OpCode, Vec<u8>)> {
    (plain_xid(), op_and_response(), any::<prop::sample::Index>(), any::<u8>(), any::<prop::sample::Index>()).prop_map(
        |(xid, (op, err, response), at, byte, cut)| {
            let mut body = encode_reply(ReplyHeader { xid, zxid: 1, err }, &response).split_off(FRAME_PREFIX_LEN);
            let at = at.index(body.len());
            body[at] = byte;
            let cut = cut.index(body.len() + 1);
            body.truncate(cut.max(at + 1));
            (op, body)
        },
    )
}

/// A decoded request re-encodes to bytes that decode to the same request.
fn check_request_reencodes(frame: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(ClientFrame { header, body: Ok(request) }) = decode_request(frame) {
        prop_assert_eq!(header.op_type, request.op_code().code());
        let again = encode_request(header.xid, &request);
        prop_assert_eq!(decode_request(&again[4..]), Ok(ClientFrame { header, body: Ok(request) }));
    }
    Ok(())
}

proptest! {
    #[test]
    fn decode_request_never_panics_on_random_bytes(frame in hostile_request_frame()) {
        let decoded = decode_request(&frame);
        if frame.len() < 8 {
            prop_assert!(is_truncated(&decoded), "not truncated: {:?}", decoded);
        } else {
            prop_assert!(decoded.is_ok(), "a readable header is always returned");
        }
        check_request_reencodes(&frame)?;
    }

    #[test]
    fn decode_request_never_panics_on_mutated_requests(frame in mutated_request_frame()) {
        let _ = decode_request(&frame);
        check_request_reencodes(&frame)?;
    }

    #[test]
    fn decode_reply_never_panics_on_random_bytes_for_any_opcode(frame in vec(any::<u8>(), 0..160)) {
        for &op in OpCode::ALL {
            let decoded = decode_reply(&frame, |_| Some(op));
            if frame.len() < 16 {
                prop_assert!(is_truncated(&decoded), "not truncated: {:?}", decoded);
            }
        }
        // An xid nobody sent is refused, not guessed.
        if frame.len() >= 16 {
            let xid = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            if ![XID_NOTIFICATION, XID_PING, XID_AUTH, XID_SET_WATCHES].contains(&xid) {
                prop_assert_eq!(
                    decode_reply(&frame, |_| None),
                    Err(DecodeError::InvalidValue("reply to an unknown xid"))
                );
            }
        }
    }

    #[test]
    fn decode_reply_never_panics_on_mutated_replies((op, frame) in mutated_reply_frame()) {
        if let Ok((header, Reply::Response(got_op, response))) = decode_reply(&frame, |_| Some(op)) {
            // What decodes re-encodes to something that decodes the same way.
            let again = encode_reply(header, &response);
            prop_assert_eq!(
                decode_reply(&again[4..], |_| Some(op)),
                Ok((header, Reply::Response(got_op, response)))
            );
        }
    }

    #[test]
    fn connect_records_never_panic_on_random_bytes(bytes in vec(any::<u8>(), 0..80)) {
        let request = ConnectRequest::from_bytes(&bytes);
        let response = ConnectResponse::from_bytes(&bytes);
        if bytes.len() < 28 {
            prop_assert!(is_truncated(&request), "not truncated: {:?}", request);
        }
        if bytes.len() < 20 {
            prop_assert!(is_truncated(&response), "not truncated: {:?}", response);
        }
        if let Ok(request) = request {
            prop_assert_eq!(request.to_bytes().len(), bytes.len());
        }
    }

    #[test]
    fn split_frame_never_panics_and_respects_the_prefix(
        buffer in vec(any::<u8>(), 0..64),
        max in prop_oneof![0usize..64, Just(usize::MAX)],
    ) {
        match split_frame(&buffer, max) {
            Ok(None) => {
                prop_assert!(
                    buffer.len() < 4
                        || 4 + i32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize > buffer.len()
                );
            }
            Ok(Some((body, used))) => {
                let length = i32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
                prop_assert!(length >= 0 && length as usize <= max);
                prop_assert_eq!(used, 4 + length as usize);
                prop_assert_eq!(body, &buffer[4..used]);
            }
            Err(DecodeError::NegativeLength(length)) => prop_assert!(length < 0),
            Err(DecodeError::FrameTooLarge { length, max: got_max }) => {
                prop_assert_eq!(got_max, max);
                prop_assert!(length > max);
            }
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
    }

    /// Frames written back to back come out one by one, whatever the read boundaries.
    #[test]
    fn split_frame_reassembles_frames_across_partial_reads(
        requests in vec((int(), request()), 1..5),
        chunk in 1usize..40,
    ) {
        let stream: Vec<u8> = requests.iter().flat_map(|(xid, r)| encode_request(*xid, r)).collect();
        let mut buffered = Vec::new();
        let mut decoded = Vec::new();
        for piece in stream.chunks(chunk) {
            buffered.extend_from_slice(piece);
            while let Some((body, used)) = split_frame(&buffered, JUTE_MAXBUFFER_DEFAULT).unwrap() {
                let frame = decode_request(body).unwrap();
                decoded.push((frame.header.xid, frame.body.unwrap()));
                buffered.drain(..used);
            }
        }
        prop_assert!(buffered.is_empty());
        prop_assert_eq!(decoded, requests);
    }
}

#[test]
fn vector_count_larger_than_the_frame_is_refused_before_allocating() {
    // GetChildrenResponse: a 12-byte body claiming 0x7fffffff strings (4 bytes each at least).
    let body = [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1, b'a', 0, 0, 0];
    assert_eq!(
        GetChildrenResponse::from_bytes(&body),
        Err(DecodeError::Truncated { needed: 0x7fff_ffff * 4, remaining: 8 })
    );
    // WhoAmIResponse items are ClientInfo, at least 8 bytes each.
    assert_eq!(
        WhoAmIResponse::from_bytes(&body),
        Err(DecodeError::Truncated { needed: 0x7fff_ffff * 8, remaining: 8 })
    );
    // SetAcl through decode_request: header, path "", acl count 0x7fffffff; ACLs are >= 12 bytes.
    let frame = [0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
    assert_eq!(
        decode_request(&frame),
        Ok(ClientFrame {
            header: RequestHeader { xid: 1, op_type: OpCode::SetAcl.code() },
            body: Err(RequestError::Malformed(DecodeError::Truncated { needed: 0x7fff_ffff * 12, remaining: 0 })),
        })
    );
    // Within a multi result too: getChildren result claiming i32::MAX children.
    let mut reply = ReplyHeader { xid: 3, zxid: 0, err: 0 }.to_bytes();
    reply.extend(MultiHeader { op_type: OpCode::GetChildren.code(), done: false, err: 0 }.to_bytes());
    reply.extend([0x7f, 0xff, 0xff, 0xff]);
    assert_eq!(
        decode_reply(&reply, |_| Some(OpCode::MultiRead)),
        Err(DecodeError::Truncated { needed: 0x7fff_ffff * 4, remaining: 0 })
    );
}

#[test]
fn buffer_and_string_lengths_larger_than_the_frame_are_refused() {
    // SetDataRequest with path "/" and a data length of 0x7fffffff but 4 bytes present.
    let body = [0, 0, 0, 1, b'/', 0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4];
    assert_eq!(SetDataRequest::from_bytes(&body), Err(DecodeError::Truncated { needed: 0x7fff_ffff, remaining: 4 }));
    // A path length of 0x7fffffff.
    assert_eq!(
        SyncRequest::from_bytes(&[0x7f, 0xff, 0xff, 0xff, b'/']),
        Err(DecodeError::Truncated { needed: 0x7fff_ffff, remaining: 1 })
    );
}

#[test]
fn negative_lengths_other_than_null_are_refused() {
    assert_eq!(SyncRequest::from_bytes(&[0xff, 0xff, 0xff, 0xfe]), Err(DecodeError::NegativeLength(-2)));
    assert_eq!(GetChildrenResponse::from_bytes(&i32::MIN.to_be_bytes()), Err(DecodeError::NegativeLength(i32::MIN)));
    assert_eq!(GetDataResponse::from_bytes(&[0x80, 0, 0, 0]), Err(DecodeError::NegativeLength(i32::MIN)));
    // -1 is null: an empty string for ustring fields, None for data, an empty vector.
    assert_eq!(SyncRequest::from_bytes(&[0xff; 4]), Ok(SyncRequest { path: String::new() }));
    assert_eq!(GetChildrenResponse::from_bytes(&[0xff; 4]), Ok(GetChildrenResponse { children: vec![] }));
}

#[test]
fn invalid_utf8_in_a_path_is_refused() {
    assert_eq!(SyncRequest::from_bytes(&[0, 0, 0, 2, b'/', 0xff]), Err(DecodeError::InvalidUtf8));
}

#[test]
fn split_frame_refuses_oversized_and_negative_lengths_and_waits_for_partial_input() {
    let max = JUTE_MAXBUFFER_DEFAULT + JUTE_MAXBUFFER_EXTRA_SIZE;
    // Exactly at the limit: accepted once complete, waiting before that.
    let at_limit = (max as i32).to_be_bytes();
    assert_eq!(split_frame(&at_limit, max), Ok(None));
    let mut full = at_limit.to_vec();
    full.resize(4 + max, 0);
    assert_eq!(split_frame(&full, max), Ok(Some((&full[4..], 4 + max))));
    assert_eq!(split_frame(&full[..4 + max - 1], max), Ok(None));
    // One byte over: refused from the prefix alone, before the body arrives.
    let over = (max as i32 + 1).to_be_bytes();
    assert_eq!(split_frame(&over, max), Err(DecodeError::FrameTooLarge { length: max + 1, max }));
    assert_eq!(
        split_frame(&[0x7f, 0xff, 0xff, 0xff], max),
        Err(DecodeError::FrameTooLarge { length: 0x7fff_ffff, max })
    );
    // Negative lengths.
    assert_eq!(split_frame(&[0xff, 0xff, 0xff, 0xff], max), Err(DecodeError::NegativeLength(-1)));
    assert_eq!(split_frame(&[0x80, 0, 0, 0, 1], max), Err(DecodeError::NegativeLength(i32::MIN)));
    // Partial prefix and partial body.
    assert_eq!(split_frame(&[], max), Ok(None));
    assert_eq!(split_frame(&[0, 0, 0], max), Ok(None));
    assert_eq!(split_frame(&[0, 0, 0, 2, 9], max), Ok(None));
    // A zero-length frame and a frame followed by the next one's first bytes.
    assert_eq!(split_frame(&[0, 0, 0, 0], max), Ok(Some((&[][..], 4))));
    assert_eq!(split_frame(&[0, 0, 0, 2, 9, 8, 0, 0], max), Ok(Some((&[9, 8][..], 6))));
}

#[test]
fn unknown_opcode_is_unimplemented_with_the_header_intact() {
    for op_type in [10, 23, 99, 108, 1000, -2, -12, i32::MIN, i32::MAX] {
        assert_eq!(OpCode::from_code(op_type), None, "{op_type} is a real opcode");
        let mut frame = RequestHeader { xid: 77, op_type }.to_bytes();
        frame.extend([1, 2, 3]);
        assert_eq!(
            decode_request(&frame),
            Ok(ClientFrame {
                header: RequestHeader { xid: 77, op_type },
                body: Err(RequestError::Unimplemented(op_type)),
            })
        );
    }
    // Opcodes ZooKeeper defines that a client may not send are unimplemented too.
    for op in [OpCode::Notification, OpCode::DeleteContainer, OpCode::CreateSession, OpCode::Error] {
        let frame = RequestHeader { xid: 5, op_type: op.code() }.to_bytes();
        assert_eq!(decode_request(&frame).unwrap().body, Err(RequestError::Unimplemented(op.code())));
        assert_eq!(RequestError::Unimplemented(op.code()).error_code(), ErrorCode::Unimplemented);
    }
}

fn create_op(path: &str) -> MultiOp {
    MultiOp::Create {
        op: OpCode::Create,
        request: CreateRequest { path: path.into(), data: None, acl: vec![], flags: 0 },
    }
}

fn get_data_op(path: &str) -> MultiOp {
    MultiOp::GetData(GetDataRequest { path: path.into(), watch: false })
}

#[test]
fn multi_mixing_read_and_write_ops_is_refused_as_malformed() {
    let mixed = vec![create_op("/a"), get_data_op("/a")];
    for request in [Request::Multi(mixed.clone()), Request::MultiRead(mixed)] {
        let frame = encode_request(4, &request);
        let decoded = decode_request(&frame[4..]).unwrap();
        assert_eq!(decoded.header, RequestHeader { xid: 4, op_type: request.op_code().code() });
        let error = decoded.body.unwrap_err();
        assert_eq!(error, RequestError::Malformed(DecodeError::InvalidValue("mixing different kind of ops in multi")));
        assert_eq!(error.error_code(), ErrorCode::MarshallingError);
    }
}

#[test]
fn multi_of_only_reads_and_multi_read_of_only_writes_are_refused() {
    let frame = encode_request(1, &Request::Multi(vec![get_data_op("/a")]));
    assert_eq!(
        decode_request(&frame[4..]).unwrap().body,
        Err(RequestError::Malformed(DecodeError::InvalidValue("read op in a multi of writes")))
    );
    let frame = encode_request(2, &Request::MultiRead(vec![create_op("/a")]));
    assert_eq!(
        decode_request(&frame[4..]).unwrap().body,
        Err(RequestError::Malformed(DecodeError::InvalidValue("write op in a multiRead")))
    );
}

#[test]
fn multi_op_of_a_type_not_allowed_in_multi_is_refused() {
    // A multi whose op header says getACL (6).
    let mut body = RequestHeader { xid: 1, op_type: OpCode::Multi.code() }.to_bytes();
    body.extend(MultiHeader { op_type: OpCode::GetAcl.code(), done: false, err: -1 }.to_bytes());
    body.extend(GetAclRequest { path: "/".into() }.to_bytes());
    body.extend(MultiHeader { op_type: -1, done: true, err: -1 }.to_bytes());
    assert_eq!(
        decode_request(&body).unwrap().body,
        Err(RequestError::Malformed(DecodeError::InvalidValue("invalid type of op in multi")))
    );
}

#[test]
fn multi_reply_with_unknown_error_code_or_result_type_is_refused() {
    let mut reply = ReplyHeader { xid: 3, zxid: 0, err: 0 }.to_bytes();
    reply.extend(MultiHeader { op_type: -1, done: false, err: -9999 }.to_bytes());
    reply.extend(ErrorResponse { err: -9999 }.to_bytes());
    reply.extend(MultiHeader { op_type: -1, done: true, err: -1 }.to_bytes());
    assert_eq!(
        decode_reply(&reply, |_| Some(OpCode::Multi)),
        Err(DecodeError::InvalidValue("unknown error code in multi result"))
    );
    let mut reply = ReplyHeader { xid: 3, zxid: 0, err: 0 }.to_bytes();
    reply.extend(MultiHeader { op_type: OpCode::Exists.code(), done: false, err: 0 }.to_bytes());
    assert_eq!(
        decode_reply(&reply, |_| Some(OpCode::Multi)),
        Err(DecodeError::InvalidValue("invalid type of result in multi"))
    );
}

/// A successful multi reply always ends with the done header; a header alone is cut short.
/// One that failed as a whole (err != 0) may come without results.
#[test]
fn multi_reply_without_results_is_truncated_unless_it_failed_as_a_whole() {
    let ok = ReplyHeader { xid: 3, zxid: 9, err: 0 }.to_bytes();
    assert_eq!(decode_reply(&ok, |_| Some(OpCode::Multi)), Err(DecodeError::Truncated { needed: 4, remaining: 0 }));
    let refused = ReplyHeader { xid: 3, zxid: 9, err: ErrorCode::SessionMoved.code() };
    assert_eq!(
        decode_reply(&refused.to_bytes(), |_| Some(OpCode::MultiRead)),
        Ok((refused, Reply::Response(OpCode::MultiRead, Response::Empty)))
    );
}

/// ZooKeeper's server may send a body with a non-zero err and ClientCnxn ignores it (it
/// reads the body only on err 0), so a failed reply decodes as Empty whatever follows the
/// header, multi included.
#[test]
fn failed_reply_body_is_ignored_multi_included() {
    let header = ReplyHeader { xid: 3, zxid: 9, err: ErrorCode::NoNode.code() };
    let mut frame = header.to_bytes();
    frame.extend(CreateResponse { path: "/a".into() }.to_bytes());
    assert_eq!(
        decode_reply(&frame, |_| Some(OpCode::Create)),
        Ok((header, Reply::Response(OpCode::Create, Response::Empty)))
    );
    let results = Response::Multi(vec![MultiResult::Error(ErrorCode::NoNode)]);
    let frame = encode_reply(header, &results);
    assert_eq!(
        decode_reply(&frame[4..], |_| Some(OpCode::Multi)),
        Ok((header, Reply::Response(OpCode::Multi, Response::Empty)))
    );
}
