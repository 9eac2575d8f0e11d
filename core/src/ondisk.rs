//! Storage formats: txn log records, snapshots and epoch files, and recovery as a pure
//! function of the bytes a driver read back from disk.
//!
//! The driver owns the files; this module only says what bytes to write and what bytes
//! read back mean, so recovery is deterministic and fuzzable (DESIGN.md, "Storage formats").
//!
//! - A log file is a sequence of framed records: the magic `ZKDL`, the payload length
//!   (u32 LE), the crc32c of the payload (u32 LE), then the payload, a [`LogEntry`] in
//!   zkd's codec. A bad record after which no valid frame follows is a torn tail (a crash
//!   mid-append, or zero-filled preallocation) and is cut; a bad record followed by a valid
//!   one is corruption in the middle and refuses to start, naming the file and offset.
//! - A snapshot is the magic `ZKDS`, a format version (u32 LE), the zxid it was taken at
//!   (i64 LE) and the crc32c (u32 LE) of the zxid's bytes and the body, then the body: the
//!   interned ACL table, every node in path order and the sessions.
//! - An epoch file (ZooKeeper's `acceptedEpoch` and `currentEpoch`) is the magic `ZKDE`,
//!   the epoch (u32 LE) and the crc32c of those eight bytes (u32 LE).
//!
//! Every record names the zxid before it (`prev_zxid`), so recovery can tell the server's
//! history from the leftover of a divergent one (a crash between installing a snapshot or
//! truncating and the log catching up): see [`recover`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::database::Database;
use crate::proto::{Acl, Data};
use crate::tree::{AclRef, DataTree, Node, NodeKind, PersistedStat, TreeImage, TreeRestorer};
use crate::txn::LogEntry;
use crate::watch::WATCHES_MAX_DEFAULT;

/// The first four bytes of every log record.
pub const LOG_RECORD_MAGIC: [u8; 4] = *b"ZKDL";
/// Magic, payload length and payload crc32c.
pub const LOG_RECORD_HEADER_BYTES: usize = 12;
/// The largest payload a log record may claim: a txn holds at most about 1 MiB of data
/// (`jute.maxbuffer`), but a multi may hold several.
pub const LOG_RECORD_BYTES_MAX: usize = 64 << 20;
/// The first four bytes of a snapshot.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"ZKDS";
/// The snapshot format this module writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Magic, version, zxid and crc32c.
pub const SNAPSHOT_HEADER_BYTES: usize = 20;
/// The first four bytes of an epoch file.
pub const EPOCH_MAGIC: [u8; 4] = *b"ZKDE";
/// The exact size of an epoch file.
pub const EPOCH_FILE_BYTES: usize = 12;

/// A log file's bytes, parsed: the valid records, and where the valid prefix ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogScan {
    pub entries: Vec<LogEntry>,
    /// Bytes up to the end of the last valid record; what follows is a tail to cut.
    pub valid_len: usize,
    /// Whether the tail holds a partly written record (not just zero padding).
    pub torn_tail: bool,
}

/// A snapshot, decoded and validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The zxid of the last txn the snapshot reflects.
    pub zxid: i64,
    pub tree: DataTree,
    pub sessions: BTreeMap<i64, i32>,
}

impl Snapshot {
    /// The database the snapshot describes, with no watches.
    pub fn into_database(self, watches_max: usize) -> Database {
        Database::from_parts(self.tree, self.sessions, self.zxid, watches_max)
    }
}

/// One log file as the driver read it.
#[derive(Clone, Copy, Debug)]
pub struct LogSegment<'a> {
    /// The file's name, for error messages.
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// Everything a server reads from disk at start-up.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecoveryInput<'a> {
    /// The newest snapshot file, if any.
    pub snapshot: Option<&'a [u8]>,
    /// The log files, oldest first.
    pub log: &'a [LogSegment<'a>],
    pub accepted_epoch: Option<&'a [u8]>,
    pub current_epoch: Option<&'a [u8]>,
}

/// What recovery found.
#[derive(Clone, Debug)]
pub struct Recovered {
    /// The snapshot loaded (or an empty `Database::default()`).
    pub database: Database,
    /// Log records after the snapshot's zxid that chain from it, in order, NOT applied.
    pub history: Vec<LogEntry>,
    /// 0 when the file is absent.
    pub accepted_epoch: u32,
    /// 0 when the file is absent.
    pub current_epoch: u32,
    /// Where the log's valid part ends when the driver must cut it: (segment index, byte
    /// offset). The driver truncates that segment there and deletes every later segment.
    /// Set for a torn tail or zero padding at the end of the log, and at the first record
    /// dropped because it does not chain.
    pub truncate: Option<(usize, usize)>,
}

