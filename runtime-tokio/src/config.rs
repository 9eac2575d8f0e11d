//! zoo.cfg: ZooKeeper's configuration file format, read into a [`Config`] and mapped onto
//! the core's [`NodeConfig`].
//!
//! The format is Java properties as ZooKeeper writes them: one `key=value` a line, `#` or
//! `!` comments, blank lines ignored, keys and values trimmed. ZooKeeper turns keys it does
//! not know into `zookeeper.<key>` system properties, which is how `4lw.commands.whitelist`,
//! `extendedTypesEnabled`, `jute.maxbuffer` and `superDigest` usually reach it; zkd reads
//! them as ordinary keys, with or without the `zookeeper.` prefix. Unknown keys are logged
//! and ignored; a value that does not parse is an error naming its line and key.
//!
//! `server.N=host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]`
//! lines make an ensemble. zkd speaks its quorum protocol, elections included, over one
//! connection per pair of servers on the quorum port; the election port is accepted and
//! validated but not used.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use zk_core::acl::AuthConfig;
use zk_core::node::NodeConfig;
use zk_core::proto::{JUTE_MAXBUFFER_DEFAULT, JUTE_MAXBUFFER_EXTRA_SIZE};
use zk_core::request::PrepareConfig;
use zk_core::session::SessionConfig;
use zk_core::zab::ServerId;

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
}

/// Why a configuration cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A line that does not parse: its number (from 1), the key and the problem.
    Line { line: usize, key: String, problem: String },
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

