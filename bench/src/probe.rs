//! Timing of availability: how soon a (re)started server answers, and how soon an ensemble
//! takes writes again after its leader is killed.

use std::io;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use tokio::time::Instant;
use zk_core::proto::{CreateMode, XID_NOTIFICATION};

use crate::client::{self, create, exists, set, Connection, Session, ERROR_NODE_EXISTS, ERROR_OK};

/// How long to wait between two attempts to reach a server that does not answer yet.
const RETRY_PAUSE: Duration = Duration::from_millis(2);
/// How many probe attempts may wait for an answer at once: well under the default
/// maxClientCnxns (60) of both servers, which count held connections too.
const ATTEMPTS_IN_FLIGHT_MAX: usize = 16;
/// How long one probe attempt waits for its answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Args)]
pub struct ProbeArgs {
    /// The server to poll (host:port).
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub server: String,
    /// Give up after this long.
    #[arg(long, default_value_t = 300)]
    pub timeout_s: u64,
    /// The znode whose exists() must succeed: `/` by default, or one written before a
    /// restart, to check that the data came back.
    #[arg(long, default_value = "/")]
    pub path: String,
    #[arg(long, default_value = "server")]
    pub label: String,
}

fn unix_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_nanos()
}

/// One attempt: connect, open a session, exists(path) answered Ok.
async fn answers(server: &str, path: &str) -> io::Result<()> {
    let mut connection = Connection::open(server, 30_000).await?;
    let err = connection.call(&exists(path)).await?;
    if err != ERROR_OK {
        return Err(io::Error::other(format!("exists({path}) failed with error {err}")));
    }
    // Best effort: the session need not outlive the probe.
    let _ = connection.call(&zk_core::proto::Request::CloseSession).await;
    Ok(())
}

/// Polls the server until exists(path) succeeds; prints the wall-clock time (Unix ns) it
/// first did, so a script can subtract the time it started the server at.
///
/// A new attempt starts every `RETRY_PAUSE` while earlier ones are still pending (up to
/// `ATTEMPTS_IN_FLIGHT_MAX`): a server that is starting may accept a connection and hold
/// it unanswered, and one such attempt must not hide the moment the server answers.
pub async fn run(args: ProbeArgs) -> bool {
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let mut attempts = 0u64;
    let mut pending = tokio::task::JoinSet::new();
    let mut last_error = None;
    while Instant::now() < deadline {
        if pending.len() < ATTEMPTS_IN_FLIGHT_MAX {
            attempts += 1;
            let (server, path) = (args.server.clone(), args.path.clone());
            pending.spawn(async move {
                match tokio::time::timeout(ATTEMPT_TIMEOUT, answers(&server, &path)).await {
                    Ok(Ok(())) => Ok(unix_ns()),
                    Ok(Err(error)) => Err(error),
                    Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no answer")),
                }
            });
        }
        let pause = tokio::time::sleep(RETRY_PAUSE);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                Some(done) = pending.join_next() => match done.expect("probe attempt panicked") {
                    Ok(ready_unix_ns) => {
                        println!(
                            "RESULT label={} probe=ready ready_unix_ns={ready_unix_ns} attempts={attempts}",
                            args.label
                        );
                        return true;
                    }
                    Err(error) => last_error = Some(error),
                },
                () = &mut pause => break,
            }
        }
    }
    eprintln!("zk-bench probe: {} did not answer within {} s: {last_error:?}", args.server, args.timeout_s);
    false
}

#[derive(Clone, Debug, Args)]
pub struct FailoverArgs {
    /// The servers the writer may use: the ones that survive the kill.
    #[arg(long)]
    pub server: String,
    /// The process to SIGKILL (the leader).
    #[arg(long)]
    pub kill_pid: u32,
    /// Write this long before the kill.
    #[arg(long, default_value_t = 3)]
    pub kill_after_s: u64,
    /// Give up this long after the kill.
    #[arg(long, default_value_t = 60)]
    pub timeout_s: u64,
    /// Writes the writer keeps in flight.
    #[arg(long, default_value_t = 8)]
    pub in_flight: usize,
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    #[arg(long, default_value = "server")]
    pub label: String,
}

/// When the leader was killed, and when it was seen dead.
#[derive(Clone, Copy, Debug)]
struct Kill {
    /// Just before the signal was sent: the figure counts from here.
    sent: Instant,
    /// When the process was seen gone: only a write sent after this proves the survivors
    /// recovered. One sent between the two may still be committed by the leader, which
    /// runs until the kernel has delivered the signal (and starting `kill` takes
    /// milliseconds): counting those once measured ZooKeeper's failover as 4 ms.
    dead: Instant,
}

/// What the writer saw.
#[derive(Debug)]
struct Writes {
    before_kill: u64,
    reconnects: u64,
    /// From the kill to the first Ok reply to a write sent after the leader was dead.
    recovered: Duration,
}