/// Why stored bytes cannot be used. `file` is empty when the caller gave no name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// A log record that cannot be read although a valid record follows it, so it is not a
    /// torn tail but corruption in the middle of the log.
    LogCorrupt { file: String, offset: usize, problem: String },
    /// A log record whose zxid is not above the zxid of the record before it.
    LogZxidOrder { file: String, offset: usize, zxid: i64, previous_zxid: i64 },
    /// A snapshot whose header, checksum or contents are bad; `offset` is where in the file.
    SnapshotCorrupt { offset: usize, problem: String },
    /// An epoch file that is not exactly a valid epoch record.
    EpochCorrupt { file: String, problem: String },
    /// No snapshot can be used (each is damaged, or an older one does not lead into the
    /// log after it): why, for every snapshot tried, each naming its file
    /// ([`SnapshotFallback`]).
    NoUsableSnapshot { problems: Vec<String> },
}

impl StorageError {
    /// The same error, naming the file it came from.
    fn in_file(mut self, name: &str) -> Self {
        match &mut self {
            StorageError::LogCorrupt { file, .. }
            | StorageError::LogZxidOrder { file, .. }
            | StorageError::EpochCorrupt { file, .. } => *file = name.to_owned(),
            StorageError::SnapshotCorrupt { .. } | StorageError::NoUsableSnapshot { .. } => {}
        }
        self
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::LogCorrupt { file, offset, problem } => {
                write!(f, "log file {file:?} is corrupt at byte {offset}: {problem}")
            }
            StorageError::LogZxidOrder { file, offset, zxid, previous_zxid } => write!(
                f,
                "log file {file:?} is corrupt at byte {offset}: zxid {zxid:#x} does not follow {previous_zxid:#x}"
            ),
            StorageError::SnapshotCorrupt { offset, problem } => {
                write!(f, "snapshot is corrupt at byte {offset}: {problem}")
            }
            StorageError::EpochCorrupt { file, problem } => write!(f, "epoch file {file:?} is corrupt: {problem}"),
            StorageError::NoUsableSnapshot { problems } => {
                write!(f, "no snapshot can be used: {}", problems.join("; "))
            }
        }
    }
}

impl std::error::Error for StorageError {}

/// One framed log record.
pub fn encode_log_record(entry: &LogEntry) -> Vec<u8> {
    let mut record = Vec::new();
    append_log_record(entry, &mut record);
    record
}

/// Appends one framed log record to `out` (the payload is encoded in place); returns its
/// size in bytes.
pub fn append_log_record(entry: &LogEntry, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&LOG_RECORD_MAGIC);
    out.extend_from_slice(&[0; LOG_RECORD_HEADER_BYTES - 4]);
    codec::encode_append(entry, out);
    let payload = &out[start + LOG_RECORD_HEADER_BYTES..];
    assert!(payload.len() <= LOG_RECORD_BYTES_MAX, "a log record of {} bytes is over the limit", payload.len());
    let (length, crc) = ((payload.len() as u32).to_le_bytes(), crc32c::crc32c(payload).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&length);
    out[start + 8..start + 12].copy_from_slice(&crc);
    out.len() - start
}

/// Framed records, one after the other.
pub fn encode_log_records(entries: &[LogEntry]) -> Vec<u8> {
    entries.iter().flat_map(encode_log_record).collect()
}

/// Parses a log file. A bad record with no valid frame anywhere after it ends the valid
/// prefix (a torn tail); a bad record with a valid frame after it, or a zxid that does not
/// increase, is an error.
pub fn scan_log(bytes: &[u8]) -> Result<LogScan, StorageError> {
    let scanned = scan(bytes)?;
    Ok(LogScan {
        entries: scanned.records.into_iter().map(|record| record.entry).collect(),
        valid_len: scanned.valid_len,
        torn_tail: scanned.torn_tail,
    })
}

/// Byte offset just after the last record with zxid <= `zxid` (where to truncate so that
/// only records up to `zxid` remain); 0 when there is none.
pub fn log_truncation_offset(bytes: &[u8], zxid: i64) -> Result<usize, StorageError> {
    let scanned = scan(bytes)?;
    Ok(scanned.records.iter().take_while(|record| record.entry.zxid() <= zxid).last().map_or(0, |record| record.end))
}

/// A record and where it lies in its file.
struct ScannedRecord {
    start: usize,
    end: usize,
    entry: LogEntry,
}

struct Scanned {
    records: Vec<ScannedRecord>,
    valid_len: usize,
    torn_tail: bool,
}

