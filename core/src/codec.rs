//! The one place zkd's own binary formats meet bincode: peer messages between zkd servers
//! and the payloads of log records and snapshots.
//!
//! bincode is pinned at 2.0.1 (its final release). Keeping every call behind this module
//! means a change of encoding touches one file, and every decode goes through a size limit
//! so a hostile or corrupt length prefix cannot make zkd allocate without bound.
//!
//! The encoding is bincode's `standard` configuration: little-endian, variable-length
//! integers. It is zkd's own format, not ZooKeeper's: clients never see it.

use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed};
use serde::Serialize;

/// The largest value [`decode`] accepts, in bytes: a snapshot of a large tree sent whole in
/// a SNAP sync is the biggest thing zkd encodes.
pub const DECODE_BYTES_MAX: usize = 1 << 30;

/// Why bytes did not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "undecodable zkd record: {}", self.0)
    }
}

impl std::error::Error for CodecError {}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_BYTES_MAX>()
}

/// Encodes a value. Encoding to memory cannot fail for zkd's types (no maps with non-string
/// keys, no unsized sequences), so a failure is a bug and panics with the reason.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, config()).expect("zkd types always encode")
}

/// Encodes `value` at the end of `out` (no buffer of its own).
pub fn encode_append<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    bincode::serde::encode_into_std_write(value, out, config()).expect("zkd types always encode");
}

/// Decodes a value that must fill `bytes` exactly: trailing bytes are an error, so a record
/// whose length prefix lies is caught even when its prefix happens to decode.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) =
        bincode::serde::decode_from_slice::<T, _>(bytes, config()).map_err(|error| CodecError(error.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError(format!("{} trailing bytes after the value", bytes.len() - used)));
    }
    Ok(value)
}

/// [`decode`] through a seed: the decoded parts go wherever the seed puts them (a
/// snapshot's nodes straight into a tree, say) rather than into one value first.
pub fn decode_seed<'de, S: DeserializeSeed<'de>>(seed: S, bytes: &'de [u8]) -> Result<S::Value, CodecError> {
    let (value, used) =
        bincode::serde::seed_decode_from_slice(seed, bytes, config()).map_err(|error| CodecError(error.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError(format!("{} trailing bytes after the value", bytes.len() - used)));
    }
    Ok(value)
}

/// Decodes a value from the start of `bytes`, ignoring what follows (to read a version
/// field before deciding how to read the rest).
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    bincode::serde::decode_from_slice::<T, _>(bytes, config())
        .map(|(value, _)| value)
        .map_err(|error| CodecError(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Acl, Id, OpCode};
    use crate::txn::{CreateKind, Txn, TxnHeader};

    #[test]
    fn txn_round_trips() {
        let txn = Txn::Multi(vec![
            Txn::Create {
                op: OpCode::Create2,
                path: "/a".into(),
                data: Some(b"x".to_vec()),
                acl: vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }],
                kind: CreateKind::Ttl { ttl_ms: 5 },
                parent_cversion: 3,
            },
            Txn::Error(crate::ErrorCode::NoNode),
        ]);
        let header = TxnHeader { session_id: -7, cxid: 9, zxid: 1 << 32 | 4, time_ms: 1_700_000_000_000 };
        assert_eq!(decode::<(TxnHeader, Txn)>(&encode(&(header, txn.clone()))).unwrap(), (header, txn));
    }

    #[test]
    fn trailing_bytes_and_truncation_are_errors() {
        let mut bytes = encode(&(1u64, String::from("abc")));
        bytes.push(0);
        assert!(decode::<(u64, String)>(&bytes).unwrap_err().0.contains("trailing"));
        bytes.pop();
        bytes.pop();
        assert!(decode::<(u64, String)>(&bytes).is_err());
    }

    #[test]
    fn a_nested_multi_is_refused_at_any_depth() {
        let flat = Txn::Multi(vec![Txn::Check { path: "/".into(), version: 1 }]);
        assert_eq!(decode::<Txn>(&encode(&flat)).unwrap(), flat);
        let nested = Txn::Multi(vec![flat]);
        assert!(decode::<Txn>(&encode(&nested)).is_err());
        // A crafted record nesting 100,000 deep fails at the second level, long before the
        // stack could run out.
        let mut deep = Vec::new();
        for _ in 0..100_000 {
            deep.extend_from_slice(&[5, 1]);
        }
        assert!(decode::<Txn>(&deep).is_err());
    }

    #[test]
    fn a_huge_length_prefix_is_refused_without_allocating() {
        // A vector claiming 2^62 elements: the limit refuses it before any allocation.
        let mut bytes = vec![255u8];
        bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(decode::<Vec<u64>>(&bytes).is_err());
    }

    /// Byte fields are written as one run (`serde_bytes`) for speed; the bytes are the same
    /// as the element-by-element encoding, so files written either way read back.
    #[test]
    fn byte_fields_encode_as_a_sequence_of_bytes_would() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct AsSequence {
            data: Option<Vec<u8>>,
        }
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct AsBytes {
            #[serde(with = "serde_bytes")]
            data: Option<Vec<u8>>,
        }
        for data in [None, Some(vec![]), Some(vec![0, 1, 255]), Some(vec![7; 300])] {
            let bytes = encode(&AsBytes { data: data.clone() });
            assert_eq!(bytes, encode(&AsSequence { data: data.clone() }));
            assert_eq!(decode::<AsBytes>(&bytes).unwrap(), AsBytes { data: data.clone() });
            assert_eq!(decode::<AsSequence>(&bytes).unwrap(), AsSequence { data });
        }
    }
}
