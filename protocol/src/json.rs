//! The MQTT JSON interop format: a public contract with third-party gateways and the community hub.
//!
//! | message | topic | direction |
//! |---|---|---|
//! | [`ReadingMessage`] | `{prefix}/readings/{device_id}` (default prefix `hub`) | gateway → hub |
//! | [`AlertMessage`] | `{prefix}/alerts/{patient_id}` (default prefix `care`) | hub → community hub |
//! | [`AckMessage`] | `{prefix}/acks/{home_id}` (default prefix `care`) | community hub → hub |
//! | [`Heartbeat`] | `{prefix}/heartbeat/{home_id}` (default prefix `care`) | hub → community hub |
//!
//! `docs/protocol/json.md` is the reference for integrators and `protocol/schema/*.schema.json` are the JSON Schemas;
//! tests keep both in step with this module.
//!
//! Parsing is defensive because the payloads come from other people's code: the size and nesting depth are checked
//! by a cheap byte scan *before* serde_json sees the payload (so hostile input cannot make it recurse or allocate
//! much), JSON is read into a small tree that keeps duplicate keys (serde_json's maps would silently keep the last
//! one), and every rejection is a [`JsonError`] with a stable reason code for the quarantine. A reading parser rejects
//! only what is not the format: unknown codes and implausible values are the hub's validity gate's business, with
//! their own reason codes (see [`RawObservation::resolve`]).

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::vocab::{Code, Invalid, Observation, Quantity, Value};

/// Largest accepted payload, in bytes.
pub const MAX_PAYLOAD: usize = 16 * 1024;
/// Deepest accepted nesting of objects and arrays (the top-level object is depth 1).
pub const MAX_DEPTH: usize = 8;
/// Most observations accepted in one reading.
pub const MAX_OBS: usize = 32;
/// Decimal places kept when a JSON number becomes a [`Quantity`].
pub const MAX_DECIMALS: u8 = 6;

/// Default topic prefix of the hub's local broker (readings).
pub const DEFAULT_HUB_PREFIX: &str = "hub";
/// Default topic prefix of the upstream link to the community hub (alerts, acks, heartbeats).
pub const DEFAULT_CARE_PREFIX: &str = "care";

