//! zoo.cfg: ZooKeeper's configuration file format, read into a [`Config`] and mapped onto
//! the core's [`NodeConfig`].
//!
//! The format is Java properties as ZooKeeper writes them: one `key=value` a line, `#` or
//! `!` comments, blank lines ignored, keys and values trimmed. ZooKeeper turns keys it does
//! not know into `zookeeper.<key>` system properties, which is how `4lw.commands.whitelist`,
//! `extendedTypesEnabled`, `jute.maxbuffer` and `superDigest` usually reach it; zkd reads
//! them as ordinary keys, with or without the `zookeeper.` prefix. System properties
//! (`-Dname=value` before the file, `SERVER_JVMFLAGS`, `JVMFLAGS`: [`properties`]) set the
//! same keys; zoo.cfg wins. Every key is looked up in [`keys::KEYS`], which says whether zkd
//! reads it, ignores it (and why) or refuses to start (a security or durability feature it
//! does not have). A key in no table is logged and ignored, unless it looks like a security
//! setting; a value that does not parse is an error naming its line (or property) and key.
//!
//! `server.N=host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]`
//! lines make an ensemble. zkd speaks its quorum protocol, elections included, over one
//! connection per pair of servers on the quorum port; the election port is accepted and
//! validated but not used.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use zk_core::acl::{AuthConfig, Providers};
use zk_core::node::NodeConfig;
use zk_core::proto::{JUTE_MAXBUFFER_DEFAULT, JUTE_MAXBUFFER_EXTRA_SIZE};
use zk_core::request::PrepareConfig;
use zk_core::session::SessionConfig;
use zk_core::zab::ServerId;

pub use keys::Treatment;
pub use properties::Property;

pub mod auth;
pub mod jaas;
pub mod keys;
pub mod properties;
pub mod ssl;

/// ZooKeeper's default `clientPort` (zkd's when none is given).
pub const CLIENT_PORT_DEFAULT: u16 = 2181;
/// ZooKeeper's default `maxClientCnxns`: connections from one IP address; 0 is no limit.
pub const MAX_CLIENT_CNXNS_DEFAULT: usize = 60;
/// ZooKeeper's default `snapCount`.
pub const SNAP_COUNT_DEFAULT: u64 = 100_000;
/// ZooKeeper's default `preAllocSize`, in kilobytes.
pub const PRE_ALLOC_SIZE_KB_DEFAULT: u64 = 65_536;
/// ZooKeeper's `autopurge.snapRetainCount`: its default and its minimum.
pub const SNAP_RETAIN_COUNT_MIN: usize = 3;
/// `groupCommitWaitMicros` when unset, for an ensemble member: the longest a group
/// commit waits for more writes to join it (`storage::commit_wait`). A replicated write
/// already waits for a quorum round trip, and under load fewer, larger flushes on every
/// server kept the 3-server ensemble's p99 at 3-6 ms where flushing at once saw 15 ms
/// (docs/BENCHMARKS.md); a lone write is not held back. A standalone server does not wait:
/// its flush is the whole of a write's latency.
pub const COMMIT_WAIT_ENSEMBLE_DEFAULT_US: u64 = 500;
/// The largest `groupCommitWaitMicros` accepted (100 ms).
pub const COMMIT_WAIT_MAX_US: u64 = 100_000;
/// The data directory of `zkd` started without a configuration file.
pub const DATA_DIR_DEFAULT: &str = "zkd-data";
/// Every four-letter word zkd knows, the set `4lw.commands.whitelist=*` enables.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "isro", "mntr", "ruok", "srst", "srvr", "stat", "wchc", "wchp",
    "wchs",
];

/// Whether a server votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerType {
    Participant,
    Observer,
}

/// One `server.N` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    pub host: String,
    pub quorum_port: u16,
    /// Accepted for compatibility; zkd elects over the quorum connection.
    pub election_port: u16,
    pub peer_type: PeerType,
    /// The client address after `;` (host `0.0.0.0` when only a port is given).
    pub client: Option<(String, u16)>,
}

