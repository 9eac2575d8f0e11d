//! Key stores and trust stores as ZooKeeper deployments keep them: PEM, PKCS12 and JKS.
//!
//! The type is the store's `.type` key, or else its file extension (`.jks`, `.pem`, `.p12`,
//! exactly as ZooKeeper infers it). Like Java's keystore (whose JKS and PKCS12 types read
//! each other's files), a JKS or PKCS12 store is then read by its content: the JKS magic
//! number or a DER sequence. One password opens the store and its key, as in ZooKeeper; a
//! `passwordPath` file wins over `password`. A PEM key store holds the private key (PKCS#8,
//! encrypted when a password is given) and its certificate chain in one file; a PEM trust
//! store, every certificate in its file.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::jks;
use crate::config::ssl::{StoreConfig, StoreType};

/// A store that cannot be used: the file and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    pub path: PathBuf,
    pub problem: String,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// A server's certificate chain (leaf first) and private key.
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// What a store file holds.
#[derive(Default)]
struct Contents {
    /// PKCS#8 keys with their chains.
    keys: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    trusted: Vec<Vec<u8>>,
}

/// The key store's one private key and its chain.
pub fn load_identity(store: &StoreConfig) -> Result<ServerIdentity, StoreError> {
    let path = location(store, "ssl.keyStore.location")?;
    let error = |problem: String| StoreError { path: path.to_owned(), problem };
    let contents = read(store, path)?;
    let mut keys = contents.keys.into_iter();
    let (pkcs8, chain) = keys.next().ok_or_else(|| error(String::from("holds no private key")))?;
    if keys.next().is_some() {
        tracing::warn!(path = %path.display(), "the key store holds several private keys; zkd uses the first");
    }
    if chain.is_empty() {
        return Err(error(String::from("its private key comes without a certificate")));
    }
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(with_public_key(pkcs8)));
    Ok(ServerIdentity { chain: chain.into_iter().map(CertificateDer::from).collect(), key })
}

/// Every trusted certificate of the trust store (for a JKS or PKCS12 store, its trusted
/// certificate entries; for PEM, each certificate in the file).
pub fn load_trusted(store: &StoreConfig) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let path = location(store, "ssl.trustStore.location")?;
    let contents = read(store, path)?;
    if contents.trusted.is_empty() {
        return Err(StoreError { path: path.to_owned(), problem: String::from("holds no trusted certificate") });
    }
    Ok(contents.trusted.into_iter().map(CertificateDer::from).collect())
}

/// The store's file, or an error naming the key that should give it.
fn location<'a>(store: &'a StoreConfig, key: &str) -> Result<&'a Path, StoreError> {
    store.location.as_deref().ok_or_else(|| StoreError { path: PathBuf::from(key), problem: String::from("not set") })
}

/// The store's password: the `passwordPath` file's text without one trailing line break,
/// or `password`.
fn password(store: &StoreConfig) -> Result<String, StoreError> {
    let Some(path) = &store.password_path else { return Ok(store.password.clone()) };
    let text = std::fs::read_to_string(path)
        .map_err(|error| StoreError { path: path.clone(), problem: format!("cannot read the password: {error}") })?;
    let text = text.strip_suffix('\n').map(|text| text.strip_suffix('\r').unwrap_or(text)).unwrap_or(&text);
    Ok(text.to_owned())
}

fn read(store: &StoreConfig, path: &Path) -> Result<Contents, StoreError> {
    let error = |problem: String| StoreError { path: path.to_owned(), problem };
    let store_type = match store.store_type {
        Some(store_type) => store_type,
        None => StoreType::from_extension(path).map_err(|problem| StoreError { path: path.to_owned(), problem })?,
    };
    let password = password(store)?;
    let bytes = std::fs::read(path).map_err(|io| error(format!("cannot read it: {io}")))?;
    match store_type {
        StoreType::Pem => read_pem(&bytes, &password).map_err(error),
        StoreType::Jks | StoreType::Pkcs12 if jks::is_jks(&bytes) => read_jks(&bytes, &password).map_err(error),
        StoreType::Jks | StoreType::Pkcs12 => read_pkcs12(&bytes, &password).map_err(error),
    }
}

