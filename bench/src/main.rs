//! zk-bench: a load generator for ZooKeeper-compatible servers.
//!
//! Many sessions, each keeping many requests in flight, over the real client protocol
//! (encoded with zk-core's jute code, the same for every server). Reports throughput and
//! latency percentiles (hdrhistogram) per workload, as a human line and a `RESULT` line
//! that scripts parse.
//!
//!     zk-bench --server 127.0.0.1:2181 --workload set --sessions 8 --in-flight 16 --duration-s 10

// A load generator is a driver: it owns sockets and reads the clock, which zk-core's lints
// forbid in deterministic code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use zk_core::proto::{
    self, Buffer, ConnectRequest, ConnectResponse, CreateMode, CreateRequest, DeleteRequest, GetDataRequest, MultiOp,
    Record, Request, SetDataRequest, XID_NOTIFICATION,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// setData of `--value-bytes` on the session's own node.
    Set,
    /// getData of the session's own node.
    Get,
    /// 90% getData, 10% setData.
    Mixed90,
    /// create a sequential node, then delete it; both count.
    CreateDelete,
    /// open a session, create an ephemeral, close the session: one op per cycle.
    EphemeralChurn,
    /// multi of 5 setData.
    Multi5,
    /// getData with a watch, another session sets the node; latency is from the set being
    /// sent to the notification arriving.
    Watch,
}

#[derive(Clone, Debug, Parser)]
#[command(about = "Load generator for ZooKeeper-compatible servers")]
struct Args {
    /// Comma-separated host:port list; sessions are spread over it.
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    #[arg(long, value_enum, default_value = "set")]
    workload: Workload,
    #[arg(long, default_value_t = 8)]
    sessions: usize,
    /// Requests each session keeps in flight.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Load before measuring starts.
    #[arg(long, default_value_t = 2)]
    warmup_s: u64,
    #[arg(long, default_value_t = 1024)]
    value_bytes: usize,
    /// A label printed with the results (e.g. the server's name).
    #[arg(long, default_value = "server")]
    label: String,
}

const FRAME_BYTES_MAX: usize = 64 << 20;
const ROOT: &str = "/zk-bench";

/// One client connection with a session.
struct Connection {
    reader: OwnedReadHalf,
    writer: BufWriter<OwnedWriteHalf>,
    buffer: Vec<u8>,
    next_xid: i32,
}

impl Connection {
    async fn open(server: &str, timeout_ms: i32) -> io::Result<Connection> {
        let stream = TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        let mut connection = Connection { reader, writer: BufWriter::new(writer), buffer: Vec::new(), next_xid: 1 };
        let request = ConnectRequest { time_out: timeout_ms, passwd: Buffer(vec![0; 16]), ..Default::default() };
        connection.writer.write_all(&proto::encode_framed(&request)).await?;
        connection.writer.flush().await?;
        let frame = connection.read_frame().await?;
        let response = ConnectResponse::from_bytes(&frame).map_err(|e| io::Error::other(format!("{e:?}")))?;
        if response.session_id == 0 {
            return Err(io::Error::other("session refused"));
        }
        Ok(connection)
    }

    /// Queues a request (sent at the next flush); returns its xid.
    async fn send(&mut self, request: &Request) -> io::Result<i32> {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.writer.write_all(&proto::encode_request(xid, request)).await?;
        Ok(xid)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.writer.flush().await
    }

    async fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match proto::split_frame(&self.buffer, FRAME_BYTES_MAX) {
                Ok(Some((body, used))) => {
                    let body = body.to_vec();
                    self.buffer.drain(..used);
                    return Ok(body);
                }
                Ok(None) => {}
                Err(error) => return Err(io::Error::other(format!("bad frame: {error:?}"))),
            }
            let mut chunk = [0u8; 64 * 1024];
            let read = self.reader.read(&mut chunk).await?;
            if read == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection"));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    /// Reads the next reply (skipping notifications unless asked): (xid, err, body).
    async fn read_reply(&mut self) -> io::Result<(i32, i32, Vec<u8>)> {
        let frame = self.read_frame().await?;
        if frame.len() < 16 {
            return Err(io::Error::other("short reply"));
        }
        let xid = i32::from_be_bytes(frame[0..4].try_into().unwrap());
        let err = i32::from_be_bytes(frame[12..16].try_into().unwrap());
        Ok((xid, err, frame[16..].to_vec()))
    }

