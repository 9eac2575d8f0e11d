//! The client port: accepting connections (`maxClientCnxns` per address), optionally over
//! TLS ([`crate::tls`]), and one task per connection that hands the node its frames and
//! writes its replies. A connection's reader stops reading while the connection has many
//! requests in the node or many replies waiting to be written (backpressure).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use zk_core::node::ConnectionId;
use zk_core::proto::{self, Id};

use crate::config::Config;
use crate::four_letter;
use crate::input::{ConnectionHandle, ConnectionShared, Input};
use crate::rt;
use crate::shutdown::shutdown_signalled;
#[cfg(not(madsim))]
use crate::tls::TlsServer;

/// Frames waiting to be written to one client. A client that lets this fill is closed.
pub const CLIENT_QUEUE_FRAMES_MAX: usize = 4096;
/// A connection stops being read while it has this many requests in the node (well under
/// the core's `connection_requests_pending_max`, where the core closes it) ...
pub const CLIENT_REQUESTS_IN_FLIGHT_PAUSE: usize = 256;
/// ... or this many replies waiting to be written.
pub const CLIENT_QUEUED_FRAMES_PAUSE: usize = CLIENT_QUEUE_FRAMES_MAX / 4;
/// Bytes read from a client at a time.
const CLIENT_READ_BYTES: usize = 64 * 1024;

/// The most frames handed to the node in one input (backpressure is checked between them).
const CLIENT_FRAMES_PER_INPUT: usize = 64;

/// Counts connections per client address for `maxClientCnxns`; a slot is given back when
/// its connection ends.
#[derive(Clone, Debug, Default)]
struct ConnectionsPerIp(Arc<Mutex<BTreeMap<IpAddr, usize>>>);

struct IpSlot {
    ip: IpAddr,
    counts: ConnectionsPerIp,
}

