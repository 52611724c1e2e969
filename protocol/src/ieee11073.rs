//! IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit) medical floats, as used by the Bluetooth SIG health
//! characteristics.
//!
//! Both are `mantissa × 10^exponent` with two's-complement fields: SFLOAT has a 4-bit exponent (−8..=7) over a 12-bit
//! mantissa, FLOAT an 8-bit exponent (−128..=127) over a 24-bit mantissa. Five bit patterns, all with exponent 0, are
//! not numbers (IEEE 11073-20601 Annex F.8; the GATT Specification Supplement refers to it):
//!
//! | meaning  | SFLOAT   | FLOAT        | [`Invalid`]                  |
//! |----------|----------|--------------|------------------------------|
//! | NaN      | `0x07FF` | `0x007FFFFF` | [`Invalid::NaN`]             |
//! | NRes     | `0x0800` | `0x00800000` | [`Invalid::NRes`]            |
//! | +INF     | `0x07FE` | `0x007FFFFE` | [`Invalid::PositiveInfinity`]|
//! | −INF     | `0x0802` | `0x00800002` | [`Invalid::NegativeInfinity`]|
//! | reserved | `0x0801` | `0x00800001` | [`Invalid::Reserved`]        |
//!
//! Decoding keeps mantissa and exponent as sent, so 36.6 stays `366 × 10⁻¹`. The same mantissas with a non-zero
//! exponent are ordinary numbers (e.g. SFLOAT `0xF7FF` is 204.7), as the standard reserves only the exponent-0 patterns.
//!
//! Encoding maps each [`Invalid`] with a special value to it, and every other reason (e.g.
//! [`Invalid::MeasurementUnsuccessful`]) to NaN. A number whose mantissa or exponent does not fit is normalised when
//! that is exact (`1200 × 10⁰` → `120 × 10¹` for SFLOAT) and rejected otherwise — never rounded.

use crate::gatt::EncodeError;
use crate::vocab::{Invalid, Quantity, Value};

/// SFLOAT NaN (not a number).
pub const SFLOAT_NAN: u16 = 0x07FF;
/// SFLOAT NRes (not at this resolution).
pub const SFLOAT_NRES: u16 = 0x0800;
/// SFLOAT +INF.
pub const SFLOAT_POSITIVE_INFINITY: u16 = 0x07FE;
/// SFLOAT −INF.
pub const SFLOAT_NEGATIVE_INFINITY: u16 = 0x0802;
/// SFLOAT value reserved for future use.
pub const SFLOAT_RESERVED: u16 = 0x0801;

/// FLOAT NaN (not a number).
pub const FLOAT_NAN: u32 = 0x007F_FFFF;
/// FLOAT NRes (not at this resolution).
pub const FLOAT_NRES: u32 = 0x0080_0000;
/// FLOAT +INF.
pub const FLOAT_POSITIVE_INFINITY: u32 = 0x007F_FFFE;
/// FLOAT −INF.
pub const FLOAT_NEGATIVE_INFINITY: u32 = 0x0080_0002;
/// FLOAT value reserved for future use.
pub const FLOAT_RESERVED: u32 = 0x0080_0001;

/// The shape of one of the two formats, so that both share one normaliser.
struct Format {
    mantissa_bits: u32,
    exponent_min: i32,
    exponent_max: i32,
    /// The mantissas that are special values when the exponent is 0.
    specials: [i64; 5],
    name: &'static str,
}

const SFLOAT: Format = Format {
    mantissa_bits: 12,
    exponent_min: -8,
    exponent_max: 7,
    specials: [2047, -2048, 2046, -2046, -2047],
    name: "SFLOAT",
};

const FLOAT: Format = Format {
    mantissa_bits: 24,
    exponent_min: -128,
    exponent_max: 127,
    specials: [8_388_607, -8_388_608, 8_388_606, -8_388_606, -8_388_607],
    name: "FLOAT",
};

impl Format {
    fn mantissa_min(&self) -> i64 {
        -(1i64 << (self.mantissa_bits - 1))
    }
    fn mantissa_max(&self) -> i64 {
        (1i64 << (self.mantissa_bits - 1)) - 1
    }
    fn mantissa_fits(&self, m: i64) -> bool {
        m >= self.mantissa_min() && m <= self.mantissa_max()
    }

