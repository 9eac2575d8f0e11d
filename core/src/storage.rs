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
use crate::txn::{Txn, TxnHeader};
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

/// One txn in the log. `prev_zxid` is the zxid of the txn before it in the server's history
/// (0 for the first txn ever); recovery uses it to chain records so a leftover of a divergent
/// history (a crash between installing a snapshot / truncating and the log catching up) is
/// detected and dropped rather than replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub prev_zxid: i64,
    pub header: TxnHeader,
    pub txn: Txn,
}

impl LogEntry {
    pub fn zxid(&self) -> i64 {
        self.header.zxid
    }
}

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
}

impl StorageError {
    /// The same error, naming the file it came from.
    fn in_file(mut self, name: &str) -> Self {
        match &mut self {
            StorageError::LogCorrupt { file, .. }
            | StorageError::LogZxidOrder { file, .. }
            | StorageError::EpochCorrupt { file, .. } => *file = name.to_owned(),
            StorageError::SnapshotCorrupt { .. } => {}
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
/// The snapshot is loaded (an error if it is bad: the driver may retry with an older one)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Id;
    use proptest::prelude::*;

    fn entry(prev_zxid: i64, zxid: i64) -> LogEntry {
        LogEntry {
            prev_zxid,
            header: TxnHeader { session_id: 7, cxid: zxid as i32, zxid, time_ms: 1_000 + zxid },
            txn: Txn::SetData { path: "/a".into(), data: Some(vec![zxid as u8; 3]), version: 1 },
        }
    }

    /// Entries with these zxids, each chained to the one before, the first to `prev_zxid`.
    fn chain(prev_zxid: i64, zxids: &[i64]) -> Vec<LogEntry> {
        let mut prev = prev_zxid;
        zxids
            .iter()
            .map(|&zxid| {
                let entry = entry(prev, zxid);
                prev = zxid;
                entry
            })
            .collect()
    }

    /// Where each record of `entries` ends once encoded.
    fn record_ends(entries: &[LogEntry]) -> Vec<usize> {
        entries
            .iter()
            .scan(0, |end, entry| {
                *end += encode_log_record(entry).len();
                Some(*end)
            })
            .collect()
    }

    #[test]
    fn log_record_byte_layout() {
        let entry = LogEntry {
            prev_zxid: 0,
            header: TxnHeader { session_id: 0, cxid: 0, zxid: 1, time_ms: 0 },
            txn: Txn::CreateSession { timeout_ms: 4000 },
        };
        let record = encode_log_record(&entry);
        // Varints: prev 0, session 0, cxid 0, zxid 1 (zigzag 2), time 0, variant 6,
        // timeout 4000 (zigzag 8000: marker 0xfb then u16 LE).
        let payload = [0, 0, 0, 2, 0, 6, 0xfb, 0x40, 0x1f];
        assert_eq!(&record[..4], b"ZKDL");
        assert_eq!(&record[4..8], &[9, 0, 0, 0]);
        assert_eq!(&record[8..12], &crc32c::crc32c(&payload).to_le_bytes());
        assert_eq!(&record[8..12], &[0xef, 0x68, 0xad, 0x1a]);
        assert_eq!(&record[12..], &payload);
        assert_eq!(scan_log(&record).unwrap(), LogScan { entries: vec![entry], valid_len: 21, torn_tail: false });
        assert_eq!(scan_log(&[]).unwrap(), LogScan { entries: vec![], valid_len: 0, torn_tail: false });
    }

    #[test]
    fn a_cut_at_every_byte_keeps_the_records_before_it() {
        let entries = chain(0, &[1, 2, 3]);
        let bytes = encode_log_records(&entries);
        let ends = record_ends(&entries);
        for cut in 0..=bytes.len() {
            let scanned = scan_log(&bytes[..cut]).unwrap();
            let whole = ends.iter().filter(|&&end| end <= cut).count();
            assert_eq!(scanned.entries, entries[..whole], "cut at {cut}");
            let valid_len = if whole == 0 { 0 } else { ends[whole - 1] };
            assert_eq!(scanned.valid_len, valid_len, "cut at {cut}");
            assert_eq!(scanned.torn_tail, cut != valid_len, "cut at {cut}");
        }
    }

    #[test]
    fn zero_padding_after_the_records_is_a_tail_but_not_torn() {
        let entries = chain(0, &[1, 2, 3]);
        let mut bytes = encode_log_records(&entries);
        let valid_len = bytes.len();
        bytes.resize(valid_len + 4096, 0);
        assert_eq!(scan_log(&bytes).unwrap(), LogScan { entries, valid_len, torn_tail: false });
        // A record cut short and then zeros is torn.
        let mut torn = encode_log_records(&chain(0, &[1, 2]));
        torn.truncate(torn.len() - 3);
        torn.resize(torn.len() + 100, 0);
        assert!(scan_log(&torn).unwrap().torn_tail);
    }

    #[test]
    fn a_flipped_byte_in_the_middle_record_is_corruption_naming_its_offset() {
        let entries = chain(0, &[1, 2, 3]);
        let ends = record_ends(&entries);
        let clean = encode_log_records(&entries);
        // Every byte of the middle record: magic, length, checksum and payload.
        for position in ends[0]..ends[1] {
            let mut bytes = clean.clone();
            bytes[position] ^= 0x10;
            match scan_log(&bytes) {
                Err(StorageError::LogCorrupt { offset, .. }) => assert_eq!(offset, ends[0], "flip at {position}"),
                other => panic!("flip at {position}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_flipped_byte_in_the_last_record_is_a_torn_tail() {
        let entries = chain(0, &[1, 2, 3]);
        let ends = record_ends(&entries);
        let clean = encode_log_records(&entries);
        for position in ends[1]..ends[2] {
            let mut bytes = clean.clone();
            bytes[position] ^= 0x01;
            let scanned = scan_log(&bytes).unwrap();
            assert_eq!((scanned.entries.len(), scanned.valid_len, scanned.torn_tail), (2, ends[1], true));
        }
    }

    #[test]
    fn an_oversized_length_is_a_bad_record() {
        let mut bytes = encode_log_records(&chain(0, &[1]));
        let valid_len = bytes.len();
        bytes.extend_from_slice(b"ZKDL");
        bytes.extend_from_slice(&(LOG_RECORD_BYTES_MAX as u32 + 1).to_le_bytes());
        bytes.extend_from_slice(&[0xff; 8]);
        assert_eq!(scan_log(&bytes).unwrap().valid_len, valid_len);
        assert!(scan_log(&bytes).unwrap().torn_tail);
    }

    #[test]
    fn a_zxid_that_does_not_increase_is_corruption() {
        let entries = vec![entry(0, 1), entry(1, 5), entry(5, 5)];
        let ends = record_ends(&entries);
        let error = scan_log(&encode_log_records(&entries)).unwrap_err();
        assert_eq!(
            error,
            StorageError::LogZxidOrder { file: String::new(), offset: ends[1], zxid: 5, previous_zxid: 5 }
        );
    }

    #[test]
    fn truncation_offset_keeps_records_up_to_the_zxid() {
        let entries = chain(0, &[10, 20, 30]);
        let ends = record_ends(&entries);
        let mut bytes = encode_log_records(&entries);
        for (zxid, offset) in [(0, 0), (10, ends[0]), (15, ends[0]), (20, ends[1]), (30, ends[2]), (99, ends[2])] {
            assert_eq!(log_truncation_offset(&bytes, zxid), Ok(offset), "zxid {zxid}");
        }
        bytes.extend_from_slice(b"ZKDL\x05");
        assert_eq!(log_truncation_offset(&bytes, 99), Ok(ends[2]));
        bytes[ends[0] + 1] ^= 1;
        assert!(log_truncation_offset(&bytes, 99).is_err());
    }

    fn open() -> Vec<Acl> {
        crate::acl::open_acl_unsafe()
    }

    /// A database with every kind of node, quota nodes, several ACLs (one released, so the
    /// cache's next ref is past its largest) and sessions.
    fn rich_database() -> Database {
        let mut tree = DataTree::new();
        let digest = vec![Acl { perms: 31, id: Id { scheme: "digest".into(), id: "u:h".into() } }];
        let ip = vec![Acl { perms: 1, id: Id { scheme: "ip".into(), id: "10.0.0.0/8".into() } }];
        let mut zxid = 0;
        let mut create = |tree: &mut DataTree, path: &str, data: &[u8], acl: &[Acl], kind: NodeKind| {
            zxid += 1;
            tree.create_node(path, Some(data.to_vec()), acl, kind, -1, zxid, 500 + zxid).unwrap();
        };
        create(&mut tree, "/app", b"v", &open(), NodeKind::Persistent);
        create(&mut tree, "/app/e1", b"", &digest, NodeKind::Ephemeral { owner: 5 });
        create(&mut tree, "/app/e2", b"xy", &open(), NodeKind::Ephemeral { owner: 6 });
        create(&mut tree, "/app/c", b"", &ip, NodeKind::Container);
        create(&mut tree, "/app/c/t", b"ttl", &open(), NodeKind::Ttl { ttl_ms: 60_000 });
        let released = [Acl { perms: 1, id: Id { scheme: "x".into(), id: "y".into() } }];
        create(&mut tree, "/tmp", b"", &released, NodeKind::Persistent);
        create(&mut tree, "/zookeeper/quota/app", b"", &open(), NodeKind::Persistent);
        create(&mut tree, "/zookeeper/quota/app/zookeeper_limits", b"count=10,bytes=-1", &open(), NodeKind::Persistent);
        create(&mut tree, "/zookeeper/quota/app/zookeeper_stats", b"", &open(), NodeKind::Persistent);
        tree.set_data("/app", None, 1, 20, 900).unwrap();
        tree.delete_node("/tmp", 21).unwrap();
        tree.check_invariants().unwrap();
        assert!(tree.quota_of("/app/c").is_some());
        let sessions = [(5, 4_000), (6, 30_000), (-3, 10_000)].into_iter().collect();
        Database::from_parts(tree, sessions, 21, WATCHES_MAX_DEFAULT)
    }

    /// The image a node hands its driver is the state at the moment it was taken, however
    /// much the tree changes before the driver encodes it.
    #[test]
    fn an_image_keeps_its_moment_while_the_database_changes() {
        let mut database = rich_database();
        let mut zxid = database.last_processed_zxid();
        let mut apply = |database: &mut Database, session_id: i64, txn: Txn| {
            zxid += 1;
            let header = TxnHeader { zxid, session_id, time_ms: 1_000 + zxid, ..Default::default() };
            database.apply(&header, &txn, &|_, _| true);
        };
        let create = |path: String, kind| Txn::Create {
            op: crate::proto::OpCode::Create,
            path,
            data: Some(vec![7; 40]),
            acl: open(),
            kind,
            parent_cversion: -1,
        };
        // Enough nodes for a tree several levels deep.
        for index in 0..3_000 {
            apply(&mut database, 0, create(format!("/app/n{index:05}"), crate::txn::CreateKind::Persistent));
        }
        let at_capture = encode_snapshot(&database);
        let image = SnapshotImage::of(&database);
        assert_eq!(image.zxid(), database.last_processed_zxid());
        for index in (0..3_000).step_by(7) {
            let path = format!("/app/n{index:05}");
            apply(&mut database, 0, Txn::SetData { path: path.clone(), data: Some(vec![1; 9]), version: 1 });
            if index % 2 == 0 {
                apply(&mut database, 0, Txn::Delete { op: crate::proto::OpCode::Delete, path });
            }
        }
        apply(&mut database, 0, Txn::SetAcl { path: "/app".into(), acl: vec![], version: 1 });
        apply(&mut database, 77, Txn::CreateSession { timeout_ms: 5_000 });
        apply(&mut database, 77, create("/app/e77".into(), crate::txn::CreateKind::Ephemeral));
        apply(&mut database, 5, Txn::CloseSession { paths_to_delete: vec!["/app/e1".into()] });
        database.check_invariants();
        assert_ne!(encode_snapshot(&database), at_capture);
        assert_eq!(image.encode(), at_capture);
        let restored = decode_snapshot(&image.encode()).unwrap();
        assert_eq!(restored.tree.node_count(), image.node_count());
    }

    #[test]
    fn snapshot_round_trips_every_index() {
        let database = rich_database();
        let bytes = encode_snapshot(&database);
        assert_eq!(&bytes[..8], b"ZKDS\x01\x00\x00\x00");
        assert_eq!(&bytes[8..16], &21i64.to_le_bytes());
        let snapshot = decode_snapshot(&bytes).unwrap();
        assert_eq!(snapshot.zxid, 21);
        assert_eq!(snapshot.tree, database.tree);
        assert_eq!(&snapshot.sessions, database.sessions());
        assert_eq!(snapshot.tree.ephemerals(5).len(), 1);
        assert_eq!(snapshot.tree.data_size_approximate(), database.tree.data_size_approximate());
        let restored = snapshot.into_database(WATCHES_MAX_DEFAULT);
        assert_eq!(restored.last_processed_zxid(), 21);
        // Deterministic: the same database, and the database rebuilt from it, give the same bytes.
        assert_eq!(encode_snapshot(&database), bytes);
        assert_eq!(encode_snapshot(&restored), bytes);
        let empty = decode_snapshot(&encode_snapshot(&Database::default())).unwrap();
        assert_eq!((empty.zxid, empty.tree, empty.sessions), (0, DataTree::new(), BTreeMap::new()));
    }

    #[test]
    fn a_damaged_snapshot_is_an_error() {
        let bytes = encode_snapshot(&rich_database());
        for (position, offset) in [(0, 0), (5, 4), (9, 16), (17, 16), (bytes.len() / 2, 16), (bytes.len() - 1, 16)] {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x40;
            match decode_snapshot(&damaged) {
                Err(StorageError::SnapshotCorrupt { offset: at, .. }) => assert_eq!(at, offset, "flip at {position}"),
                other => panic!("flip at {position}: {other:?}"),
            }
        }
        assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_snapshot(&bytes[..10]).is_err());
    }

    /// A snapshot framed with a correct checksum around a body the encoder would never write
    /// (the fields of [`SnapshotBodyRef`], with any list of nodes).
    fn snapshot_with_nodes(nodes: &[&str], sessions: Vec<(i64, i32)>) -> Vec<u8> {
        #[derive(Serialize)]
        struct AnyBody<'a> {
            acls: &'a [(AclRef, Vec<Acl>)],
            acl_ref_next: AclRef,
            nodes: Vec<SnapshotNodeRef<'a>>,
            sessions: &'a [(i64, i32)],
        }
        let data = Some(Vec::new());
        let stat = PersistedStat::default();
        let nodes = nodes
            .iter()
            .map(|path| SnapshotNodeRef { path, data: &data, acl: 0, stat, kind: NodeKind::Persistent })
            .collect();
        let acls = [(0, open())];
        frame_snapshot(3, &codec::encode(&AnyBody { acls: &acls, acl_ref_next: 1, nodes, sessions: &sessions }))
    }

    #[test]
    fn children_are_counted_whether_or_not_siblings_come_together() {
        let nodes = ["/", "/a", "/b", "/a/x", "/a/y", "/b/y", "/a/z", "/a/x/deep"];
        let tree = decode_snapshot(&snapshot_with_nodes(&nodes, vec![])).unwrap().tree;
        let children = |path: &str| tree.get(path).unwrap().num_children;
        assert_eq!(
            [children("/"), children("/a"), children("/b"), children("/a/x"), children("/a/z")],
            [2, 3, 1, 1, 0]
        );
        assert_eq!(tree.check_invariants(), Ok(()));
    }

    #[test]
    fn a_snapshot_whose_tree_could_not_exist_is_an_error() {
        assert!(decode_snapshot(&snapshot_with_nodes(&["/", "/a", "/a/b"], vec![(1, 2), (4, 5)])).is_ok());
        for (nodes, expected) in [
            (&["/", "/a/b"][..], "before its parent"),
            (&["/a"], "before its parent"),
            (&[], "no root"),
            (&["/", "/a", "/a"], "/a appears twice"),
            (&["/", "/a/"], "Invalid path"),
            (&["/", "/"], "/ appears twice"),
        ] {
            let error = decode_snapshot(&snapshot_with_nodes(nodes, vec![])).unwrap_err();
            assert!(error.to_string().contains(expected), "{nodes:?}: {error}");
        }
        assert!(decode_snapshot(&snapshot_with_nodes(&["/"], vec![(4, 5), (4, 6)])).is_err());
    }

    #[test]
    fn epoch_round_trips_and_damage_is_an_error() {
        for epoch in [0, 1, 7, u32::MAX] {
            assert_eq!(decode_epoch(&encode_epoch(epoch)), Ok(epoch));
        }
        let bytes = encode_epoch(3);
        assert_eq!(bytes.len(), EPOCH_FILE_BYTES);
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x02;
            assert!(decode_epoch(&damaged).is_err(), "flip at {position}");
        }
        assert!(decode_epoch(&bytes[..11]).is_err());
        assert!(decode_epoch(&[bytes.clone(), vec![0]].concat()).is_err());
    }

    fn snapshot_at(zxid: i64) -> Vec<u8> {
        encode_snapshot(&Database::from_parts(DataTree::new(), BTreeMap::new(), zxid, WATCHES_MAX_DEFAULT))
    }

    #[test]
    fn recover_without_files_is_a_fresh_server() {
        let recovered = recover(&RecoveryInput::default()).unwrap();
        assert_eq!(recovered.database.last_processed_zxid(), 0);
        assert_eq!((recovered.history, recovered.accepted_epoch, recovered.current_epoch), (vec![], 0, 0));
        assert_eq!(recovered.truncate, None);
    }

    #[test]
    fn recover_chains_the_log_after_the_snapshot_across_segments() {
        let old = encode_log_records(&chain(0, &[1, 2, 3]));
        let newer = encode_log_records(&chain(3, &[4, 5]));
        let snapshot = snapshot_at(2);
        let (accepted, current) = (encode_epoch(2), encode_epoch(1));
        let log = [LogSegment { name: "log.1", bytes: &old }, LogSegment { name: "log.4", bytes: &newer }];
        let input = RecoveryInput {
            snapshot: Some(&snapshot),
            log: &log,
            accepted_epoch: Some(&accepted),
            current_epoch: Some(&current),
        };
        let recovered = recover(&input).unwrap();
        assert_eq!(recovered.database.last_processed_zxid(), 2);
        assert_eq!(recovered.history, [chain(2, &[3]), chain(3, &[4, 5])].concat());
        assert_eq!((recovered.accepted_epoch, recovered.current_epoch, recovered.truncate), (2, 1, None));
    }

    #[test]
    fn recover_drops_a_divergent_leftover_after_the_snapshot() {
        // The server installed a snapshot at 2:5 from a new leader, then crashed before the
        // log caught up: the old log still holds an epoch-1 suffix that never committed.
        let zxid = |epoch: i64, counter: i64| epoch << 32 | counter;
        let snapshot = snapshot_at(zxid(2, 5));
        let old = encode_log_records(&chain(0, &[zxid(1, 1), zxid(1, 2)]));
        let entries = [chain(zxid(2, 5), &[zxid(2, 6), zxid(2, 7)]), chain(zxid(1, 9), &[zxid(3, 1)])].concat();
        let newer = encode_log_records(&entries);
        let log = [LogSegment { name: "a", bytes: &old }, LogSegment { name: "b", bytes: &newer }];
        let recovered = recover(&RecoveryInput { snapshot: Some(&snapshot), log: &log, ..Default::default() }).unwrap();
        assert_eq!(recovered.history, entries[..2]);
        assert_eq!(recovered.truncate, Some((1, record_ends(&entries)[1])));
        // Without a snapshot the history must start from zxid 0.
        let recovered = recover(&RecoveryInput { log: &log[1..], ..Default::default() }).unwrap();
        assert_eq!((recovered.history.len(), recovered.truncate), (0, Some((0, 0))));
    }

    #[test]
    fn recovery_from_halves_computed_apart_is_recovery() {
        let old = encode_log_records(&chain(0, &[1, 2, 3]));
        let newer = encode_log_records(&chain(3, &[4, 5]));
        let snapshot = snapshot_at(2);
        let log = [LogSegment { name: "log.1", bytes: &old }, LogSegment { name: "log.4", bytes: &newer }];
        let input = RecoveryInput { snapshot: Some(&snapshot), log: &log, ..Default::default() };
        let whole = recover(&input).unwrap();
        let halves =
            recover_scanned(&input, decode_snapshot_database(Some(&snapshot)), scan_log_segments(&log)).unwrap();
        assert_eq!((halves.history, halves.truncate), (whole.history, whole.truncate));
        assert_eq!(halves.database.last_processed_zxid(), whole.database.last_processed_zxid());
        // A damaged snapshot is reported before a damaged log, as by `recover`: the driver
        // then tries an older snapshot instead of refusing to start.
        let mut bad_snapshot = snapshot.clone();
        let last = bad_snapshot.len() - 1;
        bad_snapshot[last] ^= 1;
        let mut bad_log = old.clone();
        bad_log[20] ^= 1;
        let log = [LogSegment { name: "log.1", bytes: &bad_log }, LogSegment { name: "log.4", bytes: &newer }];
        let input = RecoveryInput { snapshot: Some(&bad_snapshot), log: &log, ..Default::default() };
        let error = recover_scanned(&input, decode_snapshot_database(Some(&bad_snapshot)), scan_log_segments(&log))
            .unwrap_err();
        assert!(matches!(error, StorageError::SnapshotCorrupt { .. }), "{error}");
        assert!(matches!(recover(&input).unwrap_err(), StorageError::SnapshotCorrupt { .. }));
        let input = RecoveryInput { snapshot: Some(&snapshot), log: &log, ..Default::default() };
        let error =
            recover_scanned(&input, decode_snapshot_database(Some(&snapshot)), scan_log_segments(&log)).unwrap_err();
        assert!(matches!(error, StorageError::LogCorrupt { .. }), "{error}");
    }

    #[test]
    fn recover_cuts_a_torn_tail_and_trailing_padding() {
        let mut bytes = encode_log_records(&chain(0, &[1, 2]));
        let valid_len = bytes.len();
        bytes.extend_from_slice(&encode_log_record(&entry(2, 3))[..7]);
        let log = [LogSegment { name: "a", bytes: &bytes }];
        let recovered = recover(&RecoveryInput { log: &log, ..Default::default() }).unwrap();
        assert_eq!((recovered.history.len(), recovered.truncate), (2, Some((0, valid_len))));
        // Padding in an older segment stays; at the end of the log it is cut.
        let mut padded = encode_log_records(&chain(0, &[1]));
        let padded_len = padded.len();
        padded.resize(padded_len + 64, 0);
        let second = encode_log_records(&chain(1, &[2]));
        let log = [LogSegment { name: "a", bytes: &padded }, LogSegment { name: "b", bytes: &second }];
        let recovered = recover(&RecoveryInput { log: &log, ..Default::default() }).unwrap();
        assert_eq!((recovered.history.len(), recovered.truncate), (2, None));
        let recovered = recover(&RecoveryInput { log: &log[..1], ..Default::default() }).unwrap();
        assert_eq!((recovered.history.len(), recovered.truncate), (1, Some((0, padded_len))));
    }

    #[test]
    fn recover_refuses_corruption_and_names_the_file() {
        let first = encode_log_records(&chain(0, &[1, 2]));
        let mut torn = first.clone();
        torn.truncate(first.len() - 1);
        let second = encode_log_records(&chain(2, &[3]));
        let log = [LogSegment { name: "log.1", bytes: &torn }, LogSegment { name: "log.3", bytes: &second }];
        let error = recover(&RecoveryInput { log: &log, ..Default::default() }).unwrap_err();
        assert!(error.to_string().starts_with("log file \"log.1\" is corrupt at byte"), "{error}");
        let mut flipped = encode_log_records(&chain(0, &[1, 2, 3]));
        flipped[20] ^= 1;
        let log = [LogSegment { name: "log.9", bytes: &flipped }];
        let error = recover(&RecoveryInput { log: &log, ..Default::default() }).unwrap_err();
        assert!(matches!(&error, StorageError::LogCorrupt { file, offset: 0, .. } if file == "log.9"), "{error}");
        let bad_epoch = vec![0; EPOCH_FILE_BYTES];
        let error = recover(&RecoveryInput { current_epoch: Some(&bad_epoch), ..Default::default() }).unwrap_err();
        assert!(error.to_string().contains("currentEpoch"), "{error}");
        let bad_snapshot = b"ZKDS".to_vec();
        assert!(recover(&RecoveryInput { snapshot: Some(&bad_snapshot), ..Default::default() }).is_err());
    }

    proptest! {
        #[test]
        fn recover_never_panics_on_random_bytes(
            snapshot in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            segments in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..128), 0..3),
            accepted in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        ) {
            let log: Vec<LogSegment<'_>> = segments.iter().map(|bytes| LogSegment { name: "x", bytes }).collect();
            let input = RecoveryInput {
                snapshot: snapshot.as_deref(),
                log: &log,
                accepted_epoch: accepted.as_deref(),
                current_epoch: None,
            };
            let _ = recover(&input);
        }

        #[test]
        fn damage_to_a_log_keeps_a_prefix_or_is_refused(
            count in 1usize..6,
            position in any::<prop::sample::Index>(),
            mask in 1u8..,
            cut in any::<prop::sample::Index>(),
        ) {
            let entries = chain(0, &(1..=count as i64).collect::<Vec<_>>());
            let mut bytes = encode_log_records(&entries);
            let flipped = position.index(bytes.len());
            bytes[flipped] ^= mask;
            bytes.truncate(cut.index(bytes.len() + 1));
            if let Ok(scanned) = scan_log(&bytes) {
                prop_assert!(entries.starts_with(&scanned.entries));
                prop_assert!(scanned.valid_len <= bytes.len());
                let log = [LogSegment { name: "x", bytes: &bytes }];
                let recovered = recover(&RecoveryInput { log: &log, ..Default::default() }).unwrap();
                prop_assert_eq!(recovered.history, scanned.entries);
            }
        }

        #[test]
        fn checksummed_garbage_never_panics(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..48), 0..4)) {
            let mut bytes = Vec::new();
            for payload in &payloads {
                bytes.extend_from_slice(&LOG_RECORD_MAGIC);
                bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                bytes.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
                bytes.extend_from_slice(payload);
            }
            let _ = scan_log(&bytes);
            let _ = decode_snapshot(&frame_snapshot(1, &payloads.concat()));
        }
    }
}
