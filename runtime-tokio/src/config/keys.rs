//! Every zoo.cfg key and system property ZooKeeper's server knows, and what zkd does with
//! each: reads it, ignores it for a stated reason, or refuses to start.
//!
//! The rule (fail closed): a key that asks for a security or durability feature zkd does not
//! have stops zkd at start with an error naming it; a key for a feature zkd does not need
//! (a JVM thread pool, JMX, a cache size) is accepted and logged as ignored, with the reason.
//! Value-dependent keys are refused only when their value asks for the feature
//! ([`Treatment::RefusedUnless`]). docs/CONFIG.md is generated from [`KEYS`] (its test
//! fails when they differ; `UPDATE_CONFIG_MD=1 cargo test -p zk-runtime-tokio config`
//! rewrites it).
//!
//! Names are written as zoo.cfg spells them; a system property `zookeeper.<name>` is the
//! same key (ZooKeeper turns unknown zoo.cfg keys into `zookeeper.<key>` properties, which is
//! how most of these reach it). A name ending in `*` covers every key with that prefix.

/// What zkd does with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// Read with ZooKeeper's meaning (see `Config::apply`).
    Read,
    /// Accepted and without effect, for the reason given; logged at start.
    Ignored(&'static str),
    /// Stops zkd at start: a feature zkd does not have, for the reason given.
    Refused(&'static str),
    /// Without effect when the value is one of these (the feature off, or what zkd does
    /// anyway); any other value is refused for the reason given.
    RefusedUnless(&'static [&'static str], &'static str),
}

/// Where ZooKeeper reads a key from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// zoo.cfg only (QuorumPeerConfig's own keys).
    File,
    /// A system property, `-Dzookeeper.<name>` (or the name itself where it has no
    /// `zookeeper.` prefix), which a zoo.cfg line also sets.
    Property,
    /// A key of zkd's own, read from zoo.cfg.
    Zkd,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub name: &'static str,
    pub source: Source,
    pub treatment: Treatment,
}

use Source::{File, Property, Zkd};
use Treatment::{Ignored, Read, Refused, RefusedUnless};

const fn key(name: &'static str, source: Source, treatment: Treatment) -> Key {
    Key { name, source, treatment }
}

const JVM_TUNING: &str = "a tuning knob of ZooKeeper's Java implementation; zkd has no such part";
const CLIENT_SIDE: &str = "read by ZooKeeper's client, not its server";
const LATER_20: &str = "not built yet (issue 20); zkd behaves as with the default";
const ADMIN_19: &str = "the AdminServer is not built yet (issue 19)";
const QUORUM_TLS: &str = "TLS between servers is not built yet (issue 18): the quorum would talk in the clear";
const QUORUM_SASL: &str = "quorum SASL is not built yet (issue 18): servers would not authenticate each other";
const OFF: &[&str] = &["false"];