/// Everything zkd reads from zoo.cfg (and the `myid` file), with ZooKeeper's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub tick_time_ms: i32,
    pub init_limit_ticks: u64,
    pub sync_limit_ticks: u64,
    pub data_dir: PathBuf,
    /// `dataLogDir`, or `dataDir` when unset.
    pub data_log_dir: PathBuf,
    /// `clientPort` (or the port from this server's `server.N` line); 2181 when neither.
    pub client_port: Option<u16>,
    /// `clientPortAddress`; ZooKeeper listens on every address when unset.
    pub client_port_address: Option<String>,
    /// 0 means no limit.
    pub max_client_cnxns: usize,
    /// Unset means two ticks.
    pub min_session_timeout_ms: Option<i32>,
    /// Unset means twenty ticks.
    pub max_session_timeout_ms: Option<i32>,
    pub servers: BTreeMap<ServerId, ServerSpec>,
    /// From the `myid` file for an ensemble; 1 for a standalone server.
    pub server_id: ServerId,
    pub snap_count: u64,
    pub pre_alloc_size_bytes: u64,
    pub snap_retain_count: usize,
    /// 0 disables autopurge.
    pub purge_interval_hours: u64,
    /// `groupCommitWaitMicros` (zkd's own key); unset: [`COMMIT_WAIT_ENSEMBLE_DEFAULT_US`]
    /// for an ensemble member, 0 for a standalone server.
    pub commit_wait_micros: Option<u64>,
    /// The enabled four-letter words (`srvr` always is, as in ZooKeeper).
    pub four_letter_words: BTreeSet<String>,
    pub jute_maxbuffer: usize,
    pub standalone_enabled: bool,
    pub reconfig_enabled: bool,
    pub extended_types_enabled: bool,
    pub super_digest: Option<String>,
    /// `zookeeper.datadir.autocreate`: whether a missing data directory is created.
    pub data_dir_autocreate: bool,
    /// `quorumListenOnAllIPs`: the quorum port listens on every address.
    pub quorum_listen_on_all_ips: bool,
    /// `secureClientPort`: a client port that speaks TLS only.
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`; every address when unset.
    pub secure_client_port_address: Option<String>,
    /// `client.portUnification`: the plain client port takes TLS clients too.
    pub client_port_unification: bool,
    /// `client.certReload`: changed key and trust stores are used without a restart.
    pub client_cert_reload: bool,
    /// The client port's `ssl.*` settings.
    pub ssl: ssl::SslConfig,
    /// `X509AuthenticationProvider.superUser`: the certificate subject that is superuser.
    pub x509_super_user: Option<String>,
    /// SASL and enforced-authentication keys.
    pub auth: auth::AuthSettings,
    /// The SASL logins of the JAAS file's server section (read when the settings are).
    pub sasl: Option<zk_core::sasl::SaslConfig>,
    /// The schemes a connection must authenticate with, if enforced.
    pub enforce_schemes: Option<Vec<String>>,
}

/// Why a configuration cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A line that does not parse: its number (from 1), the key and the problem.
    Line { line: usize, key: String, problem: String },
    /// A system property that cannot be used: the property (`-Dname`, and where it came
    /// from) and the problem.
    Property { property: String, problem: String },
    /// A problem of the file as a whole (a missing `myid`, a server line for this id
    /// missing, ...).
    Invalid(String),
    /// The file could not be read.
    Io { path: PathBuf, problem: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Line { line, key, problem } => write!(f, "line {line}: {key}: {problem}"),
            ConfigError::Property { property, problem } => write!(f, "{property}: {problem}"),
            ConfigError::Invalid(problem) => write!(f, "{problem}"),
            ConfigError::Io { path, problem } => write!(f, "{}: {problem}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Default for Config {
    /// The configuration of `zkd` with no argument: standalone, 127.0.0.1:2181, data in
    /// `./zkd-data`, tickTime 2000.
    fn default() -> Config {
        Config {
            tick_time_ms: SessionConfig::TICK_TIME_DEFAULT_MS,
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            data_dir: PathBuf::from(DATA_DIR_DEFAULT),
            data_log_dir: PathBuf::from(DATA_DIR_DEFAULT),
            client_port: None,
            client_port_address: Some(String::from("127.0.0.1")),
            max_client_cnxns: MAX_CLIENT_CNXNS_DEFAULT,
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
            servers: BTreeMap::new(),
            server_id: 1,
            snap_count: SNAP_COUNT_DEFAULT,
            pre_alloc_size_bytes: PRE_ALLOC_SIZE_KB_DEFAULT * 1024,
            snap_retain_count: SNAP_RETAIN_COUNT_MIN,
            purge_interval_hours: 0,
            commit_wait_micros: None,
            four_letter_words: [String::from("srvr")].into_iter().collect(),
            jute_maxbuffer: JUTE_MAXBUFFER_DEFAULT,
            standalone_enabled: true,
            reconfig_enabled: false,
            extended_types_enabled: false,
            super_digest: None,
            data_dir_autocreate: true,
            quorum_listen_on_all_ips: false,
            secure_client_port: None,
            secure_client_port_address: None,
            client_port_unification: false,
            client_cert_reload: false,
            ssl: ssl::SslConfig::default(),
            x509_super_user: None,
            auth: auth::AuthSettings::default(),
            sasl: None,
            enforce_schemes: None,
        }
    }
}

/// A value that did not parse, before the line number is attached.
type ValueResult<T> = Result<T, String>;

fn parse_number<T: std::str::FromStr>(value: &str) -> ValueResult<T>
where
    T::Err: fmt::Display,
{
    value.parse::<T>().map_err(|error| format!("{value:?} is not a valid number ({error})"))
}

fn parse_positive_i32(value: &str) -> ValueResult<i32> {
    let number: i32 = parse_number(value)?;
    if number <= 0 {
        return Err(format!("{number} must be positive"));
    }
    Ok(number)
}

fn parse_bool(value: &str) -> ValueResult<bool> {
    // Java's Boolean.parseBoolean takes anything but "true" as false; a typo there would
    // silently flip a switch, so zkd insists on one of the two words.
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{value:?} is neither true nor false")),
    }
}

fn parse_port(value: &str) -> ValueResult<u16> {
    let port: u16 = parse_number(value)?;
    if port == 0 {
        return Err(String::from("port 0 is not a port"));
    }
    Ok(port)
}

/// `host:port` or `[v6]:port` split at the last colon outside brackets.
fn split_host_port(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_brackets = false;
    for character in value.chars() {
        match character {
            '[' => in_brackets = true,
            ']' => in_brackets = false,
            ':' if !in_brackets => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        if character != '[' && character != ']' {
            current.push(character);
        }
    }
    parts.push(current);
    parts
}

fn parse_server(value: &str) -> ValueResult<ServerSpec> {
    let format = "expected host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]";
    let mut halves = value.splitn(2, ';');
    let server_part = halves.next().unwrap_or_default().trim();
    let client_part = halves.next().map(str::trim).filter(|part| !part.is_empty());
    if server_part.contains('|') {
        return Err(String::from("multiple addresses (a|b) are not supported"));
    }
    let parts = split_host_port(server_part);
    if !(3..=4).contains(&parts.len()) || parts[0].is_empty() {
        return Err(format!("{value:?}: {format}"));
    }
    let quorum_port = parse_port(&parts[1])?;
    let election_port = parse_port(&parts[2])?;
    let peer_type = match parts.get(3).map(|kind| kind.to_ascii_lowercase()) {
        None => PeerType::Participant,
        Some(kind) if kind == "participant" => PeerType::Participant,
        Some(kind) if kind == "observer" => PeerType::Observer,
        Some(kind) => return Err(format!("unknown peer type {kind:?}: {format}")),
    };
    let client = match client_part {
        None => None,
        Some(part) => {
            // A secure client port after a second ';' is accepted and not served.
            let part = part.split(';').next().unwrap_or_default();
            let client_parts = split_host_port(part);
            match client_parts.as_slice() {
                [port] => Some((String::from("0.0.0.0"), parse_port(port)?)),
                [host, port] if !host.is_empty() => Some((host.clone(), parse_port(port)?)),
                _ => return Err(format!("{value:?}: {format}")),
            }
        }
    };
    Ok(ServerSpec { host: parts[0].clone(), quorum_port, election_port, peer_type, client })
}

/// The authentication providers ZooKeeper ships that zkd always runs; `authProvider.N`
/// naming one of them changes nothing.
const AUTH_PROVIDERS_BUILT_IN: &[&str] = &[
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
    "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
    AUTH_PROVIDER_SASL,
];
const AUTH_PROVIDER_SASL: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// `authProvider.N`: a built-in provider is accepted, any other refused (zkd cannot load a
/// Java class, and a deployment that names one relies on it for its security).
fn check_auth_provider(class: &str) -> ValueResult<()> {
    if AUTH_PROVIDERS_BUILT_IN.contains(&class) {
        return Ok(());
    }
    Err(format!("{class:?} is not supported by zkd: zkd cannot load an authentication provider class"))
}

fn parse_whitelist(value: &str) -> BTreeSet<String> {
    let mut words: BTreeSet<String> = BTreeSet::new();
    for word in value.split(',').map(str::trim).filter(|word| !word.is_empty()) {
        if word == "*" {
            words.extend(FOUR_LETTER_WORDS.iter().map(|word| word.to_string()));
        } else {
            words.insert(word.to_owned());
        }
    }
    // zkServer.sh depends on srvr, so ZooKeeper always enables it.
    words.insert(String::from("srvr"));
    words
}

/// Where a setting came from: a zoo.cfg line or a system property.
#[derive(Clone, Debug)]
enum Origin {
    Line(usize),
    Property(Property),
}

/// One `key=value` before it is applied.
struct Setting {
    key: String,
    value: String,
    origin: Origin,
}

impl Setting {
    fn error(&self, problem: String) -> ConfigError {
        match &self.origin {
            Origin::Line(line) => ConfigError::Line { line: *line, key: self.key.clone(), problem },
            Origin::Property(property) => ConfigError::Property { property: property.to_string(), problem },
        }
    }
}

/// The zoo.cfg lines as settings.
fn file_settings(text: &str) -> Result<Vec<Setting>, ConfigError> {
    let mut settings = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(ConfigError::Line {
                line,
                key: trimmed.to_owned(),
                problem: String::from("expected key=value"),
            });
        };
        settings.push(Setting {
            key: key.trim().to_owned(),
            value: value.trim().to_owned(),
            origin: Origin::Line(line),
        });
    }
    Ok(settings)
}

/// The directories as the settings give them, checked once all are read.
#[derive(Default)]
struct Directories {
    data_dir: Option<PathBuf>,
    data_log_dir: Option<PathBuf>,
}

impl Config {
    /// Parses zoo.cfg text. `myid` is not read here (see [`Config::load`]); an ensemble's
    /// `server_id` is left at 0 until it is.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_sources(Some(text), &[])
    }

    /// The configuration from zoo.cfg text (none: zkd's defaults, [`Config::default`]) and
    /// system properties; zoo.cfg wins where both set a key. Every key goes through
    /// [`keys::lookup`]: read, ignored with its reason, or refused.
    pub fn from_sources(file: Option<&str>, properties: &[Property]) -> Result<Config, ConfigError> {
        let mut config = match file {
            // A file that names no dataDir is refused below; a client port address is
            // only set when the file says so, as in ZooKeeper.
            Some(_) => Config { client_port_address: None, ..Config::default() },
            None => Config::default(),
        };
        let mut directories = Directories::default();
        let mut settings: Vec<Setting> = properties
            .iter()
            .map(|property| Setting {
                key: property.name.clone(),
                value: property.value.clone(),
                origin: Origin::Property(property.clone()),
            })
            .collect();
        if let Some(text) = file {
            settings.extend(file_settings(text)?);
        }
        for setting in &settings {
            config.take(setting, &mut directories)?;
        }
        config.finish(file.is_some(), directories)?;
        Ok(config)
    }

    /// Looks a setting up in the key table and applies, ignores or refuses it.
    fn take(&mut self, setting: &Setting, directories: &mut Directories) -> Result<(), ConfigError> {
        let is_property = matches!(setting.origin, Origin::Property(_));
        if is_property && keys::is_jvm_property(&setting.key) {
            tracing::debug!(property = setting.key, "a JVM property, ignored");
            return Ok(());
        }
        let name = setting.key.strip_prefix("zookeeper.").unwrap_or(&setting.key);
        let Some(row) = keys::lookup(name) else {
            if keys::looks_like_security(name) {
                return Err(setting
                    .error(String::from("an unknown security setting: zkd refuses to start rather than ignore it")));
            }
            tracing::warn!(key = setting.key, "unknown configuration key, ignored");
            return Ok(());
        };
        // ZooKeeper reads these from zoo.cfg only, so as a property it ignores them; zkd too,
        // unless the value asks for a feature it refuses (fail closed either way).
        let file_only = is_property && row.source == keys::Source::File;
        if file_only && row.treatment == Treatment::Read {
            tracing::warn!(key = setting.key, "ZooKeeper reads {name} from zoo.cfg only; the property is ignored");
            return Ok(());
        }
        match row.treatment {
            Treatment::Read => self.apply(name, &setting.value, directories).map_err(|problem| setting.error(problem)),
            Treatment::Ignored(reason) => {
                tracing::info!(key = setting.key, "ignored: {reason}");
                Ok(())
            }
            Treatment::Refused(reason) => Err(setting.error(format!("not supported by zkd: {reason}"))),
            Treatment::RefusedUnless(values, reason) => {
                if values.iter().any(|allowed| allowed.eq_ignore_ascii_case(&setting.value)) {
                    Ok(())
                } else {
                    Err(setting.error(format!("{:?} is not supported by zkd: {reason}", setting.value)))
                }
            }
        }
    }

    /// Applies a key the table marks as read.
    fn apply(&mut self, name: &str, value: &str, directories: &mut Directories) -> ValueResult<()> {
        if self.auth.set(name, value)? {
            return Ok(());
        }
        match name {
            "tickTime" => self.tick_time_ms = parse_positive_i32(value)?,
            "initLimit" => self.init_limit_ticks = parse_positive_i32(value)? as u64,
            "syncLimit" => self.sync_limit_ticks = parse_positive_i32(value)? as u64,
            "dataDir" | "dataLogDir" => {
                if value.is_empty() {
                    return Err(String::from("an empty directory"));
                }
                let slot = if name == "dataDir" { &mut directories.data_dir } else { &mut directories.data_log_dir };
                *slot = Some(PathBuf::from(value));
            }
            "clientPort" => self.client_port = Some(parse_port(value)?),
            "clientPortAddress" => {
                if value.is_empty() {
                    return Err(String::from("an empty address"));
                }
                self.client_port_address = Some(value.to_owned());
            }
            "maxClientCnxns" => self.max_client_cnxns = parse_number(value)?,
            // ZooKeeper takes -1 (or anything not positive) as "the default".
            "minSessionTimeout" => self.min_session_timeout_ms = Some(parse_number::<i32>(value)?).filter(|ms| *ms > 0),
            "maxSessionTimeout" => self.max_session_timeout_ms = Some(parse_number::<i32>(value)?).filter(|ms| *ms > 0),
            "snapCount" => {
                self.snap_count = parse_number(value)?;
                if self.snap_count < 2 {
                    return Err(String::from("snapCount must be at least 2"));
                }
            }
            "preAllocSize" => {
                let kilobytes: u64 = parse_number(value)?;
                self.pre_alloc_size_bytes = kilobytes.checked_mul(1024).ok_or_else(|| String::from("too large"))?;
            }
            "autopurge.snapRetainCount" => {
                let count: usize = parse_number(value)?;
                if count < SNAP_RETAIN_COUNT_MIN {
                    tracing::warn!(
                        "autopurge.snapRetainCount {count} is below the minimum; using {SNAP_RETAIN_COUNT_MIN}"
                    );
                }
                self.snap_retain_count = count.max(SNAP_RETAIN_COUNT_MIN);
            }
            // ZooKeeper reads a negative interval as "disabled", like 0.
            "autopurge.purgeInterval" => self.purge_interval_hours = parse_number::<i64>(value)?.max(0) as u64,
            "groupCommitWaitMicros" => {
                let micros: u64 = parse_number(value)?;
                if micros > COMMIT_WAIT_MAX_US {
                    return Err(format!("at most {COMMIT_WAIT_MAX_US} microseconds"));
                }
                self.commit_wait_micros = Some(micros);
            }
            "4lw.commands.whitelist" => self.four_letter_words = parse_whitelist(value),
            "jute.maxbuffer" => {
                let bytes: usize = parse_number(value)?;
                if bytes == 0 {
                    return Err(String::from("must be positive"));
                }
                self.jute_maxbuffer = bytes;
            }
            "standaloneEnabled" => self.standalone_enabled = parse_bool(value)?,
            "reconfigEnabled" => self.reconfig_enabled = parse_bool(value)?,
            "extendedTypesEnabled" => self.extended_types_enabled = parse_bool(value)?,
            "datadir.autocreate" => self.data_dir_autocreate = parse_bool(value)?,
            "quorumListenOnAllIPs" => self.quorum_listen_on_all_ips = parse_bool(value)?,
            "secureClientPort" => self.secure_client_port = Some(parse_port(value)?),
            "secureClientPortAddress" => {
                if value.is_empty() {
                    return Err(String::from("an empty address"));
                }
                self.secure_client_port_address = Some(value.to_owned());
            }
            "client.portUnification" => self.client_port_unification = parse_bool(value)?,
            "client.certReload" => self.client_cert_reload = parse_bool(value)?,
            "X509AuthenticationProvider.superUser" => self.x509_super_user = Some(value.to_owned()),
            _ if name.starts_with("ssl.") => self.ssl.set(&name["ssl.".len()..], value)?,
            "superDigest" | "DigestAuthenticationProvider.superDigest" => {
                if !value.contains(':') {
                    return Err(String::from("expected super:<base64 sha1 digest>"));
                }
                self.super_digest = Some(value.to_owned());
            }
            _ if name.starts_with("authProvider.") => {
                check_auth_provider(value)?;
                self.auth.sasl_provider |= value == AUTH_PROVIDER_SASL;
            }
            _ if name.starts_with("server.") => {
                let id: ServerId =
                    name["server.".len()..].parse().map_err(|_| String::from("the server id must be a number"))?;
                if self.servers.insert(id, parse_server(value)?).is_some() {
                    return Err(format!("server {id} is defined twice"));
                }
            }
            _ => return Err(String::from("the key table says zkd reads this key, but nothing reads it")),
        }
        Ok(())
    }

    /// The checks of the whole: directories, servers, session timeouts.
    fn finish(&mut self, from_file: bool, directories: Directories) -> Result<(), ConfigError> {
        match directories.data_dir {
            Some(dir) => self.data_dir = dir,
            None if from_file => return Err(ConfigError::Invalid(String::from("dataDir is not set"))),
            None => {}
        }
        self.data_log_dir = directories.data_log_dir.unwrap_or_else(|| self.data_dir.clone());
        if self.servers.is_empty() {
            self.server_id = 1;
        } else {
            self.server_id = 0;
            if !self.servers.values().any(|server| server.peer_type == PeerType::Participant) {
                return Err(ConfigError::Invalid(String::from("no participant among the server.N lines")));
            }
        }
        if self.secure_client_port_address.is_some() && self.secure_client_port.is_none() {
            return Err(ConfigError::Invalid(String::from(
                "secureClientPortAddress is set but secureClientPort is not",
            )));
        }
        if self.serves_tls() && self.ssl.key_store.location.is_none() {
            return Err(ConfigError::Invalid(String::from(
                "TLS on the client port (secureClientPort or client.portUnification) needs ssl.keyStore.location",
            )));
        }
        self.sasl = self.auth.sasl_config().map_err(ConfigError::Invalid)?;
        let x509_on = self.serves_tls() && self.ssl.client_auth != ssl::ClientAuth::None;
        self.enforce_schemes = self.auth.enforced_schemes(x509_on).map_err(ConfigError::Invalid)?;
        let session = self.session_config();
        if session.min_session_timeout_ms > session.max_session_timeout_ms {
            return Err(ConfigError::Invalid(format!(
                "minSessionTimeout {} is above maxSessionTimeout {}",
                session.min_session_timeout_ms, session.max_session_timeout_ms
            )));
        }
        Ok(())
    }

    /// Reads zoo.cfg from `path` (with the system properties) and, for an ensemble, `myid`
    /// from its dataDir.
    pub fn load(path: &Path, properties: &[Property]) -> Result<Config, ConfigError> {
        let io =
            |path: &Path, error: std::io::Error| ConfigError::Io { path: path.to_owned(), problem: error.to_string() };
        let text = std::fs::read_to_string(path).map_err(|error| io(path, error))?;
        let mut config = Config::from_sources(Some(&text), properties)?;
        if !config.servers.is_empty() {
            let myid_path = config.data_dir.join("myid");
            let myid = std::fs::read_to_string(&myid_path).map_err(|error| io(&myid_path, error))?;
            config.set_server_id(myid.trim().parse().map_err(|_| ConfigError::Io {
                path: myid_path.clone(),
                problem: format!("{:?} is not a server id", myid.trim()),
            })?)?;
        }
        Ok(config)
    }

    /// Sets this server's id (from `myid`), which must name one of the `server.N` lines.
    pub fn set_server_id(&mut self, server_id: ServerId) -> Result<(), ConfigError> {
        let Some(spec) = self.servers.get(&server_id) else {
            return Err(ConfigError::Invalid(format!("myid {server_id} has no server.{server_id} line")));
        };
        if let Some((host, port)) = &spec.client {
            // ZooKeeper lets the server line carry the client address; clientPort wins when
            // both are given and they agree (a conflict is ZooKeeper's error too).
            if let Some(client_port) = self.client_port.filter(|client_port| client_port != port) {
                return Err(ConfigError::Invalid(format!(
                    "clientPort {client_port} conflicts with port {port} of server.{server_id}"
                )));
            }
            self.client_port = Some(*port);
            if self.client_port_address.is_none() && host != "0.0.0.0" {
                self.client_port_address = Some(host.clone());
            }
        }
        self.server_id = server_id;
        Ok(())
    }

    /// Whether this is a standalone server: no `server.N` lines, or one with
    /// `standaloneEnabled` (ZooKeeper's rule). Either way it runs as an ensemble of one.
    pub fn is_standalone(&self) -> bool {
        self.servers.is_empty() || (self.servers.len() == 1 && self.standalone_enabled)
    }

    /// The longest a group commit waits for company: `groupCommitWaitMicros`, or by default
    /// [`COMMIT_WAIT_ENSEMBLE_DEFAULT_US`] in an ensemble and none standalone.
    pub fn commit_wait_max(&self) -> Duration {
        let default = if self.is_standalone() { 0 } else { COMMIT_WAIT_ENSEMBLE_DEFAULT_US };
        Duration::from_micros(self.commit_wait_micros.unwrap_or(default))
    }

    pub fn session_config(&self) -> SessionConfig {
        let mut session = SessionConfig::from_tick_time(self.tick_time_ms);
        if let Some(min) = self.min_session_timeout_ms {
            session.min_session_timeout_ms = min;
        }
        if let Some(max) = self.max_session_timeout_ms {
            session.max_session_timeout_ms = max;
        }
        session
    }

    /// Where the client port listens: `clientPortAddress` (every address when unset).
    pub fn client_address(&self) -> Result<SocketAddr, ConfigError> {
        listen_address(self.client_port_address.as_deref(), self.client_port.unwrap_or(CLIENT_PORT_DEFAULT))
    }

    /// Whether any client port speaks TLS.
    pub fn serves_tls(&self) -> bool {
        self.secure_client_port.is_some() || self.client_port_unification
    }

    /// Where the TLS-only client port listens (`secureClientPort`), if there is one.
    pub fn secure_client_address(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(port) = self.secure_client_port else { return Ok(None) };
        listen_address(self.secure_client_port_address.as_deref(), port).map(Some)
    }

    /// The quorum address of a server.
    pub fn quorum_address(&self, server_id: ServerId) -> Result<SocketAddr, ConfigError> {
        let spec = self
            .servers
            .get(&server_id)
            .ok_or_else(|| ConfigError::Invalid(format!("server {server_id} is not configured")))?;
        Ok(SocketAddr::new(resolve_host(&spec.host)?, spec.quorum_port))
    }

    /// Where this server's quorum port listens: its `server.N` address, or every address
    /// with `quorumListenOnAllIPs=true`.
    pub fn quorum_listen_address(&self) -> Result<SocketAddr, ConfigError> {
        let address = self.quorum_address(self.server_id)?;
        if !self.quorum_listen_on_all_ips {
            return Ok(address);
        }
        let any = if address.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
        Ok(SocketAddr::new(any, address.port()))
    }

    /// The core's view of this configuration.
    pub fn node_config(&self) -> NodeConfig {
        let (voters, observers) = if self.servers.is_empty() {
            ([self.server_id].into_iter().collect(), BTreeSet::new())
        } else {
            let of_type = |peer_type: PeerType| -> BTreeSet<ServerId> {
                self.servers.iter().filter(|(_, spec)| spec.peer_type == peer_type).map(|(&id, _)| id).collect()
            };
            (of_type(PeerType::Participant), of_type(PeerType::Observer))
        };
        let mut node = NodeConfig::ensemble(self.server_id, voters, observers);
        node.session = self.session_config();
        node.init_limit_ticks = self.init_limit_ticks;
        node.sync_limit_ticks = self.sync_limit_ticks;
        node.prepare = PrepareConfig {
            extended_types_enabled: self.extended_types_enabled,
            reconfig_enabled: self.reconfig_enabled,
            data_len_max: self.jute_maxbuffer,
            providers: Providers {
                x509: self.serves_tls() && self.ssl.client_auth != ssl::ClientAuth::None,
                sasl: self.auth.sasl_provider,
            },
            ..PrepareConfig::default()
        };
        node.auth = AuthConfig {
            super_digest: self.super_digest.clone(),
            sasl: self.sasl.clone(),
            nonce_secret: 0,
            enforce_schemes: self.enforce_schemes.clone(),
        };
        node.client_frame_bytes_max = self.jute_maxbuffer + JUTE_MAXBUFFER_EXTRA_SIZE;
        node.snapshot_txn_count = self.snap_count;
        node
    }
}

/// A listening address: the configured host (every address when none) and the port.
fn listen_address(host: Option<&str>, port: u16) -> Result<SocketAddr, ConfigError> {
    let ip = match host {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(host) => resolve_host(host)?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// An IP address, or a host name resolved to its first address.
fn resolve_host(host: &str) -> Result<IpAddr, ConfigError> {
    if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(ip);
    }
    use std::net::ToSocketAddrs;
    (host, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .map(|address| address.ip())
        .ok_or_else(|| ConfigError::Invalid(format!("cannot resolve host {host:?}")))
}

#[cfg(test)]
mod tests;
