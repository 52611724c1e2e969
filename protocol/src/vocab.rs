//! The observation vocabulary: what a reading can be, in which unit, and what is plausible.
//!
//! Every code has one canonical UCUM unit; decoders convert device units (°F, kPa, lb) into it. A value is either a
//! [`Quantity`] (a decimal with the precision the device sent) or an [`Invalid`] reason. There is deliberately no
//! sentinel number: a cuff's NaN must never reach a rule as "systolic 2047".

use core::fmt;

/// An observation code. The discriminant is the stable one-byte id used in board frames.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Code {
    HeartRate = 1,
    Spo2 = 2,
    RespRate = 3,
    Temp = 4,
    BpSys = 5,
    BpDia = 6,
    BpMap = 7,
    Weight = 8,
    Glucose = 9,
    Battery = 10,
    /// Events: 1 = happened / open / detected, 0 = cleared / closed.
    Fall = 32,
    Motion = 33,
    Door = 34,
    /// Button press count or press type (BTHome event value); any value ≥ 1 means "pressed".
    Button = 35,
}

/// What kind of thing a code measures; rules treat them differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// A vital sign of the patient (scored by clinical rules).
    Vital,
    /// About the device, not the patient (technical alarms).
    Technical,
    /// An event of daily living or an emergency event.
    Event,
}

impl Code {
    /// Every code, in id order.
    pub const ALL: [Code; 14] = [
        Code::HeartRate,
        Code::Spo2,
        Code::RespRate,
        Code::Temp,
        Code::BpSys,
        Code::BpDia,
        Code::BpMap,
        Code::Weight,
        Code::Glucose,
        Code::Battery,
        Code::Fall,
        Code::Motion,
        Code::Door,
        Code::Button,
    ];

    /// The name used in the JSON interop format and in configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::HeartRate => "heart_rate",
            Code::Spo2 => "spo2",
            Code::RespRate => "resp_rate",
            Code::Temp => "temp",
            Code::BpSys => "bp_sys",
            Code::BpDia => "bp_dia",
            Code::BpMap => "bp_map",
            Code::Weight => "weight",
            Code::Glucose => "glucose",
            Code::Battery => "battery",
            Code::Fall => "fall",
            Code::Motion => "motion",
            Code::Door => "door",
            Code::Button => "button",
        }
    }

    /// Parses a JSON/config name; `None` for an unknown code.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The stable one-byte id used in board frames.
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// The code for a board-frame id; `None` for an unknown id.
    pub fn from_id(id: u8) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.id() == id)
    }

    /// The canonical UCUM unit every value of this code is expressed in.
    pub const fn unit(self) -> &'static str {
        match self {
            Code::HeartRate | Code::RespRate => "/min",
            Code::Spo2 | Code::Battery => "%",
            Code::Temp => "Cel",
            Code::BpSys | Code::BpDia | Code::BpMap => "mm[Hg]",
            Code::Weight => "kg",
            Code::Glucose => "mmol/L",
            Code::Fall | Code::Motion | Code::Door | Code::Button => "{event}",
        }
    }

    /// LOINC code (as used by the HL7 Personal Health Device IG). Technical and event codes have none.
    pub const fn loinc(self) -> Option<&'static str> {
        match self {
            Code::HeartRate => Some("8867-4"),
            Code::Spo2 => Some("59408-5"),
            Code::RespRate => Some("9279-1"),
            Code::Temp => Some("8310-5"),
            Code::BpSys => Some("8480-6"),
            Code::BpDia => Some("8462-4"),
            Code::BpMap => Some("8478-0"),
            Code::Weight => Some("29463-7"),
            Code::Glucose => Some("15074-8"),
            Code::Battery | Code::Fall | Code::Motion | Code::Door | Code::Button => None,
        }
    }

    /// IEEE 11073-10101 (MDC) nomenclature code, used by the PHD IG alongside LOINC.
    pub const fn mdc(self) -> Option<u32> {
        match self {
            Code::HeartRate => Some(149_530), // MDC_PULS_RATE_NON_INV
            Code::Spo2 => Some(150_456),      // MDC_PULS_OXIM_SAT_O2
            Code::RespRate => Some(151_562),  // MDC_RESP_RATE
            Code::Temp => Some(150_364),      // MDC_TEMP_BODY
            Code::BpSys => Some(150_021),     // MDC_PRESS_BLD_NONINV_SYS
            Code::BpDia => Some(150_022),     // MDC_PRESS_BLD_NONINV_DIA
            Code::BpMap => Some(150_023),     // MDC_PRESS_BLD_NONINV_MEAN
            Code::Weight => Some(188_736),    // MDC_MASS_BODY_ACTUAL
            Code::Glucose => Some(160_184),   // MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD
            Code::Battery => Some(67_996),    // MDC_ATTR_VAL_BATT_CHARGE
            Code::Fall | Code::Motion | Code::Door | Code::Button => None,
        }
    }

    pub const fn kind(self) -> Kind {
        match self {
            Code::Battery => Kind::Technical,
            Code::Fall | Code::Motion | Code::Door | Code::Button => Kind::Event,
            _ => Kind::Vital,
        }
    }

    /// The physiologically (or physically) plausible range, inclusive, in the canonical unit. A value outside it is
    /// a device or transcription fault, not a clinical finding, and is quarantined rather than scored.
    pub const fn plausible(self) -> (f64, f64) {
        match self {
            Code::HeartRate => (20.0, 300.0),
            Code::Spo2 => (50.0, 100.0),
            Code::RespRate => (2.0, 80.0),
            Code::Temp => (25.0, 45.0),
            Code::BpSys => (40.0, 300.0),
            Code::BpDia => (20.0, 200.0),
            Code::BpMap => (30.0, 250.0),
            Code::Weight => (2.0, 400.0),
            Code::Glucose => (0.5, 60.0),
            Code::Battery => (0.0, 100.0),
            Code::Fall | Code::Motion | Code::Door => (0.0, 1.0),
            Code::Button => (0.0, 255.0),
        }
    }

    /// Whether `v` (canonical unit) lies in [`Code::plausible`].
    pub fn is_plausible(self, v: f64) -> bool {
        let (lo, hi) = self.plausible();
        v >= lo && v <= hi
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decimal number exactly as the device sent it: `mantissa × 10^exponent`.
///
/// Keeping the exponent preserves precision (36.6 °C is not 36.600000000000001 °C) and lets the hub show a reading as
/// the device displayed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Quantity {
    pub mantissa: i32,
    pub exponent: i8,
}

