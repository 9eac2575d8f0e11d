//! Requests for the leader, in one place: what a server's clients ask of the leader
//! ([`ForLeader`]), how a learner sends it ([`ForLeader::into_message`], called only from
//! `Node::ask_leader`), and how the leader takes it, from its own clients
//! ([`Leader::request`]) or from a learner ([`Leader::forwarded`]). A new kind of request
//! is a variant here and an arm in each of these.

use super::{refuse_for_connection_loss, Leader, LinkState};
use crate::node::shared::Shared;
use crate::node::{Submission, SubmissionKind};
use crate::proto::{Id, Request};
use crate::zab::message::{ForwardedRequest, PeerMessage};
use crate::zab::ServerId;

/// What a client of this server asks of the leader.
pub(in crate::node) enum ForLeader<'a> {
    /// A new session, whose id this server chose.
    CreateSession { session_id: i64, timeout_ms: i32 },
    /// A write or a sync: the request, and its frame as the client sent it (what a
    /// learner forwards).
    Client { session_id: i64, xid: i32, request: Request, frame: &'a [u8], auth_ids: Vec<Id> },
    /// A reconnecting client's session, to be vouched for by the leader's session table.
    Revalidate { session_id: i64 },
}

/// A request the leader takes, with the server whose client made it.
enum Taken {
    Submit(Submission),
    Revalidate { session_id: i64 },
}

impl ForLeader<'_> {
    /// The peer message a learner sends its leader.
    pub(in crate::node) fn into_message(self) -> PeerMessage {
        match self {
            ForLeader::CreateSession { session_id, timeout_ms } => {
                PeerMessage::Request(ForwardedRequest::CreateSession { session_id, timeout_ms })
            }
            ForLeader::Client { session_id, frame, auth_ids, .. } => {
                PeerMessage::Request(ForwardedRequest::Client { session_id, frame: frame.to_vec(), auth_ids })
            }
            ForLeader::Revalidate { session_id } => PeerMessage::Revalidate { session_id },
        }
    }

    /// What the leader takes when its own client asks.
    fn taken(self, origin: ServerId) -> Taken {
        match self {
            ForLeader::CreateSession { session_id, timeout_ms } => Taken::Submit(Submission {
                origin,
                session_id,
                cxid: 0,
                kind: SubmissionKind::CreateSession { timeout_ms },
            }),
            ForLeader::Client { session_id, xid, request, auth_ids, .. } => Taken::Submit(Submission {
                origin,
                session_id,
                cxid: xid,
                kind: SubmissionKind::Request { request, auth_ids },
            }),
            ForLeader::Revalidate { session_id } => Taken::Revalidate { session_id },
        }
    }
}

impl Leader {
    /// A request from one of this leader's own clients.
    pub(in crate::node) fn request(&mut self, shared: &mut Shared, request: ForLeader<'_>) {
        let origin = shared.config.server_id;
        self.take(shared, origin, request.taken(origin));
    }

    /// A request a learner forwarded (`PeerMessage::Request` or `PeerMessage::Revalidate`).
    /// One that does not decode is dropped. A learner not (or no longer) synced with this
    /// leader is refused: its client must reconnect to a server that can serve it (a
    /// revalidation is left unanswered).
    pub(super) fn forwarded(&mut self, shared: &mut Shared, from: ServerId, message: PeerMessage) {
        let taken = match message {
            PeerMessage::Request(ForwardedRequest::CreateSession { session_id, timeout_ms }) => {
                Taken::Submit(Submission {
                    origin: from,
                    session_id,
                    cxid: 0,
                    kind: SubmissionKind::CreateSession { timeout_ms },
                })
            }
            PeerMessage::Request(ForwardedRequest::Client { session_id, frame, auth_ids }) => {
                let Ok(decoded) = crate::proto::decode_request(&frame) else { return };
                let Ok(request) = decoded.body else { return };
                Taken::Submit(Submission {
                    origin: from,
                    session_id,
                    cxid: decoded.header.xid,
                    kind: SubmissionKind::Request { request, auth_ids },
                })
            }
            PeerMessage::Revalidate { session_id } => Taken::Revalidate { session_id },
            _ => return,
        };
        if !self.links.get(&from).is_some_and(|link| link.state == LinkState::UpToDate) {
            if let Taken::Submit(submission) = &taken {
                refuse_for_connection_loss(shared, from, submission);
            }
            return;
        }
        self.take(shared, from, taken);
    }

    fn take(&mut self, shared: &mut Shared, origin: ServerId, taken: Taken) {
        match taken {
            Taken::Submit(submission) => self.submit(shared, submission),
            Taken::Revalidate { session_id } => self.revalidate(shared, origin, session_id),
        }
    }
}
