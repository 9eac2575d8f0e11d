//! Quorum networking: one TCP connection per pair of servers, carrying zkd's peer messages
//! (elections included).
//!
//! ZooKeeper uses two ports per server, one for Fast Leader Election and one for the
//! quorum; zkd's core sends election notifications as ordinary peer messages, so zkd uses
//! only the quorum port of each `server.N` line (the election port is accepted and unused).
//!
//! The server with the higher id dials the one with the lower id, so each pair has one
//! connection; the dialer reconnects with capped exponential backoff. The first frame on a
//! connection is a hello naming the dialer. Every frame is a u32 big-endian length and
//! then the bytes of [`message::encode`]; a frame over [`codec::DECODE_BYTES_MAX`] or one
//! that does not decode drops the link, and the node recovers as from any broken link.
//!
//! Each link reports itself up to the node task with a sender for its outgoing frames, and
//! down when it breaks; link ids tell an old link's late report from the current one's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use zk_core::codec;
use zk_core::ondisk::SnapshotPayload;
use zk_core::zab::message::{self, PeerMessage, SyncMode};
use zk_core::zab::ServerId;

use crate::input::Input;
use crate::shutdown::shutdown_signalled;

/// The hello's first bytes.
const HELLO_MAGIC: [u8; 4] = *b"ZKDH";
/// The hello's format version.
const HELLO_VERSION: u16 = 1;
/// Magic, version and the dialer's server id.
const HELLO_BYTES: usize = 4 + 2 + 8;
/// How long an accepted connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait after a failed attempt; it doubles up to the maximum.
pub const BACKOFF_MS_MIN: u64 = 50;
pub const BACKOFF_MS_MAX: u64 = 2_000;
/// Frames waiting to go out on one link. Beyond this the link is hopelessly behind, and
/// the node task drops it rather than buffer without bound.
pub const LINK_QUEUE_FRAMES_MAX: usize = 16_384;

/// Read and write buffers of a quorum link. A leader sends its proposals in bursts (a
/// group of 1 KiB setData is ~100 KiB) and a follower acks them in bursts: buffers this
/// size take a burst in a few system calls instead of two per frame (reading) or one per
/// 8 KiB (tokio's default buffer). There are only a handful of links.
const LINK_BUFFER_BYTES: usize = 64 << 10;

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

fn hello(server_id: ServerId) -> Vec<u8> {
    let mut frame = Vec::with_capacity(4 + HELLO_BYTES);
    frame.extend_from_slice(&(HELLO_BYTES as u32).to_be_bytes());
    frame.extend_from_slice(&HELLO_MAGIC);
    frame.extend_from_slice(&HELLO_VERSION.to_be_bytes());
    frame.extend_from_slice(&server_id.to_be_bytes());
    frame
}

/// The dialer's id from a hello frame's body.
fn parse_hello(body: &[u8]) -> Result<ServerId, String> {
    if body.len() != HELLO_BYTES || body[..4] != HELLO_MAGIC {
        return Err(String::from("not a zkd hello"));
    }
    let version = u16::from_be_bytes([body[4], body[5]]);
    if version != HELLO_VERSION {
        return Err(format!("hello version {version}, expected {HELLO_VERSION}"));
    }
    Ok(u64::from_be_bytes(body[6..14].try_into().expect("eight bytes")))
}

/// Reads one length-prefixed frame; `None` at a clean end of stream.
async fn read_frame(reader: &mut (impl AsyncReadExt + Unpin), bytes_max: usize) -> Result<Option<Vec<u8>>, String> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error.to_string()),
    }
    let length = frame_length(prefix, bytes_max)?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.map_err(|error| error.to_string())?;
    Ok(Some(body))
}

/// A frame's length from its prefix, refused over `bytes_max`.
fn frame_length(prefix: [u8; 4], bytes_max: usize) -> Result<usize, String> {
    let length = u32::from_be_bytes(prefix) as usize;
    if length > bytes_max {
        return Err(format!("a frame of {length} bytes is over the limit of {bytes_max}"));
    }
    Ok(length)
}

