//! Storage on memory and on real files: round trips, crashes, group commit, segments,
//! snapshots and autopurge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use zk_core::node::{PersistRequest, PersistToken, StorageOp};
use zk_core::ondisk::{self as formats, encode_log_records, Recovered};

use zk_core::txn::LogEntry;
use zk_core::txn::{Txn, TxnHeader};

use super::fs::{MemoryFileSystem, RealFileSystem};
use super::layout::{list_zxids, parse_zxid_name, purge_plan, Layout, LOG_PREFIX, SNAPSHOT_PREFIX};
use super::segment::{count_records, ZERO_FILL_STEP};
use super::thread::{commit_wait, Command, StorageReport, StorageThread, COMMIT_WAIT_FULL_RECORDS};
use super::{StartError, Storage, StorageOptions, StorageStats};
use crate::testing::temp_dir;

fn entry(prev_zxid: i64, zxid: i64) -> LogEntry {
    LogEntry {
        prev_zxid,
        header: TxnHeader { session_id: 1, cxid: zxid as i32, zxid, time_ms: 5 },
        txn: Txn::SetData { path: "/a".into(), data: Some(vec![zxid as u8; 8]), version: 0 },
    }
}

fn append(token: u64, prev_zxid: i64, zxids: &[i64]) -> PersistRequest {
    let mut entries = Vec::new();
    let mut prev = prev_zxid;
    for &zxid in zxids {
        entries.push(entry(prev, zxid));
        prev = zxid;
    }
    let bytes = encode_log_records(&entries);
    PersistRequest {
        token: PersistToken(token),
        ops: vec![StorageOp::AppendLog { bytes, first_zxid: zxids[0], last_zxid: *zxids.last().unwrap() }],
    }
}

fn options(pre_alloc_bytes: u64) -> StorageOptions {
    StorageOptions { pre_alloc_bytes, snap_retain_count: 3, ..StorageOptions::default() }
}

fn layout(dir: &Path) -> Layout {
    Layout::new(&dir.join("data"), &dir.join("log"))
}

fn zxids(recovered: &Recovered) -> Vec<i64> {
    recovered.history.iter().map(LogEntry::zxid).collect()
}

fn open_real(dir: &Path, pre_alloc: u64) -> Result<(Storage<RealFileSystem>, Recovered), StartError> {
    Storage::open(Arc::new(RealFileSystem), layout(dir), options(pre_alloc))
}

