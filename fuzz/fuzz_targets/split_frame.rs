//! A byte stream into `split_frame`, the way a connection's read buffer is drained: the
//! first byte picks the frame size limit, then frames are split off and decoded as
//! requests until the buffer holds no complete frame.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_core::proto::{
    decode_request, split_frame, DecodeError, FRAME_PREFIX_LEN, JUTE_MAXBUFFER_DEFAULT, JUTE_MAXBUFFER_EXTRA_SIZE,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut buffer)) = data.split_first() else { return };
    let max = match selector {
        0..=127 => usize::from(selector),
        _ => JUTE_MAXBUFFER_DEFAULT + JUTE_MAXBUFFER_EXTRA_SIZE,
    };
    loop {
        match split_frame(buffer, max) {
            Ok(Some((body, used))) => {
                assert!(used >= FRAME_PREFIX_LEN && used <= buffer.len());
                assert!(body.len() <= max);
                assert_eq!(body, &buffer[FRAME_PREFIX_LEN..used]);
                let _ = decode_request(body);
                buffer = &buffer[used..];
            }
            Ok(None) => {
                // Only an incomplete frame waits for more bytes.
                if buffer.len() >= FRAME_PREFIX_LEN {
                    let length = i32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
                    assert!(length >= 0 && length as usize <= max);
                    assert!(FRAME_PREFIX_LEN + length as usize > buffer.len());
                }
                return;
            }
            Err(DecodeError::NegativeLength(length)) => {
                assert!(length < 0);
                return;
            }
            Err(DecodeError::FrameTooLarge { length, max: limit }) => {
                assert_eq!(limit, max);
                assert!(length > max);
                return;
            }
            Err(other) => panic!("split_frame failed with {other:?}"),
        }
    }
});