fn scan(bytes: &[u8]) -> Result<Scanned, StorageError> {
    let mut records: Vec<ScannedRecord> = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let parsed = read_frame(bytes, offset).and_then(|(payload, end)| {
            codec::decode::<LogEntry>(payload).map(|entry| (entry, end)).map_err(|error| error.to_string())
        });
        match parsed {
            Ok((entry, end)) => {
                if let Some(previous) = records.last() {
                    if entry.zxid() <= previous.entry.zxid() {
                        return Err(StorageError::LogZxidOrder {
                            file: String::new(),
                            offset,
                            zxid: entry.zxid(),
                            previous_zxid: previous.entry.zxid(),
                        });
                    }
                }
                debug_assert!(end > offset, "a record moves the scan forward");
                records.push(ScannedRecord { start: offset, end, entry });
                offset = end;
            }
            Err(problem) => {
                // The usual end of a segment: preallocated zeros, tens of megabytes of them.
                if all_zero(&bytes[offset..]) {
                    return Ok(Scanned { records, valid_len: offset, torn_tail: false });
                }
                if let Some(next) = next_valid_frame(bytes, offset + 1) {
                    let problem = format!("{problem}, yet a valid record follows at byte {next}");
                    return Err(StorageError::LogCorrupt { file: String::new(), offset, problem });
                }
                return Ok(Scanned { records, valid_len: offset, torn_tail: true });
            }
        }
    }
    Ok(Scanned { records, valid_len: bytes.len(), torn_tail: false })
}

/// The payload of the record frame at `offset` and the offset just after it, or why there
/// is no valid frame there. Checks the magic, the length (against the limit and the bytes
/// that remain, before touching the payload) and the checksum; not the payload's contents.
fn read_frame(bytes: &[u8], offset: usize) -> Result<(&[u8], usize), String> {
    let rest = bytes.get(offset..).unwrap_or_default();
    let (Some(magic), Some(length), Some(crc)) = (rest.get(..4), le_u32(rest, 4), le_u32(rest, 8)) else {
        return Err(format!("{} bytes are too few for a record header", rest.len()));
    };
    if magic != LOG_RECORD_MAGIC {
        return Err(format!("bad record magic {magic:02x?}"));
    }
    let length = length as usize;
    if length == 0 || length > LOG_RECORD_BYTES_MAX {
        return Err(format!("record length {length} is outside 1..={LOG_RECORD_BYTES_MAX}"));
    }
    let remaining = rest.len() - LOG_RECORD_HEADER_BYTES;
    if length > remaining {
        return Err(format!("record length {length} runs past the end of the file ({remaining} bytes remain)"));
    }
    let payload = &rest[LOG_RECORD_HEADER_BYTES..LOG_RECORD_HEADER_BYTES + length];
    let actual = crc32c::crc32c(payload);
    if actual != crc {
        return Err(format!("record checksum {actual:#010x} does not match the stored {crc:#010x}"));
    }
    Ok((payload, offset + LOG_RECORD_HEADER_BYTES + length))
}

/// The offset of the first valid record frame at or after `from`, if any.
fn next_valid_frame(bytes: &[u8], from: usize) -> Option<usize> {
    // A preallocated segment ends in megabytes of zeros: look for the magic's first byte
    // (a simple, fast scan) before comparing whole windows.
    let mut at = from;
    loop {
        at += bytes.get(at..)?.iter().position(|&byte| byte == LOG_RECORD_MAGIC[0])?;
        if bytes[at..].starts_with(&LOG_RECORD_MAGIC) && read_frame(bytes, at).is_ok() {
            return Some(at);
        }
        at += 1;
    }
}

/// Whether every byte is zero; a block at a time, which the compiler vectorizes (a byte
/// loop that stops at the first non-zero byte is not).
fn all_zero(bytes: &[u8]) -> bool {
    bytes.chunks(4096).all(|block| block.iter().fold(0, |any, &byte| any | byte) == 0)
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

/// The body of a snapshot as written: borrowed from the tree so a large tree is not copied.
#[derive(Serialize)]
struct SnapshotBodyRef<'a> {
    acls: &'a [(AclRef, Vec<Acl>)],
    acl_ref_next: AclRef,
    nodes: SnapshotNodes<'a>,
    sessions: &'a [(i64, i32)],
}

/// The image's nodes, serialized one by one as the tree is walked: a snapshot of millions
/// of znodes needs no list of them, nor a string per path.
struct SnapshotNodes<'a>(&'a TreeImage);

