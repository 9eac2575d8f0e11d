//! TLS on the client port, against the fixtures in tests/fixtures/tls (a test CA, a server
//! certificate in JKS, PKCS12 and PEM stores, client certificates good, expired and
//! untrusted): the store formats, `ssl.clientAuth`, x509 identities and their superuser,
//! port unification, certificate reload, and every bad input's answer.

// Tests drive real sockets, files and clocks.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{four_letter, free_port, standalone_cfg, temp_dir, TestClient, TIMEOUT};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use zk_core::proto::perms;
use zk_core::proto::{Acl, CreateRequest, GetAclRequest, Id, Request, Response};
use zk_runtime_tokio::config::Config;
use zk_runtime_tokio::{start, ServerError, ServerHandle};

const CLIENT_SUBJECT: &str = "CN=zk-client,OU=Clients,O=Example\\, Inc,C=US";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

/// A standalone server with a secure client port; `extra` adds zoo.cfg lines.
async fn start_tls(dir: &Path, extra: &str) -> Result<ServerHandle, ServerError> {
    let text = format!(
        "{}secureClientPort={}\nsecureClientPortAddress=127.0.0.1\nssl.keyStore.password=changeit\n\
         ssl.trustStore.password=changeit\n{extra}",
        standalone_cfg(dir, free_port()),
        free_port()
    );
    start(Config::parse(&text).expect("the test's zoo.cfg parses")).await
}

/// Who the client is: a certificate and key from the fixtures, or none.
type ClientCert = Option<(&'static str, &'static str)>;

fn client_config(cert: ClientCert) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(fixture("ca.pem")).unwrap()).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    match cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(fixture(cert)).unwrap().map(Result::unwrap).collect();
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(fixture(key)).unwrap()).unwrap()
        }
    }
}

async fn tls_stream(address: SocketAddr, cert: ClientCert) -> std::io::Result<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(Arc::new(client_config(cert)));
    let tcp = TcpStream::connect(address).await?;
    tokio::time::timeout(TIMEOUT, connector.connect(ServerName::try_from("localhost").unwrap(), tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// A session over TLS, or the error that stopped it (a failed handshake, or a connection
/// the server closed right after it).
async fn tls_session(address: SocketAddr, cert: ClientCert) -> std::io::Result<TestClient<TlsStream<TcpStream>>> {
    TestClient::connect_over(tls_stream(address, cert).await?).await
}

const GOOD: ClientCert = Some(("client-cert.pem", "client-key.pem"));

fn auth_all() -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: Id { scheme: "auth".into(), id: String::new() } }]
}

async fn create_with_acl<S>(client: &mut TestClient<S>, path: &str, acl: Vec<Acl>) -> i32
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let request = Request::Create(CreateRequest { path: path.into(), data: Some(b"v".to_vec()), acl, flags: 0 });
    client.call(&request).await.unwrap().0.err
}

async fn acl_of<S>(client: &mut TestClient<S>, path: &str) -> Vec<Acl>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match client.call(&Request::GetAcl(GetAclRequest { path: path.into() })).await.unwrap() {
        (header, Response::GetAcl(response)) if header.err == 0 => response.acl,
        other => panic!("getACL {path}: {other:?}"),
    }
}

