//! Four-letter words: plain-text commands on the client port, answered in ZooKeeper's
//! formats (`server/command/*.java`: StatCommand, MonitorCommand, ConfCommand, ...), since
//! tools parse them (`zkServer.sh status` reads srvr's `Mode:` line, monitoring reads mntr).
//!
//! A connection whose first four bytes spell a known word gets one answer and is closed.
//! Words outside `4lw.commands.whitelist` get ZooKeeper's refusal line.

use std::fmt::Write;

/// What zkd reports as its version: ZooKeeper's release whose protocol it speaks, then zkd's.
pub const VERSION: &str = concat!("3.8.4-zkd-", env!("CARGO_PKG_VERSION"), ", built on 1970-01-01 00:00 UTC");

/// ZooKeeper's answer while a server is not serving (looking for a leader, syncing).
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// The word in a connection's first four bytes, if they spell one zkd knows.
pub fn parse(first: &[u8]) -> Option<&'static str> {
    crate::config::FOUR_LETTER_WORDS.iter().copied().find(|word| word.as_bytes() == first)
}

/// ZooKeeper's line for a word outside the whitelist.
pub fn refusal(word: &str) -> String {
    format!("{word} is not executed because it is not in the whitelist.\n")
}

/// One client connection, as `stat` and `cons` list it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionFacts {
    /// `ip:port` of the client.
    pub remote: String,
    pub queued: usize,
    pub received: u64,
    pub sent: u64,
    /// The node's counters for the connection (session, last op, latencies).
    pub stats: Option<zk_core::node::ConnectionStats>,
}

/// Everything the words report, gathered by the node task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// "leader", "follower", "observer" or "standalone".
    pub mode: &'static str,
    pub serving: bool,
    pub zxid: i64,
    pub node_count: usize,
    pub watch_count: usize,
    /// wchs: connections and paths of the data-watch table, and its watches.
    pub data_watchers: usize,
    pub data_watch_paths: usize,
    pub data_watches: usize,
    pub ephemerals_count: usize,
    pub approximate_data_size: u64,
    pub received: u64,
    pub sent: u64,
    pub outstanding: usize,
    pub connections: Vec<ConnectionFacts>,
    /// The lines of `conf`, in order.
    pub conf: Vec<String>,
    pub data_dir_size: u64,
    pub log_dir_size: u64,
    /// Group commits and log fsyncs so far (zkd's own mntr keys).
    pub fsyncs: u64,
    pub log_appends: u64,
    /// Client request latency (arrival to reply), measured by the node.
    pub latency: zk_core::node::RequestLatency,
    /// A leader's proposal sizes.
    pub proposal_sizes: zk_core::node::ProposalSizes,
    /// wchc: the data watches of each session, by session id, each with its paths.
    pub data_watches_by_session: Vec<(i64, Vec<String>)>,
    /// wchp: the sessions watching each path.
    pub data_watches_by_path: Vec<(String, Vec<i64>)>,
    /// dump: the live sessions with their timeouts, and each session's ephemerals.
    pub sessions: Vec<(i64, i32)>,
    pub ephemerals: Vec<(i64, Vec<String>)>,
    /// dump on a leader (standalone included): its session expiry buckets, each deadline
    /// in wall-clock milliseconds with its sessions.
    pub session_expiry: Option<Vec<(i64, Vec<i64>)>>,
}

/// The parts of [`Facts`] read from the node's watches, sessions and ephemerals (for wchc,
/// wchp and dump); connections without a session yet are left out.
pub fn watch_and_session_facts(node: &zk_core::node::Node) -> Facts {
    use zk_core::watch::WatchTable;
    let sessions_of = node.connection_sessions();
    let database = node.database();
    let data_watches_by_session = database
        .watches
        .watches_by_watcher(WatchTable::Data)
        .into_iter()
        .filter_map(|(connection, paths)| {
            sessions_of.get(&connection).map(|session| (*session, paths.into_iter().collect()))
        })
        .collect();
    let data_watches_by_path = database
        .watches
        .watches_by_path(WatchTable::Data)
        .into_iter()
        .map(|(path, connections)| {
            (path, connections.into_iter().filter_map(|connection| sessions_of.get(&connection).copied()).collect())
        })
        .collect();
    let sessions = database.sessions().iter().map(|(id, timeout)| (*id, *timeout)).collect();
    let ephemerals = database
        .tree
        .all_ephemerals()
        .iter()
        .map(|(session, paths)| (*session, paths.iter().cloned().collect()))
        .collect();
    Facts {
        data_watches_by_session,
        data_watches_by_path,
        sessions,
        ephemerals,
        session_expiry: node.session_expiry(),
        ..Facts::default()
    }
}

