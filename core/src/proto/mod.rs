//! The ZooKeeper client wire protocol: jute records, opcodes, and the request and response
//! bodies of every client operation, with framing.
//!
//! Both directions encode and decode, so the server decodes what real clients send and the
//! simulator's clients encode and decode through the very same code.

pub mod jute;
pub mod records;

pub use jute::{Buffer, Data, DecodeError, Reader, Record, Writer};
pub use records::*;

/// The length of the i32 prefix that frames every packet on the client port.
pub const FRAME_PREFIX_LEN: usize = 4;

/// ZooKeeper's default `jute.maxbuffer` (0xfffff); the server admits frames up to this plus
/// [`JUTE_MAXBUFFER_EXTRA_SIZE`].
pub const JUTE_MAXBUFFER_DEFAULT: usize = 0xfffff;

/// The server's allowance on top of `jute.maxbuffer` for request headers and paths.
pub const JUTE_MAXBUFFER_EXTRA_SIZE: usize = 1024;

/// The xid of a watch notification.
pub const XID_NOTIFICATION: i32 = -1;
/// The xid of a ping.
pub const XID_PING: i32 = -2;
/// The xid of an auth packet's reply.
pub const XID_AUTH: i32 = -4;
/// The xid of a setWatches reply.
pub const XID_SET_WATCHES: i32 = -8;