/// Earliest instant [`format_rfc3339_millis`] can write: 0000-01-01T00:00:00.000Z, in UTC unix milliseconds.
pub const MIN_MILLIS: i64 = -62_167_219_200_000;
/// Latest instant [`format_rfc3339_millis`] can write: 9999-12-31T23:59:59.999Z, in UTC unix milliseconds.
pub const MAX_MILLIS: i64 = 253_402_300_799_999;

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/// Why a payload is not in the interop format. [`JsonError::as_str`] is the stable reason code recorded in quarantine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonError {
    /// The payload is larger than [`MAX_PAYLOAD`].
    TooLarge { len: usize },
    /// The payload is not UTF-8; `offset` is the first bad byte.
    InvalidUtf8 { offset: usize },
    /// Objects/arrays nest deeper than [`MAX_DEPTH`]; `offset` is the bracket that went too deep.
    TooDeep { offset: usize },
    /// Not JSON (syntax error, trailing data, number out of range); position as reported by serde_json (1-based).
    Malformed { line: usize, column: usize },
    /// Valid JSON whose top level is not an object.
    NotObject,
    /// A required member is absent.
    MissingField { field: &'static str },
    /// A member appears twice in the same object.
    DuplicateField { field: &'static str },
    /// A member has the wrong JSON type or an unknown enumeration value.
    BadField { field: &'static str },
    /// A time member is not an RFC 3339 date-time (or lies outside years 0000–9999 UTC).
    BadTime { field: &'static str },
    /// `seq` is not an integer in 0..=4294967295.
    BadSeq,
    /// `obs` is an empty object.
    EmptyObs,
    /// `obs` has more than [`MAX_OBS`] members.
    TooManyObs { count: usize },
    /// The same code appears twice in `obs`; `index` is the second occurrence (0-based, payload order).
    DuplicateCode { index: usize },
}

impl JsonError {
    /// Stable machine-readable reason code.
    pub const fn as_str(self) -> &'static str {
        match self {
            JsonError::TooLarge { .. } => "too_large",
            JsonError::InvalidUtf8 { .. } => "invalid_utf8",
            JsonError::TooDeep { .. } => "too_deep",
            JsonError::Malformed { .. } => "malformed",
            JsonError::NotObject => "not_object",
            JsonError::MissingField { .. } => "missing_field",
            JsonError::DuplicateField { .. } => "duplicate_field",
            JsonError::BadField { .. } => "bad_field",
            JsonError::BadTime { .. } => "bad_time",
            JsonError::BadSeq => "bad_seq",
            JsonError::EmptyObs => "empty_obs",
            JsonError::TooManyObs { .. } => "too_many_obs",
            JsonError::DuplicateCode { .. } => "duplicate_code",
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        match *self {
            JsonError::TooLarge { len } => write!(f, ": {len} bytes, limit {MAX_PAYLOAD}"),
            JsonError::InvalidUtf8 { offset } | JsonError::TooDeep { offset } => {
                write!(f, " at byte {offset}")
            }
            JsonError::Malformed { line, column } => write!(f, " at line {line} column {column}"),
            JsonError::MissingField { field }
            | JsonError::DuplicateField { field }
            | JsonError::BadField { field }
            | JsonError::BadTime { field } => write!(f, ": `{field}`"),
            JsonError::TooManyObs { count } => write!(f, ": {count}, limit {MAX_OBS}"),
            JsonError::DuplicateCode { index } => write!(f, ": observation {index}"),
            JsonError::NotObject | JsonError::BadSeq | JsonError::EmptyObs => Ok(()),
        }
    }
}

impl core::error::Error for JsonError {}

/// Why a well-formed observation cannot become an [`Observation`]. The hub's validity gate quarantines these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObsError {
    /// The code is not in the vocabulary ([`Code::from_name`]).
    UnknownCode,
    /// `{"invalid": reason}` with a reason that is not an [`Invalid::as_str`] name.
    UnknownInvalid,
    /// The number does not fit a [`Quantity`] (mantissa beyond `i32` at the precision sent, or not finite).
    Unrepresentable,
    /// `{"value", "unit"}` with a unit other than the code's canonical UCUM unit ([`Code::unit`]).
    UnitMismatch,
}

impl ObsError {
    /// Stable machine-readable reason code.
    pub const fn as_str(self) -> &'static str {
        match self {
            ObsError::UnknownCode => "unknown_code",
            ObsError::UnknownInvalid => "unknown_invalid",
            ObsError::Unrepresentable => "unrepresentable",
            ObsError::UnitMismatch => "unit_mismatch",
        }
    }
}

impl fmt::Display for ObsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for ObsError {}

/// A string that is not an RFC 3339 date-time within years 0000–9999 UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeError;

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an RFC 3339 date-time")
    }
}

impl core::error::Error for TimeError {}

// ---------------------------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------------------------

/// Parses an RFC 3339 date-time (RFC 3339 §5.6) into UTC unix milliseconds.
///
/// Accepts `T`/`t` as separator, `Z`/`z` or a `±hh:mm` offset (converted to UTC), and a fraction of any length, which
/// is truncated (not rounded) to milliseconds. A leap second (`23:59:60` UTC) becomes `23:59:59.999`. The result is
/// always within [`MIN_MILLIS`]..=[`MAX_MILLIS`], so [`format_rfc3339_millis`] writes it back exactly.
pub fn parse_rfc3339_millis(s: &str) -> Result<i64, TimeError> {
    // The `time` crate accepts any byte as the date/time separator; RFC 3339's grammar says "T" (case-insensitive).
    match s.as_bytes().get(10) {
        Some(b'T' | b't') => {}
        _ => return Err(TimeError),
    }
    let dt = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| TimeError)?;
    let ms = dt
        .unix_timestamp()
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(dt.millisecond())))
        .ok_or(TimeError)?;
    if (MIN_MILLIS..=MAX_MILLIS).contains(&ms) {
        Ok(ms)
    } else {
        Err(TimeError)
    }
}

/// Formats UTC unix milliseconds as RFC 3339, always UTC (`Z`) with exactly three fraction digits:
/// `2026-11-22T10:15:00.120Z`. Values outside [`MIN_MILLIS`]..=[`MAX_MILLIS`] are clamped to that range (RFC 3339 has
/// four-digit years only).
pub fn format_rfc3339_millis(ms: i64) -> String {
    let ms = ms.clamp(MIN_MILLIS, MAX_MILLIS);
    let dt = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        ms.rem_euclid(1000)
    )
}

// ---------------------------------------------------------------------------------------------------------------
// Readings
// ---------------------------------------------------------------------------------------------------------------

