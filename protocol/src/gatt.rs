//! Bluetooth SIG health characteristics: decode and encode, explicit little-endian, no heap.
//!
//! Layouts follow the Bluetooth GATT Specification Supplement (GSS) and the service specifications (HRS, HTS, BLS,
//! PLXS, WSS, GLS, BAS, CTS). Every characteristic is a struct implementing [`Characteristic`]: fields that a flag makes
//! optional are `Option`s (and the flag is derived from them when encoding), measured values are [`Value`]s in the
//! device's unit with the device's precision, and status bits are named booleans. `observations()` turns a decoded
//! measurement into canonical-unit [`Observation`]s, with status bits that make a value untrustworthy turned into an
//! [`Invalid`] reason. [`decode`] dispatches on the 16-bit characteristic UUID.
//!
//! Receiver policy (see `docs/protocol/gatt.md`):
//! - Bits that the specification reserves for future use (RFU) are ignored when decoding and written as 0 when
//!   encoding — the Bluetooth RFU convention, which lets a newer device talk to this older receiver. Enumerated
//!   values the specification reserves are kept as `Reserved(n)`.
//! - A payload shorter than its flags require is [`DecodeError::Truncated`]; bytes after the last field are
//!   [`DecodeError::TrailingBytes`] (for Heart Rate the RR intervals fill the rest, so only an odd byte is).
//! - A field outside its specified range (month 13, battery 150 %, hour 24) is [`DecodeError::InvalidField`].

use core::fmt;

use crate::vocab::{Invalid, Observation, Value};

/// Defines a `u8`-coded enumeration whose unassigned values are kept as `Reserved(n)`.
macro_rules! code_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $var:ident = $val:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum $name {
            $($(#[$vm])* $var,)*
            /// A value the specification reserves for future use, kept as received.
            Reserved(u8),
        }

        impl $name {
            /// The enumeration for a wire value; unassigned values become `Reserved(n)`.
            pub const fn from_u8(v: u8) -> Self {
                match v {
                    $($val => Self::$var,)*
                    other => Self::Reserved(other),
                }
            }

            /// The wire value.
            pub const fn to_u8(self) -> u8 {
                match self {
                    $(Self::$var => $val,)*
                    Self::Reserved(v) => v,
                }
            }
        }
    };
}