#[test]
fn files_round_trip_through_a_restart() {
    let dir = temp_dir("round-trip");
    let (mut storage, recovered) = open_real(&dir, 4096).unwrap();
    assert!(recovered.history.is_empty());
    storage.persist(&[append(1, 0, &[1, 2]), append(2, 2, &[3])]).unwrap();
    storage
        .persist(&[PersistRequest {
            token: PersistToken(3),
            ops: vec![StorageOp::AcceptedEpoch(4), StorageOp::CurrentEpoch(3)],
        }])
        .unwrap();
    storage.close().unwrap();
    drop(storage);
    let segment = dir.join("log/zkd/log.1");
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), 4096, "preallocated with zeros");
    let (mut storage, recovered) = open_real(&dir, 4096).unwrap();
    assert_eq!(zxids(&recovered), [1, 2, 3]);
    assert_eq!((recovered.accepted_epoch, recovered.current_epoch), (4, 3));
    assert_eq!(recovered.truncate.map(|(index, _)| index), Some(0), "the padding is cut");
    assert!(std::fs::metadata(&segment).unwrap().len() < 4096);
    // Appends after a restart go to a new segment named after their first zxid.
    storage.persist(&[append(1, 3, &[4])]).unwrap();
    drop(storage);
    assert!(dir.join("log/zkd/log.4").exists());
    let (_, recovered) = open_real(&dir, 4096).unwrap();
    assert_eq!(zxids(&recovered), [1, 2, 3, 4]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_torn_tail_is_cut() {
    let dir = temp_dir("torn-tail");
    let (mut storage, _) = open_real(&dir, 0).unwrap();
    storage.persist(&[append(1, 0, &[1, 2])]).unwrap();
    drop(storage);
    let segment = dir.join("log/zkd/log.1");
    let whole = std::fs::read(&segment).unwrap();
    let mut torn = whole.clone();
    torn.extend_from_slice(&encode_log_records(&[entry(2, 3)])[..10]);
    std::fs::write(&segment, &torn).unwrap();
    let (_, recovered) = open_real(&dir, 0).unwrap();
    assert_eq!(zxids(&recovered), [1, 2]);
    assert_eq!(std::fs::read(&segment).unwrap(), whole, "the torn record is gone from the file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_middle_refuses_to_start_naming_the_file_and_offset() {
    let dir = temp_dir("corrupt-middle");
    let (mut storage, _) = open_real(&dir, 0).unwrap();
    storage.persist(&[append(1, 0, &[1, 2, 3])]).unwrap();
    drop(storage);
    let segment = dir.join("log/zkd/log.1");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[14] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    let error = open_real(&dir, 0).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("log file \"log.1\" is corrupt at byte 0"), "{message}");
    assert!(message.contains("refusing to start"), "{message}");
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "nothing was cut");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_wait_for_company_follows_the_last_flush() {
    let max = Duration::from_micros(500);
    assert_eq!(commit_wait(0, max), Duration::ZERO, "nothing flushed yet");
    assert_eq!(commit_wait(1, max), Duration::ZERO, "a lone write is not held back");
    assert_eq!(commit_wait(2, max), Duration::from_micros(40));
    assert_eq!(commit_wait(COMMIT_WAIT_FULL_RECORDS - 1, max), Duration::from_micros(480));
    assert_eq!(commit_wait(COMMIT_WAIT_FULL_RECORDS, max), max);
    assert_eq!(commit_wait(10_000, max), max);
    assert_eq!(commit_wait(10_000, Duration::ZERO), Duration::ZERO, "waiting off");
}

#[test]
fn a_busy_flush_makes_the_next_one_wait_and_gather_what_arrives_meanwhile() {
    let fs = Arc::new(MemoryFileSystem::default());
    let max = Duration::from_millis(2);
    let options = StorageOptions { commit_wait_max: max, ..options(1 << 16) };
    let (storage, _) = Storage::open(fs.clone(), layout(Path::new("/w")), options).unwrap();
    let (commands, receiver) = mpsc::channel();
    // A first flush of 30 records, queued before the thread starts.
    let thirty: Vec<i64> = (1..=30).collect();
    commands.send(Command::Persist(append(1, 0, &thirty))).unwrap();
    let (reports_tx, reports) = mpsc::channel();
    let report = move |report| reports_tx.send(report).unwrap();
    // The wait: recorded, and the first time a request arrives during it.
    let waits = Arc::new(Mutex::new(Vec::new()));
    let sleep = {
        let (waits, commands) = (waits.clone(), commands.clone());
        move |wait: Duration| {
            let mut waits = waits.lock().unwrap();
            if waits.is_empty() {
                commands.send(Command::Persist(append(3, 31, &[32]))).unwrap();
            }
            waits.push(wait);
        }
    };
    let shared = Arc::new(Mutex::new(StorageStats::default()));
    let thread = StorageThread::spawn_with(storage, None, shared, (commands.clone(), receiver), report, sleep).unwrap();
    let next_report = || reports.recv_timeout(Duration::from_secs(10)).expect("a report");
    assert_eq!(next_report(), StorageReport::Persisted(PersistToken(1)));
    // After 30 records the next flush waits the whole time, and the request that
    // arrives meanwhile shares it.
    commands.send(Command::Persist(append(2, 30, &[31]))).unwrap();
    assert_eq!(next_report(), StorageReport::Persisted(PersistToken(3)));
    // After those two records, a share of it; after a lone record, none.
    commands.send(Command::Persist(append(4, 32, &[33]))).unwrap();
    assert_eq!(next_report(), StorageReport::Persisted(PersistToken(4)));
    commands.send(Command::Persist(append(5, 33, &[34]))).unwrap();
    assert_eq!(next_report(), StorageReport::Persisted(PersistToken(5)));
    let stats = thread.stop();
    assert_eq!(*waits.lock().unwrap(), vec![max, max * 2 / COMMIT_WAIT_FULL_RECORDS as u32]);
    assert_eq!((stats.batches, stats.requests, stats.appends, stats.log_syncs), (4, 5, 34, 4));
}

#[test]
fn group_commit_makes_many_requests_durable_with_one_fsync() {
    let fs = Arc::new(MemoryFileSystem::default());
    let (storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), options(1 << 16)).unwrap();
    // Queue 200 requests before the thread starts: it takes them all as one batch.
    let (commands, receiver) = mpsc::channel();
    let mut prev = 0;
    for token in 1..=200 {
        commands.send(Command::Persist(append(token, prev, &[token as i64]))).unwrap();
        prev = token as i64;
    }
    let (reports_tx, reports) = mpsc::channel();
    let shared = Arc::new(Mutex::new(StorageStats::default()));
    let report = move |report| reports_tx.send(report).unwrap();
    let thread =
        StorageThread::spawn_with(storage, None, shared.clone(), (commands, receiver), report, std::thread::sleep)
            .unwrap();
    assert_eq!(reports.recv().unwrap(), StorageReport::Persisted(PersistToken(200)));
    let stats = thread.stop();
    assert_eq!((stats.batches, stats.requests, stats.appends), (1, 200, 200));
    assert_eq!(stats.log_syncs, 1);
    assert_eq!(count_records(&encode_log_records(&[entry(0, 1), entry(1, 2), entry(2, 3)])), 3);
    assert_eq!(fs.log_syncs(), 1, "one fdatasync for 200 requests");
    assert_eq!(*shared.lock().unwrap(), stats);
    // And what was reported is durable.
    fs.crash();
    let (_, recovered) = Storage::open(fs, layout(Path::new("/m")), options(1 << 16)).unwrap();
    assert_eq!(recovered.history.len(), 200);
}

