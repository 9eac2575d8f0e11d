//! Jute, ZooKeeper's binary record encoding: big-endian integers, length-prefixed strings,
//! buffers and vectors, where a length of -1 stands for null.
//!
//! Decoding never panics and never reads past the slice it is given. A length prefix is
//! checked against the bytes that remain before anything is allocated, so a hostile frame
//! cannot make the decoder allocate more than the frame itself holds.

use std::fmt;

/// Why a frame or record could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The record needs more bytes than the frame holds.
    Truncated { needed: usize, remaining: usize },
    /// A length prefix is negative (other than the -1 that means null).
    NegativeLength(i32),
    /// A string is not valid UTF-8.
    InvalidUtf8,
    /// A frame's length prefix exceeds the configured `jute.maxbuffer`.
    FrameTooLarge { length: usize, max: usize },
    /// A field holds a value the protocol does not allow (a bad multi op type, for example).
    InvalidValue(&'static str),
    /// Bytes were left over after the record ended where the protocol forbids it.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { needed, remaining } => {
                write!(f, "record truncated: needs {needed} more bytes, {remaining} remain")
            }
            DecodeError::NegativeLength(len) => write!(f, "negative length prefix {len}"),
            DecodeError::InvalidUtf8 => write!(f, "string is not valid UTF-8"),
            DecodeError::FrameTooLarge { length, max } => {
                write!(f, "frame of {length} bytes exceeds jute.maxbuffer of {max} bytes")
            }
            DecodeError::InvalidValue(what) => write!(f, "invalid value: {what}"),
            DecodeError::TrailingBytes(count) => write!(f, "{count} unexpected trailing bytes"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over one frame's bytes.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.position
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread rest of the frame, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.position..]
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes(extra)),
        }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if count > self.remaining() {
            return Err(DecodeError::Truncated { needed: count, remaining: self.remaining() });
        }
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(i64::from_be_bytes(array))
    }

    /// Jute writes a boolean as one byte; any non-zero byte reads as true, as in Java.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// Reads a length prefix: `None` for -1 (null), an error for other negative values or
    /// for a length that the remaining bytes cannot hold at `item_size_min` bytes an item.
    fn read_length(&mut self, item_size_min: usize) -> Result<Option<usize>, DecodeError> {
        let length = self.read_i32()?;
        if length == -1 {
            return Ok(None);
        }
        if length < 0 {
            return Err(DecodeError::NegativeLength(length));
        }
        let length = length as usize;
        let needed = length.saturating_mul(item_size_min);
        if needed > self.remaining() {
            return Err(DecodeError::Truncated { needed, remaining: self.remaining() });
        }
        Ok(Some(length))
    }

    /// A buffer; null (-1) reads as `None`.
    pub fn read_opt_buffer(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.read_length(1)? {
            None => Ok(None),
            Some(length) => Ok(Some(self.take(length)?.to_vec())),
        }
    }

    /// A buffer; null reads as empty.
    pub fn read_buffer(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.read_opt_buffer()?.unwrap_or_default())
    }

    /// A ustring; null (-1) reads as `None`.
    pub fn read_opt_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        match self.read_length(1)? {
            None => Ok(None),
            Some(length) => {
                let bytes = self.take(length)?;
                std::str::from_utf8(bytes).map(|text| Some(text.to_owned())).map_err(|_| DecodeError::InvalidUtf8)
            }
        }
    }

    /// A ustring; null reads as empty.
    pub fn read_ustring(&mut self) -> Result<String, DecodeError> {
        Ok(self.read_opt_ustring()?.unwrap_or_default())
    }

    /// A vector of records; null reads as empty. The count is checked against the remaining
    /// bytes at `T::ENCODED_SIZE_MIN` bytes an item before any allocation.
    pub fn read_vector<T: Record>(&mut self) -> Result<Vec<T>, DecodeError> {
        Ok(self.read_opt_vector()?.unwrap_or_default())
    }

    /// A vector of records; null (-1) reads as `None`.
    pub fn read_opt_vector<T: Record>(&mut self) -> Result<Option<Vec<T>>, DecodeError> {
        let Some(count) = self.read_length(T::ENCODED_SIZE_MIN.max(1))? else {
            return Ok(None);
        };
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::read(self)?);
        }
        Ok(Some(items))
    }
}

/// Appends jute-encoded values to a byte vector.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Writer { bytes: Vec::with_capacity(capacity) }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn write_i32(&mut self, value: i32) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    pub fn write_i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    pub fn write_bool(&mut self, value: bool) {
        self.bytes.push(u8::from(value));
    }

    pub fn write_buffer(&mut self, value: &[u8]) {
        self.write_i32(length_prefix(value.len()));
        self.bytes.extend_from_slice(value);
    }

    pub fn write_opt_buffer(&mut self, value: Option<&[u8]>) {
        match value {
            None => self.write_i32(-1),
            Some(bytes) => self.write_buffer(bytes),
        }
    }

    pub fn write_ustring(&mut self, value: &str) {
        self.write_buffer(value.as_bytes());
    }

    pub fn write_opt_ustring(&mut self, value: Option<&str>) {
        self.write_opt_buffer(value.map(str::as_bytes));
    }

    pub fn write_vector<T: Record>(&mut self, items: &[T]) {
        self.write_i32(length_prefix(items.len()));
        for item in items {
            item.write(self);
        }
    }

    pub fn write_opt_vector<T: Record>(&mut self, items: Option<&[T]>) {
        match items {
            None => self.write_i32(-1),
            Some(items) => self.write_vector(items),
        }
    }

    /// Appends raw bytes that are already encoded.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Overwrites four bytes at `offset` with `value`: used to fill in a frame's length
    /// prefix once the body is written.
    pub fn patch_i32(&mut self, offset: usize, value: i32) {
        self.bytes[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
    }
}

