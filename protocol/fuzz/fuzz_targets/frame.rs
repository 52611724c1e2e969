//! Board frames: `decode_unverified`, `decode_frame` (fixed key, replay rule), `peek_device_id`, `decode_ack`, and the
//! serial `FrameSplitter` over the same bytes.
//!
//! Random bytes rarely carry a valid MAC, so every frame that decodes unverified is also re-sealed with the fixed key
//! and must then pass the authenticated path unchanged.
#![no_main]

use hearth_protocol::frame::{
    self, DeviceKey, FrameError, FrameSplitter, MAX_ENCODED_ACK_LEN, MAX_ENCODED_LEN, MAX_OBS,
};
use libfuzzer_sys::fuzz_target;

/// The seeds in corpus/frame are sealed with this key.
const KEY: [u8; 32] = [0x11; 32];

fuzz_target!(|data: &[u8]| {
    let key = DeviceKey::new(KEY);
    let unverified = frame::decode_unverified(data);
    let peeked = frame::peek_device_id(data);

    if let Ok(f) = frame::decode_frame(data, &key, None) {
        assert_eq!(
            unverified.as_ref(),
            Ok(&f),
            "authentic frames decode the same unverified"
        );
        assert_eq!(peeked.as_ref(), Ok(&f.device_id));
        // Replay: not above `last_seq` is refused, above it accepted.
        assert_eq!(
            frame::decode_frame(data, &key, Some(f.seq)),
            Err(FrameError::Replayed {
                seq: f.seq,
                last: f.seq
            })
        );
        if let Some(prev) = f.seq.checked_sub(1) {
            assert_eq!(frame::decode_frame(data, &key, Some(prev)).as_ref(), Ok(&f));
        }
    }

    if let Ok(f) = &unverified {
        assert!(!f.observations.is_empty() && f.observations.len() <= MAX_OBS);
        let mut out = [0u8; MAX_ENCODED_LEN];
        let n = frame::encode_frame(f, &key, &mut out).expect("a decoded frame re-encodes");
        assert_eq!(
            frame::decode_frame(&out[..n], &key, None).as_ref(),
            Ok(f),
            "decode(seal(decode(x)))"
        );
        assert_eq!(frame::decode_unverified(&out[..n]).as_ref(), Ok(f));
    }

    if let Ok(ack) = frame::decode_ack(data, &key) {
        let mut out = [0u8; MAX_ENCODED_ACK_LEN];
        let n = frame::encode_ack(&ack, &key, &mut out).expect("a decoded ack re-encodes");
        assert_eq!(frame::decode_ack(&out[..n], &key).as_ref(), Ok(&ack));
        // A frame of one type never passes for the other.
        assert!(frame::decode_frame(data, &key, None).is_err());
    }

    let mut splitter = FrameSplitter::<MAX_ENCODED_LEN>::new();
    splitter.feed(data, |chunk| {
        assert!(!chunk.is_empty() && !chunk.contains(&0) && chunk.len() <= MAX_ENCODED_LEN);
        let _ = frame::decode_unverified(chunk);
        let _ = frame::decode_frame(chunk, &key, None);
        let _ = frame::decode_ack(chunk, &key);
    });
    assert!(splitter.pending() <= MAX_ENCODED_LEN);
});
