//! The `ssl.*` keys of the client port (ZooKeeper's `zookeeper.ssl.*` properties, read by
//! its ClientX509Util), as settings; `crate::tls` turns them into a TLS server.

use std::path::PathBuf;

/// A key store's file format (`ssl.keyStore.type`, `ssl.trustStore.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreType {
    Jks,
    Pem,
    Pkcs12,
}

impl StoreType {
    /// The type named by a `*.type` key, case-insensitive as ZooKeeper's.
    fn parse(value: &str) -> Result<StoreType, String> {
        match value.to_ascii_uppercase().as_str() {
            "JKS" => Ok(StoreType::Jks),
            "PEM" => Ok(StoreType::Pem),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "BCFKS" => Err(String::from("BCFKS (BouncyCastle FIPS) stores are not supported by zkd")),
            _ => Err(format!("{value:?} is not a store type (JKS, PEM or PKCS12)")),
        }
    }

    /// The type of a file by its extension, exactly as ZooKeeper's KeyStoreFileType infers it:
    /// `.jks`, `.pem` and `.p12` only, case-sensitive.
    pub fn from_extension(path: &std::path::Path) -> Result<StoreType, String> {
        match path.extension().and_then(|extension| extension.to_str()) {
            Some("jks") => Ok(StoreType::Jks),
            Some("pem") => Ok(StoreType::Pem),
            Some("p12") => Ok(StoreType::Pkcs12),
            _ => Err(format!(
                "{}: cannot tell the store type from the file name (.jks, .pem or .p12); set its .type key",
                path.display()
            )),
        }
    }
}

/// One key store or trust store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreConfig {
    pub location: Option<PathBuf>,
    pub password: String,
    /// A file holding the password; it wins over `password` (one trailing line break is cut).
    pub password_path: Option<PathBuf>,
    pub store_type: Option<StoreType>,
}

/// `ssl.clientAuth`: whether a TLS client must show a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Want,
    /// ZooKeeper's default.
    Need,
}

/// The client port's TLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SslConfig {
    pub key_store: StoreConfig,
    pub trust_store: StoreConfig,
    pub client_auth: ClientAuth,
    /// `ssl.protocol`; with no `enabledProtocols`, the only version offered (as 3.9 does).
    pub protocol: Option<String>,
    pub enabled_protocols: Option<Vec<String>>,
    pub ciphersuites: Option<Vec<String>>,
    /// `ssl.authProvider`: the scheme TLS identities get; only `x509` is built.
    pub auth_provider: String,
}

impl Default for SslConfig {
    fn default() -> SslConfig {
        SslConfig {
            key_store: StoreConfig::default(),
            trust_store: StoreConfig::default(),
            client_auth: ClientAuth::Need,
            protocol: None,
            enabled_protocols: None,
            ciphersuites: None,
            auth_provider: String::from("x509"),
        }
    }
}

/// A comma-separated list, as ZooKeeper splits it.
fn list(value: &str) -> Vec<String> {
    value.split(',').map(|item| item.trim().to_owned()).filter(|item| !item.is_empty()).collect()
}