/// A reading as a gateway sent it: `{"seq": 17, "t": "2026-11-22T10:15:00.120Z", "obs": {"heart_rate": 88}}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadingMessage {
    /// Per-device sequence number; the hub uses it to detect gaps and duplicates.
    pub seq: u32,
    /// Observation time at the device, UTC unix milliseconds; `None` when the device sent none (the hub then stamps
    /// its receive time and marks the time hub-assigned).
    pub t: Option<i64>,
    /// Observations in payload order; codes are unique.
    pub obs: Vec<RawObservation>,
}

/// One member of `obs`, not yet checked against the vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub struct RawObservation {
    /// The code as sent (may be unknown to this version of the vocabulary).
    pub name: String,
    pub value: RawValue,
}

/// The value of one `obs` member.
#[derive(Clone, Debug, PartialEq)]
pub enum RawValue {
    /// A JSON number, in the code's canonical unit.
    Number(f64),
    /// `{"invalid": "<reason>"}` with a known [`Invalid`] reason.
    Invalid(Invalid),
    /// `{"invalid": "<reason>"}` with a reason this version does not know.
    UnknownInvalid(String),
    /// `{"value": <number>, "unit": "<UCUM>"}`: a number with an explicit unit, which must be the code's canonical
    /// one. The hub converts nothing here: a gateway that sends °F where Cel is due is misconfigured, and its
    /// readings are quarantined as `unit_mismatch` rather than guessed at.
    WithUnit { value: f64, unit: String },
}

impl RawObservation {
    /// Checks the observation against the vocabulary: a known code, a known invalid reason, a number that fits a
    /// [`Quantity`] (kept to [`MAX_DECIMALS`] places). Plausibility is not checked here.
    pub fn resolve(&self) -> Result<Observation, ObsError> {
        let code = Code::from_name(&self.name).ok_or(ObsError::UnknownCode)?;
        let value = match &self.value {
            RawValue::Number(v) => Value::Number(
                Quantity::from_f64(*v, MAX_DECIMALS).ok_or(ObsError::Unrepresentable)?,
            ),
            RawValue::Invalid(why) => Value::Invalid(*why),
            RawValue::UnknownInvalid(_) => return Err(ObsError::UnknownInvalid),
            RawValue::WithUnit { unit, .. } if unit != code.unit() => {
                return Err(ObsError::UnitMismatch);
            }
            RawValue::WithUnit { value, .. } => Value::Number(
                Quantity::from_f64(*value, MAX_DECIMALS).ok_or(ObsError::Unrepresentable)?,
            ),
        };
        Ok(Observation { code, value })
    }
}

/// The [`Invalid`] reason named `name` ([`Invalid::as_str`]).
pub fn invalid_from_name(name: &str) -> Option<Invalid> {
    (1..=u8::MAX)
        .filter_map(Invalid::from_id)
        .find(|why| why.as_str() == name)
}

/// Parses a reading payload. Rejects only what is not the format (see the module docs).
pub fn parse_reading(payload: &[u8]) -> Result<ReadingMessage, JsonError> {
    reading_from_node(parse_tree(payload)?)
}

fn reading_from_node(node: Node) -> Result<ReadingMessage, JsonError> {
    let mut fields = Fields::new(node)?;
    let seq = match fields.required("seq")? {
        Node::U64(v) => u32::try_from(v).map_err(|_| JsonError::BadSeq)?,
        Node::F64(v) => whole_f64(v, u32::MAX.into())
            .map(|v| v as u32)
            .ok_or(JsonError::BadSeq)?,
        _ => return Err(JsonError::BadSeq),
    };
    let t = opt_time(fields.take("t")?, "t")?;
    let Node::Obj(members) = fields.required("obs")? else {
        return Err(JsonError::BadField { field: "obs" });
    };
    if members.len() > MAX_OBS {
        return Err(JsonError::TooManyObs {
            count: members.len(),
        });
    }
    if members.is_empty() {
        return Err(JsonError::EmptyObs);
    }
    let mut obs: Vec<RawObservation> = Vec::with_capacity(members.len());
    for (index, (name, value)) in members.into_iter().enumerate() {
        if obs.iter().any(|o| o.name == name) {
            return Err(JsonError::DuplicateCode { index });
        }
        let value = match value {
            Node::U64(v) => RawValue::Number(v as f64),
            Node::I64(v) => RawValue::Number(v as f64),
            Node::F64(v) => RawValue::Number(v),
            Node::Obj(_) => {
                let mut inner = Fields::new(value)?;
                match inner.take("invalid")? {
                    Some(Node::Str(why)) => match invalid_from_name(&why) {
                        Some(known) => RawValue::Invalid(known),
                        None => RawValue::UnknownInvalid(why),
                    },
                    Some(_) => return Err(JsonError::BadField { field: "invalid" }),
                    None => {
                        let value = match inner.required("value")? {
                            Node::U64(v) => v as f64,
                            Node::I64(v) => v as f64,
                            Node::F64(v) => v,
                            _ => return Err(JsonError::BadField { field: "value" }),
                        };
                        let Node::Str(unit) = inner.required("unit")? else {
                            return Err(JsonError::BadField { field: "unit" });
                        };
                        RawValue::WithUnit { value, unit }
                    }
                }
            }
            _ => return Err(JsonError::BadField { field: "obs" }),
        };
        obs.push(RawObservation { name, value });
    }
    Ok(ReadingMessage { seq, t, obs })
}

