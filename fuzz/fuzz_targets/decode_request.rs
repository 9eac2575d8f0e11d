//! A client frame (without its length prefix) into `decode_request`. Whatever decodes must
//! re-encode to a frame that decodes to the very same request.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_core::proto::{decode_request, encode_request, split_frame, ClientFrame, FRAME_PREFIX_LEN};

fuzz_target!(|frame: &[u8]| {
    let Ok(decoded) = decode_request(frame) else {
        // Only a frame too short for the header is refused outright.
        assert!(frame.len() < 8, "a readable header must always decode");
        return;
    };
    let Ok(request) = &decoded.body else { return };
    assert_eq!(decoded.header.op_type, request.op_code().code());

    let encoded = encode_request(decoded.header.xid, request);
    let (body, used) = split_frame(&encoded, usize::MAX)
        .expect("an encoded request has a valid prefix")
        .expect("an encoded request is complete");
    assert_eq!(used, encoded.len());
    assert_eq!(body.len() + FRAME_PREFIX_LEN, encoded.len());
    let again = decode_request(body).expect("a re-encoded request decodes");
    assert_eq!(again, ClientFrame { header: decoded.header, body: Ok(request.clone()) });
});