/// Permission bits of an ACL entry (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[repr(i32)]
        pub enum $name { $($(#[$vmeta])* $variant = $value),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The wire value.
            pub fn code(self) -> i32 {
                self as i32
            }

            /// The variant for a wire value, or `None` for a value the protocol does not define.
            pub fn from_code(code: i32) -> Option<$name> {
                match code {
                    $(x if x == $value => Some($name::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

wire_enum! {
    /// Operation codes (`ZooDefs.OpCode`).
    pub enum OpCode {
        Notification = 0,
        Create = 1,
        Delete = 2,
        Exists = 3,
        GetData = 4,
        SetData = 5,
        GetAcl = 6,
        SetAcl = 7,
        GetChildren = 8,
        Sync = 9,
        Ping = 11,
        GetChildren2 = 12,
        Check = 13,
        Multi = 14,
        Create2 = 15,
        Reconfig = 16,
        CheckWatches = 17,
        RemoveWatches = 18,
        CreateContainer = 19,
        DeleteContainer = 20,
        CreateTtl = 21,
        MultiRead = 22,
        Auth = 100,
        SetWatches = 101,
        Sasl = 102,
        GetEphemerals = 103,
        GetAllChildrenNumber = 104,
        SetWatches2 = 105,
        AddWatch = 106,
        WhoAmI = 107,
        CreateSession = -10,
        CloseSession = -11,
        Error = -1,
    }
}

wire_enum! {
    /// The type of a watch event (`Watcher.Event.EventType`).
    pub enum EventType {
        None = -1,
        NodeCreated = 1,
        NodeDeleted = 2,
        NodeDataChanged = 3,
        NodeChildrenChanged = 4,
        DataWatchRemoved = 5,
        ChildWatchRemoved = 6,
        PersistentWatchRemoved = 7,
    }
}

wire_enum! {
    /// The connection state carried in a watch event (`Watcher.Event.KeeperState`).
    pub enum KeeperState {
        Disconnected = 0,
        SyncConnected = 3,
        AuthFailed = 4,
        ConnectedReadOnly = 5,
        SaslAuthenticated = 6,
        Closed = 7,
        Expired = -112,
    }
}

wire_enum! {
    /// How a znode is created (`CreateMode`), from the create request's flags.
    pub enum CreateMode {
        Persistent = 0,
        Ephemeral = 1,
        PersistentSequential = 2,
        EphemeralSequential = 3,
        Container = 4,
        PersistentWithTtl = 5,
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    pub fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }

    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }

    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
}

wire_enum! {
    /// The mode of an addWatch request (`AddWatchMode`).
    pub enum AddWatchMode {
        Persistent = 0,
        PersistentRecursive = 1,
    }
}

wire_enum! {
    /// The watcher type of checkWatches and removeWatches (`Watcher.WatcherType`).
    pub enum WatcherType {
        Children = 1,
        Data = 2,
        Any = 3,
        Persistent = 4,
        PersistentRecursive = 5,
    }
}

/// One operation inside a multi or multiRead request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultiOp {
    /// create, create2 or createContainer: they share `CreateRequest` and differ in the reply.
    Create {
        op: OpCode,
        request: CreateRequest,
    },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

impl MultiOp {
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create { op, .. } => *op,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { request, .. } => &request.path,
            MultiOp::CreateTtl(request) => &request.path,
            MultiOp::Delete(request) => &request.path,
            MultiOp::SetData(request) => &request.path,
            MultiOp::Check(request) => &request.path,
            MultiOp::GetChildren(request) => &request.path,
            MultiOp::GetData(request) => &request.path,
        }
    }

    /// Whether the op reads only (allowed in multiRead) rather than writes (allowed in multi).
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    fn write(&self, writer: &mut Writer) {
        MultiHeader { op_type: self.op_code().code(), done: false, err: -1 }.write(writer);
        match self {
            MultiOp::Create { request, .. } => request.write(writer),
            MultiOp::CreateTtl(request) => request.write(writer),
            MultiOp::Delete(request) => request.write(writer),
            MultiOp::SetData(request) => request.write(writer),
            MultiOp::Check(request) => request.write(writer),
            MultiOp::GetChildren(request) => request.write(writer),
            MultiOp::GetData(request) => request.write(writer),
        }
    }
}

/// The ops of a multi or multiRead request. A multi mixes no reads with writes; a request
/// that does is refused while decoding, as ZooKeeper refuses it.
fn read_multi_ops(reader: &mut Reader<'_>) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let header = MultiHeader::read(reader)?;
        if header.done {
            return check_multi_kinds(ops);
        }
        let op = match OpCode::from_code(header.op_type) {
            Some(op @ (OpCode::Create | OpCode::Create2 | OpCode::CreateContainer)) => {
                MultiOp::Create { op, request: CreateRequest::read(reader)? }
            }
            Some(OpCode::CreateTtl) => MultiOp::CreateTtl(CreateTtlRequest::read(reader)?),
            Some(OpCode::Delete) => MultiOp::Delete(DeleteRequest::read(reader)?),
            Some(OpCode::SetData) => MultiOp::SetData(SetDataRequest::read(reader)?),
            Some(OpCode::Check) => MultiOp::Check(CheckVersionRequest::read(reader)?),
            Some(OpCode::GetChildren) => MultiOp::GetChildren(GetChildrenRequest::read(reader)?),
            Some(OpCode::GetData) => MultiOp::GetData(GetDataRequest::read(reader)?),
            _ => return Err(DecodeError::InvalidValue("invalid type of op in multi")),
        };
        ops.push(op);
    }
}

fn check_multi_kinds(ops: Vec<MultiOp>) -> Result<Vec<MultiOp>, DecodeError> {
    let reads = ops.iter().filter(|op| op.is_read()).count();
    if reads != 0 && reads != ops.len() {
        return Err(DecodeError::InvalidValue("mixing different kind of ops in multi"));
    }
    Ok(ops)
}

fn write_multi_ops(ops: &[MultiOp], writer: &mut Writer) {
    for op in ops {
        op.write(writer);
    }
    MultiHeader { op_type: -1, done: true, err: -1 }.write(writer);
}

/// A client request body, decoded according to the opcode in its `RequestHeader`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildren2Request),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    GetEphemerals(GetEphemeralsRequest),
    Sync(SyncRequest),
    Check(CheckVersionRequest),
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    AddWatch(AddWatchRequest),
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    Auth(AuthPacket),
    Sasl(GetSaslRequest),
    WhoAmI,
    Ping,
    CloseSession,
}

impl Request {
    pub fn op_code(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::Sync(_) => OpCode::Sync,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::Auth(_) => OpCode::Auth,
            Request::Sasl(_) => OpCode::Sasl,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::Ping => OpCode::Ping,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// Encodes the body alone (no header, no frame prefix).
    pub fn write_body(&self, writer: &mut Writer) {
        match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.write(writer),
            Request::CreateTtl(r) => r.write(writer),
            Request::Delete(r) => r.write(writer),
            Request::Exists(r) => r.write(writer),
            Request::GetData(r) => r.write(writer),
            Request::SetData(r) => r.write(writer),
            Request::GetAcl(r) => r.write(writer),
            Request::SetAcl(r) => r.write(writer),
            Request::GetChildren(r) => r.write(writer),
            Request::GetChildren2(r) => r.write(writer),
            Request::GetAllChildrenNumber(r) => r.write(writer),
            Request::GetEphemerals(r) => r.write(writer),
            Request::Sync(r) => r.write(writer),
            Request::Check(r) => r.write(writer),
            Request::Multi(ops) | Request::MultiRead(ops) => write_multi_ops(ops, writer),
            Request::Reconfig(r) => r.write(writer),
            Request::CheckWatches(r) => r.write(writer),
            Request::RemoveWatches(r) => r.write(writer),
            Request::AddWatch(r) => r.write(writer),
            Request::SetWatches(r) => r.write(writer),
            Request::SetWatches2(r) => r.write(writer),
            Request::Auth(r) => r.write(writer),
            Request::Sasl(r) => r.write(writer),
            Request::WhoAmI | Request::Ping | Request::CloseSession => {}
        }
    }

    /// Decodes the body of a request with opcode `op`. Bytes after the body are ignored, as
    /// ZooKeeper ignores them.
    pub fn read_body(op: OpCode, reader: &mut Reader<'_>) -> Result<Request, RequestError> {
        let request = match op {
            OpCode::Create => Request::Create(CreateRequest::read(reader)?),
            OpCode::Create2 => Request::Create2(CreateRequest::read(reader)?),
            OpCode::CreateContainer => Request::CreateContainer(CreateRequest::read(reader)?),
            OpCode::CreateTtl => Request::CreateTtl(CreateTtlRequest::read(reader)?),
            OpCode::Delete => Request::Delete(DeleteRequest::read(reader)?),
            OpCode::Exists => Request::Exists(ExistsRequest::read(reader)?),
            OpCode::GetData => Request::GetData(GetDataRequest::read(reader)?),
            OpCode::SetData => Request::SetData(SetDataRequest::read(reader)?),
            OpCode::GetAcl => Request::GetAcl(GetAclRequest::read(reader)?),
            OpCode::SetAcl => Request::SetAcl(SetAclRequest::read(reader)?),
            OpCode::GetChildren => Request::GetChildren(GetChildrenRequest::read(reader)?),
            OpCode::GetChildren2 => Request::GetChildren2(GetChildren2Request::read(reader)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(GetAllChildrenNumberRequest::read(reader)?),
            OpCode::GetEphemerals => Request::GetEphemerals(GetEphemeralsRequest::read(reader)?),
            OpCode::Sync => Request::Sync(SyncRequest::read(reader)?),
            OpCode::Check => Request::Check(CheckVersionRequest::read(reader)?),
            OpCode::Multi => {
                let ops = read_multi_ops(reader)?;
                if ops.iter().any(MultiOp::is_read) {
                    return Err(RequestError::Malformed(DecodeError::InvalidValue("read op in a multi of writes")));
                }
                Request::Multi(ops)
            }
            OpCode::MultiRead => {
                let ops = read_multi_ops(reader)?;
                if ops.iter().any(|op| !op.is_read()) {
                    return Err(RequestError::Malformed(DecodeError::InvalidValue("write op in a multiRead")));
                }
                Request::MultiRead(ops)
            }
            OpCode::Reconfig => Request::Reconfig(ReconfigRequest::read(reader)?),
            OpCode::CheckWatches => Request::CheckWatches(CheckWatchesRequest::read(reader)?),
            OpCode::RemoveWatches => Request::RemoveWatches(RemoveWatchesRequest::read(reader)?),
            OpCode::AddWatch => Request::AddWatch(AddWatchRequest::read(reader)?),
            OpCode::SetWatches => Request::SetWatches(SetWatches::read(reader)?),
            OpCode::SetWatches2 => Request::SetWatches2(SetWatches2::read(reader)?),
            OpCode::Auth => Request::Auth(AuthPacket::read(reader)?),
            OpCode::Sasl => Request::Sasl(GetSaslRequest::read(reader)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::Ping => Request::Ping,
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification | OpCode::DeleteContainer | OpCode::CreateSession | OpCode::Error => {
                return Err(RequestError::Unimplemented(op.code()))
            }
        };
        Ok(request)
    }
}

/// Why a request body could not be turned into a [`Request`]; the header was readable, so
/// the server answers the xid with an error rather than closing the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// An opcode that clients may not send or that ZooKeeper does not define: answered with
    /// `Unimplemented`.
    Unimplemented(i32),
    /// A body that does not decode: answered with `MarshallingError`.
    Malformed(DecodeError),
}

impl From<DecodeError> for RequestError {
    fn from(error: DecodeError) -> Self {
        RequestError::Malformed(error)
    }
}

impl RequestError {
    /// The error code the reply carries.
    pub fn error_code(&self) -> crate::ErrorCode {
        match self {
            RequestError::Unimplemented(_) => crate::ErrorCode::Unimplemented,
            RequestError::Malformed(_) => crate::ErrorCode::MarshallingError,
        }
    }
}

/// A decoded client frame after the handshake: the header and, if it decoded, the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientFrame {
    pub header: RequestHeader,
    pub body: Result<Request, RequestError>,
}

/// Decodes one frame (without its length prefix) sent by a client after the handshake.
/// Only an unreadable header is an error here; that one closes the connection.
pub fn decode_request(frame: &[u8]) -> Result<ClientFrame, DecodeError> {
    let mut reader = Reader::new(frame);
    let header = RequestHeader::read(&mut reader)?;
    let body = match OpCode::from_code(header.op_type) {
        Some(op) => Request::read_body(op, &mut reader),
        None => Err(RequestError::Unimplemented(header.op_type)),
    };
    Ok(ClientFrame { header, body })
}

/// Encodes a request with its header and length prefix, as a client sends it.
pub fn encode_request(xid: i32, request: &Request) -> Vec<u8> {
    let mut writer = Writer::with_capacity(64);
    writer.write_i32(0);
    RequestHeader { xid, op_type: request.op_code().code() }.write(&mut writer);
    request.write_body(&mut writer);
    finish_frame(writer)
}

/// The result of one op inside a multi or multiRead reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultiResult {
    Create(CreateResponse),
    /// The reply to create2, createTTL and createContainer ops, which carry the new Stat.
    Create2(Create2Response),
    Delete,
    SetData(SetDataResponse),
    Check,
    GetChildren(GetChildrenResponse),
    GetData(GetDataResponse),
    Error(ErrorCode),
}

use crate::ErrorCode;

impl MultiResult {
    fn header(&self) -> MultiHeader {
        let (op, err) = match self {
            MultiResult::Create(_) => (OpCode::Create, 0),
            MultiResult::Create2(_) => (OpCode::Create2, 0),
            MultiResult::Delete => (OpCode::Delete, 0),
            MultiResult::SetData(_) => (OpCode::SetData, 0),
            MultiResult::Check => (OpCode::Check, 0),
            MultiResult::GetChildren(_) => (OpCode::GetChildren, 0),
            MultiResult::GetData(_) => (OpCode::GetData, 0),
            MultiResult::Error(code) => (OpCode::Error, code.code()),
        };
        MultiHeader { op_type: op.code(), done: false, err }
    }

    fn write(&self, writer: &mut Writer) {
        self.header().write(writer);
        match self {
            MultiResult::Create(r) => r.write(writer),
            MultiResult::Create2(r) => r.write(writer),
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(r) => r.write(writer),
            MultiResult::GetChildren(r) => r.write(writer),
            MultiResult::GetData(r) => r.write(writer),
            MultiResult::Error(code) => ErrorResponse { err: code.code() }.write(writer),
        }
    }

    fn read_all(reader: &mut Reader<'_>) -> Result<Vec<MultiResult>, DecodeError> {
        let mut results = Vec::new();
        loop {
            let header = MultiHeader::read(reader)?;
            if header.done {
                return Ok(results);
            }
            let result = match OpCode::from_code(header.op_type) {
                Some(OpCode::Create) => MultiResult::Create(CreateResponse::read(reader)?),
                Some(OpCode::Create2) => MultiResult::Create2(Create2Response::read(reader)?),
                Some(OpCode::Delete) => MultiResult::Delete,
                Some(OpCode::SetData) => MultiResult::SetData(SetDataResponse::read(reader)?),
                Some(OpCode::Check) => MultiResult::Check,
                Some(OpCode::GetChildren) => MultiResult::GetChildren(GetChildrenResponse::read(reader)?),
                Some(OpCode::GetData) => MultiResult::GetData(GetDataResponse::read(reader)?),
                Some(OpCode::Error) => {
                    let err = ErrorResponse::read(reader)?.err;
                    let code = ErrorCode::from_code(err)
                        .ok_or(DecodeError::InvalidValue("unknown error code in multi result"))?;
                    MultiResult::Error(code)
                }
                _ => return Err(DecodeError::InvalidValue("invalid type of result in multi")),
            };
            results.push(result);
        }
    }
}

/// A reply body. Which variant a reply holds follows from the request's opcode
/// (see [`Response::read_body`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// No body: delete, ping, setWatches, checkWatches, removeWatches, auth, closeSession,
    /// and every reply whose error is not Ok (a multi whose ops failed has err 0 in its
    /// header and carries per-op `MultiResult::Error`s).
    Empty,
    Create(CreateResponse),
    /// create2, createTTL, createContainer.
    Create2(Create2Response),
    /// exists.
    Exists(ExistsResponse),
    /// getData, and reconfig (whose reply is the new configuration as data).
    GetData(GetDataResponse),
    /// setData, and check outside a multi.
    SetData(SetDataResponse),
    GetAcl(GetAclResponse),
    SetAcl(SetAclResponse),
    GetChildren(GetChildrenResponse),
    GetChildren2(GetChildren2Response),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    GetEphemerals(GetEphemeralsResponse),
    Sync(SyncResponse),
    /// multi and multiRead.
    Multi(Vec<MultiResult>),
    /// addWatch answers with an ErrorResponse of 0.
    AddWatch(ErrorResponse),
    WhoAmI(WhoAmIResponse),
    /// sasl.
    Sasl(SetSaslResponse),
}