/// Every key, in the order docs/CONFIG.md lists them.
pub const KEYS: &[Key] = &[
    // The basics.
    key("tickTime", File, Read),
    key("initLimit", File, Read),
    key("syncLimit", File, Read),
    key("dataDir", File, Read),
    key("dataLogDir", File, Read),
    key("clientPort", File, Read),
    key("clientPortAddress", File, Read),
    key("maxClientCnxns", File, Read),
    key("minSessionTimeout", File, Read),
    key("maxSessionTimeout", File, Read),
    key("standaloneEnabled", File, Read),
    key("reconfigEnabled", File, Read),
    key("server.*", File, Read),
    key("autopurge.snapRetainCount", File, Read),
    key("autopurge.purgeInterval", File, Read),
    key("snapCount", Property, Read),
    key("preAllocSize", Property, Read),
    key("4lw.commands.whitelist", Property, Read),
    key("extendedTypesEnabled", Property, Read),
    key("jute.maxbuffer", Property, Read),
    key("DigestAuthenticationProvider.superDigest", Property, Read),
    key("superDigest", Zkd, Read),
    key("groupCommitWaitMicros", Zkd, Read),
    key("datadir.autocreate", Property, Read),
    key("authProvider.*", Property, Read),
    // Ensemble shape and election.
    key("electionAlg", File, RefusedUnless(&["3"], "zkd elects with Fast Leader Election (3) only")),
    key("group.*", File, Refused("hierarchical quorums are not built: zkd would count votes differently")),
    key("weight.*", File, Refused("hierarchical quorums are not built: zkd would count votes differently")),
    key("oraclePath", File, Refused("the two-server oracle is not built: zkd would count votes differently")),
    key(
        "dynamicConfigFile",
        File,
        Refused("dynamic reconfiguration is not built yet (issue 20): the membership it holds would be lost"),
    ),
    key("version", File, Ignored("the version of a dynamic configuration (issue 20)")),
    key(
        "peerType",
        File,
        Ignored("zkd takes a server's type from its server.N line, as ZooKeeper does when the two differ"),
    ),
    key("multiAddress.enabled", File, RefusedUnless(OFF, "several addresses per server are not built")),
    key("multiAddress.reachabilityCheckEnabled", File, Ignored("used only with multiAddress.enabled")),
    key("multiAddress.reachabilityCheckTimeoutMs", File, Ignored("used only with multiAddress.enabled")),
    key("quorumListenOnAllIPs", File, Read),
    key("observerMasterPort", File, Ignored("zkd's observers sync from the leader")),
    key("connectToLearnerMasterLimit", File, Ignored("zkd's observers sync from the leader")),
    key("syncEnabled", File, Ignored("zkd's observers always log what they learn")),
    key("observer.syncEnabled", Property, Ignored("zkd's observers always log what they learn")),
    key("localSessionsEnabled", File, Ignored(LATER_20)),
    key("localSessionsUpgradingEnabled", File, Ignored(LATER_20)),
    key("clientPortListenBacklog", File, Ignored("zkd's listener takes the operating system's backlog")),
    key("quorum.cnxn.threads.size", File, Ignored(JVM_TUNING)),
    key("metricsProvider.*", File, Ignored("metrics providers are not built yet (issue 19)")),
    // TLS.
    key("secureClientPort", File, Read),
    key("secureClientPortAddress", File, Read),
    key("client.portUnification", Property, Read),
    key("client.certReload", Property, Read),
    key("portUnification", File, RefusedUnless(OFF, QUORUM_TLS)),
    key("sslQuorum", File, RefusedUnless(OFF, QUORUM_TLS)),
    key("sslQuorumReloadCertFiles", File, Ignored("used only with sslQuorum")),
    key("ssl.*", Property, Read),
    key("ssl.quorum.*", Property, Refused(QUORUM_TLS)),
    key("serverCnxnFactory", Property, Ignored("zkd has one connection layer (for TLS ZooKeeper needs Netty's)")),
    key("X509AuthenticationProvider.superUser", Property, Read),
    // SASL and authentication.
    key("superUser", Property, Read),
    key("superUser.*", Property, Read),
    key("SASLAuthenticationProvider.superPassword", Property, Read),
    key("allowSaslFailedClients", Property, Read),
    key("sessionRequireClientSASLAuth", Property, Read),
    key("enforce.auth.enabled", Property, Read),
    key("enforce.auth.schemes", Property, Read),
    key("java.security.auth.login.config", Property, Read),
    key("sasl.serverconfig", Property, Read),
    key("server.realm", Property, Ignored("used only with a JAAS file (java.security.auth.login.config)")),
    key("kerberos.removeHostFromPrincipal", Property, Read),
    key("kerberos.removeRealmFromPrincipal", Property, Read),
    key("kerberos.*", Property, Ignored("Kerberos (GSSAPI) is not built yet; a JAAS Krb5LoginModule is refused")),
    key("security.auth_to_local", Property, Ignored("used only with a JAAS file (java.security.auth.login.config)")),
    key(
        "letAnySaslUserDoX",
        Property,
        Ignored("not built: an ACL sasl:<that value> admits only that user, which is stricter"),
    ),
    key("quorum.auth.enableSasl", File, RefusedUnless(OFF, QUORUM_SASL)),
    key("quorum.auth.serverRequireSasl", File, RefusedUnless(OFF, QUORUM_SASL)),
    key("quorum.auth.learnerRequireSasl", File, RefusedUnless(OFF, QUORUM_SASL)),
    key("quorum.auth.kerberos.servicePrincipal", File, Ignored("used only with quorum.auth.enableSasl")),
    key("quorum.auth.learner.saslLoginContext", File, Ignored("used only with quorum.auth.enableSasl")),
    key("quorum.auth.server.saslLoginContext", File, Ignored("used only with quorum.auth.enableSasl")),
    key(
        "DigestAuthenticationProvider.enabled",
        Property,
        RefusedUnless(&["true"], "digest logins cannot be turned off"),
    ),
    key(
        "DigestAuthenticationProvider.digestAlg",
        Property,
        RefusedUnless(&["SHA1", "SHA-1"], "digest ids are SHA-1, as ZooKeeper's default"),
    ),
    key(
        "IPAuthenticationProvider.usexforwardedfor",
        Property,
        Ignored("read by ZooKeeper's AdminServer only (issue 19)"),
    ),
    key("ensembleAuthName", Property, Refused("the ensemble authentication provider is not built")),
    key("skipACL", Property, RefusedUnless(&["no"], "ACL checks cannot be turned off")),
    key("audit.enable", Property, RefusedUnless(OFF, "the audit log is not built yet (issue 19)")),
    key("audit.impl.class", Property, Ignored("used only with audit.enable")),
    // Durability.
    key("forceSync", Property, RefusedUnless(&["yes"], "zkd always flushes its log before acknowledging")),
    key("db.autocreate", Property, RefusedUnless(&["true"], "zkd starts empty on an empty data directory")),
    key("snapshot.trust.empty", Property, Ignored("zkd recovers from its log when no snapshot is present")),
    key("snapshot.compression.method", Property, Ignored("zkd writes its own snapshot format")),
    key("snapshotSizeFactor", Property, Ignored("zkd decides between a diff and a snapshot by its own rule")),
    key("snapSizeLimitInKb", Property, Ignored("zkd takes snapshots by txn count (snapCount)")),
    key("txnLogSizeLimitInKb", Property, Ignored("zkd rolls log segments by preAllocSize")),
    key("fsync.warningthresholdms", Property, Ignored("zkd reports flush times in mntr")),
    key("digest.enabled", Property, Ignored("zkd checks its files with CRCs, not ZooKeeper's tree digest")),
    key("serializeLastProcessedZxid.enabled", Property, Ignored("zkd's snapshots always record their zxid")),
    key("closeSessionTxn.enabled", Property, Ignored("zkd's closeSession txns always carry the ephemerals to delete")),
    key("commitLogCount", Property, Ignored("zkd syncs learners from its history by its own rule")),
    key("forceSnapshotSync", Property, Ignored("a ZooKeeper test switch")),
    // Features not built yet, behaving as their defaults.
    key("readonlymode.enabled", Property, Ignored(LATER_20)),
    key("enforceQuota", Property, RefusedUnless(OFF, "quota enforcement is not built yet (issue 20)")),
    key("emulate353TTLNodes", Property, RefusedUnless(OFF, "3.5.3's TTL session ids are not built")),
    key("admin.*", Property, Ignored(ADMIN_19)),
    key("maxCnxns", Property, Ignored(LATER_20)),
    key("globalOutstandingLimit", Property, Ignored("zkd bounds outstanding requests per connection")),
    key("request_throttle_*", Property, Ignored(LATER_20)),
    key("connection_throttle_*", Property, Ignored(LATER_20)),
    key("throttled_op_wait_time", Property, Ignored(LATER_20)),
    key("largeRequestMaxBytes", Property, Ignored(LATER_20)),
    key("largeRequestThreshold", Property, Ignored(LATER_20)),
    key("request_stale_*", Property, Ignored(LATER_20)),
    key("enableEagerACLCheck", Property, Ignored("zkd checks ACLs as ZooKeeper does by default")),
    key("leaderServes", Property, RefusedUnless(&["yes"], "zkd's leader always serves clients")),
    key("znode.container.*", Property, Ignored("zkd removes empty containers on its own schedule")),
    key("pathStats.*", Property, Ignored("path statistics are not built")),
    key("messageTracker.*", Property, Ignored("message tracking is not built")),
    // The Java implementation's own machinery.
    key("nio.*", Property, Ignored(JVM_TUNING)),
    key("netty.*", Property, Ignored(JVM_TUNING)),
    key("commitProcessor.*", Property, Ignored(JVM_TUNING)),
    key("learner.*", Property, Ignored(JVM_TUNING)),
    key("leader.*", Property, Ignored(JVM_TUNING)),
    key("follower.*", Property, Ignored(JVM_TUNING)),
    key("observer.*", Property, Ignored(JVM_TUNING)),
    key("fastleader.*", Property, Ignored(JVM_TUNING)),
    key("watchManagerName", Property, Ignored(JVM_TUNING)),
    key("watcherClean*", Property, Ignored(JVM_TUNING)),
    key("maxInProcessingDeadWatchers", Property, Ignored(JVM_TUNING)),
    key("maxResponseCacheSize", Property, Ignored(JVM_TUNING)),
    key("maxGetChildrenResponseCacheSize", Property, Ignored(JVM_TUNING)),
    key("bitHashCacheSize", Property, Ignored(JVM_TUNING)),
    key("intBufferStartingSizeBytes", Property, Ignored(JVM_TUNING)),
    key("maxBatchSize", Property, Ignored(JVM_TUNING)),
    key("maxWriteQueuePollTime", Property, Ignored(JVM_TUNING)),
    key("flushDelay", Property, Ignored(JVM_TUNING)),
    key("cnxTimeout", Property, Ignored(JVM_TUNING)),
    key("quorumCnxnTimeoutMs", Property, Ignored(JVM_TUNING)),
    key("tcpKeepAlive", Property, Ignored(JVM_TUNING)),
    key("clientTcpKeepAlive", Property, Ignored(JVM_TUNING)),
    key("electionPortBindRetry", Property, Ignored("zkd elects over the quorum port")),
    key("jmx.*", Property, Ignored("zkd has no JMX")),
    key("test.*", Property, Ignored("a ZooKeeper test switch")),
    key("testingonly.*", Property, Ignored("a ZooKeeper test switch")),
    // Client-side properties a shared JVMFLAGS may carry.
    key("client.*", Property, Ignored(CLIENT_SIDE)),
    key("clientCnxnSocket", Property, Ignored(CLIENT_SIDE)),
    key("sasl.client*", Property, Ignored(CLIENT_SIDE)),
    key("server.principal", Property, Ignored(CLIENT_SIDE)),
    key("disableAutoWatchReset", Property, Ignored(CLIENT_SIDE)),
    key("hostProvider.*", Property, Ignored(CLIENT_SIDE)),
    key("shuffleDnsResponse", Property, Ignored(CLIENT_SIDE)),
    key("request.timeout", Property, Ignored(CLIENT_SIDE)),
];