/// Keeps `in_flight` setData requests going on one session over the survivors, resuming the
/// session on any survivor when a connection drops, until a write sent after the leader died is
/// acknowledged.
async fn write_until_recovered(args: &FailoverArgs, kill: Arc<OnceLock<Kill>>) -> io::Result<Writes> {
    let servers = client::servers(&args.server);
    let path = format!("{}/failover", crate::load::ROOT);
    let value = vec![b'f'; args.value_bytes];
    let mut connection = Connection::open(&servers[0], 30_000).await?;
    for target in [crate::load::ROOT, path.as_str()] {
        let err = connection.call(&create(target, Vec::new(), CreateMode::Persistent)).await?;
        if err != ERROR_OK && err != ERROR_NODE_EXISTS {
            return Err(io::Error::other(format!("setup create {target}: error {err}")));
        }
    }
    let mut session: Session = connection.session.clone();
    let mut writes = Writes { before_kill: 0, reconnects: 0, recovered: Duration::ZERO };
    let mut next_server = 1;
    loop {
        match write_on(&mut connection, args, &path, &value, &kill, &mut writes).await {
            Ok(recovered) => {
                writes.recovered = recovered;
                return Ok(writes);
            }
            Err(_) => {
                // The connection dropped (the server lost its leader): resume the session on
                // the next survivor that takes it, as a real client would.
                loop {
                    if let Some(killed) = kill.get() {
                        if killed.sent.elapsed() > Duration::from_secs(args.timeout_s) {
                            return Err(io::Error::other("no survivor took the session back in time"));
                        }
                    }
                    let server = &servers[next_server % servers.len()];
                    next_server += 1;
                    match Connection::open_session(server, session.timeout_ms, Some(&session)).await {
                        Ok(resumed) => {
                            connection = resumed;
                            break;
                        }
                        Err(error) if error.kind() == io::ErrorKind::NotFound => {
                            // Expired: a new session is what a real client would end with.
                            if let Ok(fresh) = Connection::open(server, 30_000).await {
                                session = fresh.session.clone();
                                connection = fresh;
                                break;
                            }
                        }
                        Err(_) => {}
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                writes.reconnects += 1;
            }
        }
    }
}

/// Writes on one connection until a write sent after the leader died is acknowledged (returns the
/// time since the kill) or the connection fails.
async fn write_on(
    connection: &mut Connection,
    args: &FailoverArgs,
    path: &str,
    value: &[u8],
    kill: &OnceLock<Kill>,
    writes: &mut Writes,
) -> io::Result<Duration> {
    let mut in_flight = std::collections::VecDeque::new();
    loop {
        while in_flight.len() < args.in_flight {
            let xid = connection.send(&set(path, value)).await?;
            in_flight.push_back((xid, Instant::now()));
        }
        connection.flush().await?;
        let (xid, err, _) = connection.read_reply().await?;
        if xid == XID_NOTIFICATION || xid < 0 {
            continue;
        }
        let Some((expected, sent)) = in_flight.pop_front() else {
            return Err(io::Error::other("a reply nobody asked for"));
        };
        if xid != expected {
            return Err(io::Error::other(format!("reply {xid} out of order (expected {expected})")));
        }
        if err != ERROR_OK {
            continue;
        }
        match kill.get() {
            Some(killed) if sent >= killed.dead => return Ok(killed.sent.elapsed()),
            Some(_) => {}
            None => writes.before_kill += 1,
        }
    }
}

/// Whether a process has exited: gone, or a zombie its parent has not reaped (its sockets
/// are closed by then).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => status.lines().any(|line| line.starts_with("State:") && line.contains('Z')),
        Err(_) => true,
    }
}

/// Writes, kills the leader after `--kill-after-s`, and prints how long the ensemble took
/// to acknowledge a write again.
pub async fn failover(args: FailoverArgs) -> bool {
    let kill = Arc::new(OnceLock::new());
    let writer = {
        let args = args.clone();
        let kill = Arc::clone(&kill);
        tokio::spawn(async move { write_until_recovered(&args, kill).await })
    };
    tokio::time::sleep(Duration::from_secs(args.kill_after_s)).await;
    if writer.is_finished() {
        eprintln!("zk-bench failover: the writer stopped before the kill: {:?}", writer.await.map(|r| r.err()));
        return false;
    }
    let killed_at = Instant::now();
    let status = std::process::Command::new("kill").args(["-9", &args.kill_pid.to_string()]).status();
    if !matches!(status, Ok(status) if status.success()) {
        eprintln!("zk-bench failover: kill -9 {} failed: {status:?}", args.kill_pid);
        return false;
    }
    let dead = loop {
        if is_dead(args.kill_pid) {
            break Instant::now();
        }
        if killed_at.elapsed() > Duration::from_secs(args.timeout_s) {
            eprintln!("zk-bench failover: process {} still runs after kill -9", args.kill_pid);
            return false;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    kill.set(Kill { sent: killed_at, dead }).expect("killed once");
    let outcome = tokio::time::timeout(Duration::from_secs(args.timeout_s + 5), writer).await;
    match outcome {
        Ok(Ok(Ok(writes))) => {
            let ms = writes.recovered.as_secs_f64() * 1000.0;
            println!(
                "{}: first write acknowledged {ms:.1} ms after the leader was killed ({} writes before, {} reconnects)",
                args.label, writes.before_kill, writes.reconnects
            );
            println!(
                "RESULT label={} probe=failover recovered_ms={ms:.1} writes_before={} reconnects={}",
                args.label, writes.before_kill, writes.reconnects
            );
            true
        }
        other => {
            eprintln!("zk-bench failover: writes did not recover: {other:?}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_process_is_dead_once_it_exits_even_unreaped() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        assert!(!is_dead(child.id()), "a running process is alive");
        child.kill().unwrap();
        // Not reaped yet: a zombie, which counts as dead.
        let started = std::time::Instant::now();
        while !is_dead(child.id()) {
            assert!(started.elapsed() < Duration::from_secs(5), "the killed process never exited");
            std::thread::sleep(Duration::from_millis(1));
        }
        child.wait().unwrap();
        assert!(is_dead(child.id()), "a reaped process is gone");
    }
}
