//! Authentic board frames (the protocol crate's HMAC'd format) as a sensor board would send them.

use hearth_protocol::frame::{self, ClockStatus, DeviceKey, DeviceTime, Frame};
use hearth_protocol::{Code, Observation, Quantity};

use crate::time_fmt::now_plus_s;

/// A frame from `device` with one SpO2 observation, signed with `key`, timed 5 s ago (+ `seq` ms, so that later
/// sequences are never older).
pub fn board_frame(device: &str, seq: u32, spo2: i32, key: &[u8; 32]) -> Vec<u8> {
    let mut observations = heapless::Vec::new();
    observations
        .push(Observation::number(Code::Spo2, Quantity::new(spo2, 0)))
        .expect("one observation fits");
    let f = Frame {
        device_id: frame::device_id(device).expect("valid device id"),
        seq,
        time: DeviceTime {
            millis: (now_plus_s(-5).unix_timestamp_nanos() / 1_000_000) as i64 + seq as i64,
            clock: ClockStatus::Utc,
        },
        observations,
    };
    let mut buf = [0u8; frame::MAX_ENCODED_LEN];
    let n = frame::encode_frame(&f, &DeviceKey::new(*key), &mut buf).expect("frame fits");
    buf[..n].to_vec()
}
