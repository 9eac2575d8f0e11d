//! The messages zkd servers exchange: zkd's own quorum protocol, in the roles and order of
//! ZooKeeper's (`Leader.FOLLOWERINFO`, `LEADERINFO`, `ACKEPOCH`, `DIFF`/`TRUNC`/`SNAP`,
//! `NEWLEADER`, `UPTODATE`, `PROPOSAL`, `ACK`, `COMMIT`, `INFORM`, `REQUEST`, `PING`,
//! `SYNC`), but not its bytes: zkd servers only talk to zkd servers.
//!
//! Every message travels in an [`Envelope`] carrying [`PROTOCOL_VERSION`], so a later
//! release can refuse, or adapt to, a peer that speaks an older version. Encoding goes
//! through [`crate::codec`] (bincode), like every zkd-own format.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::codec::{self, CodecError};
use crate::proto::Id;
use crate::txn::LogEntry;
use crate::zab::election::Notification;

/// The version of the peer protocol this build speaks.
pub const PROTOCOL_VERSION: u16 = 2;

/// The oldest peer protocol version this build accepts. Version 2 gave PING its epoch and
/// confirmation round; a version-1 peer cannot take part in them.
pub const PROTOCOL_VERSION_MIN: u16 = 2;

/// A message with the version of the protocol it was written in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u16,
    pub message: PeerMessage,
}

/// [`Envelope`] by reference, for encoding without a copy of the message (same bytes).
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    version: u16,
    message: &'a PeerMessage,
}

/// Whether a learner votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LearnerRole {
    Follower,
    Observer,
}

/// The part of a learner's history the leader needs to find where the two histories part:
/// the zxid its log starts after (its snapshot) and the last zxid it holds in each epoch.
/// Within one epoch every server's txns are a prefix of the one sequence that epoch's
/// leader proposed, so these few numbers locate the divergence point exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistorySummary {
    /// The zxid of the last txn in the learner's snapshot (applied, hence committed).
    pub base_zxid: i64,
    /// The last zxid the learner holds in each epoch that has txns in its log, ascending.
    pub epoch_ends: Vec<i64>,
}

impl HistorySummary {
    /// The learner's last zxid.
    pub fn last_zxid(&self) -> i64 {
        self.epoch_ends.last().copied().unwrap_or(self.base_zxid)
    }
}

/// How a learner's log is brought level with the leader's before the entries that follow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMode {
    /// The learner's log is a prefix of the leader's: just append the entries.
    Diff,
    /// Drop every txn after `zxid` (uncommitted txns of a history the leader does not
    /// share), then append the entries.
    Trunc { zxid: i64 },
    /// Replace everything with this snapshot (encoded by [`crate::ondisk`]) taken at
    /// `zxid`, then append the entries.
    Snap { zxid: i64, snapshot: crate::ondisk::SnapshotPayload },
}

/// A request a learner passes to the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardedRequest {
    /// A client asked this learner for a new session; the learner chose the id.
    CreateSession { session_id: i64, timeout_ms: i32 },
    /// A client request that changes state (or `sync`): the client frame as it arrived
    /// (request header and body), with the identities of the connection that sent it.
    Client {
        session_id: i64,
        #[serde(with = "serde_bytes")]
        frame: Vec<u8>,
        auth_ids: Vec<Id>,
    },
}

