//! How long the node pauses to encode a snapshot of a tree of `N` znodes of 100 bytes.
//!
//!     cargo run --release -p zk-core --example snapshot_encode -- 1000000

use zk_core::database::Database;
use zk_core::txn::{apply, CreateKind, Txn, TxnHeader};

#[allow(clippy::disallowed_methods)] // wall time, to print a duration
fn main() {
    let count: usize = std::env::args().nth(1).map_or(100_000, |arg| arg.parse().expect("a count"));
    let mut database = Database::default();
    let parents = (count / 1000).max(1);
    for parent in 0..parents {
        let txn = Txn::Create {
            op: zk_core::proto::OpCode::Create,
            path: format!("/p{parent}"),
            data: None,
            acl: zk_core::acl::open_acl_unsafe(),
            kind: CreateKind::Persistent,
            parent_cversion: parent as i32 + 1,
        };
        apply(&mut database.tree, &TxnHeader { zxid: parent as i64 + 1, ..Default::default() }, &txn);
    }
    for index in 0..count {
        let parent = index % parents;
        let txn = Txn::Create {
            op: zk_core::proto::OpCode::Create,
            path: format!("/p{parent}/n{index}"),
            data: Some(vec![b'x'; 100]),
            acl: zk_core::acl::open_acl_unsafe(),
            kind: CreateKind::Persistent,
            parent_cversion: (index / parents) as i32 + 1,
        };
        apply(&mut database.tree, &TxnHeader { zxid: (parents + index) as i64 + 1, ..Default::default() }, &txn);
    }
    let start = std::time::Instant::now();
    let bytes = zk_core::storage::encode_snapshot(&database);
    let encoded = start.elapsed();
    let start = std::time::Instant::now();
    let copy = database.tree.clone();
    let cloned = start.elapsed();
    println!(
        "{count} znodes: snapshot of {} MB encoded in {encoded:.2?}; a clone of the tree takes {cloned:.2?}",
        bytes.len() >> 20
    );
    drop(copy);
}
