//! What the integration tests share: a tiny ZooKeeper client speaking the wire protocol
//! through zk-core's encoders, free loopback ports, temporary directories and configs.

// Tests drive real sockets, files and clocks.
#![allow(clippy::disallowed_methods, clippy::disallowed_types, dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_core::node::RoleName;
use zk_core::proto::{
    self, Buffer, ConnectRequest, ConnectResponse, CreateRequest, GetDataRequest, OpCode, Record, Reply, ReplyHeader,
    Request, Response, SetDataRequest, WatcherEvent,
};
use zk_runtime_tokio::config::Config;
use zk_runtime_tokio::ServerHandle;

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Where [`free_port`] looks: below Linux's ephemeral range (32768-60999 by default), so an
/// outgoing connection cannot take a port as its local one between the check and a
/// server's bind (a restarted server binds its port again long after the check).
const TEST_PORTS: std::ops::Range<u16> = 21_000..32_000;

/// A port on 127.0.0.1 that was free a moment ago and that this process has not handed out
/// before. Each test process starts at its own place in [`TEST_PORTS`].
pub fn free_port() -> u16 {
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let span = u32::from(TEST_PORTS.end - TEST_PORTS.start);
    let next = NEXT.get_or_init(|| AtomicU32::new(std::process::id().wrapping_mul(97) % span));
    for _ in 0..span {
        let port = TEST_PORTS.start + (next.fetch_add(1, Ordering::Relaxed) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {TEST_PORTS:?}");
}

/// A fresh directory under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let unique = format!("zkd-it-{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let dir = std::env::temp_dir().join(unique);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// zoo.cfg text for a standalone server.
pub fn standalone_cfg(data_dir: &Path, client_port: u16) -> String {
    format!(
        "tickTime=200\ndataDir={}\nclientPort={client_port}\nclientPortAddress=127.0.0.1\n\
         maxSessionTimeout=60000\n4lw.commands.whitelist=ruok,srvr,mntr,stat,conf,isro,wchc,wchp,dump,cons\npreAllocSize=64\n",
        data_dir.display()
    )
}

pub fn standalone_config(data_dir: &Path, client_port: u16) -> Config {
    Config::parse(&standalone_cfg(data_dir, client_port)).unwrap()
}

/// Sends a four-letter word and returns the whole answer.
pub async fn four_letter(address: SocketAddr, word: &str) -> io::Result<String> {
    tokio::time::timeout(TIMEOUT, async {
        let mut stream = TcpStream::connect(address).await?;
        stream.write_all(word.as_bytes()).await?;
        stream.flush().await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok(answer)
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "four-letter word timed out"))?
}

/// A ZooKeeper session over one connection.
pub struct TestClient<S = TcpStream> {
    stream: S,
    buffer: Vec<u8>,
    next_xid: i32,
    pending: BTreeMap<i32, OpCode>,
    /// Replies that arrived while waiting for another xid.
    replies: BTreeMap<i32, (ReplyHeader, Response)>,
    pub events: Vec<WatcherEvent>,
    pub session_id: i64,
    pub last_zxid: i64,
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

impl TestClient {
    /// Connects and establishes a new session.
    pub async fn connect(address: SocketAddr) -> io::Result<TestClient> {
        tokio::time::timeout(TIMEOUT, async {
            let stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            TestClient::connect_inner(stream).await
        })
        .await
        .map_err(|_| timed_out("connect"))?
    }

    /// The connection itself, to misbehave on.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TestClient<S> {
    /// Establishes a new session over a connected stream (a TLS one, say).
    pub async fn connect_over(stream: S) -> io::Result<TestClient<S>> {
        tokio::time::timeout(TIMEOUT, TestClient::connect_inner(stream)).await.map_err(|_| timed_out("connect"))?
    }

    async fn connect_inner(mut stream: S) -> io::Result<TestClient<S>> {
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 10_000,
            session_id: 0,
            passwd: Buffer(vec![0; 16]),
            read_only: Some(false),
        };
        stream.write_all(&proto::encode_framed(&request)).await?;
        // A no-op on a real socket; madsim's sends only on flush.
        stream.flush().await?;
        let mut client = TestClient {
            stream,
            buffer: Vec::new(),
            next_xid: 1,
            pending: BTreeMap::new(),
            replies: BTreeMap::new(),
            events: Vec::new(),
            session_id: 0,
            last_zxid: 0,
        };
        let frame = client.read_frame().await?;
        let response = ConnectResponse::from_bytes(&frame)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, format!("{error:?}")))?;
        if response.session_id == 0 {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "session refused"));
        }
        client.session_id = response.session_id;
        Ok(client)
    }

    async fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some((body, used)) = proto::split_frame(&self.buffer, usize::MAX >> 1)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, format!("{error:?}")))?
            {
                let body = body.to_vec();
                self.buffer.drain(..used);
                return Ok(body);
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the server"));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    /// Sends a request without waiting; returns its xid.
    pub async fn send(&mut self, request: &Request) -> io::Result<i32> {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.pending.insert(xid, request.op_code());
        self.stream.write_all(&proto::encode_request(xid, request)).await?;
        self.stream.flush().await?;
        Ok(xid)
    }

    /// Reads one reply or notification; returns the xid of a reply.
    async fn receive_one(&mut self) -> io::Result<Option<i32>> {
        let frame = self.read_frame().await?;
        let pending = &self.pending;
        let (header, reply) = proto::decode_reply(&frame, |xid| pending.get(&xid).copied())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, format!("{error:?}")))?;
        if header.zxid > 0 && header.xid != proto::XID_NOTIFICATION {
            assert!(header.zxid >= self.last_zxid, "zxid went backwards");
            self.last_zxid = header.zxid;
        }
        match reply {
            Reply::Notification(event) => {
                self.events.push(event);
                Ok(None)
            }
            Reply::Response(_, response) => {
                self.pending.remove(&header.xid);
                self.replies.insert(header.xid, (header, response));
                Ok(Some(header.xid))
            }
        }
    }

    /// Waits for the reply to `xid`.
    pub async fn reply(&mut self, xid: i32) -> io::Result<(ReplyHeader, Response)> {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(reply) = self.replies.remove(&xid) {
                    return Ok(reply);
                }
                self.receive_one().await?;
            }
        })
        .await
        .map_err(|_| timed_out("reply"))?
    }

    /// Waits for any reply; returns its xid and error code.
    pub async fn any_reply(&mut self) -> io::Result<(i32, i32)> {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(&xid) = self.replies.keys().next() {
                    let (header, _) = self.replies.remove(&xid).unwrap();
                    return Ok((xid, header.err));
                }
                self.receive_one().await?;
            }
        })
        .await
        .map_err(|_| timed_out("reply"))?
    }

    pub async fn call(&mut self, request: &Request) -> io::Result<(ReplyHeader, Response)> {
        let xid = self.send(request).await?;
        self.reply(xid).await
    }

    /// Creates a persistent node; returns the error code (0 is Ok).
    pub async fn create(&mut self, path: &str, data: &[u8]) -> io::Result<i32> {
        Ok(self.call(&create_request(path, data)).await?.0.err)
    }

    pub async fn get_data(&mut self, path: &str, watch: bool) -> io::Result<Option<Vec<u8>>> {
        match self.call(&Request::GetData(GetDataRequest { path: path.into(), watch })).await? {
            (header, Response::GetData(response)) if header.err == 0 => Ok(Some(response.data.unwrap_or_default())),
            _ => Ok(None),
        }
    }

    pub async fn set_data(&mut self, path: &str, data: &[u8]) -> io::Result<i32> {
        let request = Request::SetData(SetDataRequest { path: path.into(), data: Some(data.to_vec()), version: -1 });
        Ok(self.call(&request).await?.0.err)
    }

    /// Waits for the next watch notification.
    pub async fn next_event(&mut self) -> io::Result<WatcherEvent> {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if !self.events.is_empty() {
                    return Ok(self.events.remove(0));
                }
                self.receive_one().await?;
            }
        })
        .await
        .map_err(|_| timed_out("watch event"))?
    }

    /// Sends raw bytes (for malformed-frame tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Waits until the server closes the connection.
    pub async fn closed(&mut self) -> bool {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if self.read_frame().await.is_err() {
                    return true;
                }
            }
        })
        .await
        .unwrap_or(false)
    }
}