#[test]
fn a_group_commit_is_one_write_and_zeros_are_written_ahead_of_the_records() {
    fn bytes(request: &PersistRequest) -> u64 {
        match &request.ops[0] {
            StorageOp::AppendLog { bytes, .. } => bytes.len() as u64,
            _ => unreachable!(),
        }
    }
    let fs = Arc::new(MemoryFileSystem::default());
    let step = ZERO_FILL_STEP;
    // Preallocation of 2.5 steps: the zeros stop at the file's length.
    let pre_alloc = step * 5 / 2;
    let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/z")), options(pre_alloc)).unwrap();
    storage.persist(&[append(1, 0, &[1]), append(2, 1, &[2, 3]), append(3, 3, &[4])]).unwrap();
    assert_eq!(fs.log_writes(), vec![(0, step)], "four records and zeros to the step, in one write");
    let mut end: u64 = [append(1, 0, &[1]), append(2, 1, &[2, 3]), append(3, 3, &[4])].iter().map(bytes).sum();
    let mut zxid = 4;
    // Batches write their records only, but the one that crosses into the next step
    // zeros it too; the last step stops at the preallocated length.
    let mut zeroed_to = Vec::new();
    let mut records_only = 0;
    while end + 64 <= pre_alloc {
        let request = append(10 + zxid as u64, zxid, &[zxid + 1]);
        let len = bytes(&request);
        storage.persist(&[request]).unwrap();
        let &(offset, written) = fs.log_writes().last().unwrap();
        assert_eq!(offset, end);
        if written == len {
            records_only += 1;
        } else {
            zeroed_to.push(offset + written);
        }
        end += len;
        zxid += 1;
    }
    assert_eq!(zeroed_to, vec![2 * step, pre_alloc]);
    assert!(records_only > 1000, "{records_only}");
    assert_eq!(fs.log_syncs(), fs.log_writes().len() as u64, "one write per fsync");
    // Past the preallocation: the file grows by another preallocation, zeroed a step
    // at a time again.
    while end <= pre_alloc {
        let request = append(10 + zxid as u64, zxid, &[zxid + 1]);
        end += bytes(&request);
        storage.persist(&[request]).unwrap();
        zxid += 1;
    }
    assert_eq!(fs.log_writes().last().map(|(offset, len)| offset + len), Some(pre_alloc.div_ceil(step) * step));
    // The zeros are padding to recovery: every record comes back.
    fs.crash();
    let (_, recovered) = Storage::open(fs, layout(Path::new("/z")), options(pre_alloc)).unwrap();
    assert_eq!(zxids(&recovered), (1..=zxid).collect::<Vec<_>>());
}

#[test]
fn what_was_not_fsynced_is_lost_in_a_crash_and_the_rest_recovers() {
    let fs = Arc::new(MemoryFileSystem::default());
    let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), options(0)).unwrap();
    storage.persist(&[append(1, 0, &[1, 2])]).unwrap();
    // Written, never fsynced: a crash drops it.
    storage.append(&encode_log_records(&[entry(2, 3)]), 3).unwrap();
    fs.crash();
    let (_, recovered) = Storage::open(fs, layout(Path::new("/m")), options(0)).unwrap();
    assert_eq!(zxids(&recovered), [1, 2]);
}

#[test]
fn epoch_writes_come_after_the_appends_before_them() {
    let fs = Arc::new(MemoryFileSystem::default());
    let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), options(0)).unwrap();
    let mut request = append(1, 0, &[1]);
    request.ops.push(StorageOp::CurrentEpoch(1));
    storage.persist(&[request]).unwrap();
    // The append was fsynced before the epoch file was written, and nothing was left
    // dirty for the end of the batch.
    assert_eq!(storage.stats().log_syncs, 1);
}