fn read_jks(bytes: &[u8], password: &str) -> Result<Contents, String> {
    let store = jks::read(bytes, password).map_err(|error| format!("a JKS store that cannot be read: {error}"))?;
    Ok(Contents {
        keys: store.private_keys.into_iter().map(|key| (key.pkcs8, key.chain)).collect(),
        trusted: store.trusted,
    })
}

fn read_pkcs12(bytes: &[u8], password: &str) -> Result<Contents, String> {
    use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
    let store = KeyStore::from_pkcs12(bytes, password, Pkcs12ImportPolicy::Strict).map_err(|error| {
        format!("a PKCS12 store that cannot be read (a wrong password, or not PKCS12 or JKS): {error}")
    })?;
    let mut contents = Contents::default();
    for (_, entry) in store.entries() {
        match entry {
            KeyStoreEntry::PrivateKeyChain(chain) => contents.keys.push((
                chain.key().as_der().to_vec(),
                chain.certs().iter().map(|cert| cert.as_der().to_vec()).collect(),
            )),
            KeyStoreEntry::Certificate(cert) => contents.trusted.push(cert.as_der().to_vec()),
            KeyStoreEntry::Secret(_) => {}
        }
    }
    Ok(contents)
}

fn read_pem(bytes: &[u8], password: &str) -> Result<Contents, String> {
    let certificates = CertificateDer::pem_slice_iter(bytes)
        .map(|cert| cert.map(|cert| cert.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("a PEM file that cannot be read: {error}"))?;
    let text = String::from_utf8_lossy(bytes);
    let key = if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        Some(decrypt_pem_key(bytes, password)?)
    } else {
        match PrivateKeyDer::from_pem_slice(bytes) {
            Ok(PrivateKeyDer::Pkcs8(key)) => Some(key.secret_pkcs8_der().to_vec()),
            Ok(_) => return Err(String::from("its private key is not PKCS#8 (BEGIN PRIVATE KEY), as ZooKeeper needs")),
            Err(rustls_pki_types::pem::Error::NoItemsFound) => None,
            Err(error) => return Err(format!("a PEM private key that cannot be read: {error}")),
        }
    };
    Ok(Contents { keys: key.into_iter().map(|key| (key, certificates.clone())).collect(), trusted: certificates })
}

fn decrypt_pem_key(bytes: &[u8], password: &str) -> Result<Vec<u8>, String> {
    use pkcs8::der::Decode;
    let text = String::from_utf8_lossy(bytes);
    let begin = text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----").unwrap_or(0);
    let end_marker = "-----END ENCRYPTED PRIVATE KEY-----";
    let end = text[begin..].find(end_marker).map(|at| begin + at + end_marker.len());
    let block = end.map(|end| &text[begin..end]).ok_or_else(|| String::from("an unterminated encrypted key"))?;
    let (_, der) = pkcs8::der::pem::decode_vec(block.as_bytes())
        .map_err(|error| format!("an encrypted PEM key that cannot be read: {error}"))?;
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der)
        .map_err(|error| format!("an encrypted PEM key that cannot be read: {error}"))?;
    let document = info
        .decrypt(password)
        .map_err(|error| format!("cannot decrypt the private key (a wrong password?): {error}"))?;
    Ok(document.as_bytes().to_vec())
}

/// Java writes an EC private key without its optional public key, which ring refuses; an
/// EC key on P-256 or P-384 is written again with it. Other keys are returned as they are.
fn with_public_key(pkcs8_der: Vec<u8>) -> Vec<u8> {
    use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    if let Ok(key) = p256::SecretKey::from_pkcs8_der(&pkcs8_der) {
        if let Ok(document) = key.to_pkcs8_der() {
            return document.as_bytes().to_vec();
        }
    }
    if let Ok(key) = p384::SecretKey::from_pkcs8_der(&pkcs8_der) {
        if let Ok(document) = key.to_pkcs8_der() {
            return document.as_bytes().to_vec();
        }
    }
    pkcs8_der
}