pub fn create_request(path: &str, data: &[u8]) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: zk_core::acl::open_acl_unsafe(),
        flags: 0,
    })
}

/// A zkd ensemble in-process on loopback, each server with its own data directory.
pub struct Ensemble {
    pub dirs: Vec<PathBuf>,
    pub configs: Vec<Config>,
    pub servers: Vec<Option<ServerHandle>>,
}

impl Ensemble {
    pub fn new(size: usize) -> Ensemble {
        Ensemble::with_observers(size, 0)
    }

    /// `voters` participants (ids 1..) and `observers` observers after them.
    pub fn with_observers(voters: usize, observers: usize) -> Ensemble {
        let size = voters + observers;
        let ports: Vec<(u16, u16, u16)> = (0..size).map(|_| (free_port(), free_port(), free_port())).collect();
        let lines: String = ports
            .iter()
            .enumerate()
            .map(|(index, (_, quorum, election))| {
                let kind = if index < voters { "participant" } else { "observer" };
                format!("server.{}=127.0.0.1:{quorum}:{election}:{kind}\n", index + 1)
            })
            .collect();
        let mut dirs = Vec::new();
        let mut configs = Vec::new();
        for (index, (client, _, _)) in ports.iter().enumerate() {
            let dir = temp_dir(&format!("ensemble-{}", index + 1));
            let text = format!(
                "tickTime=100\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort={client}\n\
                 clientPortAddress=127.0.0.1\nmaxSessionTimeout=60000\n4lw.commands.whitelist=*\npreAllocSize=64\n{lines}",
                dir.display()
            );
            let mut config = Config::parse(&text).unwrap();
            config.set_server_id(index as u64 + 1).unwrap();
            configs.push(config);
            dirs.push(dir);
        }
        Ensemble { dirs, configs, servers: (0..size).map(|_| None).collect() }
    }