#[test]
fn a_closed_segment_leaves_the_page_cache_only_once_it_is_durable() {
    let fs = Arc::new(MemoryFileSystem::default());
    let mut small = options(0);
    small.segment_bytes_max = 1;
    let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/f")), small).unwrap();
    storage.persist(&[append(1, 0, &[1, 2]), append(2, 2, &[3, 4])]).unwrap();
    assert_eq!(
        fs.log_forgotten(),
        vec![(PathBuf::from("/f/log/zkd").join(format!("{LOG_PREFIX}1")), true)],
        "the rolled-over segment, once fsynced; not the open one"
    );
    storage.persist(&[append(3, 4, &[5])]).unwrap();
    storage.close().unwrap();
    let segment = |first: u64| (PathBuf::from("/f/log/zkd").join(format!("{LOG_PREFIX}{first:x}")), true);
    // The open segment stays cached through a clean stop: recovery reads it first.
    assert_eq!(fs.log_forgotten(), vec![segment(1), segment(3)]);
}

#[test]
fn real_segments_are_let_out_of_the_cache_without_losing_a_record() {
    let dir = temp_dir("forget");
    let mut small = options(1 << 20);
    small.segment_bytes_max = 1;
    let (mut storage, _) = Storage::open(Arc::new(RealFileSystem), layout(&dir), small.clone()).unwrap();
    storage.persist(&[append(1, 0, &[1, 2]), append(2, 2, &[3]), append(3, 3, &[4, 5])]).unwrap();
    storage.close().unwrap();
    let (_, recovered) = Storage::open(Arc::new(RealFileSystem), layout(&dir), small).unwrap();
    assert_eq!(zxids(&recovered), [1, 2, 3, 4, 5]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn truncation_and_snapshot_install_rewrite_the_log() {
    let fs = Arc::new(MemoryFileSystem::default());
    let mut small = options(0);
    small.segment_bytes_max = 1;
    let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), small.clone()).unwrap();
    storage.persist(&[append(1, 0, &[1, 2]), append(2, 2, &[3, 4]), append(3, 4, &[5])]).unwrap();
    assert_eq!(list_zxids(&*fs, Path::new("/m/log/zkd"), LOG_PREFIX).unwrap(), [1, 3, 5], "segments roll");
    storage
        .persist(&[
            PersistRequest { token: PersistToken(4), ops: vec![StorageOp::TruncateLog { after_zxid: 3 }] },
            append(5, 3, &[7]),
        ])
        .unwrap();
    let (mut storage, recovered) = Storage::open(fs.clone(), layout(Path::new("/m")), small.clone()).unwrap();
    assert_eq!(zxids(&recovered), [1, 2, 3, 7]);

    let snapshot = formats::encode_snapshot(&zk_core::database::Database::from_parts(
        zk_core::tree::DataTree::new(),
        BTreeMap::new(),
        20,
        16,
    ));
    storage
        .persist(&[
            PersistRequest {
                token: PersistToken(6),
                ops: vec![StorageOp::InstallSnapshot { zxid: 20, bytes: snapshot }],
            },
            append(7, 20, &[21]),
        ])
        .unwrap();
    let (_, recovered) = Storage::open(fs.clone(), layout(Path::new("/m")), small).unwrap();
    assert_eq!(recovered.database.last_processed_zxid(), 20);
    assert_eq!(zxids(&recovered), [21]);
    assert_eq!(list_zxids(&*fs, Path::new("/m/log/zkd"), LOG_PREFIX).unwrap(), [21]);
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_an_older_one() {
    let fs = Arc::new(MemoryFileSystem::default());
    let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), options(0)).unwrap();
    let database_at =
        |zxid| zk_core::database::Database::from_parts(zk_core::tree::DataTree::new(), BTreeMap::new(), zxid, 16);
    storage.persist(&[append(1, 0, &[1, 2])]).unwrap();
    let snapshot = |token, zxid| PersistRequest {
        token: PersistToken(token),
        ops: vec![StorageOp::WriteSnapshot(formats::SnapshotImage::of(&database_at(zxid)))],
    };
    storage.persist(&[snapshot(2, 2), append(3, 2, &[3]), snapshot(4, 3), append(5, 3, &[4])]).unwrap();
    storage.close().unwrap();
    let newest = Path::new("/m/data/zkd/snapshot.3");
    fs.put(newest, b"ZKDS garbage".to_vec());
    let (_, recovered) = Storage::open(fs.clone(), layout(Path::new("/m")), options(0)).unwrap();
    assert_eq!(recovered.database.last_processed_zxid(), 2);
    assert_eq!(zxids(&recovered), [3, 4]);
    // With every snapshot damaged, zkd refuses rather than start from a partial log.
    fs.put(Path::new("/m/data/zkd/snapshot.2"), b"bad".to_vec());
    let error = Storage::open(fs, layout(Path::new("/m")), options(0)).unwrap_err();
    assert!(matches!(error, StartError::NoUsableSnapshot { ref problems, .. } if problems.len() == 2), "{error}");
    let message = error.to_string();
    assert!(message.contains("snapshot.3: byte ") && message.contains("snapshot.2: byte "), "{message}");
}