/// Lengths on the wire are i32. Everything zkd encodes is bounded far below 2 GiB by
/// jute.maxbuffer, so a larger length is a bug, not bad input.
fn length_prefix(length: usize) -> i32 {
    i32::try_from(length).expect("jute length exceeds i32::MAX")
}

/// A value with a jute encoding.
pub trait Record: Sized {
    /// The fewest bytes any encoding of this record takes; bounds vector counts when decoding.
    const ENCODED_SIZE_MIN: usize;

    fn write(&self, writer: &mut Writer);

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Encodes the record alone.
    fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        self.write(&mut writer);
        writer.into_bytes()
    }

    /// Decodes a record that must fill `bytes` exactly.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let record = Self::read(&mut reader)?;
        reader.finish()?;
        Ok(record)
    }
}

impl Record for String {
    const ENCODED_SIZE_MIN: usize = 4;

    fn write(&self, writer: &mut Writer) {
        writer.write_ustring(self);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.read_ustring()
    }
}

/// A field type that jute can carry; used by the `jute_record!` macro.
pub trait Field: Sized {
    const ENCODED_SIZE_MIN: usize;
    fn write_field(&self, writer: &mut Writer);
    fn read_field(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl Field for i32 {
    const ENCODED_SIZE_MIN: usize = 4;
    fn write_field(&self, writer: &mut Writer) {
        writer.write_i32(*self);
    }
    fn read_field(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.read_i32()
    }
}

impl Field for i64 {
    const ENCODED_SIZE_MIN: usize = 8;
    fn write_field(&self, writer: &mut Writer) {
        writer.write_i64(*self);
    }
    fn read_field(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.read_i64()
    }
}

impl Field for bool {
    const ENCODED_SIZE_MIN: usize = 1;
    fn write_field(&self, writer: &mut Writer) {
        writer.write_bool(*self);
    }
    fn read_field(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.read_bool()
    }
}

impl Field for String {
    const ENCODED_SIZE_MIN: usize = 4;
    fn write_field(&self, writer: &mut Writer) {
        writer.write_ustring(self);
    }
    fn read_field(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.read_ustring()
    }
}

impl Field for Option<String> {
    const ENCODED_SIZE_MIN: usize = 4;
    fn write_field(&self, writer: &mut Writer) {
        writer.write_opt_ustring(self.as_deref());
    }
    fn read_field(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.read_opt_ustring()
    }
}

/// A jute `buffer` that is never null on the wire from zkd (null reads as empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Buffer(pub Vec<u8>);

impl Field for Buffer {
    const ENCODED_SIZE_MIN: usize = 4;
    fn write_field(&self, writer: &mut Writer) {
        writer.write_buffer(&self.0);
    }
    fn read_field(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.read_buffer().map(Buffer)
    }
}

impl From<Vec<u8>> for Buffer {
    fn from(bytes: Vec<u8>) -> Self {
        Buffer(bytes)
    }
}

impl From<&[u8]> for Buffer {
    fn from(bytes: &[u8]) -> Self {
        Buffer(bytes.to_vec())
    }
}

/// A jute `buffer` whose null (-1) is kept apart from empty: znode data created without
/// data reads back as null in ZooKeeper (`get` in zkCli prints "null").
pub type Data = Option<Vec<u8>>;

impl Field for Option<Vec<u8>> {
    const ENCODED_SIZE_MIN: usize = 4;
    fn write_field(&self, writer: &mut Writer) {
        writer.write_opt_buffer(self.as_deref());
    }
    fn read_field(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.read_opt_buffer()
    }
}

impl<T: Record> Field for Vec<T> {
    const ENCODED_SIZE_MIN: usize = 4;
    fn write_field(&self, writer: &mut Writer) {
        writer.write_vector(self);
    }
    fn read_field(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.read_vector()
    }
}

/// Declares a jute record: a struct whose fields are encoded in declaration order.
macro_rules! jute_record {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $crate::proto::jute::Record for $name {
            const ENCODED_SIZE_MIN: usize = 0 $(+ <$ty as $crate::proto::jute::Field>::ENCODED_SIZE_MIN)*;

            fn write(&self, writer: &mut $crate::proto::jute::Writer) {
                $($crate::proto::jute::Field::write_field(&self.$field, writer);)*
                let _ = writer;
            }

            fn read(reader: &mut $crate::proto::jute::Reader<'_>) -> Result<Self, $crate::proto::jute::DecodeError> {
                let _ = &reader;
                Ok($name {
                    $($field: <$ty as $crate::proto::jute::Field>::read_field(reader)?,)*
                })
            }
        }

        impl $crate::proto::jute::Field for $name {
            const ENCODED_SIZE_MIN: usize = <$name as $crate::proto::jute::Record>::ENCODED_SIZE_MIN;
            fn write_field(&self, writer: &mut $crate::proto::jute::Writer) {
                $crate::proto::jute::Record::write(self, writer);
            }
            fn read_field(reader: &mut $crate::proto::jute::Reader<'_>) -> Result<Self, $crate::proto::jute::DecodeError> {
                <$name as $crate::proto::jute::Record>::read(reader)
            }
        }
    };
}
pub(crate) use jute_record;
