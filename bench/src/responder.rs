//! The trivial responder: a server that speaks the client protocol and does no other work.
//!
//! It grants every session, answers pings, and answers every request Ok with a reply of
//! the right shape for its opcode (a Stat for setData, `--value-bytes` of data and a Stat for
//! getData, the path for create, per-op results for multi), with no tree, no storage and no
//! watches. What zk-bench measures against it is the ceiling that this client and this
//! machine allow; a server's figure divided by it says how much of that ceiling it reaches.

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use zk_core::proto::{
    self, Buffer, ConnectRequest, ConnectResponse, Create2Response, CreateMode, CreateRequest, CreateResponse,
    ExistsResponse, GetChildren2Response, GetChildrenResponse, GetDataResponse, MultiOp, MultiResult, OpCode, Record,
    ReplyHeader, Request, Response, SetDataResponse, Stat, SyncResponse, XID_PING,
};
use zk_core::ErrorCode;

use crate::client::FRAME_BYTES_MAX;

#[derive(Clone, Debug, Args)]
pub struct ResponderArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub listen: String,
    /// The size of the data every getData returns.
    #[arg(long, default_value_t = 1024)]
    pub value_bytes: usize,
}

/// What every connection shares: the next session id, and the canned getData payload.
struct Shared {
    next_session_id: AtomicI64,
    value: Vec<u8>,
}

/// One connection's state: a counter standing in for the zxid, and the next sequence
/// number for sequential creates.
struct Responder<'a> {
    shared: &'a Shared,
    zxid: i64,
    sequence: i32,
}

/// How many bytes one read takes from the socket.
const READ_CHUNK_BYTES: usize = 64 * 1024;

pub async fn run(args: ResponderArgs) -> io::Result<()> {
    let listener = TcpListener::bind(&args.listen).await?;
    eprintln!("zk-bench responder listening on {}", listener.local_addr()?);
    let shared = Arc::new(Shared {
        next_session_id: AtomicI64::new(0x7a6b_0000_0000_0001),
        value: vec![b'r'; args.value_bytes],
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            // A client that goes away is the normal end of a connection.
            let _ = serve(stream, &shared).await;
        });
    }
}

async fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (mut reader, writer) = stream.into_split();
    let mut writer = BufWriter::with_capacity(READ_CHUNK_BYTES, writer);
    let mut buffer: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    let mut responder = Responder { shared, zxid: 0, sequence: 0 };
    let mut connected = false;
    loop {
        let read = reader.read(&mut chunk).await?;
        if read == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..read]);
        // Answer every complete frame, then flush once: replies to a pipelined batch leave
        // in as few writes as the client's requests arrived in.
        let mut used_total = 0;
        let mut closing = false;
        while let Some((frame, used)) = proto::split_frame(&buffer[used_total..], FRAME_BYTES_MAX)
            .map_err(|e| io::Error::other(format!("{e:?}")))?
        {
            used_total += used;
            let reply = if connected {
                let (reply, close) = responder.answer(frame);
                closing |= close;
                reply
            } else {
                connected = true;
                responder.grant(frame)?
            };
            writer.write_all(&reply).await?;
            if closing {
                break;
            }
        }
        buffer.drain(..used_total);
        writer.flush().await?;
        if closing {
            return Ok(());
        }
    }
}