impl Serialize for ReadingMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Obs<'a>(&'a [RawObservation]);
        impl Serialize for Obs<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for o in self.0 {
                    match &o.value {
                        RawValue::Number(v) => map.serialize_entry(&o.name, v)?,
                        RawValue::Invalid(why) => {
                            map.serialize_entry(&o.name, &InvalidObj(why.as_str()))?
                        }
                        RawValue::UnknownInvalid(why) => {
                            map.serialize_entry(&o.name, &InvalidObj(why))?
                        }
                        RawValue::WithUnit { value, unit } => {
                            map.serialize_entry(&o.name, &WithUnit(*value, unit))?
                        }
                    }
                }
                map.end()
            }
        }
        struct WithUnit<'a>(f64, &'a str);
        impl Serialize for WithUnit<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("value", &self.0)?;
                map.serialize_entry("unit", self.1)?;
                map.end()
            }
        }
        struct InvalidObj<'a>(&'a str);
        impl Serialize for InvalidObj<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("invalid", self.0)?;
                map.end()
            }
        }
        let mut map = s.serialize_map(Some(2 + usize::from(self.t.is_some())))?;
        map.serialize_entry("seq", &self.seq)?;
        if let Some(t) = self.t {
            map.serialize_entry("t", &format_rfc3339_millis(t))?;
        }
        map.serialize_entry("obs", &Obs(&self.obs))?;
        map.end()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------------------------

/// Alarm priority (IEC 60601-1-8 vocabulary: high = act immediately, medium = act promptly, low = needs attention).
/// Ordered `Low < Medium < High`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// Where an alert is in its life. Each change is a new revision of the same alert id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Raised (revision 1).
    Open,
    /// New information (value, severity) about an alert that is still open.
    Updated,
    /// Nobody acknowledged in time; re-sent with higher urgency.
    Escalated,
    /// The condition cleared.
    Resolved,
    /// A carer or nurse acknowledged it.
    Acknowledged,
}

/// Whether an alert is about the patient or about the system (IEC 60601-1-8 physiological vs technical alarms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    Clinical,
    Technical,
}

/// Who supplied an observation's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeSource {
    /// The device's clock (corrected to UTC by the gateway).
    Device,
    /// The hub's receive time, because the device sent none.
    Hub,
}

