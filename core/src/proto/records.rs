//! The client-facing jute records of ZooKeeper 3.9 (`zookeeper.jute`), field for field.

use super::jute::{jute_record, Buffer, DecodeError, Field, Reader, Record, Writer};

jute_record! {
    /// An identity: a scheme and an id within it (`world:anyone`, `digest:user:hash`, `ip:10.0.0.0/8`).
    #[derive(PartialOrd, Ord, Hash)]
    pub struct Id {
        pub scheme: String,
        pub id: String,
    }
}

jute_record! {
    /// One access-control entry: a permission mask granted to an identity.
    #[derive(PartialOrd, Ord, Hash)]
    pub struct Acl {
        pub perms: i32,
        pub id: Id,
    }
}

jute_record! {
    /// A znode's metadata as clients see it: eleven fields.
    #[derive(Copy, Hash)]
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

jute_record! {
    /// One authenticated identity of a session, as `whoAmI` reports it.
    pub struct ClientInfo {
        pub auth_scheme: String,
        pub user: String,
    }
}

/// The first frame a client sends. `read_only` is absent in frames from old clients; the
/// server answers with the flag only when the client sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Buffer,
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    const ENCODED_SIZE_MIN: usize = 4 + 8 + 4 + 8 + 4;

    fn write(&self, writer: &mut Writer) {
        writer.write_i32(self.protocol_version);
        writer.write_i64(self.last_zxid_seen);
        writer.write_i32(self.time_out);
        writer.write_i64(self.session_id);
        writer.write_buffer(&self.passwd.0);
        if let Some(read_only) = self.read_only {
            writer.write_bool(read_only);
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol_version = reader.read_i32()?;
        let last_zxid_seen = reader.read_i64()?;
        let time_out = reader.read_i32()?;
        let session_id = reader.read_i64()?;
        let passwd = Buffer::read_field(reader)?;
        let read_only = if reader.is_empty() { None } else { Some(reader.read_bool()?) };
        Ok(ConnectRequest { protocol_version, last_zxid_seen, time_out, session_id, passwd, read_only })
    }
}

/// The server's answer to a `ConnectRequest`. A `time_out` of 0 tells the client its session
/// has expired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Buffer,
    pub read_only: Option<bool>,
}

impl Record for ConnectResponse {
    const ENCODED_SIZE_MIN: usize = 4 + 4 + 8 + 4;

    fn write(&self, writer: &mut Writer) {
        writer.write_i32(self.protocol_version);
        writer.write_i32(self.time_out);
        writer.write_i64(self.session_id);
        writer.write_buffer(&self.passwd.0);
        if let Some(read_only) = self.read_only {
            writer.write_bool(read_only);
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol_version = reader.read_i32()?;
        let time_out = reader.read_i32()?;
        let session_id = reader.read_i64()?;
        let passwd = Buffer::read_field(reader)?;
        let read_only = if reader.is_empty() { None } else { Some(reader.read_bool()?) };
        Ok(ConnectResponse { protocol_version, time_out, session_id, passwd, read_only })
    }
}

jute_record! {
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    #[derive(Copy)]
    pub struct RequestHeader {
        pub xid: i32,
        pub op_type: i32,
    }
}

jute_record! {
    #[derive(Copy)]
    pub struct MultiHeader {
        pub op_type: i32,
        pub done: bool,
        pub err: i32,
    }
}

jute_record! {
    pub struct AuthPacket {
        pub auth_type: i32,
        pub scheme: String,
        pub auth: Buffer,
    }
}

jute_record! {
    #[derive(Copy)]
    pub struct ReplyHeader {
        pub xid: i32,
        pub zxid: i64,
        pub err: i32,
    }
}

jute_record! {
    pub struct GetDataRequest {
        pub path: String,
        pub watch: bool,
    }
}

jute_record! {
    pub struct SetDataRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub version: i32,
    }
}

