//! The validity gate: decides whether a parsed reading may enter clinical state.
//!
//! Synchronous and pure: given the device registry, the device's last state, the reading and `now`, it returns a
//! verdict. Bad observations are quarantined one by one (a glitchy heart rate must not hide a valid SpO2 of 85 from
//! the same oximeter); a reading none of whose observations survive is quarantined whole.

use std::collections::HashMap;

use hearth_protocol::Value;

use crate::clock::Millis;
use crate::config::Config;
use crate::model::{ParsedObs, ParsedReading, Quarantined, Reading, Reason, Source, TimeSource};
use crate::store::DeviceRow;

/// How far ahead of the hub's clock a device time may be (clock drift, not a time machine).
pub const MAX_FUTURE_MS: Millis = 5 * 60 * 1000;

/// Which devices exist and to whom they belong.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// device → patient (None: enrolled but not bound to anyone).
    bindings: HashMap<String, Option<String>>,
    keys: HashMap<String, [u8; 32]>,
}

impl Registry {
    pub fn from_config(c: &Config) -> Registry {
        let mut bindings = HashMap::new();
        let mut keys = HashMap::new();
        for d in &c.devices {
            bindings.insert(d.id.clone(), None);
            if let Some(k) = d.frame_key.as_deref().and_then(crate::config::parse_key) {
                keys.insert(d.id.clone(), k);
            }
        }
        for p in &c.patients {
            for d in &p.devices {
                bindings.insert(d.clone(), Some(p.id.clone()));
            }
        }
        // Bluetooth devices: a personal one under its id, each user of a shared one under `id.uN`.
        for d in &c.ble.devices {
            bindings.entry(d.id.clone()).or_insert(None);
            for (id, patient) in d.bindings() {
                bindings.insert(id, Some(patient));
            }
        }
        Registry { bindings, keys }
    }

    pub fn patient(&self, device: &str) -> Result<&str, Reason> {
        match self.bindings.get(device) {
            None => Err(Reason::UnknownDevice),
            Some(None) => Err(Reason::UnboundDevice),
            Some(Some(p)) => Ok(p),
        }
    }

    pub fn frame_key(&self, device: &str) -> Option<&[u8; 32]> {
        self.keys.get(device)
    }
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Store it; the bad observations (if any) go to quarantine alongside.
    Accept {
        reading: Reading,
        rejected: Vec<Quarantined>,
    },
    /// The same (device, seq) as the last committed reading: acknowledge again, store nothing.
    Duplicate,
    /// An older sequence number: a resend if (device, seq) is stored, otherwise a replay. The core asks the store.
    OlderSequence,
    Reject(Quarantined),
}

/// Context of one inbound message, for quarantine records.
pub struct Inbound<'a> {
    pub source: Source,
    pub received_at: Millis,
    pub payload: &'a [u8],
}

pub fn check(
    reg: &Registry,
    last: Option<&DeviceRow>,
    r: ParsedReading,
    inb: &Inbound<'_>,
    now: Millis,
) -> Verdict {
    let reject = |reason: Reason, detail: String| {
        Verdict::Reject(quarantined(
            inb,
            Some(r.device.clone()),
            Some(r.seq),
            reason,
            detail,
        ))
    };
    let patient = match reg.patient(&r.device) {
        Ok(p) => p.to_string(),
        Err(reason) => {
            return reject(
                reason,
                format!("device {} is not enrolled to a patient", r.device),
            );
        }
    };
    if let Some(last_seq) = last.and_then(|l| l.last_seq) {
        if r.seq == last_seq {
            return Verdict::Duplicate;
        }
        if r.seq < last_seq {
            return Verdict::OlderSequence;
        }
    }
    let (observed_at, time_source) = match r.observed_at {
        Some(t) => (t, TimeSource::Device),
        None => (inb.received_at, TimeSource::Hub),
    };
    if time_source == TimeSource::Device {
        if observed_at > now + MAX_FUTURE_MS {
            return reject(
                Reason::TimeInFuture,
                format!("observed {} s ahead of the hub", (observed_at - now) / 1000),
            );
        }
        if let Some(prev) = last.and_then(|l| l.last_observed_at)
            && observed_at < prev
        {
            let detail = format!(
                "observed {} ms before the previous reading",
                prev - observed_at
            );
            return reject(Reason::TimeBeforeLast, detail);
        }
    }
    let mut obs = Vec::with_capacity(r.obs.len());
    let mut rejected = Vec::new();
    for o in r.obs {
        match o {
            ParsedObs::Ok(o) => match o.value {
                Value::Number(q) if !o.code.is_plausible(q.to_f64()) => {
                    let (lo, hi) = o.code.plausible();
                    rejected.push(quarantined(
                        inb,
                        Some(r.device.clone()),
                        Some(r.seq),
                        Reason::ImplausibleValue,
                        format!("{} = {} outside {lo}..={hi} {}", o.code, q, o.code.unit()),
                    ));
                }
                _ => obs.push(o),
            },
            ParsedObs::Bad {
                name,
                reason,
                detail,
            } => {
                rejected.push(quarantined(
                    inb,
                    Some(r.device.clone()),
                    Some(r.seq),
                    reason,
                    format!("{name}: {detail}"),
                ));
            }
        }
    }
    if obs.is_empty() {
        return match rejected.into_iter().next() {
            Some(q) => Verdict::Reject(q),
            None => reject(Reason::Malformed, "no observations".into()),
        };
    }
    let reading = Reading {
        device: r.device,
        seq: r.seq,
        patient,
        observed_at,
        time_source,
        received_at: inb.received_at,
        obs,
    };
    Verdict::Accept { reading, rejected }
}