impl Config {
    /// Parses zoo.cfg text. `myid` is not read here (see [`Config::load`]); an ensemble's
    /// `server_id` is left at 0 until it is.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config {
            // A file that names no dataDir is refused below; a client port address is
            // only set when the file says so, as in ZooKeeper.
            client_port_address: None,
            ..Config::default()
        };
        let mut data_dir: Option<PathBuf> = None;
        let mut data_log_dir: Option<PathBuf> = None;
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
            let (key, value) = (key.trim(), value.trim());
            let error = |problem: String| ConfigError::Line { line, key: key.to_owned(), problem };
            let name = key.strip_prefix("zookeeper.").unwrap_or(key);
            match name {
                "tickTime" => config.tick_time_ms = parse_positive_i32(value).map_err(error)?,
                "initLimit" => config.init_limit_ticks = parse_positive_i32(value).map_err(error)? as u64,
                "syncLimit" => config.sync_limit_ticks = parse_positive_i32(value).map_err(error)? as u64,
                "dataDir" | "dataLogDir" => {
                    if value.is_empty() {
                        return Err(error(String::from("an empty directory")));
                    }
                    let slot = if name == "dataDir" { &mut data_dir } else { &mut data_log_dir };
                    *slot = Some(PathBuf::from(value));
                }
                "clientPort" => config.client_port = Some(parse_port(value).map_err(error)?),
                "clientPortAddress" => {
                    if value.is_empty() {
                        return Err(error(String::from("an empty address")));
                    }
                    config.client_port_address = Some(value.to_owned());
                }
                "maxClientCnxns" => config.max_client_cnxns = parse_number(value).map_err(error)?,
                // ZooKeeper takes -1 (or anything not positive) as "the default".
                "minSessionTimeout" | "maxSessionTimeout" => {
                    let number: i32 = parse_number(value).map_err(error)?;
                    let slot = if name == "minSessionTimeout" {
                        &mut config.min_session_timeout_ms
                    } else {
                        &mut config.max_session_timeout_ms
                    };
                    *slot = (number > 0).then_some(number);
                }
                "snapCount" => {
                    config.snap_count = parse_number(value).map_err(error)?;
                    if config.snap_count < 2 {
                        return Err(error(String::from("snapCount must be at least 2")));
                    }
                }
                "preAllocSize" => {
                    let kilobytes: u64 = parse_number(value).map_err(error)?;
                    config.pre_alloc_size_bytes =
                        kilobytes.checked_mul(1024).ok_or_else(|| error("too large".into()))?;
                }
                "autopurge.snapRetainCount" => {
                    let count: usize = parse_number(value).map_err(error)?;
                    if count < SNAP_RETAIN_COUNT_MIN {
                        tracing::warn!(
                            line,
                            "autopurge.snapRetainCount {count} is below the minimum; using {SNAP_RETAIN_COUNT_MIN}"
                        );
                    }
                    config.snap_retain_count = count.max(SNAP_RETAIN_COUNT_MIN);
                }
                "autopurge.purgeInterval" => {
                    // ZooKeeper reads a negative interval as "disabled", like 0.
                    let hours: i64 = parse_number(value).map_err(error)?;
                    config.purge_interval_hours = hours.max(0) as u64;
                }
                "groupCommitWaitMicros" => {
                    let micros: u64 = parse_number(value).map_err(error)?;
                    if micros > COMMIT_WAIT_MAX_US {
                        return Err(error(format!("at most {COMMIT_WAIT_MAX_US} microseconds")));
                    }
                    config.commit_wait_micros = Some(micros);
                }
                "4lw.commands.whitelist" => config.four_letter_words = parse_whitelist(value),
                "jute.maxbuffer" => {
                    let bytes: usize = parse_number(value).map_err(error)?;
                    if bytes == 0 {
                        return Err(error(String::from("must be positive")));
                    }
                    config.jute_maxbuffer = bytes;
                }
                "standaloneEnabled" => config.standalone_enabled = parse_bool(value).map_err(error)?,
                "reconfigEnabled" => config.reconfig_enabled = parse_bool(value).map_err(error)?,
                "extendedTypesEnabled" => config.extended_types_enabled = parse_bool(value).map_err(error)?,
                "superDigest" | "DigestAuthenticationProvider.superDigest" => {
                    if !value.contains(':') {
                        return Err(error(String::from("expected super:<base64 sha1 digest>")));
                    }
                    config.super_digest = Some(value.to_owned());
                }
                _ if key.starts_with("server.") => {
                    let id: ServerId = key["server.".len()..]
                        .parse()
                        .map_err(|_| error(String::from("the server id must be a number")))?;
                    let spec = parse_server(value).map_err(error)?;
                    if config.servers.insert(id, spec).is_some() {
                        return Err(error(format!("server {id} is defined twice")));
                    }
                }
                _ => tracing::warn!(line, key, "unknown configuration key, ignored"),
            }
        }
        config.data_dir = data_dir.ok_or_else(|| ConfigError::Invalid(String::from("dataDir is not set")))?;
        config.data_log_dir = data_log_dir.unwrap_or_else(|| config.data_dir.clone());
        if config.servers.is_empty() {
            config.server_id = 1;
        } else {
            config.server_id = 0;
            if !config.servers.values().any(|server| server.peer_type == PeerType::Participant) {
                return Err(ConfigError::Invalid(String::from("no participant among the server.N lines")));
            }
        }
        let session = config.session_config();
        if session.min_session_timeout_ms > session.max_session_timeout_ms {
            return Err(ConfigError::Invalid(format!(
                "minSessionTimeout {} is above maxSessionTimeout {}",
                session.min_session_timeout_ms, session.max_session_timeout_ms
            )));
        }
        Ok(config)
    }

    /// Reads zoo.cfg from `path` and, for an ensemble, `myid` from its dataDir.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let io =
            |path: &Path, error: std::io::Error| ConfigError::Io { path: path.to_owned(), problem: error.to_string() };
        let text = std::fs::read_to_string(path).map_err(|error| io(path, error))?;
        let mut config = Config::parse(&text)?;
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
        let ip = match &self.client_port_address {
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(address) => resolve_host(address)?,
        };
        Ok(SocketAddr::new(ip, self.client_port.unwrap_or(CLIENT_PORT_DEFAULT)))
    }

    /// The quorum address of a server.
    pub fn quorum_address(&self, server_id: ServerId) -> Result<SocketAddr, ConfigError> {
        let spec = self
            .servers
            .get(&server_id)
            .ok_or_else(|| ConfigError::Invalid(format!("server {server_id} is not configured")))?;
        Ok(SocketAddr::new(resolve_host(&spec.host)?, spec.quorum_port))
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
            ..PrepareConfig::default()
        };
        node.auth = AuthConfig { super_digest: self.super_digest.clone() };
        node.client_frame_bytes_max = self.jute_maxbuffer + JUTE_MAXBUFFER_EXTRA_SIZE;
        node.snapshot_txn_count = self.snap_count;
        node
    }
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
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(text).unwrap_or_else(|error| panic!("{text:?}: {error}"))
    }

    fn line_error(text: &str) -> (usize, String, String) {
        match Config::parse(text) {
            Err(ConfigError::Line { line, key, problem }) => (line, key, problem),
            other => panic!("{text:?}: expected a line error, got {other:?}"),
        }
    }

    const MINIMAL: &str = "dataDir=/var/zk\n";

    #[test]
    fn a_minimal_file_takes_zookeepers_defaults() {
        let config = parse(MINIMAL);
        assert_eq!(config.tick_time_ms, 2000);
        assert_eq!((config.init_limit_ticks, config.sync_limit_ticks), (10, 5));
        assert_eq!(config.data_dir, PathBuf::from("/var/zk"));
        assert_eq!(config.data_log_dir, PathBuf::from("/var/zk"), "dataLogDir defaults to dataDir");
        assert_eq!(config.client_port, None);
        assert_eq!(config.client_port_address, None);
        assert_eq!(config.client_address().unwrap(), "0.0.0.0:2181".parse().unwrap());
        assert_eq!(config.max_client_cnxns, 60);
        assert_eq!(config.snap_count, 100_000);
        assert_eq!(config.pre_alloc_size_bytes, 64 << 20);
        assert_eq!((config.snap_retain_count, config.purge_interval_hours), (3, 0));
        assert_eq!(config.four_letter_words, [String::from("srvr")].into_iter().collect());
        assert_eq!(config.jute_maxbuffer, 0xfffff);
        assert!(config.standalone_enabled && !config.reconfig_enabled && !config.extended_types_enabled);
        assert_eq!(config.super_digest, None);
        assert!(config.is_standalone());
        assert_eq!(config.server_id, 1);
        let session = config.session_config();
        assert_eq!((session.min_session_timeout_ms, session.max_session_timeout_ms), (4000, 40_000));
    }

    #[test]
    fn group_commits_wait_for_company_by_default_only_in_an_ensemble() {
        assert_eq!(parse(MINIMAL).commit_wait_max(), Duration::ZERO);
        assert_eq!(Config::default().commit_wait_max(), Duration::ZERO);
        let ensemble = "dataDir=/d\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n";
        assert_eq!(parse(ensemble).commit_wait_max(), Duration::from_micros(COMMIT_WAIT_ENSEMBLE_DEFAULT_US));
        let set = |value: &str, text: &str| parse(&format!("{text}groupCommitWaitMicros={value}\n")).commit_wait_max();
        assert_eq!(set("0", ensemble), Duration::ZERO);
        assert_eq!(set("250", MINIMAL), Duration::from_micros(250));
        assert_eq!(set("100000", ensemble), Duration::from_millis(100));
    }

    #[test]
    fn the_no_argument_default_is_standalone_on_loopback() {
        let config = Config::default();
        assert_eq!(config.client_address().unwrap(), "127.0.0.1:2181".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("zkd-data"));
        assert_eq!(config.tick_time_ms, 2000);
        let node = config.node_config();
        assert_eq!(node.voters, [1].into_iter().collect());
        assert!(node.observers.is_empty());
    }

    #[test]
    fn comments_blank_lines_and_spaces_are_ignored() {
        let config = parse("# a comment\n\n! another\n   tickTime = 500  \n\tdataDir=/d\n");
        assert_eq!(config.tick_time_ms, 500);
        assert_eq!(config.data_dir, PathBuf::from("/d"));
    }

    #[test]
    fn every_scalar_key_is_read() {
        let config = parse(
            "tickTime=100\ninitLimit=7\nsyncLimit=3\ndataDir=/data\ndataLogDir=/log\nclientPort=3000\n\
             clientPortAddress=127.0.0.2\nmaxClientCnxns=0\nminSessionTimeout=300\nmaxSessionTimeout=9000\n\
             snapCount=50\npreAllocSize=16\nautopurge.snapRetainCount=5\nautopurge.purgeInterval=2\n\
             4lw.commands.whitelist=ruok, mntr\njute.maxbuffer=2048\nstandaloneEnabled=false\n\
             reconfigEnabled=true\nextendedTypesEnabled=true\nsuperDigest=super:abc=\n",
        );
        assert_eq!(config.tick_time_ms, 100);
        assert_eq!((config.init_limit_ticks, config.sync_limit_ticks), (7, 3));
        assert_eq!((config.data_dir.clone(), config.data_log_dir.clone()), ("/data".into(), "/log".into()));
        assert_eq!(config.client_address().unwrap(), "127.0.0.2:3000".parse().unwrap());
        assert_eq!(config.max_client_cnxns, 0);
        assert_eq!((config.min_session_timeout_ms, config.max_session_timeout_ms), (Some(300), Some(9000)));
        assert_eq!((config.snap_count, config.pre_alloc_size_bytes), (50, 16 * 1024));
        assert_eq!((config.snap_retain_count, config.purge_interval_hours), (5, 2));
        let words: Vec<&str> = config.four_letter_words.iter().map(String::as_str).collect();
        assert_eq!(words, ["mntr", "ruok", "srvr"]);
        assert_eq!(config.jute_maxbuffer, 2048);
        assert!(!config.standalone_enabled && config.reconfig_enabled && config.extended_types_enabled);
        assert_eq!(config.super_digest.as_deref(), Some("super:abc="));

        let node = config.node_config();
        assert_eq!(node.session.tick_time_ms, 100);
        assert_eq!((node.session.min_session_timeout_ms, node.session.max_session_timeout_ms), (300, 9000));
        assert_eq!((node.init_limit_ticks, node.sync_limit_ticks), (7, 3));
        assert!(node.prepare.extended_types_enabled && node.prepare.reconfig_enabled);
        assert_eq!(node.prepare.data_len_max, 2048);
        assert_eq!(node.client_frame_bytes_max, 2048 + 1024);
        assert_eq!(node.auth.super_digest.as_deref(), Some("super:abc="));
        assert_eq!(node.snapshot_txn_count, 50);
    }

    #[test]
    fn system_property_spellings_are_accepted() {
        let config = parse(
            "dataDir=/d\nzookeeper.4lw.commands.whitelist=*\nzookeeper.extendedTypesEnabled=true\n\
             zookeeper.DigestAuthenticationProvider.superDigest=super:x\nzookeeper.jute.maxbuffer=10\n",
        );
        assert_eq!(config.four_letter_words.len(), FOUR_LETTER_WORDS.len());
        assert!(config.extended_types_enabled);
        assert_eq!(config.super_digest.as_deref(), Some("super:x"));
        assert_eq!(config.jute_maxbuffer, 10);
    }

    #[test]
    fn session_timeouts_default_to_two_and_twenty_ticks() {
        let config = parse("dataDir=/d\ntickTime=1000\nminSessionTimeout=-1\n");
        let session = config.session_config();
        assert_eq!((session.min_session_timeout_ms, session.max_session_timeout_ms), (2000, 20_000));
        let config = parse("dataDir=/d\ntickTime=1000\nmaxSessionTimeout=60000\n");
        assert_eq!(config.session_config().max_session_timeout_ms, 60_000);
    }

    #[test]
    fn snap_retain_count_is_raised_to_three_and_negative_purge_interval_disables() {
        let config = parse("dataDir=/d\nautopurge.snapRetainCount=1\nautopurge.purgeInterval=-4\n");
        assert_eq!((config.snap_retain_count, config.purge_interval_hours), (3, 0));
    }

    #[test]
    fn server_lines_make_an_ensemble() {
        let mut config = parse(
            "dataDir=/d\nserver.1=10.0.0.1:2888:3888\nserver.2=zk2:2889:3889:participant;2182\n\
             server.3=127.0.0.1:2890:3890:observer;127.0.0.3:2183\nserver.4=[::1]:2891:3891\n",
        );
        assert!(!config.is_standalone());
        assert_eq!(config.server_id, 0, "myid is read by load");
        assert_eq!(
            config.servers[&1],
            ServerSpec {
                host: "10.0.0.1".into(),
                quorum_port: 2888,
                election_port: 3888,
                peer_type: PeerType::Participant,
                client: None
            }
        );
        assert_eq!(config.servers[&2].client, Some(("0.0.0.0".into(), 2182)));
        assert_eq!(config.servers[&3].peer_type, PeerType::Observer);
        assert_eq!(config.servers[&3].client, Some(("127.0.0.3".into(), 2183)));
        assert_eq!(config.servers[&4].host, "::1");
        assert_eq!(config.quorum_address(4).unwrap(), "[::1]:2891".parse().unwrap());

        config.set_server_id(3).unwrap();
        assert_eq!(config.client_address().unwrap(), "127.0.0.3:2183".parse().unwrap());
        let node = config.node_config();
        assert_eq!(node.server_id, 3);
        assert_eq!(node.voters, [1, 2, 4].into_iter().collect());
        assert_eq!(node.observers, [3].into_iter().collect());
        assert!(matches!(config.set_server_id(9), Err(ConfigError::Invalid(message)) if message.contains("server.9")));
    }

    #[test]
    fn one_server_line_with_standalone_enabled_is_standalone() {
        assert!(parse("dataDir=/d\nserver.1=h:1:2\n").is_standalone());
        assert!(!parse("dataDir=/d\nstandaloneEnabled=false\nserver.1=h:1:2\n").is_standalone());
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let config = parse("dataDir=/d\nadmin.enableServer=false\nmetricsProvider.className=x\n");
        assert_eq!(config, parse("dataDir=/d\n"));
    }

    #[test]
    fn bad_values_name_the_line_and_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("tickTime=abc", "tickTime", "not a valid number"),
            ("tickTime=0", "tickTime", "positive"),
            ("initLimit=-1", "initLimit", "positive"),
            ("syncLimit=x", "syncLimit", "number"),
            ("dataLogDir=", "dataLogDir", "empty"),
            ("clientPort=70000", "clientPort", "number"),
            ("clientPort=0", "clientPort", "port 0"),
            ("clientPortAddress=", "clientPortAddress", "empty"),
            ("maxClientCnxns=-3", "maxClientCnxns", "number"),
            ("minSessionTimeout=1.5", "minSessionTimeout", "number"),
            ("maxSessionTimeout=x", "maxSessionTimeout", "number"),
            ("snapCount=1", "snapCount", "at least 2"),
            ("preAllocSize=big", "preAllocSize", "number"),
            ("autopurge.snapRetainCount=x", "autopurge.snapRetainCount", "number"),
            ("autopurge.purgeInterval=1h", "autopurge.purgeInterval", "number"),
            ("jute.maxbuffer=0", "jute.maxbuffer", "positive"),
            ("standaloneEnabled=yes", "standaloneEnabled", "neither true nor false"),
            ("reconfigEnabled=1", "reconfigEnabled", "neither"),
            ("extendedTypesEnabled=on", "extendedTypesEnabled", "neither"),
            ("superDigest=nocolon", "superDigest", "super:"),
            ("groupCommitWaitMicros=-1", "groupCommitWaitMicros", "number"),
            ("groupCommitWaitMicros=100001", "groupCommitWaitMicros", "at most 100000"),
            ("server.x=h:1:2", "server.x", "server id"),
            ("server.1=h:1", "server.1", "host:quorumPort"),
            ("server.1=h:1:2:leader", "server.1", "peer type"),
            ("server.1=h:1:x", "server.1", "number"),
            ("server.1=h:1:2;a:b:c", "server.1", "host:quorumPort"),
            ("server.1=h:1:2|g:3:4", "server.1", "multiple"),
            ("just words", "just words", "key=value"),
        ];
        for (bad, key, problem) in cases {
            let text = format!("# header\ndataDir=/d\n{bad}\n");
            let (line, got_key, got_problem) = line_error(&text);
            assert_eq!(line, 3, "{bad}");
            assert_eq!(&got_key, key, "{bad}");
            assert!(got_problem.contains(problem), "{bad}: {got_problem}");
        }
        let (line, key, problem) = line_error("dataDir=/d\nserver.1=a:1:2\nserver.1=b:1:2\n");
        assert_eq!((line, key.as_str()), (3, "server.1"));
        assert!(problem.contains("twice"));
        let message = Config::parse("dataDir=/d\ntickTime=x\n").unwrap_err().to_string();
        assert_eq!(message, "line 2: tickTime: \"x\" is not a valid number (invalid digit found in string)");
    }

    #[test]
    fn whole_file_errors() {
        assert_eq!(Config::parse("tickTime=10\n"), Err(ConfigError::Invalid("dataDir is not set".into())));
        let error = Config::parse("dataDir=/d\nminSessionTimeout=5000\nmaxSessionTimeout=4000\n").unwrap_err();
        assert!(error.to_string().contains("above maxSessionTimeout"), "{error}");
        let error = Config::parse("dataDir=/d\nserver.1=h:1:2:observer\n").unwrap_err();
        assert!(error.to_string().contains("no participant"), "{error}");
        let mut config = parse("dataDir=/d\nclientPort=3000\nserver.1=h:1:2;4000\nserver.2=h:3:4\n");
        assert!(config.set_server_id(1).unwrap_err().to_string().contains("conflicts"));
    }

    #[test]
    fn load_reads_myid_from_the_data_dir() {
        let dir = crate::testing::temp_dir("config-load");
        let cfg = dir.join("zoo.cfg");
        let text = format!("dataDir={}\nserver.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\n", dir.display());
        std::fs::write(&cfg, &text).unwrap();
        let error = Config::load(&cfg).unwrap_err();
        assert!(error.to_string().contains("myid"), "{error}");
        std::fs::write(dir.join("myid"), "2\n").unwrap();
        assert_eq!(Config::load(&cfg).unwrap().server_id, 2);
        std::fs::write(dir.join("myid"), "two\n").unwrap();
        assert!(Config::load(&cfg).unwrap_err().to_string().contains("not a server id"));
        assert!(matches!(Config::load(&dir.join("missing.cfg")), Err(ConfigError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
