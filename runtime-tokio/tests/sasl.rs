//! SASL DIGEST-MD5 over the wire, with users from a JAAS file: a login's `sasl:` identity in
//! ACLs, the superuser, a wrong password (AuthFailed, connection closed),
//! `allowSaslFailedClients`, and `sessionRequireClientSASLAuth` refusing requests before a
//! login. The exchange itself is checked against Apache ZooKeeper's own in
//! zk_core::sasl's tests; kazoo and zkCli run it in ci/compat.

// Tests drive real sockets, files and clocks.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::path::Path;

use common::{free_port, standalone_cfg, temp_dir, TestClient};
use zk_core::error::ErrorCode;
use zk_core::proto::{perms, Acl, Buffer, CreateRequest, GetDataRequest, GetSaslRequest, Id, Request, Response};
use zk_runtime_tokio::config::Config;
use zk_runtime_tokio::{start, ServerHandle};

const JAAS: &str = r#"Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_bob="bobsecret"
    user_admin="adminsecret";
};
"#;

async fn start_sasl(dir: &Path, extra: &str) -> ServerHandle {
    let jaas = dir.join("jaas.conf");
    std::fs::write(&jaas, JAAS).unwrap();
    let text = format!(
        "{}authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n{extra}",
        standalone_cfg(dir, free_port())
    );
    let properties = [zk_runtime_tokio::config::Property {
        name: "java.security.auth.login.config".into(),
        value: jaas.display().to_string(),
        origin: zk_runtime_tokio::config::properties::PropertyOrigin::CommandLine,
    }];
    let mut server = start(Config::from_sources(Some(&text), &properties).unwrap()).await.unwrap();
    server.serving().await;
    server
}

/// One SASL token; the reply's error code and token.
async fn sasl_step(client: &mut TestClient, token: &[u8]) -> std::io::Result<(i32, Vec<u8>)> {
    let (header, response) = client.call(&Request::Sasl(GetSaslRequest { token: Buffer(token.to_vec()) })).await?;
    assert_eq!(header.zxid, 0, "SASL replies carry zxid 0, as ZooKeeper's");
    let token = match response {
        Response::Sasl(reply) => reply.token.0,
        _ => Vec::new(),
    };
    Ok((header.err, token))
}

/// A DIGEST-MD5 login: the error code of the digest's reply (0 only with the server's
/// rspauth, unless `token_expected` is false).
async fn login_with(client: &mut TestClient, user: &str, password: &str, token_expected: bool) -> i32 {
    let (err, challenge) = sasl_step(client, b"").await.unwrap();
    assert_eq!(err, 0);
    let response = zk_core::sasl::client_response(&challenge, user, password, "0123456789").unwrap();
    let (err, token) = sasl_step(client, &response).await.unwrap();
    if err == 0 {
        assert_eq!(token.starts_with(b"rspauth="), token_expected, "{}", String::from_utf8_lossy(&token));
    }
    err
}

async fn login(client: &mut TestClient, user: &str, password: &str) -> i32 {
    login_with(client, user, password, true).await
}

async fn get(client: &mut TestClient, path: &str) -> i32 {
    let request = Request::GetData(GetDataRequest { path: path.into(), watch: false });
    client.call(&request).await.unwrap().0.err
}

#[tokio::test]
async fn a_digest_login_is_a_sasl_identity_in_acls() {
    let dir = temp_dir("sasl-login");
    let server = start_sasl(&dir, "superUser=admin\n").await;
    let mut bob = TestClient::connect(server.client_address()).await.unwrap();
    assert_eq!(login(&mut bob, "bob", "bobsecret").await, 0);
    let auth = vec![Acl { perms: perms::ALL, id: Id { scheme: "auth".into(), id: String::new() } }];
    let create = Request::Create(CreateRequest { path: "/bob".into(), data: Some(b"b".to_vec()), acl: auth, flags: 0 });
    assert_eq!(bob.call(&create).await.unwrap().0.err, 0);
    let named = vec![Acl { perms: perms::ALL, id: Id { scheme: "sasl".into(), id: "bob".into() } }];
    let create = Request::Create(CreateRequest { path: "/bob2".into(), data: None, acl: named, flags: 0 });
    assert_eq!(bob.call(&create).await.unwrap().0.err, 0);
    assert_eq!(get(&mut bob, "/bob").await, 0);

    let mut anonymous = TestClient::connect(server.client_address()).await.unwrap();
    assert_eq!(get(&mut anonymous, "/bob").await, ErrorCode::NoAuth.code());
    let mut admin = TestClient::connect(server.client_address()).await.unwrap();
    assert_eq!(login(&mut admin, "admin", "adminsecret").await, 0);
    assert_eq!(get(&mut admin, "/bob2").await, 0, "superUser=admin reads everything");
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_auth_failed_and_the_connection_closes() {
    let dir = temp_dir("sasl-wrong");
    let server = start_sasl(&dir, "").await;
    let mut eve = TestClient::connect(server.client_address()).await.unwrap();
    assert_eq!(login(&mut eve, "bob", "guess").await, ErrorCode::AuthFailed.code());
    assert!(eve.closed().await, "the connection is closed after a failed login");
    let mut nobody = TestClient::connect(server.client_address()).await.unwrap();
    assert_eq!(login(&mut nobody, "nobody", "x").await, ErrorCode::AuthFailed.code());
    let mut garbage = TestClient::connect(server.client_address()).await.unwrap();
    sasl_step(&mut garbage, b"").await.unwrap();
    assert_eq!(sasl_step(&mut garbage, b"\x00\xff not a digest").await.unwrap().0, ErrorCode::AuthFailed.code());
    server.shutdown().await.unwrap();

    // allowSaslFailedClients: answered OK without a token, the connection stays, unnamed.
    let dir2 = temp_dir("sasl-allow");
    let server = start_sasl(&dir2, "allowSaslFailedClients=true\n").await;
    let mut eve = TestClient::connect(server.client_address()).await.unwrap();
    assert_eq!(login_with(&mut eve, "bob", "guess", false).await, 0);
    assert_eq!(eve.create("/still-here", b"").await.unwrap(), 0);
    server.shutdown().await.unwrap();
    for dir in [dir, dir2] {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test]
async fn session_require_client_sasl_auth_refuses_requests_before_a_login() {
    let dir = temp_dir("sasl-required");
    let server = start_sasl(&dir, "sessionRequireClientSASLAuth=true\n").await;
    let mut anonymous = TestClient::connect(server.client_address()).await.unwrap();
    assert_eq!(get(&mut anonymous, "/").await, ErrorCode::SessionClosedRequireSaslAuth.code());
    assert!(anonymous.closed().await);
    let mut eve = TestClient::connect(server.client_address()).await.unwrap();
    assert_eq!(login(&mut eve, "bob", "guess").await, ErrorCode::SessionClosedRequireSaslAuth.code());
    let mut bob = TestClient::connect(server.client_address()).await.unwrap();
    assert_eq!(login(&mut bob, "bob", "bobsecret").await, 0);
    assert_eq!(get(&mut bob, "/").await, 0);
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
