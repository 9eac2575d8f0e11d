//! A readable trace of a run: one line per notable event, stamped with virtual time.

use zk_core::zab::message::{ForwardedRequest, PeerMessage, SyncMode};
use zk_core::zab::{counter_of, epoch_of};

/// Virtual time as seconds with milliseconds: `12.345s`.
pub fn time(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// Virtual time formatted like [`time`] only when displayed (for messages that are rarely
/// written: no string per checked observation).
#[derive(Clone, Copy, Debug)]
pub struct Time(pub u64);

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

/// A zxid as `epoch:counter`.
pub fn zxid(zxid: i64) -> String {
    format!("{}:{}", epoch_of(zxid), counter_of(zxid))
}

/// One line about a peer message, without bulky payloads.
pub fn peer_message(message: &PeerMessage) -> String {
    match message {
        PeerMessage::Notification(notification) => format!(
            "NOTIFICATION vote(s{}, {}, e{}) round {} {:?}",
            notification.vote.leader,
            zxid(notification.vote.zxid),
            notification.vote.peer_epoch,
            notification.election_epoch,
            notification.state
        ),
        PeerMessage::LearnerInfo { role, accepted_epoch, history } => {
            format!("LEARNERINFO {role:?} accepted e{accepted_epoch} last {}", zxid(history.last_zxid()))
        }
        PeerMessage::LeaderInfo { epoch } => format!("LEADERINFO e{epoch}"),
        PeerMessage::AckEpoch { current_epoch, history } => {
            format!("ACKEPOCH current e{current_epoch} last {}", zxid(history.last_zxid()))
        }
        PeerMessage::Sync { mode, entries, committed_zxid } => {
            let mode = match mode {
                SyncMode::Diff => String::from("DIFF"),
                SyncMode::Trunc { zxid: at } => format!("TRUNC {}", zxid(*at)),
                SyncMode::Snap { zxid: at, snapshot } => format!("SNAP {} ({snapshot:?})", zxid(*at)),
            };
            let range = match (entries.first(), entries.last()) {
                (Some(first), Some(last)) => format!("{}..={}", zxid(first.zxid()), zxid(last.zxid())),
                _ => String::from("none"),
            };
            format!("SYNC {mode} entries {range} committed {}", zxid(*committed_zxid))
        }
        PeerMessage::NewLeader { zxid: at } => format!("NEWLEADER {}", zxid(*at)),
        PeerMessage::AckNewLeader { zxid: at, durable_zxid } => {
            format!("ACK-NEWLEADER {} durable {}", zxid(*at), zxid(*durable_zxid))
        }
        PeerMessage::UpToDate => String::from("UPTODATE"),
        PeerMessage::Proposal(entry) => format!("PROPOSAL {} {:?}", zxid(entry.zxid()), entry.txn.op_code()),
        PeerMessage::Ack { zxid: at } => format!("ACK {}", zxid(*at)),
        PeerMessage::Commit { zxid: at } => format!("COMMIT {}", zxid(*at)),
        PeerMessage::Inform(entry) => format!("INFORM {} {:?}", zxid(entry.zxid()), entry.txn.op_code()),
        PeerMessage::Revalidate { session_id } => format!("REVALIDATE {session_id:#x}"),
        PeerMessage::Revalidated { session_id, valid } => format!("REVALIDATED {session_id:#x} valid={valid}"),
        PeerMessage::Request(ForwardedRequest::CreateSession { session_id, .. }) => {
            format!("REQUEST createSession {session_id:#x}")
        }
        PeerMessage::Request(ForwardedRequest::Client { session_id, frame, .. }) => {
            format!("REQUEST from session {session_id:#x} ({} bytes)", frame.len())
        }
        PeerMessage::SyncDone { session_id, cxid, .. } => format!("SYNC-DONE session {session_id:#x} cxid {cxid}"),
        PeerMessage::Refused { session_id, cxid, err } => {
            format!("REFUSED session {session_id:#x} cxid {cxid} {err:?}")
        }
        PeerMessage::Ping { epoch, round, touched_sessions } => {
            format!("PING epoch {epoch} round {round} ({} sessions)", touched_sessions.len())
        }
    }
}