/// Defines a struct of named booleans over a bit field; RFU bits are dropped on decode and written as 0.
macro_rules! flag_struct {
    ($(#[$m:meta])* pub struct $name:ident: $ty:ty { $($(#[$fm:meta])* $field:ident = $bit:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub struct $name {
            $($(#[$fm])* pub $field: bool,)*
        }

        impl $name {
            /// The bits this type names; every other bit is reserved for future use.
            pub const DEFINED: $ty = 0 $(| (1 << $bit))*;

            /// Reads the named bits; reserved bits are ignored.
            pub const fn from_bits(bits: $ty) -> Self {
                Self { $($field: bits & (1 << $bit) != 0,)* }
            }

            /// The bit field, reserved bits 0.
            pub const fn bits(&self) -> $ty {
                0 $(| if self.$field { 1 << $bit } else { 0 })*
            }
        }
    };
}

mod blood_pressure;
mod convert;
mod cursor;
mod datetime;
mod glucose;
mod heart_rate;
mod plx;
mod racp;
mod simple;
mod temperature;
mod weight;

pub use blood_pressure::*;
pub use datetime::*;
pub use glucose::*;
pub use heart_rate::*;
pub use plx::*;
pub use racp::*;
pub use simple::*;
pub use temperature::*;
pub use weight::*;

/// The largest attribute value ATT can carry (Core Specification Vol 3 Part F §3.2.9); bounds variable-length values.
pub const MAX_ATTRIBUTE_LEN: usize = 512;

/// How many observations a single characteristic value can yield (Blood Pressure: systolic, diastolic, MAP, pulse).
pub const MAX_OBSERVATIONS: usize = 4;

/// The observations of one decoded value, in canonical units.
pub type Observations = heapless::Vec<Observation, MAX_OBSERVATIONS>;

/// Why a byte payload is not a valid characteristic value. Offsets count from the first byte of the value (the flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecodeError {
    /// The field starting at `offset` needs `needed` more bytes than the payload has.
    Truncated { offset: usize, needed: usize },
    /// The payload goes on after its last field, starting at `offset`.
    TrailingBytes { offset: usize },
    /// The field at `offset` holds a value its specification does not allow.
    InvalidField { offset: usize, field: &'static str },
    /// Not a characteristic this module knows.
    UnknownUuid(u16),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Truncated { offset, needed } => {
                let s = if needed == 1 { "" } else { "s" };
                write!(f, "truncated at byte {offset}: need {needed} more byte{s}")
            }
            DecodeError::TrailingBytes { offset } => {
                write!(f, "unexpected bytes from byte {offset} on")
            }
            DecodeError::InvalidField { offset, field } => {
                write!(f, "invalid {field} at byte {offset}")
            }
            DecodeError::UnknownUuid(uuid) => write!(f, "unknown characteristic 0x{uuid:04X}"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a value cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// The output buffer holds `available` bytes; the value needs `needed`.
    BufferTooSmall { needed: usize, available: usize },
    /// The named field holds a value the wire format cannot carry (exactly).
    OutOfRange { field: &'static str },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small: need {needed} bytes, have {available}")
            }
            EncodeError::OutOfRange { field } => {
                write!(f, "{field} cannot be encoded: out of range")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

/// One Bluetooth SIG characteristic value: its UUID, its length bounds, and its codec.
///
/// Like embassy-rs/trouble's `FixedGattValue`, but every multi-byte field is read and written little-endian
/// explicitly, and decoding checks every length instead of trusting the payload.
pub trait Characteristic: Sized {
    /// The 16-bit characteristic UUID (Bluetooth Assigned Numbers).
    const UUID: u16;
    /// The shortest valid value, in bytes.
    const MIN_LEN: usize;
    /// The longest valid value, in bytes.
    const MAX_LEN: usize;

    /// Decodes a complete characteristic value.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;

    /// The number of bytes [`Characteristic::encode`] writes.
    fn encoded_len(&self) -> usize;

    /// Encodes into the front of `out`, returning the number of bytes written.
    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError>;
}

/// A decoded characteristic value of any supported UUID.
///
/// Heart Rate makes this about 530 bytes (room for 255 RR intervals, the most one ATT value can carry); without a
/// heap there is nothing to box it into, and a value lives on the stack only while it is turned into observations.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "characteristic", content = "value", rename_all = "snake_case")
)]
pub enum Decoded {
    HeartRate(HeartRateMeasurement),
    Temperature(TemperatureMeasurement),
    IntermediateTemperature(IntermediateTemperature),
    BloodPressure(BloodPressureMeasurement),
    IntermediateCuffPressure(IntermediateCuffPressure),
    BloodPressureFeature(BloodPressureFeature),
    PlxSpotCheck(PlxSpotCheckMeasurement),
    PlxContinuous(PlxContinuousMeasurement),
    PlxFeatures(PlxFeatures),
    Weight(WeightMeasurement),
    WeightScaleFeature(WeightScaleFeature),
    Glucose(GlucoseMeasurement),
    GlucoseContext(GlucoseMeasurementContext),
    RecordAccessControlPoint(RecordAccessControlPoint),
    BatteryLevel(BatteryLevel),
    CurrentTime(CurrentTime),
    DateTime(DateTime),
}

/// Every UUID [`decode`] accepts.
pub const SUPPORTED_UUIDS: [u16; 17] = [
    HeartRateMeasurement::UUID,
    TemperatureMeasurement::UUID,
    IntermediateTemperature::UUID,
    BloodPressureMeasurement::UUID,
    IntermediateCuffPressure::UUID,
    BloodPressureFeature::UUID,
    PlxSpotCheckMeasurement::UUID,
    PlxContinuousMeasurement::UUID,
    PlxFeatures::UUID,
    WeightMeasurement::UUID,
    WeightScaleFeature::UUID,
    GlucoseMeasurement::UUID,
    GlucoseMeasurementContext::UUID,
    RecordAccessControlPoint::UUID,
    BatteryLevel::UUID,
    CurrentTime::UUID,
    DateTime::UUID,
];

/// Decodes the value of characteristic `uuid`.
pub fn decode(uuid: u16, bytes: &[u8]) -> Result<Decoded, DecodeError> {
    Ok(match uuid {
        HeartRateMeasurement::UUID => Decoded::HeartRate(HeartRateMeasurement::decode(bytes)?),
        TemperatureMeasurement::UUID => {
            Decoded::Temperature(TemperatureMeasurement::decode(bytes)?)
        }
        IntermediateTemperature::UUID => {
            Decoded::IntermediateTemperature(IntermediateTemperature::decode(bytes)?)
        }
        BloodPressureMeasurement::UUID => {
            Decoded::BloodPressure(BloodPressureMeasurement::decode(bytes)?)
        }
        IntermediateCuffPressure::UUID => {
            Decoded::IntermediateCuffPressure(IntermediateCuffPressure::decode(bytes)?)
        }
        BloodPressureFeature::UUID => {
            Decoded::BloodPressureFeature(BloodPressureFeature::decode(bytes)?)
        }
        PlxSpotCheckMeasurement::UUID => {
            Decoded::PlxSpotCheck(PlxSpotCheckMeasurement::decode(bytes)?)
        }
        PlxContinuousMeasurement::UUID => {
            Decoded::PlxContinuous(PlxContinuousMeasurement::decode(bytes)?)
        }
        PlxFeatures::UUID => Decoded::PlxFeatures(PlxFeatures::decode(bytes)?),
        WeightMeasurement::UUID => Decoded::Weight(WeightMeasurement::decode(bytes)?),
        WeightScaleFeature::UUID => Decoded::WeightScaleFeature(WeightScaleFeature::decode(bytes)?),
        GlucoseMeasurement::UUID => Decoded::Glucose(GlucoseMeasurement::decode(bytes)?),
        GlucoseMeasurementContext::UUID => {
            Decoded::GlucoseContext(GlucoseMeasurementContext::decode(bytes)?)
        }
        RecordAccessControlPoint::UUID => {
            Decoded::RecordAccessControlPoint(RecordAccessControlPoint::decode(bytes)?)
        }
        BatteryLevel::UUID => Decoded::BatteryLevel(BatteryLevel::decode(bytes)?),
        CurrentTime::UUID => Decoded::CurrentTime(CurrentTime::decode(bytes)?),
        DateTime::UUID => Decoded::DateTime(DateTime::decode(bytes)?),
        other => return Err(DecodeError::UnknownUuid(other)),
    })
}

impl Decoded {
    /// The characteristic UUID this value belongs to.
    pub fn uuid(&self) -> u16 {
        match self {
            Decoded::HeartRate(_) => HeartRateMeasurement::UUID,
            Decoded::Temperature(_) => TemperatureMeasurement::UUID,
            Decoded::IntermediateTemperature(_) => IntermediateTemperature::UUID,
            Decoded::BloodPressure(_) => BloodPressureMeasurement::UUID,
            Decoded::IntermediateCuffPressure(_) => IntermediateCuffPressure::UUID,
            Decoded::BloodPressureFeature(_) => BloodPressureFeature::UUID,
            Decoded::PlxSpotCheck(_) => PlxSpotCheckMeasurement::UUID,
            Decoded::PlxContinuous(_) => PlxContinuousMeasurement::UUID,
            Decoded::PlxFeatures(_) => PlxFeatures::UUID,
            Decoded::Weight(_) => WeightMeasurement::UUID,
            Decoded::WeightScaleFeature(_) => WeightScaleFeature::UUID,
            Decoded::Glucose(_) => GlucoseMeasurement::UUID,
            Decoded::GlucoseContext(_) => GlucoseMeasurementContext::UUID,
            Decoded::RecordAccessControlPoint(_) => RecordAccessControlPoint::UUID,
            Decoded::BatteryLevel(_) => BatteryLevel::UUID,
            Decoded::CurrentTime(_) => CurrentTime::UUID,
            Decoded::DateTime(_) => DateTime::UUID,
        }
    }

    /// Encodes the value back into its wire format.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Decoded::HeartRate(v) => v.encode(out),
            Decoded::Temperature(v) => v.encode(out),
            Decoded::IntermediateTemperature(v) => v.encode(out),
            Decoded::BloodPressure(v) => v.encode(out),
            Decoded::IntermediateCuffPressure(v) => v.encode(out),
            Decoded::BloodPressureFeature(v) => v.encode(out),
            Decoded::PlxSpotCheck(v) => v.encode(out),
            Decoded::PlxContinuous(v) => v.encode(out),
            Decoded::PlxFeatures(v) => v.encode(out),
            Decoded::Weight(v) => v.encode(out),
            Decoded::WeightScaleFeature(v) => v.encode(out),
            Decoded::Glucose(v) => v.encode(out),
            Decoded::GlucoseContext(v) => v.encode(out),
            Decoded::RecordAccessControlPoint(v) => v.encode(out),
            Decoded::BatteryLevel(v) => v.encode(out),
            Decoded::CurrentTime(v) => v.encode(out),
            Decoded::DateTime(v) => v.encode(out),
        }
    }

    /// The observations this value carries, in canonical units. Feature, control-point, time and context values, and
    /// the intermediate (in-progress) temperature and cuff pressure, carry none.
    pub fn observations(&self) -> Observations {
        match self {
            Decoded::HeartRate(v) => v.observations(),
            Decoded::Temperature(v) => v.observations(),
            Decoded::BloodPressure(v) => v.observations(),
            Decoded::PlxSpotCheck(v) => v.observations(),
            Decoded::PlxContinuous(v) => v.observations(),
            Decoded::Weight(v) => v.observations(),
            Decoded::Glucose(v) => v.observations(),
            Decoded::BatteryLevel(v) => v.observations(),
            Decoded::IntermediateTemperature(_)
            | Decoded::IntermediateCuffPressure(_)
            | Decoded::BloodPressureFeature(_)
            | Decoded::PlxFeatures(_)
            | Decoded::WeightScaleFeature(_)
            | Decoded::GlucoseContext(_)
            | Decoded::RecordAccessControlPoint(_)
            | Decoded::CurrentTime(_)
            | Decoded::DateTime(_) => Observations::new(),
        }
    }

    /// When the device says the measurement was taken — only if the date is fully known and the device does not flag
    /// its clock as unset or faulty (see [`Decoded::clock_not_set`]). For Current Time and Date Time values, the time
    /// they carry. The hub corrects this by the device's clock offset; `None` means "use the time of receipt, marked
    /// as such", never "invent one".
    pub fn timestamp(&self) -> Option<DateTime> {
        if self.clock_not_set() {
            return None;
        }
        let t = match self {
            Decoded::Temperature(v) => v.timestamp,
            Decoded::IntermediateTemperature(v) => v.0.timestamp,
            Decoded::BloodPressure(v) => v.timestamp,
            Decoded::IntermediateCuffPressure(v) => v.0.timestamp,
            Decoded::PlxSpotCheck(v) => v.timestamp,
            Decoded::Weight(v) => v.timestamp,
            Decoded::Glucose(v) => v.user_facing_time(),
            Decoded::CurrentTime(v) => Some(v.date_time),
            Decoded::DateTime(v) => Some(*v),
            Decoded::HeartRate(_)
            | Decoded::BloodPressureFeature(_)
            | Decoded::PlxContinuous(_)
            | Decoded::PlxFeatures(_)
            | Decoded::WeightScaleFeature(_)
            | Decoded::GlucoseContext(_)
            | Decoded::RecordAccessControlPoint(_)
            | Decoded::BatteryLevel(_) => None,
        };
        t.filter(|t| t.is_date_known())
    }

    /// Whether the device says its clock cannot be trusted: PLX Spot-check flag bit 4 "Device Clock is Not Set", or
    /// Glucose Sensor Status Annunciation bit 11 "Time fault has occurred in the sensor and time may be inaccurate".
    pub fn clock_not_set(&self) -> bool {
        match self {
            Decoded::PlxSpotCheck(v) => v.device_clock_not_set,
            Decoded::Glucose(v) => v.sensor_status.is_some_and(|s| s.time_fault),
            _ => false,
        }
    }
}

/// The first reason in `reasons` that applies, in the order given (callers list the most fundamental first).
pub(crate) fn first_reason(reasons: &[(bool, Invalid)]) -> Option<Invalid> {
    reasons
        .iter()
        .find(|(applies, _)| *applies)
        .map(|(_, why)| *why)
}

/// A value that the device's own special value already invalidates keeps that reason; otherwise a status reason, if
/// any, replaces the number.
pub(crate) fn with_status(v: Value, status: Option<Invalid>) -> Value {
    match (v, status) {
        (Value::Number(_), Some(why)) => Value::Invalid(why),
        (v, _) => v,
    }
}