impl Serialize for SnapshotNodes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut nodes = serializer.serialize_seq(Some(self.0.node_count()))?;
        let mut written = Ok(());
        self.0.for_each(|path, node| {
            if written.is_ok() {
                let node = SnapshotNodeRef { path, data: &node.data, acl: node.acl, stat: node.stat, kind: node.kind };
                written = nodes.serialize_element(&node);
            }
        });
        written?;
        nodes.end()
    }
}

#[derive(Serialize)]
struct SnapshotNodeRef<'a> {
    path: &'a str,
    #[serde(with = "serde_bytes")]
    data: &'a Data,
    acl: AclRef,
    stat: PersistedStat,
    kind: NodeKind,
}

/// The body of a snapshot as read: the fields of [`SnapshotBodyRef`] in the same order,
/// decoded by a visitor that feeds each node to a [`TreeRestorer`] as it is read (a list
/// of a million decoded nodes first would cost a copy of the tree and its page faults).
struct SnapshotBodySeed;

/// A decoded body: the rebuilt tree and the sessions.
struct SnapshotBody {
    tree: DataTree,
    sessions: Vec<(i64, i32)>,
}

const SNAPSHOT_BODY_FIELDS: [&str; 4] = ["acls", "acl_ref_next", "nodes", "sessions"];

impl<'de> DeserializeSeed<'de> for SnapshotBodySeed {
    type Value = SnapshotBody;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<SnapshotBody, D::Error> {
        deserializer.deserialize_struct("SnapshotBody", &SNAPSHOT_BODY_FIELDS, self)
    }
}

impl<'de> Visitor<'de> for SnapshotBodySeed {
    type Value = SnapshotBody;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a snapshot body")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SnapshotBody, A::Error> {
        let missing = |field: &str| A::Error::custom(format!("the snapshot body ends before its {field}"));
        let acls: Vec<(AclRef, Vec<Acl>)> = seq.next_element()?.ok_or_else(|| missing("ACL table"))?;
        let acl_ref_next: AclRef = seq.next_element()?.ok_or_else(|| missing("next ACL ref"))?;
        let restorer = TreeRestorer::new(acls, acl_ref_next).map_err(bad_tree)?;
        let restorer = seq.next_element_seed(SnapshotNodesSeed(restorer))?.ok_or_else(|| missing("nodes"))?;
        let sessions: Vec<(i64, i32)> = seq.next_element()?.ok_or_else(|| missing("sessions"))?;
        let tree = restorer.finish().map_err(bad_tree)?;
        Ok(SnapshotBody { tree, sessions })
    }
}

/// A snapshot's tree that a live server could not hold, as a decoding error.
fn bad_tree<E: serde::de::Error>(problem: String) -> E {
    E::custom(format!("bad tree: {problem}"))
}

/// The nodes of a snapshot body, each added to the tree as soon as it is decoded.
struct SnapshotNodesSeed(TreeRestorer);

impl<'de> DeserializeSeed<'de> for SnapshotNodesSeed {
    type Value = TreeRestorer;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<TreeRestorer, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SnapshotNodesSeed {
    type Value = TreeRestorer;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("the snapshot's nodes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TreeRestorer, A::Error> {
        let mut restorer = self.0;
        while let Some(node) = seq.next_element::<SnapshotNode>()? {
            let restored = Node { data: node.data, acl: node.acl, stat: node.stat, kind: node.kind, num_children: 0 };
            restorer.add(node.path, restored).map_err(bad_tree)?;
        }
        Ok(restorer)
    }
}

#[derive(Deserialize)]
struct SnapshotNode {
    path: String,
    #[serde(with = "serde_bytes")]
    data: Data,
    acl: AclRef,
    stat: PersistedStat,
    kind: NodeKind,
}

/// A database frozen at its last processed zxid, ready to become a snapshot: taking one
/// costs O(1) in the number of znodes (the tree's node map is persistent and shared) plus a
/// copy of the session table, so the node hands it to its driver without stopping writes,
/// and the driver encodes it ([`SnapshotImage::encode`]) on another thread.
#[derive(Clone, PartialEq, Eq)]
pub struct SnapshotImage {
    zxid: i64,
    tree: TreeImage,
    sessions: Vec<(i64, i32)>,
}

impl SnapshotImage {
    pub fn of(database: &Database) -> SnapshotImage {
        SnapshotImage {
            zxid: database.last_processed_zxid(),
            tree: database.tree.image(),
            sessions: database.sessions().iter().map(|(&id, &timeout)| (id, timeout)).collect(),
        }
    }

    /// The last txn the image holds.
    pub fn zxid(&self) -> i64 {
        self.zxid
    }

