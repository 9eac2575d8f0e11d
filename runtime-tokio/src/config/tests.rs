//! zoo.cfg parsing.

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
fn quorum_listen_on_all_ips_keeps_the_port_and_widens_the_address() {
    let mut config =
        parse("dataDir=/d\nquorumListenOnAllIPs=true\nserver.1=127.0.0.1:2888:3888\nserver.2=[::1]:2889:3889\n");
    config.set_server_id(1).unwrap();
    assert_eq!(config.quorum_listen_address().unwrap(), "0.0.0.0:2888".parse().unwrap());
    config.set_server_id(2).unwrap();
    assert_eq!(config.quorum_listen_address().unwrap(), "[::]:2889".parse().unwrap());
    config.quorum_listen_on_all_ips = false;
    assert_eq!(config.quorum_listen_address().unwrap(), "[::1]:2889".parse().unwrap());
}

#[test]
fn one_server_line_with_standalone_enabled_is_standalone() {
    assert!(parse("dataDir=/d\nserver.1=h:1:2\n").is_standalone());
    assert!(!parse("dataDir=/d\nstandaloneEnabled=false\nserver.1=h:1:2\n").is_standalone());
}

#[test]
fn unknown_keys_and_keys_for_unneeded_machinery_are_ignored() {
    let config = parse("dataDir=/d\nadmin.enableServer=false\nmetricsProvider.className=x\nnoSuchKey=1\nzookeeper.nio.numWorkerThreads=4\n");
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
    let error = Config::load(&cfg, &[]).unwrap_err();
    assert!(error.to_string().contains("myid"), "{error}");
    std::fs::write(dir.join("myid"), "2\n").unwrap();
    assert_eq!(Config::load(&cfg, &[]).unwrap().server_id, 2);
    std::fs::write(dir.join("myid"), "two\n").unwrap();
    assert!(Config::load(&cfg, &[]).unwrap_err().to_string().contains("not a server id"));
    assert!(matches!(Config::load(&dir.join("missing.cfg"), &[]), Err(ConfigError::Io { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn property(name: &str, value: &str) -> Property {
    Property { name: name.into(), value: value.into(), origin: properties::PropertyOrigin::CommandLine }
}

#[test]
fn security_and_durability_keys_zkd_lacks_stop_it_naming_the_key() {
    let refused: &[(&str, &str)] = &[
        ("ssl.quorum.keyStore.location=/k.jks", "TLS between servers"),
        ("sslQuorum=true", "TLS between servers"),
        ("portUnification=true", "TLS between servers"),
        ("ssl.crl=true", "revocation"),
        ("quorum.auth.enableSasl=true", "quorum SASL"),
        ("forceSync=no", "flushes"),
        ("zookeeper.skipACL=yes", "ACL"),
        ("authProvider.1=org.apache.zookeeper.server.auth.EnsembleAuthenticationProvider", "class"),
        ("authProvider.2=com.example.MyProvider", "class"),
        ("group.1=1:2:3", "hierarchical"),
        ("my.custom.truststore=/t", "unknown security setting"),
    ];
    for (bad, problem) in refused {
        let (line, key, got) = line_error(&format!("dataDir=/d\n{bad}\n"));
        assert_eq!(line, 2, "{bad}");
        assert_eq!(key, bad.split_once('=').unwrap().0, "{bad}");
        assert!(got.contains(problem), "{bad}: {got}");
    }
}

#[test]
fn value_dependent_keys_are_refused_only_when_they_ask_for_the_feature() {
    let off = "dataDir=/d\nsslQuorum=false\nportUnification=false\nforceSync=yes\nzookeeper.skipACL=no\n\
               enforce.auth.enabled=false\nelectionAlg=3\nquorum.auth.enableSasl=false\naudit.enable=false\n\
               authProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\n";
    assert_eq!(parse(off), parse("dataDir=/d\n"));
    assert!(line_error("dataDir=/d\nelectionAlg=0\n").2.contains("\"0\" is not supported"));
}

#[test]
fn system_properties_set_keys_and_zoo_cfg_wins() {
    let properties = [
        property("zookeeper.snapCount", "5000"),
        property("zookeeper.4lw.commands.whitelist", "*"),
        property("jute.maxbuffer", "2048"),
        property("java.net.preferIPv4Stack", "true"),
        property("zookeeper.dataDir", "/ignored"),
    ];
    let config = Config::from_sources(Some("dataDir=/d\njute.maxbuffer=4096\n"), &properties).unwrap();
    assert_eq!(config.snap_count, 5000);
    assert_eq!(config.four_letter_words.len(), FOUR_LETTER_WORDS.len());
    assert_eq!(config.jute_maxbuffer, 4096, "the file wins");
    assert_eq!(config.data_dir, PathBuf::from("/d"), "dataDir is a zoo.cfg key only");
    let error = Config::from_sources(Some("dataDir=/d\n"), &[property("zookeeper.snapCount", "x")]).unwrap_err();
    assert_eq!(error.to_string(), "-Dzookeeper.snapCount: \"x\" is not a valid number (invalid digit found in string)");
    let error = Config::from_sources(None, &[property("java.security.auth.login.config", "/no/jaas")]).unwrap_err();
    assert!(error.to_string().starts_with("/no/jaas: "), "a JAAS file that cannot be read stops zkd: {error}");
}

#[test]
fn properties_without_a_file_change_the_default_configuration() {
    let config = Config::from_sources(None, &[property("zookeeper.datadir.autocreate", "false")]).unwrap();
    assert!(!config.data_dir_autocreate);
    assert_eq!(Config { data_dir_autocreate: true, ..config }, Config::default());
}

#[test]
fn every_key_the_table_reads_has_a_reader() {
    let samples: &[(&str, &str)] = &[
        ("tickTime", "100"),
        ("initLimit", "5"),
        ("syncLimit", "2"),
        ("dataDir", "/d"),
        ("dataLogDir", "/l"),
        ("clientPort", "2181"),
        ("clientPortAddress", "127.0.0.1"),
        ("maxClientCnxns", "10"),
        ("minSessionTimeout", "4000"),
        ("maxSessionTimeout", "40000"),
        ("standaloneEnabled", "true"),
        ("reconfigEnabled", "false"),
        ("server.*", "h:1:2"),
        ("autopurge.snapRetainCount", "3"),
        ("autopurge.purgeInterval", "1"),
        ("snapCount", "10"),
        ("preAllocSize", "10"),
        ("4lw.commands.whitelist", "ruok"),
        ("extendedTypesEnabled", "true"),
        ("jute.maxbuffer", "100"),
        ("DigestAuthenticationProvider.superDigest", "super:x"),
        ("superDigest", "super:x"),
        ("groupCommitWaitMicros", "10"),
        ("datadir.autocreate", "true"),
        ("secureClientPort", "2281"),
        ("secureClientPortAddress", "127.0.0.1"),
        ("client.portUnification", "false"),
        ("client.certReload", "true"),
        ("ssl.*", "need"),
        ("X509AuthenticationProvider.superUser", "CN=admin"),
        ("superUser", "admin"),
        ("superUser.*", "admin2"),
        ("SASLAuthenticationProvider.superPassword", "pw"),
        ("allowSaslFailedClients", "true"),
        ("sessionRequireClientSASLAuth", "false"),
        ("enforce.auth.enabled", "false"),
        ("enforce.auth.schemes", "digest"),
        ("java.security.auth.login.config", ""),
        ("sasl.serverconfig", "Server"),
        ("kerberos.removeHostFromPrincipal", "true"),
        ("kerberos.removeRealmFromPrincipal", "true"),
        ("quorumListenOnAllIPs", "true"),
        ("authProvider.*", "org.apache.zookeeper.server.auth.IPAuthenticationProvider"),
    ];
    for key in keys::KEYS.iter().filter(|key| key.treatment == Treatment::Read) {
        let Some((_, value)) = samples.iter().find(|(name, _)| *name == key.name) else {
            panic!("{}: the table reads it; add a sample value here", key.name);
        };
        let name = if key.name == "ssl.*" { String::from("ssl.clientAuth") } else { key.name.replace('*', "1") };
        let needs = if name.starts_with("secureClientPort") {
            "secureClientPort=2281\nssl.keyStore.location=/k.jks\n"
        } else {
            ""
        };
        let text = format!("dataDir=/d\n{needs}{name}={value}\n");
        Config::parse(&text).unwrap_or_else(|error| panic!("{text:?}: {error}"));
    }
}

#[test]
fn the_key_table_finds_exact_names_before_prefixes() {
    use keys::lookup;
    assert_eq!(lookup("server.3").unwrap().name, "server.*");
    assert_eq!(lookup("server.principal").unwrap().name, "server.principal");
    assert_eq!(lookup("sasl.clientconfig").unwrap().name, "sasl.client*");
    assert_eq!(lookup("clientPort").unwrap().name, "clientPort");
    assert!(lookup("noSuchKey").is_none());
    let names: BTreeSet<&str> = keys::KEYS.iter().map(|key| key.name).collect();
    assert_eq!(names.len(), keys::KEYS.len(), "no key is listed twice");
}

/// docs/CONFIG.md holds the table between two markers; `UPDATE_CONFIG_MD=1` rewrites it.
#[test]
fn docs_config_md_lists_every_key() {
    const BEGIN: &str = "<!-- keys: generated from runtime-tokio/src/config/keys.rs -->\n";
    const END: &str = "<!-- end of keys -->";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/CONFIG.md");
    let text = std::fs::read_to_string(&path).expect("docs/CONFIG.md");
    let (start, end) = (text.find(BEGIN).expect("begin marker") + BEGIN.len(), text.find(END).expect("end marker"));
    let table = keys::markdown_table();
    if text[start..end] != table {
        if std::env::var_os("UPDATE_CONFIG_MD").is_some() {
            std::fs::write(&path, format!("{}{table}{}", &text[..start], &text[end..])).unwrap();
        } else {
            panic!("docs/CONFIG.md's table is stale: run UPDATE_CONFIG_MD=1 cargo test -p zk-runtime-tokio config");
        }
    }
}

#[test]
fn tls_keys_make_a_secure_client_port() {
    let config = parse(
        "dataDir=/d\nsecureClientPort=2281\nsecureClientPortAddress=127.0.0.2\nssl.keyStore.location=/k.jks\n\
         zookeeper.ssl.keyStore.password=pw\nssl.clientAuth=none\nclient.certReload=true\n",
    );
    assert_eq!(config.secure_client_address().unwrap(), Some("127.0.0.2:2281".parse().unwrap()));
    assert_eq!(config.ssl.key_store.password, "pw");
    assert!(config.client_cert_reload && config.serves_tls());
    assert!(!config.node_config().prepare.providers.x509, "no client certificates, no x509 ids");
    assert!(
        parse("dataDir=/d\nsecureClientPort=2281\nssl.keyStore.location=/k\n").node_config().prepare.providers.x509
    );
    assert_eq!(parse(MINIMAL).secure_client_address().unwrap(), None);
    for (text, problem) in [
        ("dataDir=/d\nsecureClientPort=2281\n", "needs ssl.keyStore.location"),
        ("dataDir=/d\nclient.portUnification=true\n", "needs ssl.keyStore.location"),
        ("dataDir=/d\nsecureClientPortAddress=127.0.0.1\n", "secureClientPort is not"),
    ] {
        let error = Config::parse(text).unwrap_err().to_string();
        assert!(error.contains(problem), "{text:?}: {error}");
    }
}

#[test]
fn sasl_keys_read_the_jaas_file_and_enforcement_needs_a_provider() {
    let dir = crate::testing::temp_dir("config-jaas");
    let jaas = dir.join("jaas.conf");
    std::fs::write(&jaas, "Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_bob=\"pw\"; };\n")
        .unwrap();
    let text =
        "dataDir=/d\nauthProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\nsuperUser=bob\n\
                zookeeper.SASLAuthenticationProvider.superPassword=root\nsessionRequireClientSASLAuth=true\n";
    let config =
        Config::from_sources(Some(text), &[property("java.security.auth.login.config", jaas.to_str().unwrap())])
            .unwrap();
    let sasl = config.sasl.clone().unwrap();
    assert_eq!(sasl.users.len(), 2, "bob, and super from superPassword");
    assert!(sasl.super_users.contains("bob"));
    let node = config.node_config();
    assert!(node.prepare.providers.sasl);
    assert_eq!(node.auth.enforce_schemes, Some(vec![String::from("sasl")]));

    for (text, problem) in [
        ("dataDir=/d\nsessionRequireClientSASLAuth=true\n", "needs a JAAS file"),
        ("dataDir=/d\nenforce.auth.enabled=true\n", "needs enforce.auth.schemes"),
        ("dataDir=/d\nenforce.auth.enabled=true\nenforce.auth.schemes=sasl\n", "no configured provider"),
        ("dataDir=/d\nenforce.auth.enabled=true\nenforce.auth.schemes=kerberos\n", "no configured provider"),
    ] {
        let error = Config::parse(text).unwrap_err().to_string();
        assert!(error.contains(problem), "{text:?}: {error}");
    }
    assert_eq!(
        parse("dataDir=/d\nenforce.auth.enabled=true\nenforce.auth.schemes=digest\n").enforce_schemes,
        Some(vec![String::from("digest")])
    );
    std::fs::write(&jaas, "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };\n")
        .unwrap();
    let error = Config::from_sources(
        Some("dataDir=/d\n"),
        &[property("java.security.auth.login.config", jaas.to_str().unwrap())],
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("Kerberos (GSSAPI) is not built"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