/// One message between two zkd servers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// Fast Leader Election.
    Notification(Notification),
    /// Discovery, learner → leader: FOLLOWERINFO or OBSERVERINFO.
    LearnerInfo { role: LearnerRole, accepted_epoch: u32, history: HistorySummary },
    /// Discovery, leader → learner: the new epoch.
    LeaderInfo { epoch: u32 },
    /// Discovery, learner → leader, once the new epoch is durable as its acceptedEpoch.
    AckEpoch { current_epoch: u32, history: HistorySummary },
    /// Synchronization, leader → learner: how to level the log, then the txns to append.
    /// Txns up to `committed_zxid` are committed; later ones are proposals still in flight.
    Sync { mode: SyncMode, entries: Vec<LogEntry>, committed_zxid: i64 },
    /// Synchronization, leader → learner: the new epoch's first zxid.
    NewLeader { zxid: i64 },
    /// Synchronization, learner → leader, once everything synced and the new currentEpoch
    /// are durable.
    AckNewLeader { zxid: i64, durable_zxid: i64 },
    /// Synchronization, leader → learner: a quorum acknowledged NEWLEADER; serve clients.
    UpToDate,
    /// Broadcast, leader → follower.
    Proposal(#[serde(deserialize_with = "shared")] Arc<LogEntry>),
    /// Broadcast, follower → leader: every proposal up to `zxid` is durable here.
    Ack { zxid: i64 },
    /// Broadcast, leader → follower: every proposal up to `zxid` is committed.
    Commit { zxid: i64 },
    /// Broadcast, leader → observer: a committed txn (observers never see proposals);
    /// shared with the leader's history like a proposal (same bytes on the wire).
    Inform(#[serde(deserialize_with = "shared")] Arc<LogEntry>),
    /// A learner passes a client's write (or session change) to the leader.
    Request(ForwardedRequest),
    /// Leader → learner: a client's `sync` is done; every commit before this message
    /// has been sent on this link.
    SyncDone { session_id: i64, cxid: i32, path: String },
    /// Leader → learner: a forwarded request was refused without becoming a txn (the
    /// leader's queue was full: ThrottledOp).
    Refused { session_id: i64, cxid: i32, err: crate::ErrorCode },
    /// Learner → leader: a client reconnects here with this session; is it alive?
    /// (ZooKeeper's REVALIDATE: the leader's session table is the authority, and this
    /// learner may not have applied the session's creation yet.)
    Revalidate { session_id: i64 },
    /// Leader → learner: the answer; a live session was touched.
    Revalidated { session_id: i64, valid: bool },
    /// Liveness and confirmation rounds: the leader pings each learner every half tick
    /// with its epoch and the last confirmation round it started, and starts a round of
    /// its own for a waiting `sync` (see `Node`'s leases and rounds). A learner following
    /// that leader in that epoch echoes both, with the sessions its clients touched since
    /// its last answer (id, timeout); a quorum of echoes of round `r` in the leader's epoch
    /// confirms it still led that epoch after `r` began.
    Ping { epoch: u32, round: u64, touched_sessions: Vec<(i64, i32)> },
}

/// Decodes a shared value straight into its `Arc` (serde's own `Arc` decodes into a `Box`
/// and then copies it into the `Arc`'s allocation); the bytes are the same.
fn shared<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Arc<T>, D::Error> {
    T::deserialize(deserializer).map(Arc::new)
}

/// Encodes a message for the wire.
pub fn encode(message: &PeerMessage) -> Vec<u8> {
    // Sized up front: growing the buffer byte field by byte field cost more than encoding.
    let mut out = Vec::with_capacity(message.encoded_size_hint());
    codec::encode_append(&EnvelopeRef { version: PROTOCOL_VERSION, message }, &mut out);
    out
}

impl PeerMessage {
    /// Roughly how many bytes the message encodes to, at least (a buffer's first capacity).
    fn encoded_size_hint(&self) -> usize {
        const SMALL: usize = 64;
        SMALL
            + match self {
                PeerMessage::Proposal(entry) | PeerMessage::Inform(entry) => entry.txn.approximate_bytes(),
                PeerMessage::Sync { entries, .. } => {
                    entries.iter().map(|entry| SMALL + entry.txn.approximate_bytes()).sum()
                }
                PeerMessage::Request(ForwardedRequest::Client { frame, .. }) => frame.len(),
                _ => 0,
            }
    }
}

/// Encodes a message for the wire at the end of `out`; returns its length.
pub fn encode_append(message: &PeerMessage, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    codec::encode_append(&EnvelopeRef { version: PROTOCOL_VERSION, message }, out);
    out.len() - start
}

/// Why a peer's bytes were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerDecodeError {
    /// The bytes are not a message of any version.
    Undecodable(CodecError),
    /// A message of a protocol version this build does not speak.
    UnsupportedVersion(u16),
}

impl std::fmt::Display for PeerDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerDecodeError::Undecodable(error) => write!(f, "undecodable peer message: {error}"),
            PeerDecodeError::UnsupportedVersion(version) => write!(
                f,
                "peer speaks protocol version {version}; this build speaks {PROTOCOL_VERSION_MIN}..={PROTOCOL_VERSION}"
            ),
        }
    }
}

impl std::error::Error for PeerDecodeError {}