    pub fn node_count(&self) -> usize {
        self.tree.node_count()
    }

    /// The snapshot's bytes. Deterministic: the same state gives the same bytes (nodes in
    /// path order, ACLs by ref, sessions by id).
    pub fn encode(&self) -> Vec<u8> {
        let (acls, acl_ref_next) = self.tree.acl_table();
        let nodes = SnapshotNodes(&self.tree);
        let body = codec::encode(&SnapshotBodyRef { acls, acl_ref_next, nodes, sessions: &self.sessions });
        frame_snapshot(self.zxid, &body)
    }
}

/// A summary: an image holds the whole tree.
impl fmt::Debug for SnapshotImage {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "SnapshotImage(zxid {:#x}, {:?}, {} sessions)", self.zxid, self.tree, self.sessions.len())
    }
}

/// A snapshot on its way to a learner (a SNAP sync). The leader puts in an image, which is
/// encoded only when the message is, by the driver's link rather than the node; the
/// learner receives bytes. Both travel as the same bytes on the wire.
#[derive(Clone, PartialEq, Eq)]
pub enum SnapshotPayload {
    Image(SnapshotImage),
    Bytes(Vec<u8>),
}

impl SnapshotPayload {
    /// The encoded snapshot.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            SnapshotPayload::Image(image) => image.encode(),
            SnapshotPayload::Bytes(bytes) => bytes,
        }
    }
}

impl fmt::Debug for SnapshotPayload {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotPayload::Image(image) => image.fmt(formatter),
            SnapshotPayload::Bytes(bytes) => write!(formatter, "{} bytes", bytes.len()),
        }
    }
}

impl Serialize for SnapshotPayload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SnapshotPayload::Image(image) => serializer.serialize_bytes(&image.encode()),
            SnapshotPayload::Bytes(bytes) => serializer.serialize_bytes(bytes),
        }
    }
}

