//! SASL on the client port (opcode 102): DIGEST-MD5 (RFC 2831) as ZooKeeper's server speaks
//! it to the users of a JAAS `Server { DigestLoginModule ... user_NAME="password"; }` section.
//!
//! The exchange, as the Java client and kazoo (pure-sasl) run it: the client sends an empty
//! token; the server challenges with `realm="zk-sasl-md5",nonce="…",charset=utf-8,
//! algorithm=md5-sess`; the client answers with its digest; the server checks it and sends
//! `rspauth=…`, which ends the exchange. The connection then holds the identity
//! `sasl:<name>` (after ZooKeeper's Kerberos name rules, [`authorization_id`]) and `super`
//! when the name is one of `zookeeper.superUser`.
//!
//! The nonce is an input: the node derives it from a secret the driver gives it and the
//! connection, so a simulated run stays a function of its seed.

use std::collections::{BTreeMap, BTreeSet};

use md5::{Digest, Md5};

/// ZooKeeper's DIGEST-MD5 realm (its server name).
pub const REALM: &str = "zk-sasl-md5";
/// The digest-uri clients must name: protocol `zookeeper`, server name [`REALM`].
pub const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// What the server's JAAS `Server` section and the SASL properties say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaslConfig {
    /// DIGEST-MD5 users and their passwords (`user_NAME="password"`, and `super` from
    /// `zookeeper.SASLAuthenticationProvider.superPassword`).
    pub users: BTreeMap<String, String>,
    /// `zookeeper.superUser` (and `zookeeper.superUser.*`): SASL names that are superuser.
    pub super_users: BTreeSet<String>,
    /// `zookeeper.kerberos.removeHostFromPrincipal`.
    pub remove_host_from_principal: bool,
    /// `zookeeper.kerberos.removeRealmFromPrincipal`.
    pub remove_realm_from_principal: bool,
    /// `zookeeper.allowSaslFailedClients`: a failed exchange is answered OK (with no token)
    /// and the connection kept, without an identity.
    pub allow_failed_clients: bool,
}

/// One connection's DIGEST-MD5 exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DigestMd5 {
    /// Nothing received yet.
    #[default]
    Start,
    /// Challenged with this nonce; the client's digest is next.
    Challenged { nonce: String },
    /// Finished, successfully or not; another token is a failure.
    Done,
}

/// What the server answers a token with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A challenge to send; the exchange goes on.
    Challenge(Vec<u8>),
    /// Authenticated: the final token to send and the authenticated user name.
    Success { token: Vec<u8>, user: String },
    /// The exchange failed (why, for the log).
    Failure(String),
}

