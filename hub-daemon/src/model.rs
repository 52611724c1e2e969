//! The hub's domain types, shared by sources, the core loop, the store and the upstream publisher.

use hearth_protocol::Observation;
pub use hearth_protocol::json::{AlertKind, AlertState, Severity, TimeSource};

use crate::clock::Millis;

/// Where a reading came from (a metric label; never a patient identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    MqttJson,
    MqttFrame,
    Serial,
    Ble,
    /// A carer's or patient's check-in (MQTT or the local HTTP API).
    Checkin,
}

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::MqttJson => "mqtt_json",
            Source::MqttFrame => "mqtt_frame",
            Source::Serial => "serial",
            Source::Ble => "ble",
            Source::Checkin => "checkin",
        }
    }
}

/// Why an input was quarantined. The codes are a public contract (metrics label, technician API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    UnknownDevice,
    UnboundDevice,
    UnknownCode,
    ImplausibleValue,
    UnitMismatch,
    TimeInFuture,
    TimeBeforeLast,
    ReplayedSequence,
    BadMac,
    WrongKey,
    Malformed,
    BadTopic,
    /// Not an error: a shared device's reading that names no known user, held until a person confirms whose it is.
    HeldForConfirmation,
    /// A check-in for a patient this home does not care for.
    UnknownPatient,
}

impl Reason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::UnknownDevice => "unknown_device",
            Reason::UnboundDevice => "unbound_device",
            Reason::UnknownCode => "unknown_code",
            Reason::ImplausibleValue => "implausible_value",
            Reason::UnitMismatch => "unit_mismatch",
            Reason::TimeInFuture => "time_in_future",
            Reason::TimeBeforeLast => "time_before_last",
            Reason::ReplayedSequence => "replayed_sequence",
            Reason::BadMac => "bad_mac",
            Reason::WrongKey => "wrong_key",
            Reason::Malformed => "malformed",
            Reason::BadTopic => "bad_topic",
            Reason::HeldForConfirmation => "held_for_confirmation",
            Reason::UnknownPatient => "unknown_patient",
        }
    }
}

/// One observation as a source parsed it, before the validity gate.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedObs {
    Ok(Observation),
    /// Could not become an observation (unknown code, unit mismatch…); quarantined by the gate.
    Bad {
        name: String,
        reason: Reason,
        detail: String,
    },
}

/// A reading as a source parsed it: syntactically valid, not yet checked against devices, time or state.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReading {
    pub device: String,
    pub seq: u32,
    /// Observation time from the device, if it sent one it can vouch for.
    pub observed_at: Option<Millis>,
    pub obs: Vec<ParsedObs>,
}

/// A reading that passed the gate: committed as one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub device: String,
    pub seq: u32,
    pub patient: String,
    pub observed_at: Millis,
    pub time_source: TimeSource,
    pub received_at: Millis,
    pub obs: Vec<Observation>,
}

/// A rejected input with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    pub received_at: Millis,
    pub source: Source,
    pub device: Option<String>,
    pub seq: Option<u32>,
    pub reason: Reason,
    pub detail: String,
    pub payload: Vec<u8>,
}

/// What triggered an alert revision: the reading and value, when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub device: String,
    pub seq: u32,
    pub code: hearth_protocol::Code,
    pub value: f64,
    pub observed_at: Millis,
    pub time_source: TimeSource,
}

/// The latest revision of an alert, as stored and as sent upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: String,
    pub rev: u32,
    pub patient: String,
    /// Groups revisions of one episode: `clinical:spo2:below`, `technical:device_silent:dev-1`.
    pub key: String,
    pub kind: AlertKind,
    pub rule: String,
    pub severity: Severity,
    pub state: AlertState,
    pub trigger: Option<Trigger>,
    pub raised_at: Millis,
    pub updated_at: Millis,
    pub message: String,
    /// Escalation level reached (0 = not escalated).
    pub escalations: u32,
    pub acknowledged: bool,
    /// Escalation is paused until then (a nurse's snooze).
    pub snoozed_until: Option<Millis>,
    /// The member of the team the alert was handed to.
    pub assignee: Option<String>,
    /// Structured context sent with the alert (the NEWS2 breakdown, the SBARD handover).
    pub details: Option<serde_json::Value>,
    /// The patient's incident this clinical alert belongs to (`None` for technical alerts).
    pub incident: Option<String>,
}

pub fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
    }
}
