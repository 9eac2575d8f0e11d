//! zkd served to a third-party Rust client, `zookeeper-client` (kezhuw), unchanged: CRUD,
//! one-time, persistent and persistent-recursive watches, multi, ephemerals vanishing with
//! their session, and a session moving to another server of an ensemble.

// Tests drive real sockets, files and clocks.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::time::Duration;

use common::{free_port, standalone_config, temp_dir, Ensemble, TIMEOUT};
use zookeeper_client as zk;

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())
}

async fn connect(address: &str) -> zk::Client {
    tokio::time::timeout(
        TIMEOUT,
        zk::Client::connector().with_session_timeout(Duration::from_secs(10)).connect(address),
    )
    .await
    .expect("connects in time")
    .expect("connects")
}

/// Everything one session does, against whatever `address` serves.
async fn exercise(address: &str, other_address: &str) {
    let client = connect(address).await;
    let observer = connect(other_address).await;

    // CRUD, with versions.
    let (stat, _) = client.create("/rust", b"one", &persistent()).await.unwrap();
    assert_eq!(stat.version, 0);
    assert_eq!(client.get_data("/rust").await.unwrap().0, b"one");
    let stat = client.set_data("/rust", b"two", Some(0)).await.unwrap();
    assert_eq!(stat.version, 1);
    assert!(matches!(client.set_data("/rust", b"stale", Some(0)).await, Err(zk::Error::BadVersion)));
    assert!(matches!(client.create("/rust", b"", &persistent()).await, Err(zk::Error::NodeExists)));
    let (_, sequence) = client
        .create("/rust/seq-", b"", &zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all()))
        .await
        .unwrap();
    assert_eq!(sequence.into_i64(), 0);
    assert_eq!(client.list_children("/rust").await.unwrap(), vec!["seq-0000000000".to_string()]);
    client.delete("/rust/seq-0000000000", None).await.unwrap();
    assert!(matches!(client.delete("/rust/nothing", None).await, Err(zk::Error::NoNode)));

    // One-time watch: fires once, for the change made through another server.
    let (_, _, watcher) = client.get_and_watch_data("/rust").await.unwrap();
    observer.sync("/rust").await.unwrap();
    observer.set_data("/rust", b"three", None).await.unwrap();
    let event = tokio::time::timeout(TIMEOUT, watcher.changed()).await.unwrap();
    assert_eq!(event.event_type, zk::EventType::NodeDataChanged);
    assert_eq!(event.path, "/rust");

    // Persistent and persistent-recursive watches keep firing.
    let mut persistent_watch = client.watch("/rust", zk::AddWatchMode::Persistent).await.unwrap();
    let mut recursive_watch = client.watch("/rust", zk::AddWatchMode::PersistentRecursive).await.unwrap();
    observer.set_data("/rust", b"four", None).await.unwrap();
    observer.create("/rust/child", b"", &persistent()).await.unwrap();
    observer.set_data("/rust/child", b"x", None).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = tokio::time::timeout(TIMEOUT, persistent_watch.changed()).await.unwrap();
        seen.push((event.event_type, event.path));
    }
    assert_eq!(
        seen,
        vec![
            (zk::EventType::NodeDataChanged, "/rust".to_string()),
            (zk::EventType::NodeChildrenChanged, "/rust".to_string())
        ]
    );
    let mut recursive = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(TIMEOUT, recursive_watch.changed()).await.unwrap();
        recursive.push((event.event_type, event.path));
    }
    assert_eq!(
        recursive,
        vec![
            (zk::EventType::NodeDataChanged, "/rust".to_string()),
            (zk::EventType::NodeCreated, "/rust/child".to_string()),
            (zk::EventType::NodeDataChanged, "/rust/child".to_string()),
        ]
    );
    drop(persistent_watch);
    drop(recursive_watch);

    // Multi: all or nothing.
    let mut writer = client.new_multi_writer();
    writer.add_create("/rust/m1", b"", &persistent()).unwrap();
    writer.add_set_data("/rust", b"five", None).unwrap();
    writer.add_delete("/rust/child", None).unwrap();
    assert_eq!(writer.commit().await.unwrap().len(), 3);
    let mut failing = client.new_multi_writer();
    failing.add_create("/rust/m2", b"", &persistent()).unwrap();
    failing.add_delete("/rust/absent", None).unwrap();
    assert!(failing.commit().await.is_err());
    assert!(client.check_stat("/rust/m2").await.unwrap().is_none(), "a failed multi changed nothing");
    assert!(client.check_stat("/rust/m1").await.unwrap().is_some());

    // An ephemeral vanishes when its session closes.
    let owner = connect(address).await;
    owner.create("/rust/eph", b"", &ephemeral()).await.unwrap();
    observer.sync("/rust").await.unwrap();
    assert!(observer.check_stat("/rust/eph").await.unwrap().is_some());
    drop(owner);
    tokio::time::timeout(TIMEOUT, async {
        while observer.check_stat("/rust/eph").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the ephemeral vanishes with its session");

    // Clean up for the next run.
    for path in ["/rust/m1", "/rust"] {
        client.delete(path, None).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_server_serves_zookeeper_client() {
    let port = free_port();
    let mut server = zk_runtime_tokio::start(standalone_config(&temp_dir("zookeeper-client"), port)).await.unwrap();
    server.serving().await;
    let address = format!("127.0.0.1:{port}");
    exercise(&address, &address).await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensemble_serves_zookeeper_client_and_moves_its_session() {
    let mut ensemble = Ensemble::new(3);
    let leader = ensemble.start_all().await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let address = |index: usize| ensemble.server(index).client_address().to_string();
    exercise(&address(follower), &address(other)).await;

    // A session created on one follower moves to the other with its ephemeral: another
    // client presents its session id and password there (the first one stays alive: a
    // client dropped for good closes its session).
    let client = connect(&address(follower)).await;
    client.create("/moving", b"", &ephemeral()).await.unwrap();
    let session_id = client.session_id();
    let session = client.session().clone();
    let moved = tokio::time::timeout(TIMEOUT, zk::Client::connector().with_session(session).connect(&address(other)))
        .await
        .unwrap()
        .expect("the session is accepted by another server");
    assert_eq!(moved.session_id(), session_id);
    assert!(moved.check_stat("/moving").await.unwrap().is_some());
    assert_eq!(moved.check_stat("/moving").await.unwrap().unwrap().ephemeral_owner, session_id.0);
    drop(moved);
    drop(client);
}