/// Decodes a message from a peer. The version is read first, so a message from a newer
/// release whose body this build cannot parse is reported as a version mismatch.
pub fn decode(bytes: &[u8]) -> Result<PeerMessage, PeerDecodeError> {
    let version: u16 = match codec::decode_prefix::<u16>(bytes) {
        Ok(version) => version,
        Err(error) => return Err(PeerDecodeError::Undecodable(error)),
    };
    if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION).contains(&version) {
        return Err(PeerDecodeError::UnsupportedVersion(version));
    }
    codec::decode::<Envelope>(bytes).map(|envelope| envelope.message).map_err(PeerDecodeError::Undecodable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Txn, TxnHeader};
    use crate::zab::election::{PeerState, Vote};

    fn entry(zxid: i64) -> LogEntry {
        LogEntry {
            prev_zxid: zxid - 1,
            header: TxnHeader { session_id: 1, cxid: 2, zxid, time_ms: 3 },
            txn: Txn::SetData { path: "/a".into(), data: Some(vec![1, 2]), version: 4 },
        }
    }

    #[test]
    fn every_message_round_trips() {
        let history = HistorySummary { base_zxid: 5, epoch_ends: vec![1 << 32 | 9] };
        let messages = vec![
            PeerMessage::Notification(Notification {
                vote: Vote { leader: 3, zxid: 7, peer_epoch: 1 },
                election_epoch: 4,
                state: PeerState::Looking,
            }),
            PeerMessage::LearnerInfo { role: LearnerRole::Observer, accepted_epoch: 2, history: history.clone() },
            PeerMessage::LeaderInfo { epoch: 3 },
            PeerMessage::AckEpoch { current_epoch: 2, history },
            PeerMessage::Sync { mode: SyncMode::Trunc { zxid: 4 }, entries: vec![entry(5)], committed_zxid: 5 },
            PeerMessage::Sync {
                mode: SyncMode::Snap { zxid: 4, snapshot: crate::ondisk::SnapshotPayload::Bytes(vec![9; 3]) },
                entries: vec![],
                committed_zxid: 4,
            },
            PeerMessage::NewLeader { zxid: 3 << 32 },
            PeerMessage::AckNewLeader { zxid: 3 << 32, durable_zxid: 5 },
            PeerMessage::UpToDate,
            PeerMessage::Proposal(Arc::new(entry(6))),
            PeerMessage::Ack { zxid: 6 },
            PeerMessage::Commit { zxid: 6 },
            PeerMessage::Inform(Arc::new(entry(7))),
            PeerMessage::Request(ForwardedRequest::CreateSession { session_id: 8, timeout_ms: 4000 }),
            PeerMessage::Request(ForwardedRequest::Client { session_id: 8, frame: vec![0, 1], auth_ids: vec![] }),
            PeerMessage::SyncDone { session_id: 8, cxid: 3, path: "/".into() },
            PeerMessage::Refused { session_id: 8, cxid: 4, err: crate::ErrorCode::ThrottledOp },
            PeerMessage::Revalidate { session_id: 8 },
            PeerMessage::Revalidated { session_id: 8, valid: true },
            PeerMessage::Ping { epoch: 3, round: 7, touched_sessions: vec![(8, 4000)] },
        ];
        let mut appended = vec![7];
        for message in messages {
            let bytes = encode(&message);
            assert_eq!(decode(&bytes).unwrap(), message);
            // The borrowed envelope writes the owned one's bytes, appended or not.
            assert_eq!(bytes, codec::encode(&Envelope { version: PROTOCOL_VERSION, message: message.clone() }));
            let start = appended.len();
            assert_eq!(encode_append(&message, &mut appended), bytes.len());
            assert_eq!(appended[start..], bytes[..]);
        }
        assert_eq!(appended[0], 7, "what was there stays");
    }

    /// A leader's SNAP carries an image of its database; it reaches the learner as the bytes
    /// of that image's snapshot.
    #[test]
    fn a_snapshot_image_travels_as_its_encoded_bytes() {
        use crate::ondisk::{SnapshotImage, SnapshotPayload};
        let image = SnapshotImage::of(&crate::database::Database::default());
        let sync = |snapshot| PeerMessage::Sync {
            mode: SyncMode::Snap { zxid: 0, snapshot },
            entries: vec![],
            committed_zxid: 0,
        };
        let sent = encode(&sync(SnapshotPayload::Image(image.clone())));
        assert_eq!(sent, encode(&sync(SnapshotPayload::Bytes(image.encode()))));
        assert_eq!(decode(&sent).unwrap(), sync(SnapshotPayload::Bytes(image.encode())));
    }

    #[test]
    fn the_version_comes_first_and_a_foreign_version_is_refused() {
        let bytes = encode(&PeerMessage::UpToDate);
        // bincode's varint encodes a small version as one byte.
        assert_eq!(bytes[0], PROTOCOL_VERSION as u8);
        let mut future = bytes.clone();
        future[0] = (PROTOCOL_VERSION + 1) as u8;
        assert_eq!(decode(&future), Err(PeerDecodeError::UnsupportedVersion(PROTOCOL_VERSION + 1)));
        let mut past = bytes.clone();
        past[0] = (PROTOCOL_VERSION_MIN - 1) as u8;
        assert_eq!(decode(&past), Err(PeerDecodeError::UnsupportedVersion(PROTOCOL_VERSION_MIN - 1)));
        let mut garbage = bytes;
        garbage.push(7);
        assert!(matches!(decode(&garbage), Err(PeerDecodeError::Undecodable(_))));
        assert!(matches!(decode(&[]), Err(PeerDecodeError::Undecodable(_))));
    }
}