impl Quantity {
    pub const fn new(mantissa: i32, exponent: i8) -> Self {
        Quantity { mantissa, exponent }
    }

    /// The value as a float (for comparison and arithmetic; storage keeps mantissa and exponent).
    pub fn to_f64(self) -> f64 {
        let mut v = self.mantissa as f64;
        let mut e = self.exponent;
        while e > 0 {
            v *= 10.0;
            e -= 1;
        }
        while e < 0 {
            v /= 10.0;
            e += 1;
        }
        v
    }

    /// Number of decimal places the device reported (0 for integers and positive exponents).
    pub fn decimals(self) -> u8 {
        if self.exponent < 0 {
            self.exponent.unsigned_abs()
        } else {
            0
        }
    }

    /// The shortest decimal with at most `max_decimals` places that equals `v` to within half a unit of the last
    /// place; `None` for non-finite values or ones whose mantissa would not fit an `i32`.
    pub fn from_f64(v: f64, max_decimals: u8) -> Option<Self> {
        if !v.is_finite() {
            return None;
        }
        let mut scale = 1.0f64;
        for d in 0..=max_decimals {
            let scaled = v * scale;
            let rounded = round_half_away(scaled);
            let last = d == max_decimals;
            if last || (scaled - rounded).abs() < 1e-9 * scale.max(1.0) {
                if rounded.abs() > i32::MAX as f64 {
                    return None;
                }
                return Some(Quantity::new(rounded as i32, -(d as i8)));
            }
            scale *= 10.0;
        }
        None
    }

    /// This value rounded to `decimals` places (used after a unit conversion, to keep the device's precision).
    pub fn rounded_to(v: f64, decimals: u8) -> Option<Self> {
        if !v.is_finite() {
            return None;
        }
        let mut scale = 1.0f64;
        for _ in 0..decimals {
            scale *= 10.0;
        }
        let m = round_half_away(v * scale);
        if m.abs() > i32::MAX as f64 {
            return None;
        }
        Some(Quantity::new(m as i32, -(decimals as i8)))
    }
}

/// `f64::round` needs std; this is the same rounding (half away from zero) for no_std.
fn round_half_away(x: f64) -> f64 {
    let t = x as i64 as f64; // truncation toward zero; callers bound |x| by i32 range
    let frac = x - t;
    if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.decimals() as usize;
        write!(f, "{:.*}", d, self.to_f64())
    }
}

/// Why a value is not a number. The device (or the firmware's signal processing) said so; it is never scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Invalid {
    /// IEEE 11073 NaN (SFLOAT 0x07FF, FLOAT 0x007FFFFF): "not a number", e.g. a cuff error.
    NaN,
    /// IEEE 11073 NRes: "not at this resolution".
    NRes,
    /// IEEE 11073 +INF.
    PositiveInfinity,
    /// IEEE 11073 −INF.
    NegativeInfinity,
    /// IEEE 11073 reserved value.
    Reserved,
    /// The device reported the measurement as unsuccessful (e.g. Weight Measurement 0xFFFF).
    MeasurementUnsuccessful,
    /// Signal quality too low to trust (PPG signal-quality index, PLX "poor signal"/"low perfusion").
    LowSignalQuality,
    /// Motion artefact detected during the measurement.
    MotionArtefact,
    /// The sensor was displaced or not in contact (PLX "sensor displaced", HR "no contact").
    SensorDisplaced,
    /// The device reported a sensor or device malfunction.
    DeviceFault,
}