    /// Sends one request and waits for its reply's error code.
    async fn call(&mut self, request: &Request) -> io::Result<i32> {
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

fn create(path: &str, data: Vec<u8>, mode: CreateMode) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(data),
        acl: zk_core::acl::open_acl_unsafe(),
        flags: mode.code(),
    })
}

fn set(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest { path: path.into(), data: Some(data.to_vec()), version: -1 })
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest { path: path.into(), watch })
}

/// What one session measured.
struct Measured {
    histogram: Histogram<u64>,
    ops: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// The measuring window: replies are counted only for requests sent inside it.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn record(&self, measured: &mut Measured, sent: Instant, now: Instant) {
        if sent >= self.start && now <= self.end {
            let micros = now.duration_since(sent).as_micros().max(1) as u64;
            measured.histogram.record(micros.min(60_000_000)).expect("in bounds");
            measured.ops += 1;
        }
    }
}

/// A small deterministic generator for the mixed workload (no need for a crate).
struct Lcg(u64);

impl Lcg {
    fn next_percent(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % 100
    }
}

async fn pipelined_session(args: Arc<Args>, server: String, index: usize, window: Window) -> io::Result<Measured> {
    let mut connection = Connection::open(&server, 30_000).await?;
    let value = vec![b'x'; args.value_bytes];
    let own = format!("{ROOT}/s{index}");
    let others: Vec<String> = (0..5).map(|i| format!("{own}-m{i}")).collect();
    for path in std::iter::once(&own).chain(others.iter()) {
        let err = connection.call(&create(path, value.clone(), CreateMode::Persistent)).await?;
        if err != 0 && err != -110 {
            return Err(io::Error::other(format!("setup create {path}: error {err}")));
        }
    }
    let mut measured = Measured { histogram: histogram(), ops: 0 };
    let mut in_flight: VecDeque<(i32, Instant, bool)> = VecDeque::new();
    let mut deletes: VecDeque<String> = VecDeque::new();
    let mut rng = Lcg(index as u64 + 1);
    loop {
        let now = Instant::now();
        if now >= window.end {
            break;
        }
        while in_flight.len() < args.in_flight {
            let (request, is_create) = match args.workload {
                Workload::Set => (set(&own, &value), false),
                Workload::Get => (get(&own, false), false),
                Workload::Mixed90 => {
                    if rng.next_percent() < 90 {
                        (get(&own, false), false)
                    } else {
                        (set(&own, &value), false)
                    }
                }
                Workload::CreateDelete => match deletes.pop_front() {
                    Some(path) => (Request::Delete(DeleteRequest { path, version: -1 }), false),
                    None => (create(&format!("{own}/seq-"), value.clone(), CreateMode::PersistentSequential), true),
                },
                Workload::Multi5 => (
                    Request::Multi(
                        others
                            .iter()
                            .map(|path| {
                                MultiOp::SetData(SetDataRequest {
                                    path: path.clone(),
                                    data: Some(value.clone()),
                                    version: -1,
                                })
                            })
                            .collect(),
                    ),
                    false,
                ),
                Workload::EphemeralChurn | Workload::Watch => unreachable!("not pipelined"),
            };
            let xid = connection.send(&request).await?;
            in_flight.push_back((xid, Instant::now(), is_create));
        }
        connection.flush().await?;
        let (xid, err, body) = connection.read_reply().await?;
        if xid == XID_NOTIFICATION {
            continue;
        }
        let now = Instant::now();
        let Some((expected, sent, was_create)) = in_flight.pop_front() else {
            return Err(io::Error::other("a reply nobody asked for"));
        };
        if xid != expected {
            return Err(io::Error::other(format!("reply {xid} out of order (expected {expected})")));
        }
        if err != 0 {
            return Err(io::Error::other(format!("request {xid} failed with error {err}")));
        }
        if was_create {
            let mut reader = zk_core::proto::Reader::new(&body);
            let path = reader.read_ustring().map_err(|e| io::Error::other(format!("{e:?}")))?;
            deletes.push_back(path);
        }
        window.record(&mut measured, sent, now);
    }
    Ok(measured)
}