impl SslConfig {
    /// Sets one `ssl.<suffix>` key.
    pub fn set(&mut self, suffix: &str, value: &str) -> Result<(), String> {
        let store = match suffix.split_once('.') {
            Some(("keyStore", field)) => Some((&mut self.key_store, field)),
            Some(("trustStore", field)) => Some((&mut self.trust_store, field)),
            _ => None,
        };
        if let Some((store, field)) = store {
            match field {
                "location" => store.location = (!value.is_empty()).then(|| PathBuf::from(value)),
                "password" => store.password = value.to_owned(),
                "passwordPath" => store.password_path = (!value.is_empty()).then(|| PathBuf::from(value)),
                "type" => store.store_type = if value.is_empty() { None } else { Some(StoreType::parse(value)?) },
                _ => return Err(String::from("not an ssl key zkd knows")),
            }
            return Ok(());
        }
        match suffix {
            "clientAuth" => {
                self.client_auth = match value.to_ascii_lowercase().as_str() {
                    "" | "need" => ClientAuth::Need,
                    "want" => ClientAuth::Want,
                    "none" => ClientAuth::None,
                    _ => return Err(format!("{value:?} is not none, want or need")),
                }
            }
            "protocol" => self.protocol = (!value.is_empty()).then(|| value.to_owned()),
            "enabledProtocols" => self.enabled_protocols = Some(list(value)).filter(|list| !list.is_empty()),
            "ciphersuites" => self.ciphersuites = Some(list(value)).filter(|list| !list.is_empty()),
            "authProvider" if value.is_empty() || value == "x509" => self.auth_provider = String::from("x509"),
            "authProvider" => return Err(format!("{value:?} is not supported by zkd: TLS identities are x509 only")),
            // The server does not check its TLS clients' host names on the client port
            // (ZooKeeper's ClientX509Util never does); these matter to clients only.
            "hostnameVerification" | "clientHostnameVerification" | "allowReverseDnsLookup" => {
                super::parse_bool(value)?;
            }
            "crl" | "ocsp" => {
                if super::parse_bool(value)? {
                    return Err(format!("ssl.{suffix}=true is not supported by zkd: revocation checks are not built"));
                }
            }
            "context.supplier.class" if value.is_empty() => {}
            "context.supplier.class" => return Err(String::from("zkd cannot load a Java SSLContext supplier class")),
            // Netty's JDK or OpenSSL engine, and the quorum's detection timeout: zkd has rustls.
            "sslProvider" | "handshakeDetectionTimeoutMillis" => {}
            _ => return Err(String::from("not an ssl key zkd knows")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ssl_key_sets_its_field() {
        let mut ssl = SslConfig::default();
        for (key, value) in [
            ("keyStore.location", "/k.jks"),
            ("keyStore.password", "pw"),
            ("keyStore.passwordPath", "/pw"),
            ("keyStore.type", "pkcs12"),
            ("trustStore.location", "/t.pem"),
            ("trustStore.type", "PEM"),
            ("clientAuth", "WANT"),
            ("protocol", "TLSv1.3"),
            ("enabledProtocols", "TLSv1.2, TLSv1.3"),
            ("ciphersuites", "TLS_AES_128_GCM_SHA256"),
            ("hostnameVerification", "false"),
            ("crl", "false"),
        ] {
            ssl.set(key, value).unwrap_or_else(|error| panic!("{key}: {error}"));
        }
        assert_eq!(ssl.key_store.location, Some(PathBuf::from("/k.jks")));
        assert_eq!(ssl.key_store.password_path, Some(PathBuf::from("/pw")));
        assert_eq!(ssl.key_store.store_type, Some(StoreType::Pkcs12));
        assert_eq!(ssl.trust_store.store_type, Some(StoreType::Pem));
        assert_eq!(ssl.client_auth, ClientAuth::Want);
        assert_eq!(ssl.enabled_protocols, Some(vec![String::from("TLSv1.2"), String::from("TLSv1.3")]));
    }

    #[test]
    fn what_zkd_cannot_do_is_an_error() {
        let mut ssl = SslConfig::default();
        for (key, value, problem) in [
            ("keyStore.type", "BCFKS", "not supported"),
            ("keyStore.type", "JCEKS", "not a store type"),
            ("clientAuth", "maybe", "none, want or need"),
            ("crl", "true", "revocation"),
            ("ocsp", "true", "revocation"),
            ("authProvider", "myProvider", "x509 only"),
            ("context.supplier.class", "com.example.Supplier", "class"),
            ("keyStore.colour", "blue", "not an ssl key"),
            ("fancy", "1", "not an ssl key"),
        ] {
            let error = ssl.set(key, value).unwrap_err();
            assert!(error.contains(problem), "{key}={value}: {error}");
        }
    }

    #[test]
    fn store_types_follow_zookeepers_extension_rule() {
        use std::path::Path;
        assert_eq!(StoreType::from_extension(Path::new("/a/b.jks")), Ok(StoreType::Jks));
        assert_eq!(StoreType::from_extension(Path::new("b.p12")), Ok(StoreType::Pkcs12));
        assert_eq!(StoreType::from_extension(Path::new("b.pem")), Ok(StoreType::Pem));
        for name in ["b.pfx", "b.PEM", "b.keystore", "b"] {
            assert!(StoreType::from_extension(Path::new(name)).is_err(), "{name}");
        }
    }
}
