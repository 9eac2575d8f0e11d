//! The workloads: many sessions spread round-robin over the servers of the connect string,
//! each keeping many requests in flight, and a histogram of their latencies.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use tokio::time::Instant;
use zk_core::proto::{CreateMode, DeleteRequest, MultiOp, Request, SetDataRequest, SyncRequest, XID_NOTIFICATION};

use crate::client::{self, create, get, set, Connection, ERROR_NODE_EXISTS, ERROR_OK};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
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
    /// sync of the session's own node, then getData of it, pipelined: one op is the pair,
    /// timed from the sync's sending to the getData's reply (a linearizable read).
    SyncGet,
    /// getData with a watch, another session sets the node; latency is from the set being
    /// sent to the notification arriving.
    Watch,
    /// create `--znodes` znodes of `--value-bytes` under `/zk-bench/populate/pNNNN/cNNNNNNN`
    /// (1000 children per parent), as fast as the server takes them;
    /// ends when all exist rather than after `--duration-s`.
    Populate,
}

impl Workload {
    /// The name used on the command line and in `RESULT` lines.
    pub fn name(self) -> String {
        self.to_possible_value().expect("no skipped variants").get_name().to_owned()
    }
}

#[derive(Clone, Debug, Args)]
pub struct LoadArgs {
    /// Comma-separated host:port list; sessions are spread over it round-robin.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub server: String,
    #[arg(long, value_enum, default_value = "set")]
    pub workload: Workload,
    #[arg(long, default_value_t = 8)]
    pub sessions: usize,
    /// Requests each session keeps in flight.
    #[arg(long, default_value_t = 16)]
    pub in_flight: usize,
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Load before measuring starts.
    #[arg(long, default_value_t = 2)]
    pub warmup_s: u64,
    #[arg(long, default_value_t = 1024)]
    pub value_bytes: usize,
    /// How many znodes the populate workload creates (parents not counted).
    #[arg(long, default_value_t = 1_000_000)]
    pub znodes: u64,
    /// A label printed with the results (e.g. the server's name).
    #[arg(long, default_value = "server")]
    pub label: String,
}

pub const ROOT: &str = "/zk-bench";
const POPULATE_ROOT: &str = "/zk-bench/populate";
/// Children per parent in the populate tree, so no znode gets a million children.
const POPULATE_FANOUT: u64 = 1000;
/// The session timeout the load generator asks for.
const SESSION_TIMEOUT_MS: i32 = 30_000;

/// What a pipelined request's reply means to the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    /// One op.
    Counted,
    /// One op, a create whose path is deleted next.
    Created,
    /// The first request of a pair: not counted by itself.
    FirstOfPair,
    /// The second of a pair: counts the pair, timed from the first's sending.
    SecondOfPair,
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

fn other_error(message: String) -> io::Error {
    io::Error::other(message)
}

/// Creates `path` unless it exists.
async fn ensure(connection: &mut Connection, path: &str, value: Vec<u8>) -> io::Result<()> {
    let err = connection.call(&create(path, value, CreateMode::Persistent)).await?;
    if err != ERROR_OK && err != ERROR_NODE_EXISTS {
        return Err(other_error(format!("setup create {path}: error {err}")));
    }
    Ok(())
}

