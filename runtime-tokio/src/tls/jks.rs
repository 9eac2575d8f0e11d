//! A reader for Java KeyStore (JKS) files, the proprietary format of `keytool -storetype JKS`.
//!
//! Layout (big-endian): magic `FEEDFEED`, version 1 or 2, entry count, entries, then a 20-byte
//! SHA-1 of (password as UTF-16BE || "Mighty Aphrodite" || every preceding byte). An entry is a tag
//! (1 = private key, 2 = trusted certificate), an alias (u16 length + modified UTF-8, decoded here as
//! lossy UTF-8) and a u64 timestamp. A private key entry holds a DER `EncryptedPrivateKeyInfo` protected
//! by Sun's proprietary key protector (OID 1.3.6.1.4.1.42.2.17.1.1) plus its certificate chain; a
//! trusted entry holds one certificate. Version 2 prefixes each certificate with its type ("X.509").
//!
//! `read` first walks the framing (borrowing slices only), then checks the integrity digest, and only
//! then decrypts keys, so a wrong store password is reported as [`JksError::WrongPassword`]. Every length
//! is checked against the remaining input: a hostile file yields an error, never a panic, and nothing is
//! allocated beyond the size of the input. Bytes after the digest are ignored, as Java does.
//! JCEKS files, secret-key entries, non-X.509 certificates and other key protection algorithms are refused
//! with [`JksError::Unsupported`].
//!
//! The same password unlocks the store and the keys, as in ZooKeeper (`kmf.init(ks, keyStorePassword)`).
//! EC keys are returned exactly as keytool stored them (PKCS#8 without the optional public key).

use sha1::{Digest, Sha1};
use std::fmt;

const JKS_MAGIC: u32 = 0xFEED_FEED;
const JCEKS_MAGIC: u32 = 0xCECE_CECE;
const DIGEST_LEN: usize = 20;
const WHITENER: &[u8] = b"Mighty Aphrodite";
/// DER body of OID 1.3.6.1.4.1.42.2.17.1.1 (Sun JKS key protector).
const KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];

/// The decoded contents of a JKS file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JksStore {
    /// Private key entries, in file order.
    pub private_keys: Vec<JksPrivateKey>,
    /// Trusted certificate entries (DER), in file order.
    pub trusted: Vec<Vec<u8>>,
}

/// One private key entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JksPrivateKey {
    pub alias: String,
    /// The decrypted key as a DER PKCS#8 `PrivateKeyInfo`.
    pub pkcs8: Vec<u8>,
    /// The certificate chain (DER), leaf first.
    pub chain: Vec<Vec<u8>>,
}

/// Why a JKS file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JksError {
    /// The file does not start with the JKS magic number.
    NotJks,
    /// The file ends in the middle of a field that starts at `offset`.
    Truncated { offset: usize },
    /// The integrity digest does not match: wrong store password, or a corrupted file.
    WrongPassword,
    /// The key protector's check digest does not match: the key has a different password.
    KeyPasswordMismatch { alias: String },
    /// A valid keystore feature this reader does not implement.
    Unsupported(String),
    /// The file violates the format.
    Malformed(String),
}

impl fmt::Display for JksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JksError::NotJks => write!(f, "not a JKS keystore (no FEEDFEED magic)"),
            JksError::Truncated { offset } => write!(f, "JKS keystore is truncated (field at byte {offset})"),
            JksError::WrongPassword => {
                write!(f, "JKS keystore integrity check failed: wrong password or corrupted file")
            }
            JksError::KeyPasswordMismatch { alias } => {
                write!(f, "cannot decrypt the key of entry '{alias}': its password differs from the store password")
            }
            JksError::Unsupported(what) => write!(f, "unsupported JKS keystore content: {what}"),
            JksError::Malformed(what) => write!(f, "malformed JKS keystore: {what}"),
        }
    }
}

impl std::error::Error for JksError {}

/// True if `bytes` starts with the JKS magic number `FEEDFEED`.
pub fn is_jks(bytes: &[u8]) -> bool {
    bytes.starts_with(&JKS_MAGIC.to_be_bytes())
}

