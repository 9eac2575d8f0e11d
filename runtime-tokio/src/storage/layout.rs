//! Where a server's files live and what they are called: a `zkd` folder in dataDir and
//! dataLogDir (so a ZooKeeper `version-2` folder beside it is never mistaken for zkd's),
//! log segments and snapshots named after a zxid in hex, the epoch files; and which of
//! them autopurge may delete.

use std::io;
use std::path::{Path, PathBuf};

use super::fs::FileSystem;

/// The folder, inside dataDir and dataLogDir, that holds zkd's files.
pub const ZKD_FOLDER: &str = "zkd";

pub(super) const LOG_PREFIX: &str = "log.";
pub(super) const SNAPSHOT_PREFIX: &str = "snapshot.";
pub(super) const ACCEPTED_EPOCH: &str = "acceptedEpoch";
pub(super) const CURRENT_EPOCH: &str = "currentEpoch";

/// The paths of a server's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `<dataDir>/zkd`: snapshots and epoch files.
    pub snapshot_dir: PathBuf,
    /// `<dataLogDir>/zkd`: log segments.
    pub log_dir: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path, data_log_dir: &Path) -> Layout {
        Layout { snapshot_dir: data_dir.join(ZKD_FOLDER), log_dir: data_log_dir.join(ZKD_FOLDER) }
    }

    pub(super) fn log_path(&self, first_zxid: i64) -> PathBuf {
        self.log_dir.join(format!("{LOG_PREFIX}{first_zxid:x}"))
    }

    pub(super) fn snapshot_path(&self, zxid: i64) -> PathBuf {
        self.snapshot_dir.join(snapshot_name(zxid))
    }
}

/// The name of the snapshot taken at `zxid`.
pub(super) fn snapshot_name(zxid: i64) -> String {
    format!("{SNAPSHOT_PREFIX}{zxid:x}")
}

/// The zxid in a file name `<prefix><hex>`, if the name is exactly that.
pub(super) fn parse_zxid_name(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.is_empty() || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|zxid| zxid as i64)
}

/// The zxids named by files with `prefix` in `dir`, ascending.
pub(super) fn list_zxids<F: FileSystem>(fs: &F, dir: &Path, prefix: &str) -> io::Result<Vec<i64>> {
    let mut zxids: Vec<i64> = fs.list(dir)?.iter().filter_map(|name| parse_zxid_name(name, prefix)).collect();
    zxids.sort_unstable();
    Ok(zxids)
}

/// What autopurge deletes: every snapshot but the `retain` newest, and every log segment
/// that only holds txns the oldest kept snapshot already covers. A segment is kept when it
/// starts after that snapshot, or when it is the last one starting at or before it (its
/// tail may follow the snapshot). Both lists ascending.
pub fn purge_plan(snapshots: &[i64], logs: &[i64], retain: usize) -> (Vec<i64>, Vec<i64>) {
    debug_assert!(snapshots.windows(2).all(|pair| pair[0] < pair[1]) && logs.windows(2).all(|pair| pair[0] < pair[1]));
    if retain == 0 || snapshots.len() <= retain {
        return (Vec::new(), Vec::new());
    }
    let deleted_snapshots = snapshots[..snapshots.len() - retain].to_vec();
    let oldest_kept = snapshots[snapshots.len() - retain];
    let covering = logs.iter().rposition(|&first| first <= oldest_kept);
    let deleted_logs = match covering {
        Some(index) => logs[..index].to_vec(),
        None => Vec::new(),
    };
    (deleted_snapshots, deleted_logs)
}
