//! What a snapshot of a tree of `N` znodes of 100 bytes costs the node (taking the image,
//! and writes while the driver holds it), the driver (encoding it) and a restart (loading it).
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
    // What the node pays: taking the image.
    let start = std::time::Instant::now();
    let image = zk_core::ondisk::SnapshotImage::of(&database);
    let taken = start.elapsed();
    // Writes while the driver still holds the image copy what they touch.
    let mut zxid = (parents + count) as i64;
    let mut set_data = |database: &mut Database, rounds: usize| {
        let start = std::time::Instant::now();
        for round in 0..rounds {
            zxid += 1;
            let index = (round * 7_919) % count;
            let txn = Txn::SetData {
                path: format!("/p{}/n{index}", index % parents),
                data: Some(vec![b'y'; 100]),
                version: -1,
            };
            apply(&mut database.tree, &TxnHeader { zxid, ..Default::default() }, &txn);
        }
        start.elapsed() / rounds as u32
    };
    let writes = 100_000.min(count);
    let while_held = set_data(&mut database, writes);
    // What the driver pays, on its own thread.
    let start = std::time::Instant::now();
    let bytes = image.encode();
    let encoded = start.elapsed();
    drop(image);
    let after = set_data(&mut database, writes);
    // What a restart pays to load it.
    let start = std::time::Instant::now();
    let decoded = zk_core::ondisk::decode_snapshot(&bytes).expect("the snapshot decodes");
    let loaded = start.elapsed();
    assert_eq!(decoded.tree.node_count(), database.tree.node_count());
    println!(
        "{count} znodes: the node takes the snapshot image in {taken:.2?}; the driver encodes it ({} MB) in \
         {encoded:.2?}; a setData costs {while_held:.2?} while the image is held, {after:.2?} after; \
         decoding and rebuilding the tree takes {loaded:.2?}",
        bytes.len() >> 20
    );
}
