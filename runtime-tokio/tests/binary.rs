//! The `zkd` binary as a child process: killed with SIGKILL while pipelined writes are in
//! flight, restarted from the same dataDir, and every acknowledged write is there; then a
//! graceful SIGTERM shutdown.

// Tests drive real processes, sockets, files and clocks.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{create_request, four_letter, free_port, temp_dir, TestClient, TIMEOUT};

fn spawn_zkd(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_zkd"))
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("zkd starts")
}

/// Connects once the server accepts sessions.
async fn connect_when_serving(address: SocketAddr) -> TestClient {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Ok(client) = TestClient::connect(address).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("zkd serves")
}

fn mntr_value(mntr: &str, key: &str) -> u64 {
    mntr.lines()
        .find_map(|line| line.strip_prefix(&format!("zk_{key}\t")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {mntr}"))
}

/// Pipelines creates (64 in flight) until 1500 are acknowledged, reads mntr, kills zkd
/// with SIGKILL, and returns the paths acknowledged before the connection broke.
async fn write_until_killed(
    mut client: TestClient,
    child: &mut Child,
    address: SocketAddr,
    round: usize,
) -> (Vec<String>, String) {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            let mut in_flight: BTreeMap<i32, String> = BTreeMap::new();
            let mut next = 0;
            loop {
                while in_flight.len() < 64 {
                    let path = format!("/w/r{round}n{next}");
                    let Ok(xid) = client.send(&create_request(&path, b"payload")).await else { return };
                    in_flight.insert(xid, path);
                    next += 1;
                }
                match client.any_reply().await {
                    Ok((xid, 0)) => acknowledged.lock().unwrap().push(in_flight.remove(&xid).unwrap()),
                    Ok((xid, err)) => panic!("create {xid} failed with {err}"),
                    Err(_) => return,
                }
            }
        })
    };
    tokio::time::timeout(TIMEOUT, async {
        while acknowledged.lock().unwrap().len() < 1500 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap();
    let mntr = four_letter(address, "mntr").await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    tokio::time::timeout(TIMEOUT, writer).await.unwrap().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    (acknowledged, mntr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkd_killed_with_sigkill_mid_writes_loses_no_acknowledged_write() {
    let dir = temp_dir("binary");
    let port = free_port();
    let config = dir.join("zoo.cfg");
    let log = dir.join("zkd.log");
    std::fs::write(
        &config,
        format!(
            "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nmaxSessionTimeout=60000\n\
             4lw.commands.whitelist=ruok,mntr\npreAllocSize=1024\nsnapCount=1000\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut child = spawn_zkd(&config, &log);
    let mut client = connect_when_serving(address).await;
    assert_eq!(four_letter(address, "ruok").await.unwrap(), "imok");
    assert_eq!(client.create("/w", b"").await.unwrap(), 0);

    // Three rounds: pipelined writes, SIGKILL while some are in flight, restart, and every
    // write acknowledged in any round is there.
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..3 {
        let (acked, mntr) = write_until_killed(client, &mut child, address, round).await;
        let (fsyncs, appends) = (mntr_value(&mntr, "fsync_count"), mntr_value(&mntr, "log_appends"));
        eprintln!(
            "round {round}: {} creates acknowledged before SIGKILL; {appends} log appends in {fsyncs} fsyncs \
             ({:.1} txns per fsync)",
            acked.len(),
            appends as f64 / fsyncs.max(1) as f64
        );
        assert!(fsyncs < appends, "group commit covers several txns per fsync under pipelined load");
        acknowledged.extend(acked);
        // snapCount=1000: snapshots were written in the background while the writes went
        // on, so recovery starts from a snapshot and replays the log after it.
        let snapshots = std::fs::read_dir(dir.join("data/zkd"))
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().file_name().to_string_lossy().starts_with("snapshot."))
            .count();
        assert!(snapshots >= 1, "{snapshots} snapshots");

        child = spawn_zkd(&config, &log);
        client = connect_when_serving(address).await;
        for path in &acknowledged {
            assert_eq!(client.get_data(path, false).await.unwrap(), Some(b"payload".to_vec()), "lost {path}");
        }
    }
    // The restarted server takes writes again.
    assert_eq!(client.create("/w/after", b"").await.unwrap(), 0);

    // SIGTERM shuts it down gracefully.
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(TIMEOUT, tokio::task::spawn_blocking(move || child.wait().unwrap()))
        .await
        .unwrap()
        .unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(exit.success(), "zkd exited with {exit}; log:\n{log_text}");
    assert!(log_text.contains("SIGTERM: shutting down"), "{log_text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs zkd to its exit with a wall-clock bound: (exit code, stderr).
fn run_to_exit(arguments: &[&str], environment: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zkd"));
    command.args(arguments).env_remove("JVMFLAGS").env_remove("SERVER_JVMFLAGS");
    let mut child =
        command.envs(environment.iter().copied()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("zkd {arguments:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_setting_zkd_cannot_honour_stops_it_naming_the_setting() {
    let dir = temp_dir("refused");
    let config = dir.join("zoo.cfg");
    let port = free_port();
    std::fs::write(&config, format!("dataDir={}\nclientPort={port}\nquorum.auth.enableSasl=true\n", dir.display()))
        .unwrap();
    let (code, stderr) = run_to_exit(&[config.to_str().unwrap()], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("line 3: quorum.auth.enableSasl: \"true\" is not supported by zkd: quorum SASL"),
        "{stderr}"
    );

    // The same through a system property, from the command line and from JVMFLAGS.
    std::fs::write(&config, format!("dataDir={}\nclientPort={port}\n", dir.display())).unwrap();
    let (code, stderr) = run_to_exit(&["-Dzookeeper.sslQuorum=true", config.to_str().unwrap()], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("-Dzookeeper.sslQuorum: \"true\" is not supported by zkd"), "{stderr}");
    let (code, stderr) = run_to_exit(&[config.to_str().unwrap()], &[("JVMFLAGS", "-Xmx1g -Dzookeeper.skipACL=yes")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("-Dzookeeper.skipACL (from JVMFLAGS)"), "{stderr}");

    // datadir.autocreate=false and no data directory: zkd does not create it.
    let missing = dir.join("missing");
    std::fs::write(&config, format!("dataDir={}\nclientPort={port}\n", missing.display())).unwrap();
    let (code, stderr) = run_to_exit(&["-Dzookeeper.datadir.autocreate=false", config.to_str().unwrap()], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("datadir.autocreate is false"), "{stderr}");
    assert!(!missing.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn system_properties_from_jvmflags_configure_zkd() {
    let dir = temp_dir("jvmflags");
    let config = dir.join("zoo.cfg");
    let log = dir.join("zkd.log");
    let port = free_port();
    std::fs::write(&config, format!("dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n", dir.display()))
        .unwrap();
    let log_file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkd"))
        .arg(&config)
        .env("SERVER_JVMFLAGS", "-Dzookeeper.4lw.commands.whitelist=srvr")
        .env("JVMFLAGS", "-Xmx512m '-Dzookeeper.4lw.commands.whitelist=ruok,srvr'")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _client = connect_when_serving(address).await;
    assert_eq!(four_letter(address, "ruok").await.unwrap(), "imok", "JVMFLAGS came after SERVER_JVMFLAGS");
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
