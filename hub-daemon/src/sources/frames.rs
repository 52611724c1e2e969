//! Board frames (protocol crate) → a parsed reading, and the hub's acknowledgement frame.
//!
//! The MAC is checked here with the device's enrolled key; the sequence (replay) is checked by the gate against the
//! persisted last sequence, so a replay is refused even after a restart. A frame whose clock is only "since boot"
//! gets no observation time: the hub stamps receipt and marks the time hub-assigned rather than inventing one.

use hearth_protocol::frame::{self, AckFrame, ClockStatus, DeviceKey, FrameError};

use crate::core::{Rejection, rejection};
use crate::model::{ParsedObs, ParsedReading, Reason};

pub fn parse(
    key: Option<&[u8; 32]>,
    topic_device: &str,
    payload: &[u8],
) -> Result<ParsedReading, Rejection> {
    let device = Some(topic_device.to_string());
    let in_frame = frame::peek_device_id(payload).map_err(|e| reject(&device, e))?;
    if in_frame.as_str() != topic_device {
        let detail = format!("frame says device {in_frame}, topic says {topic_device}");
        return Err(rejection(device, None, Reason::BadTopic, detail));
    }
    let Some(key) = key else {
        return Err(rejection(
            device,
            None,
            Reason::WrongKey,
            "no frame key enrolled for this device",
        ));
    };
    let f = frame::decode_frame(payload, &DeviceKey::new(*key), None)
        .map_err(|e| reject(&device, e))?;
    let observed_at = match f.time.clock {
        ClockStatus::Utc => Some(f.time.millis),
        ClockStatus::SinceBoot => None,
    };
    Ok(ParsedReading {
        device: topic_device.to_string(),
        seq: f.seq,
        observed_at,
        obs: f.observations.iter().map(|o| ParsedObs::Ok(*o)).collect(),
    })
}

fn reject(device: &Option<String>, e: FrameError) -> Rejection {
    let reason = match e {
        FrameError::BadMac => Reason::BadMac,
        FrameError::WrongKey { .. } => Reason::WrongKey,
        FrameError::Replayed { .. } => Reason::ReplayedSequence,
        _ => Reason::Malformed,
    };
    rejection(device.clone(), None, reason, e.to_string())
}

/// The acknowledgement frame telling a board it may drop everything up to `seq`.
pub fn encode_ack(device: &str, seq: u32, key: &[u8; 32]) -> Option<Vec<u8>> {
    let ack = AckFrame {
        device_id: frame::device_id(device)?,
        seq,
    };
    let mut buf = [0u8; frame::MAX_ENCODED_ACK_LEN];
    let n = frame::encode_ack(&ack, &DeviceKey::new(*key), &mut buf).ok()?;
    Some(buf[..n].to_vec())
}
