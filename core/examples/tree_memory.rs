//! How much memory the znode tree takes: the process's resident set before and after
//! creating `N` znodes of 100 bytes (1,000 per parent), through the same txns a server applies.
//!
//!     cargo run --release -p zk-core --example tree_memory -- 1000000

use zk_core::database::Database;
use zk_core::txn::{CreateKind, Txn, TxnHeader};

/// The process's resident set in bytes, from /proc (Linux).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn main() {
    let count: usize = std::env::args().nth(1).map_or(1_000_000, |arg| arg.parse().expect("a count"));
    let before = resident_bytes();
    let mut database = Database::default();
    let parents = count.div_ceil(1000).max(1);
    let mut zxid = 0;
    let mut create = |database: &mut Database, path: String, data: Option<Vec<u8>>| {
        zxid += 1;
        let txn = Txn::Create {
            op: zk_core::proto::OpCode::Create,
            path,
            data,
            acl: zk_core::acl::open_acl_unsafe(),
            kind: CreateKind::Persistent,
            parent_cversion: -1,
        };
        database.apply(&TxnHeader { zxid, ..Default::default() }, &txn, &|_, _| true);
    };
    for parent in 0..parents {
        create(&mut database, format!("/p{parent:04}"), None);
    }
    for index in 0..count {
        create(&mut database, format!("/p{:04}/n{index:07}", index % parents), Some(vec![b'x'; 100]));
    }
    let after = resident_bytes();
    let per_znode = (after - before) as f64 / count as f64;
    println!("{count} znodes of 100 B: {} MB resident ({per_znode:.0} bytes per znode)", (after - before) >> 20);
    assert_eq!(database.tree.node_count(), count + parents + 4);
}