impl Invalid {
    /// Stable machine-readable reason code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Invalid::NaN => "nan",
            Invalid::NRes => "nres",
            Invalid::PositiveInfinity => "positive_infinity",
            Invalid::NegativeInfinity => "negative_infinity",
            Invalid::Reserved => "reserved",
            Invalid::MeasurementUnsuccessful => "measurement_unsuccessful",
            Invalid::LowSignalQuality => "low_signal_quality",
            Invalid::MotionArtefact => "motion_artefact",
            Invalid::SensorDisplaced => "sensor_displaced",
            Invalid::DeviceFault => "device_fault",
        }
    }

    /// Stable one-byte id used in board frames (0 is reserved for "valid").
    pub const fn id(self) -> u8 {
        match self {
            Invalid::NaN => 1,
            Invalid::NRes => 2,
            Invalid::PositiveInfinity => 3,
            Invalid::NegativeInfinity => 4,
            Invalid::Reserved => 5,
            Invalid::MeasurementUnsuccessful => 6,
            Invalid::LowSignalQuality => 7,
            Invalid::MotionArtefact => 8,
            Invalid::SensorDisplaced => 9,
            Invalid::DeviceFault => 10,
        }
    }

    pub fn from_id(id: u8) -> Option<Invalid> {
        [
            Invalid::NaN,
            Invalid::NRes,
            Invalid::PositiveInfinity,
            Invalid::NegativeInfinity,
            Invalid::Reserved,
            Invalid::MeasurementUnsuccessful,
            Invalid::LowSignalQuality,
            Invalid::MotionArtefact,
            Invalid::SensorDisplaced,
            Invalid::DeviceFault,
        ]
        .into_iter()
        .find(|r| r.id() == id)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value: a number with the device's precision, or an explicit reason it is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Value {
    Number(Quantity),
    Invalid(Invalid),
}

impl Value {
    /// The number, if there is one. An invalid value has none — by construction it cannot be scored.
    pub fn number(self) -> Option<f64> {
        match self {
            Value::Number(q) => Some(q.to_f64()),
            Value::Invalid(_) => None,
        }
    }
}

/// One coded observation in the canonical unit of its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Observation {
    pub code: Code,
    pub value: Value,
}

impl Observation {
    pub const fn number(code: Code, q: Quantity) -> Self {
        Observation {
            code,
            value: Value::Number(q),
        }
    }
    pub const fn invalid(code: Code, why: Invalid) -> Self {
        Observation {
            code,
            value: Value::Invalid(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_by_name_and_id() {
        for c in Code::ALL {
            assert_eq!(Code::from_name(c.as_str()), Some(c));
            assert_eq!(Code::from_id(c.id()), Some(c));
        }
        assert_eq!(Code::from_name("systolic"), None);
        assert_eq!(Code::from_id(0), None);
    }

    #[test]
    fn units_are_canonical_ucum() {
        assert_eq!(Code::Temp.unit(), "Cel");
        assert_eq!(Code::BpSys.unit(), "mm[Hg]");
        assert_eq!(Code::Glucose.unit(), "mmol/L");
        assert_eq!(Code::HeartRate.loinc(), Some("8867-4"));
    }

    #[test]
    fn quantity_keeps_precision() {
        let q = Quantity::from_f64(36.6, 3).unwrap();
        assert_eq!(q, Quantity::new(366, -1));
        assert_eq!(Quantity::from_f64(88.0, 3).unwrap(), Quantity::new(88, 0));
        assert_eq!(
            Quantity::rounded_to(97.88, 1).unwrap(),
            Quantity::new(979, -1)
        );
        assert_eq!(
            Quantity::rounded_to(-40.04, 1).unwrap(),
            Quantity::new(-400, -1)
        );
        assert_eq!(Quantity::new(1205, -1).to_f64(), 120.5);
        assert_eq!(Quantity::from_f64(f64::NAN, 2), None);
    }

    #[test]
    fn invalid_has_no_number() {
        assert_eq!(Value::Invalid(Invalid::NaN).number(), None);
        for id in 1..=10 {
            assert_eq!(Invalid::from_id(id).unwrap().id(), id);
        }
        assert_eq!(Invalid::from_id(0), None);
    }

    #[test]
    fn plausible_ranges_reject_sentinels() {
        assert!(!Code::BpSys.is_plausible(2047.0));
        assert!(Code::BpSys.is_plausible(120.0));
        assert!(!Code::Spo2.is_plausible(127.0));
    }
}