impl DigestMd5 {
    /// Takes the client's next token. `nonce` is used if this token starts the exchange.
    pub fn step(&mut self, users: &BTreeMap<String, String>, token: &[u8], nonce: String) -> Step {
        match std::mem::replace(self, DigestMd5::Done) {
            DigestMd5::Start => {
                let challenge = format!("realm=\"{REALM}\",nonce=\"{nonce}\",charset=utf-8,algorithm=md5-sess");
                *self = DigestMd5::Challenged { nonce };
                Step::Challenge(challenge.into_bytes())
            }
            DigestMd5::Challenged { nonce } => check_response(users, &nonce, token),
            DigestMd5::Done => Step::Failure(String::from("a token after the exchange ended")),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The response value (RFC 2831 2.1.2.1) for qop=auth; `a2_prefix` is `AUTHENTICATE` for the
/// client's response and empty for the server's rspauth.
fn digest(fields: &Fields, password: &str, a2_prefix: &str) -> String {
    let user_realm_password = md5(&[fields.username.as_bytes(), b":", REALM.as_bytes(), b":", password.as_bytes()]);
    let mut a1: Vec<u8> = user_realm_password.to_vec();
    a1.extend_from_slice(format!(":{}:{}", fields.nonce, fields.cnonce).as_bytes());
    if let Some(authzid) = &fields.authzid {
        a1.extend_from_slice(format!(":{authzid}").as_bytes());
    }
    let a2 = format!("{a2_prefix}:{}", fields.digest_uri);
    let kd = format!(
        "{}:{}:{}:{}:auth:{}",
        hex(&md5(&[&a1])),
        fields.nonce,
        fields.nc,
        fields.cnonce,
        hex(&md5(&[a2.as_bytes()]))
    );
    hex(&md5(&[kd.as_bytes()]))
}

/// The fields of a digest-response the server checks.
struct Fields {
    username: String,
    nonce: String,
    cnonce: String,
    nc: String,
    digest_uri: String,
    response: String,
    authzid: Option<String>,
}

fn check_response(users: &BTreeMap<String, String>, nonce: &str, token: &[u8]) -> Step {
    let Ok(text) = std::str::from_utf8(token) else {
        return Step::Failure(String::from("a response that is not UTF-8"));
    };
    let Some(pairs) = parse_directives(text) else { return Step::Failure(String::from("a malformed response")) };
    let get = |key: &str| pairs.get(key).cloned();
    let (Some(username), Some(their_nonce), Some(cnonce), Some(nc), Some(digest_uri), Some(response)) =
        (get("username"), get("nonce"), get("cnonce"), get("nc"), get("digest-uri"), get("response"))
    else {
        return Step::Failure(String::from("a response without a required directive"));
    };
    if their_nonce != nonce {
        return Step::Failure(String::from("the nonce is not the one the server sent"));
    }
    if nc != "00000001" {
        return Step::Failure(format!("nonce count {nc}, expected 00000001"));
    }
    if get("qop").is_some_and(|qop| qop != "auth") || get("realm").is_some_and(|realm| realm != REALM) {
        return Step::Failure(String::from("a qop or realm the server did not offer"));
    }
    if digest_uri != DIGEST_URI {
        return Step::Failure(format!("digest-uri {digest_uri:?}, expected {DIGEST_URI:?}"));
    }
    let Some(password) = users.get(&username) else { return Step::Failure(format!("no user {username:?}")) };
    let fields = Fields { username, nonce: their_nonce, cnonce, nc, digest_uri, response, authzid: get("authzid") };
    if digest(&fields, password, "AUTHENTICATE") != fields.response.to_ascii_lowercase() {
        return Step::Failure(format!("a wrong password for {:?}", fields.username));
    }
    let rspauth = format!("rspauth={}", digest(&fields, password, ""));
    Step::Success { token: rspauth.into_bytes(), user: fields.username }
}

/// `key=value` directives separated by commas; a value may be a quoted string with `\`
/// escapes (and commas). `None` when the text does not parse.
fn parse_directives(text: &str) -> Option<BTreeMap<String, String>> {
    let mut directives = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(directives);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                value.push(c);
                chars.next();
            }
        }
        let key = key.trim();
        if key.is_empty() || directives.insert(key.to_owned(), value.trim().to_owned()).is_some() {
            return None;
        }
    }
}

/// A client's answer to a DIGEST-MD5 challenge (what kazoo's pure-sasl sends), for the
/// project's own clients and tests: `None` when the challenge does not parse.
pub fn client_response(challenge: &[u8], username: &str, password: &str, cnonce: &str) -> Option<Vec<u8>> {
    let directives = parse_directives(std::str::from_utf8(challenge).ok()?)?;
    let fields = Fields {
        username: username.to_owned(),
        nonce: directives.get("nonce")?.clone(),
        cnonce: cnonce.to_owned(),
        nc: String::from("00000001"),
        digest_uri: String::from(DIGEST_URI),
        response: String::new(),
        authzid: None,
    };
    let response = digest(&fields, password, "AUTHENTICATE");
    let text = format!(
        "qop=auth,realm=\"{REALM}\",username=\"{username}\",nonce=\"{}\",cnonce=\"{cnonce}\",nc=00000001,\
         digest-uri=\"{DIGEST_URI}\",response={response}",
        fields.nonce
    );
    Some(text.into_bytes())
}

