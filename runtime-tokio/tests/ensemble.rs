//! A 3-server zkd ensemble in-process, over loopback: writes through a follower, the leader
//! shut down mid-writes, a new leader elected, and no acknowledged write lost; the old
//! leader rejoins and catches up.

// Tests drive real sockets, files and clocks.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{four_letter, Ensemble, TestClient, TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_shut_down_mid_writes_a_new_leader_keeps_every_acknowledged_write() {
    let mut ensemble = Ensemble::new(3);
    let leader = ensemble.start_all().await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let srvr = four_letter(ensemble.server(leader).client_address(), "srvr").await.unwrap();
    assert!(srvr.contains("Mode: leader\n"), "{srvr}");
    let srvr = four_letter(ensemble.server(follower).client_address(), "srvr").await.unwrap();
    assert!(srvr.contains("Mode: follower\n"), "{srvr}");
    let conf = four_letter(ensemble.server(follower).client_address(), "conf").await.unwrap();
    assert!(conf.contains(&format!("serverId={}\n", follower + 1)), "{conf}");
    assert!(conf.contains("\nmembership: \nserver.1=127.0.0.1:"), "{conf}");

    // Writes through a follower are forwarded to the leader and acknowledged once committed.
    let mut client = TestClient::connect(ensemble.server(follower).client_address()).await.unwrap();
    assert_eq!(client.create("/e", b"").await.unwrap(), 0);
    for index in 0..20 {
        assert_eq!(client.create(&format!("/e/before{index}"), b"v").await.unwrap(), 0);
    }
    // Reads on the other follower see them after sync-free catch-up at most a moment later.
    let mut reader = TestClient::connect(ensemble.server(other).client_address()).await.unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while reader.get_data("/e/before19", false).await.unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();

    // A writer keeps going through the follower while the leader shuts down; it stops at
    // the first error (the follower drops its clients when it loses its leader).
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            for index in 0..100_000 {
                match client.create(&format!("/e/during{index}"), b"v").await {
                    Ok(0) => acknowledged.lock().unwrap().push(index),
                    _ => break,
                }
            }
        })
    };
    tokio::time::timeout(TIMEOUT, async {
        while acknowledged.lock().unwrap().len() < 30 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    ensemble.stop(leader).await;
    tokio::time::timeout(TIMEOUT, writer).await.unwrap().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 30);

    let new_leader = ensemble.settle().await;
    assert_ne!(new_leader, leader);
    for index in [follower, other] {
        let mut client = TestClient::connect(ensemble.server(index).client_address()).await.unwrap();
        for key in 0..20 {
            let path = format!("/e/before{key}");
            assert!(client.get_data(&path, false).await.unwrap().is_some(), "server {} lost {path}", index + 1);
        }
        for key in &acknowledged {
            let path = format!("/e/during{key}");
            assert!(client.get_data(&path, false).await.unwrap().is_some(), "server {} lost {path}", index + 1);
        }
    }
    let mut client = TestClient::connect(ensemble.server(new_leader).client_address()).await.unwrap();
    assert_eq!(client.create("/e/after", b"v").await.unwrap(), 0);

    // The old leader rejoins as a follower and catches up.
    ensemble.start(leader).await;
    ensemble.settle().await;
    let mut client = TestClient::connect(ensemble.server(leader).client_address()).await.unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while client.get_data("/e/after", false).await.unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    for key in &acknowledged {
        assert!(client.get_data(&format!("/e/during{key}"), false).await.unwrap().is_some());
    }
    eprintln!("acknowledged {} writes during the failover; none lost", acknowledged.len());

    for index in 0..3 {
        ensemble.stop(index).await;
    }
    for dir in &ensemble.dirs {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// The hello a zkd server dials with: length, "ZKDH", version 1, the server id.
fn hello(server_id: u64) -> Vec<u8> {
    let mut frame = 14u32.to_be_bytes().to_vec();
    frame.extend_from_slice(b"ZKDH");
    frame.extend_from_slice(&1u16.to_be_bytes());
    frame.extend_from_slice(&server_id.to_be_bytes());
    frame
}

/// Whether the server closes the connection within the test timeout.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(TIMEOUT, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_port_drops_strangers_and_undecodable_frames() {
    use tokio::io::AsyncWriteExt;
    let mut ensemble = Ensemble::new(3);
    ensemble.start(0).await;
    let quorum = ensemble.server(0).quorum_address().unwrap();

    // A server id that is not in the configuration.
    let mut stream = tokio::net::TcpStream::connect(quorum).await.unwrap();
    stream.write_all(&hello(9)).await.unwrap();
    assert!(closed_by_server(&mut stream).await);
    // Not a hello at all.
    let mut stream = tokio::net::TcpStream::connect(quorum).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(closed_by_server(&mut stream).await);
    // A valid hello, then a frame that is not a peer message: the link is dropped.
    let mut stream = tokio::net::TcpStream::connect(quorum).await.unwrap();
    stream.write_all(&hello(3)).await.unwrap();
    stream.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
    assert!(closed_by_server(&mut stream).await);
    // A frame over the size limit.
    let mut stream = tokio::net::TcpStream::connect(quorum).await.unwrap();
    stream.write_all(&hello(2)).await.unwrap();
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert!(closed_by_server(&mut stream).await);

    // Alone, server 1 has no quorum and does not serve; with server 2 it does.
    assert!(!ensemble.server(0).status().serving);
    ensemble.start(1).await;
    ensemble.settle().await;
    ensemble.stop(0).await;
    ensemble.stop(1).await;
    for dir in &ensemble.dirs {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_serves_reads_and_forwards_writes_without_voting() {
    let mut ensemble = Ensemble::with_observers(3, 1);
    for index in 0..4 {
        ensemble.start(index).await;
    }
    ensemble.settle().await;
    let observer = ensemble.server(3).client_address();
    let srvr = four_letter(observer, "srvr").await.unwrap();
    assert!(srvr.contains("Mode: observer\n"), "{srvr}");
    let mut client = TestClient::connect(observer).await.unwrap();
    assert_eq!(client.create("/through-observer", b"o").await.unwrap(), 0);
    assert_eq!(client.get_data("/through-observer", false).await.unwrap(), Some(b"o".to_vec()));
    for index in 0..4 {
        ensemble.stop(index).await;
    }
    for dir in &ensemble.dirs {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
