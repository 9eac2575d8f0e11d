//! zkd in madsim's deterministic simulation: three servers and a client on simulated
//! nodes, each server running zkd's own `start_with_fs` (real framing, timers, node task
//! and reconnects; simulated sockets and time; files in memory).
//!
//! ```sh
//! RUSTFLAGS="--cfg madsim" cargo test -p zk-runtime-tokio --test madsim --target-dir target/madsim
//! ```
//!
//! `MADSIM_TEST_SEED` picks the first seed (default 1), `MADSIM_TEST_NUM` how many seeds
//! to run from it (default 1). A failure prints its seed; the same seed replays the same run.

#![cfg(madsim)]
// The simulation replaces the clock; tests may read it.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestClient;
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle, Runtime};
use zk_core::node::RoleName;
use zk_core::proto::{Request, SyncRequest};
use zk_runtime_tokio::config::Config;
use zk_runtime_tokio::storage::MemoryFileSystem;
use zk_runtime_tokio::Status;

const SERVERS: u64 = 3;
const CLIENT_PORT: u16 = 2181;
/// How long (simulated) the ensemble may take to settle after a fault.
const SETTLE: Duration = Duration::from_secs(60);
/// The whole run's simulated time limit.
const TIME_LIMIT: Duration = Duration::from_secs(900);

fn server_ip(id: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8))
}

fn client_address(id: u64) -> SocketAddr {
    SocketAddr::new(server_ip(id), CLIENT_PORT)
}

fn config(id: u64) -> Config {
    let servers: String =
        (1..=SERVERS).map(|peer| format!("server.{peer}={}:2888:3888:participant\n", server_ip(peer))).collect();
    let text = format!(
        "tickTime=100\ninitLimit=20\nsyncLimit=10\ndataDir=/zkd/{id}\nclientPort={CLIENT_PORT}\n\
         clientPortAddress={}\nmaxSessionTimeout=60000\n4lw.commands.whitelist=*\npreAllocSize=64\n\
         snapCount=5\n{servers}",
        server_ip(id)
    );
    let mut config = Config::parse(&text).expect("the test's zoo.cfg parses");
    config.set_server_id(id).expect("a known server id");
    config
}

/// The servers' latest statuses, as each server's node publishes them.
type Statuses = Arc<Mutex<BTreeMap<u64, Status>>>;

/// A server's node task: zkd on its files, publishing its status until it is killed.
async fn serve(id: u64, fs: Arc<MemoryFileSystem>, statuses: Statuses) {
    let mut server = zk_runtime_tokio::start_with_fs(config(id), fs).await.expect("zkd starts");
    loop {
        let status = server.status();
        statuses.lock().unwrap().insert(id, status.clone());
        let next = server.wait_for(|current| *current != status).await;
        if next == status {
            // The node task ended: only a storage failure does that.
            panic!("server {id} stopped: {:?}", server.stopped().await.err());
        }
    }
}

struct Cluster {
    handle: Handle,
    nodes: BTreeMap<u64, NodeHandle>,
    disks: BTreeMap<u64, Arc<MemoryFileSystem>>,
    statuses: Statuses,
}

impl Cluster {
    fn start(handle: &Handle) -> Cluster {
        let statuses = Statuses::default();
        let mut nodes = BTreeMap::new();
        let mut disks = BTreeMap::new();
        for id in 1..=SERVERS {
            let fs = Arc::new(MemoryFileSystem::default());
            let init = {
                let (fs, statuses) = (fs.clone(), statuses.clone());
                move || serve(id, fs.clone(), statuses.clone())
            };
            let node = handle.create_node().name(format!("zkd-{id}")).ip(server_ip(id)).init(init).build();
            nodes.insert(id, node);
            disks.insert(id, fs);
        }
        Cluster { handle: handle.clone(), nodes, disks, statuses }
    }

    fn status(&self, id: u64) -> Option<Status> {
        self.statuses.lock().unwrap().get(&id).cloned()
    }