/// The answer to `word` (already checked against the whitelist).
pub fn answer(word: &str, facts: &Facts) -> String {
    let mut out = String::new();
    match word {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str(if facts.serving { "rw" } else { "null" }),
        "envi" => envi(&mut out),
        _ if !facts.serving => {
            out.push_str(NOT_SERVING);
            out.push('\n');
        }
        "srvr" | "stat" => stat(&mut out, word == "stat", facts),
        "mntr" => mntr(&mut out, facts),
        "conf" => {
            for line in &facts.conf {
                out.push_str(line);
                out.push('\n');
            }
        }
        "cons" => {
            for connection in &facts.connections {
                connection_line(&mut out, connection, false);
                out.push('\n');
            }
            out.push('\n');
        }
        "crst" => out.push_str("Connection stats reset.\n"),
        "srst" => out.push_str("Server stats reset.\n"),
        "dirs" => {
            let _ = writeln!(out, "datadir_size: {}", facts.data_dir_size);
            let _ = writeln!(out, "logdir_size: {}", facts.log_dir_size);
        }
        "wchs" => {
            let _ = writeln!(
                out,
                "{} connections watching {} paths\nTotal watches:{}",
                facts.data_watchers, facts.data_watch_paths, facts.data_watches
            );
        }
        // ZooKeeper's WatchManager.dumpWatches, then the command's closing empty line.
        "wchc" => {
            for (session_id, paths) in &facts.data_watches_by_session {
                let _ = writeln!(out, "0x{session_id:x}");
                for path in paths {
                    let _ = writeln!(out, "\t{path}");
                }
            }
            out.push('\n');
        }
        "wchp" => {
            for (path, sessions) in &facts.data_watches_by_path {
                let _ = writeln!(out, "{path}");
                for session_id in sessions {
                    let _ = writeln!(out, "\t0x{session_id:x}");
                }
            }
            out.push('\n');
        }
        "dump" => dump(&mut out, facts),
        other => {
            let _ = writeln!(out, "{other} is not supported by zkd yet.");
        }
    }
    out
}

/// `dump`: the sessions, then the ephemerals of each session in DataTree.dumpEphemerals'
/// format. A leader (or standalone server) prints its session expiry buckets as
/// ZooKeeper's `ExpiryQueue.dump` does, with the deadline as `java.util.Date` prints it (in
/// UTC); a learner lists each session with its timeout, as ZooKeeper's learner session
/// tracker does. The connections section stays empty: zkd has no connection expiry queue
/// (ZooKeeper's NIO factory lists one there, its Netty factory nothing).
fn dump(out: &mut String, facts: &Facts) {
    out.push_str("SessionTracker dump:\n");
    if let Some(buckets) = &facts.session_expiry {
        let sessions: usize = buckets.iter().map(|(_, ids)| ids.len()).sum();
        let _ = writeln!(out, "Session Sets ({})/({sessions}):", buckets.len());
        for (deadline_ms, ids) in buckets {
            let _ = writeln!(out, "{} expire at {}:", ids.len(), java_date(*deadline_ms));
            for session_id in ids {
                let _ = writeln!(out, "\t0x{session_id:x}");
            }
        }
    } else {
        let _ = writeln!(out, "Global Sessions({}):", facts.sessions.len());
        for (session_id, timeout_ms) in &facts.sessions {
            let _ = writeln!(out, "0x{session_id:x}\t{timeout_ms}ms");
        }
    }
    out.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", facts.ephemerals.len());
    for (session_id, paths) in &facts.ephemerals {
        let _ = writeln!(out, "0x{session_id:x}:");
        for path in paths {
            let _ = writeln!(out, "\t{path}");
        }
    }
    out.push_str("Connections dump:\n");
}

/// ZooKeeper's `ServerCnxn.dumpConnectionInfo`: brief for `stat`, full for `cons` (the
/// session's fields only once it has one).
fn connection_line(out: &mut String, connection: &ConnectionFacts, brief: bool) {
    let _ = write!(
        out,
        " /{}[1](queued={},recved={},sent={}",
        connection.remote, connection.queued, connection.received, connection.sent
    );
    if let Some(stats) = connection.stats.filter(|stats| !brief && stats.session_id != 0) {
        let latency = &stats.latency;
        let average_ms = latency.total_ms.checked_div(latency.count).unwrap_or(0);
        let _ = write!(
            out,
            ",sid=0x{:x},lop={},est={},to={}",
            stats.session_id, stats.last_op, stats.established_ms, stats.session_timeout_ms
        );
        if stats.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", stats.last_cxid);
        }
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            stats.last_zxid, stats.last_response_ms, stats.last_latency_ms, latency.min_ms, average_ms, latency.max_ms
        );
    }
    out.push(')');
}