/// Words that mark an unknown key as a security setting, which is refused rather than
/// ignored (fail closed).
const SECURITY_WORDS: &[&str] = &[
    "ssl",
    "tls",
    "sasl",
    "auth",
    "kerberos",
    "jaas",
    "x509",
    "keystore",
    "truststore",
    "secure",
    "principal",
    "digest",
    "acl",
];

/// The table's row for a key (already without its `zookeeper.` prefix). An exact name wins
/// over a prefix; `server.principal` and `server.realm` are properties, not server lines.
pub fn lookup(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.name == name).or_else(|| {
        KEYS.iter()
            .filter_map(|key| key.name.strip_suffix('*').map(|prefix| (key, prefix)))
            .filter(|(_, prefix)| name.starts_with(prefix))
            .max_by_key(|(_, prefix)| prefix.len())
            .map(|(key, _)| key)
    })
}

/// Whether a key nobody knows looks like a security setting.
pub fn looks_like_security(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECURITY_WORDS.iter().any(|word| lower.contains(word))
}

/// Properties of the JVM and its logging, which a JVMFLAGS line carries beside ZooKeeper's;
/// zkd ignores them (its logs follow RUST_LOG).
pub fn is_jvm_property(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "java.",
        "javax.",
        "jdk.",
        "sun.",
        "com.sun.",
        "log4j",
        "logback",
        "file.encoding",
        "user.",
        "zookeeper.log.",
        "zookeeper.root.logger",
        "zookeeper.console.threshold",
        "zookeeper.tracelog.",
    ];
    name != "java.security.auth.login.config" && PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// docs/CONFIG.md's table: one row per key.
pub fn markdown_table() -> String {
    let mut out = String::from("| key | where ZooKeeper reads it | zkd |\n|---|---|---|\n");
    for key in KEYS {
        let source = match key.source {
            File => String::from("zoo.cfg"),
            Property if is_plain_property(key.name) => format!("`-D{}` or zoo.cfg", key.name),
            Property => format!("`-Dzookeeper.{}` or zoo.cfg", key.name),
            Zkd => String::from("zoo.cfg (zkd's own)"),
        };
        let treatment = match key.treatment {
            Read => String::from("read"),
            Ignored(reason) => format!("ignored: {reason}"),
            Refused(reason) => format!("**refused**: {reason}"),
            RefusedUnless(values, reason) => {
                let values: Vec<String> = values.iter().map(|value| format!("`{value}`")).collect();
                format!("accepted as {}; otherwise **refused**: {reason}", values.join(" or "))
            }
        };
        out.push_str(&format!("| `{}` | {source} | {treatment} |\n", key.name));
    }
    out
}

/// Properties ZooKeeper reads without the `zookeeper.` prefix.
pub fn is_plain_property(name: &str) -> bool {
    ["jute.maxbuffer", "readonlymode.enabled", "java.security.auth.login.config", "znode.container.*"].contains(&name)
}