    /// Waits until one of `live` leads and every one of `live` serves under it; returns
    /// the leader.
    async fn settle(&self, live: &[u64]) -> u64 {
        let wait = async {
            loop {
                let statuses: Vec<Option<Status>> = live.iter().map(|&id| self.status(id)).collect();
                let leaders: Vec<u64> = live
                    .iter()
                    .zip(&statuses)
                    .filter(|(_, status)| status.as_ref().is_some_and(|s| s.role == RoleName::Leading && s.serving))
                    .map(|(&id, _)| id)
                    .collect();
                if let [leader] = leaders[..] {
                    let all_follow = statuses.iter().flatten().filter(|status| status.serving).count() == live.len()
                        && statuses.iter().flatten().all(|status| status.leader == Some(leader));
                    if all_follow {
                        return leader;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        match tokio::time::timeout(SETTLE, wait).await {
            Ok(leader) => leader,
            Err(_) => panic!("servers {live:?} did not settle: {:?}", self.statuses.lock().unwrap()),
        }
    }

    fn kill(&self, id: u64) {
        self.handle.kill(self.nodes[&id].id());
        self.statuses.lock().unwrap().remove(&id);
        // A power cut, not just a process crash: whatever was not fsynced is gone.
        self.disks[&id].crash();
    }

    fn restart(&self, id: u64) {
        self.handle.restart(self.nodes[&id].id());
    }

    fn partition(&self, id: u64) {
        NetSim::current().clog_node(self.nodes[&id].id());
    }

    fn heal(&self, id: u64) {
        NetSim::current().unclog_node(self.nodes[&id].id());
    }
}

/// Runs `attempt` until it succeeds, within [`SETTLE`].
async fn retry<F, Fut>(what: &str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = io::Result<()>>,
{
    let result = tokio::time::timeout(SETTLE, async {
        loop {
            match attempt().await {
                Ok(()) => return,
                Err(error) => {
                    tracing::debug!(what, %error, "retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    })
    .await;
    assert!(result.is_ok(), "{what}: gave up after {SETTLE:?}");
}

/// Writes `path` through server `id` (retrying until acknowledged) and remembers it.
async fn acknowledged_write(id: u64, path: &str, data: &[u8], acknowledged: &mut BTreeMap<String, Vec<u8>>) {
    retry(&format!("writing {path} through server {id}"), || async move {
        let mut client = TestClient::connect(client_address(id)).await?;
        match client.create(path, data).await? {
            // Done, or an earlier attempt whose reply was lost got there.
            0 | -110 => Ok(()),
            error => Err(io::Error::other(format!("create {path}: error {error}"))),
        }
    })
    .await;
    acknowledged.insert(path.to_owned(), data.to_vec());
}

/// Reads every acknowledged write through server `id`, after a sync so that a follower
/// has caught up with the leader.
async fn check_all(id: u64, acknowledged: &BTreeMap<String, Vec<u8>>) {
    retry(&format!("reading every acknowledged write through server {id}"), || async move {
        let mut client = TestClient::connect(client_address(id)).await?;
        let (header, _) = client.call(&Request::Sync(SyncRequest { path: String::from("/") })).await?;
        if header.err != 0 {
            return Err(io::Error::other(format!("sync: error {}", header.err)));
        }
        for (path, data) in acknowledged {
            let read = client.get_data(path, false).await?;
            assert_eq!(read.as_deref(), Some(&data[..]), "server {id} lost the acknowledged write {path}");
        }
        Ok(())
    })
    .await;
}

async fn scenario(handle: Handle) {
    let cluster = Cluster::start(&handle);
    let all: Vec<u64> = (1..=SERVERS).collect();
    let mut acknowledged = BTreeMap::new();

    // 1. The ensemble elects a leader and serves writes through every server.
    let leader = cluster.settle(&all).await;
    for &id in &all {
        acknowledged_write(id, &format!("/start-{id}"), format!("via {id}").as_bytes(), &mut acknowledged).await;
    }
    check_all(leader, &acknowledged).await;

    // 2. The leader is cut off: the others elect a new one and keep serving.
    cluster.partition(leader);
    let others: Vec<u64> = all.iter().copied().filter(|&id| id != leader).collect();
    let second = cluster.settle(&others).await;
    assert_ne!(second, leader, "a partitioned leader cannot stay the majority's leader");
    for &id in &others {
        acknowledged_write(id, &format!("/partitioned-{id}"), b"while the old leader was cut off", &mut acknowledged)
            .await;
    }
    check_all(others[0], &acknowledged).await;

    // 3. The partition heals: the old leader rejoins (as a follower) and catches up.
    cluster.heal(leader);
    let third = cluster.settle(&all).await;
    check_all(leader, &acknowledged).await;

    // 4. The leader is killed (and loses what it had not fsynced): the others go on.
    cluster.kill(third);
    let survivors: Vec<u64> = all.iter().copied().filter(|&id| id != third).collect();
    cluster.settle(&survivors).await;
    for &id in &survivors {
        acknowledged_write(id, &format!("/killed-{id}"), b"while a server was down", &mut acknowledged).await;
    }

    // 5. It restarts from its files, rejoins, and every acknowledged write is everywhere.
    cluster.restart(third);
    cluster.settle(&all).await;
    acknowledged_write(third, "/restarted", b"through the restarted server", &mut acknowledged).await;
    for &id in &all {
        check_all(id, &acknowledged).await;
    }
}

fn seeds() -> std::ops::Range<u64> {
    let first =
        std::env::var("MADSIM_TEST_SEED").ok().map_or(1, |seed| seed.parse().expect("MADSIM_TEST_SEED: a number"));
    let count =
        std::env::var("MADSIM_TEST_NUM").ok().map_or(1, |count| count.parse().expect("MADSIM_TEST_NUM: a number"));
    first..first + count
}

#[test]
fn ensemble_survives_partition_and_kill() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    for seed in seeds() {
        let run = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
            runtime.set_time_limit(TIME_LIMIT);
            let handle = runtime.handle().clone();
            let client = handle.create_node().name("client").ip(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1))).build();
            runtime.block_on(async move { client.spawn(scenario(handle)).await.expect("the scenario runs") });
        }));
        if let Err(panic) = run {
            eprintln!("madsim: seed {seed} failed; replay it with MADSIM_TEST_SEED={seed} MADSIM_TEST_NUM=1");
            panic::resume_unwind(panic);
        }
        eprintln!("madsim: seed {seed} passed");
    }
}