    /// An exactly equal (mantissa, exponent) pair that this format can carry as a number, if there is one.
    fn normalise(&self, q: Quantity) -> Result<(i64, i32), EncodeError> {
        let mut m = q.mantissa as i64;
        let mut e = q.exponent as i32;
        let err = EncodeError::OutOfRange { field: self.name };
        if m == 0 {
            // Zero is zero at any exponent; keep the one sent when it fits.
            return Ok((0, e.clamp(self.exponent_min, self.exponent_max)));
        }
        // Exponent too large: move it into the mantissa (exact).
        while e > self.exponent_max && self.mantissa_fits(m * 10) {
            m *= 10;
            e -= 1;
        }
        // Mantissa too wide, exponent too small, or a special pattern: drop trailing decimal zeros (exact).
        while (!self.mantissa_fits(m)
            || e < self.exponent_min
            || (e == 0 && self.specials.contains(&m)))
            && m % 10 == 0
            && e < self.exponent_max
        {
            m /= 10;
            e += 1;
        }
        if !self.mantissa_fits(m) || e < self.exponent_min || e > self.exponent_max {
            return Err(err);
        }
        if e == 0 && self.specials.contains(&m) {
            return Err(err);
        }
        Ok((m, e))
    }
}

fn invalid_sfloat(why: Invalid) -> u16 {
    match why {
        Invalid::NRes => SFLOAT_NRES,
        Invalid::PositiveInfinity => SFLOAT_POSITIVE_INFINITY,
        Invalid::NegativeInfinity => SFLOAT_NEGATIVE_INFINITY,
        Invalid::Reserved => SFLOAT_RESERVED,
        // NaN, and every reason the format has no pattern for.
        _ => SFLOAT_NAN,
    }
}

fn invalid_float(why: Invalid) -> u32 {
    match why {
        Invalid::NRes => FLOAT_NRES,
        Invalid::PositiveInfinity => FLOAT_POSITIVE_INFINITY,
        Invalid::NegativeInfinity => FLOAT_NEGATIVE_INFINITY,
        Invalid::Reserved => FLOAT_RESERVED,
        _ => FLOAT_NAN,
    }
}

/// Decodes an SFLOAT. Special values become [`Value::Invalid`]; anything else a [`Quantity`] with the sent precision.
pub fn sfloat_to_value(raw: u16) -> Value {
    match raw {
        SFLOAT_NAN => Value::Invalid(Invalid::NaN),
        SFLOAT_NRES => Value::Invalid(Invalid::NRes),
        SFLOAT_POSITIVE_INFINITY => Value::Invalid(Invalid::PositiveInfinity),
        SFLOAT_NEGATIVE_INFINITY => Value::Invalid(Invalid::NegativeInfinity),
        SFLOAT_RESERVED => Value::Invalid(Invalid::Reserved),
        _ => {
            // Sign-extend the low 12 bits and the high 4 bits (arithmetic shifts on signed types).
            let mantissa = ((raw << 4) as i16) >> 4;
            let exponent = (raw as i16) >> 12;
            Value::Number(Quantity::new(mantissa as i32, exponent as i8))
        }
    }
}

/// Decodes a FLOAT. Special values become [`Value::Invalid`]; anything else a [`Quantity`] with the sent precision.
pub fn float_to_value(raw: u32) -> Value {
    match raw {
        FLOAT_NAN => Value::Invalid(Invalid::NaN),
        FLOAT_NRES => Value::Invalid(Invalid::NRes),
        FLOAT_POSITIVE_INFINITY => Value::Invalid(Invalid::PositiveInfinity),
        FLOAT_NEGATIVE_INFINITY => Value::Invalid(Invalid::NegativeInfinity),
        FLOAT_RESERVED => Value::Invalid(Invalid::Reserved),
        _ => {
            let mantissa = ((raw << 8) as i32) >> 8;
            let exponent = (raw >> 24) as u8 as i8;
            Value::Number(Quantity::new(mantissa, exponent))
        }
    }
}