fn stat(out: &mut String, with_clients: bool, facts: &Facts) {
    let _ = writeln!(out, "Zookeeper version: {VERSION}");
    if with_clients {
        out.push_str("Clients:\n");
        for connection in &facts.connections {
            connection_line(out, connection, true);
            out.push('\n');
        }
        out.push('\n');
    }
    let latency = &facts.latency;
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        latency.min_ms,
        java_double(latency.average_ms()),
        latency.max_ms
    );
    let _ = writeln!(out, "Received: {}", facts.received);
    let _ = writeln!(out, "Sent: {}", facts.sent);
    let _ = writeln!(out, "Connections: {}", facts.connections.len());
    let _ = writeln!(out, "Outstanding: {}", facts.outstanding);
    let _ = writeln!(out, "Zxid: 0x{:x}", facts.zxid);
    let _ = writeln!(out, "Mode: {}", facts.mode);
    let _ = writeln!(out, "Node count: {}", facts.node_count);
    if facts.mode == "leader" {
        let sizes = facts.proposal_sizes;
        let _ = writeln!(out, "Proposal sizes last/min/max: {}/{}/{}", sizes.last, sizes.min, sizes.max);
    }
}

/// A wall-clock time as `java.util.Date.toString` prints it in UTC:
/// `Sun Nov 22 05:39:33 UTC 2026`.
fn java_date(epoch_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let seconds = epoch_ms.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {day:02} {:02}:{:02}:{:02} UTC {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

/// A double as Java's `Double.toString` prints it for these magnitudes: the shortest
/// round-trip digits, always with a fraction ("0.0", "2.5", "1.3333333333333333").
fn java_double(value: f64) -> String {
    let text = format!("{value}");
    if text.contains('.') || text.contains('e') || !value.is_finite() {
        text
    } else {
        format!("{text}.0")
    }
}

fn mntr(out: &mut String, facts: &Facts) {
    let mut line = |key: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "zk_{key}\t{value}");
    };
    line("version", &VERSION);
    line("server_state", &facts.mode);
    line("avg_latency", &java_double(facts.latency.average_ms()));
    line("max_latency", &facts.latency.max_ms);
    line("min_latency", &facts.latency.min_ms);
    line("packets_received", &facts.received);
    line("packets_sent", &facts.sent);
    line("num_alive_connections", &facts.connections.len());
    line("outstanding_requests", &facts.outstanding);
    line("znode_count", &facts.node_count);
    line("watch_count", &facts.watch_count);
    line("ephemerals_count", &facts.ephemerals_count);
    line("approximate_data_size", &facts.approximate_data_size);
    line("last_zxid", &format_args!("0x{:x}", facts.zxid));
    line("fsync_count", &facts.fsyncs);
    line("log_appends", &facts.log_appends);
    if facts.mode == "leader" {
        line("last_proposal_size", &facts.proposal_sizes.last);
        line("min_proposal_size", &facts.proposal_sizes.min);
        line("max_proposal_size", &facts.proposal_sizes.max);
    }
}