macro_rules! str_enum {
    ($ty:ty, $field:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(<$ty>::$variant),+];
            /// The JSON name.
            pub const fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),+ }
            }
            /// The value named `name` in JSON; `None` if unknown.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(<$ty>::$variant),)+ _ => None }
            }
            fn from_node(node: Node) -> Result<Self, JsonError> {
                match node {
                    Node::Str(s) => Self::from_name(&s).ok_or(JsonError::BadField { field: $field }),
                    _ => Err(JsonError::BadField { field: $field }),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(Severity, "severity", [Low => "low", Medium => "medium", High => "high"]);
str_enum!(AlertState, "state", [
    Open => "open",
    Updated => "updated",
    Escalated => "escalated",
    Resolved => "resolved",
    Acknowledged => "acknowledged",
]);
str_enum!(AlertKind, "kind", [Clinical => "clinical", Technical => "technical"]);
str_enum!(TimeSource, "time_source", [Device => "device", Hub => "hub"]);

/// An alert sent upstream. The receiver is idempotent on (`id`, `rev`); resends carry the same values.
///
/// Deserialization goes through the same checks as [`parse_alert`] (duplicate members are rejected, unknown members
/// ignored).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AlertMessage {
    /// Stable across resends and revisions (the hub's incident id).
    pub id: String,
    /// 1 when raised, +1 per update of the same alert.
    pub rev: u32,
    pub home: String,
    pub patient: String,
    pub severity: Severity,
    pub state: AlertState,
    pub kind: AlertKind,
    /// The rule that raised it, e.g. `threshold.spo2_low`, `news2`, `missing.weight_morning`, `device.silent`.
    pub rule: String,
    /// The device id, when one device is concerned.
    pub device: Option<String>,
    /// The `seq` of the triggering reading.
    pub seq: Option<u32>,
    /// The observation code (a [`Code::as_str`] name; kept as text so a newer hub's codes still arrive).
    pub code: Option<String>,
    /// The triggering value in `unit`.
    pub value: Option<f64>,
    /// UCUM unit of `value`.
    pub unit: Option<String>,
    /// Observation time of the triggering reading, UTC unix ms; RFC 3339 on the wire.
    #[serde(serialize_with = "ser_opt_time")]
    pub observed_at: Option<i64>,
    pub time_source: Option<TimeSource>,
    /// When the alert (this revision) was raised, UTC unix ms; RFC 3339 on the wire.
    #[serde(serialize_with = "ser_time")]
    pub raised_at: i64,
    /// Short human text for the notification.
    pub message: String,
    /// The incident this alert belongs to: a patient's concurrent clinical alerts share one, so a nurse sees one
    /// item per patient, not one per rule. `None` for technical alerts.
    pub incident: Option<String>,
    /// Free JSON object for structured context (NEWS2 breakdown, SBARD handover); omitted when null.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl AlertMessage {
    /// The vocabulary code, if `code` names one this version knows.
    pub fn code(&self) -> Option<Code> {
        self.code.as_deref().and_then(Code::from_name)
    }
}

/// Parses an alert payload with the same limits as [`parse_reading`].
pub fn parse_alert(payload: &[u8]) -> Result<AlertMessage, JsonError> {
    alert_from_node(parse_tree(payload)?)
}

fn alert_from_node(node: Node) -> Result<AlertMessage, JsonError> {
    let mut f = Fields::new(node)?;
    Ok(AlertMessage {
        id: string(f.required("id")?, "id")?,
        rev: rev_field(f.required("rev")?)?,
        home: string(f.required("home")?, "home")?,
        patient: string(f.required("patient")?, "patient")?,
        severity: Severity::from_node(f.required("severity")?)?,
        state: AlertState::from_node(f.required("state")?)?,
        kind: AlertKind::from_node(f.required("kind")?)?,
        rule: string(f.required("rule")?, "rule")?,
        device: opt(f.take("device")?, |n| string(n, "device"))?,
        seq: opt(f.take("seq")?, |n| u32_field(n, "seq"))?,
        code: opt(f.take("code")?, |n| string(n, "code"))?,
        value: opt(f.take("value")?, |n| number(n, "value"))?,
        unit: opt(f.take("unit")?, |n| string(n, "unit"))?,
        observed_at: opt_time(f.take("observed_at")?, "observed_at")?,
        time_source: opt(f.take("time_source")?, TimeSource::from_node)?,
        raised_at: time_field(f.required("raised_at")?, "raised_at")?,
        message: string(f.required("message")?, "message")?,
        incident: opt(f.take("incident")?, |n| string(n, "incident"))?,
        details: match f.take("details")? {
            None | Some(Node::Null) => serde_json::Value::Null,
            Some(obj @ Node::Obj(_)) => obj.into_value("details")?,
            Some(_) => return Err(JsonError::BadField { field: "details" }),
        },
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Acks and heartbeats
// ---------------------------------------------------------------------------------------------------------------

/// Sent by the community hub after it has committed alerts: each listed revision is stored and its outbox row done.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AckMessage {
    pub acks: Vec<AckedAlert>,
}

/// One stored alert revision.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AckedAlert {
    pub id: String,
    pub rev: u32,
}

/// Parses an ack payload with the same limits as [`parse_reading`].
pub fn parse_ack(payload: &[u8]) -> Result<AckMessage, JsonError> {
    ack_from_node(parse_tree(payload)?)
}

fn ack_from_node(node: Node) -> Result<AckMessage, JsonError> {
    let mut f = Fields::new(node)?;
    let Node::Arr(items) = f.required("acks")? else {
        return Err(JsonError::BadField { field: "acks" });
    };
    let mut acks = Vec::with_capacity(items.len());
    for item in items {
        let mut a = Fields::new(item).map_err(|_| JsonError::BadField { field: "acks" })?;
        acks.push(AckedAlert {
            id: string(a.required("id")?, "id")?,
            rev: rev_field(a.required("rev")?)?,
        });
    }
    Ok(AckMessage { acks })
}

/// The hub's periodic liveness message; the community hub raises "home silent" when they stop.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Heartbeat {
    pub home: String,
    /// Send time, UTC unix ms; RFC 3339 on the wire.
    #[serde(serialize_with = "ser_time")]
    pub at: i64,
    /// Alerts waiting in the outbox for an ack.
    pub outbox_depth: u64,
    /// Age of the oldest unacknowledged alert, seconds; `None` when the outbox is empty.
    pub oldest_pending_s: Option<u64>,
}

/// Parses a heartbeat payload with the same limits as [`parse_reading`].
pub fn parse_heartbeat(payload: &[u8]) -> Result<Heartbeat, JsonError> {
    heartbeat_from_node(parse_tree(payload)?)
}

fn heartbeat_from_node(node: Node) -> Result<Heartbeat, JsonError> {
    let mut f = Fields::new(node)?;
    Ok(Heartbeat {
        home: string(f.required("home")?, "home")?,
        at: time_field(f.required("at")?, "at")?,
        outbox_depth: u64_field(f.required("outbox_depth")?, "outbox_depth")?,
        oldest_pending_s: opt(f.take("oldest_pending_s")?, |n| {
            u64_field(n, "oldest_pending_s")
        })?,
    })
}

/// What a nurse did with an alert, in the community hub's dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// "I've got this": the home stops escalating.
    Acknowledge,
    /// Handed to a named member of the team (`assignee`).
    Assign,
    /// Escalation paused until `until`, for `reason`.
    Snooze,
    /// Closed, with the outcome in `reason`.
    Resolve,
}

