//! Rough throughput of one standalone Node with instant storage: how many setData requests
//! per second the core handles with 16 requests in flight per connection. A figure for
//! orientation, not a benchmark of zkd (that is zk-bench's job).
//!
//!     cargo run --release -p zk-core --example node_throughput

use zk_core::node::{ClientOutput, Node, NodeConfig, Now};
use zk_core::ondisk::{self, RecoveryInput};
use zk_core::proto::{self, Buffer, ConnectRequest, CreateRequest, Record, Request, SetDataRequest};

fn pump(node: &mut Node, now: Now) -> usize {
    let mut replies = 0;
    loop {
        let mut progress = false;
        while let Some(request) = node.poll_persist() {
            node.handle_persisted(request.token, now);
            progress = true;
        }
        while let Some(output) = node.poll_client() {
            if let ClientOutput::Frame { .. } = output {
                replies += 1;
            }
            progress = true;
        }
        if !progress {
            return replies;
        }
    }
}

#[allow(clippy::disallowed_methods)] // wall time, to print a rate
fn main() {
    let mut now = Now { monotonic_ms: 0, wall_ms: 1_700_000_000_000 };
    let mut node = Node::new(NodeConfig::standalone(1), ondisk::recover(&RecoveryInput::default()).unwrap(), now);
    while !node.is_serving() {
        pump(&mut node, now);
        now.monotonic_ms = node.poll_timeout().unwrap_or(now.monotonic_ms).max(now.monotonic_ms);
        node.handle_timeout(now);
    }
    let connections = 8u64;
    for connection in 0..connections {
        node.handle_client_connected(connection, None, now);
        let connect = ConnectRequest { time_out: 30_000, passwd: Buffer(vec![0; 16]), ..Default::default() };
        node.handle_client_frame(connection, &connect.to_bytes(), now);
        pump(&mut node, now);
        let create = Request::Create(CreateRequest {
            path: format!("/n{connection}"),
            data: None,
            acl: zk_core::acl::open_acl_unsafe(),
            flags: 0,
        });
        node.handle_client_frame(connection, &proto::encode_request(1, &create)[4..], now);
        pump(&mut node, now);
    }
    let data = vec![7u8; 1024];
    let rounds = 20_000u64;
    let start = std::time::Instant::now();
    let mut replies = 0;
    for round in 0..rounds {
        for connection in 0..connections {
            let set = Request::SetData(SetDataRequest {
                path: format!("/n{connection}"),
                data: Some(data.clone()),
                version: -1,
            });
            let frame = proto::encode_request(round as i32 + 2, &set);
            node.handle_client_frame(connection, &frame[4..], now);
        }
        if round % 16 == 15 {
            replies += pump(&mut node, now);
        }
    }
    replies += pump(&mut node, now);
    let elapsed = start.elapsed();
    println!(
        "{replies} setData of 1 KiB in {:.2?}: {:.0} ops/s through one standalone Node (storage instant)",
        elapsed,
        replies as f64 / elapsed.as_secs_f64()
    );
}