jute_record! {
    /// Dynamic reconfiguration; a null string means "not given".
    pub struct ReconfigRequest {
        pub joining_servers: Option<String>,
        pub leaving_servers: Option<String>,
        pub new_members: Option<String>,
        pub cur_config_id: i64,
    }
}

jute_record! {
    pub struct SetDataResponse {
        pub stat: Stat,
    }
}

jute_record! {
    pub struct GetSaslRequest {
        pub token: Buffer,
    }
}

jute_record! {
    pub struct SetSaslRequest {
        pub token: Buffer,
    }
}

jute_record! {
    pub struct SetSaslResponse {
        pub token: Buffer,
    }
}

jute_record! {
    pub struct CreateRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub flags: i32,
    }
}

jute_record! {
    pub struct CreateTtlRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub flags: i32,
        pub ttl: i64,
    }
}

jute_record! {
    pub struct DeleteRequest {
        pub path: String,
        pub version: i32,
    }
}

jute_record! {
    pub struct GetChildrenRequest {
        pub path: String,
        pub watch: bool,
    }
}

jute_record! {
    pub struct GetAllChildrenNumberRequest {
        pub path: String,
    }
}

jute_record! {
    pub struct GetChildren2Request {
        pub path: String,
        pub watch: bool,
    }
}

jute_record! {
    pub struct CheckVersionRequest {
        pub path: String,
        pub version: i32,
    }
}

jute_record! {
    pub struct SyncRequest {
        pub path: String,
    }
}

jute_record! {
    pub struct SyncResponse {
        pub path: String,
    }
}

jute_record! {
    pub struct GetAclRequest {
        pub path: String,
    }
}

jute_record! {
    pub struct SetAclRequest {
        pub path: String,
        pub acl: Vec<Acl>,
        pub version: i32,
    }
}

jute_record! {
    pub struct SetAclResponse {
        pub stat: Stat,
    }
}

jute_record! {
    pub struct AddWatchRequest {
        pub path: String,
        pub mode: i32,
    }
}

jute_record! {
    /// A watch notification, sent with xid -1.
    pub struct WatcherEvent {
        pub event_type: i32,
        pub state: i32,
        pub path: String,
    }
}

jute_record! {
    pub struct ErrorResponse {
        pub err: i32,
    }
}

jute_record! {
    pub struct CreateResponse {
        pub path: String,
    }
}

jute_record! {
    pub struct Create2Response {
        pub path: String,
        pub stat: Stat,
    }
}

jute_record! {
    pub struct ExistsRequest {
        pub path: String,
        pub watch: bool,
    }
}

jute_record! {
    pub struct ExistsResponse {
        pub stat: Stat,
    }
}

jute_record! {
    pub struct GetDataResponse {
        pub data: Option<Vec<u8>>,
        pub stat: Stat,
    }
}

jute_record! {
    pub struct GetChildrenResponse {
        pub children: Vec<String>,
    }
}

jute_record! {
    pub struct GetAllChildrenNumberResponse {
        pub total_number: i32,
    }
}

jute_record! {
    pub struct GetChildren2Response {
        pub children: Vec<String>,
        pub stat: Stat,
    }
}

jute_record! {
    pub struct GetAclResponse {
        pub acl: Vec<Acl>,
        pub stat: Stat,
    }
}

jute_record! {
    pub struct CheckWatchesRequest {
        pub path: String,
        pub watcher_type: i32,
    }
}

jute_record! {
    pub struct RemoveWatchesRequest {
        pub path: String,
        pub watcher_type: i32,
    }
}

jute_record! {
    pub struct GetEphemeralsRequest {
        pub prefix_path: String,
    }
}

jute_record! {
    pub struct GetEphemeralsResponse {
        pub ephemerals: Vec<String>,
    }
}

jute_record! {
    pub struct WhoAmIResponse {
        pub client_info: Vec<ClientInfo>,
    }
}