    /// Starts every server and waits until the ensemble settles; returns the leader.
    pub async fn start_all(&mut self) -> usize {
        for index in 0..self.servers.len() {
            self.start(index).await;
        }
        self.settle().await
    }

    pub async fn start(&mut self, index: usize) {
        assert!(self.servers[index].is_none());
        self.servers[index] = Some(zk_runtime_tokio::start(self.configs[index].clone()).await.unwrap());
    }

    pub fn server(&self, index: usize) -> &ServerHandle {
        self.servers[index].as_ref().expect("server is up")
    }

    /// Waits until one live server leads and every live server serves; returns the leader.
    pub async fn settle(&self) -> usize {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                let live: Vec<(usize, zk_runtime_tokio::Status)> = self
                    .servers
                    .iter()
                    .enumerate()
                    .filter_map(|(index, server)| server.as_ref().map(|server| (index, server.status())))
                    .collect();
                let leaders: Vec<usize> = live
                    .iter()
                    .filter(|(_, status)| status.role == RoleName::Leading && status.serving)
                    .map(|(index, _)| *index)
                    .collect();
                if leaders.len() == 1 && live.iter().all(|(_, status)| status.serving) {
                    return leaders[0];
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the ensemble settles")
    }

    pub async fn stop(&mut self, index: usize) {
        self.servers[index].take().expect("server is up").shutdown().await.unwrap();
    }
}