/// Reads one peer message (`None` at a clean end). A frame already whole in the reader's
/// buffer is decoded where it lies; one that is not is read into a buffer of its own.
async fn read_message(reader: &mut (impl AsyncBufRead + Unpin)) -> Result<Option<PeerMessage>, String> {
    let bytes_max = codec::DECODE_BYTES_MAX;
    let buffered = reader.fill_buf().await.map_err(|error| error.to_string())?;
    if buffered.is_empty() {
        return Ok(None);
    }
    if let Some(prefix) = buffered.first_chunk::<4>() {
        let length = frame_length(*prefix, bytes_max)?;
        if let Some(body) = buffered.get(4..4 + length) {
            let message = message::decode(body).map_err(|error| error.to_string());
            reader.consume(4 + length);
            return message.map(Some);
        }
    }
    match read_frame(reader, bytes_max).await? {
        Some(frame) => message::decode(&frame).map(Some).map_err(|error| error.to_string()),
        None => Err(String::from("closed inside a frame")),
    }
}

/// Appends `message` to `out` as one frame: its length, then [`message::encode`]'s bytes.
fn append_frame(out: &mut Vec<u8>, message: &PeerMessage) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let length = message::encode_append(message, out) as u32;
    out[start..start + 4].copy_from_slice(&length.to_be_bytes());
}

/// Accepts connections from servers with higher ids.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    my_id: ServerId,
    known: Vec<ServerId>,
    inputs: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => return,
            accepted = listener.accept() => accepted,
        };
        let (mut stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "quorum accept failed");
                tokio::time::sleep(Duration::from_millis(BACKOFF_MS_MIN)).await;
                continue;
            }
        };
        let (inputs, known, shutdown) = (inputs.clone(), known.clone(), shutdown.clone());
        tokio::spawn(async move {
            let hello = tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut stream, HELLO_BYTES)).await;
            let peer = match hello {
                Ok(Ok(Some(body))) => parse_hello(&body),
                Ok(Ok(None)) => Err(String::from("closed before its hello")),
                Ok(Err(problem)) => Err(problem),
                Err(_) => Err(String::from("no hello in time")),
            };
            match peer {
                Ok(peer) if peer > my_id && known.contains(&peer) => {
                    run_link(stream, peer, remote, inputs, shutdown).await;
                }
                Ok(peer) => tracing::warn!(%remote, peer, "refusing a quorum connection from an unexpected server"),
                Err(problem) => tracing::warn!(%remote, problem, "refusing a quorum connection"),
            }
        });
    }
}

/// Keeps a connection to a server with a lower id, reconnecting with backoff.
pub(crate) async fn dial_loop(
    my_id: ServerId,
    peer: ServerId,
    address: SocketAddr,
    inputs: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) {
    debug_assert!(peer < my_id, "the higher id dials");
    let mut backoff_ms = BACKOFF_MS_MIN;
    loop {
        let attempt = async {
            let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
                .await
                .map_err(|_| String::from("connect timed out"))?
                .map_err(|error| error.to_string())?;
            stream.write_all(&hello(my_id)).await.map_err(|error| error.to_string())?;
            stream.flush().await.map_err(|error| error.to_string())?;
            Ok::<TcpStream, String>(stream)
        };
        let attempt = tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => return,
            attempt = attempt => attempt,
        };
        match attempt {
            Ok(stream) => {
                let started = tokio::time::Instant::now();
                run_link(stream, peer, address, inputs.clone(), shutdown.clone()).await;
                // A link that lived a while resets the backoff; one that broke at once
                // (the peer refused it) keeps backing off.
                if started.elapsed() > Duration::from_millis(BACKOFF_MS_MAX) {
                    backoff_ms = BACKOFF_MS_MIN;
                }
            }
            Err(problem) => tracing::debug!(peer, %address, problem, "cannot reach peer"),
        }
        tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => return,
            _ = tokio::time::sleep(Duration::from_millis(backoff_ms)) => {}
        }
        backoff_ms = (backoff_ms * 2).min(BACKOFF_MS_MAX);
    }
}

/// Whether a message is a SNAP carrying a snapshot image: a whole tree, ~1 s to encode for
/// a million znodes, so it is encoded off the runtime's threads, which meanwhile serve
/// clients.
fn is_whole_tree(message: &PeerMessage) -> bool {
    matches!(message, PeerMessage::Sync { mode: SyncMode::Snap { snapshot: SnapshotPayload::Image(_), .. }, .. })
}