impl<'de> Deserialize<'de> for SnapshotPayload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> serde::de::Visitor<'de> for BytesVisitor {
            type Value = SnapshotPayload;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an encoded snapshot")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
                Ok(SnapshotPayload::Bytes(bytes.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Self::Value, E> {
                Ok(SnapshotPayload::Bytes(bytes))
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

/// The snapshot of the database at its last processed zxid, encoded now (see
/// [`SnapshotImage`] to encode it elsewhere).
pub fn encode_snapshot(database: &Database) -> Vec<u8> {
    SnapshotImage::of(database).encode()
}

fn frame_snapshot(zxid: i64, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + body.len());
    bytes.extend_from_slice(&SNAPSHOT_MAGIC);
    bytes.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&zxid.to_le_bytes());
    bytes.extend_from_slice(&crc32c::crc32c_append(crc32c::crc32c(&zxid.to_le_bytes()), body).to_le_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// Decodes and validates a snapshot: header, checksum, then a tree rebuilt with all its
/// indexes, which must be one a live server could hold.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, StorageError> {
    let corrupt = |offset: usize, problem: String| StorageError::SnapshotCorrupt { offset, problem };
    let (Some(header), Some(body)) = (bytes.get(..SNAPSHOT_HEADER_BYTES), bytes.get(SNAPSHOT_HEADER_BYTES..)) else {
        return Err(corrupt(0, format!("{} bytes are too few for a snapshot header", bytes.len())));
    };
    if header[..4] != SNAPSHOT_MAGIC {
        return Err(corrupt(0, format!("bad snapshot magic {:02x?}", &header[..4])));
    }
    let version = le_u32(header, 4).unwrap_or_default();
    if version != SNAPSHOT_VERSION {
        return Err(corrupt(4, format!("format version {version}, expected {SNAPSHOT_VERSION}")));
    }
    let zxid_bytes = &header[8..16];
    let zxid = i64::from_le_bytes(zxid_bytes.try_into().unwrap_or_default());
    let stored = le_u32(header, 16).unwrap_or_default();
    let actual = crc32c::crc32c_append(crc32c::crc32c(zxid_bytes), body);
    if actual != stored {
        return Err(corrupt(16, format!("checksum {actual:#010x} does not match the stored {stored:#010x}")));
    }
    let body = codec::decode_seed(SnapshotBodySeed, body).map_err(|error| corrupt(SNAPSHOT_HEADER_BYTES, error.0))?;
    if let Some(pair) = body.sessions.windows(2).find(|pair| pair[0].0 >= pair[1].0) {
        return Err(corrupt(SNAPSHOT_HEADER_BYTES, format!("session {:#x} is out of order", pair[1].0)));
    }
    let tree = body.tree;
    Ok(Snapshot { zxid, tree, sessions: body.sessions.into_iter().collect() })
}

/// An epoch file's bytes.
pub fn encode_epoch(epoch: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(EPOCH_FILE_BYTES);
    bytes.extend_from_slice(&EPOCH_MAGIC);
    bytes.extend_from_slice(&epoch.to_le_bytes());
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// Reads an epoch file; anything but exactly one valid record is an error.
pub fn decode_epoch(bytes: &[u8]) -> Result<u32, StorageError> {
    let corrupt = |problem: String| StorageError::EpochCorrupt { file: String::new(), problem };
    if bytes.len() != EPOCH_FILE_BYTES {
        return Err(corrupt(format!("{} bytes, expected {EPOCH_FILE_BYTES}", bytes.len())));
    }
    if bytes[..4] != EPOCH_MAGIC {
        return Err(corrupt(format!("bad magic {:02x?}", &bytes[..4])));
    }
    let stored = le_u32(bytes, 8).unwrap_or_default();
    let actual = crc32c::crc32c(&bytes[..8]);
    if actual != stored {
        return Err(corrupt(format!("checksum {actual:#010x} does not match the stored {stored:#010x}")));
    }
    Ok(le_u32(bytes, 4).unwrap_or_default())
}

/// Rebuilds a server's durable state from its files.
///
/// The snapshot is loaded (an error if it is bad: [`SnapshotFallback`] then tries an older one)
/// and every log segment scanned (an error on corruption in the middle of any segment, or
/// on a torn record in a segment that later segments continue). The history is then the
/// records after the snapshot's zxid that chain from it: the first must name the
/// snapshot's zxid (0 without a snapshot) as its `prev_zxid`, each next one the zxid before
/// it. Records at or below the snapshot's zxid before the history starts are old log and
/// skipped. The first record that does not chain ends the history: it and everything after
/// it is a leftover of a divergent history, and `truncate` points at it.
pub fn recover(input: &RecoveryInput<'_>) -> Result<Recovered, StorageError> {
    let database = decode_snapshot_database(input.snapshot);
    recover_scanned(input, database, scan_log_segments(input.log))
}

/// The database a snapshot file holds (an empty one without a snapshot): the first half of
/// [`recover`], which a driver may run while another thread runs [`scan_log_segments`].
pub fn decode_snapshot_database(snapshot: Option<&[u8]>) -> Result<Database, StorageError> {
    match snapshot {
        Some(bytes) => Ok(decode_snapshot(bytes)?.into_database(WATCHES_MAX_DEFAULT)),
        None => Ok(Database::default()),
    }
}

/// Log segments checked and decoded, record by record: the other half of [`recover`].
pub struct ScannedLog(Vec<Scanned>);

/// Scans every segment (oldest first, as in [`RecoveryInput::log`]): the frames, their
/// checksums, the zxid order within each segment, and what ends it (zeros or a torn record).
pub fn scan_log_segments(log: &[LogSegment<'_>]) -> Result<ScannedLog, StorageError> {
    log.iter()
        .map(|segment| scan(segment.bytes).map_err(|error| error.in_file(segment.name)))
        .collect::<Result<Vec<_>, _>>()
        .map(ScannedLog)
}

/// [`recover`] from its two halves, computed apart: `database` from `input.snapshot` by
/// [`decode_snapshot_database`] and `scanned` from `input.log` by [`scan_log_segments`]
/// (`input.snapshot` itself is not read again). Errors come in the same order as
/// [`recover`]'s: the epoch files, the snapshot, then the log.
pub fn recover_scanned(
    input: &RecoveryInput<'_>,
    database: Result<Database, StorageError>,
    scanned: Result<ScannedLog, StorageError>,
) -> Result<Recovered, StorageError> {
    let read_epoch = |bytes: Option<&[u8]>, name: &str| {
        bytes.map_or(Ok(0), |bytes| decode_epoch(bytes).map_err(|error| error.in_file(name)))
    };
    let accepted_epoch = read_epoch(input.accepted_epoch, "acceptedEpoch")?;
    let current_epoch = read_epoch(input.current_epoch, "currentEpoch")?;
    let database = database?;
    let snapshot_zxid = database.last_processed_zxid();
    let ScannedLog(scans) = scanned?;
    assert_eq!(scans.len(), input.log.len(), "the scan is of these segments");
    // A torn record can only be the end of the log: records after it in a later segment
    // were appended after it, so it was once whole and has been damaged since.
    for (index, scanned) in scans.iter().enumerate().filter(|(_, scanned)| scanned.torn_tail) {
        let later = input.log.iter().zip(&scans).skip(index + 1).find(|(_, later)| !later.records.is_empty());
        if let Some((later_segment, _)) = later {
            return Err(StorageError::LogCorrupt {
                file: input.log[index].name.to_owned(),
                offset: scanned.valid_len,
                problem: format!("a damaged record is followed by records in log file {:?}", later_segment.name),
            });
        }
    }

    let mut history: Vec<LogEntry> = Vec::new();
    let mut tip = snapshot_zxid;
    let mut truncate = None;
    'segments: for (index, (segment, scanned)) in input.log.iter().zip(scans).enumerate() {
        for record in scanned.records {
            let zxid = record.entry.zxid();
            if history.is_empty() && zxid <= snapshot_zxid {
                continue;
            }
            if record.entry.prev_zxid != tip || zxid <= tip {
                truncate = Some((index, record.start));
                break 'segments;
            }
            tip = zxid;
            history.push(record.entry);
        }
        // Zero padding left in an older segment is harmless: nothing is appended there. At
        // the end of the log the driver must cut it so that the next append follows the
        // last record.
        let is_last = index + 1 == input.log.len();
        if scanned.valid_len < segment.bytes.len() && (scanned.torn_tail || is_last) {
            truncate = Some((index, scanned.valid_len));
            break;
        }
    }
    debug_assert!(history.windows(2).all(|pair| pair[1].prev_zxid == pair[0].zxid()), "history chains");
    debug_assert!(
        history.first().is_none_or(|first| first.prev_zxid == snapshot_zxid),
        "history starts at the snapshot"
    );
    Ok(Recovered { database, history, accepted_epoch, current_epoch, truncate })
}

/// One snapshot file as the driver found it: its name (for error messages), the zxid its
/// name gives, and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotFile<'a> {
    pub name: &'a str,
    pub zxid: i64,
    pub bytes: &'a [u8],
}

/// Every file a server reads at start-up, for recovery that falls back to an older
/// snapshot when the newest is damaged ([`recover_with_fallback`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct FallbackInput<'a> {
    /// The snapshot files, oldest first.
    pub snapshots: &'a [SnapshotFile<'a>],
    /// The log files, oldest first.
    pub log: &'a [LogSegment<'a>],
    /// The zxid each log file's name says it starts at, in the order of `log`.
    pub log_first_zxids: &'a [i64],
    pub accepted_epoch: Option<&'a [u8]>,
    pub current_epoch: Option<&'a [u8]>,
}