#[tokio::test]
async fn every_store_format_serves_tls_and_a_client_certificate_is_an_x509_identity() {
    let stores = [("server.jks", "truststore.jks"), ("server.p12", "truststore.p12"), ("server.pem", "ca.pem")];
    for (key_store, trust_store) in stores {
        let dir = temp_dir("tls-formats");
        let extra = format!(
            "ssl.keyStore.location={}\nssl.trustStore.location={}\n",
            fixture(key_store).display(),
            fixture(trust_store).display()
        );
        let mut server = start_tls(&dir, &extra).await.unwrap_or_else(|error| panic!("{key_store}: {error}"));
        server.serving().await;
        let secure = server.secure_client_address().expect("a secure port");
        let mut client = tls_session(secure, GOOD).await.unwrap_or_else(|error| panic!("{key_store}: {error}"));
        assert_eq!(create_with_acl(&mut client, "/mine", auth_all()).await, 0, "{key_store}");
        let expected = Acl { perms: perms::ALL, id: Id { scheme: "x509".into(), id: CLIENT_SUBJECT.into() } };
        assert_eq!(acl_of(&mut client, "/mine").await, vec![expected], "{key_store}");
        assert_eq!(client.get_data("/mine", false).await.unwrap(), Some(b"v".to_vec()));
        // The plaintext port is still there, and its clients are not the certificate's owner.
        let mut plain = TestClient::connect(server.client_address()).await.unwrap();
        let (header, _) = plain
            .call(&Request::GetData(zk_core::proto::GetDataRequest { path: "/mine".into(), watch: false }))
            .await
            .unwrap();
        assert_eq!(header.err, zk_core::error::ErrorCode::NoAuth.code(), "{key_store}");
        server.shutdown().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test]
async fn clients_without_a_trusted_certificate_are_refused_and_the_server_serves_on() {
    let dir = temp_dir("tls-refused");
    let extra = format!(
        "ssl.keyStore.location={}\nssl.trustStore.location={}\n",
        fixture("server.p12").display(),
        fixture("truststore.jks").display()
    );
    let mut server = start_tls(&dir, &extra).await.unwrap();
    server.serving().await;
    let secure = server.secure_client_address().unwrap();
    let refused: [(&str, ClientCert); 3] = [
        ("no certificate (ssl.clientAuth defaults to need)", None),
        ("an untrusted certificate", Some(("untrusted-client-cert.pem", "untrusted-client-key.pem"))),
        ("an expired certificate", Some(("expired-client-cert.pem", "expired-client-key.pem"))),
    ];
    for (what, cert) in refused {
        assert!(tls_session(secure, cert).await.is_err(), "{what} was let in");
    }
    // A plaintext client on the TLS port, a TLS client on the plaintext port: closed.
    assert!(TestClient::connect(secure).await.is_err(), "plaintext on the TLS port");
    assert!(tls_session(server.client_address(), GOOD).await.is_err(), "TLS on the plaintext port");
    let mut raw = TcpStream::connect(secure).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut raw, b"\x16\x03\x01\x00\x05hello").await.unwrap();
    drop(raw);
    let mut client = tls_session(secure, GOOD).await.expect("a good client after the bad ones");
    assert_eq!(create_with_acl(&mut client, "/after", zk_core::acl::open_acl_unsafe()).await, 0);
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn client_auth_want_and_none_let_clients_in_without_a_certificate() {
    for (mode, identity_expected) in [("want", true), ("none", false)] {
        let dir = temp_dir("tls-want");
        let extra = format!(
            "ssl.clientAuth={mode}\nssl.keyStore.location={}\nssl.trustStore.location={}\n",
            fixture("server.pem").display(),
            fixture("ca.pem").display()
        );
        let mut server = start_tls(&dir, &extra).await.unwrap();
        server.serving().await;
        let secure = server.secure_client_address().unwrap();
        let mut anonymous = tls_session(secure, None).await.unwrap_or_else(|error| panic!("{mode}: {error}"));
        assert_eq!(create_with_acl(&mut anonymous, "/open", zk_core::acl::open_acl_unsafe()).await, 0);
        let mut known = tls_session(secure, GOOD).await.unwrap();
        let expected = if identity_expected { 0 } else { zk_core::error::ErrorCode::InvalidAcl.code() };
        assert_eq!(create_with_acl(&mut known, "/mine", auth_all()).await, expected, "{mode}");
        if mode == "want" {
            let untrusted = Some(("untrusted-client-cert.pem", "untrusted-client-key.pem"));
            assert!(tls_session(secure, untrusted).await.is_err(), "want still verifies a certificate shown");
        }
        server.shutdown().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test]
async fn the_configured_superuser_certificate_reads_what_others_cannot() {
    let dir = temp_dir("tls-super");
    let extra = format!(
        "ssl.keyStore.location={}\nssl.trustStore.location={}\nX509AuthenticationProvider.superUser={CLIENT_SUBJECT}\n",
        fixture("server.jks").display(),
        fixture("ca.pem").display()
    );
    let mut server = start_tls(&dir, &extra).await.unwrap();
    server.serving().await;
    let mut plain = TestClient::connect(server.client_address()).await.unwrap();
    let nobody = vec![Acl { perms: perms::ALL, id: Id { scheme: "digest".into(), id: "nobody:x".into() } }];
    assert_eq!(create_with_acl(&mut plain, "/secret", nobody).await, 0);
    let mut superuser = tls_session(server.secure_client_address().unwrap(), GOOD).await.unwrap();
    assert_eq!(superuser.get_data("/secret", false).await.unwrap(), Some(b"v".to_vec()));
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn port_unification_serves_tls_plaintext_and_four_letter_words_on_one_port() {
    let dir = temp_dir("tls-unified");
    let text = format!(
        "{}client.portUnification=true\nssl.keyStore.location={}\nssl.keyStore.password=changeit\n\
         ssl.trustStore.location={}\nssl.trustStore.password=changeit\n",
        standalone_cfg(&dir, free_port()),
        fixture("server.p12").display(),
        fixture("truststore.p12").display()
    );
    let mut server = start(Config::parse(&text).unwrap()).await.unwrap();
    server.serving().await;
    let address = server.client_address();
    assert_eq!(server.secure_client_address(), None);
    let mut secure = tls_session(address, GOOD).await.unwrap();
    assert_eq!(create_with_acl(&mut secure, "/t", auth_all()).await, 0);
    let mut plain = TestClient::connect(address).await.unwrap();
    assert_eq!(plain.create("/p", b"").await.unwrap(), 0);
    assert_eq!(four_letter(address, "ruok").await.unwrap(), "imok");
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn stores_that_cannot_be_used_stop_zkd_at_start_naming_them() {
    let dir = temp_dir("tls-bad-stores");
    let garbage = dir.join("garbage.p12");
    std::fs::write(&garbage, b"not a key store at all").unwrap();
    let jks = fixture("server.jks").display().to_string();
    let cases: Vec<(String, &str)> = vec![
        (format!("ssl.keyStore.location={jks}\nssl.keyStore.password=wrong\nssl.clientAuth=none\n"), "server.jks"),
        (
            format!(
                "ssl.keyStore.location={}\nssl.keyStore.password=wrong\nssl.clientAuth=none\n",
                fixture("server.p12").display()
            ),
            "wrong password",
        ),
        (format!("ssl.keyStore.location={}\nssl.clientAuth=none\n", dir.join("missing.jks").display()), "missing.jks"),
        (format!("ssl.keyStore.location={}\nssl.clientAuth=none\n", garbage.display()), "garbage.p12"),
        (
            format!("ssl.keyStore.location={}\nssl.clientAuth=none\n", fixture("truststore.jks").display()),
            "no private key",
        ),
        (format!("ssl.keyStore.location={}\nssl.clientAuth=none\n", fixture("ca.der").display()), "store type"),
        (format!("ssl.keyStore.location={jks}\n"), "ssl.trustStore.location is not set"),
        (
            format!("ssl.keyStore.location={jks}\nssl.trustStore.location={}\n", fixture("client.jks").display()),
            "no trusted certificate",
        ),
        (
            format!("ssl.keyStore.location={jks}\nssl.clientAuth=none\nssl.enabledProtocols=TLSv1.1\n"),
            "neither TLSv1.2 nor TLSv1.3",
        ),
        (
            format!("ssl.keyStore.location={jks}\nssl.clientAuth=none\nssl.ciphersuites=TLS_RSA_WITH_RC4_128_MD5\n"),
            "no suite",
        ),
    ];
    for (extra, problem) in cases {
        // start_tls sets the passwords to changeit first; a later line wins.
        let error = match start_tls(&dir, &extra).await {
            Ok(_) => panic!("{extra:?} started"),
            Err(error) => error.to_string(),
        };
        assert!(error.starts_with("TLS: ") && error.contains(problem), "{extra:?}: {error}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn changed_stores_are_used_without_a_restart_with_cert_reload() {
    let dir = temp_dir("tls-reload");
    let key_store = dir.join("server.pem");
    std::fs::copy(fixture("server.pem"), &key_store).unwrap();
    let extra = format!("client.certReload=true\nssl.clientAuth=none\nssl.keyStore.location={}\n", key_store.display());
    let mut server = start_tls(&dir, &extra).await.unwrap();
    server.serving().await;
    let secure = server.secure_client_address().unwrap();
    tls_session(secure, None).await.expect("the CA's server certificate");

    // A certificate the client does not trust: new handshakes fail once it is noticed.
    let untrusted = [fixture("untrusted-client-key.pem"), fixture("untrusted-client-cert.pem")]
        .map(|path| std::fs::read(path).unwrap())
        .concat();
    std::fs::write(&key_store, untrusted).unwrap();
    let changed = tokio::time::timeout(Duration::from_secs(10), async {
        while tls_session(secure, None).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    changed.await.expect("the new certificate is served within seconds");
    // A store that no longer loads keeps the last good one.
    std::fs::write(&key_store, b"broken").unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(tls_session(secure, None).await.is_err(), "still the untrusted certificate");
    std::fs::copy(fixture("server.pem"), &key_store).unwrap();
    let back = tokio::time::timeout(Duration::from_secs(10), async {
        while tls_session(secure, None).await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    back.await.expect("the CA's certificate again");
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