/// Parses a JKS file, verifies its integrity digest with `password`, and decrypts every private key
/// with the same password.
pub fn read(bytes: &[u8], password: &str) -> Result<JksStore, JksError> {
    if bytes.starts_with(&JCEKS_MAGIC.to_be_bytes()) {
        return Err(JksError::Unsupported(
            "JCEKS keystores are not supported; convert with keytool -importkeystore to PKCS12".into(),
        ));
    }
    if !is_jks(bytes) {
        return Err(JksError::NotJks);
    }
    let (entries, body_len) = parse_framing(bytes)?;
    let pw = password_bytes(password);
    let digest = Sha1::new().chain_update(&pw).chain_update(WHITENER).chain_update(&bytes[..body_len]).finalize();
    let stored = bytes.get(body_len..body_len + DIGEST_LEN).ok_or(JksError::Truncated { offset: body_len })?;
    if digest.as_slice() != stored {
        return Err(JksError::WrongPassword);
    }
    let mut store = JksStore::default();
    for entry in entries {
        match entry {
            Entry::Key { alias, protected, chain } => {
                let pkcs8 = unprotect_key(protected, &pw).map_err(|e| match e {
                    KeyError::Check => JksError::KeyPasswordMismatch { alias: alias.clone() },
                    KeyError::Other(e) => e,
                })?;
                let chain = chain.into_iter().map(<[u8]>::to_vec).collect();
                store.private_keys.push(JksPrivateKey { alias, pkcs8, chain });
            }
            Entry::Trusted(cert) => store.trusted.push(cert.to_vec()),
        }
    }
    Ok(store)
}

/// Java `char`s as UTF-16BE, two bytes each, no BOM.
fn password_bytes(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// An entry before the integrity check: slices into the input.
enum Entry<'a> {
    Key { alias: String, protected: &'a [u8], chain: Vec<&'a [u8]> },
    Trusted(&'a [u8]),
}

/// Walks the header and entries; returns them and the offset where the trailing digest starts.
fn parse_framing(bytes: &[u8]) -> Result<(Vec<Entry<'_>>, usize), JksError> {
    let mut r = Reader { buf: bytes, pos: 4 };
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(JksError::Unsupported(format!("JKS version {version}")));
    }
    let count = r.u32()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let tag_offset = r.pos;
        let tag = r.u32()?;
        let alias = String::from_utf8_lossy(r.utf()?).into_owned();
        r.take(8)?; // creation date
        let entry = match tag {
            1 => {
                let len = r.u32()? as usize;
                let protected = r.take(len)?;
                let n = r.u32()?;
                let mut chain = Vec::new();
                for _ in 0..n {
                    chain.push(r.cert(version)?);
                }
                Entry::Key { alias, protected, chain }
            }
            2 => Entry::Trusted(r.cert(version)?),
            3 => return Err(JksError::Unsupported(format!("secret key entry '{alias}'"))),
            t => return Err(JksError::Malformed(format!("unknown entry tag {t} at byte {tag_offset}"))),
        };
        entries.push(entry);
    }
    Ok((entries, r.pos))
}

/// A bounds-checked cursor over the input.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JksError> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len());
        let slice = end.and_then(|end| self.buf.get(self.pos..end)).ok_or(JksError::Truncated { offset: self.pos })?;
        self.pos += n;
        Ok(slice)
    }

    fn u16(&mut self) -> Result<u16, JksError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, JksError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Java `DataOutput.writeUTF`: u16 length + modified UTF-8 bytes.
    fn utf(&mut self) -> Result<&'a [u8], JksError> {
        let len = self.u16()? as usize;
        self.take(len)
    }

    /// A certificate: `[v2: UTF type]`, u32 length, DER.
    fn cert(&mut self, version: u32) -> Result<&'a [u8], JksError> {
        if version == 2 {
            let kind = self.utf()?;
            if kind != b"X.509" {
                return Err(JksError::Unsupported(format!("certificate type '{}'", String::from_utf8_lossy(kind))));
            }
        }
        let len = self.u32()? as usize;
        self.take(len)
    }
}

