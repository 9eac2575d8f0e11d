//! The server: one task owns the [`Node`]; everything else talks to it through one bounded
//! queue of [`Input`](crate::input::Input)s.
//!
//! ```text
//!   client connections ──┐                        ┌──> storage thread (group commit)
//!   quorum links ────────┼──> Input queue ──> node task ──> quorum links
//!   storage reports ─────┘                        └──> client connection writers
//! ```
//!
//! After each batch of inputs (and each timer), the node task drains the node in the order
//! its doc asks: persist requests to the storage thread, peer messages to their links,
//! client frames to their connections; then it sleeps until the next input or the node's
//! deadline. Nothing the node task does waits on a client or a peer: their queues are
//! bounded, and one that is full is closed (a client that does not read its replies, a
//! link hopelessly behind) rather than buffered without bound.
//!
//! Each client connection is one task: a reader that stops reading while the connection
//! has many requests in the node or many replies waiting to be written (backpressure), and
//! a writer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use zk_core::node::{ClientOutput, ConnectionId, Node, Now, PeerTransmit, RoleName};
use zk_core::proto;
use zk_core::watch::WatchTable;
use zk_core::zab::message::PeerMessage;
use zk_core::zab::ServerId;

use crate::client_port;
use crate::config::{Config, ConfigError, PeerType};
use crate::four_letter::{self, ConnectionFacts, Facts};
use crate::input::{ConnectionHandle, Input};
use crate::peer;
use crate::rt::{self, StorageWorker};
use crate::shutdown::shutdown_signalled;
use crate::storage::{
    FileSystem, Layout, RealFileSystem, StartError, Storage, StorageOptions, StorageReport, StorageStats,
};

/// Inputs queued for the node task. Producers wait when it is full.
pub const INPUT_QUEUE_MAX: usize = 4096;
/// Inputs the node task takes before draining outputs: more inputs per drain means more
/// txns per persist request, so more per fsync. (Link changes drain first: see
/// `NodeLoop::handle`.)
pub const INPUT_BATCH_MAX: usize = 256;
struct PeerLink {
    link: u64,
    /// Messages, encoded by the link's own task (a SNAP's snapshot image included), so the
    /// node task never pays for encoding.
    sender: mpsc::Sender<PeerMessage>,
}

/// What a server is doing, published after every turn of the node task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub role: RoleName,
    pub serving: bool,
    pub leader: Option<ServerId>,
    pub last_zxid: i64,
    pub connections: usize,
}

/// Why a server could not start or stopped.
#[derive(Debug)]
pub enum ServerError {
    Config(ConfigError),
    Storage(StartError),
    Io {
        what: String,
        error: std::io::Error,
    },
    /// The node stopped (a storage failure); restart the server from disk.
    Stopped(String),
    /// The TLS settings cannot be used (a store that does not load, a wrong password, ...).
    Tls(String),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Config(error) => write!(f, "configuration: {error}"),
            ServerError::Tls(error) => write!(f, "TLS: {error}"),
            ServerError::Storage(error) => write!(f, "storage: {error}"),
            ServerError::Io { what, error } => write!(f, "{what}: {error}"),
            ServerError::Stopped(reason) => write!(f, "the server stopped: {reason}"),
        }
    }
}

impl std::error::Error for ServerError {}

impl From<ConfigError> for ServerError {
    fn from(error: ConfigError) -> Self {
        ServerError::Config(error)
    }
}

/// A running server.
pub struct ServerHandle {
    client_address: SocketAddr,
    secure_client_address: Option<SocketAddr>,
    quorum_address: Option<SocketAddr>,
    status: watch::Receiver<Status>,
    shutdown: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    node_task: Option<JoinHandle<Result<StorageStats, ServerError>>>,
}

impl ServerHandle {
    /// Where the client port listens.
    pub fn client_address(&self) -> SocketAddr {
        self.client_address
    }

    /// Where the TLS-only client port (`secureClientPort`) listens, if there is one.
    pub fn secure_client_address(&self) -> Option<SocketAddr> {
        self.secure_client_address
    }

