//! A standalone zkd in-process, driven by a raw wire-protocol client: sessions, writes,
//! reads and watches; restart from the same dataDir; four-letter words; maxClientCnxns;
//! oversized frames.

// Tests drive real sockets, files and clocks.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::{four_letter, free_port, standalone_config, temp_dir, TestClient};
use zk_core::proto::{EventType, WatcherEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_serves_writes_reads_and_watches_and_keeps_data_across_a_restart() {
    let dir = temp_dir("standalone");
    let port = free_port();
    let mut server = zk_runtime_tokio::start(standalone_config(&dir, port)).await.unwrap();
    server.serving().await;
    let address = server.client_address();

    let mut writer = TestClient::connect(address).await.unwrap();
    let mut watcher = TestClient::connect(address).await.unwrap();
    assert_ne!(writer.session_id, watcher.session_id);
    assert_eq!(writer.create("/app", b"v1").await.unwrap(), 0);
    assert_eq!(writer.create("/app", b"again").await.unwrap(), -110, "NodeExists");
    assert_eq!(watcher.get_data("/app", true).await.unwrap(), Some(b"v1".to_vec()));
    assert_eq!(writer.set_data("/app", b"v2").await.unwrap(), 0);
    let event = watcher.next_event().await.unwrap();
    assert_eq!(event, WatcherEvent { event_type: EventType::NodeDataChanged.code(), state: 3, path: "/app".into() });
    assert_eq!(watcher.get_data("/app", false).await.unwrap(), Some(b"v2".to_vec()));
    for index in 0..50 {
        assert_eq!(writer.create(&format!("/app/n{index}"), b"x").await.unwrap(), 0);
    }
    let stats = server.shutdown().await.unwrap();
    assert!(stats.appends >= 52, "{stats:?}");
    assert!(stats.log_syncs <= stats.appends, "{stats:?}");

    let mut server = zk_runtime_tokio::start(standalone_config(&dir, port)).await.unwrap();
    server.serving().await;
    let mut reader = TestClient::connect(server.client_address()).await.unwrap();
    assert_eq!(reader.get_data("/app", false).await.unwrap(), Some(b"v2".to_vec()));
    assert_eq!(reader.get_data("/app/n49", false).await.unwrap(), Some(b"x".to_vec()));
    assert!(reader.session_id != writer.session_id);
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words_are_answered_in_zookeepers_formats_and_the_whitelist_holds() {
    let dir = temp_dir("four-letter");
    let mut server = zk_runtime_tokio::start(standalone_config(&dir, free_port())).await.unwrap();
    server.serving().await;
    let address = server.client_address();
    let mut client = TestClient::connect(address).await.unwrap();
    assert_eq!(client.create("/x", b"1").await.unwrap(), 0);

    assert_eq!(four_letter(address, "ruok").await.unwrap(), "imok");
    assert_eq!(four_letter(address, "isro").await.unwrap(), "rw");
    let srvr = four_letter(address, "srvr").await.unwrap();
    assert!(srvr.starts_with("Zookeeper version: 3.8.4-zkd"), "{srvr}");
    assert!(srvr.contains("\nMode: standalone\n"), "{srvr}");
    assert!(srvr.contains("\nConnections: 1\n"), "{srvr}");
    assert!(srvr.contains("\nZxid: 0x"), "{srvr}");
    let mntr = four_letter(address, "mntr").await.unwrap();
    assert!(mntr.contains("zk_server_state\tstandalone\n"), "{mntr}");
    assert!(mntr.contains("zk_znode_count\t5\n"), "{mntr}");
    assert!(mntr.lines().all(|line| line.starts_with("zk_")), "{mntr}");
    let stat = four_letter(address, "stat").await.unwrap();
    assert!(stat.contains("Clients:\n /127.0.0.1:"), "{stat}");
    let conf = four_letter(address, "conf").await.unwrap();
    assert!(conf.contains(&format!("clientPort={}\n", address.port())), "{conf}");
    assert!(conf.contains("tickTime=200\n"), "{conf}");
    assert_eq!(
        four_letter(address, "envi").await.unwrap(),
        "envi is not executed because it is not in the whitelist.\n"
    );
    // Watches by session and by path, and the sessions with their ephemerals.
    assert_eq!(client.get_data("/x", true).await.unwrap(), Some(b"1".to_vec()));
    let session = format!("0x{:x}", client.session_id);
    assert_eq!(four_letter(address, "wchc").await.unwrap(), format!("{session}\n\t/x\n\n"));
    assert_eq!(four_letter(address, "wchp").await.unwrap(), format!("/x\n\t{session}\n\n"));
    let dump = four_letter(address, "dump").await.unwrap();
    // A standalone server is its own leader: it lists its session expiry buckets.
    assert!(dump.starts_with("SessionTracker dump:\nSession Sets (1)/(1):\n1 expire at "), "{dump}");
    assert!(dump.contains(" UTC 20") && dump.contains(&format!(":\n\t{session}\n")), "{dump}");
    assert!(dump.contains("ephemeral nodes dump:\nSessions with Ephemerals (0):\n"), "{dump}");
    let cons = four_letter(address, "cons").await.unwrap();
    assert!(cons.contains(&format!(",sid={session},lop=GETD,est=")), "{cons}");
    assert!(cons.contains(",to=") && cons.contains(",lcxid=0x") && cons.contains(",maxlat="), "{cons}");
    // The session still works after all that.
    assert_eq!(client.get_data("/x", false).await.unwrap(), Some(b"1".to_vec()));
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_client_cnxns_and_oversized_frames_close_connections() {
    let dir = temp_dir("limits");
    let mut config = standalone_config(&dir, free_port());
    config.max_client_cnxns = 2;
    config.jute_maxbuffer = 1024;
    let mut server = zk_runtime_tokio::start(config).await.unwrap();
    server.serving().await;
    let address = server.client_address();
    let mut first = TestClient::connect(address).await.unwrap();
    let _second = TestClient::connect(address).await.unwrap();
    assert!(TestClient::connect(address).await.is_err(), "a third connection from one address is refused");

    // A frame longer than jute.maxbuffer + 1024 closes the connection.
    first.send_raw(&(4096i32).to_be_bytes()).await.unwrap();
    assert!(first.closed().await);
    // Its slot is free again.
    let mut third = TestClient::connect(address).await.unwrap();
    assert_eq!(third.create("/ok", b"").await.unwrap(), 0);
    // Data over jute.maxbuffer (but within the frame limit) is refused, not a disconnect.
    assert_ne!(third.create("/big", &[7; 1500]).await.unwrap(), 0);
    // A negative length closes too.
    third.send_raw(&(-5i32).to_be_bytes()).await.unwrap();
    assert!(third.closed().await);
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_replies_does_not_stall_the_others() {
    use tokio::io::AsyncWriteExt;
    use zk_core::proto::{self, GetDataRequest, Request};
    let dir = temp_dir("backpressure");
    let mut server = zk_runtime_tokio::start(standalone_config(&dir, free_port())).await.unwrap();
    server.serving().await;
    let address = server.client_address();
    let mut polite = TestClient::connect(address).await.unwrap();
    assert_eq!(polite.create("/big", &[1; 4000]).await.unwrap(), 0);

    // A session that pipelines 500k reads of a 4 KB node (13 MB of requests, more than
    // loopback buffers hold) and never reads a reply: 2 GB
    // of replies the server must not buffer.
    let greedy = TestClient::connect(address).await.unwrap();
    let mut raw = greedy.into_stream();
    let flood = tokio::spawn(async move {
        let request = Request::GetData(GetDataRequest { path: "/big".into(), watch: false });
        let mut frames = Vec::new();
        for xid in 1..=500_000 {
            frames.extend_from_slice(&proto::encode_request(xid, &request));
        }
        raw.write_all(&frames).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    if flood.is_finished() {
        panic!("the server read the whole flood: {:?}", flood.await);
    }
    // What the server holds for that connection is bounded (its reply queue is 4096
    // frames of 4 KB at most): the process stays far from the 2 GB it was asked for.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    eprintln!("resident memory with the flood blocked: {} MB", rss_kb / 1024);
    assert!(rss_kb < 400 * 1024, "{rss_kb} kB resident");
    // Everyone else is served as usual.
    for index in 0..20 {
        assert_eq!(polite.create(&format!("/other{index}"), b"").await.unwrap(), 0);
    }
    assert_eq!(polite.get_data("/other19", false).await.unwrap(), Some(Vec::new()));
    flood.abort();
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
