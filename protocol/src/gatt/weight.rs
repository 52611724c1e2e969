//! Weight Measurement (0x2A9D) and Weight Scale Feature (0x2A9E), Weight Scale Service 0x181D.

use super::convert;
use super::cursor::{Reader, Writer};
use super::{Characteristic, DateTime, DecodeError, EncodeError, Observations};
use crate::vocab::{Code, Invalid, Observation, Quantity, Value};

/// Weight value meaning "measurement unsuccessful" (Weight Scale Service v1.0, Weight field).
pub const WEIGHT_UNSUCCESSFUL: u16 = 0xFFFF;

/// Measurement units (flags bit 0): weight and height together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WeightUnit {
    /// Weight in 0.005 kg, height in 0.001 m.
    #[default]
    Si,
    /// Weight in 0.01 lb, height in 0.1 in.
    Imperial,
}

/// BMI and Height (present together, flags bit 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BmiHeight {
    /// BMI in units of 0.1 kg/m².
    pub bmi: u16,
    /// Height in units of 0.001 m (SI) or 0.1 in (imperial).
    pub height: u16,
}

/// Weight Measurement (GSS).
///
/// | flags bit | field present | format |
/// |---|---|---|
/// | – | Flags | 8bit |
/// | – | Weight | uint16: 0.005 kg if bit 0 = 0, 0.01 lb if bit 0 = 1; 0xFFFF = unsuccessful |
/// | 1 | Time Stamp | Date Time (7) |
/// | 2 | User ID | uint8 (0xFF = unknown user) |
/// | 3 | BMI, Height | uint16 (0.1), uint16 (0.001 m or 0.1 in) |
/// | 4–7 | RFU (ignored) | |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WeightMeasurement {
    pub unit: WeightUnit,
    /// Raw weight in the unit's resolution (0.005 kg or 0.01 lb); [`WEIGHT_UNSUCCESSFUL`] if the scale failed.
    pub weight: u16,
    pub timestamp: Option<DateTime>,
    /// 0xFF = unknown user.
    pub user_id: Option<u8>,
    pub bmi_height: Option<BmiHeight>,
}

impl WeightMeasurement {
    /// The weight in the device's unit (kg or lb) with its resolution, or [`Invalid::MeasurementUnsuccessful`].
    pub fn weight_value(&self) -> Value {
        if self.weight == WEIGHT_UNSUCCESSFUL {
            return Value::Invalid(Invalid::MeasurementUnsuccessful);
        }
        Value::Number(match self.unit {
            WeightUnit::Si => Quantity::new(self.weight as i32 * 5, -3),
            WeightUnit::Imperial => Quantity::new(self.weight as i32, -2),
        })
    }

    /// The weight in kg. SI keeps the wire resolution exactly (0.005 kg → 3 decimals); pounds are converted with
    /// 1 lb = 0.453 592 37 kg and rounded to 2 decimals (0.01 lb ≈ 0.0045 kg).
    pub fn weight_kg(&self) -> Value {
        match self.unit {
            WeightUnit::Si => self.weight_value(),
            WeightUnit::Imperial => convert::linear(self.weight_value(), 0.0, convert::KG_PER_LB),
        }
    }

    /// One [`Code::Weight`] observation in kg.
    pub fn observations(&self) -> Observations {
        let mut out = Observations::new();
        let _ = out.push(Observation {
            code: Code::Weight,
            value: self.weight_kg(),
        });
        out
    }
}

