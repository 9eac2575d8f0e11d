//! TLS on the client port, as ZooKeeper's Netty server offers it: `secureClientPort` (TLS
//! only) and `client.portUnification` (TLS and plaintext on `clientPort`, told apart by the
//! first byte), with the `ssl.*` settings of [`crate::config::ssl`].
//!
//! - rustls over ring; TLS 1.3 and 1.2 unless `ssl.enabledProtocols` (or, alone,
//!   `ssl.protocol`, as ZooKeeper 3.9 uses it) narrows them; `ssl.ciphersuites` by Java's
//!   names.
//! - `ssl.clientAuth`: `need` (the default) refuses a client without a certificate the trust
//!   store vouches for; `want` verifies one when shown; `none` asks for none.
//! - A verified client certificate gives the connection the identity `x509:<subject>`
//!   (RFC 2253, as Java prints it, [`dn`]), and `super:<subject>` when the subject is
//!   `X509AuthenticationProvider.superUser`.
//! - `client.certReload=true`: the stores' files are looked at (at most once a second, when a
//!   client connects) and a changed store is used for the next handshakes; a store that no
//!   longer loads is logged and the previous one kept.
//!
//! A store that cannot be loaded at start (missing, wrong password, no key) stops zkd.

pub mod dn;
pub mod jks;
pub mod stores;

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio_rustls::TlsAcceptor;
use zk_core::acl::{SCHEME_SUPER, SCHEME_X509};
use zk_core::proto::Id;

use crate::config::ssl::{ClientAuth, SslConfig};
use crate::config::Config;

/// How often, at most, `client.certReload` looks at the stores' files.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The client port's TLS: the current rustls configuration, reloaded when its files change.
pub struct TlsServer {
    ssl: SslConfig,
    super_user: Option<String>,
    current: RwLock<TlsAcceptor>,
    /// `None` without `client.certReload`.
    reload: Option<Mutex<ReloadState>>,
}

struct ReloadState {
    checked: Instant,
    stamps: Vec<Option<SystemTime>>,
}

impl TlsServer {
    /// Loads the stores; any problem is an error for zkd's start.
    pub fn new(config: &Config) -> Result<TlsServer, String> {
        let server_config = server_config(&config.ssl)?;
        let reload = config
            .client_cert_reload
            .then(|| Mutex::new(ReloadState { checked: Instant::now(), stamps: stamps(&config.ssl) }));
        Ok(TlsServer {
            ssl: config.ssl.clone(),
            super_user: config.x509_super_user.clone(),
            current: RwLock::new(TlsAcceptor::from(server_config)),
            reload,
        })
    }

    /// The acceptor for the next handshake, after a reload if the stores changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        if let Some(reload) = &self.reload {
            let mut state = reload.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if state.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
                state.checked = Instant::now();
                let now = stamps(&self.ssl);
                if now != state.stamps {
                    state.stamps = now;
                    match server_config(&self.ssl) {
                        Ok(config) => {
                            tracing::info!("TLS key or trust store changed: reloaded");
                            *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                                TlsAcceptor::from(config);
                        }
                        Err(error) => {
                            tracing::warn!("TLS stores changed but cannot be loaded, keeping the old: {error}")
                        }
                    }
                }
            }
        }
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The identities a finished handshake gives: `x509` (and `super`) from the client's
    /// verified certificate, none without one. An unreadable subject is an error (the
    /// connection is closed, as ZooKeeper closes one whose x509 login fails).
    pub fn identities(&self, connection: &rustls::ServerConnection) -> Result<Vec<Id>, String> {
        let Some(leaf) = connection.peer_certificates().and_then(|chain| chain.first()) else {
            return Ok(Vec::new());
        };
        let subject = dn::rfc2253(leaf)?;
        let mut ids = vec![Id { scheme: SCHEME_X509.to_owned(), id: subject.clone() }];
        if self.super_user.as_deref() == Some(subject.as_str()) {
            ids.push(Id { scheme: SCHEME_SUPER.to_owned(), id: subject });
        }
        Ok(ids)
    }
}

