//! Log segments: appending records (one write per group commit), growing the file in
//! `preAllocSize` steps with zeros written ahead of the records, rolling over to a new
//! segment, and letting a closed segment out of the page cache.

use std::io;

use zk_core::ondisk as formats;

use super::fs::{FileSystem, LogFile};
use super::Storage;

/// A log segment is closed and a new one started once it is this large.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 << 20;

/// The log segment being appended to.
pub(super) struct Segment<L> {
    file: L,
    /// Where the next record goes (records in `unwritten` included).
    write_offset: u64,
    /// The file's length: preallocated in steps of `pre_alloc_bytes`, a hole until written.
    allocated: u64,
    /// Bytes from the start actually written, records or zeros: at least `write_offset`
    /// once `unwritten` is written.
    zeroed: u64,
    /// Records appended since the last write, written at once before the fsync: one
    /// write for a group commit, however many requests it holds.
    unwritten: Vec<u8>,
    /// Written since the last fsync.
    dirty: bool,
}

/// Zeros written ahead of the records, in steps of this many bytes. Writing into a hole
/// makes the filesystem allocate blocks, and fdatasync must then commit that metadata
/// too (a journal commit on ext4): on this project's machines it doubled the fsync of a
/// 1 KiB record (about 250 µs against 130). Zeros written ahead allocate the blocks in
/// one go, so only one fsync in a step pays for it.
pub(super) const ZERO_FILL_STEP: u64 = 64 << 10;

/// `unwritten` keeps its capacity between group commits, up to this much.
const UNWRITTEN_CAPACITY_KEPT: usize = 4 << 20;

impl<F: FileSystem> Storage<F> {
    /// Appends encoded log records, opening a segment named after `first_zxid` if none is
    /// open (or the open one is full).
    pub(super) fn append(&mut self, bytes: &[u8], first_zxid: i64) -> io::Result<()> {
        let full = self.segment.as_ref().is_some_and(|segment| segment.write_offset >= self.options.segment_bytes_max);
        if full {
            self.close_segment()?;
        }
        if self.segment.is_none() {
            let path = self.layout.log_path(first_zxid);
            let file = self.fs.create_log(&path)?;
            // The new file's name must survive a crash for its records to.
            self.fs.sync_dir(&self.layout.log_dir)?;
            self.stats.other_syncs += 1;
            self.segment =
                Some(Segment { file, write_offset: 0, allocated: 0, zeroed: 0, unwritten: Vec::new(), dirty: false });
        }
        let pre_alloc = self.options.pre_alloc_bytes;
        let segment = self.segment.as_mut().expect("opened above");
        let end = segment.write_offset + bytes.len() as u64;
        if pre_alloc > 0 && end > segment.allocated {
            // Zero-filled growth in big steps: fdatasync then rarely has a file size to
            // flush, and recovery reads the zeros as padding.
            segment.allocated = end.div_ceil(pre_alloc) * pre_alloc;
            segment.file.set_len(segment.allocated)?;
        }
        segment.unwritten.extend_from_slice(bytes);
        segment.write_offset = end;
        segment.dirty = true;
        self.stats.appends += count_records(bytes);
        Ok(())
    }

    /// Writes the records appended since the last write, and zeros after them up to the
    /// next [`ZERO_FILL_STEP`] boundary the first time records reach past the zeros
    /// already written (never past the preallocated length, so the file size stays).
    fn write_unwritten(segment: &mut Segment<F::File>) -> io::Result<()> {
        if segment.unwritten.is_empty() {
            return Ok(());
        }
        let from = segment.write_offset - segment.unwritten.len() as u64;
        let end = segment.write_offset;
        if end > segment.zeroed {
            let zeros_to = end.div_ceil(ZERO_FILL_STEP).saturating_mul(ZERO_FILL_STEP).min(segment.allocated).max(end);
            segment.unwritten.resize(segment.unwritten.len() + (zeros_to - end) as usize, 0);
            segment.zeroed = zeros_to;
        }
        let written = segment.file.write_at(from, &segment.unwritten);
        segment.unwritten.clear();
        if segment.unwritten.capacity() > UNWRITTEN_CAPACITY_KEPT {
            segment.unwritten.shrink_to(UNWRITTEN_CAPACITY_KEPT);
        }
        written
    }

    /// Writes and fsyncs what was appended since the last fsync.
    pub(super) fn sync_log(&mut self) -> io::Result<()> {
        if let Some(segment) = self.segment.as_mut().filter(|segment| segment.dirty) {
            Self::write_unwritten(segment)?;
            segment.file.sync_data()?;
            segment.dirty = false;
            self.stats.log_syncs += 1;
        }
        Ok(())
    }

    /// Closes the open segment once it is durable; later appends start a new one.
    pub(super) fn close_segment(&mut self) -> io::Result<()> {
        self.sync_log()?;
        if let Some(mut segment) = self.segment.take() {
            segment.file.forget_cached();
        }
        Ok(())
    }
}

/// How many framed log records `bytes` holds (the encoder's output, so well formed).
pub(super) fn count_records(bytes: &[u8]) -> u64 {
    let mut count = 0;
    let mut offset = 0;
    while let Some(length) = bytes.get(offset + 4..offset + 8) {
        let length = u32::from_le_bytes(length.try_into().expect("four bytes")) as usize;
        offset += formats::LOG_RECORD_HEADER_BYTES + length;
        count += 1;
    }
    count
}