impl Responder<'_> {
    /// Answers the ConnectRequest with a new session.
    fn grant(&mut self, frame: &[u8]) -> io::Result<Vec<u8>> {
        let request = ConnectRequest::from_bytes(frame).map_err(|e| io::Error::other(format!("{e:?}")))?;
        let response = ConnectResponse {
            protocol_version: 0,
            time_out: request.time_out,
            session_id: self.shared.next_session_id.fetch_add(1, Ordering::Relaxed),
            passwd: Buffer(vec![0x5a; 16]),
            read_only: request.read_only.map(|_| false),
        };
        Ok(proto::encode_framed(&response))
    }

    fn stat(&self) -> Stat {
        Stat {
            czxid: 1,
            mzxid: self.zxid,
            ctime: 1,
            mtime: 1,
            version: 1,
            data_length: self.shared.value.len() as i32,
            pzxid: 1,
            ..Stat::default()
        }
    }

    /// The path a create names: sequential creates get a ten-digit suffix, as ZooKeeper's.
    fn created_path(&mut self, request: &CreateRequest) -> String {
        let sequential = CreateMode::from_code(request.flags).is_some_and(CreateMode::is_sequential);
        if sequential {
            self.sequence += 1;
            format!("{}{:010}", request.path, self.sequence)
        } else {
            request.path.clone()
        }
    }

    /// Answers one request frame; the flag says the connection closes after this reply.
    fn answer(&mut self, frame: &[u8]) -> (Vec<u8>, bool) {
        let Ok(decoded) = proto::decode_request(frame) else {
            return (Vec::new(), true);
        };
        let xid = decoded.header.xid;
        let request = match decoded.body {
            Ok(request) => request,
            Err(error) => {
                let header = ReplyHeader { xid, zxid: self.zxid, err: error.error_code().code() };
                return (proto::encode_reply(header, &Response::Empty), false);
            }
        };
        if !matches!(request, Request::Ping) && !zk_core::database::Database::is_read(&request) {
            self.zxid += 1;
        }
        let (err, response) = match self.response(&request) {
            Some(response) => (ErrorCode::Ok, response),
            None => (ErrorCode::Unimplemented, Response::Empty),
        };
        let xid = if matches!(request, Request::Ping) { XID_PING } else { xid };
        let reply = proto::encode_reply(ReplyHeader { xid, zxid: self.zxid, err: err.code() }, &response);
        (reply, matches!(request, Request::CloseSession))
    }

    /// The Ok reply for a request, or `None` for requests the responder does not mimic.
    fn response(&mut self, request: &Request) -> Option<Response> {
        let stat = self.stat();
        let response = match request {
            Request::Create(create) => Response::Create(CreateResponse { path: self.created_path(create) }),
            Request::Create2(create) | Request::CreateContainer(create) => {
                Response::Create2(Create2Response { path: self.created_path(create), stat })
            }
            Request::Delete(_)
            | Request::Ping
            | Request::CloseSession
            | Request::SetWatches(_)
            | Request::SetWatches2(_)
            | Request::Auth(_) => Response::Empty,
            Request::Exists(_) => Response::Exists(ExistsResponse { stat }),
            Request::GetData(_) => Response::GetData(GetDataResponse { data: Some(self.shared.value.clone()), stat }),
            Request::SetData(_) | Request::Check(_) => Response::SetData(SetDataResponse { stat }),
            Request::GetChildren(_) => Response::GetChildren(GetChildrenResponse { children: Vec::new() }),
            Request::GetChildren2(_) => Response::GetChildren2(GetChildren2Response { children: Vec::new(), stat }),
            Request::Sync(sync) => Response::Sync(SyncResponse { path: sync.path.clone() }),
            Request::Multi(ops) | Request::MultiRead(ops) => {
                Response::Multi(ops.iter().map(|op| self.multi_result(op)).collect())
            }
            _ => return None,
        };
        Some(response)
    }

    fn multi_result(&mut self, op: &MultiOp) -> MultiResult {
        let stat = self.stat();
        match op {
            MultiOp::Create { op: OpCode::Create, request } => {
                MultiResult::Create(CreateResponse { path: self.created_path(request) })
            }
            MultiOp::Create { request, .. } => {
                MultiResult::Create2(Create2Response { path: self.created_path(request), stat })
            }
            MultiOp::CreateTtl(request) => MultiResult::Create2(Create2Response { path: request.path.clone(), stat }),
            MultiOp::Delete(_) => MultiResult::Delete,
            MultiOp::SetData(_) => MultiResult::SetData(SetDataResponse { stat }),
            MultiOp::Check(_) => MultiResult::Check,
            MultiOp::GetChildren(_) => MultiResult::GetChildren(GetChildrenResponse { children: Vec::new() }),
            MultiOp::GetData(_) => {
                MultiResult::GetData(GetDataResponse { data: Some(self.shared.value.clone()), stat })
            }
        }
    }
}
