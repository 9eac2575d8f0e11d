//! One client connection over the real wire protocol, encoded with zk-core's jute code: the
//! same bytes go to Apache ZooKeeper, zkd and the trivial responder.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use zk_core::proto::{
    self, Buffer, ConnectRequest, ConnectResponse, CreateMode, CreateRequest, ExistsRequest, GetDataRequest, Record,
    Request, SetDataRequest,
};

/// The largest reply frame the client accepts (a getData of 1 MiB fits many times over).
pub const FRAME_BYTES_MAX: usize = 64 << 20;

/// How long a TCP connect may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// `ZooDefs.Ids` error codes the load generator tells apart.
pub const ERROR_OK: i32 = 0;
pub const ERROR_NODE_EXISTS: i32 = -110;

/// A session as the server granted it: enough to resume it on another connection.
#[derive(Clone, Debug)]
pub struct Session {
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
}

/// One client connection with a session.
pub struct Connection {
    reader: OwnedReadHalf,
    writer: BufWriter<OwnedWriteHalf>,
    /// Bytes read; `buffer[consumed..]` not yet parsed.
    buffer: Vec<u8>,
    consumed: usize,
    next_xid: i32,
    pub session: Session,
}

impl Connection {
    /// Opens a connection and a new session.
    pub async fn open(server: &str, timeout_ms: i32) -> io::Result<Connection> {
        Connection::open_session(server, timeout_ms, None).await
    }

    /// Opens a connection that resumes `resume` when given (as a real client does after a
    /// disconnection), or starts a new session. A resumed session the server reports as
    /// expired is an error of kind `NotFound`.
    pub async fn open_session(server: &str, timeout_ms: i32, resume: Option<&Session>) -> io::Result<Connection> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(server))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        let mut connection = Connection {
            reader,
            writer: BufWriter::new(writer),
            buffer: Vec::new(),
            consumed: 0,
            next_xid: 1,
            session: Session { session_id: 0, passwd: Vec::new(), timeout_ms: 0 },
        };
        let request = ConnectRequest {
            time_out: timeout_ms,
            session_id: resume.map_or(0, |session| session.session_id),
            passwd: Buffer(resume.map_or_else(|| vec![0; 16], |session| session.passwd.clone())),
            read_only: Some(false),
            ..Default::default()
        };
        connection.writer.write_all(&proto::encode_framed(&request)).await?;
        connection.writer.flush().await?;
        let frame = connection.read_frame().await?;
        let response = ConnectResponse::from_bytes(&frame).map_err(|e| io::Error::other(format!("{e:?}")))?;
        if response.session_id == 0 || response.time_out <= 0 {
            return Err(io::Error::new(io::ErrorKind::NotFound, "session refused or expired"));
        }
        connection.session =
            Session { session_id: response.session_id, passwd: response.passwd.0, timeout_ms: response.time_out };
        Ok(connection)
    }

    /// Queues a request (sent at the next flush); returns its xid.
    pub async fn send(&mut self, request: &Request) -> io::Result<i32> {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.writer.write_all(&proto::encode_request(xid, request)).await?;
        Ok(xid)
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.writer.flush().await
    }

    /// Whether a whole frame is already buffered (reading it will not wait).
    pub fn has_buffered_frame(&self) -> bool {
        matches!(proto::split_frame(&self.buffer[self.consumed..], FRAME_BYTES_MAX), Ok(Some(_)))
    }

    /// Reads one frame. Cancel-safe: bytes read before a cancellation stay in the buffer.
    pub async fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match proto::split_frame(&self.buffer[self.consumed..], FRAME_BYTES_MAX) {
                Ok(Some((body, used))) => {
                    let body = body.to_vec();
                    self.consumed += used;
                    return Ok(body);
                }
                Ok(None) => {}
                Err(error) => return Err(io::Error::other(format!("bad frame: {error:?}"))),
            }
            // One move of the unparsed tail per read, not one per frame.
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
            self.buffer.reserve(64 * 1024);
            let read = self.reader.read_buf(&mut self.buffer).await?;
            if read == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection"));
            }
        }
    }

    /// Reads the next reply, notifications included: (xid, err, body).
    pub async fn read_reply(&mut self) -> io::Result<(i32, i32, Vec<u8>)> {
        let frame = self.read_frame().await?;
        if frame.len() < 16 {
            return Err(io::Error::other("short reply"));
        }
        let xid = i32::from_be_bytes(frame[0..4].try_into().expect("four bytes"));
        let err = i32::from_be_bytes(frame[12..16].try_into().expect("four bytes"));
        Ok((xid, err, frame[16..].to_vec()))
    }

    /// Sends one request and waits for its reply's error code.
    pub async fn call(&mut self, request: &Request) -> io::Result<i32> {
        let xid = self.send(request).await?;
        self.flush().await?;
        loop {
            let (reply_xid, err, _) = self.read_reply().await?;
            if reply_xid == xid {
                return Ok(err);
            }
        }
    }
}

pub fn create(path: &str, data: Vec<u8>, mode: CreateMode) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(data),
        acl: zk_core::acl::open_acl_unsafe(),
        flags: mode.code(),
    })
}

pub fn set(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest { path: path.into(), data: Some(data.to_vec()), version: -1 })
}

pub fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest { path: path.into(), watch })
}

pub fn exists(path: &str) -> Request {
    Request::Exists(ExistsRequest { path: path.into(), watch: false })
}

/// Splits a connect string (`host:port,host:port`) into its servers.
pub fn servers(connect_string: &str) -> Vec<String> {
    connect_string.split(',').map(str::trim).filter(|server| !server.is_empty()).map(str::to_owned).collect()
}