/// The bytes of a SNAP that carries an image of the whole tree, encoded on a blocking
/// thread so the runtime keeps serving meanwhile.
async fn encode_whole_tree(message: PeerMessage) -> Vec<u8> {
    match crate::rt::blocking(move || message::encode(&message)).await {
        Ok(bytes) => bytes,
        // The encoding panicked: a bug, reported as the panic it was.
        Err(panic) => panic!("encoding a SNAP failed: {panic}"),
    }
}

/// Writes out and empties `out`. The flush is a no-op on a real socket; madsim's stream
/// sends what it holds only then.
async fn write_out(writer: &mut (impl AsyncWrite + Unpin), out: &mut Vec<u8>) -> Result<(), String> {
    if out.is_empty() {
        return Ok(());
    }
    let written = writer.write_all(out).await;
    out.clear();
    written.map_err(|error| error.to_string())?;
    writer.flush().await.map_err(|error| error.to_string())
}

/// Runs one established link until it breaks, the node drops it, or shutdown.
async fn run_link(
    stream: TcpStream,
    peer: ServerId,
    remote: SocketAddr,
    inputs: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let link = NEXT_LINK.fetch_add(1, Ordering::Relaxed);
    let (sender, mut outgoing) = mpsc::channel::<PeerMessage>(LINK_QUEUE_FRAMES_MAX);
    if inputs.send(Input::PeerUp { peer, link, sender }).await.is_err() {
        return;
    }
    tracing::info!(peer, %remote, link, "quorum link up");
    let (reader, writer) = crate::rt::split(stream);
    let mut reader = BufReader::with_capacity(LINK_BUFFER_BYTES, reader);
    let read = async {
        loop {
            let message = match read_message(&mut reader).await {
                Ok(Some(message)) => message,
                Ok(None) => return String::from("closed by the peer"),
                Err(problem) => return problem,
            };
            if inputs.send(Input::PeerMessage { peer, link, message }).await.is_err() {
                return String::from("server stopping");
            }
        }
    };
    let write = async {
        let mut writer = writer;
        // Frames are encoded straight into one buffer, written out when the queue is empty
        // or the buffer is full; a SNAP of a whole tree is encoded off the runtime.
        let mut out: Vec<u8> = Vec::with_capacity(LINK_BUFFER_BYTES);
        while let Some(message) = outgoing.recv().await {
            let mut next = Some(message);
            while let Some(message) = next.take() {
                if is_whole_tree(&message) {
                    let mut frame = encode_whole_tree(message).await;
                    out.extend_from_slice(&(frame.len() as u32).to_be_bytes());
                    if let Err(error) = write_out(&mut writer, &mut out).await {
                        return error;
                    }
                    if let Err(error) = write_out(&mut writer, &mut frame).await {
                        return error;
                    }
                } else {
                    append_frame(&mut out, &message);
                }
                if out.len() >= LINK_BUFFER_BYTES {
                    if let Err(error) = write_out(&mut writer, &mut out).await {
                        return error;
                    }
                }
                next = outgoing.try_recv().ok();
            }
            if let Err(error) = write_out(&mut writer, &mut out).await {
                return error;
            }
            if out.capacity() > 4 * LINK_BUFFER_BYTES {
                out = Vec::with_capacity(LINK_BUFFER_BYTES);
            }
        }
        let _ = writer.shutdown().await;
        String::from("dropped by the node")
    };
    let reason = tokio::select! {
        reason = read => reason,
        reason = write => reason,
        _ = shutdown_signalled(&mut shutdown) => String::from("server stopping"),
    };
    tracing::info!(peer, %remote, link, reason, "quorum link down");
    let _ = inputs.send(Input::PeerDown { peer, link }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_refuses_strangers() {
        let frame = hello(7);
        assert_eq!(&frame[..4], &(HELLO_BYTES as u32).to_be_bytes());
        assert_eq!(parse_hello(&frame[4..]), Ok(7));
        let mut wrong = frame[4..].to_vec();
        wrong[4] = 9;
        assert!(parse_hello(&wrong).unwrap_err().contains("version"));
        assert!(parse_hello(b"GET / HTTP/1.1").is_err());
    }

    #[tokio::test]
    async fn a_snap_of_an_image_encodes_off_the_runtime_to_the_same_bytes() {
        let mut database = zk_core::database::Database::default();
        let header = zk_core::txn::TxnHeader { session_id: 1, cxid: 1, zxid: 1, time_ms: 5 };
        let create = zk_core::txn::Txn::Create {
            op: zk_core::proto::OpCode::Create,
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: zk_core::acl::open_acl_unsafe(),
            kind: zk_core::txn::CreateKind::Persistent,
            parent_cversion: 1,
        };
        database.apply(&header, &create, &|_, _| true);
        let image = zk_core::ondisk::SnapshotImage::of(&database);
        let snap = |snapshot| PeerMessage::Sync {
            mode: SyncMode::Snap { zxid: 1, snapshot },
            entries: vec![],
            committed_zxid: 1,
        };
        let expected = message::encode(&snap(SnapshotPayload::Bytes(image.encode())));
        assert_eq!(encode_whole_tree(snap(SnapshotPayload::Image(image))).await, expected);
    }

    fn some_messages() -> Vec<PeerMessage> {
        let entry = |zxid: i64| zk_core::txn::LogEntry {
            prev_zxid: zxid - 1,
            header: zk_core::txn::TxnHeader { session_id: 1, cxid: 1, zxid, time_ms: 5 },
            txn: zk_core::txn::Txn::SetData { path: "/a".into(), data: Some(vec![zxid as u8; 300]), version: 0 },
        };
        vec![
            PeerMessage::Proposal(std::sync::Arc::new(entry(1))),
            PeerMessage::Commit { zxid: 1 },
            PeerMessage::Ping { epoch: 1, round: 2, touched_sessions: vec![(8, 4000)] },
            PeerMessage::Proposal(std::sync::Arc::new(entry(2))),
            PeerMessage::UpToDate,
        ]
    }

    /// Frames appended to one buffer read back in order, whether the reader's buffer holds
    /// them whole (decoded where they lie) or cuts them (read into a buffer of their own).
    #[tokio::test]
    async fn appended_frames_read_back_whole_or_cut() {
        let messages = some_messages();
        let mut out = Vec::new();
        for message in &messages {
            append_frame(&mut out, message);
            let frame = message::encode(message);
            assert_eq!(out[out.len() - frame.len() - 4..out.len() - frame.len()], (frame.len() as u32).to_be_bytes());
        }
        for capacity in [64 << 10, 3, 7, 100, 333] {
            let mut reader = BufReader::with_capacity(capacity, &out[..]);
            for message in &messages {
                assert_eq!(read_message(&mut reader).await.as_ref(), Ok(&Some(message.clone())), "capacity {capacity}");
            }
            assert_eq!(read_message(&mut reader).await, Ok(None), "a clean end");
        }
        // Cut inside the last frame: an error, not a clean end.
        for capacity in [64 << 10, 7] {
            let mut reader = BufReader::with_capacity(capacity, &out[..out.len() - 1]);
            for _ in 0..messages.len() - 1 {
                read_message(&mut reader).await.unwrap();
            }
            assert!(read_message(&mut reader).await.is_err(), "capacity {capacity}");
        }
    }

    #[tokio::test]
    async fn a_message_over_the_limit_or_undecodable_is_refused() {
        let mut huge = ((codec::DECODE_BYTES_MAX + 1) as u32).to_be_bytes().to_vec();
        huge.extend_from_slice(&[0; 16]);
        let mut reader = BufReader::new(&huge[..]);
        assert!(read_message(&mut reader).await.unwrap_err().contains("over the limit"));
        let garbage = [0, 0, 0, 3, 0xff, 0xff, 0xff];
        let mut reader = BufReader::new(&garbage[..]);
        assert!(read_message(&mut reader).await.is_err());
    }

    #[tokio::test]
    async fn frames_over_the_limit_are_refused() {
        let mut bytes: &[u8] = &[0, 0, 0, 9, 1, 2];
        assert!(read_frame(&mut bytes, 8).await.unwrap_err().contains("over the limit"));
        let mut bytes: &[u8] = &[0, 0, 0, 2, 1, 2];
        assert_eq!(read_frame(&mut bytes, 8).await, Ok(Some(vec![1, 2])));
        let mut empty: &[u8] = &[];
        assert_eq!(read_frame(&mut empty, 8).await, Ok(None));
    }
}