enum KeyError {
    /// The check digest did not match.
    Check,
    Other(JksError),
}

impl From<JksError> for KeyError {
    fn from(e: JksError) -> Self {
        KeyError::Other(e)
    }
}

/// Decrypts a Sun key protector `EncryptedPrivateKeyInfo` into PKCS#8 DER.
fn unprotect_key(der: &[u8], pw: &[u8]) -> Result<Vec<u8>, KeyError> {
    let malformed = |what: &str| JksError::Malformed(format!("protected key: {what}"));
    let (info, rest) = der_tlv(der, 0x30).ok_or_else(|| malformed("not a DER SEQUENCE"))?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes after EncryptedPrivateKeyInfo").into());
    }
    let (alg, info_rest) = der_tlv(info, 0x30).ok_or_else(|| malformed("no AlgorithmIdentifier"))?;
    let (oid, params) = der_tlv(alg, 0x06).ok_or_else(|| malformed("no algorithm OID"))?;
    if oid != KEY_PROTECTOR_OID {
        return Err(JksError::Unsupported(format!("key protection algorithm {}", oid_string(oid))).into());
    }
    if !params.is_empty() && params != [0x05, 0x00] {
        return Err(malformed("unexpected algorithm parameters").into());
    }
    let (data, tail) = der_tlv(info_rest, 0x04).ok_or_else(|| malformed("no encrypted data OCTET STRING"))?;
    if !tail.is_empty() {
        return Err(malformed("trailing bytes in EncryptedPrivateKeyInfo").into());
    }
    if data.len() < 2 * DIGEST_LEN {
        return Err(malformed("encrypted data shorter than salt and check").into());
    }
    let (salt, rest) = data.split_at(DIGEST_LEN);
    let (cipher, check) = rest.split_at(rest.len() - DIGEST_LEN);
    let mut plain = Vec::with_capacity(cipher.len());
    let mut block = salt.to_vec();
    for chunk in cipher.chunks(DIGEST_LEN) {
        block = Sha1::new().chain_update(pw).chain_update(&block).finalize().to_vec();
        plain.extend(chunk.iter().zip(&block).map(|(c, k)| c ^ k));
    }
    let digest = Sha1::new().chain_update(pw).chain_update(&plain).finalize();
    if digest.as_slice() != check {
        return Err(KeyError::Check);
    }
    Ok(plain)
}

/// Splits one DER TLV with the expected single-byte `tag` off the front of `input`:
/// returns (content, rest). Supports long-form lengths up to 4 bytes, bounded by the input.
fn der_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        (len_bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize), rest)
    };
    if len > rest.len() {
        return None;
    }
    Some(rest.split_at(len))
}

