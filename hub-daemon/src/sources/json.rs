//! The JSON interop format (protocol crate) → a parsed reading.

use hearth_protocol::json::{self, ObsError};

use crate::core::{Rejection, rejection};
use crate::model::{ParsedObs, ParsedReading, Reason};

pub fn parse(device: &str, payload: &[u8]) -> Result<ParsedReading, Rejection> {
    let msg = json::parse_reading(payload).map_err(|e| {
        rejection(
            Some(device.to_string()),
            None,
            Reason::Malformed,
            format!("{}: {e}", e.as_str()),
        )
    })?;
    let obs = msg
        .obs
        .iter()
        .map(|raw| match raw.resolve() {
            Ok(o) => ParsedObs::Ok(o),
            Err(e) => {
                let reason = match e {
                    ObsError::UnknownCode => Reason::UnknownCode,
                    ObsError::Unrepresentable => Reason::ImplausibleValue,
                    ObsError::UnitMismatch => Reason::UnitMismatch,
                    _ => Reason::Malformed,
                };
                ParsedObs::Bad {
                    name: raw.name.clone(),
                    reason,
                    detail: e.to_string(),
                }
            }
        })
        .collect();
    Ok(ParsedReading {
        device: device.to_string(),
        seq: msg.seq,
        observed_at: msg.t,
        obs,
    })
}