/// The id a SASL name gets, as ZooKeeper's SaslServerCallbackHandler makes it: a Kerberos
/// name `service/host@REALM` keeps its host and realm unless `removeHostFromPrincipal` or
/// `removeRealmFromPrincipal` say otherwise; a plain name (DIGEST-MD5's) is itself.
pub fn authorization_id(config: &SaslConfig, name: &str) -> String {
    let Some((before_realm, realm)) = name.rsplit_once('@') else { return name.to_owned() };
    let (service, host) = match before_realm.split_once('/') {
        Some((service, host)) => (service, Some(host)),
        None => (before_realm, None),
    };
    let mut id = service.to_owned();
    if let Some(host) = host.filter(|_| !config.remove_host_from_principal) {
        id.push('/');
        id.push_str(host);
    }
    if !config.remove_realm_from_principal {
        id.push('@');
        id.push_str(realm);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        [(String::from("bob"), String::from("bobsecret"))].into_iter().collect()
    }

    /// Runs an exchange with a fixed nonce; returns the second step.
    fn exchange(response: &str, nonce: &str) -> Step {
        let mut server = DigestMd5::default();
        let challenge = server.step(&users(), b"", nonce.into());
        let expected = format!("realm=\"zk-sasl-md5\",nonce=\"{nonce}\",charset=utf-8,algorithm=md5-sess").into_bytes();
        assert_eq!(challenge, Step::Challenge(expected));
        server.step(&users(), response.as_bytes(), String::from("unused"))
    }

    /// kazoo 2.11 (pure-sasl 0.6.2) against Apache ZooKeeper 3.8, captured on the wire.
    #[test]
    fn kazoos_exchange_with_zookeeper_replays() {
        let nonce = "PbEayOAGQQoUdxOKKdTe1eC5nnJspG8/KhQotBOk";
        let response = format!(
            "qop=auth,realm=\"zk-sasl-md5\",username=\"bob\",nonce=\"{nonce}\",cnonce=\"6825981303335231\",\
             nc=00000001,digest-uri=\"zookeeper/zk-sasl-md5\",response=58398e3210b7390c178e02f3de742d36"
        );
        let token = b"rspauth=34eb27eda2a370769a4b4b69090ef695".to_vec();
        assert_eq!(exchange(&response, nonce), Step::Success { token, user: "bob".into() });
    }

    /// The Java 3.8 client (with authzid, maxbuf and charset) against Apache ZooKeeper 3.8.
    #[test]
    fn the_java_clients_exchange_with_zookeeper_replays() {
        let nonce = "/MXM6U1J5oUlXEYPRlb9Q7ey/cyFiObWbXUDk1uQ";
        let response = format!(
            "charset=utf-8,username=\"bob\",realm=\"zk-sasl-md5\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"wxz9qGOhff7RHc4ZjqJNl16JVEWyCsA3PMlpgoLL\",digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,\
             response=203420d9408720ad1aa5e3acc5e9962c,qop=auth,authzid=\"bob\""
        );
        let token = b"rspauth=56980307a03001b44dd5863a6c839ad9".to_vec();
        assert_eq!(exchange(&response, nonce), Step::Success { token, user: "bob".into() });
    }

    #[test]
    fn wrong_passwords_users_nonces_and_garbage_fail() {
        let nonce = "PbEayOAGQQoUdxOKKdTe1eC5nnJspG8/KhQotBOk";
        let good = format!(
            "qop=auth,realm=\"zk-sasl-md5\",username=\"bob\",nonce=\"{nonce}\",cnonce=\"6825981303335231\",\
             nc=00000001,digest-uri=\"zookeeper/zk-sasl-md5\",response=58398e3210b7390c178e02f3de742d36"
        );
        let bad = [
            good.replace("58398e3210b7390c178e02f3de742d36", "58398e3210b7390c178e02f3de742d37"),
            good.replace("\"bob\"", "\"eve\""),
            good.replace("nc=00000001", "nc=00000002"),
            good.replace("zookeeper/zk-sasl-md5", "zookeeper/other"),
            good.replace("qop=auth", "qop=auth-conf"),
            good.replace("username=\"bob\",", ""),
            String::from("\"unterminated"),
            String::from("=x"),
            String::from("a=1,a=2"),
        ];
        for response in &bad {
            assert!(matches!(exchange(response, nonce), Step::Failure(_)), "{response}");
        }
        assert!(matches!(exchange(&good, "another-nonce"), Step::Failure(_)), "a replayed response");
        let mut server = DigestMd5::default();
        server.step(&users(), b"", "n".into());
        server.step(&users(), b"garbage", "n".into());
        assert!(matches!(server.step(&users(), b"", "n".into()), Step::Failure(_)), "after the end");
    }

    #[test]
    fn the_projects_client_response_is_accepted() {
        let mut server = DigestMd5::default();
        let Step::Challenge(challenge) = server.step(&users(), b"", "abc".into()) else { panic!("a challenge") };
        let response = client_response(&challenge, "bob", "bobsecret", "xyz").unwrap();
        assert!(matches!(server.step(&users(), &response, String::new()), Step::Success { .. }));
        assert_eq!(client_response(b"\"", "bob", "x", "y"), None);
    }

    #[test]
    fn directives_take_quotes_escapes_and_commas() {
        let parsed = parse_directives(r#"a=1, b="x,y", c="q\"uote" ,d=plain"#).unwrap();
        let expected: Vec<(&str, &str)> = vec![("a", "1"), ("b", "x,y"), ("c", "q\"uote"), ("d", "plain")];
        assert_eq!(parsed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn kerberos_names_follow_zookeepers_rules() {
        let mut config = SaslConfig::default();
        assert_eq!(authorization_id(&config, "bob"), "bob");
        assert_eq!(authorization_id(&config, "client@KAZOOTEST.ORG"), "client@KAZOOTEST.ORG");
        assert_eq!(authorization_id(&config, "zk/host1@R"), "zk/host1@R");
        config.remove_host_from_principal = true;
        assert_eq!(authorization_id(&config, "zk/host1@R"), "zk@R");
        config.remove_realm_from_principal = true;
        assert_eq!(authorization_id(&config, "zk/host1@R"), "zk");
    }
}