/// Encodes an SFLOAT. [`Invalid`] reasons become their special value (NaN for reasons without one); a number that
/// cannot be carried exactly is [`EncodeError::OutOfRange`].
pub fn value_to_sfloat(v: Value) -> Result<u16, EncodeError> {
    match v {
        Value::Invalid(why) => Ok(invalid_sfloat(why)),
        Value::Number(q) => {
            let (m, e) = SFLOAT.normalise(q)?;
            Ok((((e as i16 as u16) & 0x000F) << 12) | ((m as i16 as u16) & 0x0FFF))
        }
    }
}

/// Encodes a FLOAT. [`Invalid`] reasons become their special value (NaN for reasons without one); a number that
/// cannot be carried exactly is [`EncodeError::OutOfRange`].
pub fn value_to_float(v: Value) -> Result<u32, EncodeError> {
    match v {
        Value::Invalid(why) => Ok(invalid_float(why)),
        Value::Number(q) => {
            let (m, e) = FLOAT.normalise(q)?;
            Ok(((e as i8 as u8 as u32) << 24) | ((m as i32 as u32) & 0x00FF_FFFF))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(m: i32, e: i8) -> Value {
        Value::Number(Quantity::new(m, e))
    }

    #[test]
    fn sfloat_special_values_are_invalid() {
        assert_eq!(sfloat_to_value(0x07FF), Value::Invalid(Invalid::NaN));
        assert_eq!(sfloat_to_value(0x0800), Value::Invalid(Invalid::NRes));
        assert_eq!(
            sfloat_to_value(0x07FE),
            Value::Invalid(Invalid::PositiveInfinity)
        );
        assert_eq!(
            sfloat_to_value(0x0802),
            Value::Invalid(Invalid::NegativeInfinity)
        );
        assert_eq!(sfloat_to_value(0x0801), Value::Invalid(Invalid::Reserved));
    }

    #[test]
    fn float_special_values_are_invalid() {
        assert_eq!(float_to_value(0x007F_FFFF), Value::Invalid(Invalid::NaN));
        assert_eq!(float_to_value(0x0080_0000), Value::Invalid(Invalid::NRes));
        assert_eq!(
            float_to_value(0x007F_FFFE),
            Value::Invalid(Invalid::PositiveInfinity)
        );
        assert_eq!(
            float_to_value(0x0080_0002),
            Value::Invalid(Invalid::NegativeInfinity)
        );
        assert_eq!(
            float_to_value(0x0080_0001),
            Value::Invalid(Invalid::Reserved)
        );
    }

    #[test]
    fn sfloat_signs_extend() {
        // 0xF16E: exponent 0xF = −1, mantissa 0x16E = 366 → 36.6
        assert_eq!(sfloat_to_value(0xF16E), num(366, -1));
        // 0x0078 = 120 × 10⁰
        assert_eq!(sfloat_to_value(0x0078), num(120, 0));
        // 0x8FFF: exponent −8, mantissa −1
        assert_eq!(sfloat_to_value(0x8FFF), num(-1, -8));
        // 0x7001: exponent +7, mantissa 1
        assert_eq!(sfloat_to_value(0x7001), num(1, 7));
        // 0x0F38: exponent 0, mantissa 0xF38 = −200
        assert_eq!(sfloat_to_value(0x0F38), num(-200, 0));
        // The special mantissas with a non-zero exponent are numbers: 0xF7FF = 2047 × 10⁻¹.
        assert_eq!(sfloat_to_value(0xF7FF), num(2047, -1));
        assert_eq!(sfloat_to_value(0x1800), num(-2048, 1));
        assert_eq!(sfloat_to_value(0x0000), num(0, 0));
    }

    #[test]
    fn float_signs_extend() {
        // 0xFF00016E: exponent −1, mantissa 366 → 36.6
        assert_eq!(float_to_value(0xFF00_016E), num(366, -1));
        // 0xFEFFFF9C: exponent −2, mantissa −100 → −1.00
        assert_eq!(float_to_value(0xFEFF_FF9C), num(-100, -2));
        // 0x80000001: exponent −128, mantissa 1
        assert_eq!(float_to_value(0x8000_0001), num(1, -128));
        // 0x7F7FFFFD: exponent 127, largest encodable mantissa
        assert_eq!(float_to_value(0x7F7F_FFFD), num(8_388_605, 127));
        assert_eq!(float_to_value(0xFF7F_FFFF), num(8_388_607, -1));
    }

    #[test]
    fn sfloat_round_trips_exactly() {
        for raw in 0..=u16::MAX {
            let v = sfloat_to_value(raw);
            let back = value_to_sfloat(v).expect("every decoded SFLOAT encodes");
            // Zero has several encodings only in the exponent; everything else is bit-exact.
            assert_eq!(back, raw, "raw {raw:#06x} -> {v:?}");
        }
    }

    #[test]
    fn float_round_trips_on_edges() {
        for raw in [
            0u32,
            1,
            0x007F_FFFD,
            0x0080_0003,
            0x00FF_FFFF,
            0x7F00_0001,
            0x8000_0001,
            0xFF7F_FFFF,
            0x0180_0000,
            FLOAT_NAN,
            FLOAT_NRES,
            FLOAT_POSITIVE_INFINITY,
            FLOAT_NEGATIVE_INFINITY,
            FLOAT_RESERVED,
        ] {
            assert_eq!(
                value_to_float(float_to_value(raw)),
                Ok(raw),
                "raw {raw:#010x}"
            );
        }
    }

    #[test]
    fn invalid_reasons_without_a_pattern_encode_as_nan() {
        for why in [
            Invalid::MeasurementUnsuccessful,
            Invalid::LowSignalQuality,
            Invalid::MotionArtefact,
            Invalid::SensorDisplaced,
            Invalid::DeviceFault,
            Invalid::NaN,
        ] {
            assert_eq!(value_to_sfloat(Value::Invalid(why)), Ok(SFLOAT_NAN));
            assert_eq!(value_to_float(Value::Invalid(why)), Ok(FLOAT_NAN));
        }
    }

    #[test]
    fn encoding_normalises_only_when_exact() {
        // 12000 does not fit the 12-bit mantissa (max 2047): → 1200 × 10¹.
        assert_eq!(value_to_sfloat(num(12000, 0)), Ok(0x1000 | 1200));
        // 5 × 10⁹: the exponent max is 7, so the mantissa takes the rest: 500 × 10⁷.
        assert_eq!(value_to_sfloat(num(5, 9)), Ok(0x7000 | 500));
        // 2050 is too wide but ends in 0: 205 × 10¹.
        assert_eq!(value_to_sfloat(num(2050, 0)), Ok(0x1000 | 205));
        // 2049 has no exact SFLOAT.
        assert_eq!(
            value_to_sfloat(num(2049, 0)),
            Err(EncodeError::OutOfRange { field: "SFLOAT" })
        );
        // 1 × 10⁻⁹ is below the smallest exponent and cannot be rescaled.
        assert_eq!(
            value_to_sfloat(num(1, -9)),
            Err(EncodeError::OutOfRange { field: "SFLOAT" })
        );
        // 10 × 10⁻⁹ = 1 × 10⁻⁸.
        assert_eq!(value_to_sfloat(num(10, -9)), Ok(0x8001));
        // 2047 × 10⁰ would be NaN: not representable as a number.
        assert_eq!(
            value_to_sfloat(num(2047, 0)),
            Err(EncodeError::OutOfRange { field: "SFLOAT" })
        );
        // −2046 × 10⁰ would be −INF.
        assert!(value_to_sfloat(num(-2046, 0)).is_err());
        // 20470 × 10⁰ → 2047 × 10¹, a number.
        assert_eq!(value_to_sfloat(num(20470, 0)), Ok(0x17FF));
        // FLOAT: 8388607 × 10⁰ is NaN, so rejected; 83886070 → 8388607 × 10¹.
        assert!(value_to_float(num(8_388_607, 0)).is_err());
        assert_eq!(value_to_float(num(83_886_070, 0)), Ok(0x017F_FFFF));
        // Zero at an out-of-range exponent clamps (still exactly zero).
        assert_eq!(value_to_sfloat(num(0, -20)), Ok(0x8000));
    }

    #[test]
    fn nan_is_never_2047() {
        assert_eq!(sfloat_to_value(0x07FF).number(), None);
        assert_eq!(float_to_value(0x007F_FFFF).number(), None);
    }
}
