//! The first frame of a connection into `ConnectRequest::from_bytes` (and the server's
//! answer into `ConnectResponse::from_bytes`). What decodes must re-encode to the same
//! length (null and empty passwords are both four bytes) and decode to the same record.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_core::proto::{ConnectRequest, ConnectResponse, Record};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(request) = ConnectRequest::from_bytes(bytes) {
        let encoded = request.to_bytes();
        assert_eq!(encoded.len(), bytes.len());
        assert_eq!(ConnectRequest::from_bytes(&encoded), Ok(request));
    }
    if let Ok(response) = ConnectResponse::from_bytes(bytes) {
        let encoded = response.to_bytes();
        assert_eq!(encoded.len(), bytes.len());
        assert_eq!(ConnectResponse::from_bytes(&encoded), Ok(response));
    }
});