fn envi(out: &mut String) {
    out.push_str("Environment:\n");
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| String::from("localhost"));
    let dir = std::env::current_dir().map(|dir| dir.display().to_string()).unwrap_or_default();
    for (key, value) in [
        ("zookeeper.version", VERSION.to_owned()),
        ("host.name", host),
        ("os.name", std::env::consts::OS.to_owned()),
        ("os.arch", std::env::consts::ARCH.to_owned()),
        ("user.dir", dir),
        ("zkd.version", env!("CARGO_PKG_VERSION").to_owned()),
    ] {
        let _ = writeln!(out, "{key}={value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving() -> Facts {
        Facts {
            mode: "standalone",
            serving: true,
            zxid: 0x1f,
            node_count: 5,
            received: 9,
            sent: 8,
            outstanding: 1,
            connections: vec![ConnectionFacts {
                remote: "127.0.0.1:5000".into(),
                queued: 0,
                received: 3,
                sent: 2,
                stats: None,
            }],
            conf: vec!["clientPort=2181".into(), "tickTime=2000".into()],
            ..Facts::default()
        }
    }

    #[test]
    fn only_known_words_are_recognised() {
        assert_eq!(parse(b"ruok"), Some("ruok"));
        assert_eq!(parse(b"mntr"), Some("mntr"));
        assert_eq!(parse(&[0, 0, 0, 45]), None, "a frame length is not a word");
        assert_eq!(parse(b"RUOK"), None);
    }

    #[test]
    fn srvr_has_the_lines_tools_parse() {
        let text = answer("srvr", &serving());
        let expected = format!(
            "Zookeeper version: {VERSION}\nLatency min/avg/max: 0/0.0/0\nReceived: 9\nSent: 8\nConnections: 1\n\
             Outstanding: 1\nZxid: 0x1f\nMode: standalone\nNode count: 5\n"
        );
        assert_eq!(text, expected);
        let stat = answer("stat", &serving());
        assert!(stat.contains("Clients:\n /127.0.0.1:5000[1](queued=0,recved=3,sent=2)\n\nLatency"), "{stat}");
        let leader = answer("srvr", &Facts { mode: "leader", ..serving() });
        assert!(leader.ends_with("Mode: leader\nNode count: 5\nProposal sizes last/min/max: -1/-1/-1\n"));
        let proposal_sizes = zk_core::node::ProposalSizes { last: 90, min: 60, max: 1200 };
        let leader = Facts { mode: "leader", proposal_sizes, ..serving() };
        assert!(answer("srvr", &leader).ends_with("Proposal sizes last/min/max: 90/60/1200\n"));
        let mntr = answer("mntr", &leader);
        assert!(mntr.ends_with("zk_last_proposal_size\t90\nzk_min_proposal_size\t60\nzk_max_proposal_size\t1200\n"));
        assert!(!answer("mntr", &serving()).contains("proposal_size"), "only a leader reports proposal sizes");
    }

    #[test]
    fn mntr_is_tab_separated_zk_keys() {
        let text = answer("mntr", &serving());
        assert!(text.starts_with(&format!("zk_version\t{VERSION}\nzk_server_state\tstandalone\n")), "{text}");
        assert!(text.contains("zk_znode_count\t5\n"));
        assert!(text.lines().all(|line| line.starts_with("zk_") && line.split('\t').count() == 2));
    }

    #[test]
    fn simple_words() {
        assert_eq!(answer("ruok", &Facts::default()), "imok");
        assert_eq!(answer("isro", &serving()), "rw");
        assert_eq!(answer("isro", &Facts::default()), "null");
        assert_eq!(answer("conf", &serving()), "clientPort=2181\ntickTime=2000\n");
        assert_eq!(answer("srvr", &Facts::default()), format!("{NOT_SERVING}\n"));
        assert!(answer("envi", &Facts::default()).starts_with("Environment:\nzookeeper.version="));
        assert_eq!(refusal("mntr"), "mntr is not executed because it is not in the whitelist.\n");
        let wchs = answer("wchs", &Facts { data_watchers: 2, data_watch_paths: 3, data_watches: 4, ..serving() });
        assert_eq!(wchs, "2 connections watching 3 paths\nTotal watches:4\n");
        let facts = Facts {
            data_watches_by_session: vec![(0x1ab, vec!["/a".into(), "/b".into()])],
            data_watches_by_path: vec![("/a".into(), vec![0x1ab, 0x2])],
            sessions: vec![(0x1ab, 4000)],
            ephemerals: vec![(0x1ab, vec!["/e".into()])],
            ..serving()
        };
        assert_eq!(answer("wchc", &facts), "0x1ab\n\t/a\n\t/b\n\n");
        let latency = zk_core::node::RequestLatency { count: 3, total_ms: 4, min_ms: 0, max_ms: 3 };
        let srvr = answer("srvr", &Facts { latency, ..serving() });
        assert!(srvr.contains("Latency min/avg/max: 0/1.3333333333333333/3\n"), "{srvr}");
        let mntr = answer("mntr", &Facts { latency, ..serving() });
        assert!(mntr.contains("zk_avg_latency\t1.3333333333333333\nzk_max_latency\t3\nzk_min_latency\t0\n"), "{mntr}");
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(answer("wchp", &facts), "/a\n\t0x1ab\n\t0x2\n\n");
        assert_eq!(
            answer("dump", &facts),
            "SessionTracker dump:\nGlobal Sessions(1):\n0x1ab\t4000ms\nephemeral nodes dump:\n\
             Sessions with Ephemerals (1):\n0x1ab:\n\t/e\nConnections dump:\n"
        );
        // A leader lists its expiry buckets, as ZooKeeper 3.8's standalone server printed
        // them on 2026-11-22.
        let deadline_ms = 1_795_325_973_000;
        let leader = Facts { session_expiry: Some(vec![(deadline_ms, vec![0x10000a80bff0000])]), ..facts };
        assert!(
            answer("dump", &leader).starts_with(
                "SessionTracker dump:\nSession Sets (1)/(1):\n1 expire at Sun Nov 22 05:39:33 UTC 2026:\n\
                 \t0x10000a80bff0000\nephemeral nodes dump:\n"
            ),
            "{}",
            answer("dump", &leader)
        );
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(951_782_400_000 + 3_599_999), "Tue Feb 29 00:59:59 UTC 2000");
    }
}
