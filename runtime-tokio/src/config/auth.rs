//! The keys of SASL and enforced authentication (ZooKeeper's system properties), as
//! settings; [`AuthSettings::sasl_config`] reads the JAAS file they name.

use std::collections::BTreeSet;
use std::path::PathBuf;

use zk_core::sasl::SaslConfig;

use super::jaas;

/// The authentication schemes zkd has providers for.
const SCHEMES: &[&str] = &["digest", "ip", "x509", "sasl"];

/// SASL and `enforce.auth` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    /// `java.security.auth.login.config`.
    pub jaas_file: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`: the JAAS section of the server's logins.
    pub jaas_section: String,
    /// `authProvider.N=...SASLAuthenticationProvider`: ACLs may name `sasl` ids.
    pub sasl_provider: bool,
    pub super_users: BTreeSet<String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`: DIGEST-MD5 password of `super`.
    pub super_password: Option<String>,
    pub allow_failed_clients: bool,
    pub session_require_sasl: bool,
    pub enforce_enabled: bool,
    pub enforce_schemes: Vec<String>,
    pub remove_host_from_principal: bool,
    pub remove_realm_from_principal: bool,
}

impl Default for AuthSettings {
    fn default() -> AuthSettings {
        AuthSettings {
            jaas_file: None,
            jaas_section: String::from("Server"),
            sasl_provider: false,
            super_users: BTreeSet::new(),
            super_password: None,
            allow_failed_clients: false,
            session_require_sasl: false,
            enforce_enabled: false,
            enforce_schemes: Vec::new(),
            remove_host_from_principal: false,
            remove_realm_from_principal: false,
        }
    }
}

impl AuthSettings {
    /// Sets one key; `false` when the key is not one of these.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, String> {
        let parse_bool = super::parse_bool;
        match name {
            "java.security.auth.login.config" => self.jaas_file = (!value.is_empty()).then(|| PathBuf::from(value)),
            "sasl.serverconfig" => self.jaas_section = value.to_owned(),
            "SASLAuthenticationProvider.superPassword" => self.super_password = Some(value.to_owned()),
            "allowSaslFailedClients" => self.allow_failed_clients = parse_bool(value)?,
            "sessionRequireClientSASLAuth" => self.session_require_sasl = parse_bool(value)?,
            "enforce.auth.enabled" => self.enforce_enabled = parse_bool(value)?,
            "enforce.auth.schemes" => {
                self.enforce_schemes =
                    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            }
            "kerberos.removeHostFromPrincipal" => self.remove_host_from_principal = parse_bool(value)?,
            "kerberos.removeRealmFromPrincipal" => self.remove_realm_from_principal = parse_bool(value)?,
            _ if name == "superUser" || name.starts_with("superUser.") => {
                self.super_users.insert(value.to_owned());
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The schemes a connection must hold one of, if authentication is enforced
    /// (`sessionRequireClientSASLAuth` wins and means `sasl`).
    pub fn enforced_schemes(&self, x509_on: bool) -> Result<Option<Vec<String>>, String> {
        if self.session_require_sasl {
            return Ok(Some(vec![String::from("sasl")]));
        }
        if !self.enforce_enabled {
            return Ok(None);
        }
        if self.enforce_schemes.is_empty() {
            return Err(String::from("enforce.auth.enabled=true needs enforce.auth.schemes"));
        }
        for scheme in &self.enforce_schemes {
            let on = match scheme.as_str() {
                "sasl" => self.jaas_file.is_some(),
                "x509" => x509_on,
                other => SCHEMES.contains(&other),
            };
            if !on {
                return Err(format!("enforce.auth.schemes names {scheme:?}, which no configured provider gives"));
            }
        }
        Ok(Some(self.enforce_schemes.clone()))
    }

    /// The SASL configuration: the JAAS file's server section read (an error if the file or
    /// section is missing, or names a login module zkd lacks); `None` without a JAAS file.
    pub fn sasl_config(&self) -> Result<Option<SaslConfig>, String> {
        let Some(path) = &self.jaas_file else {
            if self.session_require_sasl {
                return Err(String::from(
                    "sessionRequireClientSASLAuth needs a JAAS file (java.security.auth.login.config)",
                ));
            }
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
        let jaas = jaas::parse(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        let mut users =
            jaas::digest_users(&jaas, &self.jaas_section).map_err(|error| format!("{}: {error}", path.display()))?;
        if let Some(password) = &self.super_password {
            users.insert(String::from("super"), password.clone());
        }
        Ok(Some(SaslConfig {
            users,
            super_users: self.super_users.clone(),
            remove_host_from_principal: self.remove_host_from_principal,
            remove_realm_from_principal: self.remove_realm_from_principal,
            allow_failed_clients: self.allow_failed_clients,
        }))
    }
}