impl ConnectionsPerIp {
    fn take(&self, ip: IpAddr, limit: usize) -> Option<IpSlot> {
        let mut counts = self.0.lock().unwrap();
        let count = counts.entry(ip).or_default();
        if limit > 0 && *count >= limit {
            return None;
        }
        *count += 1;
        Some(IpSlot { ip, counts: self.clone() })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap();
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// What a client port speaks.
#[derive(Clone)]
pub(crate) enum PortKind {
    Plain,
    /// `secureClientPort`: TLS only.
    #[cfg(not(madsim))]
    Tls(Arc<TlsServer>),
    /// `clientPort` with `client.portUnification`: TLS when the first byte opens a TLS
    /// handshake, plaintext otherwise.
    #[cfg(not(madsim))]
    Unified(Arc<TlsServer>),
}

/// The longest a TLS handshake may take (Netty's SslHandler default).
#[cfg(not(madsim))]
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// With port unification, the longest zkd waits for a client's first byte before it takes
/// the connection as plaintext.
#[cfg(not(madsim))]
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(5);
/// The first byte of a TLS handshake record.
#[cfg(not(madsim))]
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The kinds of the client port and of the secure client port (if any) the configuration
/// asks for; the key and trust stores are loaded here, so a bad one stops zkd at start.
pub(crate) fn port_kinds(config: &Config) -> Result<(PortKind, Option<PortKind>), String> {
    if !config.serves_tls() {
        return Ok((PortKind::Plain, None));
    }
    #[cfg(madsim)]
    return Err(String::from("TLS is not available in the madsim build"));
    #[cfg(not(madsim))]
    {
        let tls = Arc::new(TlsServer::new(config)?);
        let client = if config.client_port_unification { PortKind::Unified(tls.clone()) } else { PortKind::Plain };
        Ok((client, config.secure_client_port.map(|_| PortKind::Tls(tls))))
    }
}

pub(crate) async fn accept_clients(
    listener: TcpListener,
    kind: PortKind,
    config: Arc<Config>,
    inputs: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) {
    static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);
    let per_ip = ConnectionsPerIp::default();
    let frame_bytes_max = config.node_config().client_frame_bytes_max;
    loop {
        let accepted = tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, usually: wait rather than spin.
                tracing::warn!(%error, "client accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = per_ip.take(remote.ip(), config.max_client_cnxns) else {
            tracing::warn!(%remote, limit = config.max_client_cnxns, "too many connections from one address (maxClientCnxns)");
            continue;
        };
        let connection = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
        let client =
            Client { connection, remote, inputs: inputs.clone(), config: config.clone(), frame_bytes_max, _slot: slot };
        tokio::spawn(client.start(stream, kind.clone(), shutdown.clone()));
    }
}

/// One client connection's task.
struct Client {
    connection: ConnectionId,
    remote: SocketAddr,
    inputs: mpsc::Sender<Input>,
    config: Arc<Config>,
    frame_bytes_max: usize,
    _slot: IpSlot,
}

impl Client {
    /// Sets the connection up (a TLS handshake where the port asks for one), then serves it.
    async fn start(self, stream: TcpStream, kind: PortKind, shutdown: watch::Receiver<bool>) {
        let _ = stream.set_nodelay(true);
        match kind {
            PortKind::Plain => self.start_plain(stream, shutdown).await,
            #[cfg(not(madsim))]
            PortKind::Tls(tls) => self.start_tls(stream, &tls, shutdown).await,
            #[cfg(not(madsim))]
            PortKind::Unified(tls) => {
                let mut first = [0u8; 1];
                match tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut first)).await {
                    Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => self.start_tls(stream, &tls, shutdown).await,
                    Ok(Ok(0) | Err(_)) => {}
                    _ => self.start_plain(stream, shutdown).await,
                }
            }
        }
    }

    async fn start_plain(self, stream: TcpStream, shutdown: watch::Receiver<bool>) {
        let (reader, writer) = rt::split(stream);
        self.serve(reader, writer, Vec::new(), shutdown).await
    }

    #[cfg(not(madsim))]
    async fn start_tls(self, stream: TcpStream, tls: &TlsServer, shutdown: watch::Receiver<bool>) {
        let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::info!(remote = %self.remote, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(remote = %self.remote, "TLS handshake timed out");
                return;
            }
        };
        let identities = match tls.identities(stream.get_ref().1) {
            Ok(identities) => identities,
            Err(error) => {
                tracing::warn!(remote = %self.remote, %error, "closing a TLS client: its certificate gives no identity");
                return;
            }
        };
        let (reader, writer) = tokio::io::split(stream);
        self.serve(reader, writer, identities, shutdown).await
    }

    async fn serve(
        self,
        mut reader: impl AsyncRead + Unpin + Send,
        socket: impl AsyncWrite + Unpin + Send,
        identities: Vec<Id>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut buffer: Vec<u8> = Vec::with_capacity(CLIENT_READ_BYTES);
        // The first four bytes tell a four-letter word from a frame length.
        while buffer.len() < 4 {
            let read = tokio::select! {
                _ = shutdown_signalled(&mut shutdown) => return,
                read = reader.read_buf(&mut buffer) => read,
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        if let Some(word) = four_letter::parse(&buffer[..4]) {
            self.four_letter_word(socket, word).await;
            return;
        }

        let shared = Arc::new(ConnectionShared::default());
        let (writer, mut outgoing) = mpsc::channel::<Vec<u8>>(CLIENT_QUEUE_FRAMES_MAX);
        let handle = ConnectionHandle { writer, shared: shared.clone(), remote: self.remote, received: 0, sent: 0 };
        let connected = Input::ClientConnected { connection: self.connection, handle, identities };
        if self.inputs.send(connected).await.is_err() {
            return;
        }
        tracing::debug!(remote = %self.remote, connection = self.connection, "client connected");
        let read = async {
            let mut frames_sent: u64 = 0;
            loop {
                // Hand over every complete frame, a batch at a time, pausing while the node
                // or the writer has too much of this connection's work. Frames before a bad
                // one are still handed over.
                let mut consumed = 0;
                let mut bad_frame = None;
                while bad_frame.is_none() {
                    let start = consumed;
                    let mut count = 0;
                    while count < CLIENT_FRAMES_PER_INPUT {
                        match proto::split_frame(&buffer[consumed..], self.frame_bytes_max) {
                            Ok(Some((_, used))) => {
                                consumed += used;
                                count += 1;
                            }
                            Ok(None) => break,
                            Err(error) => {
                                bad_frame = Some(format!("bad frame: {error}"));
                                break;
                            }
                        }
                    }
                    if count == 0 {
                        break;
                    }
                    let frames = buffer[start..consumed].to_vec();
                    if self
                        .inputs
                        .send(Input::ClientFrames { connection: self.connection, frames, count })
                        .await
                        .is_err()
                    {
                        return String::from("server stopping");
                    }
                    frames_sent += count as u64;
                    wait_for_room(&shared, frames_sent).await;
                }
                if let Some(problem) = bad_frame {
                    return problem;
                }
                // One move per read, not one per frame.
                buffer.drain(..consumed);
                buffer.reserve(CLIENT_READ_BYTES.saturating_sub(buffer.capacity() - buffer.len()));
                match reader.read_buf(&mut buffer).await {
                    Ok(0) => return String::from("closed by the client"),
                    Ok(_) => {}
                    Err(error) => return error.to_string(),
                }
            }
        };
        let write = async {
            let mut writer = BufWriter::new(socket);
            while let Some(frame) = outgoing.recv().await {
                let mut frame = frame;
                loop {
                    shared.queued.fetch_sub(1, Ordering::Relaxed);
                    if let Err(error) = writer.write_all(&frame).await {
                        return error.to_string();
                    }
                    match outgoing.try_recv() {
                        Ok(next) => frame = next,
                        Err(_) => break,
                    }
                }
                if let Err(error) = writer.flush().await {
                    return error.to_string();
                }
                shared.resume.notify_one();
            }
            let _ = writer.shutdown().await;
            String::from("closed by the server")
        };
        let reason = tokio::select! {
            reason = read => reason,
            reason = write => reason,
            _ = shutdown_signalled(&mut shutdown) => String::from("server stopping"),
        };
        if reason.starts_with("bad frame") {
            tracing::warn!(remote = %self.remote, reason, "closing a client connection");
        } else {
            tracing::debug!(remote = %self.remote, connection = self.connection, reason, "client disconnected");
        }
        let _ = self.inputs.send(Input::ClientDisconnected { connection: self.connection }).await;
    }

    async fn four_letter_word(&self, mut stream: impl AsyncWrite + Unpin, word: &'static str) {
        let answer = if !self.config.four_letter_words.contains(word) {
            four_letter::refusal(word)
        } else {
            tracing::info!(remote = %self.remote, word, "four-letter word");
            let (reply, answer) = oneshot::channel();
            if self.inputs.send(Input::FourLetterWord { word, reply }).await.is_err() {
                return;
            }
            answer.await.unwrap_or_default()
        };
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.flush().await;
        let _ = stream.shutdown().await;
    }
}

/// Waits while a connection has too many requests in the node or replies unwritten.
async fn wait_for_room(shared: &ConnectionShared, frames_sent: u64) {
    loop {
        let resumed = shared.resume.notified();
        let in_node = frames_sent.saturating_sub(shared.handled.load(Ordering::Relaxed)) as usize
            + shared.pending.load(Ordering::Relaxed);
        let queued = shared.queued.load(Ordering::Relaxed);
        if in_node < CLIENT_REQUESTS_IN_FLIGHT_PAUSE && queued < CLIENT_QUEUED_FRAMES_PAUSE {
            return;
        }
        resumed.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_per_ip_are_limited_and_given_back() {
        let counts = ConnectionsPerIp::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let first = counts.take(ip, 2).unwrap();
        let _second = counts.take(ip, 2).unwrap();
        assert!(counts.take(ip, 2).is_none(), "the third from one address is refused");
        assert!(counts.take(other, 2).is_some(), "other addresses have their own count");
        drop(first);
        assert!(counts.take(ip, 2).is_some(), "a closed connection gives its slot back");
        let unlimited: Vec<IpSlot> = (0..100).filter_map(|_| counts.take(other, 0)).collect();
        assert_eq!(unlimited.len(), 100, "0 is no limit");
    }

    #[tokio::test]
    async fn a_paused_reader_resumes_when_the_node_catches_up() {
        let shared = Arc::new(ConnectionShared::default());
        shared.pending.store(CLIENT_REQUESTS_IN_FLIGHT_PAUSE, Ordering::Relaxed);
        let waiter = tokio::spawn({
            let shared = shared.clone();
            async move { wait_for_room(&shared, 0).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "paused while the node holds too many requests");
        shared.pending.store(0, Ordering::Relaxed);
        shared.resume.notify_one();
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        // Frames sent but not yet handled count too.
        let paused = tokio::time::timeout(
            Duration::from_millis(20),
            wait_for_room(&shared, CLIENT_REQUESTS_IN_FLIGHT_PAUSE as u64),
        )
        .await;
        assert!(paused.is_err());
    }
}