/// The stores' modification times, to notice a change.
fn stamps(ssl: &SslConfig) -> Vec<Option<SystemTime>> {
    [&ssl.key_store.location, &ssl.trust_store.location, &ssl.key_store.password_path, &ssl.trust_store.password_path]
        .into_iter()
        .map(|path| path.as_ref().and_then(|path| std::fs::metadata(path).and_then(|meta| meta.modified()).ok()))
        .collect()
}

#[allow(deprecated)] // ring's provider lacks post-quantum key exchange; aws-lc-rs needs cmake.
fn provider(ssl: &SslConfig) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(wanted) = &ssl.ciphersuites {
        let rustls_name = |java: &str| {
            // Java names TLS 1.3 suites TLS_AES_..., rustls TLS13_AES_...
            match java.strip_prefix("TLS_") {
                Some(rest) if rest.starts_with("AES_") || rest.starts_with("CHACHA20_") => format!("TLS13_{rest}"),
                _ => java.to_owned(),
            }
        };
        let names: Vec<String> = wanted.iter().map(|java| rustls_name(java)).collect();
        provider.cipher_suites.retain(|suite| names.iter().any(|name| suite.suite().as_str() == Some(name.as_str())));
        if provider.cipher_suites.is_empty() {
            return Err(format!(
                "ssl.ciphersuites names no suite zkd has (it has the TLS 1.3 suites and TLS 1.2's ECDHE with AES-GCM or ChaCha20): {}",
                wanted.join(",")
            ));
        }
    }
    Ok(provider)
}

/// The versions `ssl.enabledProtocols` (or `ssl.protocol` alone) allow.
fn versions(ssl: &SslConfig) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let names: Vec<String> = match (&ssl.enabled_protocols, &ssl.protocol) {
        (Some(list), _) => list.clone(),
        (None, Some(protocol)) if protocol != "TLS" => vec![protocol.clone()],
        (None, _) => return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]),
    };
    let mut versions = Vec::new();
    for name in &names {
        match name.as_str() {
            "TLSv1.3" => versions.push(&rustls::version::TLS13),
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            other => tracing::warn!(protocol = other, "zkd speaks TLSv1.2 and TLSv1.3 only; this protocol is left out"),
        }
    }
    if versions.is_empty() {
        return Err(format!("the enabled TLS protocols ({}) include neither TLSv1.2 nor TLSv1.3", names.join(",")));
    }
    Ok(versions)
}

/// The rustls configuration of the settings.
pub fn server_config(ssl: &SslConfig) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(provider(ssl)?);
    let identity = stores::load_identity(&ssl.key_store).map_err(|error| format!("ssl.keyStore: {error}"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(ssl)?)
        .map_err(|error| format!("TLS protocols: {error}"))?;
    let builder = match ssl.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Want | ClientAuth::Need => {
            if ssl.trust_store.location.is_none() {
                return Err(String::from(
                    "ssl.clientAuth is want or need (need is the default) but ssl.trustStore.location is not set; \
                     set it, or ssl.clientAuth=none",
                ));
            }
            let mut roots = RootCertStore::empty();
            for cert in stores::load_trusted(&ssl.trust_store).map_err(|error| format!("ssl.trustStore: {error}"))? {
                roots.add(cert).map_err(|error| format!("ssl.trustStore: a certificate rustls refuses: {error}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier =
                if ssl.client_auth == ClientAuth::Want { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|error| format!("ssl.trustStore: {error}"))?)
        }
    };
    let config = builder
        .with_single_cert(identity.chain, identity.key)
        .map_err(|error| format!("ssl.keyStore: the key and certificate cannot serve TLS: {error}"))?;
    Ok(Arc::new(config))
}