impl Response {
    pub fn write_body(&self, writer: &mut Writer) {
        match self {
            Response::Empty => {}
            Response::Create(r) => r.write(writer),
            Response::Create2(r) => r.write(writer),
            Response::Exists(r) => r.write(writer),
            Response::GetData(r) => r.write(writer),
            Response::SetData(r) => r.write(writer),
            Response::GetAcl(r) => r.write(writer),
            Response::SetAcl(r) => r.write(writer),
            Response::GetChildren(r) => r.write(writer),
            Response::GetChildren2(r) => r.write(writer),
            Response::GetAllChildrenNumber(r) => r.write(writer),
            Response::GetEphemerals(r) => r.write(writer),
            Response::Sync(r) => r.write(writer),
            Response::Multi(results) => {
                for result in results {
                    result.write(writer);
                }
                MultiHeader { op_type: -1, done: true, err: -1 }.write(writer);
            }
            Response::AddWatch(r) => r.write(writer),
            Response::WhoAmI(r) => r.write(writer),
            Response::Sasl(r) => r.write(writer),
        }
    }

    /// Decodes the body of a reply to a request with opcode `op` whose header carried `err`.
    ///
    /// A reply with a non-zero `err` decodes as `Empty` whatever follows the header, multi
    /// included: ZooKeeper's `ClientCnxn` reads the body only when `err` is 0, and its
    /// server reports a multi whose ops failed with err 0 and per-op error results, so a
    /// multi with a non-zero `err` failed as a whole and has no results to read.
    pub fn read_body(op: OpCode, err: i32, reader: &mut Reader<'_>) -> Result<Response, DecodeError> {
        if err != 0 {
            return Ok(Response::Empty);
        }
        let response = match op {
            OpCode::Create => Response::Create(CreateResponse::read(reader)?),
            OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => {
                Response::Create2(Create2Response::read(reader)?)
            }
            OpCode::Exists => Response::Exists(ExistsResponse::read(reader)?),
            OpCode::GetData | OpCode::Reconfig => Response::GetData(GetDataResponse::read(reader)?),
            OpCode::SetData | OpCode::Check => Response::SetData(SetDataResponse::read(reader)?),
            OpCode::GetAcl => Response::GetAcl(GetAclResponse::read(reader)?),
            OpCode::SetAcl => Response::SetAcl(SetAclResponse::read(reader)?),
            OpCode::GetChildren => Response::GetChildren(GetChildrenResponse::read(reader)?),
            OpCode::GetChildren2 => Response::GetChildren2(GetChildren2Response::read(reader)?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(GetAllChildrenNumberResponse::read(reader)?),
            OpCode::GetEphemerals => Response::GetEphemerals(GetEphemeralsResponse::read(reader)?),
            OpCode::Sync => Response::Sync(SyncResponse::read(reader)?),
            // A multi reply always ends with the done header, even with no results.
            OpCode::Multi | OpCode::MultiRead => Response::Multi(MultiResult::read_all(reader)?),
            OpCode::AddWatch => Response::AddWatch(ErrorResponse::read(reader)?),
            OpCode::WhoAmI => Response::WhoAmI(WhoAmIResponse::read(reader)?),
            OpCode::Sasl => Response::Sasl(SetSaslResponse::read(reader)?),
            OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::Ping
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::Auth
            | OpCode::CloseSession
            | OpCode::CreateSession
            | OpCode::Notification
            | OpCode::Error => Response::Empty,
        };
        Ok(response)
    }
}

/// Encodes a reply with its header and length prefix, as the server sends it.
pub fn encode_reply(header: ReplyHeader, response: &Response) -> Vec<u8> {
    let mut writer = Writer::with_capacity(64);
    writer.write_i32(0);
    header.write(&mut writer);
    response.write_body(&mut writer);
    finish_frame(writer)
}

/// Encodes a watch notification frame (xid -1).
pub fn encode_notification(zxid: i64, event: &WatcherEvent) -> Vec<u8> {
    let mut writer = Writer::with_capacity(32 + event.path.len());
    writer.write_i32(0);
    ReplyHeader { xid: XID_NOTIFICATION, zxid, err: 0 }.write(&mut writer);
    event.write(&mut writer);
    finish_frame(writer)
}

/// Encodes any record with a length prefix (the connect request and response).
pub fn encode_framed<R: Record>(record: &R) -> Vec<u8> {
    let mut writer = Writer::with_capacity(64);
    writer.write_i32(0);
    record.write(&mut writer);
    finish_frame(writer)
}

fn finish_frame(mut writer: Writer) -> Vec<u8> {
    let body_len = writer.len() - FRAME_PREFIX_LEN;
    writer.patch_i32(0, i32::try_from(body_len).expect("frame exceeds i32::MAX"));
    writer.into_bytes()
}

/// Decodes a reply frame (without its length prefix), given the opcode of the request the
/// client sent with that xid; `op_for_xid` maps an xid to its opcode. Notifications (xid -1),
/// pings (-2), auth (-4) and setWatches (-8) replies are recognised by their xid.
pub fn decode_reply(
    frame: &[u8],
    op_for_xid: impl FnOnce(i32) -> Option<OpCode>,
) -> Result<(ReplyHeader, Reply), DecodeError> {
    let mut reader = Reader::new(frame);
    let header = ReplyHeader::read(&mut reader)?;
    let reply = match header.xid {
        XID_NOTIFICATION => Reply::Notification(WatcherEvent::read(&mut reader)?),
        XID_PING => Reply::Response(OpCode::Ping, Response::Empty),
        XID_AUTH => Reply::Response(OpCode::Auth, Response::Empty),
        XID_SET_WATCHES => Reply::Response(OpCode::SetWatches, Response::Empty),
        xid => {
            let op = op_for_xid(xid).ok_or(DecodeError::InvalidValue("reply to an unknown xid"))?;
            Reply::Response(op, Response::read_body(op, header.err, &mut reader)?)
        }
    };
    Ok((header, reply))
}

/// A decoded reply frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Notification(WatcherEvent),
    Response(OpCode, Response),
}

/// Looks for one complete frame at the start of `buffer`. Returns the frame's body and the
/// number of bytes it took (prefix included), `Ok(None)` when more bytes are needed, or an
/// error when the length prefix is negative or exceeds `frame_len_max` (the connection
/// must then be closed, as ZooKeeper closes it).
pub fn split_frame(buffer: &[u8], frame_len_max: usize) -> Result<Option<(&[u8], usize)>, DecodeError> {
    if buffer.len() < FRAME_PREFIX_LEN {
        return Ok(None);
    }
    let length = i32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
    if length < 0 {
        return Err(DecodeError::NegativeLength(length));
    }
    let length = length as usize;
    if length > frame_len_max {
        return Err(DecodeError::FrameTooLarge { length, max: frame_len_max });
    }
    let total = FRAME_PREFIX_LEN + length;
    if buffer.len() < total {
        return Ok(None);
    }
    Ok(Some((&buffer[FRAME_PREFIX_LEN..total], total)))
}