/// Dotted form of a DER OID body, for error messages.
fn oid_string(body: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for b in body {
        acc = acc.saturating_mul(128).saturating_add(u64::from(b & 0x7f));
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.extend([first, acc - first * 40]);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/tls/", $name)).as_slice()
        };
    }
    const RSA: &[u8] = fixture!("rsa.jks");
    const PW: &str = "changeit";
    /// DER of OID rsaEncryption and id-ecPublicKey.
    const RSA_OID: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const EC_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn one_key(store: &JksStore) -> &JksPrivateKey {
        assert_eq!(store.private_keys.len(), 1);
        &store.private_keys[0]
    }

    #[test]
    fn reads_rsa_key_and_self_signed_cert() {
        assert!(is_jks(RSA));
        let store = read(RSA, PW).expect("rsa.jks");
        let key = one_key(&store);
        assert_eq!(key.alias, "rsa");
        assert_eq!(key.chain, vec![fixture!("rsa-cert.der").to_vec()]);
        assert_eq!(key.pkcs8[0], 0x30);
        assert!(contains(&key.pkcs8, RSA_OID));
        assert!(store.trusted.is_empty());
    }

    #[test]
    fn reads_ec_key() {
        let store = read(fixture!("ec.jks"), PW).expect("ec.jks");
        let key = one_key(&store);
        assert_eq!(key.chain, vec![fixture!("ec-cert.der").to_vec()]);
        assert!(contains(&key.pkcs8, EC_OID));
        assert_eq!(key.pkcs8.len(), 67, "keytool omits the public key");
    }

    #[test]
    fn reads_ca_signed_chains() {
        let ca = fixture!("ca.der").to_vec();
        let server = read(fixture!("server.jks"), PW).expect("server.jks");
        assert_eq!(one_key(&server).chain.len(), 2);
        assert_eq!(one_key(&server).chain[1], ca);
        let client = read(fixture!("client.jks"), PW).expect("client.jks");
        assert_eq!(one_key(&client).chain, vec![fixture!("client-cert.der").to_vec(), ca]);
    }

    #[test]
    fn reads_truststore() {
        let store = read(fixture!("truststore.jks"), PW).expect("truststore.jks");
        assert!(store.private_keys.is_empty());
        assert_eq!(store.trusted, vec![fixture!("ca.der").to_vec()]);
    }

    #[test]
    fn password_is_utf16() {
        let store = read(fixture!("nonascii.jks"), "pässwörd€").expect("nonascii.jks");
        assert_eq!(one_key(&store).alias, "k");
        assert_eq!(read(fixture!("nonascii.jks"), "p"), Err(JksError::WrongPassword));
    }

    #[test]
    fn wrong_passwords() {
        assert_eq!(read(RSA, "changeme"), Err(JksError::WrongPassword));
        assert_eq!(read(RSA, ""), Err(JksError::WrongPassword));
        let err = read(fixture!("keypass.jks"), PW);
        assert_eq!(err, Err(JksError::KeyPasswordMismatch { alias: "k".into() }));
    }

    #[test]
    fn every_truncation_is_an_error() {
        for file in [RSA, fixture!("truststore.jks"), fixture!("server.jks")] {
            for len in 0..file.len() {
                assert!(read(&file[..len], PW).is_err(), "prefix of {len} bytes");
            }
        }
        assert_eq!(read(&RSA[..RSA.len() - 1], PW), Err(JksError::Truncated { offset: RSA.len() - 20 }));
    }

    #[test]
    fn flipped_bytes_are_errors() {
        let mut copy = RSA.to_vec();
        let mid = copy.len() / 2;
        copy[mid] ^= 0x01;
        assert_eq!(read(&copy, PW), Err(JksError::WrongPassword));
        for i in 4..RSA.len() {
            let mut copy = RSA.to_vec();
            copy[i] ^= 0x80;
            assert!(read(&copy, PW).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn refuses_jceks() {
        let err = read(fixture!("store.jceks"), PW).expect_err("jceks");
        assert!(matches!(&err, JksError::Unsupported(m) if m.contains("JCEKS")), "{err}");
        assert!(!is_jks(fixture!("store.jceks")));
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(read(b"", PW), Err(JksError::NotJks));
        assert_eq!(read(b"\x30\x82\x01\x00", PW), Err(JksError::NotJks));
        let mut x: u32 = 0x1234_5678;
        for len in [3usize, 40, 500, 4096] {
            let mut junk = JKS_MAGIC.to_be_bytes().to_vec();
            junk.extend((0..len).map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            }));
            assert!(read(&junk, PW).is_err());
            assert!(read(&junk[4..], PW).is_err());
        }
        // Huge counts and lengths must fail fast without allocating.
        let huge =
            [&JKS_MAGIC.to_be_bytes()[..], &[0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0xff, 0xff]].concat();
        assert!(matches!(read(&huge, PW), Err(JksError::Truncated { .. })));
        let bad_version = [&JKS_MAGIC.to_be_bytes()[..], &[0, 0, 0, 3]].concat();
        assert!(matches!(read(&bad_version, PW), Err(JksError::Unsupported(_))));
    }

    /// Writes a JKS file the way `sun.security.provider.JavaKeyStore` does (test-only).
    fn write_store(version: u32, pw: &str, key: Option<(&[u8], &[&[u8]])>, trusted: &[&[u8]]) -> Vec<u8> {
        let pwb = password_bytes(pw);
        let cert = |out: &mut Vec<u8>, der: &[u8]| {
            if version == 2 {
                out.extend([0, 5]);
                out.extend(b"X.509");
            }
            out.extend((der.len() as u32).to_be_bytes());
            out.extend(der);
        };
        let mut out = [JKS_MAGIC, version, u32::from(key.is_some()) + trusted.len() as u32]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect::<Vec<u8>>();
        if let Some((plain, chain)) = key {
            out.extend([0, 0, 0, 1, 0, 3]);
            out.extend(b"key");
            out.extend([0u8; 8]);
            let protected = protect(&pwb, plain);
            out.extend((protected.len() as u32).to_be_bytes());
            out.extend(protected);
            out.extend((chain.len() as u32).to_be_bytes());
            chain.iter().for_each(|c| cert(&mut out, c));
        }
        for (i, c) in trusted.iter().enumerate() {
            out.extend([0, 0, 0, 2, 0, 1, b'0' + i as u8]);
            out.extend([0u8; 8]);
            cert(&mut out, c);
        }
        let digest = Sha1::new().chain_update(&pwb).chain_update(WHITENER).chain_update(&out).finalize();
        out.extend(digest);
        out
    }

    fn protect(pw: &[u8], plain: &[u8]) -> Vec<u8> {
        let salt = [7u8; DIGEST_LEN];
        let mut data = salt.to_vec();
        let mut block = salt.to_vec();
        for chunk in plain.chunks(DIGEST_LEN) {
            block = Sha1::new().chain_update(pw).chain_update(&block).finalize().to_vec();
            data.extend(chunk.iter().zip(&block).map(|(p, k)| p ^ k));
        }
        data.extend(Sha1::new().chain_update(pw).chain_update(plain).finalize());
        let alg = [&[0x30, 14, 0x06, 10][..], KEY_PROTECTOR_OID, &[0x05, 0x00]].concat();
        let octets = [&[0x04, 0x82][..], &(data.len() as u16).to_be_bytes(), &data].concat();
        let body = [alg, octets].concat();
        [&[0x30, 0x82][..], &(body.len() as u16).to_be_bytes(), &body].concat()
    }

    #[test]
    fn reads_version_1_and_round_trips() {
        let rsa = read(RSA, PW).expect("rsa.jks");
        let key = one_key(&rsa);
        let ca = fixture!("ca.der");
        for version in [1, 2] {
            let chain = [key.chain[0].as_slice()];
            let bytes = write_store(version, "pw", Some((&key.pkcs8, &chain)), &[ca, ca]);
            let store = read(&bytes, "pw").expect("synthetic store");
            assert_eq!(store.private_keys, vec![JksPrivateKey { alias: "key".into(), ..key.clone() }]);
            assert_eq!(store.trusted, vec![ca.to_vec(), ca.to_vec()]);
        }
    }

    #[test]
    fn der_and_oid_helpers() {
        assert_eq!(der_tlv(&[0x04, 0x81, 0x01, 0xaa, 0xbb], 0x04), Some((&[0xaa][..], &[0xbb][..])));
        assert_eq!(der_tlv(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff], 0x04), None);
        assert_eq!(der_tlv(&[0x04, 0x85, 0, 0, 0, 0, 1, 0], 0x04), None);
        assert_eq!(der_tlv(&[0x04, 0x80], 0x04), None);
        assert_eq!(der_tlv(&[0x30, 0x00], 0x04), None);
        assert_eq!(oid_string(KEY_PROTECTOR_OID), "1.3.6.1.4.1.42.2.17.1.1");
        assert_eq!(oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]), "1.2.840.113549.1.1.1");
        let msg = JksError::Truncated { offset: 9 }.to_string();
        assert!(msg.contains("byte 9"), "{msg}");
    }
}