#[test]
fn segments_the_snapshot_covers_are_not_read_at_start_up() {
    let fs = Arc::new(MemoryFileSystem::default());
    let mut small = options(0);
    small.segment_bytes_max = 1;
    let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), small.clone()).unwrap();
    let image = formats::SnapshotImage::of(&zk_core::database::Database::from_parts(
        zk_core::tree::DataTree::new(),
        BTreeMap::new(),
        3,
        16,
    ));
    storage
        .persist(&[
            append(1, 0, &[1]),
            append(2, 1, &[2]),
            append(3, 2, &[3]),
            PersistRequest { token: PersistToken(4), ops: vec![StorageOp::WriteSnapshot(image)] },
            append(5, 3, &[4]),
        ])
        .unwrap();
    storage.close().unwrap();
    // Damage in log.1 (entirely before the snapshot) is never looked at; log.3 holds the
    // snapshot's own txn and is read, log.4 the txn after it.
    fs.put(Path::new("/m/log/zkd/log.1"), b"ZKDL garbage ZKDL".to_vec());
    let (_, recovered) = Storage::open(fs, layout(Path::new("/m")), small).unwrap();
    assert_eq!((recovered.database.last_processed_zxid(), zxids(&recovered)), (3, vec![4]));
}

#[test]
fn purge_keeps_the_newest_snapshots_and_the_logs_they_need() {
    assert_eq!(purge_plan(&[10, 20, 30], &[1, 11, 25], 3), (vec![], vec![]));
    assert_eq!(purge_plan(&[10, 20, 30, 40], &[1, 11, 25, 35], 3), (vec![10], vec![1]));
    // Segment 11 covers txns after snapshot 20 (up to 24), so it stays.
    assert_eq!(purge_plan(&[10, 20, 30, 40, 50], &[1, 11, 25, 35], 3), (vec![10, 20], vec![1, 11]));
    assert_eq!(purge_plan(&[10, 20, 30, 40], &[15, 35], 3), (vec![10], vec![]));
    assert_eq!(purge_plan(&[10, 20, 30, 40], &[21], 3), (vec![10], vec![]));

    let fs = Arc::new(MemoryFileSystem::default());
    let mut few = options(0);
    few.snap_retain_count = 3;
    let (mut storage, _) = Storage::open(fs.clone(), layout(Path::new("/m")), few.clone()).unwrap();
    let mut prev = 0;
    for zxid in 1..=5 {
        let image = formats::SnapshotImage::of(&zk_core::database::Database::from_parts(
            zk_core::tree::DataTree::new(),
            BTreeMap::new(),
            zxid,
            16,
        ));
        storage
            .persist(&[
                append(zxid as u64 * 2, prev, &[zxid]),
                PersistRequest { token: PersistToken(zxid as u64 * 2 + 1), ops: vec![StorageOp::WriteSnapshot(image)] },
            ])
            .unwrap();
        prev = zxid;
    }
    storage.close().unwrap();
    assert_eq!(storage.purge().unwrap(), 4);
    assert_eq!(list_zxids(&*fs, Path::new("/m/data/zkd"), SNAPSHOT_PREFIX).unwrap(), [3, 4, 5]);
    assert_eq!(list_zxids(&*fs, Path::new("/m/log/zkd"), LOG_PREFIX).unwrap(), [3, 4, 5]);
    let (_, recovered) = Storage::open(fs, layout(Path::new("/m")), few).unwrap();
    assert_eq!(recovered.database.last_processed_zxid(), 5);
}

#[test]
fn names_parse_only_when_exact() {
    assert_eq!(parse_zxid_name("log.1a", LOG_PREFIX), Some(0x1a));
    assert_eq!(parse_zxid_name("log.100000001", LOG_PREFIX), Some(0x1_0000_0001));
    for bad in ["log.", "log.1.tmp", "log.xyz", "snapshot.1", "log.+1"] {
        assert_eq!(parse_zxid_name(bad, LOG_PREFIX), None, "{bad}");
    }
}