/// One try at recovery: a snapshot and the log after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryAttempt {
    /// The snapshot's zxid; `None`: there is no snapshot, recovery starts from an empty
    /// database.
    pub snapshot_zxid: Option<i64>,
    /// The first log segment the attempt needs, an index into the whole log: the last one
    /// that starts at or before the snapshot (zxids increase across segments). The ones
    /// before it hold only txns the snapshot covers, so a driver need not read them.
    pub first_segment: usize,
}

/// The snapshot-fallback policy of recovery, step by step, so that a driver reads only
/// what each attempt needs (an older snapshot only when the newer one is damaged; the
/// log only from the segment the snapshot needs on).
///
/// The newest snapshot is tried first; when it is damaged, the next older one, with the
/// log from the segment that older snapshot needs. A fallback is taken only if it does
/// not cut the log anywhere but its very end (which a crash can leave torn): an older
/// snapshot whose log breaks off earlier would lose txns the damaged snapshot held. With
/// every snapshot damaged, recovery refuses rather than start from a partial log.
///
/// The driver calls [`next_attempt`](Self::next_attempt), reads that snapshot and the log
/// from its `first_segment` on, decodes them ([`decode_snapshot_database`],
/// [`scan_log_segments`]), and hands them to [`judge`](Self::judge); when no attempt is
/// left, [`give_up`](Self::give_up) is the error. [`recover_with_fallback`] does all of it
/// over files read in full.
#[derive(Clone, Debug)]
pub struct SnapshotFallback {
    /// Newest snapshot first.
    attempts: Vec<RecoveryAttempt>,
    /// How many of `attempts` were handed out.
    tried: usize,
    /// Why each snapshot tried could not be used, naming its file.
    problems: Vec<String>,
}