pub fn quarantined(
    inb: &Inbound<'_>,
    device: Option<String>,
    seq: Option<u32>,
    reason: Reason,
    detail: String,
) -> Quarantined {
    Quarantined {
        received_at: inb.received_at,
        source: inb.source,
        device,
        seq,
        reason,
        detail,
        payload: inb.payload.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_protocol::{Code, Invalid, Observation, Quantity};

    fn registry() -> Registry {
        let raw = "[home]\nid = \"h\"\n[[devices]]\nid = \"spare\"\n[[patients]]\nid = \"p\"\ndevices = [\"d\"]\n";
        Registry::from_config(&Config::parse(raw, std::path::Path::new("t")).unwrap())
    }

    fn reading(device: &str, seq: u32, t: Option<Millis>, obs: Vec<ParsedObs>) -> ParsedReading {
        ParsedReading {
            device: device.into(),
            seq,
            observed_at: t,
            obs,
        }
    }

    fn spo2(v: i32) -> ParsedObs {
        ParsedObs::Ok(Observation::number(Code::Spo2, Quantity::new(v, 0)))
    }

    const NOW: Millis = 1_800_000_000_000;
    const INB: Inbound<'static> = Inbound {
        source: Source::MqttJson,
        received_at: NOW,
        payload: b"{}",
    };

    fn reason(v: Verdict) -> Reason {
        match v {
            Verdict::Reject(q) => q.reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn unknown_and_unbound_devices_are_quarantined() {
        let reg = registry();
        assert_eq!(
            reason(check(
                &reg,
                None,
                reading("x", 1, None, vec![spo2(97)]),
                &INB,
                NOW
            )),
            Reason::UnknownDevice
        );
        assert_eq!(
            reason(check(
                &reg,
                None,
                reading("spare", 1, None, vec![spo2(97)]),
                &INB,
                NOW
            )),
            Reason::UnboundDevice
        );
    }

    #[test]
    fn time_rules() {
        let reg = registry();
        let last = DeviceRow {
            id: "d".into(),
            last_seq: Some(5),
            last_observed_at: Some(NOW - 1000),
            ..Default::default()
        };
        let future = reading("d", 6, Some(NOW + MAX_FUTURE_MS + 1), vec![spo2(97)]);
        assert_eq!(
            reason(check(&reg, Some(&last), future, &INB, NOW)),
            Reason::TimeInFuture
        );
        let before = reading("d", 6, Some(NOW - 2000), vec![spo2(97)]);
        assert_eq!(
            reason(check(&reg, Some(&last), before, &INB, NOW)),
            Reason::TimeBeforeLast
        );
        match check(
            &reg,
            Some(&last),
            reading("d", 6, None, vec![spo2(97)]),
            &INB,
            NOW,
        ) {
            Verdict::Accept { reading, .. } => {
                assert_eq!(reading.time_source, TimeSource::Hub);
                assert_eq!(reading.observed_at, NOW);
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn sequence_rules() {
        let reg = registry();
        let last = DeviceRow {
            id: "d".into(),
            last_seq: Some(5),
            ..Default::default()
        };
        assert_eq!(
            check(
                &reg,
                Some(&last),
                reading("d", 5, None, vec![spo2(97)]),
                &INB,
                NOW
            ),
            Verdict::Duplicate
        );
        assert_eq!(
            check(
                &reg,
                Some(&last),
                reading("d", 4, None, vec![spo2(97)]),
                &INB,
                NOW
            ),
            Verdict::OlderSequence
        );
    }

    #[test]
    fn implausible_observation_is_quarantined_alone_and_invalid_is_kept_as_invalid() {
        let reg = registry();
        let hr = ParsedObs::Ok(Observation::number(Code::HeartRate, Quantity::new(2047, 0)));
        let bp = ParsedObs::Ok(Observation::invalid(Code::BpSys, Invalid::NaN));
        match check(
            &reg,
            None,
            reading("d", 1, None, vec![spo2(85), hr, bp]),
            &INB,
            NOW,
        ) {
            Verdict::Accept { reading, rejected } => {
                assert_eq!(reading.obs.len(), 2);
                assert_eq!(reading.obs[1].value, Value::Invalid(Invalid::NaN));
                assert_eq!(rejected.len(), 1);
                assert_eq!(rejected[0].reason, Reason::ImplausibleValue);
            }
            v => panic!("{v:?}"),
        }
        let only_bad = reading(
            "d",
            1,
            None,
            vec![ParsedObs::Bad {
                name: "sats".into(),
                reason: Reason::UnknownCode,
                detail: "?".into(),
            }],
        );
        assert_eq!(
            reason(check(&reg, None, only_bad, &INB, NOW)),
            Reason::UnknownCode
        );
    }
}
