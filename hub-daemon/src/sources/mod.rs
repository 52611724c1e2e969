//! Sources turn what devices send into [`crate::core::Inbound`] messages: parsed, not yet gated. Each is a plain
//! async task that awaits a bounded send into the core — that await is the back-pressure.
//!
//! - [`endpoint`]: the embedded MQTT endpoint devices connect to (the default, no external service);
//! - [`mqtt`]: a client of an external broker such as Mosquitto;
//! - [`json`], [`frames`]: payload parsing shared by both;
//! - [`ble`]: Bluetooth LE health devices (GATT) and BTHome sensors, on BlueZ.
//! - [`notices`]: messages from the hub to the home (reminders), published on the sensor side.

pub mod ble;
pub mod endpoint;
pub mod frames;
pub mod json;
pub mod mqtt;
pub mod notices;

use hearth_protocol::json::{CheckinMessage, parse_checkin};

use crate::clock::Millis;
use crate::core::{Acknowledge, CheckinInbound, CoreInput, Inbound, Rejection, rejection};
use crate::gate::Registry;
use crate::model::{ParsedReading, Reason, Source};

/// What a publish on a sensor topic is: JSON reading, board frame, check-in, or a topic we do not serve.
pub struct Routed {
    pub source: Source,
    pub parsed: Parsed,
    /// Where the acknowledgement frame for a board goes.
    pub frame_ack_topic: Option<String>,
}

/// A publish parsed (or why not).
pub enum Parsed {
    Reading(Result<ParsedReading, Rejection>),
    Checkin {
        patient: String,
        parsed: Result<CheckinMessage, Rejection>,
    },
}

impl Routed {
    /// A whole message refused before routing (e.g. oversized), quarantined as a reading.
    pub fn rejected(device: Option<String>, reason: Reason, detail: String) -> Routed {
        Routed {
            source: Source::MqttJson,
            parsed: Parsed::Reading(Err(rejection(device, None, reason, detail))),
            frame_ack_topic: None,
        }
    }

    /// The core's input for this publish, acknowledged through `ack` once its fate is committed.
    pub fn into_input(
        self,
        received_at: Millis,
        payload: bytes::Bytes,
        ack: Box<dyn Acknowledge>,
    ) -> CoreInput {
        match self.parsed {
            Parsed::Reading(parsed) => CoreInput::Reading(Inbound {
                source: self.source,
                received_at,
                payload,
                parsed,
                ack: Some(ack),
            }),
            Parsed::Checkin { patient, parsed } => CoreInput::Checkin(CheckinInbound {
                patient,
                received_at,
                payload,
                parsed,
                ack: Some(ack),
            }),
        }
    }
}

/// Routes `{prefix}/readings/{device}`, `{prefix}/frames/{device}` and `{prefix}/checkins/{patient}`; anything
/// else is a `bad_topic`.
pub fn route(prefix: &str, topic: &str, payload: &[u8], registry: &Registry) -> Routed {
    let rest = topic.strip_prefix(prefix).and_then(|r| r.strip_prefix('/'));
    match rest.and_then(|r| r.split_once('/')) {
        Some(("readings", device)) if valid_level(device) => Routed {
            source: Source::MqttJson,
            parsed: Parsed::Reading(json::parse(device, payload)),
            frame_ack_topic: None,
        },
        Some(("frames", device)) if valid_level(device) => Routed {
            source: Source::MqttFrame,
            parsed: Parsed::Reading(frames::parse(registry.frame_key(device), device, payload)),
            frame_ack_topic: Some(format!("{prefix}/frame-acks/{device}")),
        },
        Some(("checkins", patient)) if valid_level(patient) => Routed {
            source: Source::Checkin,
            parsed: Parsed::Checkin {
                patient: patient.to_string(),
                parsed: checkin(payload),
            },
            frame_ack_topic: None,
        },
        _ => Routed::rejected(
            None,
            Reason::BadTopic,
            format!("unexpected topic {topic:?}"),
        ),
    }
}

/// Parses a check-in payload; a malformed one is quarantined with the parser's reason code in its detail.
pub fn checkin(payload: &[u8]) -> Result<CheckinMessage, Rejection> {
    parse_checkin(payload).map_err(|e| rejection(None, None, Reason::Malformed, e.to_string()))
}

fn valid_level(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#'])
}