str_enum!(ActionKind, "action", [
    Acknowledge => "acknowledge",
    Assign => "assign",
    Snooze => "snooze",
    Resolve => "resolve",
]);

/// A nurse's action on an alert, sent by the community hub to the home on `{prefix}/actions/{home}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ActionMessage {
    /// Unique per action, for the audit trail.
    pub action_id: String,
    pub alert_id: String,
    pub action: ActionKind,
    /// Who acted (a staff identifier of the community hub).
    pub by: String,
    /// When, UTC unix ms; RFC 3339 on the wire.
    #[serde(serialize_with = "ser_time")]
    pub at: i64,
    /// Snooze reason or resolution outcome; required for those two.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Snooze expiry, UTC unix ms; required for a snooze.
    #[serde(
        serialize_with = "ser_opt_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<i64>,
    /// Required for an assignment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
}

/// Parses an action payload with the same limits as [`parse_reading`].
pub fn parse_action(payload: &[u8]) -> Result<ActionMessage, JsonError> {
    action_from_node(parse_tree(payload)?)
}

fn action_from_node(node: Node) -> Result<ActionMessage, JsonError> {
    let mut f = Fields::new(node)?;
    let msg = ActionMessage {
        action_id: string(f.required("action_id")?, "action_id")?,
        alert_id: string(f.required("alert_id")?, "alert_id")?,
        action: ActionKind::from_node(f.required("action")?)?,
        by: string(f.required("by")?, "by")?,
        at: time_field(f.required("at")?, "at")?,
        reason: opt(f.take("reason")?, |n| string(n, "reason"))?,
        until: opt_time(f.take("until")?, "until")?,
        assignee: opt(f.take("assignee")?, |n| string(n, "assignee"))?,
    };
    match msg.action {
        ActionKind::Snooze if msg.until.is_none() => {
            Err(JsonError::MissingField { field: "until" })
        }
        ActionKind::Snooze | ActionKind::Resolve if msg.reason.is_none() => {
            Err(JsonError::MissingField { field: "reason" })
        }
        ActionKind::Assign if msg.assignee.is_none() => {
            Err(JsonError::MissingField { field: "assignee" })
        }
        _ => Ok(msg),
    }
}

// Deserialize goes through the same tree and checks as the parse functions, so there is one definition of the format.
macro_rules! deserialize_via_tree {
    ($ty:ty, $from:ident) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $from(Node::deserialize(d)?).map_err(de::Error::custom)
            }
        }
    };
}
deserialize_via_tree!(ReadingMessage, reading_from_node);
deserialize_via_tree!(AlertMessage, alert_from_node);
deserialize_via_tree!(AckMessage, ack_from_node);
deserialize_via_tree!(Heartbeat, heartbeat_from_node);
deserialize_via_tree!(ActionMessage, action_from_node);