async fn pipelined_session(args: Arc<LoadArgs>, server: String, index: usize, window: Window) -> io::Result<Measured> {
    let mut connection = Connection::open(&server, SESSION_TIMEOUT_MS).await?;
    let value = vec![b'x'; args.value_bytes];
    let own = format!("{ROOT}/s{index}");
    let others: Vec<String> = (0..5).map(|i| format!("{own}-m{i}")).collect();
    for path in std::iter::once(&own).chain(others.iter()) {
        ensure(&mut connection, path, value.clone()).await?;
    }
    let mut measured = Measured { histogram: histogram(), ops: 0 };
    let mut in_flight: VecDeque<(i32, Instant, Reply)> = VecDeque::new();
    let mut deletes: VecDeque<String> = VecDeque::new();
    let mut rng = Lcg(index as u64 + 1);
    loop {
        let now = Instant::now();
        if now >= window.end {
            break;
        }
        // Refill only once every reply already read has been taken: the requests then go
        // out together, one write for many, as a pipelining client's would.
        while in_flight.len() < args.in_flight && !connection.has_buffered_frame() {
            let (request, reply) = match args.workload {
                Workload::Set => (set(&own, &value), Reply::Counted),
                Workload::Get => (get(&own, false), Reply::Counted),
                Workload::Mixed90 => {
                    if rng.next_percent() < 90 {
                        (get(&own, false), Reply::Counted)
                    } else {
                        (set(&own, &value), Reply::Counted)
                    }
                }
                Workload::CreateDelete => match deletes.pop_front() {
                    Some(path) => (Request::Delete(DeleteRequest { path, version: -1 }), Reply::Counted),
                    None => {
                        let request = create(&format!("{own}/seq-"), value.clone(), CreateMode::PersistentSequential);
                        (request, Reply::Created)
                    }
                },
                Workload::SyncGet => {
                    let sync = Request::Sync(SyncRequest { path: own.clone() });
                    let xid = connection.send(&sync).await?;
                    in_flight.push_back((xid, Instant::now(), Reply::FirstOfPair));
                    (get(&own, false), Reply::SecondOfPair)
                }
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
                    Reply::Counted,
                ),
                Workload::EphemeralChurn | Workload::Watch | Workload::Populate => unreachable!("not pipelined"),
            };
            let xid = connection.send(&request).await?;
            let sent = match (reply, in_flight.back()) {
                // The pair is timed from its first request.
                (Reply::SecondOfPair, Some((_, first_sent, Reply::FirstOfPair))) => *first_sent,
                _ => Instant::now(),
            };
            in_flight.push_back((xid, sent, reply));
        }
        connection.flush().await?;
        let (xid, err, body) = connection.read_reply().await?;
        if xid == XID_NOTIFICATION {
            continue;
        }
        let now = Instant::now();
        let Some((expected, sent, reply)) = in_flight.pop_front() else {
            return Err(other_error("a reply nobody asked for".into()));
        };
        if xid != expected {
            return Err(other_error(format!("reply {xid} out of order (expected {expected})")));
        }
        if err != ERROR_OK {
            return Err(other_error(format!("request {xid} failed with error {err}")));
        }
        match reply {
            Reply::FirstOfPair => continue,
            Reply::Created => {
                let mut reader = zk_core::proto::Reader::new(&body);
                let path = reader.read_ustring().map_err(|e| other_error(format!("{e:?}")))?;
                deletes.push_back(path);
            }
            Reply::Counted | Reply::SecondOfPair => {}
        }
        window.record(&mut measured, sent, now);
    }
    Ok(measured)
}

async fn churn_session(args: Arc<LoadArgs>, server: String, index: usize, window: Window) -> io::Result<Measured> {
    let mut measured = Measured { histogram: histogram(), ops: 0 };
    let mut cycle = 0u64;
    while Instant::now() < window.end {
        let sent = Instant::now();
        let mut connection = Connection::open(&server, SESSION_TIMEOUT_MS).await?;
        let path = format!("{ROOT}/e{index}-{cycle}");
        let err = connection.call(&create(&path, vec![b'e'; args.value_bytes.min(100)], CreateMode::Ephemeral)).await?;
        if err != ERROR_OK {
            return Err(other_error(format!("ephemeral create failed with error {err}")));
        }
        let _ = connection.call(&Request::CloseSession).await;
        window.record(&mut measured, sent, Instant::now());
        cycle += 1;
    }
    Ok(measured)
}