    pub fn quorum_address(&self) -> Option<SocketAddr> {
        self.quorum_address
    }

    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Waits until the status satisfies `condition`.
    pub async fn wait_for(&mut self, condition: impl FnMut(&Status) -> bool) -> Status {
        self.status.wait_for(condition).await.map(|status| status.clone()).unwrap_or_else(|_| self.status())
    }

    /// Waits until the server serves clients (standalone: once its epochs are durable;
    /// in an ensemble: once it leads or has synced with a leader).
    pub async fn serving(&mut self) -> Status {
        self.wait_for(|status| status.serving).await
    }

    /// Waits for the server to stop by itself (a storage failure).
    pub async fn stopped(&mut self) -> Result<StorageStats, ServerError> {
        match self.node_task.as_mut() {
            Some(task) => {
                let result = task.await.unwrap_or_else(|error| Err(ServerError::Stopped(error.to_string())));
                self.node_task = None;
                result
            }
            None => Err(ServerError::Stopped(String::from("already stopped"))),
        }
    }

    /// Graceful shutdown: stops serving, finishes every storage request queued, closes
    /// every connection and listener. Returns the storage counters.
    pub async fn shutdown(mut self) -> Result<StorageStats, ServerError> {
        let _ = self.shutdown.send(true);
        let result = match self.node_task.take() {
            Some(task) => task.await.unwrap_or_else(|error| Err(ServerError::Stopped(error.to_string()))),
            None => Err(ServerError::Stopped(String::from("already stopped"))),
        };
        for listener in self.listeners.drain(..) {
            let _ = listener.await;
        }
        result
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// 128 bits from the operating system's randomness (std's hash keys), without a crate.
fn random_secret() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let half = || std::collections::hash_map::RandomState::new().build_hasher().finish();
    (u128::from(half()) << 64) | u128::from(half())
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |error| ServerError::Io { what, error }
}

/// Starts a server: recovers from its data directory, binds its ports and serves.
pub async fn start(config: Config) -> Result<ServerHandle, ServerError> {
    start_with_fs(config, Arc::new(RealFileSystem)).await
}

/// [`start`] with the server's files on `fs` (the in-memory filesystem under madsim).
pub async fn start_with_fs<F: FileSystem>(config: Config, fs: Arc<F>) -> Result<ServerHandle, ServerError> {
    let config = Arc::new(config);
    let mut node_config = config.node_config();
    node_config.auth.nonce_secret = random_secret();
    let (client_kind, secure_kind) = client_port::port_kinds(&config).map_err(ServerError::Tls)?;
    let layout = Layout::new(&config.data_dir, &config.data_log_dir);
    for dir in [&config.data_dir, &config.data_log_dir] {
        if dir.join("version-2").exists() {
            tracing::warn!(dir = %dir.display(), "found ZooKeeper's version-2 data; zkd keeps its own files and does not import it");
        }
    }
    let options = StorageOptions {
        pre_alloc_bytes: config.pre_alloc_size_bytes,
        snap_retain_count: config.snap_retain_count,
        commit_wait_max: config.commit_wait_max(),
        ..StorageOptions::default()
    };
    let opened = {
        let (fs, layout) = (fs.clone(), layout.clone());
        rt::blocking(move || Storage::open(fs, layout, options)).await.map_err(ServerError::Stopped)?
    };
    let (storage, recovered) = opened.map_err(ServerError::Storage)?;

    let client_listener =
        TcpListener::bind(config.client_address()?).await.map_err(io_error("binding the client port"))?;
    let client_address = client_listener.local_addr().map_err(io_error("the client port"))?;
    let secure_listener = match config.secure_client_address()? {
        Some(address) => Some(TcpListener::bind(address).await.map_err(io_error("binding the secure client port"))?),
        None => None,
    };
    let secure_client_address = match &secure_listener {
        Some(listener) => Some(listener.local_addr().map_err(io_error("the secure client port"))?),
        None => None,
    };
    let ensemble = node_config.voters.len() + node_config.observers.len() > 1;
    let quorum_listener = if ensemble {
        let address = config.quorum_listen_address()?;
        Some(TcpListener::bind(address).await.map_err(io_error(format!("binding the quorum port {address}")))?)
    } else {
        None
    };
    let quorum_address = quorum_listener.as_ref().and_then(|listener| listener.local_addr().ok());

    let (inputs, input_receiver) = mpsc::channel(INPUT_QUEUE_MAX);
    let (shutdown, shutdown_receiver) = watch::channel(false);
    let storage_stats = Arc::new(Mutex::new(StorageStats::default()));
    let storage_worker = {
        let purge_interval =
            (config.purge_interval_hours > 0).then(|| Duration::from_secs(config.purge_interval_hours * 3600));
        StorageWorker::spawn(storage, purge_interval, storage_stats.clone(), inputs.clone())
            .map_err(io_error("starting the storage thread"))?
    };
    let dir_size: DirSize = Arc::new(move |dir: &Path| fs.dir_size(dir));

    let clock = Clock { start: tokio::time::Instant::now() };
    let node = Node::new(node_config, recovered, clock.now());
    let initial = status_of(&node);
    let (status_sender, status) = watch::channel(initial);
    tracing::info!(
        server_id = config.server_id,
        client = %client_address,
        quorum = ?quorum_address,
        data_dir = %config.data_dir.display(),
        "zkd started"
    );

    let mut listeners = Vec::new();
    listeners.push(tokio::spawn(client_port::accept_clients(
        client_listener,
        client_kind,
        config.clone(),
        inputs.clone(),
        shutdown_receiver.clone(),
    )));
    if let (Some(listener), Some(kind)) = (secure_listener, secure_kind) {
        listeners.push(tokio::spawn(client_port::accept_clients(
            listener,
            kind,
            config.clone(),
            inputs.clone(),
            shutdown_receiver.clone(),
        )));
    }
    if let Some(listener) = quorum_listener {
        let known: Vec<ServerId> = config.servers.keys().copied().collect();
        listeners.push(tokio::spawn(peer::accept_loop(
            listener,
            config.server_id,
            known,
            inputs.clone(),
            shutdown_receiver.clone(),
        )));
        for &peer_id in config.servers.keys().filter(|&&id| id < config.server_id) {
            let address = config.quorum_address(peer_id)?;
            listeners.push(tokio::spawn(peer::dial_loop(
                config.server_id,
                peer_id,
                address,
                inputs.clone(),
                shutdown_receiver.clone(),
            )));
        }
    }
    drop(inputs);

    let node_loop = NodeLoop {
        node,
        clock,
        config,
        layout,
        storage: Some(storage_worker),
        storage_stats,
        dir_size,
        inputs: input_receiver,
        connections: BTreeMap::new(),
        peers: BTreeMap::new(),
        touched: BTreeSet::new(),
        status: status_sender,
        received: 0,
        sent: 0,
        failure: None,
    };
    let node_task = tokio::spawn(node_loop.run(shutdown_receiver));
    Ok(ServerHandle {
        client_address,
        secure_client_address,
        quorum_address,
        status,
        shutdown,
        listeners,
        node_task: Some(node_task),
    })
}

/// Milliseconds since the server started (monotonic) and since the Unix epoch (wall).
#[derive(Clone, Copy, Debug)]
struct Clock {
    start: tokio::time::Instant,
}

impl Clock {
    fn now(&self) -> Now {
        let wall_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64);
        Now { monotonic_ms: self.start.elapsed().as_millis() as u64, wall_ms }
    }