// ---------------------------------------------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------------------------------------------

/// `{prefix}/readings/{device}`. `device` should satisfy [`is_valid_topic_id`].
pub fn reading_topic(prefix: &str, device: &str) -> String {
    format!("{prefix}/readings/{device}")
}
/// `{prefix}/alerts/{patient}`. `patient` should satisfy [`is_valid_topic_id`].
pub fn alert_topic(prefix: &str, patient: &str) -> String {
    format!("{prefix}/alerts/{patient}")
}
/// `{prefix}/acks/{home}`. `home` should satisfy [`is_valid_topic_id`].
pub fn ack_topic(prefix: &str, home: &str) -> String {
    format!("{prefix}/acks/{home}")
}
/// `{prefix}/actions/{home}`: nurses' actions for a home. `home` should satisfy [`is_valid_topic_id`].
pub fn action_topic(prefix: &str, home: &str) -> String {
    format!("{prefix}/actions/{home}")
}
/// `{prefix}/heartbeat/{home}`. `home` should satisfy [`is_valid_topic_id`].
pub fn heartbeat_topic(prefix: &str, home: &str) -> String {
    format!("{prefix}/heartbeat/{home}")
}

/// The device id of a reading topic under `prefix`; `None` if the topic is not one.
pub fn parse_reading_topic<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    parse_topic(prefix, "readings", topic)
}
/// The patient id of an alert topic under `prefix`; `None` if the topic is not one.
pub fn parse_alert_topic<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    parse_topic(prefix, "alerts", topic)
}
/// The home id of an ack topic under `prefix`; `None` if the topic is not one.
pub fn parse_ack_topic<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    parse_topic(prefix, "acks", topic)
}
/// The home id of a heartbeat topic under `prefix`; `None` if the topic is not one.
pub fn parse_heartbeat_topic<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    parse_topic(prefix, "heartbeat", topic)
}

/// Whether `id` can be the last level of a topic: non-empty, no `/`, no MQTT wildcard (`+`, `#`), no NUL
/// (MQTT 3.1.1 §4.7).
pub fn is_valid_topic_id(id: &str) -> bool {
    !id.is_empty() && !id.contains(['/', '+', '#', '\0'])
}

fn parse_topic<'a>(prefix: &str, kind: &str, topic: &'a str) -> Option<&'a str> {
    let id = topic
        .strip_prefix(prefix)?
        .strip_prefix('/')?
        .strip_prefix(kind)?
        .strip_prefix('/')?;
    is_valid_topic_id(id).then_some(id)
}

// ---------------------------------------------------------------------------------------------------------------
// The defensive front end
// ---------------------------------------------------------------------------------------------------------------

/// Size, UTF-8 and depth checks, then JSON into a tree that keeps duplicate keys.
fn parse_tree(payload: &[u8]) -> Result<Node, JsonError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(JsonError::TooLarge { len: payload.len() });
    }
    core::str::from_utf8(payload).map_err(|e| JsonError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    check_depth(payload)?;
    serde_json::from_slice::<Node>(payload).map_err(|e| JsonError::Malformed {
        line: e.line(),
        column: e.column(),
    })
}

/// Counts bracket nesting outside strings. For valid JSON this is the exact depth; for invalid JSON serde_json stops
/// at the first point where the scan and the grammar could disagree, so it never nests deeper than the scan saw.
fn check_depth(bytes: &[u8]) -> Result<(), JsonError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(JsonError::TooDeep { offset });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// A JSON value that keeps object members in order, duplicates included.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        // serde_json only calls this for negative integers; normalise anyway so U64 means "non-negative".
        Ok(u64::try_from(v).map_or(Node::I64(v), Node::U64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::F64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Node>()? {
            members.push((k, v));
        }
        Ok(Node::Obj(members))
    }
}

