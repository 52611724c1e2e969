//! Sources turn what devices send into [`crate::core::Inbound`] messages: parsed, not yet gated. Each is a plain
//! async task that awaits a bounded send into the core — that await is the back-pressure.
//!
//! - [`endpoint`]: the embedded MQTT endpoint devices connect to (the default, no external service);
//! - [`mqtt`]: a client of an external broker such as Mosquitto;
//! - [`serial`]: board frames over a serial line (USB-serial adapter, or TCP serial under QEMU);
//! - [`json`], [`frames`]: payload parsing shared by both.

pub mod endpoint;
pub mod frames;
pub mod json;
pub mod mqtt;
pub mod serial;

use crate::core::{Rejection, rejection};
use crate::gate::Registry;
use crate::model::{ParsedReading, Reason, Source};

/// What a publish on a sensor topic is: JSON reading, board frame, or a topic we do not serve.
pub struct Routed {
    pub source: Source,
    pub parsed: Result<ParsedReading, Rejection>,
    /// Where the acknowledgement frame for a board goes.
    pub frame_ack_topic: Option<String>,
}

/// Routes `{prefix}/readings/{device}` and `{prefix}/frames/{device}`; anything else is a `bad_topic`.
pub fn route(prefix: &str, topic: &str, payload: &[u8], registry: &Registry) -> Routed {
    let rest = topic.strip_prefix(prefix).and_then(|r| r.strip_prefix('/'));
    match rest.and_then(|r| r.split_once('/')) {
        Some(("readings", device)) if valid_level(device) => Routed {
            source: Source::MqttJson,
            parsed: json::parse(device, payload),
            frame_ack_topic: None,
        },
        Some(("frames", device)) if valid_level(device) => Routed {
            source: Source::MqttFrame,
            parsed: frames::parse(registry.frame_key(device), device, payload),
            frame_ack_topic: Some(format!("{prefix}/frame-acks/{device}")),
        },
        _ => Routed {
            source: Source::MqttJson,
            parsed: Err(rejection(
                None,
                None,
                Reason::BadTopic,
                format!("unexpected topic {topic:?}"),
            )),
            frame_ack_topic: None,
        },
    }
}

fn valid_level(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#'])
}