    fn instant(&self, monotonic_ms: u64) -> tokio::time::Instant {
        self.start + Duration::from_millis(monotonic_ms)
    }
}

fn status_of(node: &Node) -> Status {
    Status {
        role: node.role(),
        serving: node.is_serving(),
        leader: node.leader(),
        last_zxid: node.last_logged_zxid(),
        connections: node.connection_count(),
    }
}

/// The size of a directory's files, on the server's filesystem.
type DirSize = Arc<dyn Fn(&Path) -> u64 + Send + Sync>;

/// The node task's state.
struct NodeLoop {
    node: Node,
    clock: Clock,
    config: Arc<Config>,
    layout: Layout,
    storage: Option<StorageWorker>,
    storage_stats: Arc<Mutex<StorageStats>>,
    dir_size: DirSize,
    inputs: mpsc::Receiver<Input>,
    connections: BTreeMap<ConnectionId, ConnectionHandle>,
    peers: BTreeMap<ServerId, PeerLink>,
    /// Connections whose backpressure state may have changed this turn.
    touched: BTreeSet<ConnectionId>,
    status: watch::Sender<Status>,
    /// Client frames received and sent, for srvr and mntr.
    received: u64,
    sent: u64,
    failure: Option<String>,
}

impl NodeLoop {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<StorageStats, ServerError> {
        self.drain();
        loop {
            let deadline = self.node.poll_timeout().map(|ms| self.clock.instant(ms));
            let sleep = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown_signalled(&mut shutdown) => break,
                input = self.inputs.recv() => {
                    let Some(input) = input else { break };
                    // One clock reading for the batch: the node's clock is in milliseconds.
                    let now = self.clock.now();
                    self.handle(input, now);
                    for _ in 1..INPUT_BATCH_MAX {
                        match self.inputs.try_recv() {
                            Ok(input) => self.handle(input, now),
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep => {}
            }
            let now = self.clock.now();
            if self.node.poll_timeout().is_some_and(|deadline| deadline <= now.monotonic_ms) {
                self.node.handle_timeout(now);
            }
            self.drain();
            if self.failure.is_some() {
                break;
            }
        }
        // Closing every connection and link: dropping their senders ends their writers.
        // Closing the queue first means the storage thread's last reports cannot block on
        // a full queue nobody reads any more.
        self.inputs.close();
        self.connections.clear();
        self.peers.clear();
        let stats = match self.storage.take() {
            Some(storage) => storage.stop().await,
            None => StorageStats::default(),
        };
        tracing::info!(
            batches = stats.batches,
            requests = stats.requests,
            appends = stats.appends,
            log_fsyncs = stats.log_syncs,
            "server stopped"
        );
        match self.failure.take() {
            Some(reason) => Err(ServerError::Stopped(reason)),
            None => Ok(stats),
        }
    }

    fn handle(&mut self, input: Input, now: Now) {
        if matches!(input, Input::PeerUp { .. } | Input::PeerDown { .. }) {
            // Messages the node queued while the old link was up must go on that link or
            // nowhere, never first thing on a new one: drain before the links change.
            self.drain();
        }
        match input {
            Input::ClientConnected { connection, handle, identities } => {
                self.node.handle_client_connected(connection, Some(handle.remote.ip()), now);
                if !identities.is_empty() {
                    self.node.handle_client_identified(connection, identities, now);
                }
                self.connections.insert(connection, handle);
            }
            Input::ClientFrames { connection, frames, count } => {
                let Some(handle) = self.connections.get_mut(&connection) else { return };
                handle.received += count as u64;
                self.received += count as u64;
                handle.shared.handled.fetch_add(count as u64, Ordering::Relaxed);
                self.touched.insert(connection);
                let mut rest = &frames[..];
                // The reader split these already; this cannot fail.
                while let Ok(Some((frame, used))) = proto::split_frame(rest, usize::MAX) {
                    self.node.handle_client_frame(connection, frame, now);
                    rest = &rest[used..];
                }
            }
            Input::ClientDisconnected { connection } => {
                if self.connections.remove(&connection).is_some() {
                    self.node.handle_client_disconnected(connection, now);
                }
            }
            Input::FourLetterWord { word, reply } => {
                let answer = four_letter::answer(word, &self.facts());
                match word {
                    // ZooKeeper's srst resets the server's counters and latency; crst also
                    // each connection's (zkd keeps per-connection counts only).
                    "srst" => {
                        self.received = 0;
                        self.sent = 0;
                        self.node.reset_statistics();
                    }
                    "crst" => {
                        for handle in self.connections.values_mut() {
                            handle.received = 0;
                            handle.sent = 0;
                        }
                    }
                    _ => {}
                }
                let _ = reply.send(answer);
            }
            Input::PeerUp { peer, link, sender } => {
                if self.peers.insert(peer, PeerLink { link, sender }).is_some() {
                    // A new connection replaces the old one, whose messages may be lost.
                    self.node.handle_peer_link_down(peer, now);
                }
                self.node.handle_peer_link_up(peer, now);
            }
            Input::PeerMessage { peer, link, message } => {
                if self.peers.get(&peer).is_some_and(|current| current.link == link) {
                    self.node.handle_peer_message(peer, message, now);
                }
            }
            Input::PeerDown { peer, link } => {
                if self.peers.get(&peer).is_some_and(|current| current.link == link) {
                    self.peers.remove(&peer);
                    self.node.handle_peer_link_down(peer, now);
                }
            }
            Input::Storage(StorageReport::Persisted(token)) => self.node.handle_persisted(token, now),
            Input::Storage(StorageReport::Failed { token, reason }) => {
                self.node.handle_persist_failed(token, &reason, now);
                self.failure = Some(reason);
            }
        }
    }

    /// Carries out everything the node asked for, in the order its doc gives.
    fn drain(&mut self) {
        loop {
            let mut progress = false;
            while let Some(request) = self.node.poll_persist() {
                progress = true;
                if let Some(storage) = &self.storage {
                    storage.submit(request);
                }
            }
            while let Some(transmit) = self.node.poll_peer() {
                progress = true;
                self.send_peer(transmit);
            }
            while let Some(output) = self.node.poll_client() {
                progress = true;
                self.send_client(output);
            }
            if !progress {
                break;
            }
        }
        for connection in std::mem::take(&mut self.touched) {
            if let Some(handle) = self.connections.get(&connection) {
                handle.shared.pending.store(self.node.connection_requests_pending(connection), Ordering::Relaxed);
                handle.shared.resume.notify_one();
            }
        }
        let status = status_of(&self.node);
        self.status.send_if_modified(|current| {
            if (current.role, current.serving, current.leader) != (status.role, status.serving, status.leader) {
                tracing::info!(
                    role = ?status.role,
                    serving = status.serving,
                    leader = ?status.leader,
                    zxid = format_args!("{:#x}", status.last_zxid),
                    "role changed"
                );
            }
            let changed = *current != status;
            *current = status;
            changed
        });
    }

    fn send_peer(&mut self, transmit: PeerTransmit) {
        let Some(link) = self.peers.get(&transmit.to) else { return };
        if link.sender.try_send(transmit.message).is_err() {
            // FIFO delivery is what the node counts on while a link is up, so a message
            // that cannot be queued breaks the link instead of being skipped.
            tracing::warn!(peer = transmit.to, "quorum link is hopelessly behind; dropping it");
            self.peers.remove(&transmit.to);
            self.node.handle_peer_link_down(transmit.to, self.clock.now());
        }
    }

    fn send_client(&mut self, output: ClientOutput) {
        match output {
            ClientOutput::Frame { connection, bytes } => {
                let Some(handle) = self.connections.get_mut(&connection) else { return };
                handle.shared.queued.fetch_add(1, Ordering::Relaxed);
                match handle.writer.try_send(bytes) {
                    Ok(()) => {
                        handle.sent += 1;
                        self.sent += 1;
                        self.touched.insert(connection);
                    }
                    Err(error) => {
                        if matches!(error, mpsc::error::TrySendError::Full(_)) {
                            tracing::warn!(
                                remote = %handle.remote,
                                "closing a client connection that does not read its replies"
                            );
                        }
                        self.connections.remove(&connection);
                        self.node.handle_client_disconnected(connection, self.clock.now());
                    }
                }
            }
            ClientOutput::Close { connection } => {
                // Dropping the sender lets the writer finish what is queued, then close.
                self.connections.remove(&connection);
            }
        }
    }

    fn facts(&self) -> Facts {
        let database = self.node.database();
        let mode = match self.node.role() {
            RoleName::Leading if self.config.is_standalone() => "standalone",
            RoleName::Leading => "leader",
            RoleName::Following => "follower",
            RoleName::Observing => "observer",
            _ => "",
        };
        let summary = database.watches.summary(WatchTable::Data);
        let stats = *self.storage_stats.lock().unwrap();
        let data_dir_size = (self.dir_size)(&self.layout.snapshot_dir);
        let log_dir_size = (self.dir_size)(&self.layout.log_dir);
        Facts {
            mode,
            serving: self.node.is_serving(),
            zxid: self.node.applied_zxid(),
            node_count: database.tree.node_count(),
            watch_count: database.watches.watch_count(),
            data_watchers: summary.watcher_count,
            data_watch_paths: summary.path_count,
            data_watches: summary.watch_count,
            ephemerals_count: database.tree.all_ephemerals().values().map(BTreeSet::len).sum(),
            approximate_data_size: database.tree.data_size_approximate(),
            received: self.received,
            sent: self.sent,
            latency: self.node.request_latency(),
            proposal_sizes: self.node.proposal_sizes(),
            outstanding: self.connections.keys().map(|&id| self.node.connection_requests_pending(id)).sum(),
            connections: self
                .connections
                .iter()
                .map(|(&id, handle)| ConnectionFacts {
                    remote: handle.remote.to_string(),
                    queued: self.node.connection_requests_pending(id),
                    received: handle.received,
                    sent: handle.sent,
                    stats: self.node.connection_stats(id),
                })
                .collect(),
            conf: self.conf(data_dir_size, log_dir_size),
            data_dir_size,
            log_dir_size,
            fsyncs: stats.log_syncs,
            log_appends: stats.appends,
            ..crate::four_letter::watch_and_session_facts(&self.node)
        }
    }

    /// `conf`'s lines, as ZooKeeper's `dumpConf` (and the quorum server's additions) print them.
    fn conf(&self, data_dir_size: u64, log_dir_size: u64) -> Vec<String> {
        let config = &self.config;
        let session = config.session_config();
        let absolute =
            |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned()).display().to_string();
        let client_port = config.client_address().map(|address| address.port()).unwrap_or_default();
        let mut lines = vec![
            format!("clientPort={client_port}"),
            String::from("secureClientPort=-1"),
            format!("dataDir={}", absolute(&self.layout.snapshot_dir)),
            format!("dataDirSize={data_dir_size}"),
            format!("dataLogDir={}", absolute(&self.layout.log_dir)),
            format!("dataLogSize={log_dir_size}"),
            format!("tickTime={}", config.tick_time_ms),
            format!("maxClientCnxns={}", config.max_client_cnxns),
            format!("minSessionTimeout={}", session.min_session_timeout_ms),
            format!("maxSessionTimeout={}", session.max_session_timeout_ms),
            String::from("clientPortListenBacklog=-1"),
            format!("serverId={}", config.server_id),
        ];
        if !config.is_standalone() {
            lines.push(format!("initLimit={}", config.init_limit_ticks));
            lines.push(format!("syncLimit={}", config.sync_limit_ticks));
            lines.push(String::from("electionAlg=3"));
            if let Some(me) = config.servers.get(&config.server_id) {
                lines.push(format!("electionPort={}", me.election_port));
                lines.push(format!("quorumPort={}", me.quorum_port));
                lines.push(format!("peerType={}", if me.peer_type == PeerType::Observer { 1 } else { 0 }));
            }
            lines.push(String::from("membership: "));
            for (id, spec) in &config.servers {
                let kind = if spec.peer_type == PeerType::Observer { "observer" } else { "participant" };
                let client = spec.client.as_ref().map(|(host, port)| format!(";{host}:{port}")).unwrap_or_default();
                lines.push(format!(
                    "server.{id}={}:{}:{}:{kind}{client}",
                    spec.host, spec.quorum_port, spec.election_port
                ));
            }
        }
        lines
    }
}
