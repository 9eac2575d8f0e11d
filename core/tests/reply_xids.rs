//! Every reply carries the xid of the request it answers, as Apache ZooKeeper's do, on the
//! special paths too: auth (ZooKeeperServer.processPacket echoes the request's xid; the Java
//! and C clients send -4, go-zookeeper an ordinary xid it waits on), sasl, setWatches,
//! closeSession; a ping is answered with -2 (FinalRequestProcessor's PING_XID), which is
//! what every client sends it with. Each test pins the whole reply frame.

mod harness;

use harness::{Cluster, Session};
use zk_core::proto::{
    self, AuthPacket, Buffer, GetSaslRequest, Request, SetWatches, SetWatches2, XID_AUTH, XID_PING, XID_SET_WATCHES,
};

/// A standalone server with one session; returns the cluster and the session.
fn standalone() -> (Cluster, Session) {
    let mut cluster = Cluster::new(1, 0);
    cluster.start_all();
    let leader = cluster.settle();
    let session = cluster.connect(leader);
    (cluster, session)
}

/// Sends `request` with `xid` and returns the frames the server sent back (length prefix
/// included), and whether it closed the connection.
fn exchange(cluster: &mut Cluster, session: &Session, xid: i32, request: &Request) -> (Vec<Vec<u8>>, bool) {
    cluster.send_frame(session.connection, &proto::encode_request(xid, request));
    cluster.run_for(10);
    let inbox = cluster.inboxes.get_mut(&session.connection).expect("the connection's inbox");
    (inbox.frames.drain(..).collect(), inbox.closed)
}

/// A reply frame: length, xid, zxid, err, then the body.
fn frame(xid: i32, zxid: i64, err: i32, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&((16 + body.len()) as i32).to_be_bytes());
    bytes.extend_from_slice(&xid.to_be_bytes());
    bytes.extend_from_slice(&zxid.to_be_bytes());
    bytes.extend_from_slice(&err.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

fn digest(xid: i32) -> (i32, Request) {
    let packet = AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Buffer(b"alice:secret".to_vec()) };
    (xid, Request::Auth(packet))
}

#[test]
fn auth_is_answered_with_the_requests_own_xid() {
    let (mut cluster, session) = standalone();
    // go-zookeeper's setAuth: an ordinary xid, waited on like any request.
    let (xid, request) = digest(7);
    assert_eq!(exchange(&mut cluster, &session, xid, &request), (vec![frame(7, 0, 0, &[])], false));
    // The Java and C clients' setAuth: xid -4.
    let (xid, request) = digest(XID_AUTH);
    assert_eq!(exchange(&mut cluster, &session, xid, &request), (vec![frame(XID_AUTH, 0, 0, &[])], false));
}

#[test]
fn a_failed_auth_is_answered_with_the_requests_xid_then_closed() {
    let (mut cluster, session) = standalone();
    let packet = AuthPacket { auth_type: 0, scheme: "no-such-scheme".into(), auth: Buffer(b"x".to_vec()) };
    let (frames, closed) = exchange(&mut cluster, &session, 9, &Request::Auth(packet));
    // AUTHFAILED is -115.
    assert_eq!((frames, closed), (vec![frame(9, 0, -115, &[])], true));
}

#[test]
fn sasl_is_answered_with_the_requests_xid() {
    let (mut cluster, session) = standalone();
    let request = Request::Sasl(GetSaslRequest { token: Buffer(vec![1, 2, 3]) });
    // Without a SASL login configured, ZooKeeper answers OK, zxid 0, a null token (-1).
    let null_token = (-1i32).to_be_bytes();
    assert_eq!(exchange(&mut cluster, &session, 11, &request), (vec![frame(11, 0, 0, &null_token)], false));
}

#[test]
fn set_watches_is_answered_with_the_requests_xid() {
    let (mut cluster, session) = standalone();
    let applied = cluster.node(1).applied_zxid();
    let set = SetWatches { relative_zxid: applied, data_watches: vec![], exist_watches: vec![], child_watches: vec![] };
    let request = Request::SetWatches(set);
    let expected = (vec![frame(XID_SET_WATCHES, applied, 0, &[])], false);
    assert_eq!(exchange(&mut cluster, &session, XID_SET_WATCHES, &request), expected);
    let set2 = SetWatches2 {
        relative_zxid: applied,
        data_watches: vec![],
        exist_watches: vec![],
        child_watches: vec![],
        persistent_watches: vec![],
        persistent_recursive_watches: vec![],
    };
    let expected = (vec![frame(12, applied, 0, &[])], false);
    assert_eq!(exchange(&mut cluster, &session, 12, &Request::SetWatches2(set2)), expected);
}

#[test]
fn ping_is_answered_with_the_ping_xid() {
    let (mut cluster, session) = standalone();
    let applied = cluster.node(1).applied_zxid();
    assert_eq!(
        exchange(&mut cluster, &session, XID_PING, &Request::Ping),
        (vec![frame(XID_PING, applied, 0, &[])], false)
    );
}

#[test]
fn close_session_is_answered_with_the_requests_xid() {
    let (mut cluster, session) = standalone();
    let applied = cluster.node(1).applied_zxid();
    let (frames, closed) = exchange(&mut cluster, &session, 13, &Request::CloseSession);
    // The closeSession txn is the next zxid.
    assert_eq!((frames, closed), (vec![frame(13, applied + 1, 0, &[])], true));
}
