//! A reply frame into `decode_reply`: the first byte picks the opcode of the request the
//! reply answers, the rest is the frame (without its length prefix). Whatever decodes must
//! re-encode to a frame that decodes the same way.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_core::proto::{decode_reply, encode_reply, OpCode, Record, Reply, Writer};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else { return };
    let op = OpCode::ALL[usize::from(selector) % OpCode::ALL.len()];
    let Ok((header, reply)) = decode_reply(frame, |_| Some(op)) else { return };

    let encoded = match &reply {
        Reply::Response(_, response) => encode_reply(header, response)[4..].to_vec(),
        Reply::Notification(event) => {
            let mut writer = Writer::new();
            header.write(&mut writer);
            event.write(&mut writer);
            writer.into_bytes()
        }
    };
    assert!(encoded.len() <= frame.len(), "re-encoding never grows: bytes after the body are not kept");
    let again = decode_reply(&encoded, |_| Some(op)).expect("a re-encoded reply decodes");
    assert_eq!(again, (header, reply));
});