async fn churn_session(args: Arc<Args>, server: String, index: usize, window: Window) -> io::Result<Measured> {
    let mut measured = Measured { histogram: histogram(), ops: 0 };
    let mut cycle = 0u64;
    while Instant::now() < window.end {
        let sent = Instant::now();
        let mut connection = Connection::open(&server, 30_000).await?;
        let path = format!("{ROOT}/e{index}-{cycle}");
        let err = connection.call(&create(&path, vec![b'e'; args.value_bytes.min(100)], CreateMode::Ephemeral)).await?;
        if err != 0 {
            return Err(io::Error::other(format!("ephemeral create failed with error {err}")));
        }
        let _ = connection.call(&Request::CloseSession).await;
        window.record(&mut measured, sent, Instant::now());
        cycle += 1;
    }
    Ok(measured)
}

async fn watch_pair(args: Arc<Args>, servers: Vec<String>, index: usize, window: Window) -> io::Result<Measured> {
    let mut watcher = Connection::open(&servers[index % servers.len()], 30_000).await?;
    let mut setter = Connection::open(&servers[(index + 1) % servers.len()], 30_000).await?;
    let path = format!("{ROOT}/w{index}");
    let value = vec![b'w'; args.value_bytes];
    let err = setter.call(&create(&path, value.clone(), CreateMode::Persistent)).await?;
    if err != 0 && err != -110 {
        return Err(io::Error::other(format!("setup create failed with error {err}")));
    }
    let mut measured = Measured { histogram: histogram(), ops: 0 };
    while Instant::now() < window.end {
        watcher.call(&get(&path, true)).await?;
        let sent = Instant::now();
        setter.call(&set(&path, &value)).await?;
        loop {
            let (xid, _, _) = watcher.read_reply().await?;
            if xid == XID_NOTIFICATION {
                break;
            }
        }
        window.record(&mut measured, sent, Instant::now());
    }
    Ok(measured)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Arc::new(Args::parse());
    let servers: Vec<String> = args.server.split(',').map(str::to_owned).collect();
    match Connection::open(&servers[0], 30_000).await {
        Ok(mut setup) => {
            let err = setup.call(&create(ROOT, Vec::new(), CreateMode::Persistent)).await.unwrap_or(-1);
            if err != 0 && err != -110 {
                eprintln!("zk-bench: cannot create {ROOT}: error {err}");
                std::process::exit(1);
            }
        }
        Err(error) => {
            eprintln!("zk-bench: cannot connect to {}: {error}", servers[0]);
            std::process::exit(1);
        }
    }
    let start = Instant::now() + Duration::from_secs(args.warmup_s);
    let window = Window { start, end: start + Duration::from_secs(args.duration_s) };
    let mut tasks = Vec::new();
    for index in 0..args.sessions {
        let server = servers[index % servers.len()].clone();
        let args = Arc::clone(&args);
        let servers = servers.clone();
        tasks.push(tokio::spawn(async move {
            match args.workload {
                Workload::EphemeralChurn => churn_session(args, server, index, window).await,
                Workload::Watch => watch_pair(args, servers, index, window).await,
                _ => pipelined_session(args, server, index, window).await,
            }
        }));
    }
    let mut total = histogram();
    let mut ops = 0u64;
    let mut failures = 0;
    for task in tasks {
        match task.await.expect("session task panicked") {
            Ok(measured) => {
                total.add(&measured.histogram).expect("same bounds");
                ops += measured.ops;
            }
            Err(error) => {
                failures += 1;
                eprintln!("zk-bench: a session failed: {error}");
            }
        }
    }
    let seconds = args.duration_s as f64;
    let rate = ops as f64 / seconds;
    let (p50, p99, p999) =
        (total.value_at_quantile(0.5), total.value_at_quantile(0.99), total.value_at_quantile(0.999));
    println!(
        "{} {:?}: {rate:.0} ops/s, latency p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms ({} sessions x {} in flight, {} s)",
        args.label,
        args.workload,
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        p999 as f64 / 1000.0,
        args.sessions,
        args.in_flight,
        args.duration_s
    );
    println!(
        "RESULT label={} workload={:?} ops_per_s={rate:.0} p50_us={p50} p99_us={p99} p999_us={p999} failures={failures}",
        args.label, args.workload
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