async fn watch_pair(args: Arc<LoadArgs>, servers: Vec<String>, index: usize, window: Window) -> io::Result<Measured> {
    let mut watcher = Connection::open(&servers[index % servers.len()], SESSION_TIMEOUT_MS).await?;
    let mut setter = Connection::open(&servers[(index + 1) % servers.len()], SESSION_TIMEOUT_MS).await?;
    let path = format!("{ROOT}/w{index}");
    let value = vec![b'w'; args.value_bytes];
    ensure(&mut setter, &path, value.clone()).await?;
    // In an ensemble the watcher's server may not have applied the create yet; a getData
    // that fails sets no watch, and the watcher would wait for a notification forever.
    watcher.call(&Request::Sync(SyncRequest { path: path.clone() })).await?;
    let mut measured = Measured { histogram: histogram(), ops: 0 };
    while Instant::now() < window.end {
        let err = watcher.call(&get(&path, true)).await?;
        if err != ERROR_OK {
            return Err(other_error(format!("watching getData failed with error {err}")));
        }
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

fn populate_parent(parent: u64) -> String {
    format!("{POPULATE_ROOT}/p{parent:04}")
}

/// Creates the children whose numbers `next` hands out, keeping `in_flight` creates in
/// flight, until every number below `total` is taken and answered.
async fn populate_session(
    args: Arc<LoadArgs>,
    server: String,
    next: Arc<AtomicU64>,
    total: u64,
) -> io::Result<Measured> {
    let mut connection = Connection::open(&server, SESSION_TIMEOUT_MS).await?;
    let value = vec![b'p'; args.value_bytes];
    let mut measured = Measured { histogram: histogram(), ops: 0 };
    let mut in_flight: VecDeque<(i32, Instant)> = VecDeque::new();
    let mut exhausted = false;
    loop {
        while !exhausted && in_flight.len() < args.in_flight {
            let number = next.fetch_add(1, Ordering::Relaxed);
            if number >= total {
                exhausted = true;
                break;
            }
            let path = format!("{}/c{number:07}", populate_parent(number / POPULATE_FANOUT));
            let xid = connection.send(&create(&path, value.clone(), CreateMode::Persistent)).await?;
            in_flight.push_back((xid, Instant::now()));
        }
        if in_flight.is_empty() {
            return Ok(measured);
        }
        connection.flush().await?;
        let (xid, err, _) = connection.read_reply().await?;
        if xid == XID_NOTIFICATION {
            continue;
        }
        let now = Instant::now();
        let Some((expected, sent)) = in_flight.pop_front() else {
            return Err(other_error("a reply nobody asked for".into()));
        };
        if xid != expected {
            return Err(other_error(format!("reply {xid} out of order (expected {expected})")));
        }
        if err != ERROR_OK && err != ERROR_NODE_EXISTS {
            return Err(other_error(format!("populate create failed with error {err}")));
        }
        let micros = now.duration_since(sent).as_micros().max(1) as u64;
        measured.histogram.record(micros.min(60_000_000)).expect("in bounds");
        measured.ops += 1;
    }
}

/// The populate workload: parents first (pipelined on one session), then the children from
/// every session. Returns the measurement and the seconds it took.
async fn populate(args: Arc<LoadArgs>, servers: &[String]) -> io::Result<(Vec<io::Result<Measured>>, f64)> {
    let started = Instant::now();
    let mut setup = Connection::open(&servers[0], SESSION_TIMEOUT_MS).await?;
    ensure(&mut setup, POPULATE_ROOT, Vec::new()).await?;
    let parents = args.znodes.div_ceil(POPULATE_FANOUT);
    let mut xids = VecDeque::new();
    for parent in 0..parents {
        xids.push_back(setup.send(&create(&populate_parent(parent), Vec::new(), CreateMode::Persistent)).await?);
    }
    setup.flush().await?;
    while let Some(expected) = xids.pop_front() {
        let (xid, err, _) = setup.read_reply().await?;
        if xid != expected || (err != ERROR_OK && err != ERROR_NODE_EXISTS) {
            return Err(other_error(format!("populate parent: reply {xid} error {err}")));
        }
    }
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for index in 0..args.sessions {
        let server = servers[index % servers.len()].clone();
        tasks.push(tokio::spawn(populate_session(Arc::clone(&args), server, Arc::clone(&next), args.znodes)));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("populate task panicked"));
    }
    Ok((results, started.elapsed().as_secs_f64()))
}

/// Runs the workload and prints a human line and a `RESULT` line; returns whether every
/// session succeeded.
pub async fn run(args: LoadArgs) -> bool {
    let args = Arc::new(args);
    let servers = client::servers(&args.server);
    if servers.is_empty() {
        eprintln!("zk-bench: --server names no server");
        return false;
    }
    match Connection::open(&servers[0], SESSION_TIMEOUT_MS).await {
        Ok(mut setup) => {
            if let Err(error) = ensure(&mut setup, ROOT, Vec::new()).await {
                eprintln!("zk-bench: cannot create {ROOT}: {error}");
                return false;
            }
        }
        Err(error) => {
            eprintln!("zk-bench: cannot connect to {}: {error}", servers[0]);
            return false;
        }
    }
    let (results, seconds) = if args.workload == Workload::Populate {
        match populate(Arc::clone(&args), &servers).await {
            Ok(outcome) => outcome,
            Err(error) => {
                eprintln!("zk-bench: populate failed: {error}");
                return false;
            }
        }
    } else {
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
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("session task panicked"));
        }
        (results, args.duration_s as f64)
    };
    report(&args, servers.len(), results, seconds)
}

fn report(args: &LoadArgs, server_count: usize, results: Vec<io::Result<Measured>>, seconds: f64) -> bool {
    let mut total = histogram();
    let mut ops = 0u64;
    let mut failures = 0;
    for result in results {
        match result {
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
    let rate = ops as f64 / seconds;
    let (p50, p99, p999) =
        (total.value_at_quantile(0.5), total.value_at_quantile(0.99), total.value_at_quantile(0.999));
    let workload = args.workload.name();
    println!(
        "{} {workload}: {rate:.0} ops/s, latency p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms \
         ({} sessions x {} in flight over {server_count} servers, {seconds:.1} s)",
        args.label,
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        p999 as f64 / 1000.0,
        args.sessions,
        args.in_flight,
    );
    println!(
        "RESULT label={} workload={workload} ops_per_s={rate:.0} p50_us={p50} p99_us={p99} p999_us={p999} \
         ops={ops} seconds={seconds:.3} servers={server_count} failures={failures}",
        args.label
    );
    failures == 0
}