impl Node {
    /// Converts to a `serde_json::Value`, rejecting duplicate keys anywhere below (they would be silently merged).
    fn into_value(self, field: &'static str) -> Result<serde_json::Value, JsonError> {
        use serde_json::Value as V;
        Ok(match self {
            Node::Null => V::Null,
            Node::Bool(b) => V::Bool(b),
            Node::U64(v) => V::Number(v.into()),
            Node::I64(v) => V::Number(v.into()),
            Node::F64(v) => serde_json::Number::from_f64(v).map_or(V::Null, V::Number),
            Node::Str(s) => V::String(s),
            Node::Arr(items) => V::Array(
                items
                    .into_iter()
                    .map(|n| n.into_value(field))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Obj(members) => {
                let mut map = serde_json::Map::new();
                for (k, v) in members {
                    let v = v.into_value(field)?;
                    if map.insert(k, v).is_some() {
                        return Err(JsonError::DuplicateField { field });
                    }
                }
                V::Object(map)
            }
        })
    }
}

/// The members of one object, taken out by name. Unknown members are ignored (forward compatibility).
struct Fields(Vec<(String, Node)>);

impl Fields {
    fn new(node: Node) -> Result<Self, JsonError> {
        match node {
            Node::Obj(members) => Ok(Fields(members)),
            _ => Err(JsonError::NotObject),
        }
    }

    /// The member `name`, if present; an error if it is present twice.
    fn take(&mut self, name: &'static str) -> Result<Option<Node>, JsonError> {
        let mut found = None;
        for (k, v) in self.0.iter_mut() {
            if k == name {
                if found.is_some() {
                    return Err(JsonError::DuplicateField { field: name });
                }
                found = Some(core::mem::replace(v, Node::Null));
            }
        }
        Ok(found)
    }

    fn required(&mut self, name: &'static str) -> Result<Node, JsonError> {
        self.take(name)?
            .ok_or(JsonError::MissingField { field: name })
    }
}

/// `None` for an absent or null member, else `f(node)`.
fn opt<T>(
    node: Option<Node>,
    f: impl FnOnce(Node) -> Result<T, JsonError>,
) -> Result<Option<T>, JsonError> {
    match node {
        None | Some(Node::Null) => Ok(None),
        Some(n) => f(n).map(Some),
    }
}

fn string(node: Node, field: &'static str) -> Result<String, JsonError> {
    match node {
        Node::Str(s) => Ok(s),
        _ => Err(JsonError::BadField { field }),
    }
}

/// A float that is a whole number in `0..=max` (JSON Schema's "integer" includes `17.0`).
fn whole_f64(v: f64, max: u64) -> Option<u64> {
    // Range first: `as` saturates, so 2^64 would otherwise pass as u64::MAX. Inside the range the cast truncates, and
    // it round-trips exactly only for whole numbers.
    if !(0.0..18_446_744_073_709_551_616.0).contains(&v) || (v as u64) as f64 != v {
        return None;
    }
    Some(v as u64).filter(|&n| n <= max)
}

fn u64_field(node: Node, field: &'static str) -> Result<u64, JsonError> {
    match node {
        Node::U64(v) => Ok(v),
        Node::F64(v) => whole_f64(v, u64::MAX).ok_or(JsonError::BadField { field }),
        _ => Err(JsonError::BadField { field }),
    }
}

fn u32_field(node: Node, field: &'static str) -> Result<u32, JsonError> {
    u32::try_from(u64_field(node, field)?).map_err(|_| JsonError::BadField { field })
}

/// An alert revision: 1 when raised, so 0 is not one.
fn rev_field(node: Node) -> Result<u32, JsonError> {
    match u32_field(node, "rev")? {
        0 => Err(JsonError::BadField { field: "rev" }),
        rev => Ok(rev),
    }
}

fn number(node: Node, field: &'static str) -> Result<f64, JsonError> {
    match node {
        Node::U64(v) => Ok(v as f64),
        Node::I64(v) => Ok(v as f64),
        Node::F64(v) => Ok(v),
        _ => Err(JsonError::BadField { field }),
    }
}

fn time_field(node: Node, field: &'static str) -> Result<i64, JsonError> {
    match node {
        Node::Str(s) => parse_rfc3339_millis(&s).map_err(|_| JsonError::BadTime { field }),
        _ => Err(JsonError::BadTime { field }),
    }
}

fn opt_time(node: Option<Node>, field: &'static str) -> Result<Option<i64>, JsonError> {
    opt(node, |n| time_field(n, field))
}

fn ser_time<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_millis(*ms))
}

fn ser_opt_time<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => ser_time(ms, s),
        None => s.serialize_none(),
    }
}

// After the macros above: textual scope.
mod baseline;
mod checkin;
pub use baseline::{BaselineMessage, baseline_topic, parse_baseline};
pub use checkin::{
    CheckinMessage, Consciousness, MAX_NOTE, MAX_OXYGEN_L_MIN, MAX_SOFT_SIGNS, Reporter, SoftSign,
    checkin_topic, parse_checkin, parse_checkin_topic,
};