impl SnapshotFallback {
    /// The attempts for the snapshots whose names give `snapshot_zxids` and the log
    /// segments whose names give `log_first_zxids` (both ascending).
    pub fn new(snapshot_zxids: &[i64], log_first_zxids: &[i64]) -> SnapshotFallback {
        debug_assert!(snapshot_zxids.windows(2).all(|pair| pair[0] < pair[1]), "snapshots ascending");
        debug_assert!(log_first_zxids.windows(2).all(|pair| pair[0] < pair[1]), "log segments ascending");
        let first_needed = |zxid: i64| log_first_zxids.iter().rposition(|&first| first <= zxid).unwrap_or(0);
        let mut attempts: Vec<RecoveryAttempt> = snapshot_zxids
            .iter()
            .rev()
            .map(|&zxid| RecoveryAttempt { snapshot_zxid: Some(zxid), first_segment: first_needed(zxid) })
            .collect();
        if attempts.is_empty() {
            attempts.push(RecoveryAttempt { snapshot_zxid: None, first_segment: 0 });
        }
        SnapshotFallback { attempts, tried: 0, problems: Vec::new() }
    }

    /// The next snapshot to try and the log it needs; `None` once every one was handed
    /// out. A driver that finds the snapshot gone since it was listed asks for the next.
    pub fn next_attempt(&mut self) -> Option<RecoveryAttempt> {
        let attempt = self.attempts.get(self.tried).copied()?;
        self.tried += 1;
        Some(attempt)
    }

    /// Judges the attempt last handed out: `input` holds its snapshot (named
    /// `snapshot_name` in errors) and the log from its `first_segment` on, and `database`
    /// and `scanned` are decoded from them as for [`recover_scanned`].
    ///
    /// `Ok(Some(recovered))`: recovery is done, and `recovered.truncate` indexes the whole
    /// log. `Ok(None)`: the snapshot is damaged; try the next attempt. `Err`: refuse to
    /// start (a damaged log, or a fallback that does not lead into the log).
    pub fn judge(
        &mut self,
        snapshot_name: &str,
        input: &RecoveryInput<'_>,
        database: Result<Database, StorageError>,
        scanned: Result<ScannedLog, StorageError>,
    ) -> Result<Option<Recovered>, StorageError> {
        assert!(self.tried > 0, "judge follows next_attempt");
        let attempt = self.attempts[self.tried - 1];
        let is_fallback = self.tried > 1;
        match recover_scanned(input, database, scanned) {
            Ok(mut recovered) => {
                let cut_early = recovered.truncate.filter(|&(index, _)| is_fallback && index + 1 < input.log.len());
                if let Some((index, _)) = cut_early {
                    self.problems.push(format!(
                        "the older snapshot {snapshot_name:?} does not lead into log file {:?}",
                        input.log[index].name
                    ));
                    return Err(StorageError::NoUsableSnapshot { problems: std::mem::take(&mut self.problems) });
                }
                recovered.truncate = recovered.truncate.map(|(index, offset)| (index + attempt.first_segment, offset));
                Ok(Some(recovered))
            }
            Err(StorageError::SnapshotCorrupt { offset, problem }) => {
                self.problems.push(format!("{snapshot_name}: byte {offset}: {problem}"));
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Why each snapshot tried so far could not be used.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The error once every attempt failed: every problem, each naming its file.
    pub fn give_up(self) -> StorageError {
        StorageError::NoUsableSnapshot { problems: self.problems }
    }
}

/// Recovery from files read in full, falling back to older snapshots as
/// [`SnapshotFallback`] decides: the newest usable snapshot, the log after it, the epochs.
pub fn recover_with_fallback(input: &FallbackInput<'_>) -> Result<Recovered, StorageError> {
    assert_eq!(input.log.len(), input.log_first_zxids.len(), "a first zxid for every log segment");
    let snapshot_zxids: Vec<i64> = input.snapshots.iter().map(|snapshot| snapshot.zxid).collect();
    let mut fallback = SnapshotFallback::new(&snapshot_zxids, input.log_first_zxids);
    while let Some(attempt) = fallback.next_attempt() {
        let snapshot =
            attempt.snapshot_zxid.and_then(|zxid| input.snapshots.iter().find(|snapshot| snapshot.zxid == zxid));
        let log = &input.log[attempt.first_segment..];
        let attempt_input = RecoveryInput {
            snapshot: snapshot.map(|snapshot| snapshot.bytes),
            log,
            accepted_epoch: input.accepted_epoch,
            current_epoch: input.current_epoch,
        };
        let database = decode_snapshot_database(attempt_input.snapshot);
        let name = snapshot.map_or("", |snapshot| snapshot.name);
        if let Some(recovered) = fallback.judge(name, &attempt_input, database, scan_log_segments(log))? {
            return Ok(recovered);
        }
    }
    Err(fallback.give_up())
}

#[cfg(test)]
mod tests;
