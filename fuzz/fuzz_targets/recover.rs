//! Recovery from arbitrary files: `zk_core::ondisk::recover`, `scan_log` and
//! `decode_snapshot` never panic, and what they accept is consistent.
//!
//! Input: a flags byte, then parts, each a u16 LE length (clamped to what remains) and its
//! bytes: the snapshot, the acceptedEpoch and currentEpoch files (each present when its
//! flag is set), then up to four log segments from what is left. Two more flags frame
//! fuzzed bytes with correct checksums, so the fuzzer reaches the payload decoders instead
//! of stopping at the crc32c: a segment becomes records (a length byte, then the payload),
//! and the snapshot becomes a header around the fuzzed body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_core::ondisk::{
    decode_snapshot, encode_log_records, encode_snapshot, recover, scan_log, LogSegment, RecoveryInput,
};

const SNAPSHOT: u8 = 1;
const ACCEPTED_EPOCH: u8 = 2;
const CURRENT_EPOCH: u8 = 4;
const FRAME_LOG: u8 = 8;
const FRAME_SNAPSHOT: u8 = 16;
const SEGMENTS_MAX: usize = 4;

fn take<'a>(bytes: &mut &'a [u8]) -> &'a [u8] {
    let length = match bytes {
        [low, high, ..] => usize::from(u16::from_le_bytes([*low, *high])),
        _ => 0,
    };
    let rest = bytes.get(2..).unwrap_or_default();
    let (part, rest) = rest.split_at(length.min(rest.len()));
    *bytes = rest;
    part
}

/// Records with correct checksums around fuzzed payloads: a length byte, then the payload.
fn frame_log(mut bytes: &[u8]) -> Vec<u8> {
    let mut framed = Vec::new();
    while let Some((&length, rest)) = bytes.split_first() {
        let (payload, rest) = rest.split_at(usize::from(length).min(rest.len()));
        framed.extend_from_slice(b"ZKDL");
        framed.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        framed.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        framed.extend_from_slice(payload);
        bytes = rest;
    }
    framed
}

/// A snapshot header with a correct checksum around a fuzzed body.
fn frame_snapshot(body: &[u8]) -> Vec<u8> {
    let zxid = 7i64.to_le_bytes();
    let mut framed = b"ZKDS\x01\x00\x00\x00".to_vec();
    framed.extend_from_slice(&zxid);
    framed.extend_from_slice(&crc32c::crc32c_append(crc32c::crc32c(&zxid), body).to_le_bytes());
    framed.extend_from_slice(body);
    framed
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, mut rest)) = input.split_first() else { return };
    let mut snapshot = (flags & SNAPSHOT != 0).then(|| take(&mut rest).to_vec());
    if flags & FRAME_SNAPSHOT != 0 {
        snapshot = snapshot.map(|body| frame_snapshot(&body));
    }
    let accepted_epoch = (flags & ACCEPTED_EPOCH != 0).then(|| take(&mut rest));
    let current_epoch = (flags & CURRENT_EPOCH != 0).then(|| take(&mut rest));
    let mut segments = Vec::new();
    while !rest.is_empty() && segments.len() < SEGMENTS_MAX {
        let part = take(&mut rest);
        segments.push(if flags & FRAME_LOG != 0 { frame_log(part) } else { part.to_vec() });
    }
    let names = ["log.0", "log.1", "log.2", "log.3"];
    let log: Vec<LogSegment<'_>> = segments.iter().zip(names).map(|(bytes, name)| LogSegment { name, bytes }).collect();

    for segment in &log {
        if let Ok(scan) = scan_log(segment.bytes) {
            assert!(scan.valid_len <= segment.bytes.len());
            assert!(scan.entries.windows(2).all(|pair| pair[0].zxid() < pair[1].zxid()));
            let rescanned = scan_log(&encode_log_records(&scan.entries)).expect("encoded records scan");
            assert_eq!(rescanned.entries, scan.entries);
            assert!(!rescanned.torn_tail);
        }
    }
    if let Some(bytes) = &snapshot {
        if let Ok(decoded) = decode_snapshot(bytes) {
            decoded.tree.check_invariants().expect("a decoded tree is consistent");
            let database = decoded.clone().into_database(16);
            let again = decode_snapshot(&encode_snapshot(&database)).expect("an encoded snapshot decodes");
            assert_eq!(again, decoded);
        }
    }

    let input = RecoveryInput { snapshot: snapshot.as_deref(), log: &log, accepted_epoch, current_epoch };
    if let Ok(recovered) = recover(&input) {
        recovered.database.check_invariants();
        let mut tip = recovered.database.last_processed_zxid();
        for entry in &recovered.history {
            assert_eq!(entry.prev_zxid, tip);
            assert!(entry.zxid() > tip);
            tip = entry.zxid();
        }
        if let Some((index, offset)) = recovered.truncate {
            assert!(offset <= log[index].bytes.len());
        }
    }
});