impl Characteristic for WeightMeasurement {
    const UUID: u16 = 0x2A9D;
    const MIN_LEN: usize = 3;
    const MAX_LEN: usize = 15;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.u8()?;
        let unit = if flags & 0x01 != 0 {
            WeightUnit::Imperial
        } else {
            WeightUnit::Si
        };
        let weight = r.u16()?;
        let timestamp = if flags & 0x02 != 0 {
            Some(DateTime::read(&mut r)?)
        } else {
            None
        };
        let user_id = if flags & 0x04 != 0 {
            Some(r.u8()?)
        } else {
            None
        };
        let bmi_height = if flags & 0x08 != 0 {
            Some(BmiHeight {
                bmi: r.u16()?,
                height: r.u16()?,
            })
        } else {
            None
        };
        r.finish()?;
        Ok(WeightMeasurement {
            unit,
            weight,
            timestamp,
            user_id,
            bmi_height,
        })
    }

    fn encoded_len(&self) -> usize {
        3 + if self.timestamp.is_some() {
            DateTime::LEN
        } else {
            0
        } + self.user_id.map_or(0, |_| 1)
            + self.bmi_height.map_or(0, |_| 4)
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, self.encoded_len())?;
        let flags = (self.unit == WeightUnit::Imperial) as u8
            | (self.timestamp.is_some() as u8) << 1
            | (self.user_id.is_some() as u8) << 2
            | (self.bmi_height.is_some() as u8) << 3;
        w.u8(flags)?;
        w.u16(self.weight)?;
        if let Some(t) = &self.timestamp {
            t.write(&mut w)?;
        }
        if let Some(u) = self.user_id {
            w.u8(u)?;
        }
        if let Some(b) = self.bmi_height {
            w.u16(b.bmi)?;
            w.u16(b.height)?;
        }
        Ok(w.len())
    }
}

code_enum! {
    /// Weight Measurement Resolution (Weight Scale Feature bits 3–6).
    pub enum WeightResolution {
        NotSpecified = 0,
        /// 0.5 kg or 1 lb.
        Kg0_5Lb1 = 1,
        /// 0.2 kg or 0.5 lb.
        Kg0_2Lb0_5 = 2,
        /// 0.1 kg or 0.2 lb.
        Kg0_1Lb0_2 = 3,
        /// 0.05 kg or 0.1 lb.
        Kg0_05Lb0_1 = 4,
        /// 0.02 kg or 0.05 lb.
        Kg0_02Lb0_05 = 5,
        /// 0.01 kg or 0.02 lb.
        Kg0_01Lb0_02 = 6,
        /// 0.005 kg or 0.01 lb.
        Kg0_005Lb0_01 = 7,
    }
}

code_enum! {
    /// Height Measurement Resolution (Weight Scale Feature bits 7–9).
    pub enum HeightResolution {
        NotSpecified = 0,
        /// 0.01 m or 1 in.
        M0_01In1 = 1,
        /// 0.005 m or 0.5 in.
        M0_005In0_5 = 2,
        /// 0.001 m or 0.1 in.
        M0_001In0_1 = 3,
    }
}

/// Weight Scale Feature (GSS, 32 bits): bit 0 time stamp, bit 1 multiple users, bit 2 BMI, bits 3–6 weight
/// resolution, bits 7–9 height resolution, bits 10–31 RFU (ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WeightScaleFeature {
    pub time_stamp_supported: bool,
    pub multiple_users_supported: bool,
    pub bmi_supported: bool,
    /// 4-bit field; `Reserved(8..=15)` as received.
    pub weight_resolution: WeightResolution,
    /// 3-bit field; `Reserved(4..=7)` as received.
    pub height_resolution: HeightResolution,
}

impl Characteristic for WeightScaleFeature {
    const UUID: u16 = 0x2A9E;
    const MIN_LEN: usize = 4;
    const MAX_LEN: usize = 4;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let bits = r.u32()?;
        r.finish()?;
        Ok(WeightScaleFeature {
            time_stamp_supported: bits & 0x01 != 0,
            multiple_users_supported: bits & 0x02 != 0,
            bmi_supported: bits & 0x04 != 0,
            weight_resolution: WeightResolution::from_u8(((bits >> 3) & 0x0F) as u8),
            height_resolution: HeightResolution::from_u8(((bits >> 7) & 0x07) as u8),
        })
    }

    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let weight = self.weight_resolution.to_u8();
        let height = self.height_resolution.to_u8();
        if weight > 0x0F {
            return Err(EncodeError::OutOfRange {
                field: "weight measurement resolution",
            });
        }
        if height > 0x07 {
            return Err(EncodeError::OutOfRange {
                field: "height measurement resolution",
            });
        }
        let mut w = Writer::new(out, 4)?;
        let bits = self.time_stamp_supported as u32
            | (self.multiple_users_supported as u32) << 1
            | (self.bmi_supported as u32) << 2
            | (weight as u32) << 3
            | (height as u32) << 7;
        w.u32(bits)?;
        Ok(w.len())
    }
}
